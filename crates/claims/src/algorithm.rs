//! The signing algorithms a deployment chooses from, and their names in JOSE.

use std::fmt;

use jsonwebtoken::jwk::KeyAlgorithm;
use serde::Deserialize;

/// The signing algorithms a deployment can choose (`jwt.algorithm`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum Algorithm {
    /// HMAC-SHA256 with a shared secret: the article's, and the default.
    #[default]
    HS256,
    /// Ed25519 (RFC 8037).
    EdDSA,
    /// ECDSA with P-256 and SHA-256.
    ES256,
}

impl Algorithm {
    /// The JOSE name, as in a header's `alg`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::ES256 => "ES256",
        }
    }

    /// Whether it signs with a private key and verifies with a public one.
    pub fn is_asymmetric(self) -> bool {
        self != Algorithm::HS256
    }

    pub(crate) fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        }
    }

    /// The `alg` of a JWK for this algorithm.
    pub(crate) fn key_algorithm(self) -> KeyAlgorithm {
        match self {
            Algorithm::HS256 => KeyAlgorithm::HS256,
            Algorithm::EdDSA => KeyAlgorithm::EdDSA,
            Algorithm::ES256 => KeyAlgorithm::ES256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

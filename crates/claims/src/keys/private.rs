//! The private half of a key pair (what the web-frontend signs with when it
//! holds one), read from PEM, and new pairs made as PEM.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, OctetKeyPairParameters,
};

use crate::algorithm::Algorithm;
use crate::keys::error::KeyError;
use crate::keys::public::PublicKey;

/// A private key for one asymmetric algorithm; its public half names it.
pub struct PrivateKey {
    encoding: EncodingKey,
    public: PublicKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// A PEM private key (PKCS#8, `-----BEGIN PRIVATE KEY-----`; for ES256 also
    /// SEC1's `-----BEGIN EC PRIVATE KEY-----`) for `algorithm`.
    pub fn from_pem(algorithm: Algorithm, pem: &[u8]) -> Result<Self, KeyError> {
        let (encoding, jwk) = match algorithm {
            Algorithm::HS256 => return Err(KeyError::NotAsymmetric),
            Algorithm::EdDSA => {
                // PKCS#8 v1 (OpenSSL's) or v2 (with the public key, as
                // ed25519-dalek writes it): jsonwebtoken reads the public key
                // of v1 only, so the seed is taken out and re-framed.
                use ed25519_dalek::pkcs8::DecodePrivateKey as _;
                let pem =
                    std::str::from_utf8(pem).map_err(|_| KeyError::BadPrivateKey(algorithm))?;
                let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
                    .map_err(|_| KeyError::BadPrivateKey(algorithm))?;
                let encoding = EncodingKey::from_ed_der(&ed25519_pkcs8_v1(&key.to_bytes()));
                let x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
                let jwk = Jwk {
                    common: CommonParameters::default(),
                    algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                        key_type: jsonwebtoken::jwk::OctetKeyPairType::OctetKeyPair,
                        curve: EllipticCurve::Ed25519,
                        x,
                    }),
                };
                (encoding, jwk)
            }
            Algorithm::ES256 => {
                let encoding = EncodingKey::from_ec_pem(pem)
                    .map_err(|_| KeyError::BadPrivateKey(algorithm))?;
                let jwk = Jwk::from_encoding_key(&encoding, algorithm.jsonwebtoken())
                    .map_err(|_| KeyError::BadPrivateKey(algorithm))?;
                (encoding, jwk)
            }
        };
        let public = PublicKey::from_parts(algorithm, jwk, None)?;
        // A key that cannot sign (a malformed scalar) fails here, not at the
        // first login.
        jsonwebtoken::crypto::sign(b"probe", &encoding, algorithm.jsonwebtoken())
            .map_err(|_| KeyError::BadPrivateKey(algorithm))?;
        Ok(Self { encoding, public })
    }

    /// A new key pair from 32 random bytes, as PEM: (private PKCS#8, public
    /// SubjectPublicKeyInfo). `None` when the bytes are not a valid P-256
    /// scalar (zero, or not below the group order: take new bytes).
    pub fn generate_pem(algorithm: Algorithm, seed: &[u8; 32]) -> Option<(String, String)> {
        use p256::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
        match algorithm {
            Algorithm::HS256 => None,
            Algorithm::EdDSA => {
                let key = ed25519_dalek::SigningKey::from_bytes(seed);
                // PKCS#8 v1, as OpenSSL writes it: every library reads it.
                let private = pem_block("PRIVATE KEY", &ed25519_pkcs8_v1(seed));
                let public = key.verifying_key().to_public_key_pem(LineEnding::LF).ok()?;
                Some((private, public))
            }
            Algorithm::ES256 => {
                let key = p256::SecretKey::from_slice(seed).ok()?;
                let private = key.to_pkcs8_pem(LineEnding::LF).ok()?;
                let public = key.public_key().to_public_key_pem(LineEnding::LF).ok()?;
                Some((private.to_string(), public))
            }
        }
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    pub fn algorithm(&self) -> Algorithm {
        self.public.algorithm()
    }

    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }
}

/// RFC 8410 §7: an Ed25519 private key as PKCS#8 v1 (the 32-byte seed in a
/// fixed 16-byte frame).
fn ed25519_pkcs8_v1(seed: &[u8; 32]) -> Vec<u8> {
    const FRAME: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    [&FRAME[..], seed].concat()
}

/// `-----BEGIN {label}-----`, base64 in 64-character lines, `-----END {label}-----`.
fn pem_block(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

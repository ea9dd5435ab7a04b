//! A public key of a key pair, read from PEM and checked to be a point of its
//! curve once; its `kid` is its RFC 7638 thumbprint. (Read from a JWK:
//! `jwk.rs`.)

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters, Jwk,
    OctetKeyPairParameters, PublicKeyUse, ThumbprintHash,
};

use crate::algorithm::Algorithm;
use crate::keys::error::KeyError;

/// A public key, for one asymmetric algorithm, with its `kid`.
#[derive(Clone)]
pub struct PublicKey {
    algorithm: Algorithm,
    kid: String,
    decoding: DecodingKey,
    jwk: Jwk,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm == other.algorithm && self.kid == other.kid && self.jwk == other.jwk
    }
}

impl PublicKey {
    /// A PEM public key (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo) for
    /// `algorithm`; its `kid` is its RFC 7638 thumbprint.
    pub fn from_pem(algorithm: Algorithm, pem: &[u8]) -> Result<Self, KeyError> {
        let decoding = match algorithm {
            Algorithm::HS256 => return Err(KeyError::NotAsymmetric),
            Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
            Algorithm::ES256 => DecodingKey::from_ec_pem(pem),
        }
        .map_err(|_| KeyError::BadPublicKey(algorithm))?;
        let jwk = Jwk::from_decoding_key(&decoding, Some(algorithm.jsonwebtoken()))
            .map_err(|_| KeyError::BadPublicKey(algorithm))?;
        Self::from_parts(algorithm, jwk, None)
    }

    /// The key of `jwk`'s public parameters, named `kid` (else by its
    /// thumbprint), once they are a point of `algorithm`'s curve.
    pub(super) fn from_parts(
        algorithm: Algorithm,
        jwk: Jwk,
        kid: Option<String>,
    ) -> Result<Self, KeyError> {
        let thumbprint = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|_| KeyError::BadPublicKey(algorithm))?;
        // The key must be a point of the algorithm's curve, checked here once:
        // jsonwebtoken takes any bytes and fails (or panics) at the first
        // signature checked with them.
        let valid = match (algorithm, &jwk.algorithm) {
            (Algorithm::EdDSA, AlgorithmParameters::OctetKeyPair(okp)) => {
                okp.curve == EllipticCurve::Ed25519 && valid_ed25519(&okp.x)
            }
            (Algorithm::ES256, AlgorithmParameters::EllipticCurve(ec)) => {
                ec.curve == EllipticCurve::P256 && valid_p256(&ec.x, &ec.y)
            }
            _ => false,
        };
        if !valid {
            return Err(KeyError::BadPublicKey(algorithm));
        }
        let decoding = match &jwk.algorithm {
            AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters { x, .. }) => {
                DecodingKey::from_ed_components(x)
            }
            AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters { x, y, .. }) => {
                DecodingKey::from_ec_components(x, y)
            }
            _ => return Err(KeyError::BadPublicKey(algorithm)),
        }
        .map_err(|_| KeyError::BadPublicKey(algorithm))?;
        let kid = kid.unwrap_or(thumbprint);
        let mut jwk = jwk;
        jwk.common = CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(algorithm.key_algorithm()),
            key_id: Some(kid.clone()),
            ..CommonParameters::default()
        };
        Ok(Self {
            algorithm,
            kid,
            decoding,
            jwk,
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The key's id: tokens it verifies carry it as `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key as a JWK (`kty`, `crv`, `x`[, `y`], `kid`, `alg`, `use`).
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }
}

/// A base64url Ed25519 public key: 32 bytes that decompress to a curve point.
fn valid_ed25519(x: &str) -> bool {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(x) else {
        return false;
    };
    let Ok(bytes) = <[u8; 32]>::try_from(bytes.as_slice()) else {
        return false;
    };
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).is_ok()
}

/// Base64url P-256 coordinates: 32 bytes each, a point of the curve.
fn valid_p256(x: &str, y: &str) -> bool {
    let (Ok(x), Ok(y)) = (URL_SAFE_NO_PAD.decode(x), URL_SAFE_NO_PAD.decode(y)) else {
        return false;
    };
    if x.len() != 32 || y.len() != 32 {
        return false;
    }
    let sec1 = [&[0x04][..], &x, &y].concat();
    p256::PublicKey::from_sec1_bytes(&sec1).is_ok()
}

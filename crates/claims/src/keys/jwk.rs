//! Public keys as JWKs: one key read from a JWK, and the JWK Set document the
//! web-frontend publishes and the socket servers read back.

use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse,
};
use serde::Deserialize;

use crate::algorithm::Algorithm;
use crate::keys::error::{KeyError, MAX_KEYS};
use crate::keys::public::PublicKey;

impl PublicKey {
    /// A key of a JWK Set, for `algorithm`; `None` when the JWK is for another
    /// algorithm or use, or is not a key of `algorithm`'s type and curve.
    /// Its `kid` is the JWK's own, else its thumbprint.
    pub fn from_jwk(algorithm: Algorithm, jwk: &Jwk) -> Option<Self> {
        if jwk
            .common
            .key_algorithm
            .is_some_and(|alg| alg != algorithm.key_algorithm())
        {
            return None;
        }
        if jwk
            .common
            .public_key_use
            .as_ref()
            .is_some_and(|usage| *usage != PublicKeyUse::Signature)
        {
            return None;
        }
        // RFC 7517 §4.3: when `key_ops` is there, checking signatures must be one.
        if jwk
            .common
            .key_operations
            .as_ref()
            .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
        {
            return None;
        }
        let fits = match (algorithm, &jwk.algorithm) {
            (Algorithm::EdDSA, AlgorithmParameters::OctetKeyPair(okp)) => {
                okp.curve == EllipticCurve::Ed25519
            }
            (Algorithm::ES256, AlgorithmParameters::EllipticCurve(ec)) => {
                ec.curve == EllipticCurve::P256
            }
            _ => false,
        };
        if !fits {
            return None;
        }
        // Only the public parameters are kept (a JWK could carry `d`, which
        // jsonwebtoken's types do not even read).
        let public = Jwk {
            common: CommonParameters::default(),
            algorithm: jwk.algorithm.clone(),
        };
        Self::from_parts(algorithm, public, jwk.common.key_id.clone()).ok()
    }
}

/// A JWK Set document (RFC 7517 §5) of `keys`, as the web-frontend publishes it.
pub fn jwks_document(keys: &[PublicKey]) -> String {
    let set = jsonwebtoken::jwk::JwkSet {
        keys: keys.iter().map(|key| key.jwk().clone()).collect(),
    };
    serde_json::to_string(&set).unwrap_or_default()
}

/// The keys of a JWK Set document usable with `algorithm`, at most
/// [`MAX_KEYS`]; the others (another algorithm, another use, unknown types)
/// are skipped. `Err` only when the document is not a JWK Set at all.
pub fn keys_from_jwks(algorithm: Algorithm, document: &[u8]) -> Result<Vec<PublicKey>, KeyError> {
    #[derive(Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document = serde_json::from_slice(document).map_err(|_| KeyError::BadJwks)?;
    Ok(document
        .keys
        .into_iter()
        // One key jsonwebtoken cannot read (RSA with odd members, a new
        // type) must not hide the others.
        .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
        .filter_map(|jwk| PublicKey::from_jwk(algorithm, &jwk))
        .take(MAX_KEYS)
        .collect())
}

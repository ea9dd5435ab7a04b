//! Why a key cannot be used, and the bounds on keys that it reports: the
//! modules that enforce a bound and the message that names it read the same
//! constant.

use crate::algorithm::Algorithm;

/// The smallest shared key accepted: 256 bits, as RFC 7518 asks of an HS256 key.
pub const MIN_SECRET_BYTES: usize = 32;

/// A key set holds at most this many keys: a kid-less token is tried against
/// each, so the bound bounds its cost.
pub const MAX_KEYS: usize = 8;

/// Why a key cannot be used.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum KeyError {
    #[error("the shared key must be at least {MIN_SECRET_BYTES} bytes, it has {0}")]
    SecretTooShort(usize),
    #[error(
        "jsonwebtoken has no usable crypto backend (enable exactly one of its `rust_crypto` and `aws_lc_rs` features)"
    )]
    NoCryptoBackend,
    #[error("HS256 has no key pairs: use a shared secret")]
    NotAsymmetric,
    #[error(
        "not a PEM public key for {0} (-----BEGIN PUBLIC KEY-----, {ty})",
        ty = key_type(*.0)
    )]
    BadPublicKey(Algorithm),
    #[error(
        "not a PEM private key for {0} (-----BEGIN PRIVATE KEY-----, {ty})",
        ty = key_type(*.0)
    )]
    BadPrivateKey(Algorithm),
    #[error("not a JWK Set (a JSON object with a `keys` array)")]
    BadJwks,
    #[error("more than {MAX_KEYS} keys")]
    TooManyKeys,
}

fn key_type(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::HS256 => "none",
        Algorithm::EdDSA => "Ed25519",
        Algorithm::ES256 => "P-256",
    }
}

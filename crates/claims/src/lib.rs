//! The token both services agree on: its payload, the one issuer and the one verifier.
//!
//! The web-frontend signs with [`TokenIssuer`], the socket-server checks with
//! [`TokenVerifier`]; both are built from the same [`KeySettings`], so the two
//! services cannot disagree on the algorithm, the key, `iss` or `aud`. This crate
//! does no I/O: the caller passes the current time.

mod error;
mod issue;
mod jws;
mod keys;
mod revocation;
mod verify;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub use error::{Invalid, VerifyError};
pub use issue::{IssueError, TokenIssuer};
pub use keys::{
    Algorithm, KeySet, MAX_KEYS, PrivateKey, PublicKey, SharedKey, SigningKey, jwks_document,
    keys_from_jwks,
};
pub use revocation::{
    MAX_NOTICE_BYTES, REVOCATION_CHANNEL, REVOCATION_TYP, REVOKED_KEY_PREFIX, Revocation,
    RevocationSigner, RevocationVerifier,
};
pub use verify::TokenVerifier;

/// The smallest shared key accepted: 256 bits, as RFC 7518 asks of an HS256 key.
pub const MIN_SECRET_BYTES: usize = 32;

/// Tokens longer than this are refused before any parsing (a real one is ~400 bytes).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// What both sides need to agree on to sign and check a token, in the
/// contract's default mode: one HS256 shared key.
#[derive(Clone, Debug)]
pub struct KeySettings {
    /// The HS256 shared key (at least [`MIN_SECRET_BYTES`]).
    pub secret: SecretString,
    /// `iss` written by the issuer and required by the verifier.
    pub issuer: String,
    /// `aud` written by the issuer and required by the verifier.
    pub audience: String,
    /// Lifetime of an issued token, in seconds.
    pub ttl_secs: u64,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
    pub leeway_secs: u64,
}

/// What both sides agree on besides the keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSettings {
    /// `iss` written by the issuer and required by the verifier.
    pub issuer: String,
    /// `aud` written by the issuer and required by the verifier.
    pub audience: String,
    /// Lifetime of an issued token, in seconds.
    pub ttl_secs: u64,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
    pub leeway_secs: u64,
}

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

impl KeySettings {
    /// The shared key, checked once, so that a bad key fails at start and not
    /// at the first token.
    pub fn shared_key(&self) -> Result<SharedKey, KeyError> {
        SharedKey::new(self.secret.expose_secret().as_bytes())
    }

    /// Everything but the key.
    pub fn token_settings(&self) -> TokenSettings {
        TokenSettings {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            ttl_secs: self.ttl_secs,
            leeway_secs: self.leeway_secs,
        }
    }
}

/// `user` as the article's tokens carry it: `{"username": …}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub username: String,
}

/// The payload of a connection token, as issued by the web-frontend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Claims {
    /// The username: the identity the socket server trusts.
    pub sub: String,
    /// The article's `{"username": …}`, kept for clients that read it.
    pub user: User,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    /// Unique per token.
    pub jti: String,
    /// The login session (opaque, random, never the cookie value): logging out
    /// revokes every token of this session.
    pub sid: String,
}

/// What the socket server keeps of a verified token: small on purpose, since
/// every connected socket holds one (the raw token is dropped after the check).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedClaims {
    /// The username (`sub`).
    pub username: String,
    /// `exp`, seconds since the Unix epoch.
    pub expires_at: i64,
    /// `iat`, seconds since the Unix epoch.
    pub issued_at: i64,
    /// `sid`, when the token has one (tokens minted elsewhere may not).
    pub session_id: Option<String>,
}

/// The current time as a JWT NumericDate (seconds since the Unix epoch).
///
/// The one place that reads the clock; everything else takes `now` as an argument.
pub fn unix_now() -> i64 {
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
}

/// Makes one token from raw parts without any checks. For tests that need a token
/// the issuer would never make (expired, wrong audience, missing claims); the
/// header is exactly the issuer's.
pub fn sign_raw_hs256(secret: &[u8], payload: &serde_json::Value) -> String {
    issue::sign_payload(secret, payload.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("signing a test token failed: {e}"))
}

/// As [`sign_raw_hs256`], with `key` and a header naming it by `kid` (for
/// tests of the asymmetric modes and of rotations).
pub fn sign_raw(key: &SigningKey, payload: &serde_json::Value) -> String {
    issue::sign_payload_with(key, payload.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("signing a test token failed: {e}"))
}

#[cfg(test)]
mod tests;

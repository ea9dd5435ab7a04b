//! The token both services agree on: its payload, the one issuer and the one verifier.
//!
//! The web-frontend signs with [`TokenIssuer`], the socket-server checks with
//! [`TokenVerifier`]; both are built from the same [`KeySettings`], so the two
//! services cannot disagree on the algorithm, the key, `iss` or `aud`. This crate
//! does no I/O: the caller passes the current time.

mod error;
mod issue;
mod jws;
mod revocation;
mod verify;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub use error::{Invalid, VerifyError};
pub use issue::{IssueError, TokenIssuer};
pub use revocation::{
    MAX_NOTICE_BYTES, REVOCATION_CHANNEL, REVOCATION_TYP, REVOKED_KEY_PREFIX, Revocation,
    RevocationSigner, RevocationVerifier,
};
pub use verify::TokenVerifier;

/// The smallest shared key accepted: 256 bits, as RFC 7518 asks of an HS256 key.
pub const MIN_SECRET_BYTES: usize = 32;

/// Tokens longer than this are refused before any parsing (a real one is ~400 bytes).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// What both sides need to agree on to sign and check a token.
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

/// Why a [`KeySettings`] cannot be used.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum KeyError {
    #[error("the shared key must be at least {MIN_SECRET_BYTES} bytes, it has {0}")]
    SecretTooShort(usize),
    #[error(
        "jsonwebtoken has no usable crypto backend (enable exactly one of its `rust_crypto` and `aws_lc_rs` features)"
    )]
    NoCryptoBackend,
}

impl KeySettings {
    /// Checks the key once, so that a bad key fails at start and not at the first token.
    fn checked_secret(&self) -> Result<&[u8], KeyError> {
        let secret = self.secret.expose_secret().as_bytes();
        if secret.len() < MIN_SECRET_BYTES {
            return Err(KeyError::SecretTooShort(secret.len()));
        }
        if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
            return Err(KeyError::NoCryptoBackend);
        }
        Ok(secret)
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

#[cfg(test)]
mod tests;

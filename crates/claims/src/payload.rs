//! The payload of a connection token: what is issued, what a verifier keeps,
//! the rules both sides agree on besides the keys, and the clock they are
//! judged by.

use serde::{Deserialize, Serialize};

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
    /// The rooms the user may join, as patterns (a name, or a prefix and a
    /// trailing `*`); absent when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rooms: Vec<String>,
}

/// A token names at most this many room patterns.
pub const MAX_ROOM_PATTERNS: usize = 100;

/// A room name has 1 to this many characters (a pattern one more, its `*`).
pub const MAX_ROOM_NAME_CHARS: usize = 100;

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
    /// `rooms`: the room patterns the token allows (none when absent).
    pub rooms: Vec<String>,
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

//! Signing: the web-frontend's side.

use crate::error::IssueError;
use crate::jws::{Signer, TOKEN_TYP};
use crate::keys::SigningKey;
use crate::payload::{Claims, TokenSettings, User};

/// Signs connection tokens.
pub struct TokenIssuer {
    signer: Signer,
    issuer: String,
    audience: String,
    ttl_secs: i64,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("algorithm", &self.signer.algorithm())
            .field("kid", &self.signer.kid())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// Signs with `key`: a shared secret (with `kid` only when told to
    /// announce it; without, the header is exactly the contract's
    /// `{"alg":"HS256","typ":"JWT"}`) or a private key (always with its `kid`).
    pub fn with_key(settings: &TokenSettings, key: &SigningKey) -> Self {
        Self {
            signer: Signer::new(key, TOKEN_TYP),
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl_secs: i64::try_from(settings.ttl_secs).unwrap_or(i64::MAX),
        }
    }

    /// The `kid` tokens carry, if any.
    pub fn kid(&self) -> Option<&str> {
        self.signer.kid()
    }

    /// The claims of a new token for `username` in login session `session_id`,
    /// issued at `now` (no rooms).
    pub fn claims_for(&self, username: &str, session_id: &str, now: i64) -> Claims {
        Claims {
            sub: username.to_owned(),
            user: User {
                username: username.to_owned(),
            },
            iat: now,
            exp: now.saturating_add(self.ttl_secs),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: uuid::Uuid::new_v4().simple().to_string(),
            sid: session_id.to_owned(),
            rooms: Vec::new(),
        }
    }

    /// A signed compact JWS for `username` in login session `session_id`, issued at `now`.
    pub fn issue(&self, username: &str, session_id: &str, now: i64) -> Result<String, IssueError> {
        self.sign(&self.claims_for(username, session_id, now))
    }

    /// As [`TokenIssuer::issue`], allowing the room patterns `rooms`.
    pub fn issue_with_rooms(
        &self,
        username: &str,
        session_id: &str,
        rooms: &[String],
        now: i64,
    ) -> Result<String, IssueError> {
        let mut claims = self.claims_for(username, session_id, now);
        claims.rooms = rooms.to_vec();
        self.sign(&claims)
    }

    /// The lifetime of the tokens this issuer signs, in seconds.
    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Signs the given claims as they are.
    pub fn sign(&self, claims: &Claims) -> Result<String, IssueError> {
        // Serializing a struct of strings and integers cannot fail.
        let payload = serde_json::to_vec(claims).unwrap_or_default();
        Ok(self.signer.sign(&payload)?)
    }
}

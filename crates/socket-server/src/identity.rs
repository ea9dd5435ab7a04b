//! Who a socket belongs to: what it keeps of its verified token.

use std::sync::Arc;

/// Who a socket belongs to, from its verified token. Kept in the socket's
/// extensions; small on purpose (the raw token is not kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) username: Arc<str>,
    /// The token's `exp`, seconds since the Unix epoch: the socket lives until
    /// then (+ leeway) unless a `reauth` moves it.
    pub(crate) expires_at: i64,
    /// The token's `sid`: logging out of that session ends the socket.
    pub(crate) session_id: Option<Arc<str>>,
    /// The token's `rooms` patterns (empty for most tokens: no allocation).
    pub(crate) rooms: Arc<[Box<str>]>,
}

impl Identity {
    pub(crate) fn from_claims(claims: claims::VerifiedClaims) -> Self {
        Self {
            username: Arc::from(claims.username),
            expires_at: claims.expires_at,
            session_id: claims.session_id.map(Arc::from),
            rooms: claims
                .rooms
                .into_iter()
                .map(String::into_boxed_str)
                .collect(),
        }
    }
}

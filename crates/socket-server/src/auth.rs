//! The one connect middleware: a socket is connected only with a valid token.

use std::sync::Arc;

use claims::VerifyError;
use socketioxide::extract::{SocketRef, State, TryData};

use crate::identity::Identity;
use crate::state::AppState;

/// A refused token. `Display` is what the client sees (`connect_error`, or
/// the `reauth` ack's `error`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthError {
    #[error("not valid token")]
    Missing,
    #[error(transparent)]
    Refused(#[from] VerifyError),
    /// Valid, but its login session has ended.
    #[error("token revoked")]
    Revoked,
    /// A `reauth` token for someone else than the socket's user.
    #[error("not valid token")]
    OtherUser,
    /// The user holds `socket.max_connections_per_user` sockets already.
    #[error("too many connections")]
    TooManyConnections,
}

impl AuthError {
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing token",
            AuthError::Refused(error) => error.reason(),
            AuthError::Revoked => "revoked",
            AuthError::OtherUser => "another user",
            AuthError::TooManyConnections => "too many connections",
        }
    }
}

/// Every check a token passes before it may open or extend a socket.
pub(crate) async fn check_token(state: &AppState, token: &str) -> Result<Identity, AuthError> {
    let claims = state.keys.verify(token).await?;
    if let Some(session_id) = &claims.session_id {
        state.revocations.synced_for(claims.issued_at).await;
        if state.revocations.is_revoked(session_id, claims::unix_now()) {
            return Err(AuthError::Revoked);
        }
    }
    Ok(Identity::from_claims(claims))
}

/// Reads the token (the `auth` payload first, then the `token` query parameter
/// of the article's client), verifies it and keeps the identity on the socket.
pub(crate) async fn authenticate(
    socket: SocketRef,
    State(state): State<Arc<AppState>>,
    TryData(auth): TryData<serde_json::Value>,
) -> Result<(), AuthError> {
    let result = match token_from_auth(auth.as_ref().ok())
        .or_else(|| token_from_query(socket.req_parts().uri.query()))
    {
        None => Err(AuthError::Missing),
        Some(token) => check_token(&state, &token).await,
    };
    let result = result.and_then(|identity| {
        let slot = state
            .limits
            .acquire(&identity.username)
            .ok_or(AuthError::TooManyConnections)?;
        Ok((identity, slot))
    });
    match result {
        Ok((identity, slot)) => {
            crate::metrics::bump(&state.metrics.handshakes_accepted);
            // The token decided; only now may a `pid` bring anything back.
            crate::resume::on_handshake(&state, &socket, &identity, auth.as_ref().ok()).await;
            socket.extensions.insert(identity);
            socket.extensions.insert(Arc::new(slot));
            Ok(())
        }
        Err(error) => {
            state.metrics.refused(error.reason());
            // Never the token itself: only why it was refused.
            tracing::debug!(sid = %socket.id, reason = error.reason(), "handshake refused");
            Err(error)
        }
    }
}

/// `{"token": "…"}` with a non-empty string; anything else means "look at the query".
pub(crate) fn token_from_auth(auth: Option<&serde_json::Value>) -> Option<String> {
    auth?
        .get("token")?
        .as_str()
        .filter(|token| !token.is_empty())
        .map(str::to_owned)
}

fn token_from_query(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(name, _)| name == "token")
        .map(|(_, token)| token.into_owned())
        .filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_auth_payload_wins_when_it_holds_a_non_empty_string() {
        assert_eq!(
            token_from_auth(Some(&json!({"token": "a.b.c"}))),
            Some("a.b.c".into())
        );
        assert_eq!(token_from_auth(Some(&json!({"token": ""}))), None);
        assert_eq!(token_from_auth(Some(&json!({"token": 42}))), None);
        assert_eq!(token_from_auth(Some(&json!({"other": "x"}))), None);
        assert_eq!(token_from_auth(Some(&json!("a.b.c"))), None);
        assert_eq!(token_from_auth(None), None);
    }

    fn json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            ".{0,40}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(
                    prop_oneof![Just("token".to_owned()), ".{0,10}"],
                    inner,
                    0..8
                )
                .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Whatever a client sends as its `auth` payload (or `reauth`
        /// argument): no panic, and a token only from `{"token": "<non-empty>"}`.
        #[test]
        fn any_auth_payload_is_read_safely(payload in json()) {
            let expected = payload
                .as_object()
                .and_then(|object| object.get("token"))
                .and_then(serde_json::Value::as_str)
                .filter(|token| !token.is_empty())
                .map(str::to_owned);
            proptest::prop_assert_eq!(token_from_auth(Some(&payload)), expected);
        }

        /// Whatever the query string: no panic, never an empty token.
        #[test]
        fn any_query_is_read_safely(query in ".{0,200}") {
            if let Some(token) = token_from_query(Some(&query)) {
                proptest::prop_assert!(!token.is_empty());
            }
        }
    }

    #[test]
    fn the_query_token_is_decoded() {
        assert_eq!(
            token_from_query(Some("EIO=4&transport=polling&token=a.b.c")),
            Some("a.b.c".into())
        );
        assert_eq!(
            token_from_query(Some("token=a%2Eb.c&token=second")),
            Some("a.b.c".into())
        );
        assert_eq!(token_from_query(Some("EIO=4&token=")), None);
        assert_eq!(token_from_query(Some("EIO=4")), None);
        assert_eq!(token_from_query(None), None);
    }
}

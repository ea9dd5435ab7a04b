//! Rooms whose permissions travel in the token: a socket joins `room:NAME`
//! when NAME matches one of its token's `rooms` patterns (a name, or a prefix
//! and a trailing `*`), leaves at will, and leaves at once the rooms a
//! narrower token (`reauth`) no longer allows. The server decides with the
//! token alone — the application decided who may join what when it issued it.

use std::sync::Arc;

use serde_json::json;
use socketioxide::extract::{AckSender, Extension, SocketRef, State, TryData};

use crate::identity::Identity;
use crate::state::AppState;
use crate::targets::{allowed, joined, room, valid_name};

/// What a refused `join` (or `leave`) is told.
const FORBIDDEN: &str = "forbidden";
const TOO_MANY: &str = "too many rooms";

/// `{"room": NAME}`, the one argument of `join` and `leave`.
fn name_of<'a>(payload: Result<&'a serde_json::Value, &impl std::fmt::Debug>) -> Option<&'a str> {
    payload
        .ok()?
        .get("room")?
        .as_str()
        .filter(|name| valid_name(name))
}

/// `join {"room": NAME}` with an ack.
pub(crate) async fn join(
    socket: SocketRef,
    State(state): State<Arc<AppState>>,
    Extension(identity): Extension<Identity>,
    TryData(payload): TryData<serde_json::Value>,
    ack: AckSender,
) {
    let answer = match name_of(payload.as_ref()) {
        Some(name) if allowed(&identity.rooms, name) => {
            let _held = state.membership.lock(&socket);
            let rooms = joined(&socket);
            if rooms.iter().any(|joined| joined == name) {
                Ok(())
            } else if rooms.len() >= state.max_rooms_per_socket {
                Err(TOO_MANY)
            } else {
                socket.join(room(name));
                Ok(())
            }
        }
        _ => Err(FORBIDDEN),
    };
    if let Err(error) = answer {
        crate::metrics::bump(&state.metrics.joins_refused);
        tracing::debug!(sid = %socket.id, error, "join refused");
    }
    let _ = ack.send(&reply(answer));
    if answer.is_ok() {
        // A recovering socket's session names its rooms.
        crate::resume::save(&state, &socket).await;
    }
}

/// `leave {"room": NAME}` with an ack: `{"ok": true}` for any name (one no
/// socket can be in leaves nothing, and never a `user:` or `session:` room).
pub(crate) async fn leave(
    socket: SocketRef,
    State(state): State<Arc<AppState>>,
    TryData(payload): TryData<serde_json::Value>,
    ack: AckSender,
) {
    let name = payload
        .as_ref()
        .ok()
        .and_then(|payload| payload.get("room")?.as_str());
    let answer = match name {
        Some(name) => {
            if valid_name(name) {
                socket.leave(room(name));
            }
            Ok(())
        }
        None => Err(FORBIDDEN),
    };
    let _ = ack.send(&reply(answer));
    if answer.is_ok() {
        crate::resume::save(&state, &socket).await;
    }
}

/// After a successful `reauth`: the rooms the fresh token no longer allows
/// are left at once.
pub(crate) fn narrow(socket: &SocketRef, patterns: &[Box<str>]) {
    for name in joined(socket) {
        if !allowed(patterns, &name) {
            socket.leave(room(&name));
        }
    }
}

fn reply(answer: Result<(), &str>) -> serde_json::Value {
    match answer {
        Ok(()) => json!({ "ok": true }),
        Err(error) => json!({ "ok": false, "error": error }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(list: &[&str]) -> Vec<Box<str>> {
        list.iter().map(|p| Box::from(*p)).collect()
    }

    #[test]
    fn a_pattern_is_a_name_or_a_prefix_and_a_star() {
        let ps = patterns(&["team:42", "org:7:*"]);
        assert!(allowed(&ps, "team:42"));
        assert!(!allowed(&ps, "team:420"));
        assert!(!allowed(&ps, "team:4"));
        assert!(allowed(&ps, "org:7:x"));
        assert!(allowed(&ps, "org:7:"));
        assert!(allowed(&ps, "org:7:x:y"));
        assert!(!allowed(&ps, "org:70"));
        assert!(!allowed(&ps, "org:7"));
        assert!(allowed(&patterns(&["*"]), "anything"));
        assert!(!allowed(&[], "team:42"));
        // A `*` inside a pattern is a character, not a wildcard.
        assert!(allowed(&patterns(&["a*b"]), "a*b"));
        assert!(!allowed(&patterns(&["a*b"]), "axb"));
    }

    #[test]
    fn names_are_1_to_100_characters_and_never_reserved() {
        assert!(valid_name("team:42"));
        assert!(valid_name(&"é".repeat(100)));
        assert!(!valid_name(&"é".repeat(101)));
        assert!(!valid_name(""));
        assert!(!valid_name("user:gonzalo"));
        assert!(!valid_name("session:abc"));
        assert!(!valid_name("tab\there"));
        assert!(valid_name("room:x"), "room:x is the room room:room:x");
    }
}

//! Every socket event, registered in one place.

use std::sync::Arc;

use serde_json::json;
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Extension, SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler as _;

use crate::auth::{AuthError, authenticate, check_token, token_from_auth};
use crate::identity::Identity;
use crate::relay::Queued;
use crate::state::AppState;
use crate::targets::{session_room, user_room};

/// The whole socket surface, for both modes: the auth middleware, then the
/// events of an authenticated socket. What crosses nodes goes through the
/// backplane, never through the Socket.IO adapter (the in-memory one).
pub(crate) fn register(io: &SocketIo) {
    io.ns("/", on_connect.with(authenticate));
}

async fn on_connect(
    socket: SocketRef,
    State(state): State<Arc<AppState>>,
    Extension(identity): Extension<Identity>,
) {
    socket.join(user_room(&identity.username));
    if let Some(session_id) = &identity.session_id {
        socket.join(session_room(session_id));
    }
    state.expiry.schedule(socket.id, identity.expires_at);
    state.backplane.joined(&identity.username);
    socket.extensions.insert(state.relay.clone());
    state
        .metrics
        .connected
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::debug!(sid = %socket.id, username = %identity.username, "socket connected");
    let _ = socket.emit("welcome", &json!({ "username": &*identity.username }));
    socket.on("message", relay_message);
    socket.on("reauth", reauth);
    socket.on("join", crate::rooms::join);
    socket.on("leave", crate::rooms::leave);
    socket.on_disconnect(forget);
    // A recovered socket: its rooms and what it missed, before live events.
    crate::resume::on_connected(&state, &socket).await;
}

/// A socket is gone: its deadline, its place among its user's sockets, its
/// presence.
async fn forget(
    socket: SocketRef,
    State(state): State<Arc<AppState>>,
    reason: socketioxide::socket::DisconnectReason,
) {
    state.expiry.cancel(socket.id);
    crate::resume::on_disconnect(&state, &socket, reason).await;
    if let Some(identity) = socket.extensions.get::<Identity>() {
        state.backplane.left(&identity.username);
    }
    // The user's place back at once (it would also come back when the socket is dropped).
    socket.extensions.remove::<Arc<crate::limits::Slot>>();
    state
        .metrics
        .connected
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
}

/// The text was queued for the ordered broadcast by its extractor
/// ([`crate::relay::Queued`]), in arrival order; nothing is left to do here.
async fn relay_message(_: Queued) {}

/// In-band refresh: a fresh token of the same user moves the socket's
/// deadline (and its session) without a reconnection. Anything else changes
/// nothing and is answered with the refusal.
async fn reauth(
    socket: SocketRef,
    State(state): State<Arc<AppState>>,
    Extension(current): Extension<Identity>,
    TryData(payload): TryData<serde_json::Value>,
    ack: AckSender,
) {
    let result = match token_from_auth(payload.as_ref().ok()) {
        None => Err(AuthError::Missing),
        Some(token) => check_token(&state, &token).await.and_then(|fresh| {
            if fresh.username == current.username {
                Ok(fresh)
            } else {
                Err(AuthError::OtherUser)
            }
        }),
    };
    let reply = match result {
        Ok(fresh) => {
            if fresh.session_id != current.session_id {
                if let Some(old) = &current.session_id {
                    socket.leave(session_room(old));
                }
                if let Some(new) = &fresh.session_id {
                    socket.join(session_room(new));
                }
            }
            // A narrower token: the rooms it no longer allows are left at once.
            crate::rooms::narrow(&socket, &fresh.rooms);
            crate::metrics::bump(&state.metrics.reauths_ok);
            let expires_at = fresh.expires_at;
            socket.extensions.insert(fresh);
            state.expiry.schedule(socket.id, expires_at);
            json!({ "ok": true, "exp": expires_at })
        }
        Err(error) => {
            crate::metrics::bump(&state.metrics.reauths_refused);
            tracing::debug!(sid = %socket.id, reason = error.reason(), "reauth refused");
            json!({ "ok": false, "error": error.to_string() })
        }
    };
    let refreshed = reply["ok"] == true;
    let _ = ack.send(&reply);
    if refreshed {
        // Its session, rooms and lifetime as they are now.
        crate::resume::save(&state, &socket).await;
    }
}

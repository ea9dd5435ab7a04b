//! Every socket event, registered in one place.

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{Data, Extension, SocketRef};
use socketioxide::handler::ConnectHandler as _;

use crate::Identity;
use crate::auth::authenticate;

/// The longest `message` text relayed, in UTF-8 bytes.
pub(crate) const MAX_MESSAGE_BYTES: usize = 4096;

/// The whole socket surface: the auth middleware, then the events of an
/// authenticated socket. The handlers are generic over the adapter, so the
/// Redis adapter of the scale-out mode reuses them.
pub(crate) fn register(io: &SocketIo) {
    io.ns("/", on_connect.with(authenticate));
}

async fn on_connect<A: Adapter>(socket: SocketRef<A>, Extension(identity): Extension<Identity>) {
    socket.join(user_room(&identity.username));
    tracing::debug!(sid = %socket.id, username = %identity.username, "socket connected");
    let _ = socket.emit(
        "welcome",
        &serde_json::json!({ "username": &*identity.username }),
    );
    socket.on("message", relay_message);
}

/// The room holding every socket of one user.
pub(crate) fn user_room(username: &str) -> String {
    format!("user:{username}")
}

/// Relays a chat line to every connected socket. `from` is the token's
/// identity, never anything the client sent; a payload that is not a string
/// (the first argument) or is too long is ignored.
async fn relay_message<A: Adapter>(
    io: SocketIo<A>,
    Extension(identity): Extension<Identity>,
    Data(text): Data<String>,
) {
    if text.len() > MAX_MESSAGE_BYTES {
        return;
    }
    let message = serde_json::json!({ "from": &*identity.username, "text": text });
    if let Err(error) = io.emit("message", &message).await {
        tracing::warn!(%error, "message broadcast failed");
    }
}

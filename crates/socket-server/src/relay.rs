//! `message` relaying, in order.
//!
//! socketioxide runs each event handler as its own task, so two messages sent
//! back to back could be broadcast in either order. Extractors, though, run in
//! arrival order on the socket's receive loop: this one takes the text there
//! and queues it, and one task publishes the queue in order, through the
//! backplane, to every socket on every node.

use std::sync::Arc;

use serde_json::json;
use serde_json::value::to_raw_value;
use socketioxide::adapter::LocalAdapter;
use socketioxide::extract::Data;
use socketioxide::handler::{FromMessageParts, Value};
use socketioxide::socket::Socket;
use tokio::sync::mpsc;

use crate::backplane::Backplane;
use crate::bus::{Action, Audience, Envelope, Reach};
use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::node::Node;

/// The longest `message` text relayed, in UTF-8 bytes.
pub(crate) const MAX_MESSAGE_BYTES: usize = 4096;

/// Messages waiting for the relay task; past this, new ones are dropped (and
/// logged) rather than letting one flooding client grow memory without bound.
const QUEUE: usize = 64 * 1024;

/// One chat line, its sender taken from the socket's token; for everyone, or
/// for the sockets of one room the sender is in.
#[derive(Debug)]
pub(crate) struct Relay {
    from: Arc<str>,
    room: Option<String>,
    text: String,
}

/// The queue's sending end, kept in every socket's extensions.
#[derive(Clone, Debug)]
pub(crate) struct RelayQueue(mpsc::Sender<Relay>);

pub(crate) fn queue() -> (RelayQueue, mpsc::Receiver<Relay>) {
    let (sender, receiver) = mpsc::channel(QUEUE);
    (RelayQueue(sender), receiver)
}

/// Publishes every queued line to every connected socket, in order.
pub(crate) async fn run(
    node: Node,
    backplane: Backplane,
    mut queue: mpsc::Receiver<Relay>,
    metrics: Arc<Metrics>,
) {
    while let Some(Relay { from, room, text }) = queue.recv().await {
        let (to, data) = match room {
            None => (Audience::Everyone, json!({ "from": &*from, "text": text })),
            Some(name) => (
                Audience::Rooms(vec![crate::targets::room(&name)]),
                json!({ "from": &*from, "room": name, "text": text }),
            ),
        };
        let Ok(data) = to_raw_value(&data) else {
            continue;
        };
        let envelope = Envelope {
            to,
            action: Action::Emit {
                event: "message".to_owned(),
                data,
            },
            offset: None,
        };
        match backplane.broadcast(&node, &envelope).await {
            Reach::Everywhere => crate::metrics::bump(&metrics.messages_relayed),
            Reach::ThisNodeOnly => crate::metrics::bump(&metrics.messages_relayed_locally),
        }
    }
}

/// The `message` event's one extractor: a string first argument (up to
/// [`MAX_MESSAGE_BYTES`]) is queued for everyone; `{"room": NAME, "text":
/// TEXT}` for the room, if the sender has joined it; anything else is ignored.
#[derive(Debug)]
pub(crate) struct Queued;

/// `message`'s first argument, in either form.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Line {
    Everyone(Text),
    Room { room: Text, text: Text },
}

/// A JSON string, and only that: `untagged` buffers the argument first, and a
/// plain `String` would then also take a binary attachment whose bytes are
/// UTF-8 — binary is not a string, and is ignored.
struct Text(String);

impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Text, E> {
                Ok(Text(text.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Text, E> {
                Ok(Text(text))
            }
        }
        deserializer.deserialize_string(Visitor)
    }
}

/// Why a `message` was not relayed (socketioxide only logs it).
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotRelayed {
    #[error("not a string, nor a room and a text")]
    NotAString,
    #[error("not in that room")]
    NotInRoom,
    #[error("longer than {MAX_MESSAGE_BYTES} bytes")]
    TooLong,
    #[error("the socket has no identity or queue")]
    NotAuthenticated,
    #[error("the relay queue is full")]
    QueueFull,
}

impl FromMessageParts<LocalAdapter> for Queued {
    type Error = NotRelayed;

    fn from_message_parts(
        socket: &Arc<Socket>,
        value: &mut Value,
        ack: &Option<i64>,
    ) -> Result<Self, NotRelayed> {
        let Data(line) = Data::<Line>::from_message_parts(socket, value, ack)
            .map_err(|_| NotRelayed::NotAString)?;
        let (room, text) = match line {
            Line::Everyone(Text(text)) => (None, text),
            Line::Room {
                room: Text(room),
                text: Text(text),
            } => {
                let joined = socket
                    .rooms()
                    .iter()
                    .any(|joined| joined.strip_prefix(crate::targets::ROOM_PREFIX) == Some(&room));
                if !joined {
                    return Err(NotRelayed::NotInRoom);
                }
                (Some(room), text)
            }
        };
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(NotRelayed::TooLong);
        }
        let (Some(identity), Some(RelayQueue(queue))) = (
            socket.extensions.get::<Identity>(),
            socket.extensions.get::<RelayQueue>(),
        ) else {
            return Err(NotRelayed::NotAuthenticated);
        };
        queue
            .try_send(Relay {
                from: identity.username,
                room,
                text,
            })
            .map_err(|_| {
                tracing::warn!("relay queue full: a message was dropped");
                NotRelayed::QueueFull
            })?;
        Ok(Queued)
    }
}

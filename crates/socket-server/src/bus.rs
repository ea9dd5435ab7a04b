//! What nodes hand each other: an event for a set of sockets (an
//! [`Envelope`]), and how a node delivers one to the sockets it holds.
//!
//! Every delivery to clients goes through here, whichever node or mode it
//! comes from: the backplane carries envelopes between nodes, each node
//! delivers to its own sockets.

use serde::{Deserialize, Serialize};
use socketioxide::SocketIo;

/// Whom an envelope is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Audience {
    /// Every socket.
    Everyone,
    /// Every socket in any of these rooms, each once.
    Rooms(Vec<String>),
}

/// One event for a set of sockets, as it travels between nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub(crate) to: Audience,
    pub(crate) event: String,
    pub(crate) data: serde_json::Value,
}

/// Where a published envelope went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Every node (or the only one).
    Everywhere,
    /// This node's sockets only: the other nodes could not be reached.
    ThisNodeOnly,
}

/// Why some sockets of this node did not get an envelope (a closed or
/// overflowing socket); the others got it.
#[derive(Debug, thiserror::Error)]
#[error("delivery to some sockets failed: {0}")]
pub(crate) struct NotDelivered(#[from] socketioxide::BroadcastError);

/// Emits the envelope to the sockets this node holds.
pub(crate) async fn deliver_locally(
    io: &SocketIo,
    envelope: &Envelope,
) -> Result<(), NotDelivered> {
    // `of`: after a shutdown closed the namespace there is no one to tell.
    let Some(namespace) = io.of("/") else {
        return Ok(());
    };
    let sent = match &envelope.to {
        Audience::Everyone => namespace.emit(&envelope.event, &envelope.data).await,
        Audience::Rooms(rooms) => {
            namespace
                .to(rooms.clone())
                .emit(&envelope.event, &envelope.data)
                .await
        }
    };
    Ok(sent?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_survives_the_wire() {
        let envelope = Envelope {
            to: Audience::Rooms(vec!["user:gonzalo".into(), "session:abc".into()]),
            event: "message".into(),
            data: serde_json::json!({"from": "gonzalo", "text": "hi"}),
        };
        let wire = serde_json::to_vec(&envelope).expect("serializes");
        assert_eq!(
            serde_json::from_slice::<Envelope>(&wire).expect("parses"),
            envelope
        );
        let everyone = serde_json::to_string(&Audience::Everyone).expect("serializes");
        assert_eq!(everyone, r#""everyone""#);
    }
}

//! What nodes hand each other — an [`Envelope`]: an action for a set of
//! sockets — and the two things a node does to the sockets it holds: emit an
//! event to them, or end them.
//!
//! Every delivery to clients goes through here, whichever node or mode it
//! comes from: the backplane carries envelopes between nodes, each node
//! carries them out on its own sockets.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use socketioxide::SocketIo;
use socketioxide::operators::BroadcastOperators;

use crate::recovery::{RECOVERY_ROOM, Recoverable};
use crate::targets::Target;

/// Whom an envelope is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Audience {
    /// Every socket.
    Everyone,
    /// Every socket in any of these rooms, each once.
    Rooms(Vec<String>),
}

impl Audience {
    /// The sockets of any of `targets`: everyone as soon as one target is.
    pub(crate) fn of(targets: &[Target]) -> Self {
        let mut rooms = Vec::with_capacity(targets.len());
        for target in targets {
            match target {
                Target::Everyone => return Self::Everyone,
                Target::Room(room) => {
                    if !rooms.contains(room) {
                        rooms.push(room.clone());
                    }
                }
            }
        }
        Self::Rooms(rooms)
    }
}

/// What to do to the sockets of an audience.
#[derive(Clone, Debug, Serialize, Deserialize)]
// Externally tagged, and no `flatten`: serde would buffer the content, which
// `RawValue` cannot come through.
#[serde(rename_all = "lowercase")]
pub(crate) enum Action {
    /// Emit `event` with `data` as its one argument.
    Emit { event: String, data: Box<RawValue> },
    /// `session_ended` with this reason, then a disconnect (the tokens stay
    /// valid: a client may come back).
    End { reason: String },
    /// Session `sid` is revoked: its tokens are refused until `until`, and its
    /// sockets end as in a logout.
    Revoke { sid: String, until: i64 },
    /// Nothing is done: each node tells who its sockets of the audience are.
    Survey,
}

/// Users a survey names, at most; past it the answer says it was cut.
pub(crate) const MAX_SURVEYED_USERS: usize = 1000;

/// What carrying out an envelope came to on one node (or, summed, on all).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Outcome {
    /// The sockets of the audience.
    pub(crate) sockets: u64,
    /// A survey's users, sorted, at most [`MAX_SURVEYED_USERS`] + 1 (one more
    /// tells that the list was cut).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) users: Vec<String>,
}

impl Outcome {
    /// Adds another node's outcome to this one.
    pub(crate) fn add(&mut self, other: Outcome) {
        self.sockets += other.sockets;
        if !other.users.is_empty() {
            let mut users: std::collections::BTreeSet<String> = self.users.drain(..).collect();
            users.extend(other.users);
            self.users = users.into_iter().take(MAX_SURVEYED_USERS + 1).collect();
        }
    }
}

/// One action for a set of sockets, as it travels between nodes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub(crate) to: Audience,
    pub(crate) action: Action,
    /// With recovery: the event's place in the history (recovering sockets
    /// get it as the event's last argument).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) offset: Option<u64>,
}

impl Audience {
    /// The history targets an emit to this audience is kept under.
    pub(crate) fn history_targets(&self) -> Vec<String> {
        match self {
            Audience::Everyone => vec!["everyone".to_owned()],
            Audience::Rooms(rooms) => rooms.clone(),
        }
    }
}

/// Where a published envelope went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Every node (or the only one).
    Everywhere,
    /// This node's sockets only: the other nodes could not be reached.
    ThisNodeOnly,
}

/// The sockets of `to` on this node (`None` once a shutdown closed the
/// namespace: there is no one to tell).
fn sockets_of(io: &SocketIo, to: &Audience) -> Option<BroadcastOperators> {
    let namespace = io.of("/")?;
    Some(match to {
        Audience::Everyone => namespace,
        Audience::Rooms(rooms) => namespace.to(rooms.clone()),
    })
}

/// Emits `event` with `data` to the sockets of `to` that this node holds;
/// returns how many there were.
pub(crate) async fn emit_locally(
    io: &SocketIo,
    to: &Audience,
    event: &str,
    data: &RawValue,
    offset: Option<u64>,
) -> u64 {
    let Some(sockets) = sockets_of(io, to) else {
        return 0;
    };
    let matched = sockets.clone().sockets();
    let count = matched.len() as u64;
    if count == 0 {
        return 0;
    }
    let plain = match offset {
        None => sockets,
        Some(offset) => {
            // Recovering sockets get the offset too, one by one, in order.
            for socket in &matched {
                if let Some(recoverable) = socket.extensions.get::<Recoverable>() {
                    recoverable.deliver(socket, offset, event, data);
                }
            }
            sockets.except(RECOVERY_ROOM)
        }
    };
    if let Err(error) = plain.emit(event, data).await {
        // A socket that closed or overflows; the others got it.
        tracing::debug!(%error, %event, "delivery to some sockets failed");
    }
    count
}

/// Who the sockets of `to` that this node holds are: their count, and their
/// users (sorted, at most [`MAX_SURVEYED_USERS`] + 1).
pub(crate) fn survey_locally(io: &SocketIo, to: &Audience) -> Outcome {
    let Some(sockets) = sockets_of(io, to) else {
        return Outcome::default();
    };
    let sockets = sockets.sockets();
    let mut users = std::collections::BTreeSet::new();
    for socket in &sockets {
        if let Some(identity) = socket.extensions.get::<crate::identity::Identity>() {
            users.insert(identity.username.to_string());
        }
    }
    Outcome {
        sockets: sockets.len() as u64,
        users: users.into_iter().take(MAX_SURVEYED_USERS + 1).collect(),
    }
}

/// Ends the sockets of `to` that this node holds: `session_ended` with
/// `reason`, then a disconnect. Returns how many there were.
pub(crate) async fn end_locally(io: &SocketIo, to: &Audience, reason: &str) -> u64 {
    let Some(sockets) = sockets_of(io, to) else {
        return 0;
    };
    let count = sockets.clone().sockets().len() as u64;
    if count == 0 {
        return 0;
    }
    let reason = serde_json::json!({ "reason": reason });
    if let Err(error) = sockets.clone().emit("session_ended", &reason).await {
        tracing::warn!(%error, "session_ended broadcast failed");
    }
    if let Err(error) = sockets.disconnect().await {
        tracing::warn!(%error, "disconnecting ended sockets failed");
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_survives_the_wire() {
        let envelope = Envelope {
            to: Audience::Rooms(vec!["user:gonzalo".into(), "session:abc".into()]),
            action: Action::Emit {
                event: "message".into(),
                data: RawValue::from_string(r#"{"from":"gonzalo","text":"hi"}"#.into())
                    .expect("json"),
            },
            offset: None,
        };
        let wire = serde_json::to_string(&envelope).expect("serializes");
        assert_eq!(
            wire,
            r#"{"to":{"rooms":["user:gonzalo","session:abc"]},"action":{"emit":{"event":"message","data":{"from":"gonzalo","text":"hi"}}}}"#
        );
        let back: Envelope = serde_json::from_str(&wire).expect("parses");
        assert_eq!(serde_json::to_string(&back).expect("serializes"), wire);
        let revoke = Envelope {
            to: Audience::Everyone,
            action: Action::Revoke {
                sid: "s".into(),
                until: 7,
            },
            offset: None,
        };
        assert_eq!(
            serde_json::to_string(&revoke).expect("serializes"),
            r#"{"to":"everyone","action":{"revoke":{"sid":"s","until":7}}}"#
        );
    }

    #[test]
    fn an_audience_names_each_room_once_and_everyone_wins() {
        let user = Target::Room("user:a".into());
        let session = Target::Room("session:s".into());
        assert_eq!(
            Audience::of(&[user.clone(), session.clone(), user.clone()]),
            Audience::Rooms(vec!["user:a".into(), "session:s".into()])
        );
        assert_eq!(
            Audience::of(&[user, Target::Everyone, session]),
            Audience::Everyone
        );
    }
}

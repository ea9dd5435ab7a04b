//! Whom an event is for. Every socket sits in rooms named by who it is —
//! `user:NAME` and `session:SID` — and in the `room:NAME` rooms it joined, so
//! a target is a room name, or everyone.

use std::fmt;

use socketioxide::extract::SocketRef;

/// The longest name after a target's prefix, in bytes.
pub(crate) const MAX_TARGET_NAME_BYTES: usize = 256;
/// The longest room name, in characters (the contract's `room:NAME`).
pub(crate) const MAX_ROOM_CHARS: usize = 100;

/// The room holding every socket of one user.
pub(crate) fn user_room(username: &str) -> String {
    format!("user:{username}")
}

/// The room holding every socket of one login session.
pub(crate) fn session_room(session_id: &str) -> String {
    format!("session:{session_id}")
}

/// One target of the server API: `user:USERNAME`, `session:SID`,
/// `room:NAME` or `everyone`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Everyone,
    /// A room by its full name (`user:…`, `session:…` or `room:…`).
    Room(String),
}

/// Why a target was refused (the API's 400 says it, naming the field).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BadTarget {
    #[error("{0:?} is not a target (user:NAME, session:SID, room:NAME or everyone)")]
    Unknown(Shown),
    #[error("{0:?} names no one: the part after the prefix is empty")]
    Empty(Shown),
    #[error("{0:?}: the name is too long")]
    TooLong(Shown),
    #[error("{0:?}: the name holds a control character")]
    Control(Shown),
}

/// A client's string in an error: at most 64 characters of it.
#[derive(PartialEq, Eq)]
pub(crate) struct Shown(String);

impl fmt::Debug for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Shown {
    pub(crate) fn new(text: &str) -> Self {
        let mut shown: String = text.chars().take(64).collect();
        if shown.len() < text.len() {
            shown.push('…');
        }
        Self(shown)
    }
}

impl Target {
    pub(crate) fn parse(text: &str) -> Result<Self, BadTarget> {
        if text == "everyone" {
            return Ok(Self::Everyone);
        }
        let name = ["user:", "session:", "room:"]
            .iter()
            .find_map(|prefix| text.strip_prefix(prefix))
            .ok_or_else(|| BadTarget::Unknown(Shown::new(text)))?;
        if name.is_empty() {
            return Err(BadTarget::Empty(Shown::new(text)));
        }
        let too_long = if text.starts_with("room:") {
            name.chars().count() > MAX_ROOM_CHARS
        } else {
            name.len() > MAX_TARGET_NAME_BYTES
        };
        if too_long {
            return Err(BadTarget::TooLong(Shown::new(text)));
        }
        if name.chars().any(char::is_control) {
            return Err(BadTarget::Control(Shown::new(text)));
        }
        Ok(Self::Room(text.to_owned()))
    }

    /// The room name a `room:NAME` target names.
    pub(crate) fn room(&self) -> Option<&str> {
        match self {
            Self::Room(room) => room.strip_prefix("room:"),
            Self::Everyone => None,
        }
    }

    /// The user a `user:NAME` target names.
    pub(crate) fn user(&self) -> Option<&str> {
        match self {
            Self::Room(room) => room.strip_prefix("user:"),
            Self::Everyone => None,
        }
    }
}

/// The prefix of the rooms sockets join by name (the others are `user:` and
/// `session:`, joined by who the socket is).
pub(crate) const ROOM_PREFIX: &str = "room:";

/// The room `name` names.
pub(crate) fn room(name: &str) -> String {
    format!("{ROOM_PREFIX}{name}")
}

/// A name a socket may ask for: 1 to 100 characters, no control character,
/// and never one of the rooms sockets are in by who they are.
pub(crate) fn valid_name(name: &str) -> bool {
    let chars = name.chars().count();
    (1..=claims::MAX_ROOM_NAME_CHARS).contains(&chars)
        && !name.chars().any(char::is_control)
        && !name.starts_with("user:")
        && !name.starts_with("session:")
}

/// Whether `patterns` allow room `name`: one is the name itself, or a prefix
/// of it followed by `*` (`org:7:*` allows `org:7:x`, not `org:70`).
pub(crate) fn allowed(patterns: &[Box<str>], name: &str) -> bool {
    patterns
        .iter()
        .any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => **pattern == *name,
        })
}

/// The room names a socket has joined (its `room:` rooms, prefix off).
pub(crate) fn joined(socket: &SocketRef) -> Vec<String> {
    socket
        .rooms()
        .into_iter()
        .filter_map(|room| room.strip_prefix(ROOM_PREFIX).map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_rooms_or_everyone() {
        assert_eq!(Target::parse("everyone"), Ok(Target::Everyone));
        for room in ["user:gonzalo", "session:abc", "room:team:42", "user:a b"] {
            assert_eq!(Target::parse(room), Ok(Target::Room(room.to_owned())));
        }
        assert_eq!(
            Target::parse("user:gonzalo").expect("valid").user(),
            Some("gonzalo")
        );
        assert_eq!(Target::parse("room:x").expect("valid").user(), None);
    }

    #[test]
    fn malformed_targets_are_refused_with_a_short_echo() {
        for bad in ["", "Everyone", "users:x", "team:1", "user", "gonzalo"] {
            assert!(
                matches!(Target::parse(bad), Err(BadTarget::Unknown(_))),
                "{bad:?}"
            );
        }
        for empty in ["user:", "session:", "room:"] {
            assert!(matches!(Target::parse(empty), Err(BadTarget::Empty(_))));
        }
        assert!(matches!(
            Target::parse(&format!("room:{}", "é".repeat(101))),
            Err(BadTarget::TooLong(_))
        ));
        assert!(Target::parse(&format!("room:{}", "é".repeat(100))).is_ok());
        assert!(matches!(
            Target::parse(&format!("user:{}", "a".repeat(257))),
            Err(BadTarget::TooLong(_))
        ));
        assert!(matches!(
            Target::parse("user:a\u{0}b"),
            Err(BadTarget::Control(_))
        ));
        let long = format!("x{}", "y".repeat(500));
        let message = Target::parse(&long).expect_err("unknown").to_string();
        assert!(message.len() < 160, "{message}");
    }
}

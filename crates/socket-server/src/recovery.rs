//! Socket.IO connection state recovery, as socket.io 4.6+ servers do it: a
//! socket that opts in (`"recovery": true` in its `auth`) gets a private
//! session id (`pid`) in the CONNECT answer and an offset as the last argument
//! of every event sent to it through the backplane (the server API,
//! `message`, room messages). A client that comes back in time with a fresh,
//! valid token of the same user, its `pid` and its last offset gets the same
//! socket id, its rooms, and every event it missed, in order, exactly once.
//!
//! This module holds what a socket and its stored session keep, and the gate
//! that puts missed and live events in one order; the backplane keeps the
//! history and the sessions (in memory, or in Redis).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use socketioxide::extract::SocketRef;
use socketioxide::socket::Socket;

/// The room every recovering socket is in: broadcasts skip it and emit to
/// those sockets one by one, with the offset.
pub(crate) const RECOVERY_ROOM: &str = "recovery";

/// How long a socket whose transport died silently can go unnoticed:
/// socketioxide's default ping interval (25 s) and ping timeout (20 s). Events
/// sent to it in that time are lost on the wire and owed to it.
const UNNOTICED: Duration = Duration::from_secs(45);

/// `socket.recovery_secs` and `socket.recovery_max_events`, when recovery is on.
///
/// The times fit together so that a client told `recovered` is never owed an
/// event the history no longer holds, even when its node died without a word
/// (SIGKILL, power): a connected socket's session is kept for the window plus
/// one refresh and saved again every refresh, so it outlives a dead node by at
/// most that long; the history of an idle target is kept longer than that by
/// [`UNNOTICED`], the time a dead transport can go unseen while events are
/// written to it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecoveryConfig {
    /// `socket.recovery_secs`: how long a client whose disconnect was seen can
    /// come back.
    pub(crate) window: Duration,
    pub(crate) max_events: usize,
}

impl RecoveryConfig {
    pub(crate) fn from_settings(settings: &settings::Settings) -> Option<Self> {
        (settings.socket.recovery_secs > 0).then(|| Self {
            window: Duration::from_secs(settings.socket.recovery_secs),
            max_events: usize::try_from(settings.socket.recovery_max_events).unwrap_or(usize::MAX),
        })
    }

    /// How often a connected socket's session is saved again: a third of the
    /// window, between 1 and 30 s.
    pub(crate) fn refresh(&self) -> Duration {
        (self.window / 3).clamp(Duration::from_secs(1), Duration::from_secs(30))
    }

    /// How long a connected socket's session is kept from each save.
    pub(crate) fn live_session_ttl(&self) -> Duration {
        self.window + self.refresh()
    }

    /// How long an event (and the mark of one trimmed away) is kept after it
    /// was sent: longer than any session that may be owed it.
    pub(crate) fn history_ttl(&self) -> Duration {
        self.live_session_ttl() + UNNOTICED
    }
}

/// What is stored of a recovering socket, by its `pid`: whose it was, and
/// what it was in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Session {
    pub(crate) pid: String,
    pub(crate) user: String,
    /// The login session of its token, when it had one (a revoked one makes
    /// the `pid` dead).
    pub(crate) session_id: Option<String>,
    /// The id the client knows the socket by.
    pub(crate) public_sid: String,
    /// The `room:` rooms it had joined (names, prefix off).
    pub(crate) rooms: Vec<String>,
    /// The history's offset when the session began: a client that received
    /// nothing yet comes back with no offset and gets everything since.
    pub(crate) since: u64,
}

impl Session {
    /// The targets whose events the socket got: what it missed is theirs.
    pub(crate) fn targets(&self) -> Vec<String> {
        let mut targets = vec!["everyone".to_owned(), crate::targets::user_room(&self.user)];
        if let Some(session_id) = &self.session_id {
            targets.push(crate::targets::session_room(session_id));
        }
        targets.extend(self.rooms.iter().map(|name| crate::targets::room(name)));
        targets
    }
}

/// One event of the history: its offset, and what was emitted.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Missed {
    pub(crate) offset: u64,
    pub(crate) event: String,
    pub(crate) data: Box<RawValue>,
}

/// A recovering socket's part, kept in its extensions.
#[derive(Clone, Debug)]
pub(crate) struct Recoverable {
    pub(crate) pid: Arc<str>,
    pub(crate) public_sid: Arc<str>,
    /// Where its history starts (a client that got nothing yet comes back
    /// with no offset).
    pub(crate) since: u64,
    gate: Arc<Mutex<Gate>>,
}

/// Puts missed and live events in one order: while the missed ones are being
/// sent, live ones wait; then those the missed ones held already are skipped.
#[derive(Debug, Default)]
struct Gate {
    replaying: bool,
    waiting: Vec<Missed>,
    /// The last offset sent.
    last: u64,
}

impl Recoverable {
    /// A socket whose missed events (if it recovers) are still to come.
    pub(crate) fn new(pid: &str, public_sid: &str, since: u64, replaying: bool) -> Self {
        Self {
            pid: Arc::from(pid),
            public_sid: Arc::from(public_sid),
            since,
            gate: Arc::new(Mutex::new(Gate {
                replaying,
                ..Gate::default()
            })),
        }
    }

    /// Emits a live event with its offset (or keeps it until the missed ones
    /// are out).
    pub(crate) fn deliver(&self, socket: &Socket, offset: u64, event: &str, data: &RawValue) {
        let mut gate = self.lock();
        if gate.replaying {
            gate.waiting.push(Missed {
                offset,
                event: event.to_owned(),
                data: data.to_owned(),
            });
            return;
        }
        if offset <= gate.last {
            return;
        }
        gate.last = offset;
        emit(socket, offset, event, data);
    }

    /// Sends the missed events, then the live ones that came meanwhile, each
    /// once and in order; live events go straight out from then on.
    pub(crate) fn replay(&self, socket: &SocketRef, missed: Vec<Missed>) {
        let mut gate = self.lock();
        let waiting = std::mem::take(&mut gate.waiting);
        let mut all = missed;
        all.extend(waiting);
        all.sort_by_key(|missed| missed.offset);
        for missed in all {
            if missed.offset > gate.last {
                gate.last = missed.offset;
                emit(socket, missed.offset, &missed.event, &missed.data);
            }
        }
        gate.replaying = false;
    }

    fn lock(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `event` with `data` and the offset (a string) as its last argument.
fn emit(socket: &Socket, offset: u64, event: &str, data: &RawValue) {
    if let Err(error) = socket.emit(event, &(data, offset.to_string())) {
        tracing::debug!(%error, %event, "an event to a recovering socket was not sent");
    }
}

/// The auth payload's recovery fields: opted in, and maybe a `pid` and the
/// last offset to come back with.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Asked {
    pub(crate) opted_in: bool,
    pub(crate) pid: Option<String>,
    pub(crate) offset: Option<u64>,
}

impl Asked {
    pub(crate) fn of(auth: Option<&serde_json::Value>) -> Self {
        let Some(auth) = auth else {
            return Self::default();
        };
        let opted_in = auth.get("recovery").and_then(serde_json::Value::as_bool) == Some(true);
        let pid = auth
            .get("pid")
            .and_then(serde_json::Value::as_str)
            .filter(|pid| (1..=64).contains(&pid.len()))
            .map(str::to_owned);
        let offset = auth
            .get("offset")
            .and_then(serde_json::Value::as_str)
            .and_then(|offset| offset.parse().ok());
        Self {
            opted_in,
            pid,
            offset,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_auth_payload_says_whether_and_from_where() {
        assert_eq!(Asked::of(None), Asked::default());
        assert_eq!(
            Asked::of(Some(&json!({"token": "t", "recovery": true}))),
            Asked {
                opted_in: true,
                ..Asked::default()
            }
        );
        assert_eq!(
            Asked::of(Some(&json!({"recovery": true, "pid": "p", "offset": "42"}))),
            Asked {
                opted_in: true,
                pid: Some("p".into()),
                offset: Some(42)
            }
        );
        let odd = Asked::of(Some(&json!({"recovery": "yes", "pid": 5, "offset": "x"})));
        assert_eq!(odd, Asked::default());
        let long = Asked::of(Some(&json!({"pid": "p".repeat(65)})));
        assert_eq!(long.pid, None);
    }

    #[test]
    fn the_history_outlives_every_session_that_may_be_owed_it() {
        for secs in [1, 5, 120, 3600] {
            let config = RecoveryConfig {
                window: Duration::from_secs(secs),
                max_events: 10,
            };
            assert!(config.refresh() >= Duration::from_secs(1));
            assert!(
                config.refresh() < config.live_session_ttl(),
                "saved again before it expires"
            );
            assert!(config.live_session_ttl() >= config.window);
            assert!(config.history_ttl() >= config.live_session_ttl() + UNNOTICED);
        }
    }

    #[test]
    fn a_session_names_its_targets() {
        let session = Session {
            pid: "p".into(),
            user: "ana".into(),
            session_id: Some("s".into()),
            public_sid: "id".into(),
            rooms: vec!["team:42".into()],
            since: 0,
        };
        assert_eq!(
            session.targets(),
            ["everyone", "user:ana", "session:s", "room:team:42"]
        );
    }
}

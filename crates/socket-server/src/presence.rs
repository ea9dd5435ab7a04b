//! Who is connected to this node: each user's socket count, kept as sockets
//! connect and disconnect. In the embedded mode it answers presence queries;
//! in the scaled mode it is this node's share of the cluster's counts, and a
//! feed of its changes keeps Redis up to date.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

/// One socket more (`+1`) or fewer (`-1`) for a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) user: Arc<str>,
    pub(crate) delta: i64,
}

/// What a socket's coming or going did to its user on this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    /// The user's first socket here.
    Arrived,
    /// The user's last socket here.
    Departed,
}

/// A presence event for the application's webhook: a user came online, or
/// went offline (after the grace time), cluster-wide.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct PresenceEvent {
    /// The event's id (`webhook-id`): the same on every try.
    pub(crate) id: String,
    /// `user.online` or `user.offline`.
    pub(crate) kind: String,
    pub(crate) user: String,
    /// When it happened (the first socket's connect, the last one's close),
    /// milliseconds since the Unix epoch.
    pub(crate) at_ms: i64,
}

/// Now, in milliseconds since the Unix epoch (presence events' times).
pub(crate) fn now_ms() -> i64 {
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
}

/// This node's users and their socket counts.
#[derive(Debug, Default)]
pub(crate) struct Presence {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Only users with at least one socket: the map is as small as the set of
    /// connected users.
    counts: HashMap<Arc<str>, u64>,
    sockets: u64,
    /// Where changes go, in the scaled mode.
    feed: Option<mpsc::UnboundedSender<Change>>,
}

/// The counts at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) users: u64,
    pub(crate) sockets: u64,
}

impl Presence {
    /// A socket of `user` connected.
    pub(crate) fn joined(&self, user: &Arc<str>) -> Option<Transition> {
        let mut inner = self.lock();
        let count = inner.counts.entry(user.clone()).or_default();
        *count += 1;
        let arrived = (*count == 1).then_some(Transition::Arrived);
        inner.sockets += 1;
        inner.send(user, 1);
        arrived
    }

    /// A socket of `user` disconnected.
    pub(crate) fn left(&self, user: &Arc<str>) -> Option<Transition> {
        let mut inner = self.lock();
        let count = inner.counts.get_mut(user)?;
        *count -= 1;
        let departed = (*count == 0).then_some(Transition::Departed);
        if departed.is_some() {
            inner.counts.remove(user);
        }
        inner.sockets = inner.sockets.saturating_sub(1);
        inner.send(user, -1);
        departed
    }

    pub(crate) fn summary(&self) -> Summary {
        let inner = self.lock();
        Summary {
            users: inner.counts.len() as u64,
            sockets: inner.sockets,
        }
    }

    pub(crate) fn sockets_of(&self, user: &str) -> u64 {
        self.lock().counts.get(user).copied().unwrap_or(0)
    }

    /// Changes from now on go to the returned feed (the scaled mode's sync).
    pub(crate) fn feed(&self) -> mpsc::UnboundedReceiver<Change> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.lock().feed = Some(sender);
        receiver
    }

    /// Every count now, with the changes still waiting in `feed` dropped: the
    /// snapshot already holds them, so a store replaced by the snapshot must
    /// not get them again. (The lock is the one changes are sent under.)
    pub(crate) fn snapshot(
        &self,
        feed: &mut mpsc::UnboundedReceiver<Change>,
    ) -> Vec<(Arc<str>, u64)> {
        let inner = self.lock();
        while feed.try_recv().is_ok() {}
        inner
            .counts
            .iter()
            .map(|(user, count)| (user.clone(), *count))
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Inner {
    fn send(&self, user: &Arc<str>, delta: i64) {
        if let Some(feed) = &self.feed {
            let _ = feed.send(Change {
                user: user.clone(),
                delta,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_sockets_and_forget_users_without_any() {
        let presence = Presence::default();
        let (alice, bob): (Arc<str>, Arc<str>) = (Arc::from("alice"), Arc::from("bob"));
        presence.joined(&alice);
        presence.joined(&alice);
        presence.joined(&bob);
        assert_eq!(
            presence.summary(),
            Summary {
                users: 2,
                sockets: 3
            }
        );
        assert_eq!(presence.sockets_of("alice"), 2);
        presence.left(&alice);
        presence.left(&bob);
        presence.left(&bob);
        assert_eq!(
            presence.summary(),
            Summary {
                users: 1,
                sockets: 1
            }
        );
        assert_eq!(presence.sockets_of("bob"), 0);
    }

    #[test]
    fn a_snapshot_swallows_the_changes_it_holds() {
        let presence = Presence::default();
        let alice: Arc<str> = Arc::from("alice");
        presence.joined(&alice);
        let mut feed = presence.feed();
        presence.joined(&alice);
        presence.left(&alice);
        presence.joined(&alice);
        assert_eq!(presence.snapshot(&mut feed), vec![(alice.clone(), 2)]);
        assert!(feed.try_recv().is_err(), "already in the snapshot");
        presence.left(&alice);
        assert_eq!(
            feed.try_recv().ok(),
            Some(Change {
                user: alice,
                delta: -1
            })
        );
    }
}

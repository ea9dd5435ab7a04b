//! Presence events in the embedded mode: this process holds every socket, so
//! its own counts are the cluster's. A user's first socket is `user.online`
//! (unless the user left within the grace time: a reload), the last one's
//! close starts the grace time, after which, still without sockets, the user is
//! `user.offline`. Events wait in a bounded queue in memory for the sender.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use crate::presence::{PresenceEvent, now_ms};

/// Events waiting, at most; past it the oldest are dropped, and counted.
pub(super) const MAX_PENDING: usize = 100_000;

#[derive(Debug)]
pub(super) struct LocalWebhooks {
    grace: Duration,
    state: Mutex<State>,
    arrived: Notify,
    dropped: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<PresenceEvent>,
    /// Users whose last socket closed, waiting out the grace time: the number
    /// of the departure (a later departure replaces an earlier one).
    departing: HashMap<Arc<str>, u64>,
    departures: u64,
}

impl LocalWebhooks {
    pub(super) fn new(grace: Duration) -> Self {
        Self {
            grace,
            state: Mutex::default(),
            arrived: Notify::new(),
            dropped: AtomicU64::new(0),
        }
    }

    /// The user's first socket: online, unless it only came back within the
    /// grace time.
    pub(super) fn arrived(&self, user: &Arc<str>) {
        let mut state = self.lock();
        if state.departing.remove(user).is_none() {
            self.push(&mut state, "user.online", user, now_ms());
        }
    }

    /// The user's last socket closed: offline after the grace time, unless a
    /// socket comes back first.
    pub(super) fn departed(self: &Arc<Self>, user: &Arc<str>) {
        let departure = {
            let mut state = self.lock();
            state.departures += 1;
            let departure = state.departures;
            state.departing.insert(user.clone(), departure);
            departure
        };
        let closed_at = now_ms();
        let webhooks = self.clone();
        let user = user.clone();
        tokio::spawn(async move {
            tokio::time::sleep(webhooks.grace).await;
            let mut state = webhooks.lock();
            if state.departing.get(&user) == Some(&departure) {
                state.departing.remove(&user);
                webhooks.push(&mut state, "user.offline", &user, closed_at);
            }
        });
    }

    /// The oldest pending event, when there is one.
    pub(super) async fn next(&self) -> PresenceEvent {
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(event) = self.lock().queue.front().cloned() {
                return event;
            }
            arrived.await;
        }
    }

    /// `event` was delivered (or given up): off the queue.
    pub(super) fn done(&self, event: &PresenceEvent) {
        let mut state = self.lock();
        if state
            .queue
            .front()
            .is_some_and(|first| first.id == event.id)
        {
            state.queue.pop_front();
        }
    }

    /// Events waiting, and the oldest one's time (milliseconds since the epoch).
    pub(super) fn pending(&self) -> (u64, Option<i64>) {
        let state = self.lock();
        (
            state.queue.len() as u64,
            state.queue.front().map(|event| event.at_ms),
        )
    }

    pub(super) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn push(&self, state: &mut State, kind: &str, user: &str, at_ms: i64) {
        if state.queue.len() >= MAX_PENDING {
            // The oldest goes (the one at the front may be on its way: the
            // one after it).
            let oldest = usize::from(state.queue.len() > 1);
            state.queue.remove(oldest);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                pending = MAX_PENDING,
                "webhook queue full: the oldest pending presence event was dropped"
            );
        }
        state.queue.push_back(PresenceEvent {
            id: format!("evt_{}", uuid::Uuid::new_v4().simple()),
            kind: kind.to_owned(),
            user: user.to_owned(),
            at_ms,
        });
        self.arrived.notify_one();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(webhooks: &LocalWebhooks) -> Vec<(String, String)> {
        webhooks
            .lock()
            .queue
            .iter()
            .map(|event| (event.kind.clone(), event.user.clone()))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn online_at_once_offline_after_the_grace_and_nothing_for_a_reload() {
        let webhooks = Arc::new(LocalWebhooks::new(Duration::from_secs(5)));
        let ana: Arc<str> = Arc::from("ana");
        webhooks.arrived(&ana);
        assert_eq!(kinds(&webhooks), [("user.online".into(), "ana".into())]);

        // A reload: gone, back within the grace time.
        webhooks.departed(&ana);
        tokio::time::sleep(Duration::from_secs(3)).await;
        webhooks.arrived(&ana);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(kinds(&webhooks).len(), 1, "nothing for a reload");

        webhooks.departed(&ana);
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(kinds(&webhooks).len(), 1, "not before the grace time");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            kinds(&webhooks),
            [
                ("user.online".into(), "ana".into()),
                ("user.offline".into(), "ana".into())
            ]
        );
        let first = webhooks.next().await;
        assert_eq!(first.kind, "user.online");
        webhooks.done(&first);
        assert_eq!(webhooks.next().await.kind, "user.offline");
    }

    #[tokio::test]
    async fn a_full_queue_drops_the_oldest_and_counts_it() {
        let webhooks = LocalWebhooks::new(Duration::from_secs(5));
        for i in 0..MAX_PENDING + 2 {
            webhooks.arrived(&Arc::from(format!("u{i}")));
        }
        assert_eq!(webhooks.dropped(), 2);
        let (pending, _) = webhooks.pending();
        assert_eq!(pending, MAX_PENDING as u64);
        let state = webhooks.lock();
        assert_eq!(state.queue[0].user, "u0", "the one on its way stays");
        assert_eq!(state.queue[1].user, "u3");
    }
}

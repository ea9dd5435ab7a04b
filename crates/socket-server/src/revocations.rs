//! Ended login sessions: the list the socket server refuses tokens from, and
//! what applying a signed revocation notice does (whichever way it came: the
//! HTTP endpoint, or the backplane).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use claims::Revocation;
use socketioxide::SocketIo;
use tokio::sync::watch;

use crate::bus::{self, Audience};
use crate::keys::KeyRing;
use crate::metrics::Metrics;
use crate::targets::session_room;

/// More ended sessions than this within one token lifetime is no real load;
/// past it the entries closest to their end go first, so memory stays bounded.
const MAX_REVOCATIONS: usize = 1_000_000;

/// How long after the start handshakes with tokens older than this server
/// wait for the web-frontend's first notice (it sends one every 2 s) before
/// going ahead without it.
const SYNC_WAIT: Duration = Duration::from_secs(5);

/// sid → until (seconds since the Unix epoch): tokens of that session are
/// refused until then, when the last of them has expired anyway.
///
/// The list lives in memory, so a restarted server starts empty: until the
/// web-frontend's next notice (a resync of every live revocation, sent every
/// 2 s), it cannot tell a logged-out session's token from a live one. Tokens
/// issued before the server started therefore wait for that notice, during
/// the first [`SYNC_WAIT`] after the start at most (an application that runs
/// no web-frontend sends none: its old tokens wait out that window once, not
/// each); tokens issued since need no wait.
#[derive(Debug)]
pub(crate) struct RevocationList {
    revoked: Mutex<HashMap<String, i64>>,
    started_at: i64,
    sync_deadline: tokio::time::Instant,
    synced: watch::Sender<bool>,
    warned: std::sync::atomic::AtomicBool,
}

impl Default for RevocationList {
    fn default() -> Self {
        Self {
            revoked: Mutex::default(),
            started_at: claims::unix_now(),
            sync_deadline: tokio::time::Instant::now() + SYNC_WAIT,
            synced: watch::channel(false).0,
            warned: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl RevocationList {
    /// Waits, when a token older than this server comes before the first
    /// notice, until the list is complete (or the first [`SYNC_WAIT`] after
    /// the start has passed).
    pub(crate) async fn synced_for(&self, issued_at: i64) {
        if issued_at > self.started_at || *self.synced.borrow() {
            return;
        }
        let mut synced = self.synced.subscribe();
        if tokio::time::timeout_at(self.sync_deadline, synced.wait_for(|synced| *synced))
            .await
            .is_err()
            && !self.warned.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(
                "no revocation notice from the web-frontend within {SYNC_WAIT:?} of the start: tokens older than this server are checked without one"
            );
        }
    }

    pub(crate) fn mark_synced(&self) {
        self.synced.send_replace(true);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.revoked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn is_revoked(&self, session_id: &str, now: i64) -> bool {
        self.lock()
            .get(session_id)
            .is_some_and(|until| now < *until)
    }

    /// Records the revocations; returns the sessions it did not hold yet
    /// (whose sockets are to be ended).
    pub(crate) fn revoke(&self, revocations: &[Revocation], now: i64) -> Vec<String> {
        let mut revoked = self.lock();
        // Entries drop when the tokens they cover have expired.
        revoked.retain(|_, until| now < *until);
        let mut new = Vec::new();
        for revocation in revocations.iter().filter(|r| now < r.until) {
            if revoked.len() >= MAX_REVOCATIONS && !revoked.contains_key(&revocation.sid) {
                let soonest = revoked
                    .iter()
                    .min_by_key(|(_, until)| **until)
                    .map(|(sid, _)| sid.clone());
                if let Some(soonest) = soonest {
                    revoked.remove(&soonest);
                }
            }
            match revoked.entry(revocation.sid.clone()) {
                std::collections::hash_map::Entry::Occupied(mut entry) => {
                    let until = entry.get_mut();
                    *until = (*until).max(revocation.until);
                }
                std::collections::hash_map::Entry::Vacant(entry) => {
                    new.push(entry.key().clone());
                    entry.insert(revocation.until);
                }
            }
        }
        new
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// What applying a notice needs: the keys that check it, the list, and the
/// sockets of this node. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Revoker {
    pub(crate) keys: KeyRing,
    pub(crate) list: Arc<RevocationList>,
    pub(crate) io: SocketIo,
    pub(crate) metrics: Arc<Metrics>,
}

/// A notice that does not verify (its reason is logged where it is refused).
#[derive(Debug, thiserror::Error)]
#[error("revocation notice refused: {0}")]
pub(crate) struct NoticeRefused(#[from] claims::Invalid);

impl Revoker {
    /// Checks a notice; each session it names is revoked, and its sockets on
    /// this node get `session_ended` and are disconnected (every node receives
    /// every notice, so each ends its own sockets).
    pub(crate) async fn apply_notice(&self, notice: &str) -> Result<(), NoticeRefused> {
        let revocations = match self.keys.verify_notice(notice).await {
            Ok(revocations) => revocations,
            Err(reason) => {
                tracing::warn!(%reason, "revocation notice refused");
                return Err(reason.into());
            }
        };
        let now = claims::unix_now();
        self.list.revoke(&revocations, now);
        self.list.mark_synced();
        for revocation in revocations.iter().filter(|r| now < r.until) {
            self.end_session(&revocation.sid).await;
        }
        // A resync repeats sessions already counted; count only what a notice
        // of one session (a logout as it happens) brings.
        if revocations.len() == 1 {
            crate::metrics::bump(&self.metrics.sessions_revoked);
        }
        tracing::debug!(
            sessions = revocations.len(),
            revoked = self.list.len(),
            "revocation notice applied"
        );
        Ok(())
    }

    /// Records revocations read from a shared store (the scaled mode's list,
    /// loaded after an outage) and ends the sockets of the sessions this node
    /// did not know of yet; the list is then complete.
    pub(crate) async fn apply_list(&self, revoked: &[Revocation]) {
        for sid in self.list.revoke(revoked, claims::unix_now()) {
            self.end_session(&sid).await;
        }
        self.list.mark_synced();
    }

    /// Revokes one session (the server API's revoke, from any node): its
    /// tokens are refused until `until`, and its sockets on this node end as
    /// in a logout. Returns how many sockets ended.
    pub(crate) async fn revoke_locally(&self, sid: &str, until: i64) -> u64 {
        let revocation = Revocation {
            sid: sid.to_owned(),
            until,
        };
        self.list
            .revoke(std::slice::from_ref(&revocation), claims::unix_now());
        self.end_session(sid).await
    }

    /// Ends the sockets of one session held by this node; returns how many.
    async fn end_session(&self, session_id: &str) -> u64 {
        let session = Audience::Rooms(vec![session_room(session_id)]);
        bus::end_locally(&self.io, &session, "logged out").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revocation(sid: &str, until: i64) -> Revocation {
        Revocation {
            sid: sid.into(),
            until,
        }
    }

    #[test]
    fn a_session_is_revoked_until_its_tokens_would_have_expired() {
        let list = RevocationList::default();
        list.revoke(&[revocation("a", 100)], 10);
        assert!(list.is_revoked("a", 99));
        assert!(!list.is_revoked("a", 100));
        assert!(!list.is_revoked("b", 50));
    }

    #[test]
    fn entries_drop_when_their_tokens_have_expired() {
        let list = RevocationList::default();
        list.revoke(&[revocation("a", 100), revocation("b", 200)], 10);
        list.revoke(&[revocation("c", 300)], 150);
        assert_eq!(list.len(), 2);
        list.revoke(&[revocation("old", 100)], 150);
        assert_eq!(list.len(), 2, "an already expired revocation is not kept");
    }

    #[test]
    fn a_repeated_revocation_keeps_the_later_end() {
        let list = RevocationList::default();
        list.revoke(&[revocation("a", 200)], 10);
        list.revoke(&[revocation("a", 100)], 10);
        assert!(list.is_revoked("a", 150));
    }
}

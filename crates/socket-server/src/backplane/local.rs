//! What the embedded mode keeps in memory that the scaled mode keeps in
//! Redis: the idempotency keys of the server API, for an hour each.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::outcomes::{Claim, ClaimError, IDEMPOTENCY_TTL};

/// More keys than this within an hour is no real load; past it the oldest
/// go first, so memory stays bounded.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Default)]
pub(super) struct LocalStores {
    keys: Mutex<Keys>,
}

#[derive(Debug, Default)]
struct Keys {
    entries: HashMap<String, Entry>,
    /// Keys by when they were claimed (all live as long): the oldest first.
    order: VecDeque<(Instant, String)>,
}

#[derive(Debug)]
enum Entry {
    /// Claimed; its request is being carried out. Waiters are woken when it
    /// completes or is released.
    Pending(Arc<Notify>),
    Done(String),
}

impl LocalStores {
    pub(super) async fn claim(&self, key: &str, deadline: Instant) -> Result<Claim, ClaimError> {
        loop {
            let done = match self.try_claim(key) {
                Ok(claim) => return Ok(claim),
                Err(done) => done,
            };
            // Registered, then checked: a completion in between still wakes
            // this waiter (it is found done on the next turn).
            let completed = done.notified();
            tokio::pin!(completed);
            completed.as_mut().enable();
            if let Ok(claim) = self.try_claim(key) {
                return Ok(claim);
            }
            if tokio::time::timeout_at(deadline, completed).await.is_err() {
                return Err(ClaimError::InProgress);
            }
        }
    }

    /// The claim, or what to wait on while the key's first request runs.
    fn try_claim(&self, key: &str) -> Result<Claim, Arc<Notify>> {
        let mut keys = self.lock();
        keys.forget_expired(Instant::now());
        match keys.entries.get(key) {
            Some(Entry::Done(response)) => Ok(Claim::Replay(response.clone())),
            Some(Entry::Pending(done)) => Err(done.clone()),
            None => {
                keys.insert(key);
                Ok(Claim::First)
            }
        }
    }

    pub(super) fn complete(&self, key: &str, response: &str) {
        let mut keys = self.lock();
        if let Some(entry) = keys.entries.get_mut(key) {
            let previous = std::mem::replace(entry, Entry::Done(response.to_owned()));
            if let Entry::Pending(done) = previous {
                done.notify_waiters();
            }
        }
    }

    pub(super) fn release(&self, key: &str) {
        let mut keys = self.lock();
        if let Some(Entry::Pending(done)) = keys.entries.remove(key) {
            done.notify_waiters();
        }
        keys.order.retain(|(_, claimed)| claimed != key);
    }

    fn lock(&self) -> MutexGuard<'_, Keys> {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Keys {
    fn insert(&mut self, key: &str) {
        while self.entries.len() >= MAX_KEYS {
            let Some((_, oldest)) = self.order.pop_front() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        self.entries
            .insert(key.to_owned(), Entry::Pending(Arc::new(Notify::new())));
        self.order.push_back((Instant::now(), key.to_owned()));
    }

    fn forget_expired(&mut self, now: Instant) {
        while let Some((claimed, _)) = self.order.front() {
            if now.duration_since(*claimed) < IDEMPOTENCY_TTL {
                break;
            }
            if let Some((_, key)) = self.order.pop_front() {
                self.entries.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn soon() -> Instant {
        Instant::now() + Duration::from_millis(200)
    }

    #[tokio::test]
    async fn a_key_is_carried_out_once_then_replayed() {
        let stores = LocalStores::default();
        assert!(matches!(stores.claim("k", soon()).await, Ok(Claim::First)));
        assert!(matches!(
            stores.claim("k", soon()).await,
            Err(ClaimError::InProgress)
        ));
        stores.complete("k", r#"{"id":"1","sockets":2}"#);
        assert!(matches!(
            stores.claim("k", soon()).await,
            Ok(Claim::Replay(response)) if response == r#"{"id":"1","sockets":2}"#
        ));
        assert!(matches!(
            stores.claim("other", soon()).await,
            Ok(Claim::First)
        ));
    }

    #[tokio::test]
    async fn a_waiting_repeat_gets_the_first_response_and_a_released_key_is_free() {
        let stores = Arc::new(LocalStores::default());
        assert!(matches!(stores.claim("k", soon()).await, Ok(Claim::First)));
        let waiter = {
            let stores = stores.clone();
            tokio::spawn(async move {
                stores
                    .claim("k", Instant::now() + Duration::from_secs(5))
                    .await
            })
        };
        tokio::task::yield_now().await;
        stores.complete("k", "first");
        assert!(matches!(waiter.await.expect("joins"), Ok(Claim::Replay(r)) if r == "first"));

        assert!(matches!(stores.claim("r", soon()).await, Ok(Claim::First)));
        stores.release("r");
        assert!(matches!(stores.claim("r", soon()).await, Ok(Claim::First)));
    }

    #[tokio::test(start_paused = true)]
    async fn keys_are_forgotten_after_an_hour() {
        let stores = LocalStores::default();
        assert!(matches!(stores.claim("k", soon()).await, Ok(Claim::First)));
        stores.complete("k", "first");
        tokio::time::advance(IDEMPOTENCY_TTL + Duration::from_secs(1)).await;
        assert!(matches!(stores.claim("k", soon()).await, Ok(Claim::First)));
    }
}

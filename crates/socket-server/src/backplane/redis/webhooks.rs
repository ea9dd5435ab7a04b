//! The scaled mode's presence webhooks: one node at a time holds the sender's
//! lease and sends the cluster's pending events (a Redis stream) in order; a
//! node that dies with one in flight leaves it to the next sender.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use redis::aio::ConnectionManager;

use super::RedisBackplane;
use crate::presence::PresenceEvent;

/// The one node that sends presence events (so that each goes out once, in
/// order): whoever holds this key, renewed every second.
const SENDER_LOCK: &str = "authbridge:webhooks:sender";
/// The sender's key expires this long after its last renewal (its node died).
const SENDER_LEASE: Duration = Duration::from_secs(10);
/// How often the sender looks for new events, and a waiting node for the lease.
const EVENTS_POLL: Duration = Duration::from_millis(100);

/// Renews the sender's lease if this node (ARGV[1]) still holds it.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Gives the lease up if this node holds it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

impl RedisBackplane {
    /// The oldest pending presence event, once this node is the sender (one
    /// node at a time sends, so each event goes out once and in order). It
    /// stays pending until [`RedisBackplane::webhook_done`]: a node that dies
    /// with it in flight leaves it to the next sender.
    pub(in crate::backplane) async fn next_webhook(&self) -> PresenceEvent {
        let mut conn = self.pubsub.connection();
        loop {
            if self.sending.load(Ordering::Relaxed) {
                let first: redis::RedisResult<Vec<Entry>> = redis::cmd("XRANGE")
                    .arg(crate::backplane::presence::EVENTS)
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(1)
                    .query_async(&mut conn)
                    .await;
                match first.map(|entries| entries.into_iter().next()) {
                    Ok(Some(entry)) => {
                        let id = entry.0.clone();
                        if let Some(event) = event_of(entry) {
                            self.sent_all.store(false, Ordering::Relaxed);
                            return event;
                        }
                        // Not one of ours (written by hand?): it must not
                        // stop the queue.
                        tracing::warn!(entry = %id, "a malformed presence event was taken off the queue");
                        let _: redis::RedisResult<u64> = redis::cmd("XDEL")
                            .arg(crate::backplane::presence::EVENTS)
                            .arg(&id)
                            .query_async(&mut conn)
                            .await;
                        continue;
                    }
                    Ok(None) => self.sent_all.store(true, Ordering::Relaxed),
                    Err(_) => {}
                }
            } else if self.is_up() {
                let claimed: redis::RedisResult<Option<String>> = redis::cmd("SET")
                    .arg(SENDER_LOCK)
                    .arg(&self.node)
                    .arg("NX")
                    .arg("PX")
                    .arg(SENDER_LEASE.as_millis() as u64)
                    .query_async(&mut conn)
                    .await;
                if matches!(claimed, Ok(Some(_))) {
                    tracing::info!("this node sends the presence webhooks");
                    self.sending.store(true, Ordering::Relaxed);
                    continue;
                }
            }
            tokio::time::sleep(EVENTS_POLL).await;
        }
    }

    /// `event` was delivered (or given up on): off the queue.
    pub(in crate::backplane) async fn webhook_done(&self, event: &PresenceEvent) {
        let Some(entry) = event.id.strip_prefix("evt_") else {
            return;
        };
        let removed: redis::RedisResult<u64> = redis::cmd("XDEL")
            .arg(crate::backplane::presence::EVENTS)
            .arg(entry)
            .query_async(&mut self.pubsub.connection())
            .await;
        if let Err(error) = removed {
            // Sent again by the next try or sender: at least once.
            tracing::warn!(%error, "a delivered presence event could not be taken off the queue");
        }
    }

    /// Events pending cluster-wide (as the last watch saw them), and the
    /// oldest one's time; events this node's scripts dropped.
    pub(in crate::backplane) fn webhook_queue(&self) -> (u64, Option<i64>, u64) {
        let oldest = self.oldest_ms.load(Ordering::Relaxed);
        (
            self.pending.load(Ordering::Relaxed),
            (oldest > 0).then_some(oldest),
            self.presence.dropped.load(Ordering::Relaxed),
        )
    }

    /// Whether this node still holds the sender's lease.
    pub(in crate::backplane) fn sending(&self) -> bool {
        self.sending.load(Ordering::Relaxed)
    }

    /// Whether this node has nothing left to send (it is not the sender, or
    /// the sender found the queue empty).
    pub(in crate::backplane) fn webhooks_drained(&self) -> bool {
        !self.sending.load(Ordering::Relaxed) || self.sent_all.load(Ordering::Relaxed)
    }

    /// At a graceful shutdown, after the drain: another node sends the rest.
    pub(in crate::backplane) async fn release_sender(&self) {
        if !self.sending.swap(false, Ordering::Relaxed) {
            return;
        }
        let released: redis::RedisResult<i64> = redis::Script::new(RELEASE)
            .key(SENDER_LOCK)
            .arg(&self.node)
            .invoke_async(&mut self.pubsub.connection())
            .await;
        if let Err(error) = released {
            tracing::warn!(%error, "the webhook sender's lease could not be given up (it expires within 10 s)");
        }
    }

    /// Once a second: the sender keeps its lease (or learns it lost it), and
    /// the queue's gauges are read.
    pub(super) async fn watch_webhooks(
        &self,
        conn: &mut ConnectionManager,
    ) -> redis::RedisResult<()> {
        if self.sending.load(Ordering::Relaxed) {
            let renewed: i64 = redis::Script::new(RENEW)
                .key(SENDER_LOCK)
                .arg(&self.node)
                .arg(SENDER_LEASE.as_millis() as u64)
                .invoke_async(conn)
                .await?;
            if renewed == 0 {
                tracing::warn!("this node lost the webhook sender's lease: another node sends");
                self.sending.store(false, Ordering::Relaxed);
            }
        }
        let (length, first): (u64, Vec<Entry>) = redis::pipe()
            .cmd("XLEN")
            .arg(crate::backplane::presence::EVENTS)
            .cmd("XRANGE")
            .arg(crate::backplane::presence::EVENTS)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .query_async(conn)
            .await?;
        self.pending.store(length, Ordering::Relaxed);
        let oldest = first
            .into_iter()
            .next()
            .and_then(event_of)
            .map_or(0, |event| event.at_ms);
        self.oldest_ms.store(oldest, Ordering::Relaxed);
        Ok(())
    }
}

/// A stream entry: its id and fields.
type Entry = (String, HashMap<String, String>);

/// A presence event from its stream entry.
fn event_of((entry, fields): Entry) -> Option<PresenceEvent> {
    Some(PresenceEvent {
        id: format!("evt_{entry}"),
        kind: fields.get("kind")?.clone(),
        user: fields.get("user")?.clone(),
        at_ms: fields.get("at")?.parse().ok()?,
    })
}

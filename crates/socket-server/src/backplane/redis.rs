//! The scaled mode: nodes that share one Redis behave as one server.
//!
//! Redis carries what nodes must share — envelopes for sockets anywhere (with
//! each node's count coming back to the publisher), ended sessions, presence
//! counts, idempotency keys — and never decides who is let in to a socket: a
//! token stands or falls by the key, a revocation notice on the channel is
//! signed like the HTTP one, and a revocation can only refuse, never admit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use claims::{REVOCATION_CHANNEL, REVOKED_KEY_PREFIX, Revocation};
use redis::AsyncCommands as _;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::outcomes::{Claim, ClaimError, IDEMPOTENCY_PENDING, IDEMPOTENCY_TTL, Unavailable};
use super::presence::RedisPresence;
use super::pubsub::PubSub;
use crate::bus::{Action, Envelope, Outcome};
use crate::node::Node;
use crate::presence::{Presence, PresenceEvent, Summary};
use crate::revocations::Revoker;

/// The channel envelopes travel on between nodes.
const EVENTS_CHANNEL: &str = "authbridge:events";
/// Each node's channel for the counts that answer its publications.
const REPLIES_PREFIX: &str = "authbridge:replies:";
/// Idempotency keys of the server API.
const IDEMPOTENCY_PREFIX: &str = "authbridge:idempotency:";

/// How often the node checks that Redis answers (and says it is alive).
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How long a publication waits for the other nodes' counts.
const COUNT_WAIT: Duration = Duration::from_secs(1);
/// How often a repeat of an idempotent request looks whether the first is done.
const IDEMPOTENCY_POLL: Duration = Duration::from_millis(25);

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

/// Messages of one channel waiting for their consumer.
const CHANNEL_BUFFER: usize = 16 * 1024;

/// An envelope on the wire: the node that published it, and, when the
/// publisher wants the count, the publication's number on that node.
#[derive(Debug, Serialize, Deserialize)]
struct Published {
    /// With recovery, an emit's offset (written first, by the script that
    /// gives it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
    envelope: Envelope,
}

/// One node's answer to a counted publication.
#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    count: u64,
    #[serde(flatten)]
    outcome: Outcome,
}

/// The answers a counted publication has had so far.
#[derive(Debug, Default)]
struct Tally {
    replies: u64,
    outcome: Outcome,
    /// How many nodes got it (PUBLISH's answer), once known.
    expected: Option<u64>,
    done: Option<oneshot::Sender<()>>,
}

impl Tally {
    fn check(&mut self) {
        if self
            .expected
            .is_some_and(|expected| self.replies >= expected)
            && let Some(done) = self.done.take()
        {
            let _ = done.send(());
        }
    }
}

/// This node's link to the others.
#[derive(Debug)]
pub(crate) struct RedisBackplane {
    pubsub: PubSub,
    /// `host:port`, for logs (never the password).
    host: String,
    /// This process, among the nodes (random, new on every start).
    node: String,
    replies: String,
    presence: Arc<RedisPresence>,
    /// Counted publications waiting for their answers, by number.
    tallies: Mutex<HashMap<u64, Tally>>,
    next_count: AtomicU64,
    /// Set up: the channels subscribed and the revocation list loaded.
    ready: watch::Sender<bool>,
    /// Whether Redis answered the last probe.
    up: AtomicBool,
    /// This node's presence changes, until the sync task takes them.
    feed: Mutex<Option<mpsc::UnboundedReceiver<crate::presence::Change>>>,
    /// With recovery: the history of emitted events, and its size as last seen.
    history: Option<super::redis_history::RedisHistory>,
    history_size: AtomicU64,
    /// Whether this node holds the sender's lease (with webhooks).
    sending: AtomicBool,
    /// Whether the sender found no event left on its last look.
    sent_all: AtomicBool,
    /// The event queue as the last watch saw it: its length, and the oldest
    /// event's time (ms since the epoch; 0: none).
    pending: AtomicU64,
    oldest_ms: std::sync::atomic::AtomicI64,
}

impl RedisBackplane {
    pub(super) fn new(
        url: &str,
        host: String,
        presence: &Presence,
        grace: Option<Duration>,
        recovery: Option<crate::recovery::RecoveryConfig>,
    ) -> redis::RedisResult<Self> {
        let node = uuid::Uuid::new_v4().simple().to_string();
        Ok(Self {
            pubsub: PubSub::new(url)?,
            host,
            replies: format!("{REPLIES_PREFIX}{node}"),
            presence: Arc::new(RedisPresence::new(
                &node,
                grace,
                super::local_webhooks::MAX_PENDING,
            )),
            node,
            tallies: Mutex::default(),
            next_count: AtomicU64::new(0),
            ready: watch::channel(false).0,
            up: AtomicBool::new(false),
            feed: Mutex::new(Some(presence.feed())),
            history: recovery.map(super::redis_history::RedisHistory::new),
            history_size: AtomicU64::new(0),
            sending: AtomicBool::new(false),
            sent_all: AtomicBool::new(false),
            pending: AtomicU64::new(0),
            oldest_ms: std::sync::atomic::AtomicI64::new(0),
        })
    }

    /// The oldest pending presence event, once this node is the sender (one
    /// node at a time sends, so each event goes out once and in order). It
    /// stays pending until [`RedisBackplane::webhook_done`]: a node that dies
    /// with it in flight leaves it to the next sender.
    pub(super) async fn next_webhook(&self) -> PresenceEvent {
        let mut conn = self.pubsub.connection();
        loop {
            if self.sending.load(Ordering::Relaxed) {
                let first: redis::RedisResult<Vec<Entry>> = redis::cmd("XRANGE")
                    .arg(super::presence::EVENTS)
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
                            .arg(super::presence::EVENTS)
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
    pub(super) async fn webhook_done(&self, event: &PresenceEvent) {
        let Some(entry) = event.id.strip_prefix("evt_") else {
            return;
        };
        let removed: redis::RedisResult<u64> = redis::cmd("XDEL")
            .arg(super::presence::EVENTS)
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
    pub(super) fn webhook_queue(&self) -> (u64, Option<i64>, u64) {
        let oldest = self.oldest_ms.load(Ordering::Relaxed);
        (
            self.pending.load(Ordering::Relaxed),
            (oldest > 0).then_some(oldest),
            self.presence.dropped.load(Ordering::Relaxed),
        )
    }

    /// Whether this node still holds the sender's lease.
    pub(super) fn sending(&self) -> bool {
        self.sending.load(Ordering::Relaxed)
    }

    /// Whether this node has nothing left to send (it is not the sender, or
    /// the sender found the queue empty).
    pub(super) fn webhooks_drained(&self) -> bool {
        !self.sending.load(Ordering::Relaxed) || self.sent_all.load(Ordering::Relaxed)
    }

    /// At a graceful shutdown, after the drain: another node sends the rest.
    pub(super) async fn release_sender(&self) {
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
    async fn watch_webhooks(&self, conn: &mut ConnectionManager) -> redis::RedisResult<()> {
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
            .arg(super::presence::EVENTS)
            .cmd("XRANGE")
            .arg(super::presence::EVENTS)
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

    pub(super) fn start(
        self: &Arc<Self>,
        node: Node,
        presence: Arc<Presence>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = vec![tokio::spawn(self.clone().run(node))];
        let feed = lock(&self.feed).take();
        if let Some(feed) = feed {
            tasks.push(tokio::spawn(self.presence.clone().sync(
                self.pubsub.connection(),
                presence,
                feed,
            )));
        }
        tasks
    }

    pub(super) fn accepting(&self) -> bool {
        *self.ready.borrow()
    }

    pub(super) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    pub(super) fn not_ready_reason(&self) -> Option<String> {
        if !self.accepting() {
            return Some(format!("starting: waiting for Redis at {}", self.host));
        }
        if !self.is_up() {
            return Some(format!("Redis at {} is unreachable", self.host));
        }
        None
    }

    /// Publishes `envelope` to every node, this one included (each carries it
    /// out when Redis relays it, so every node sees one order). `counted`:
    /// waits up to a second for the nodes' counts and returns their sum.
    pub(super) async fn publish(
        &self,
        envelope: &Envelope,
        counted: bool,
    ) -> Result<Outcome, Unavailable> {
        let count = counted.then(|| self.next_count.fetch_add(1, Ordering::Relaxed));
        let published = Published {
            offset: None,
            node: self.node.clone(),
            count,
            envelope: envelope.clone(),
        };
        let payload = serde_json::to_vec(&published).map_err(|error| {
            tracing::error!(%error, "an envelope could not be serialized");
            Unavailable
        })?;
        if let Action::Revoke { sid, until } = &envelope.action {
            // Recorded first, for nodes that start (or come back) later.
            self.record_revocation(sid, *until).await?;
        }
        let answered = count.map(|count| {
            let (done, answered) = oneshot::channel();
            lock(&self.tallies).insert(
                count,
                Tally {
                    done: Some(done),
                    ..Tally::default()
                },
            );
            answered
        });
        let mut sent = self.send(envelope, &payload).await;
        // Redis answered the last probe, yet this publish failed: the
        // connection had just been lost and is being made again (a Redis
        // restart). Once more, before giving up.
        if sent.is_err() && self.is_up() {
            sent = self.send(envelope, &payload).await;
        }
        let receivers = match sent {
            Ok(receivers) => receivers,
            Err(error) => {
                tracing::debug!(%error, "publishing to the nodes failed");
                if let Some(count) = count {
                    lock(&self.tallies).remove(&count);
                }
                return Err(Unavailable);
            }
        };
        let (Some(count), Some(answered)) = (count, answered) else {
            return Ok(Outcome::default());
        };
        if let Some(tally) = lock(&self.tallies).get_mut(&count) {
            tally.expected = Some(receivers);
            tally.check();
        }
        // Best effort: a node that does not answer within the second is not
        // counted (its sockets still get the envelope).
        let _ = tokio::time::timeout(COUNT_WAIT, answered).await;
        let tally = lock(&self.tallies).remove(&count).unwrap_or_default();
        Ok(tally.outcome)
    }

    /// Publishes `payload` on the event channel; with recovery, an emit gets
    /// its offset and enters the history in the same step. Returns how many
    /// nodes got it.
    async fn send(&self, envelope: &Envelope, payload: &[u8]) -> redis::RedisResult<u64> {
        match (&self.history, &envelope.action) {
            (Some(history), Action::Emit { event, data }) => {
                // The payload without its `{`: the script writes the offset first.
                let rest =
                    std::str::from_utf8(payload.get(1..).unwrap_or_default()).unwrap_or_default();
                let (_, receivers) = history
                    .record_and_publish(
                        &mut self.pubsub.connection(),
                        EVENTS_CHANNEL,
                        rest,
                        &envelope.to.history_targets(),
                        event,
                        data,
                    )
                    .await?;
                Ok(receivers)
            }
            _ => self.pubsub.publish(EVENTS_CHANNEL, payload).await,
        }
    }

    /// The history's entries as the watch last counted them.
    pub(super) fn history_size(&self) -> u64 {
        self.history_size.load(Ordering::Relaxed)
    }

    pub(super) async fn current_offset(&self) -> Result<u64, Unavailable> {
        super::redis_history::RedisHistory::current(&mut self.pubsub.connection())
            .await
            .map_err(|_| Unavailable)
    }

    pub(super) async fn missed(
        &self,
        targets: &[String],
        after: u64,
    ) -> Result<Option<Vec<crate::recovery::Missed>>, Unavailable> {
        super::redis_history::RedisHistory::missed(&mut self.pubsub.connection(), targets, after)
            .await
            .map_err(|_| Unavailable)
    }

    pub(super) async fn save_sessions(
        &self,
        sessions: &[(String, crate::recovery::Session)],
        ttl: Duration,
    ) -> Result<(), Unavailable> {
        let Some(history) = &self.history else {
            return Ok(());
        };
        history
            .save(&mut self.pubsub.connection(), sessions, ttl)
            .await
            .map_err(|_| Unavailable)
    }

    pub(super) async fn take_session(
        &self,
        pid: &str,
        user: &str,
        taker: &str,
    ) -> Result<Option<crate::recovery::Session>, Unavailable> {
        let Some(history) = &self.history else {
            return Ok(None);
        };
        history
            .take(&mut self.pubsub.connection(), pid, user, taker)
            .await
            .map_err(|_| Unavailable)
    }

    pub(super) async fn forget_session(&self, pid: &str, owner: &str) {
        if let Some(history) = &self.history {
            let _ = history
                .forget(&mut self.pubsub.connection(), pid, owner)
                .await;
        }
    }

    pub(super) async fn presence_summary(&self) -> Result<Summary, Unavailable> {
        super::presence::summary(&mut self.pubsub.connection())
            .await
            .map_err(|_| Unavailable)
    }

    pub(super) async fn presence_of(&self, user: &str) -> Result<u64, Unavailable> {
        super::presence::sockets_of(&mut self.pubsub.connection(), user)
            .await
            .map_err(|_| Unavailable)
    }

    pub(super) async fn claim(&self, key: &str, deadline: Instant) -> Result<Claim, ClaimError> {
        let key = format!("{IDEMPOTENCY_PREFIX}{key}");
        let mut conn = self.pubsub.connection();
        loop {
            let claimed: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg("")
                .arg("NX")
                .arg("EX")
                .arg(IDEMPOTENCY_PENDING.as_secs())
                .query_async(&mut conn)
                .await
                .map_err(|_| Unavailable)?;
            if claimed.is_some() {
                return Ok(Claim::First);
            }
            loop {
                let response: Option<String> = conn.get(&key).await.map_err(|_| Unavailable)?;
                match response {
                    // Released or expired meanwhile: claim it again.
                    None => break,
                    Some(response) if !response.is_empty() => return Ok(Claim::Replay(response)),
                    Some(_) if Instant::now() >= deadline => return Err(ClaimError::InProgress),
                    Some(_) => tokio::time::sleep(IDEMPOTENCY_POLL).await,
                }
            }
        }
    }

    pub(super) async fn complete(&self, key: &str, response: &str) {
        let stored: redis::RedisResult<Option<String>> = redis::cmd("SET")
            .arg(format!("{IDEMPOTENCY_PREFIX}{key}"))
            .arg(response)
            .arg("XX")
            .arg("EX")
            .arg(IDEMPOTENCY_TTL.as_secs())
            .query_async(&mut self.pubsub.connection())
            .await;
        if let Err(error) = stored {
            // A repeat will wait, then be told to try again: no double delivery.
            tracing::warn!(%error, "an idempotent response could not be stored");
        }
    }

    pub(super) async fn release(&self, key: &str) {
        let released: redis::RedisResult<()> = self
            .pubsub
            .connection()
            .del(format!("{IDEMPOTENCY_PREFIX}{key}"))
            .await;
        if let Err(error) = released {
            tracing::warn!(%error, "an idempotency key could not be released (it expires within the hour)");
        }
    }

    pub(super) async fn leave(&self) {
        if let Err(error) = self.presence.leave(&mut self.pubsub.connection()).await {
            tracing::warn!(%error, "this node's presence could not be taken out (the others will, within seconds)");
        }
    }

    /// Sets the node up once Redis answers, then watches Redis for as long as
    /// the node runs: the channels, the shared revocation list; after an
    /// outage, the list and this node's presence again.
    async fn run(self: Arc<Self>, node: Node) {
        let mut logged_waiting = false;
        let mut wait_for_redis = async |what: &str, error: redis::RedisError| {
            if !logged_waiting {
                tracing::warn!(redis = %self.host, %error, "Redis unavailable ({what}): sockets are refused with 503 until it answers");
                logged_waiting = true;
            }
            tokio::time::sleep(PROBE_EVERY).await;
        };
        let replies = loop {
            match self.pubsub.subscribe(&self.replies, CHANNEL_BUFFER).await {
                Ok(replies) => break replies,
                Err(error) => wait_for_redis("reply channel", error).await,
            }
        };
        tokio::spawn(self.clone().tally_replies(replies));
        let envelopes = loop {
            match self.pubsub.subscribe(EVENTS_CHANNEL, CHANNEL_BUFFER).await {
                Ok(envelopes) => break envelopes,
                Err(error) => wait_for_redis("event channel", error).await,
            }
        };
        tokio::spawn(self.clone().carry_out_published(envelopes, node.clone()));
        let notices = loop {
            match self
                .pubsub
                .subscribe(REVOCATION_CHANNEL, CHANNEL_BUFFER)
                .await
            {
                Ok(notices) => break notices,
                Err(error) => wait_for_redis("revocation channel", error).await,
            }
        };
        tokio::spawn(apply_notices(notices, node.revoker.clone()));
        let mut conn = self.pubsub.connection();
        loop {
            match load_revocations(&mut conn, &node.revoker).await {
                Ok(count) => {
                    tracing::info!(redis = %self.host, revoked = count, "connected to Redis: scaled mode ready");
                    break;
                }
                Err(error) => wait_for_redis("revocation list", error).await,
            }
        }
        self.up.store(true, Ordering::Relaxed);
        self.ready.send_replace(true);

        // The watch: once a second, PING, this node alive and dead nodes'
        // presence taken back; on the way back, the list and presence again.
        let mut probe = tokio::time::interval(PROBE_EVERY);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks = 0_u32;
        loop {
            probe.tick().await;
            let mut answer = self.presence.heartbeat(&mut conn).await;
            if answer.is_ok() {
                answer = self.watch_webhooks(&mut conn).await;
            }
            ticks = ticks.wrapping_add(1);
            if answer.is_ok() && self.history.is_some() && ticks.is_multiple_of(10) {
                // The history's size, for /metrics, every ten seconds.
                if let Ok(size) = super::redis_history::RedisHistory::size(&mut conn).await {
                    self.history_size.store(size, Ordering::Relaxed);
                }
            }
            match answer {
                Ok(()) if self.is_up() => {}
                Ok(()) => match load_revocations(&mut conn, &node.revoker).await {
                    Ok(count) => {
                        self.up.store(true, Ordering::Relaxed);
                        self.presence.resync();
                        tracing::info!(redis = %self.host, revoked = count, "Redis is back: publications cross nodes again");
                    }
                    Err(error) => {
                        tracing::warn!(redis = %self.host, %error, "Redis answers, but the revocation list could not be read yet");
                    }
                },
                Err(error) => {
                    if self.up.swap(false, Ordering::Relaxed) {
                        tracing::warn!(
                            redis = %self.host, %error,
                            "Redis unreachable: messages reach this node's sockets only, the server API answers 503, and logouts elsewhere wait, until it is back"
                        );
                    }
                }
            }
        }
    }

    /// Carries out what any node publishes (this one included), in the order
    /// Redis relays it, and answers counted publications with this node's count.
    async fn carry_out_published(
        self: Arc<Self>,
        mut envelopes: mpsc::Receiver<Vec<u8>>,
        node: Node,
    ) {
        while let Some(payload) = envelopes.recv().await {
            let published = match serde_json::from_slice::<Published>(&payload) {
                Ok(published) => published,
                Err(error) => {
                    tracing::warn!(%error, "an envelope on Redis is malformed: ignored");
                    continue;
                }
            };
            let mut envelope = published.envelope;
            envelope.offset = published.offset;
            let outcome = node.carry_out(&envelope).await;
            let Some(count) = published.count else {
                continue;
            };
            if published.node == self.node {
                self.tally(count, outcome);
            } else {
                let reply = Reply { count, outcome };
                let channel = format!("{REPLIES_PREFIX}{}", published.node);
                if let Ok(reply) = serde_json::to_vec(&reply)
                    && let Err(error) = self.pubsub.publish(&channel, &reply).await
                {
                    tracing::debug!(%error, "a count could not be sent back");
                }
            }
        }
    }

    async fn tally_replies(self: Arc<Self>, mut replies: mpsc::Receiver<Vec<u8>>) {
        while let Some(payload) = replies.recv().await {
            match serde_json::from_slice::<Reply>(&payload) {
                Ok(reply) => self.tally(reply.count, reply.outcome),
                Err(error) => tracing::warn!(%error, "a count on Redis is malformed: ignored"),
            }
        }
    }

    fn tally(&self, count: u64, outcome: Outcome) {
        if let Some(tally) = lock(&self.tallies).get_mut(&count) {
            tally.replies += 1;
            tally.outcome.add(outcome);
            tally.check();
        }
    }

    async fn record_revocation(&self, sid: &str, until: i64) -> Result<(), Unavailable> {
        // Already over: it refuses no token, so there is nothing to keep (and
        // Redis refuses an `EXAT` that is not positive: the API's `until` may
        // be 0 or negative).
        if until <= claims::unix_now() {
            return Ok(());
        }
        redis::cmd("SET")
            .arg(format!("{REVOKED_KEY_PREFIX}{sid}"))
            .arg(until)
            .arg("EXAT")
            .arg(until)
            .query_async::<()>(&mut self.pubsub.connection())
            .await
            .map_err(|error| {
                tracing::warn!(%error, "a revocation could not be recorded: nothing was published");
                Unavailable
            })
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

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Applies each signed notice from the channel (a logout on any web node).
async fn apply_notices(mut notices: mpsc::Receiver<Vec<u8>>, revoker: Revoker) {
    while let Some(payload) = notices.recv().await {
        match std::str::from_utf8(&payload) {
            // A refused notice is logged where it is checked.
            Ok(notice) => {
                let _ = revoker.apply_notice(notice).await;
            }
            Err(_) => tracing::warn!("a revocation notice on Redis is not UTF-8: ignored"),
        }
    }
}

/// Reads every `authbridge:revoked:*` key into this node's list; returns how
/// many sessions are revoked.
async fn load_revocations(
    conn: &mut ConnectionManager,
    revoker: &Revoker,
) -> redis::RedisResult<usize> {
    let pattern = format!("{REVOKED_KEY_PREFIX}*");
    let mut cursor = 0_u64;
    let mut revoked = Vec::new();
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        if !keys.is_empty() {
            let untils: Vec<Option<i64>> = conn.mget(&keys).await?;
            for (key, until) in keys.iter().zip(untils) {
                if let (Some(sid), Some(until)) = (key.strip_prefix(REVOKED_KEY_PREFIX), until) {
                    revoked.push(Revocation {
                        sid: sid.to_owned(),
                        until,
                    });
                }
            }
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    // Sessions ended while this node could not hear the channel.
    revoker.apply_list(&revoked).await;
    Ok(revoker.list.len())
}

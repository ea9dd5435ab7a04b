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

use claims::REVOCATION_CHANNEL;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

mod idempotency;
mod recovery;
mod revocations;
mod webhooks;

use super::outcomes::Unavailable;
use super::presence::RedisPresence;
use super::pubsub::PubSub;
use crate::bus::{Action, Envelope, Outcome};
use crate::node::Node;
use crate::presence::{Presence, Summary};

/// The channel envelopes travel on between nodes.
const EVENTS_CHANNEL: &str = "authbridge:events";
/// Each node's channel for the counts that answer its publications.
const REPLIES_PREFIX: &str = "authbridge:replies:";

/// How often the node checks that Redis answers (and says it is alive).
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How long a publication waits for the other nodes' counts.
const COUNT_WAIT: Duration = Duration::from_secs(1);

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
        tokio::spawn(Self::apply_notices(notices, node.revoker.clone()));
        let mut conn = self.pubsub.connection();
        loop {
            match Self::load_revocations(&mut conn, &node.revoker).await {
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
                Ok(()) => match Self::load_revocations(&mut conn, &node.revoker).await {
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
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

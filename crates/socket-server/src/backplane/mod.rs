//! The one place where one node and many differ: a [`Backplane`] is built
//! once, at start, and every part of the server that needs the other nodes
//! asks it — handlers never look at the mode.
//!
//! - Local (embedded, `redis.url` unset): this process is the whole cluster;
//!   what is published is carried out here; presence is this node's; the
//!   idempotency keys live in memory; revocations arrive over HTTP.
//! - Redis (scaled): nodes share one Redis. Envelopes travel on a pub/sub
//!   channel and every node — the publisher too — carries them out in the
//!   order Redis relays them, answering with its count; presence is counted
//!   in Redis, per user, and corrected when a node dies; idempotency keys
//!   live there for their hour; the node is ready once Redis has answered and
//!   the revocation list is loaded.
//!
//! Each capability a mode changes is one operation here: broadcasting and
//! publishing an envelope, presence, idempotency, readiness, the background
//! set-up, the metrics the mode adds.
//!
//! Long on purpose (~470 lines): it is the seam, one method per capability,
//! each a `match` over the two modes that hands the work to `local`, `redis`,
//! `presence` and the history modules; splitting it would split the seam.

mod local;
mod local_history;
mod local_webhooks;
mod outcomes;
mod presence;
mod pubsub;
mod redis;
mod redis_history;

use std::sync::Arc;

use secrecy::ExposeSecret as _;
use settings::{ConfigError, Settings};

use crate::bus::{Action, Envelope, Outcome, Reach};
use crate::node::Node;
use crate::presence::{Presence, PresenceEvent, Summary, Transition};
use crate::recovery::{Missed, RecoveryConfig, Session};

pub(crate) use outcomes::{Claim, ClaimError, Unavailable};

/// One node, or one of many; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Backplane {
    /// This node's users and sockets (in the scaled mode, its share).
    presence: Arc<Presence>,
    mode: Mode,
    /// `socket.recovery_secs` and its bound, when recovery is on.
    recovery: Option<RecoveryConfig>,
}

#[derive(Clone, Debug)]
enum Mode {
    Local {
        stores: Arc<local::LocalStores>,
        /// With webhooks: this process's presence events.
        webhooks: Option<Arc<local_webhooks::LocalWebhooks>>,
        /// With recovery: the history and the sessions.
        history: Option<Arc<local_history::LocalHistory>>,
    },
    Redis(Arc<redis::RedisBackplane>),
}

impl Backplane {
    /// The backplane `settings` ask for. Nothing is connected yet: a scaled
    /// node starts while Redis is away (see [`Backplane::start`]).
    pub(crate) fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let presence = Arc::new(Presence::default());
        // Presence events are made only when someone listens.
        let grace = settings
            .webhooks
            .url
            .as_ref()
            .map(|_| std::time::Duration::from_secs(settings.webhooks.offline_grace_secs));
        let recovery = RecoveryConfig::from_settings(settings);
        let mode = match &settings.redis.url {
            None => Mode::Local {
                stores: Arc::default(),
                webhooks: grace.map(|grace| Arc::new(local_webhooks::LocalWebhooks::new(grace))),
                history: recovery.map(|config| Arc::new(local_history::LocalHistory::new(config))),
            },
            Some(url) => {
                let host = settings.redis.display_host().unwrap_or_default();
                let redis = redis::RedisBackplane::new(
                    url.expose_secret(),
                    host,
                    &presence,
                    grace,
                    recovery,
                )
                .map_err(|error| ConfigError::invalid("redis.url", error.to_string()))?;
                Mode::Redis(Arc::new(redis))
            }
        };
        Ok(Self {
            presence,
            mode,
            recovery,
        })
    }

    /// Starts what the mode runs in the background: in the scaled mode, the
    /// set-up once Redis answers (channels, the revocation list, this node's
    /// presence), then the watch on Redis. The tasks end with the server.
    pub(crate) fn start(&self, node: &Node) -> Vec<tokio::task::JoinHandle<()>> {
        match &self.mode {
            Mode::Local { .. } => Vec::new(),
            Mode::Redis(redis) => redis.start(node.clone(), self.presence.clone()),
        }
    }

    /// A socket of `user` connected (the socket handlers tell who comes and
    /// goes; presence events follow from it).
    pub(crate) fn joined(&self, user: &Arc<str>) {
        let transition = self.presence.joined(user);
        if let (
            Some(Transition::Arrived),
            Mode::Local {
                webhooks: Some(webhooks),
                ..
            },
        ) = (transition, &self.mode)
        {
            webhooks.arrived(user);
        }
    }

    /// A socket of `user` disconnected.
    pub(crate) fn left(&self, user: &Arc<str>) {
        let transition = self.presence.left(user);
        if let (
            Some(Transition::Departed),
            Mode::Local {
                webhooks: Some(webhooks),
                ..
            },
        ) = (transition, &self.mode)
        {
            webhooks.departed(user);
        }
    }

    /// The oldest pending presence event, when this node is the one to send
    /// it (in the scaled mode, one node sends them all, in order). Never
    /// returns without webhooks.
    pub(crate) async fn next_webhook(&self) -> PresenceEvent {
        match &self.mode {
            Mode::Local {
                webhooks: Some(webhooks),
                ..
            } => webhooks.next().await,
            Mode::Local { webhooks: None, .. } => std::future::pending().await,
            Mode::Redis(redis) => redis.next_webhook().await,
        }
    }

    /// `event` was delivered, or given up on: it leaves the queue.
    pub(crate) async fn webhook_done(&self, event: &PresenceEvent) {
        match &self.mode {
            Mode::Local {
                webhooks: Some(webhooks),
                ..
            } => webhooks.done(event),
            Mode::Local { webhooks: None, .. } => {}
            Mode::Redis(redis) => redis.webhook_done(event).await,
        }
    }

    /// Whether this node may still send presence events: in the scaled mode,
    /// while it holds the sender's lease (one that lost it mid-retry stops, so
    /// that the next sender keeps the order).
    pub(crate) fn may_send_webhooks(&self) -> bool {
        match &self.mode {
            Mode::Local { .. } => true,
            Mode::Redis(redis) => redis.sending(),
        }
    }

    /// Whether this node has no presence event left to send (a graceful
    /// shutdown waits for it a few seconds).
    pub(crate) fn webhooks_drained(&self) -> bool {
        match &self.mode {
            Mode::Local {
                webhooks: Some(webhooks),
                ..
            } => webhooks.pending().0 == 0,
            Mode::Local { webhooks: None, .. } => true,
            Mode::Redis(redis) => redis.webhooks_drained(),
        }
    }

    /// The presence events pending (in the scaled mode, cluster-wide, as of
    /// the last second), the oldest one's time (ms since the epoch), and how
    /// many this node dropped because the queue was full.
    pub(crate) fn webhook_queue(&self) -> (u64, Option<i64>, u64) {
        match &self.mode {
            Mode::Local {
                webhooks: Some(webhooks),
                ..
            } => {
                let (pending, oldest) = webhooks.pending();
                (pending, oldest, webhooks.dropped())
            }
            Mode::Local { webhooks: None, .. } => (0, None, 0),
            Mode::Redis(redis) => redis.webhook_queue(),
        }
    }

    /// Best effort, for `message`: carries `envelope` out on every node; when
    /// the others cannot be reached, on this one alone.
    pub(crate) async fn broadcast(&self, node: &Node, envelope: &Envelope) -> Reach {
        match &self.mode {
            Mode::Local { history, .. } => {
                carry_out_kept(node, envelope, history.as_deref()).await;
                Reach::Everywhere
            }
            Mode::Redis(redis) => {
                if redis.publish(envelope, false).await.is_ok() {
                    return Reach::Everywhere;
                }
                node.carry_out(envelope).await;
                Reach::ThisNodeOnly
            }
        }
    }

    /// All or nothing, for the server API: carries `envelope` out on every
    /// node, in the order publications are accepted, and returns how many
    /// sockets it reached (in the scaled mode, what the nodes answered within
    /// a second). Redis away: nothing is done anywhere.
    pub(crate) async fn publish(
        &self,
        node: &Node,
        envelope: &Envelope,
    ) -> Result<Outcome, Unavailable> {
        match &self.mode {
            Mode::Local { history, .. } => {
                Ok(carry_out_kept(node, envelope, history.as_deref()).await)
            }
            Mode::Redis(redis) => redis.publish(envelope, true).await,
        }
    }

    /// `socket.recovery_secs` and its bound, when recovery is on.
    pub(crate) fn recovery(&self) -> Option<RecoveryConfig> {
        self.recovery
    }

    /// The newest offset of the history (where a new recovering socket starts).
    pub(crate) async fn current_offset(&self) -> Result<u64, Unavailable> {
        match &self.mode {
            Mode::Local {
                history: Some(history),
                ..
            } => Ok(history.current().await),
            Mode::Local { history: None, .. } => Ok(0),
            Mode::Redis(redis) => redis.current_offset().await,
        }
    }

    /// What `targets` were sent after `after`, in order, once each; `None`
    /// when the history no longer holds all of it.
    pub(crate) async fn missed(
        &self,
        targets: &[String],
        after: u64,
    ) -> Result<Option<Vec<Missed>>, Unavailable> {
        match &self.mode {
            Mode::Local {
                history: Some(history),
                ..
            } => Ok(history.missed(targets, after).await),
            Mode::Local { history: None, .. } => Ok(None),
            Mode::Redis(redis) => redis.missed(targets, after).await,
        }
    }

    /// Keeps `sessions` (each with the socket that owns it: the internal
    /// id) for `ttl`, unless another socket took one meanwhile.
    pub(crate) async fn save_sessions(
        &self,
        sessions: &[(String, Session)],
        ttl: std::time::Duration,
    ) {
        let saved = match &self.mode {
            Mode::Local {
                history: Some(history),
                ..
            } => {
                history.save(sessions, ttl);
                Ok(())
            }
            Mode::Local { history: None, .. } => Ok(()),
            Mode::Redis(redis) => redis.save_sessions(sessions, ttl).await,
        };
        if saved.is_err() {
            tracing::debug!("recovery sessions could not be kept (Redis unavailable)");
        }
    }

    /// The session of `pid`, taken by the socket `taker` if it is `user`'s:
    /// from then on only `taker` saves it.
    pub(crate) async fn take_session(
        &self,
        pid: &str,
        user: &str,
        taker: &str,
    ) -> Result<Option<Session>, Unavailable> {
        match &self.mode {
            Mode::Local {
                history: Some(history),
                ..
            } => Ok(history.take(pid, user, taker)),
            Mode::Local { history: None, .. } => Ok(None),
            Mode::Redis(redis) => redis.take_session(pid, user, taker).await,
        }
    }

    /// Forgets the session of `pid` (its socket `owner` was ended on
    /// purpose), unless another socket took it.
    pub(crate) async fn forget_session(&self, pid: &str, owner: &str) {
        match &self.mode {
            Mode::Local {
                history: Some(history),
                ..
            } => history.forget(pid, owner),
            Mode::Local { history: None, .. } => {}
            Mode::Redis(redis) => redis.forget_session(pid, owner).await,
        }
    }

    /// Distinct users and sockets connected now, on every node.
    pub(crate) async fn presence_summary(&self) -> Result<Summary, Unavailable> {
        match &self.mode {
            Mode::Local { .. } => Ok(self.presence.summary()),
            Mode::Redis(redis) => redis.presence_summary().await,
        }
    }

    /// `user`'s sockets connected now, on every node.
    pub(crate) async fn presence_of(&self, user: &str) -> Result<u64, Unavailable> {
        match &self.mode {
            Mode::Local { .. } => Ok(self.presence.sockets_of(user)),
            Mode::Redis(redis) => redis.presence_of(user).await,
        }
    }

    /// Claims idempotency key `key` (already scoped to the API key) for one
    /// hour, on every node; a repeat waits for the first to finish.
    pub(crate) async fn claim(&self, key: &str) -> Result<Claim, ClaimError> {
        let deadline = tokio::time::Instant::now() + outcomes::IDEMPOTENCY_WAIT;
        match &self.mode {
            Mode::Local { stores, .. } => stores.claim(key, deadline).await,
            Mode::Redis(redis) => redis.claim(key, deadline).await,
        }
    }

    /// Records the response of the request that claimed `key`.
    pub(crate) async fn complete(&self, key: &str, response: &str) {
        match &self.mode {
            Mode::Local { stores, .. } => stores.complete(key, response),
            Mode::Redis(redis) => redis.complete(key, response).await,
        }
    }

    /// Gives `key` back: its request was not carried out, a retry may be.
    pub(crate) async fn release(&self, key: &str) {
        match &self.mode {
            Mode::Local { stores, .. } => stores.release(key),
            Mode::Redis(redis) => redis.release(key).await,
        }
    }

    /// Whether sockets may be opened: in the scaled mode, once set up (the
    /// revocation list is complete).
    pub(crate) fn accepting(&self) -> bool {
        match &self.mode {
            Mode::Local { .. } => true,
            Mode::Redis(redis) => redis.accepting(),
        }
    }

    /// `GET /readyz`'s answer: why this node is not ready, if it is not.
    pub(crate) fn not_ready_reason(&self) -> Option<String> {
        match &self.mode {
            Mode::Local { .. } => None,
            Mode::Redis(redis) => redis.not_ready_reason(),
        }
    }

    /// The lines the mode adds to `/metrics`.
    pub(crate) fn render_metrics(&self, out: &mut String) {
        let history = match &self.mode {
            Mode::Local {
                history: Some(history),
                ..
            } => Some(history.size()),
            Mode::Local { history: None, .. } => None,
            Mode::Redis(redis) => self.recovery.map(|_| redis.history_size()),
        };
        if let Some(size) = history {
            service::metrics::single(
                out,
                "authbridge_recovery_history_events",
                "gauge",
                "Events kept for connection state recovery, over every target (scaled mode: counted every 10 s).",
                size,
            );
        }
        match &self.mode {
            Mode::Local { .. } => {}
            Mode::Redis(redis) => service::metrics::redis_up(out, redis.is_up()),
        }
    }

    /// At a graceful shutdown, once the sockets are closed (before the
    /// webhooks' drain): this node's share of presence leaves the cluster's
    /// counts at once (a node that dies is corrected by the others within
    /// seconds).
    pub(crate) async fn leave(&self) {
        if let Mode::Redis(redis) = &self.mode {
            redis.leave().await;
        }
    }

    /// At the end of a graceful shutdown, after the webhooks' drain: in the
    /// scaled mode another node sends the presence events left.
    pub(crate) async fn shutdown(&self) {
        if let Mode::Redis(redis) = &self.mode {
            redis.release_sender().await;
        }
    }
}

/// Carries `envelope` out on this node (the whole cluster, in the embedded
/// mode); with recovery, an emit first gets its offset and enters the
/// history, under the lock that keeps offsets in the order they are emitted.
async fn carry_out_kept(
    node: &Node,
    envelope: &Envelope,
    history: Option<&local_history::LocalHistory>,
) -> Outcome {
    let (Some(history), Action::Emit { event, data }) = (history, &envelope.action) else {
        return node.carry_out(envelope).await;
    };
    let mut kept = history.history.lock().await;
    let offset = kept.record(
        history.config(),
        &envelope.to.history_targets(),
        event,
        data,
    );
    let mut envelope = envelope.clone();
    envelope.offset = Some(offset);
    node.carry_out(&envelope).await
}

//! The scaled mode: nodes that share one Redis behave as one server.
//!
//! Redis carries what nodes must share — envelopes for sockets anywhere, ended
//! sessions — and never decides who is let in to a socket: a token stands or
//! falls by the key, a revocation notice on the channel is signed like the
//! HTTP one, and a revocation key can only refuse, never admit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use claims::{REVOCATION_CHANNEL, REVOKED_KEY_PREFIX, Revocation};
use redis::AsyncCommands as _;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use socketioxide::SocketIo;
use tokio::sync::{mpsc, watch};

use super::pubsub::PubSub;
use crate::bus::{self, Envelope, Reach};
use crate::revocations::Revoker;

/// The channel envelopes travel on between nodes.
const EVENTS_CHANNEL: &str = "authbridge:events";

/// How often the node checks that Redis answers.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Messages of one channel waiting for their consumer.
const CHANNEL_BUFFER: usize = 4096;

/// An envelope on the wire, with the node that published it (which has
/// delivered it to its own sockets already).
#[derive(Debug, Serialize, Deserialize)]
struct Published {
    node: String,
    envelope: Envelope,
}

/// This node's link to the others.
#[derive(Debug)]
pub(crate) struct RedisBackplane {
    pubsub: PubSub,
    /// `host:port`, for logs (never the password).
    host: String,
    /// This process, among the nodes (random, new on every start).
    node: String,
    /// Set up: the channels subscribed and the revocation list loaded.
    ready: watch::Sender<bool>,
    /// Whether Redis answered the last probe.
    up: AtomicBool,
}

impl RedisBackplane {
    pub(super) fn new(url: &str, host: String) -> redis::RedisResult<Self> {
        Ok(Self {
            pubsub: PubSub::new(url)?,
            host,
            node: uuid::Uuid::new_v4().simple().to_string(),
            ready: watch::channel(false).0,
            up: AtomicBool::new(false),
        })
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

    /// Sends `envelope` to the other nodes.
    pub(super) async fn publish(&self, envelope: &Envelope) -> Reach {
        let published = Published {
            node: self.node.clone(),
            envelope: envelope.clone(),
        };
        let payload = match serde_json::to_vec(&published) {
            Ok(payload) => payload,
            Err(error) => {
                tracing::error!(%error, "an envelope could not be serialized");
                return Reach::ThisNodeOnly;
            }
        };
        let mut sent = self.pubsub.publish(EVENTS_CHANNEL, &payload).await;
        // Redis answered the last probe, yet this publish failed: the
        // connection had just been lost and is being made again (a Redis
        // restart). Once more, before giving up on the other nodes.
        if sent.is_err() && self.is_up() {
            sent = self.pubsub.publish(EVENTS_CHANNEL, &payload).await;
        }
        match sent {
            Ok(()) => Reach::Everywhere,
            Err(error) => {
                tracing::debug!(%error, "publishing to the other nodes failed: this node only");
                Reach::ThisNodeOnly
            }
        }
    }

    /// Sets the node up once Redis answers, then watches Redis for as long as
    /// the node runs: the envelope and revocation channels, the shared list;
    /// after an outage, the list again (what was revoked meanwhile).
    pub(super) async fn run(self: std::sync::Arc<Self>, io: SocketIo, revoker: Revoker) {
        let mut logged_waiting = false;
        let mut wait_for_redis = async |what: &str, error: redis::RedisError| {
            if !logged_waiting {
                tracing::warn!(redis = %self.host, %error, "Redis unavailable ({what}): sockets are refused with 503 until it answers");
                logged_waiting = true;
            }
            tokio::time::sleep(PROBE_EVERY).await;
        };
        let envelopes = loop {
            match self.pubsub.subscribe(EVENTS_CHANNEL, CHANNEL_BUFFER).await {
                Ok(envelopes) => break envelopes,
                Err(error) => wait_for_redis("event channel", error).await,
            }
        };
        tokio::spawn(deliver_published(envelopes, self.node.clone(), io));
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
        tokio::spawn(apply_notices(notices, revoker.clone()));
        let mut conn = self.pubsub.connection();
        loop {
            match load_revocations(&mut conn, &revoker).await {
                Ok(count) => {
                    tracing::info!(redis = %self.host, revoked = count, "connected to Redis: scaled mode ready");
                    break;
                }
                Err(error) => wait_for_redis("revocation list", error).await,
            }
        }
        self.up.store(true, Ordering::Relaxed);
        self.ready.send_replace(true);

        // The watch: one PING a second; on the way back, the list again.
        let mut probe = tokio::time::interval(PROBE_EVERY);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            probe.tick().await;
            let answer: redis::RedisResult<String> =
                redis::cmd("PING").query_async(&mut conn).await;
            match answer {
                Ok(_) if self.is_up() => {}
                Ok(_) => match load_revocations(&mut conn, &revoker).await {
                    Ok(count) => {
                        self.up.store(true, Ordering::Relaxed);
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
                            "Redis unreachable: publications reach this node's sockets only, and logouts elsewhere wait, until it is back"
                        );
                    }
                }
            }
        }
    }
}

/// Delivers what other nodes publish to this node's sockets, in the order
/// Redis relays it.
async fn deliver_published(mut envelopes: mpsc::Receiver<Vec<u8>>, node: String, io: SocketIo) {
    while let Some(payload) = envelopes.recv().await {
        match serde_json::from_slice::<Published>(&payload) {
            // Its own publications were delivered when they were made.
            Ok(published) if published.node == node => {}
            Ok(published) => {
                if let Err(error) = bus::deliver_locally(&io, &published.envelope).await {
                    tracing::warn!(%error, event = %published.envelope.event, "delivery failed");
                }
            }
            Err(error) => tracing::warn!(%error, "an envelope on Redis is malformed: ignored"),
        }
    }
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

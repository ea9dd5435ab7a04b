//! Scale-out over Redis: the Socket.IO adapter's pub/sub driver, the
//! revocation channel and list that every socket-server node shares, and the
//! watch on Redis that tells when it is gone and when it is back.
//!
//! Redis carries what nodes must share (broadcasts, room operations, ended
//! sessions); it never decides who is let in to a socket: a token stands or falls by the
//! key, a revocation notice on the channel is signed like the HTTP one, and a
//! revocation key can only refuse, never admit.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::StreamExt as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands as _, PushInfo, PushKind};
use socketioxide::SocketIo;
use socketioxide::handler::ConnectHandler as _;
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};
use tokio::sync::watch;

use claims::{REVOCATION_CHANNEL, REVOKED_KEY_PREFIX};

use crate::revocations::Channel;

/// The Socket.IO adapter of the scaled mode.
pub(crate) type RedisAdapter = CustomRedisAdapter<socketioxide::adapter::Emitter, ResilientDriver>;

/// How often the node checks that Redis answers.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Messages of one channel waiting for their consumer.
const CHANNEL_BUFFER: usize = 4096;

type Handlers = HashMap<String, tokio::sync::mpsc::Sender<ChanItem>>;

/// A pub/sub driver for `socketioxide-redis` that survives Redis restarts.
///
/// The crate's own driver holds one connection and loses its subscriptions
/// when Redis goes away. This one sits on redis-rs's `ConnectionManager`
/// (RESP3), which reconnects and subscribes again by itself; pushed messages
/// are routed to the channel's consumer by name.
#[derive(Clone)]
pub(crate) struct ResilientDriver {
    conn: ConnectionManager,
    handlers: Arc<RwLock<Handlers>>,
}

impl std::fmt::Debug for ResilientDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResilientDriver").finish_non_exhaustive()
    }
}

fn read_message(push: PushInfo) -> Option<ChanItem> {
    if push.kind != PushKind::Message {
        return None;
    }
    let mut data = push.data.into_iter();
    let channel: String = redis::from_redis_value(data.next()?).ok()?;
    let payload: Vec<u8> = redis::from_redis_value(data.next()?).ok()?;
    Some((channel, payload))
}

impl ResilientDriver {
    /// Connects lazily: nothing is sent to Redis until the first command, so a
    /// node starts (and answers 503) while Redis is down.
    pub(crate) fn new(url: &str) -> redis::RedisResult<Self> {
        // The RESP3 protocol carries pub/sub pushes on the same connection.
        let client = redis::Client::open(format!("{url}?protocol=resp3"))?;
        let handlers: Arc<RwLock<Handlers>> = Arc::default();
        let routes = handlers.clone();
        let config = ConnectionManagerConfig::new()
            .set_automatic_resubscription()
            // Fail fast while Redis is away (the watch below retries), so a
            // broadcast never waits long on a dead link.
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1))
            .set_push_sender(move |push: PushInfo| {
                if let Some((channel, payload)) = read_message(push) {
                    let routes = routes
                        .read()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if let Some(consumer) = routes.get(&channel)
                        && consumer.try_send((channel, payload)).is_err()
                    {
                        tracing::warn!("a pub/sub consumer is full: a message was dropped");
                    }
                }
                Ok::<(), Infallible>(())
            });
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self { conn, handlers })
    }

    fn routes(&self) -> std::sync::RwLockWriteGuard<'_, Handlers> {
        self.handlers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

impl Driver for ResilientDriver {
    type Error = redis::RedisError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        self.conn.clone().publish::<_, _, ()>(chan, val).await
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        let (consumer, messages) = tokio::sync::mpsc::channel(size.max(1));
        // Routed before subscribing: no message may arrive with nowhere to go.
        self.routes().insert(chan.clone(), consumer);
        if let Err(error) = self.conn.clone().subscribe(&chan).await {
            self.routes().remove(&chan);
            return Err(error);
        }
        Ok(MessageStream::new(messages))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        self.routes().remove(&chan);
        self.conn.clone().unsubscribe(chan).await
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let (_, count): (String, u16) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(chan)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(count)
    }
}

/// The adapter constructor handed to `SocketIo::builder().with_adapter`.
pub(crate) fn adapter(driver: ResilientDriver) -> RedisAdapterCtr<ResilientDriver> {
    RedisAdapterCtr::new_with_driver(driver, RedisAdapterConfig::default())
}

/// Whether this node can serve: in the scaled mode, once the adapter is set up
/// and the shared revocation list is loaded; Redis reachable right now.
#[derive(Debug)]
pub(crate) struct Readiness {
    ready: watch::Sender<bool>,
    redis_up: AtomicBool,
    /// `None` in the embedded mode.
    redis_host: Option<String>,
}

impl Readiness {
    pub(crate) fn embedded() -> Self {
        Self {
            ready: watch::channel(true).0,
            redis_up: AtomicBool::new(true),
            redis_host: None,
        }
    }

    pub(crate) fn scaled(redis_host: String) -> Self {
        Self {
            ready: watch::channel(false).0,
            redis_up: AtomicBool::new(false),
            redis_host: Some(redis_host),
        }
    }

    /// Sockets may be opened: the namespace exists and the list is complete.
    pub(crate) fn accepting(&self) -> bool {
        *self.ready.borrow()
    }

    pub(crate) fn redis_up(&self) -> bool {
        self.redis_up.load(Ordering::Relaxed)
    }

    pub(crate) fn scaled_mode(&self) -> bool {
        self.redis_host.is_some()
    }

    /// `GET /readyz`'s answer: why this node is not ready, if it is not.
    pub(crate) fn not_ready_reason(&self) -> Option<String> {
        let host = self.redis_host.as_deref()?;
        if !self.accepting() {
            return Some(format!("starting: waiting for Redis at {host}"));
        }
        if !self.redis_up() {
            return Some(format!("Redis at {host} is unreachable"));
        }
        None
    }

    fn set_redis_up(&self, up: bool) -> bool {
        self.redis_up.swap(up, Ordering::Relaxed)
    }
}

/// Sets up the scaled mode once Redis answers, then watches it for as long as
/// the node runs: the namespace (the adapter subscribes to its channels), the
/// revocation channel, the shared list; after an outage, the list again (what
/// was revoked meanwhile).
pub(crate) async fn run(
    io: SocketIo<RedisAdapter>,
    driver: ResilientDriver,
    channel: Channel<RedisAdapter>,
    readiness: Arc<Readiness>,
) {
    let host = readiness.redis_host.clone().unwrap_or_default();
    let mut logged_waiting = false;
    let mut wait_for_redis = async |what: &str, error: String| {
        if !logged_waiting {
            tracing::warn!(redis = %host, %error, "Redis unavailable ({what}): sockets are refused with 503 until it answers");
            logged_waiting = true;
        }
        tokio::time::sleep(PROBE_EVERY).await;
    };
    loop {
        match io
            .ns(
                "/",
                crate::events::on_connect.with(crate::auth::authenticate),
            )
            .await
        {
            Ok(()) => break,
            Err(error) => wait_for_redis("adapter", error.to_string()).await,
        }
    }
    let notices = loop {
        match driver
            .subscribe(REVOCATION_CHANNEL.to_owned(), CHANNEL_BUFFER)
            .await
        {
            Ok(notices) => break notices,
            Err(error) => wait_for_redis("revocation channel", error.to_string()).await,
        }
    };
    tokio::spawn(consume_notices(notices, channel.clone()));
    let mut conn = driver.connection();
    loop {
        match load_revocations(&mut conn, &channel).await {
            Ok(count) => {
                tracing::info!(redis = %host, revoked = count, "connected to Redis: scaled mode ready");
                break;
            }
            Err(error) => wait_for_redis("revocation list", error.to_string()).await,
        }
    }
    readiness.set_redis_up(true);
    readiness.ready.send_replace(true);

    // The watch: one PING a second; on the way back, the list again.
    let mut probe = tokio::time::interval(PROBE_EVERY);
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        probe.tick().await;
        let answer: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut conn).await;
        let was_up = readiness.redis_up();
        match answer {
            Ok(_) if was_up => {}
            Ok(_) => match load_revocations(&mut conn, &channel).await {
                Ok(count) => {
                    readiness.set_redis_up(true);
                    tracing::info!(redis = %host, revoked = count, "Redis is back: broadcasts cross nodes again");
                }
                Err(error) => {
                    tracing::warn!(redis = %host, %error, "Redis answers, but the revocation list could not be read yet")
                }
            },
            Err(error) => {
                if readiness.set_redis_up(false) {
                    tracing::warn!(
                        redis = %host, %error,
                        "Redis unreachable: messages reach this node's sockets only, and logouts elsewhere wait, until it is back"
                    );
                }
            }
        }
    }
}

/// Applies each signed notice from the channel (a logout on any web node).
async fn consume_notices(mut notices: MessageStream<ChanItem>, channel: Channel<RedisAdapter>) {
    while let Some((_, payload)) = notices.next().await {
        match std::str::from_utf8(&payload) {
            Ok(notice) => {
                let _ = crate::revocations::apply_notice(&channel, notice).await;
            }
            Err(_) => tracing::warn!("a revocation notice on Redis is not UTF-8: ignored"),
        }
    }
}

/// Reads every `authbridge:revoked:*` key into this node's list; returns how
/// many sessions are revoked.
async fn load_revocations(
    conn: &mut ConnectionManager,
    channel: &Channel<RedisAdapter>,
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
                    revoked.push(claims::Revocation {
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
    for sid in channel.list.revoke(&revoked, claims::unix_now()) {
        crate::revocations::end_session(&channel.io, &sid).await;
    }
    channel.list.mark_synced();
    Ok(channel.list.len())
}

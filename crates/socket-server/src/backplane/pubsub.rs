//! Redis pub/sub that survives Redis restarts: one multiplexed RESP3
//! connection (redis-rs's `ConnectionManager`, which reconnects and subscribes
//! again by itself), pushed messages routed to each channel's consumer.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands as _, PushInfo, PushKind};
use tokio::sync::mpsc;

type Routes = HashMap<String, mpsc::Sender<Vec<u8>>>;

/// Publishes, and subscribes channels to consumers.
#[derive(Clone)]
pub(super) struct PubSub {
    conn: ConnectionManager,
    routes: Arc<RwLock<Routes>>,
}

impl std::fmt::Debug for PubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubSub").finish_non_exhaustive()
    }
}

impl PubSub {
    /// Connects lazily: nothing is sent to Redis until the first command, so a
    /// node starts (and answers 503) while Redis is down.
    pub(super) fn new(url: &str) -> redis::RedisResult<Self> {
        // The RESP3 protocol carries pub/sub pushes on the same connection.
        let client = redis::Client::open(format!("{url}?protocol=resp3"))?;
        let routes: Arc<RwLock<Routes>> = Arc::default();
        let consumers = routes.clone();
        let config = ConnectionManagerConfig::new()
            .set_automatic_resubscription()
            // Fail fast while Redis is away (the watch retries), so a
            // publication never waits long on a dead link.
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1))
            .set_push_sender(move |push: PushInfo| {
                if let Some((channel, payload)) = read_message(push) {
                    let consumers = consumers
                        .read()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if let Some(consumer) = consumers.get(&channel)
                        && consumer.try_send(payload).is_err()
                    {
                        tracing::warn!(%channel, "a pub/sub consumer is full: a message was dropped");
                    }
                }
                Ok::<(), Infallible>(())
            });
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self { conn, routes })
    }

    /// A command connection on the same multiplexed link.
    pub(super) fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Publishes `payload`; returns how many subscribers got it.
    pub(super) async fn publish(&self, channel: &str, payload: &[u8]) -> redis::RedisResult<u64> {
        self.conn.clone().publish(channel, payload).await
    }

    /// Every message on `channel` from now on, `buffer` of them at most
    /// waiting for the consumer (past it they are dropped, and logged).
    pub(super) async fn subscribe(
        &self,
        channel: &str,
        buffer: usize,
    ) -> redis::RedisResult<mpsc::Receiver<Vec<u8>>> {
        let (consumer, messages) = mpsc::channel(buffer.max(1));
        // Routed before subscribing: no message may arrive with nowhere to go.
        self.routes_mut().insert(channel.to_owned(), consumer);
        if let Err(error) = self.conn.clone().subscribe(channel).await {
            self.routes_mut().remove(channel);
            return Err(error);
        }
        Ok(messages)
    }

    fn routes_mut(&self) -> std::sync::RwLockWriteGuard<'_, Routes> {
        self.routes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn read_message(push: PushInfo) -> Option<(String, Vec<u8>)> {
    if push.kind != PushKind::Message {
        return None;
    }
    let mut data = push.data.into_iter();
    let channel: String = redis::from_redis_value(data.next()?).ok()?;
    let payload: Vec<u8> = redis::from_redis_value(data.next()?).ok()?;
    Some((channel, payload))
}

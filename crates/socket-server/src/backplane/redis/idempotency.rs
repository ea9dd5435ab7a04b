//! The scaled mode's idempotency keys of the server API: `SET NX` with a
//! short pending time while the first request is carried out, then its
//! response for the hour, on every node.

use redis::AsyncCommands as _;
use tokio::time::{Duration, Instant};

use super::RedisBackplane;
use crate::backplane::outcomes::{
    Claim, ClaimError, IDEMPOTENCY_PENDING, IDEMPOTENCY_TTL, Unavailable,
};

/// Idempotency keys of the server API.
const IDEMPOTENCY_PREFIX: &str = "authbridge:idempotency:";
/// How often a repeat of an idempotent request looks whether the first is done.
const IDEMPOTENCY_POLL: Duration = Duration::from_millis(25);

impl RedisBackplane {
    pub(in crate::backplane) async fn claim(
        &self,
        key: &str,
        deadline: Instant,
    ) -> Result<Claim, ClaimError> {
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

    pub(in crate::backplane) async fn complete(&self, key: &str, response: &str) {
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

    pub(in crate::backplane) async fn release(&self, key: &str) {
        let released: redis::RedisResult<()> = self
            .pubsub
            .connection()
            .del(format!("{IDEMPOTENCY_PREFIX}{key}"))
            .await;
        if let Err(error) = released {
            tracing::warn!(%error, "an idempotency key could not be released (it expires within the hour)");
        }
    }
}

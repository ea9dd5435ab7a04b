//! The scaled mode's link to Redis (`redis.url` set): a connection pool that
//! connects lazily (the node starts while Redis is down), the watch that
//! probes it every second, and the logout's record: `SET
//! authbridge:revoked:{sid}` + `PUBLISH` of a signed notice to every
//! socket-server node. Every call has a deadline: no request waits on a dead
//! Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use claims::{REVOCATION_CHANNEL, REVOKED_KEY_PREFIX, Revocation, RevocationSigner};
use deadpool_redis::redis;
use deadpool_redis::{CreatePoolError, Pool, Runtime};

use crate::error::chain;

/// The longest a request waits for Redis before it is answered 503.
pub(super) const REDIS_DEADLINE: Duration = Duration::from_secs(2);
/// How often the watch asks Redis whether it is there.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Why a call to Redis failed. The texts are the client library's own.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RedisError {
    #[error("Redis did not answer within {0:?}")]
    TimedOut(Duration),
    /// No connection could be had from the pool.
    #[error(transparent)]
    Pool(#[from] deadpool_redis::PoolError),
    /// Redis answered with an error, or the connection broke.
    #[error(transparent)]
    Command(#[from] redis::RedisError),
}

/// Why a logout could not be recorded (nothing was: the logout must not go
/// ahead).
#[derive(Debug, thiserror::Error)]
pub(crate) enum RevokeError {
    #[error("signing the revocation notice")]
    Sign(#[source] claims::IssueError),
    #[error(transparent)]
    Redis(#[from] RedisError),
}

/// This node's link to Redis: the pool and the latest probe's answer.
#[derive(Clone)]
pub(crate) struct Redis {
    pool: Pool,
    host: Arc<str>,
    up: Arc<AtomicBool>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// The pool for `url` (`host` names it in logs: the URL may hold a
    /// password). Nothing is connected yet.
    pub(crate) fn new(url: &str, host: String) -> Result<Self, CreatePoolError> {
        let pool = deadpool_redis::Config::from_url(url)
            .builder()
            .map_err(CreatePoolError::Config)?
            .max_size(64)
            .wait_timeout(Some(REDIS_DEADLINE))
            .create_timeout(Some(REDIS_DEADLINE))
            .recycle_timeout(Some(REDIS_DEADLINE))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(CreatePoolError::Build)?;
        Ok(Self {
            pool,
            host: Arc::from(host),
            up: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The pool, for actix-session's Redis store.
    pub(super) fn pool(&self) -> Pool {
        self.pool.clone()
    }

    /// Whether the latest probe got an answer.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    async fn ping(&self) -> Result<(), RedisError> {
        within_deadline(
            async {
                let mut conn = self.pool.get().await?;
                redis::cmd("PING").query_async::<String>(&mut conn).await?;
                Ok(())
            },
            |timed_out| timed_out,
        )
        .await
    }

    /// Logs when Redis goes away and when it is back, for as long as the node
    /// runs; readiness and metrics read the latest answer.
    pub(crate) async fn watch(self) {
        let mut first = true;
        let mut probe = tokio::time::interval(PROBE_EVERY);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            probe.tick().await;
            let answer = self.ping().await;
            let was_up = self.up.swap(answer.is_ok(), Ordering::Relaxed);
            match answer {
                Ok(()) if first || !was_up => {
                    tracing::info!(redis = %self.host, "connected to Redis: sessions and logouts are shared");
                }
                Err(error) if first || was_up => tracing::warn!(
                    redis = %self.host, error = %chain(&error),
                    "Redis unavailable: logins, tokens and logouts answer 503 until it is back"
                ),
                _ => {}
            }
            first = false;
        }
    }

    /// Records a logout in Redis (the key outlives every token of the session
    /// by nothing: it expires when they do) and announces it to every
    /// socket-server node.
    pub(crate) async fn revoke(
        &self,
        signer: &RevocationSigner,
        revocation: Revocation,
    ) -> Result<(), RevokeError> {
        let now = claims::unix_now();
        let notice = signer
            .sign(std::slice::from_ref(&revocation), now)
            .map_err(RevokeError::Sign)?;
        within_deadline(
            async {
                let mut conn = self.pool.get().await?;
                redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg(format!("{REVOKED_KEY_PREFIX}{}", revocation.sid))
                    .arg(revocation.until)
                    .arg("EXAT")
                    .arg(revocation.until)
                    .ignore()
                    .cmd("PUBLISH")
                    .arg(REVOCATION_CHANNEL)
                    .arg(notice)
                    .ignore()
                    .query_async::<()>(&mut conn)
                    .await?;
                Ok(())
            },
            |timed_out| timed_out,
        )
        .await?;
        Ok(())
    }
}

/// `work`, or — when Redis does not answer within [`REDIS_DEADLINE`] — the
/// error `timed_out` makes of [`RedisError::TimedOut`] (each caller has its
/// own error type).
pub(super) async fn within_deadline<T, E>(
    work: impl Future<Output = Result<T, E>>,
    timed_out: impl FnOnce(RedisError) -> E,
) -> Result<T, E> {
    tokio::time::timeout(REDIS_DEADLINE, work)
        .await
        .unwrap_or_else(|_| Err(timed_out(RedisError::TimedOut(REDIS_DEADLINE))))
}

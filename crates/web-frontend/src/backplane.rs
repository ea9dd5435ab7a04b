//! Scale-out over Redis (`redis.url` set): login sessions live in Redis
//! (actix-session's Redis store), so any web-frontend node serves any session,
//! and logouts are recorded there and announced to every socket-server node.
//!
//! Redis down: pages without a session still work; whatever needs the session
//! store gets 503 with `Retry-After` (never a hang: every Redis call has a
//! deadline); the pool reconnects by itself when Redis is back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_session::storage::{
    LoadError, RedisSessionStore, SaveError, SessionKey, SessionStore, UpdateError,
};
use actix_web::body::MessageBody;
use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use anyhow::Context as _;
use claims::{REVOCATION_CHANNEL, REVOKED_KEY_PREFIX, Revocation, RevocationSigner};
use deadpool_redis::redis;
use deadpool_redis::{Pool, Runtime};

use crate::session_store::MemorySessionStore;

/// Session keys, so that one Redis can hold more than this application.
const SESSION_KEY_PREFIX: &str = "authbridge:session:";

/// The longest a request waits for Redis before it is answered 503.
const REDIS_DEADLINE: Duration = Duration::from_secs(2);
/// How often the watch asks Redis whether it is there.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// This node's link to Redis: a connection pool that connects lazily (the
/// node starts while Redis is down) and the latest probe's answer.
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
    pub(crate) fn new(url: &str, host: String) -> anyhow::Result<Self> {
        let pool = deadpool_redis::Config::from_url(url)
            .builder()
            .context("redis.url")?
            .max_size(64)
            .wait_timeout(Some(REDIS_DEADLINE))
            .create_timeout(Some(REDIS_DEADLINE))
            .recycle_timeout(Some(REDIS_DEADLINE))
            .runtime(Runtime::Tokio1)
            .build()
            .context("redis.url")?;
        Ok(Self {
            pool,
            host: Arc::from(host),
            up: Arc::new(AtomicBool::new(false)),
        })
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    async fn ping(&self) -> anyhow::Result<()> {
        within_deadline(async {
            let mut conn = self.pool.get().await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await?;
            Ok(())
        })
        .await
    }

    /// Logs when Redis goes away and when it is back, for as long as the node
    /// runs; `/readyz` and `/metrics` read the latest answer.
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
                    redis = %self.host, error = %format!("{error:#}"),
                    "Redis unavailable: logins, tokens and logouts answer 503 until it is back"
                ),
                _ => {}
            }
            first = false;
        }
    }

    /// The session store on this pool (actix-session's own Redis store).
    pub(crate) async fn session_store(&self) -> anyhow::Result<RedisSessionStore> {
        RedisSessionStore::builder_pooled(self.pool.clone())
            .cache_keygen(|key| format!("{SESSION_KEY_PREFIX}{key}"))
            .build()
            .await
    }

    /// Records a logout in Redis (the key outlives every token of the session
    /// by nothing: it expires when they do) and announces it to every
    /// socket-server node.
    pub(crate) async fn revoke(
        &self,
        signer: &RevocationSigner,
        revocation: Revocation,
    ) -> anyhow::Result<()> {
        let now = claims::unix_now();
        let notice = signer
            .sign(std::slice::from_ref(&revocation), now)
            .context("signing the revocation notice")?;
        within_deadline(async {
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
        })
        .await
    }
}

async fn within_deadline<T>(work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    bounded(work, |error| error).await
}

/// `work`, or — when Redis does not answer within [`REDIS_DEADLINE`] — the
/// error `timed_out` makes of that (each session-store call has its own type).
async fn bounded<T, E>(
    work: impl Future<Output = Result<T, E>>,
    timed_out: impl FnOnce(anyhow::Error) -> E,
) -> Result<T, E> {
    tokio::time::timeout(REDIS_DEADLINE, work)
        .await
        .unwrap_or_else(|_| {
            Err(timed_out(anyhow::anyhow!(
                "Redis did not answer within {REDIS_DEADLINE:?}"
            )))
        })
}

/// The session store of either mode.
#[derive(Clone)]
pub(crate) enum Sessions {
    Memory(MemorySessionStore),
    Redis(RedisSessionStore),
}

impl SessionStore for Sessions {
    async fn load(
        &self,
        session_key: &SessionKey,
    ) -> Result<Option<std::collections::HashMap<String, String>>, LoadError> {
        match self {
            Sessions::Memory(store) => store.load(session_key).await,
            Sessions::Redis(store) => bounded(store.load(session_key), LoadError::Other).await,
        }
    }

    async fn save(
        &self,
        state: std::collections::HashMap<String, String>,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, SaveError> {
        match self {
            Sessions::Memory(store) => store.save(state, ttl).await,
            Sessions::Redis(store) => bounded(store.save(state, ttl), SaveError::Other).await,
        }
    }

    async fn update(
        &self,
        session_key: SessionKey,
        state: std::collections::HashMap<String, String>,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        match self {
            Sessions::Memory(store) => store.update(session_key, state, ttl).await,
            Sessions::Redis(store) => {
                bounded(store.update(session_key, state, ttl), UpdateError::Other).await
            }
        }
    }

    async fn update_ttl(
        &self,
        session_key: &SessionKey,
        ttl: &CookieDuration,
    ) -> anyhow::Result<()> {
        match self {
            Sessions::Memory(store) => store.update_ttl(session_key, ttl).await,
            Sessions::Redis(store) => within_deadline(store.update_ttl(session_key, ttl)).await,
        }
    }

    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        match self {
            Sessions::Memory(store) => store.delete(session_key).await,
            Sessions::Redis(store) => within_deadline(store.delete(session_key)).await,
        }
    }
}

/// In the scaled mode, the session store failing means Redis is unavailable:
/// the request is answered 503 with `Retry-After`, not an opaque 500.
pub(crate) async fn unavailable_store(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let scaled = request
        .app_data::<web::Data<crate::AppState>>()
        .is_some_and(|state| state.redis.is_some());
    match next.call(request).await {
        Err(error) if scaled => {
            tracing::warn!(error = %error, "the session store (Redis) failed: 503");
            Err(StoreUnavailable.into())
        }
        other => other,
    }
}

/// 503: the session store (Redis) did not answer.
#[derive(Debug, thiserror::Error)]
#[error("the session store is unavailable")]
pub(crate) struct StoreUnavailable;

impl actix_web::ResponseError for StoreUnavailable {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, "2"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .content_type("text/plain; charset=utf-8")
            .body("The session store is unavailable; please try again in a moment.")
    }
}

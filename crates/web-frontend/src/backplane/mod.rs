//! The one place where one node and many differ: a [`Backplane`] is built
//! once, in `Application::build`, and every part of the web-frontend that
//! depends on the mode asks it — handlers and routes never look at the mode.
//!
//! - [`Backplane::Local`] (embedded, `redis.url` unset): sessions live in this
//!   process; a logout is pushed to the socket-server over HTTP, and every
//!   live one again every 2 s ([`local`]).
//! - [`Backplane::Redis`] (scaled): sessions live in Redis, so any node serves
//!   any session; a logout is recorded there and announced to every
//!   socket-server node ([`redis`]). Redis away: whatever needs it answers
//!   503, never hangs.
//!
//! Each capability a mode changes is one operation here: the session store,
//! `revoke`, what a failed store answers, readiness, the metrics lines, the
//! background tasks. Calls to the socket-server's HTTP API (in either mode)
//! go through [`http::SocketServerHttp`].

mod http;
mod local;
mod redis;
mod sessions;

use claims::Revocation;
use secrecy::ExposeSecret as _;
use settings::Settings;

use crate::error::{BuildError, WebError};
use crate::keys::KeyRing;

pub(crate) use http::SocketServerHttp;
pub(crate) use redis::RevokeError;
pub(crate) use sessions::Sessions;

/// One node, or one of many sharing Redis.
#[derive(Clone)]
pub(crate) enum Backplane {
    /// Embedded: one process holds the sessions and tells the socket-server.
    Local {
        sessions: sessions::MemorySessionStore,
        revocations: local::RevocationPublisher,
    },
    /// Scaled: Redis holds the sessions and carries the logouts.
    Redis {
        redis: redis::Redis,
        sessions: actix_session::storage::RedisSessionStore,
        /// What revocation notices are signed with (swapped on reload).
        keys: KeyRing,
    },
}

impl std::fmt::Debug for Backplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The mode, never the sessions.
        match self {
            Self::Local { .. } => f.debug_struct("Local").finish_non_exhaustive(),
            Self::Redis { redis, .. } => f
                .debug_struct("Redis")
                .field("redis", redis)
                .finish_non_exhaustive(),
        }
    }
}

/// What became of a logout's revocation.
#[derive(Debug)]
pub(crate) enum RevokeOutcome {
    /// The socket servers have it.
    Delivered,
    /// Not yet (the socket-server did not take it): it is resent every 2 s.
    Resending,
    /// Nothing was recorded (Redis is away): the logout must not go ahead.
    Unavailable(RevokeError),
}

impl Backplane {
    /// The backplane `settings` ask for, with its background tasks started on
    /// the current runtime: the revocation publisher (embedded), or the watch
    /// on Redis (scaled). Nothing waits for Redis: a scaled node starts while
    /// Redis is away and answers 503 where it needs it until it is back.
    pub(crate) async fn start(settings: &Settings, keys: &KeyRing) -> Result<Self, BuildError> {
        let Some(url) = &settings.redis.url else {
            let revocations = local::RevocationPublisher::start(
                keys.clone(),
                settings.web.revocation_base_url(),
            )?;
            return Ok(Self::Local {
                sessions: sessions::MemorySessionStore::default(),
                revocations,
            });
        };
        let host = settings.redis.display_host().unwrap_or_default();
        let redis = redis::Redis::new(url.expose_secret(), host).map_err(BuildError::RedisUrl)?;
        let sessions = sessions::redis_store(&redis).await?;
        tokio::spawn(redis.clone().watch());
        Ok(Self::Redis {
            redis,
            sessions,
            keys: keys.clone(),
        })
    }

    /// The store actix-session's middleware keeps sessions in.
    pub(crate) fn session_store(&self) -> Sessions {
        match self {
            Self::Local { sessions, .. } => Sessions::Memory(sessions.clone()),
            Self::Redis { sessions, .. } => Sessions::Redis(sessions.clone()),
        }
    }

    /// Ends session `sid` on every socket server: its sockets close, and its
    /// tokens are refused until `until` (when the last of them expires).
    pub(crate) async fn revoke(&self, sid: String, until: i64) -> RevokeOutcome {
        let revocation = Revocation { sid, until };
        match self {
            Self::Local { revocations, .. } => {
                if revocations.push(revocation).await {
                    RevokeOutcome::Delivered
                } else {
                    RevokeOutcome::Resending
                }
            }
            Self::Redis { redis, keys, .. } => {
                match redis.revoke(&keys.current().revocations, revocation).await {
                    Ok(()) => RevokeOutcome::Delivered,
                    Err(error) => RevokeOutcome::Unavailable(error),
                }
            }
        }
    }

    /// What a failure of the session store (met by actix-session's
    /// middleware) answers. Scaled: Redis did not answer, so 503 with
    /// `Retry-After`, not an opaque 500. Embedded: the memory store fails only
    /// when an update races a logout, and actix-session's 500 stands.
    pub(crate) fn answer_store_failure(&self, error: actix_web::Error) -> actix_web::Error {
        match self {
            Self::Local { .. } => error,
            Self::Redis { .. } => {
                tracing::warn!(error = %error, "the session store (Redis) failed: 503");
                WebError::StoreUnavailable.into()
            }
        }
    }

    /// Whether this node can serve every request (`/readyz`), else why not:
    /// always in the embedded mode; in the scaled mode while Redis answers.
    pub(crate) fn readiness(&self) -> Result<(), &'static str> {
        match self {
            Self::Local { .. } => Ok(()),
            Self::Redis { redis, .. } if !redis.is_up() => Err("Redis is unreachable"),
            Self::Redis { .. } => Ok(()),
        }
    }

    /// The lines the mode adds to `/metrics`: `authbridge_redis_up` in the
    /// scaled mode.
    pub(crate) fn render_metrics(&self, out: &mut String) {
        match self {
            Self::Local { .. } => {}
            Self::Redis { redis, .. } => service::metrics::redis_up(out, redis.is_up()),
        }
    }
}

//! The session store actix-session's middleware is handed, of either mode:
//! this process's memory ([`MemorySessionStore`], embedded), or actix-session's
//! Redis store with a deadline on every call (scaled). Logout deletes the
//! session, so a replayed old cookie finds nothing.
//!
//! `anyhow` appears here only because actix-session's `SessionStore` trait
//! demands it: `LoadError::Other`, `SaveError::Other`, `UpdateError::Other` and
//! the results of `update_ttl` and `delete` are `anyhow::Error`s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_session::storage::{
    LoadError, RedisSessionStore, SaveError, SessionKey, SessionStore, UpdateError,
    generate_session_key,
};
use actix_web::cookie::time::Duration;

use super::redis::{Redis, within_deadline};
use crate::error::BuildError;

/// Session keys in Redis, so that one Redis can hold more than this
/// application.
const SESSION_KEY_PREFIX: &str = "authbridge:session:";

/// The session store of either mode.
#[derive(Clone)]
pub(crate) enum Sessions {
    Memory(MemorySessionStore),
    Redis(RedisSessionStore),
}

/// actix-session's Redis store on `redis`'s pool.
pub(super) async fn redis_store(redis: &Redis) -> Result<RedisSessionStore, BuildError> {
    RedisSessionStore::builder_pooled(redis.pool())
        .cache_keygen(|key| format!("{SESSION_KEY_PREFIX}{key}"))
        .build()
        .await
        // The builder reports an `anyhow::Error`; it becomes a plain source.
        .map_err(|error| BuildError::RedisSessionStore(error.into()))
}

impl SessionStore for Sessions {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        match self {
            Sessions::Memory(store) => store.load(session_key).await,
            Sessions::Redis(store) => {
                within_deadline(store.load(session_key), |timed_out| {
                    LoadError::Other(timed_out.into())
                })
                .await
            }
        }
    }

    async fn save(&self, state: SessionState, ttl: &Duration) -> Result<SessionKey, SaveError> {
        match self {
            Sessions::Memory(store) => store.save(state, ttl).await,
            Sessions::Redis(store) => {
                within_deadline(store.save(state, ttl), |timed_out| {
                    SaveError::Other(timed_out.into())
                })
                .await
            }
        }
    }

    async fn update(
        &self,
        session_key: SessionKey,
        state: SessionState,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        match self {
            Sessions::Memory(store) => store.update(session_key, state, ttl).await,
            Sessions::Redis(store) => {
                within_deadline(store.update(session_key, state, ttl), |timed_out| {
                    UpdateError::Other(timed_out.into())
                })
                .await
            }
        }
    }

    async fn update_ttl(
        &self,
        session_key: &SessionKey,
        ttl: &Duration,
    ) -> Result<(), anyhow::Error> {
        match self {
            Sessions::Memory(store) => store.update_ttl(session_key, ttl).await,
            Sessions::Redis(store) => {
                within_deadline(store.update_ttl(session_key, ttl), anyhow::Error::from).await
            }
        }
    }

    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        match self {
            Sessions::Memory(store) => store.delete(session_key).await,
            Sessions::Redis(store) => {
                within_deadline(store.delete(session_key), anyhow::Error::from).await
            }
        }
    }
}

type SessionState = HashMap<String, String>;

/// An update of a session that a logout (or expiry) ended meanwhile.
#[derive(Debug, thiserror::Error)]
#[error("the session ended meanwhile")]
struct SessionEnded;

/// At most this many live sessions; past it the one closest to expiry is
/// dropped, so a flood of logins cannot exhaust memory.
const MAX_SESSIONS: usize = 100_000;

/// Sessions held in this process (embedded mode).
#[derive(Clone, Debug, Default)]
pub(crate) struct MemorySessionStore {
    sessions: Arc<Mutex<HashMap<String, Entry>>>,
}

#[derive(Debug)]
struct Entry {
    state: SessionState,
    expires_at: Instant,
}

impl MemorySessionStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn deadline(ttl: &Duration) -> Instant {
    let ttl = std::time::Duration::try_from(*ttl).unwrap_or_default();
    Instant::now() + ttl
}

fn make_room(sessions: &mut HashMap<String, Entry>) {
    if sessions.len() < MAX_SESSIONS {
        return;
    }
    let now = Instant::now();
    sessions.retain(|_, entry| entry.expires_at > now);
    if sessions.len() >= MAX_SESSIONS {
        let oldest = sessions
            .iter()
            .min_by_key(|(_, entry)| entry.expires_at)
            .map(|(key, _)| key.clone());
        if let Some(oldest) = oldest {
            sessions.remove(&oldest);
        }
    }
}

impl SessionStore for MemorySessionStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        let mut sessions = self.lock();
        match sessions.get(session_key.as_ref()) {
            Some(entry) if entry.expires_at > Instant::now() => Ok(Some(entry.state.clone())),
            Some(_) => {
                sessions.remove(session_key.as_ref());
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn save(&self, state: SessionState, ttl: &Duration) -> Result<SessionKey, SaveError> {
        let key = generate_session_key();
        let mut sessions = self.lock();
        make_room(&mut sessions);
        let entry = Entry {
            state,
            expires_at: deadline(ttl),
        };
        sessions.insert(key.as_ref().to_owned(), entry);
        Ok(key)
    }

    async fn update(
        &self,
        session_key: SessionKey,
        state: SessionState,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        match self.lock().get_mut(session_key.as_ref()) {
            Some(entry) => {
                *entry = Entry {
                    state,
                    expires_at: deadline(ttl),
                };
                Ok(session_key)
            }
            // Ended meanwhile (a logout racing this request, or expiry): never
            // bring it back, or the logout would be undone.
            None => Err(UpdateError::Other(SessionEnded.into())),
        }
    }

    async fn update_ttl(
        &self,
        session_key: &SessionKey,
        ttl: &Duration,
    ) -> Result<(), anyhow::Error> {
        if let Some(entry) = self.lock().get_mut(session_key.as_ref()) {
            entry.expires_at = deadline(ttl);
        }
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        self.lock().remove(session_key.as_ref());
        Ok(())
    }
}

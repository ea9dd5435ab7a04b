//! The one place where one node and many differ: a [`Backplane`] is built
//! once, at start, and every part of the server that needs the other nodes
//! asks it — handlers never look at the mode.
//!
//! - [`Backplane::Local`] (embedded, `redis.url` unset): this process is the
//!   whole cluster; what is published is delivered here; revocations arrive
//!   over HTTP only.
//! - [`Backplane::Redis`] (scaled): nodes share one Redis — envelopes travel on
//!   a pub/sub channel, revocations on their own channel and as keys — and
//!   the node is ready once Redis has answered and the list is loaded.
//!
//! Each capability a mode changes is one operation here: publishing an
//! envelope, readiness, the background set-up, the metrics the mode adds.

mod pubsub;
mod redis;

use std::sync::Arc;

use secrecy::ExposeSecret as _;
use settings::{ConfigError, Settings};
use socketioxide::SocketIo;

use crate::bus::{self, Envelope, Reach};
use crate::revocations::Revoker;

/// One node, or one of many.
#[derive(Clone, Debug)]
pub(crate) enum Backplane {
    Local,
    Redis(Arc<redis::RedisBackplane>),
}

impl Backplane {
    /// The backplane `settings` ask for. Nothing is connected yet: a scaled
    /// node starts while Redis is away (see [`Backplane::start`]).
    pub(crate) fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let Some(url) = &settings.redis.url else {
            return Ok(Self::Local);
        };
        let host = settings.redis.display_host().unwrap_or_default();
        let redis = redis::RedisBackplane::new(url.expose_secret(), host)
            .map_err(|error| ConfigError::invalid("redis.url", error.to_string()))?;
        Ok(Self::Redis(Arc::new(redis)))
    }

    /// Starts what the mode runs in the background: in the scaled mode, the
    /// set-up once Redis answers (channels, the revocation list), then the
    /// watch on Redis. The tasks are stopped with the server.
    pub(crate) fn start(
        &self,
        io: &SocketIo,
        revoker: Revoker,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        match self {
            Self::Local => {
                // The HTTP resync from the web-frontend completes the list.
                Vec::new()
            }
            Self::Redis(redis) => vec![tokio::spawn(redis.clone().run(io.clone(), revoker))],
        }
    }

    /// Delivers `envelope` to its sockets on every node, this one included.
    /// When the other nodes cannot be reached, this node's sockets still get it.
    pub(crate) async fn publish(&self, io: &SocketIo, envelope: &Envelope) -> Reach {
        let reach = match self {
            Self::Local => Reach::Everywhere,
            Self::Redis(redis) => redis.publish(envelope).await,
        };
        if let Err(error) = bus::deliver_locally(io, envelope).await {
            tracing::warn!(%error, event = %envelope.event, "delivery failed");
        }
        reach
    }

    /// Whether sockets may be opened: in the scaled mode, once set up (the
    /// revocation list is complete).
    pub(crate) fn accepting(&self) -> bool {
        match self {
            Self::Local => true,
            Self::Redis(redis) => redis.accepting(),
        }
    }

    /// `GET /readyz`'s answer: why this node is not ready, if it is not.
    pub(crate) fn not_ready_reason(&self) -> Option<String> {
        match self {
            Self::Local => None,
            Self::Redis(redis) => redis.not_ready_reason(),
        }
    }

    /// The lines the mode adds to `/metrics`.
    pub(crate) fn render_metrics(&self, out: &mut String) {
        match self {
            Self::Local => {}
            Self::Redis(redis) => service::metrics::redis_up(out, redis.is_up()),
        }
    }
}

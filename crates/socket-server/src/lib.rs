//! The Socket.IO server: every connection is authenticated by its token, with the
//! shared key alone (no database, no call back to the web-frontend).

mod api;
mod auth;
mod backplane;
mod bus;
mod error;
mod events;
mod expiry;
mod http;
mod identity;
mod keys;
mod limits;
mod membership;
mod metrics;
mod node;
mod origins;
mod presence;
mod recovery;
mod relay;
mod resume;
mod revocations;
mod rooms;
mod serve;
mod slim;
mod state;
mod targets;
mod webhooks;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use settings::Settings;
use socketioxide::SocketIo;
use tokio::net::{TcpListener, TcpSocket};

pub use error::BuildError;
pub use keys::KeyRing;

use crate::backplane::Backplane;
use crate::node::Node;
use crate::revocations::{RevocationList, Revoker};
use crate::state::AppState;

/// A bound, not yet running socket-server.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
    /// Closes every Engine.IO transport at shutdown.
    io: SocketIo,
    /// One node or many: told when this one leaves.
    backplane: Backplane,
    /// Whether the webhook sender waits for events (the shutdown's drain).
    webhooks_idle: tokio::sync::watch::Receiver<bool>,
    /// The expiry wheel, the relay and the backplane's tasks.
    tasks: Vec<tokio::task::JoinHandle<()>>,
    keys: KeyRing,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

/// How long a shutdown waits for the transports to close.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Pending connections the kernel queues: a burst of handshakes overflows the
/// usual 128 and costs the tail a one-second SYN retry.
const LISTEN_BACKLOG: u32 = 1024;

impl Application {
    /// Checks the settings, binds `socket.addr` and builds every route. Nothing
    /// is served until [`Application::run_until`].
    pub async fn build(settings: &Settings) -> Result<Self, BuildError> {
        let addr = settings::resolve_addr("socket.addr", &settings.socket.addr)?;
        let listener = bind(addr).map_err(|source| BuildError::Bind { addr, source })?;
        let listener = listener.into_std().map_err(BuildError::Listener)?;
        Self::build_with_listener(settings, listener).await
    }

    /// As [`Application::build`], on a listener bound by the caller
    /// (`socket.addr` is not used).
    pub async fn build_with_listener(
        settings: &Settings,
        listener: std::net::TcpListener,
    ) -> Result<Self, BuildError> {
        listener
            .set_nonblocking(true)
            .map_err(BuildError::Listener)?;
        let listener = TcpListener::from_std(listener).map_err(BuildError::Listener)?;
        let local_addr = listener.local_addr().map_err(BuildError::Listener)?;
        let keys = KeyRing::from_settings(settings)?;
        tracing::info!("keys in use: {}", keys.describe());
        let backplane = Backplane::from_settings(settings)?;
        let webhooks = webhooks::Webhooks::from_settings(settings)?;
        let revocations = Arc::new(RevocationList::default());
        let metrics = Arc::new(metrics::Metrics::default());
        let (expiry, expiry_task) = expiry::scheduler(settings.jwt.leeway_secs, metrics.clone());
        let (relay, relay_queue) = relay::queue();
        let app = Arc::new(AppState {
            keys: keys.clone(),
            revocations: revocations.clone(),
            expiry,
            relay,
            metrics: metrics.clone(),
            limits: limits::ConnectionLimits::new(settings.socket.max_connections_per_user),
            backplane: backplane.clone(),
            max_rooms_per_socket: usize::try_from(settings.socket.max_rooms_per_socket)
                .unwrap_or(usize::MAX),
            membership: membership::Membership::default(),
            webhooks: webhooks.as_ref().map(webhooks::Webhooks::metrics),
        });
        let (layer, io) = configure(SocketIo::builder(), app.clone()).build_layer();
        events::register(&io);
        let revoker = Revoker {
            keys: keys.clone(),
            list: revocations,
            io: io.clone(),
            metrics: metrics.clone(),
        };
        let node = Node {
            io: io.clone(),
            revoker: revoker.clone(),
        };

        // The tasks hold the `SocketIo` handle: they are stopped with the
        // server (else they would keep it alive).
        let mut tasks = backplane.start(&node);
        tasks.extend(keys.spawn_refresher());
        tasks.push(tokio::spawn(expiry_task.run(io.clone())));
        tasks.push(tokio::spawn(resume::keep_sessions(
            backplane.clone(),
            io.clone(),
        )));
        let (webhooks_idle, idle) = tokio::sync::watch::channel(true);
        if let Some(webhooks) = webhooks {
            tracing::info!(
                grace_secs = settings.webhooks.offline_grace_secs,
                "presence webhooks on"
            );
            tasks.push(tokio::spawn(webhooks.run(backplane.clone(), webhooks_idle)));
        }
        tasks.push(tokio::spawn(relay::run(
            node.clone(),
            backplane.clone(),
            relay_queue,
            metrics,
        )));
        let router = http::routes(layer, app.clone(), revoker);
        let router = origins::guard(router, &settings.socket.allowed_origins)?;
        // Outside the browser-origin guard and its CORS: the API answers no
        // browser (no preflight passes). Everything else goes to `router` as
        // a whole: a `merge` would replace its fallback, where the Socket.IO
        // layer answers `/socket.io/`, with the API's bare 404.
        let api = match &settings.api.key {
            Some(key) => {
                tracing::info!("server API on /api");
                api::routes(key, app, node, revoke_for_secs(settings))
            }
            None => api::off(),
        };
        let router = api.fallback_service(router);
        Ok(Application {
            listener,
            local_addr,
            router,
            io,
            backplane,
            webhooks_idle: idle,
            tasks,
            keys,
        })
    }

    /// The address really bound (port 0 in the settings becomes a real port).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The keys in use: [`KeyRing::reload`] puts the configured ones in use
    /// again (the binaries call it on SIGHUP).
    pub fn keys(&self) -> KeyRing {
        self.keys.clone()
    }

    /// Serves until SIGINT or SIGTERM.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(service::shutdown_signal()).await
    }

    /// Serves until `shutdown` completes. Then it stops accepting, and closes
    /// every connection at the transport level (an Engine.IO close, never a
    /// Socket.IO `DISCONNECT`, after which the official client would not
    /// reconnect): clients see a transport close and reconnect, to another
    /// node or to this one when it is back.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        service::announce_listening(self.local_addr);
        let (stop_accepting, stopped) = tokio::sync::watch::channel(false);
        let mut serve = tokio::spawn(serve::serve(self.listener, self.router, stopped));
        tokio::select! {
            result = &mut serve => return result.map_err(std::io::Error::other),
            () = shutdown => tracing::info!("socket-server stopping"),
        }
        // No new connection is accepted, and kept-alive HTTP connections are
        // closed once their request is answered (a client must not reach the
        // stopped server through a pooled connection)...
        let _ = stop_accepting.send(true);
        // Recovering sockets may come back within the recovery window from
        // now, and no later (the close below runs no disconnect handler).
        let _ = tokio::time::timeout(
            SHUTDOWN_GRACE,
            resume::on_shutdown(&self.backplane, &self.io),
        )
        .await;
        // A long-poll's connection is answered, and so closed, when its
        // transport is closed here.
        if tokio::time::timeout(SHUTDOWN_GRACE, self.io.close())
            .await
            .is_err()
        {
            tracing::warn!("some transports did not close in time");
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut serve)
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close in time");
            serve.abort();
        }
        // The sockets are closed: this node's presence leaves the counts at
        // once (socketioxide's close runs no disconnect handler: the sockets
        // never left one by one), before the drain, which may take seconds.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.backplane.leave()).await;
        // Pending presence events get a few seconds to go out (in the scaled
        // mode what is left stays in Redis for another node).
        let mut idle = self.webhooks_idle.clone();
        let drained = async {
            while !(*idle.borrow_and_update() && self.backplane.webhooks_drained()) {
                if tokio::time::timeout(std::time::Duration::from_millis(100), idle.changed())
                    .await
                    .is_ok_and(|changed| changed.is_err())
                {
                    return;
                }
            }
        };
        if tokio::time::timeout(webhooks::DRAIN, drained)
            .await
            .is_err()
        {
            tracing::warn!("some presence events were not sent before the shutdown");
        }
        // Another node sends what is left.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.backplane.shutdown()).await;
        for task in &self.tasks {
            task.abort();
        }
        Ok(())
    }
}

/// How long a revocation is kept at most: no token of the session lives
/// longer than its lifetime and the leeway from now.
fn revoke_for_secs(settings: &Settings) -> i64 {
    i64::try_from(
        settings
            .jwt
            .ttl_secs
            .saturating_add(settings.jwt.leeway_secs),
    )
    .unwrap_or(i64::MAX)
}

/// The Socket.IO settings.
fn configure(
    builder: socketioxide::SocketIoBuilder,
    state: Arc<AppState>,
) -> socketioxide::SocketIoBuilder {
    builder
        .with_state(state)
        // As Node's socket.io (maxHttpBufferSize): a bound, and room enough
        // that an oversized token is refused as `not valid token`.
        .max_payload(1_000_000)
        .ws_max_message_size(1_000_000)
        // Packets waiting for one socket: a burst of broadcasts must not
        // overflow a reader that is keeping up (the default is 128).
        .max_buffer_size(4096)
        .ws_read_buffer_size(1024)
        // An Engine.IO session that never sends its Socket.IO CONNECT is closed.
        .connect_timeout(std::time::Duration::from_secs(10))
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

//! The Socket.IO server: every connection is authenticated by its token, with the
//! shared key alone (no database, no call back to the web-frontend).

mod auth;
mod events;
mod expiry;
mod metrics;
mod origins;
mod relay;
mod revocations;

use std::future::{Future, IntoFuture as _};
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use claims::{RevocationVerifier, TokenVerifier};
use settings::Settings;
use socketioxide::SocketIo;
use tokio::net::{TcpListener, TcpSocket};

pub(crate) use auth::Identity;

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) verifier: TokenVerifier,
    pub(crate) revocations: Arc<revocations::RevocationList>,
    pub(crate) expiry: expiry::ExpiryScheduler,
    pub(crate) relay: relay::RelayQueue,
    pub(crate) metrics: Arc<metrics::Metrics>,
}

/// A bound, not yet running socket-server.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
    io: SocketIo,
    /// The expiry wheel and the relay broadcaster: they hold the `SocketIo`
    /// handle, so they are stopped with the server (else they would keep it alive).
    tasks: [tokio::task::JoinHandle<()>; 2],
}

/// How long a shutdown waits for the transports to close.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Pending connections the kernel queues: a burst of handshakes overflows the
/// usual 128 and costs the tail a one-second SYN retry.
const LISTEN_BACKLOG: u32 = 1024;

impl Application {
    /// Checks the settings, binds `socket.addr` and builds every route. Nothing
    /// is served until [`Application::run_until`].
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let addr = settings::resolve_addr("socket.addr", &settings.socket.addr)?;
        let listener =
            bind(addr).with_context(|| format!("socket.addr: cannot listen on {addr}"))?;
        Self::build_with_listener(settings, listener.into_std()?).await
    }

    /// As [`Application::build`], on a listener bound by the caller
    /// (`socket.addr` is not used).
    pub async fn build_with_listener(
        settings: &Settings,
        listener: std::net::TcpListener,
    ) -> anyhow::Result<Self> {
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let key_settings = settings.key_settings()?;
        let verifier = TokenVerifier::new(&key_settings).context("jwt.secret")?;
        let revocation_verifier = RevocationVerifier::new(&key_settings).context("jwt.secret")?;
        let revocations = Arc::new(revocations::RevocationList::default());
        let metrics = Arc::new(metrics::Metrics::default());
        let (expiry, expiry_task) = expiry::scheduler(settings.jwt.leeway_secs, metrics.clone());
        let (relay, relay_queue) = relay::queue();
        let state = Arc::new(AppState {
            verifier,
            revocations: revocations.clone(),
            expiry,
            relay,
            metrics: metrics.clone(),
        });

        let local_addr = listener.local_addr()?;

        let (layer, io) = SocketIo::builder()
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
            .build_layer();
        events::register(&io);
        let tasks = [
            tokio::spawn(expiry_task.run(io.clone())),
            tokio::spawn(relay::broadcast(io.clone(), relay_queue, metrics.clone())),
        ];

        let channel = revocations::Channel {
            verifier: Arc::new(revocation_verifier),
            list: revocations,
            io: io.clone(),
            metrics: metrics.clone(),
        };
        let internal = Router::new()
            .route("/internal/revocations", post(revocations::receive))
            .layer(DefaultBodyLimit::max(claims::MAX_NOTICE_BYTES))
            .with_state(channel);
        let router = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/metrics", get(metrics::metrics).with_state(metrics))
            .merge(internal)
            .layer(layer);
        let router = origins::guard(router, &settings.socket.allowed_origins)?;
        Ok(Self {
            listener,
            local_addr,
            router,
            io,
            tasks,
        })
    }

    /// The address really bound (port 0 in the settings becomes a real port).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until SIGINT or SIGTERM.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(settings::shutdown_signal()).await
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
        let listener = self.listener.tap_io(|tcp| {
            // Small Engine.IO frames must not wait for Nagle's algorithm.
            let _ = tcp.set_nodelay(true);
        });
        settings::announce_listening(self.local_addr);
        let (stop_accepting, stopped) = tokio::sync::oneshot::channel::<()>();
        let serve = axum::serve(listener, self.router.into_make_service())
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .into_future();
        let mut serve = tokio::spawn(serve);
        tokio::select! {
            result = &mut serve => return result.unwrap_or_else(|join| Err(std::io::Error::other(join))),
            () = shutdown => tracing::info!("socket-server stopping"),
        }
        // No new connection is accepted, and kept-alive HTTP connections are
        // closed once their request is answered (a client must not reach the
        // stopped server through a pooled connection)...
        let _ = stop_accepting.send(());
        // ...which, for long-polls, happens when their transport is closed here.
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
        for task in &self.tasks {
            task.abort();
        }
        Ok(())
    }
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

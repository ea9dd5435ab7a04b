//! The Socket.IO server: every connection is authenticated by its token, with the
//! shared key alone (no database, no call back to the web-frontend).

mod auth;
mod events;
mod origins;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::routing::get;
use axum::serve::ListenerExt as _;
use claims::TokenVerifier;
use settings::Settings;
use socketioxide::SocketIo;
use tokio::net::{TcpListener, TcpSocket};

pub use auth::Identity;

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) verifier: TokenVerifier,
}

/// A bound, not yet running socket-server.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
}

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
        let verifier = TokenVerifier::new(&settings.key_settings()?).context("jwt.secret")?;
        let state = Arc::new(AppState { verifier });

        let local_addr = listener.local_addr()?;

        let (layer, io) = SocketIo::builder()
            .with_state(state)
            // A `message` is at most 4 KiB of text; JSON escaping can double it.
            .max_payload(64 * 1024)
            .ws_max_message_size(64 * 1024)
            .ws_read_buffer_size(1024)
            // An Engine.IO session that never sends its Socket.IO CONNECT is closed.
            .connect_timeout(std::time::Duration::from_secs(10))
            .build_layer();
        events::register(&io);

        let router = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .layer(layer);
        let router = origins::guard(router, &settings.socket.allowed_origins)?;
        Ok(Self {
            listener,
            local_addr,
            router,
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

    /// Serves until `shutdown` completes. Then the listener closes at once; the
    /// process ending closes the open transports, which clients see as a
    /// transport close and answer by reconnecting.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let listener = self.listener.tap_io(|tcp| {
            // Small Engine.IO frames must not wait for Nagle's algorithm.
            let _ = tcp.set_nodelay(true);
        });
        settings::announce_listening(self.local_addr);
        let serve = axum::serve(listener, self.router.into_make_service());
        tokio::select! {
            result = serve => result,
            () = shutdown => {
                tracing::info!("socket-server stopping");
                Ok(())
            }
        }
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

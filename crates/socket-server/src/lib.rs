//! The Socket.IO server: every connection is authenticated by its token, with the
//! shared key alone (no database, no call back to the web-frontend).

mod auth;
mod backplane;
mod events;
mod expiry;
mod keys;
mod limits;
mod metrics;
mod origins;
mod relay;
mod revocations;
mod serve;
mod slim;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse as _;
use axum::routing::{get, post};
use backplane::Readiness;
use secrecy::ExposeSecret as _;
use settings::Settings;
use socketioxide::adapter::Adapter;
use socketioxide::layer::SocketIoLayer;
use socketioxide::{SocketIo, SocketIoBuilder};
use tokio::net::{TcpListener, TcpSocket};

pub(crate) use auth::Identity;
pub use keys::KeyRing;

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct AppState {
    /// What tokens are checked with (swapped on reload and JWK Set fetches).
    pub(crate) keys: KeyRing,
    pub(crate) revocations: Arc<revocations::RevocationList>,
    pub(crate) expiry: expiry::ExpiryScheduler,
    pub(crate) relay: relay::RelayQueue,
    pub(crate) metrics: Arc<metrics::Metrics>,
    /// Sockets per user on this node (`socket.max_connections_per_user`).
    pub(crate) limits: limits::ConnectionLimits,
}

/// A bound, not yet running socket-server.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
    /// Closes every Engine.IO transport (the adapter's type is erased here).
    close_transports: futures_util::future::BoxFuture<'static, ()>,
    /// The expiry wheel, the relay broadcaster and (scaled mode) the Redis
    /// watch: they hold the `SocketIo` handle, so they are stopped with the
    /// server (else they would keep it alive).
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
        let keys = KeyRing::from_settings(settings)?;
        tracing::info!("keys in use: {}", keys.describe());
        let revocations = Arc::new(revocations::RevocationList::default());
        let metrics = Arc::new(metrics::Metrics::default());
        let (expiry, expiry_task) = expiry::scheduler(settings.jwt.leeway_secs, metrics.clone());
        let (relay, relay_queue) = relay::queue();
        let state = Arc::new(AppState {
            keys: keys.clone(),
            revocations: revocations.clone(),
            expiry,
            relay,
            metrics: metrics.clone(),
            limits: limits::ConnectionLimits::new(settings.socket.max_connections_per_user),
        });
        let parts = Parts {
            listener,
            settings,
            keys,
            revocations,
            metrics,
            expiry_task,
            relay_queue,
        };

        match &settings.redis.url {
            None => {
                let (layer, io) = configure(SocketIo::builder(), state).build_layer();
                events::register(&io);
                parts.assemble(layer, io, Arc::new(Readiness::embedded()), Vec::new())
            }
            Some(url) => {
                let host = settings.redis.display_host().unwrap_or_default();
                let driver = backplane::ResilientDriver::new(url.expose_secret())
                    .map_err(|error| anyhow::anyhow!("redis.url: {error}"))?;
                let (layer, io) = configure(
                    SocketIo::builder().with_adapter::<backplane::RedisAdapter>(
                        backplane::adapter(driver.clone()),
                    ),
                    state,
                )
                .build_layer();
                let readiness = Arc::new(Readiness::scaled(host));
                // Set up in the background: the node listens (answering 503)
                // while Redis is away, and becomes ready when it answers.
                let backplane = tokio::spawn(backplane::run(
                    io.clone(),
                    driver,
                    parts.channel(&io),
                    readiness.clone(),
                ));
                parts.assemble(layer, io, readiness, vec![backplane])
            }
        }
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
        // ...which, for long-polls, happens when their transport is closed here.
        if tokio::time::timeout(SHUTDOWN_GRACE, self.close_transports)
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

/// The Socket.IO settings of both modes.
fn configure<A: Adapter>(builder: SocketIoBuilder<A>, state: Arc<AppState>) -> SocketIoBuilder<A> {
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

/// What both modes build the same way, around their own adapter.
struct Parts<'a> {
    listener: TcpListener,
    settings: &'a Settings,
    keys: KeyRing,
    revocations: Arc<revocations::RevocationList>,
    metrics: Arc<metrics::Metrics>,
    expiry_task: expiry::ExpiryTask,
    relay_queue: tokio::sync::mpsc::Receiver<relay::Relay>,
}

impl Parts<'_> {
    fn channel<A: Adapter>(&self, io: &SocketIo<A>) -> revocations::Channel<A> {
        revocations::Channel {
            keys: self.keys.clone(),
            list: self.revocations.clone(),
            io: io.clone(),
            metrics: self.metrics.clone(),
        }
    }

    fn assemble<A: Adapter>(
        self,
        layer: SocketIoLayer<A>,
        io: SocketIo<A>,
        readiness: Arc<Readiness>,
        mut tasks: Vec<tokio::task::JoinHandle<()>>,
    ) -> anyhow::Result<Application> {
        let local_addr = self.listener.local_addr()?;
        let channel = self.channel(&io);
        tasks.extend(self.keys.spawn_refresher());
        tasks.push(tokio::spawn(self.expiry_task.run(io.clone())));
        tasks.push(tokio::spawn(relay::broadcast(
            io.clone(),
            self.relay_queue,
            self.metrics.clone(),
            readiness.clone(),
        )));
        let internal = Router::new()
            .route("/internal/revocations", post(revocations::receive::<A>))
            .layer(DefaultBodyLimit::max(claims::MAX_NOTICE_BYTES))
            .with_state(channel);
        let router = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route(
                "/readyz",
                get(ready).with_state((readiness.clone(), self.keys.clone())),
            )
            .route(
                "/metrics",
                get(metrics::metrics).with_state((
                    self.metrics.clone(),
                    readiness.clone(),
                    self.keys.clone(),
                )),
            )
            .merge(internal)
            .layer(layer)
            .layer(axum::middleware::from_fn(slim::detach_parts))
            .layer(axum::middleware::from_fn_with_state(
                (readiness, self.keys.clone()),
                refuse_until_ready,
            ));
        let router = origins::guard(router, &self.settings.socket.allowed_origins)?;
        let closing = io.clone();
        Ok(Application {
            listener: self.listener,
            local_addr,
            router,
            close_transports: Box::pin(async move { closing.close().await }),
            tasks,
            keys: self.keys,
        })
    }
}

/// `GET /readyz`: 200 when this node can serve sockets (in the scaled mode,
/// once set up and while Redis answers; with a JWK Set, once it has been
/// fetched), else 503 saying why.
async fn ready(State((readiness, keys)): State<(Arc<Readiness>, KeyRing)>) -> (StatusCode, String) {
    match keys.ready().err().or_else(|| readiness.not_ready_reason()) {
        None => (StatusCode::OK, "ready".into()),
        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason),
    }
}

/// While the scaled mode is not set up (Redis has not answered yet), or no key
/// has been fetched yet, opening a socket gets 503 and a `Retry-After`, not a
/// refusal the client would take for a bad token: clients retry.
async fn refuse_until_ready(
    State((readiness, keys)): State<(Arc<Readiness>, KeyRing)>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if request.uri().path().starts_with("/socket.io") {
        let waiting_for = if !readiness.accepting() {
            Some("Redis")
        } else if keys.ready().is_err() {
            Some("the JWK Set")
        } else {
            None
        };
        if let Some(what) = waiting_for {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(axum::http::header::RETRY_AFTER, "1")],
                format!("socket-server starting: waiting for {what}"),
            )
                .into_response();
        }
    }
    next.run(request).await
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

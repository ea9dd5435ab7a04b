//! The web-frontend: logs users in (a server-side session behind a cookie) and
//! issues the tokens the socket-server accepts.
//!
//! Modules, lowest first (none imports one above it): `users`, `error`,
//! `keys`, `metrics`, `throttle`, `templates`, `assets`, `origin`; `backplane`
//! (the one place the embedded and scaled modes differ); `notices` (sign-in
//! notices through the socket-server's API); `session`, `state`;
//! the handlers `pages`, `token`, `jwks`, `status`; `routes`; this file.

mod assets;
mod backplane;
mod error;
mod jwks;
mod keys;
mod metrics;
mod notices;
mod origin;
mod pages;
mod routes;
mod session;
mod state;
mod status;
mod templates;
mod throttle;
mod token;
pub mod users;

use std::future::Future;
use std::net::{SocketAddr, TcpListener};

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use settings::Settings;

pub use error::BuildError;
pub use keys::KeyRing;
pub use session::SESSION_COOKIE;

use crate::backplane::Backplane;
use crate::state::AppState;

/// A bound, not yet running web-frontend.
pub struct Application {
    server: Server,
    local_addr: SocketAddr,
    keys: KeyRing,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Checks the settings, loads the templates once, binds `web.addr`. Nothing
    /// is served until [`Application::run_until`]. In the scaled mode Redis is
    /// not needed yet: the node starts, and answers 503 where it needs Redis
    /// until Redis answers.
    pub async fn build(settings: &Settings) -> Result<Self, BuildError> {
        let addr = settings::resolve_addr("web.addr", &settings.web.addr)?;
        let listener =
            TcpListener::bind(addr).map_err(|source| BuildError::Bind { addr, source })?;
        Self::build_with_listener(settings, listener).await
    }

    /// As [`Application::build`], on a listener bound by the caller (`web.addr`
    /// is not used): tests that must know both services' addresses before
    /// configuring either bind both first.
    pub async fn build_with_listener(
        settings: &Settings,
        listener: TcpListener,
    ) -> Result<Self, BuildError> {
        let keys = KeyRing::from_settings(settings)?;
        tracing::info!(
            algorithm = %settings.jwt.algorithm,
            "{}",
            keys.current().describe()
        );
        let cookie_key = session::cookie_key(settings)?;
        let users = users::UserDirectory::from_settings(&settings.users)?;
        let templates = templates::load().map_err(BuildError::Templates)?;
        let local_addr = listener.local_addr().map_err(BuildError::Listener)?;
        // Last: they start the background tasks.
        let backplane = Backplane::start(settings, &keys).await?;
        let store = backplane.session_store();
        let notices = notices::SignInNotices::start(settings)?;
        // Token lifetime and leeway are not reloaded: they come from this start.
        let revoke_for_secs = i64::try_from(settings.jwt.ttl_secs)
            .unwrap_or(i64::MAX)
            .saturating_add(i64::try_from(settings.jwt.leeway_secs).unwrap_or(0));
        let state = web::Data::new(AppState {
            keys: keys.clone(),
            users,
            templates,
            socket_url: settings.web.socket_url.clone(),
            backplane,
            notices,
            revoke_for_secs,
            metrics: metrics::Metrics::default(),
            throttle: throttle::LoginThrottle::default(),
        });
        let secure = settings.served_over_https();
        let socket_url = settings.web.socket_url.clone();

        let server = HttpServer::new(move || {
            let sessions = session::middleware(store.clone(), cookie_key.clone(), secure);
            App::new()
                .app_data(state.clone())
                .wrap(origin::security_headers(&socket_url))
                .configure(|config| routes::routes(config, sessions))
        })
        .disable_signals()
        .shutdown_timeout(10)
        .listen(listener)
        .map_err(BuildError::Listener)?
        .run();
        Ok(Self {
            server,
            local_addr,
            keys,
        })
    }

    /// The keys in use: [`KeyRing::reload`] puts new ones in use (the
    /// binaries call it on SIGHUP).
    pub fn keys(&self) -> KeyRing {
        self.keys.clone()
    }

    /// The address really bound (port 0 in the settings becomes a real port).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until SIGINT or SIGTERM.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(service::shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then stops accepting and lets the
    /// requests in flight finish (up to 10 s).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let handle = self.server.handle();
        service::announce_listening(self.local_addr);
        let server = tokio::spawn(self.server);
        tokio::select! {
            result = server => return result.unwrap_or_else(|join| Err(std::io::Error::other(join))),
            () = shutdown => tracing::info!("web-frontend stopping"),
        }
        handle.stop(true).await;
        Ok(())
    }
}

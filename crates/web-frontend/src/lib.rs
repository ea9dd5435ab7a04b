//! The web-frontend: logs users in (a server-side session behind a cookie) and
//! issues the tokens the socket-server accepts.

mod assets;
mod backplane;
mod error;
mod keys;
mod metrics;
mod origin;
mod pages;
mod revocation;
mod session_store;
mod templates;
mod throttle;
mod token;
pub mod users;

use std::future::Future;
use std::net::{SocketAddr, TcpListener};

use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, CookieContentSecurity};
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use secrecy::ExposeSecret as _;
use settings::{ConfigError, Settings};

pub use keys::KeyRing;

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "authbridge_session";

/// What every request handler shares (read-only after start).
#[derive(Debug)]
pub(crate) struct AppState {
    /// What tokens and revocation notices are signed with (swapped on reload).
    pub(crate) keys: KeyRing,
    pub(crate) users: users::UserDirectory,
    pub(crate) templates: tera::Tera,
    pub(crate) socket_url: String,
    pub(crate) revocations: revocation::RevocationPublisher,
    /// How long after a logout its tokens could still be accepted: the token
    /// lifetime plus the verifier's leeway.
    pub(crate) revoke_for_secs: i64,
    pub(crate) metrics: metrics::Metrics,
    /// The scaled mode's link to Redis; `None` when embedded.
    pub(crate) redis: Option<backplane::Redis>,
    /// Failed logins, counted per username and per client address (behind
    /// its own lock).
    pub(crate) throttle: throttle::LoginThrottle,
}

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
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let addr = settings::resolve_addr("web.addr", &settings.web.addr)?;
        let listener = TcpListener::bind(addr)
            .with_context(|| format!("web.addr: cannot listen on {addr}"))?;
        Self::build_with_listener(settings, listener).await
    }

    /// As [`Application::build`], on a listener bound by the caller (`web.addr`
    /// is not used): tests that must know both services' addresses before
    /// configuring either bind both first.
    pub async fn build_with_listener(
        settings: &Settings,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let keys = KeyRing::from_settings(settings)?;
        tracing::info!(
            algorithm = %settings.jwt.algorithm,
            "{}",
            keys.current().describe()
        );
        let cookie_key = cookie_key(settings)?;
        let redis = match &settings.redis.url {
            None => None,
            Some(url) => Some(backplane::Redis::new(
                url.expose_secret(),
                settings.redis.display_host().unwrap_or_default(),
            )?),
        };
        let (revocations, store) = match &redis {
            None => (
                revocation::RevocationPublisher::start(
                    keys.clone(),
                    settings.web.revocation_base_url(),
                )?,
                backplane::Sessions::Memory(session_store::MemorySessionStore::default()),
            ),
            Some(redis) => {
                tokio::spawn(redis.clone().watch());
                (
                    revocation::RevocationPublisher::Redis {
                        redis: redis.clone(),
                        keys: keys.clone(),
                    },
                    backplane::Sessions::Redis(redis.session_store().await?),
                )
            }
        };
        // Token lifetime and leeway are not reloaded: they come from this start.
        let revoke_for_secs = i64::try_from(settings.jwt.ttl_secs)
            .unwrap_or(i64::MAX)
            .saturating_add(i64::try_from(settings.jwt.leeway_secs).unwrap_or(0));
        let state = web::Data::new(AppState {
            keys: keys.clone(),
            users: users::UserDirectory::from_settings(&settings.users)?,
            templates: templates::load()?,
            socket_url: settings.web.socket_url.clone(),
            revocations,
            revoke_for_secs,
            metrics: metrics::Metrics::default(),
            redis,
            throttle: throttle::LoginThrottle::default(),
        });
        let secure = settings.served_over_https();
        let socket_url = settings.web.socket_url.clone();

        let local_addr = listener.local_addr()?;

        let server = HttpServer::new(move || {
            let sessions = SessionMiddleware::builder(store.clone(), cookie_key.clone())
                .cookie_name(SESSION_COOKIE.to_owned())
                .cookie_http_only(true)
                .cookie_same_site(SameSite::Lax)
                .cookie_secure(secure)
                .cookie_content_security(CookieContentSecurity::Private)
                .session_lifecycle(BrowserSession::default())
                .build();
            App::new()
                .app_data(state.clone())
                .wrap(origin::security_headers(&socket_url))
                .configure(|config| routes(config, sessions))
        })
        .disable_signals()
        .shutdown_timeout(10)
        .listen(listener)?
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

/// The key session cookies are sealed with. The cookie only carries a random
/// session key; it is also encrypted, with a key derived (HKDF, its own
/// purpose string) from `web.session_secret`, else from the shared secret, so
/// that every web-frontend node reads every node's cookies.
fn cookie_key(settings: &Settings) -> Result<Key, ConfigError> {
    if let Some(secret) = &settings.web.session_secret {
        return Ok(Key::derive_from(secret.expose_secret().as_bytes()));
    }
    if let Some(secret) = &settings.jwt.secret {
        return Ok(Key::derive_from(secret.expose_secret().as_bytes()));
    }
    if settings.redis.url.is_some() {
        // Several nodes, sessions that outlive a restart: one key for all.
        return Err(ConfigError::MissingSessionSecret(settings.jwt.algorithm));
    }
    // One process holds the sessions (in memory): a key of its own will do.
    Ok(Key::generate())
}

/// Every route of the web-frontend, in one place. Static files, health and
/// metrics need no session (so they never touch the session store); the pages
/// do.
fn routes(config: &mut web::ServiceConfig, sessions: SessionMiddleware<backplane::Sessions>) {
    config
        .route("/healthz", read().to(|| async { "ok" }))
        .route("/readyz", read().to(pages::ready))
        .route("/metrics", read().to(metrics::metrics))
        .route("/.well-known/jwks.json", read().to(keys::jwks))
        .configure(assets::register)
        .service(
            web::scope("")
                .route("/", read().to(pages::home))
                .route("/login", read().to(pages::login_form_or_basic))
                .route("/login", web::post().to(pages::log_in))
                .route("/logout", web::post().to(pages::log_out))
                .route("/private", read().to(pages::private))
                .route(
                    "/getIoConnectionToken",
                    read().to(token::get_io_connection_token),
                )
                .default_service(web::to(pages::not_found))
                // The scaled mode's 503 wraps the session store's failures.
                .wrap(sessions)
                .wrap(actix_web::middleware::from_fn(backplane::unavailable_store)),
        )
        .app_data(web::FormConfig::default().limit(16 * 1024));
}

/// GET, and HEAD wherever GET works (HTTP semantics; `curl -I` health checks).
/// actix-web sends a HEAD response's headers without its body.
pub(crate) fn read() -> actix_web::Route {
    web::route().guard(actix_web::guard::Any(actix_web::guard::Get()).or(actix_web::guard::Head()))
}

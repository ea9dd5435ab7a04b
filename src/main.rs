//! `authbridge`: both services in one process for local use (`cargo run`).
//!
//! Same settings as the two binaries; the differences: with HS256 and no
//! `jwt.secret` it makes a random key for this run instead of refusing to
//! start, and with a key pair but no public keys configured the socket server
//! fetches the web-frontend's own JWK Set. SIGHUP reloads both services' keys.

use std::process::ExitCode;

use secrecy::SecretString;
use settings::Settings;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("authbridge: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let mut settings = Settings::load()?;
    service::telemetry::init(settings.log.format);
    if !settings.jwt.algorithm.is_asymmetric() && settings.jwt.secret.is_none() {
        settings.jwt.secret = Some(SecretString::from(web_frontend::users::generate_secret()));
        // The key itself is never printed.
        tracing::warn!(
            "no jwt.secret configured: using a random key for this run only \
             (set APP_JWT__SECRET to keep tokens and sessions valid across restarts)"
        );
    }
    // The web port first: with a key pair and no public keys configured, the
    // socket server reads the JWK Set there (port 0 is only known once bound).
    let web_listener = bind("web.addr", &settings.web.addr)?;
    let mut socket_settings = settings.clone();
    if settings.jwt.algorithm.is_asymmetric()
        && settings.jwt.public_key_files.is_empty()
        && settings.jwt.jwks_url.is_none()
    {
        socket_settings.jwt.jwks_url = Some(format!(
            "http://{}/.well-known/jwks.json",
            web_listener.local_addr()?
        ));
    }
    // The socket server first (its own listener, with its own backlog): it
    // accepts before the web-frontend's revocation channel first reaches for it.
    let socket = socket_server::Application::build(&socket_settings).await?;
    let web = web_frontend::Application::build_with_listener(&settings, web_listener).await?;
    let (web_keys, socket_keys) = (web.keys(), socket.keys());
    service::reload_keys_on_sighup("authbridge", move |settings| {
        let web = web_keys.reload(settings)?;
        let socket = socket_keys.reload(settings)?;
        Ok(format!("web-frontend {web}; socket-server {socket}"))
    });

    let (stop, stopped) = tokio::sync::watch::channel(());
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.changed().await;
        }
    };
    let web = web.run_until(until_stopped());
    let socket = socket.run_until(until_stopped());
    tokio::spawn(async move {
        service::shutdown_signal().await;
        let _ = stop.send(());
    });
    tokio::try_join!(web, socket)?;
    Ok(())
}

/// Binds as `web_frontend::Application::build` would.
fn bind(key: &'static str, addr: &str) -> anyhow::Result<std::net::TcpListener> {
    let addr = settings::resolve_addr(key, addr)?;
    std::net::TcpListener::bind(addr)
        .map_err(|error| anyhow::anyhow!("{key}: cannot listen on {addr}: {error}"))
}

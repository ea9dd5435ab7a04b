//! `authbridge`: both services in one process for local use (`cargo run`).
//!
//! Same settings as the two binaries; the one difference is that with no
//! `jwt.secret` it makes a random key for this run instead of refusing to start.

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
    settings::telemetry::init(settings.log.format);
    if settings.jwt.secret.is_none() {
        settings.jwt.secret = Some(SecretString::from(web_frontend::users::generate_secret()));
        // The key itself is never printed.
        tracing::warn!(
            "no jwt.secret configured: using a random key for this run only \
             (set APP_JWT__SECRET to keep tokens and sessions valid across restarts)"
        );
    }
    // The socket server first: its port is bound before the web-frontend's
    // revocation channel first reaches for it.
    let socket = socket_server::Application::build(&settings).await?;
    let web = web_frontend::Application::build(&settings).await?;

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
        settings::shutdown_signal().await;
        let _ = stop.send(());
    });
    tokio::try_join!(web, socket)?;
    Ok(())
}

//! The signals a service obeys: SIGINT/SIGTERM stop it, SIGHUP reloads its keys.

use settings::{ConfigError, Settings};

/// Completes on SIGINT (Ctrl-C) or SIGTERM (`docker stop`, systemd, Kubernetes).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// On every SIGHUP, loads the configuration again (files and environment, as
/// at start) and hands it to `reload`, which puts new keys in use and says
/// which; a configuration that does not load, or keys that do not build, are
/// logged in one line and the keys in use stay. A task on the current runtime.
pub fn reload_keys_on_sighup<F>(service: &'static str, reload: F)
where
    F: Fn(&Settings) -> Result<String, ConfigError> + Send + 'static,
{
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hangups.recv().await.is_some() {
            match Settings::load().and_then(|settings| reload(&settings)) {
                Ok(in_use) => tracing::info!("{service}: keys reloaded: {in_use}"),
                Err(error) => {
                    tracing::error!("{service}: reload refused, the keys in use stay: {error}");
                }
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (service, reload);
}

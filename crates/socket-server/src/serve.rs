//! The HTTP server loop: axum's router on hyper, with what `axum::serve` does
//! not set — a deadline for a request's headers, so that a connection that
//! sends nothing, or half a header (slowloris), is closed instead of holding a
//! file descriptor for ever.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt as _;

/// How long a client may take to send a request's headers — the first one
/// after connecting, or the next one on a kept-alive connection.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts and serves until `stop` turns true; then stops accepting, asks
/// every connection to close once its request is answered, and returns when
/// all have (the caller bounds that wait).
pub(crate) async fn serve(listener: TcpListener, router: Router, mut stop: watch::Receiver<bool>) {
    // HTTP/1.1 only (what Engine.IO speaks; hyper's auto-detection would wait
    // for a first byte before any deadline applies).
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    // Dropping `draining` asks every connection to finish; each holds a
    // `done` receiver, so `finished.closed()` resolves when all have.
    let (draining, drain) = watch::channel(());
    let (finished, done) = watch::channel(());
    let stopping = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    tokio::pin!(stopping);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let tcp = match accepted {
                    Ok((tcp, _)) => tcp,
                    Err(error) => {
                        // Out of file descriptors, for one: wait a little, go on.
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Small Engine.IO frames must not wait for Nagle's algorithm.
                let _ = tcp.set_nodelay(true);
                let service = router
                    .clone()
                    .map_request(|request: axum::http::Request<Incoming>| request.map(Body::new));
                let service = TowerToHyperService::new(service);
                let connection = builder
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades();
                let mut drain = drain.clone();
                let done = done.clone();
                tokio::spawn(async move {
                    let mut connection = std::pin::pin!(connection);
                    let mut draining = false;
                    loop {
                        tokio::select! {
                            result = connection.as_mut() => {
                                if let Err(error) = result {
                                    tracing::trace!(%error, "connection ended with an error");
                                }
                                break;
                            }
                            _ = drain.changed(), if !draining => {
                                // Closed once the request in flight is answered.
                                draining = true;
                                connection.as_mut().graceful_shutdown();
                            }
                        }
                    }
                    drop(done);
                });
            }
            () = &mut stopping => break,
        }
    }
    drop(listener);
    drop((draining, drain, done));
    finished.closed().await;
}

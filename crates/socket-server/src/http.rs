//! Every HTTP route of the socket server beside Socket.IO, in one place:
//! health, readiness, metrics, and the revocation endpoint; and the gate that
//! answers 503 on `/socket.io` until the node can check tokens.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use socketioxide::layer::SocketIoLayer;

use crate::revocations::Revoker;
use crate::state::AppState;

/// What the HTTP routes share.
#[derive(Clone, Debug)]
struct Http {
    app: Arc<AppState>,
    revoker: Revoker,
}

/// The routes, under the Socket.IO layer (which answers `/socket.io/`).
pub(crate) fn routes(socket_io: SocketIoLayer, app: Arc<AppState>, revoker: Revoker) -> Router {
    let http = Http { app, revoker };
    let internal = Router::new()
        .route("/internal/revocations", post(receive_revocations))
        .layer(DefaultBodyLimit::max(claims::MAX_NOTICE_BYTES));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .merge(internal)
        .with_state(http.clone())
        .layer(socket_io)
        .layer(axum::middleware::from_fn(crate::slim::detach_parts))
        .layer(axum::middleware::from_fn_with_state(
            http,
            refuse_until_ready,
        ))
}

/// `GET /readyz`: 200 when this node can serve sockets (in the scaled mode,
/// once set up and while Redis answers; with a JWK Set, once it has been
/// fetched), else 503 saying why.
async fn ready(State(http): State<Http>) -> (StatusCode, String) {
    let app = &http.app;
    let reason = match app.keys.ready() {
        Err(no_keys) => Some(no_keys.to_string()),
        Ok(()) => app.backplane.not_ready_reason(),
    };
    match reason {
        None => (StatusCode::OK, "ready".into()),
        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason),
    }
}

/// `GET /metrics`: the Prometheus text format.
async fn metrics(State(http): State<Http>) -> Response {
    let app = &http.app;
    let mut out = app.metrics.render();
    app.backplane.render_metrics(&mut out);
    app.keys.render_metrics(&mut out);
    if let Some(webhooks) = &app.webhooks {
        crate::webhooks::Webhooks::render_metrics(webhooks, &app.backplane, &mut out);
    }
    (
        [(header::CONTENT_TYPE, service::metrics::CONTENT_TYPE)],
        out,
    )
        .into_response()
}

/// `POST /internal/revocations`: a notice signed with the channel's key (only
/// holders of the shared key can make one). In the scaled mode the same
/// notices arrive over Redis too (the backplane).
async fn receive_revocations(State(http): State<Http>, notice: String) -> StatusCode {
    match http.revoker.apply_notice(notice.trim()).await {
        Ok(()) => StatusCode::NO_CONTENT,
        Err(_) => StatusCode::UNAUTHORIZED,
    }
}

/// While the scaled mode is not set up (Redis has not answered yet), or no key
/// has been fetched yet, opening a socket gets 503 and a `Retry-After`, not a
/// refusal the client would take for a bad token: clients retry.
async fn refuse_until_ready(State(http): State<Http>, request: Request, next: Next) -> Response {
    if request.uri().path().starts_with("/socket.io") {
        let waiting_for = if !http.app.backplane.accepting() {
            Some("Redis")
        } else if http.app.keys.ready().is_err() {
            Some("the JWK Set")
        } else {
            None
        };
        if let Some(what) = waiting_for {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "1")],
                format!("socket-server starting: waiting for {what}"),
            )
                .into_response();
        }
    }
    next.run(request).await
}

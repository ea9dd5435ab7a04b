//! Which browser pages may open a socket: CORS for polling, the same list for
//! the websocket upgrade. A request without `Origin` is no browser's and passes.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use settings::ConfigError;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Wraps `router` so that a request from any other origin is refused with 403
/// before it can open an Engine.IO session.
pub(crate) fn guard(router: Router, origins: &[String]) -> Result<Router, ConfigError> {
    let allowed = origins
        .iter()
        .map(|origin| {
            HeaderValue::from_str(origin.trim_end_matches('/')).map_err(|_| {
                ConfigError::invalid(
                    "socket.allowed_origins",
                    format!("{origin:?} is not a valid origin"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed.clone()))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE])
        .allow_credentials(true);
    // The outer layer runs first: an unknown origin never reaches CORS or Engine.IO.
    Ok(router.layer(cors).layer(middleware::from_fn_with_state(
        Arc::<[HeaderValue]>::from(allowed),
        refuse_other_origins,
    )))
}

async fn refuse_other_origins(
    State(allowed): State<Arc<[HeaderValue]>>,
    request: Request,
    next: Next,
) -> Response {
    // Only opening a socket is a browser matter; `/healthz` answers anyone.
    if !request.uri().path().starts_with("/socket.io") {
        return next.run(request).await;
    }
    match request.headers().get(header::ORIGIN) {
        Some(origin) if !allowed.contains(origin) => {
            (StatusCode::FORBIDDEN, "origin not allowed").into_response()
        }
        _ => next.run(request).await,
    }
}

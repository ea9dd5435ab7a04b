//! Every route of the web-frontend, in one place.

use actix_session::SessionMiddleware;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use crate::backplane::Sessions;
use crate::state::AppState;
use crate::{assets, jwks, pages, status, token};

/// Static files, health, readiness, metrics and the JWK Set need no session
/// (so they never touch the session store); the pages do.
pub(crate) fn routes(config: &mut web::ServiceConfig, sessions: SessionMiddleware<Sessions>) {
    config
        .route("/healthz", read().to(|| async { "ok" }))
        .route("/readyz", read().to(status::report_readiness))
        .route("/metrics", read().to(status::report_metrics))
        .route("/.well-known/jwks.json", read().to(jwks::get_jwks));
    for asset in assets::ASSETS {
        config.route(asset.path, read().to(move || assets::serve(asset)));
    }
    config
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
                .wrap(sessions)
                .wrap(actix_web::middleware::from_fn(answer_store_failures)),
        )
        .app_data(web::FormConfig::default().limit(16 * 1024));
}

/// GET, and HEAD wherever GET works (HTTP semantics; `curl -I` health checks).
/// actix-web sends a HEAD response's headers without its body.
pub(crate) fn read() -> actix_web::Route {
    web::route().guard(actix_web::guard::Any(actix_web::guard::Get()).or(actix_web::guard::Head()))
}

/// Around the session middleware: a failure of the session store is answered
/// as the backplane says (503 with `Retry-After` when Redis is away).
async fn answer_store_failures(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = request.app_data::<web::Data<AppState>>().cloned();
    match (next.call(request).await, state) {
        (Err(error), Some(state)) => Err(state.backplane.answer_store_failure(error)),
        (outcome, _) => outcome,
    }
}

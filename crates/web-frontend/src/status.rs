//! What machines ask a node: `GET /readyz` (load balancers, orchestrators)
//! and `GET /metrics` (Prometheus). `/healthz` needs no handler of its own.

use actix_web::{HttpResponse, web};

use crate::state::AppState;

/// `GET /readyz`: 200 when this node can serve every request, else 503 with
/// the reason (the backplane decides: in the scaled mode, while Redis
/// answers).
pub(crate) async fn report_readiness(state: web::Data<AppState>) -> HttpResponse {
    match state.backplane.readiness() {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("ready"),
        Err(reason) => HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body(reason),
    }
}

/// `GET /metrics`: the counters, then the lines the backplane and the
/// sign-in notices add.
pub(crate) async fn report_metrics(state: web::Data<AppState>) -> HttpResponse {
    let mut out = state.metrics.render();
    state.backplane.render_metrics(&mut out);
    state.notices.render_metrics(&mut out);
    HttpResponse::Ok()
        .content_type(service::metrics::CONTENT_TYPE)
        .body(out)
}

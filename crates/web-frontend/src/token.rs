//! `GET /getIoConnectionToken`: a fresh token for the logged-in user.

use actix_session::Session;
use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{HttpResponse, web};

use crate::error::WebError;
use crate::metrics::bump;
use crate::session::{logged_in_user, login_session_id};
use crate::state::AppState;

/// The token as a JSON string, never cached; 403 without a session.
pub(crate) async fn get_io_connection_token(
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, WebError> {
    let no_store = CacheControl(vec![CacheDirective::NoStore]);
    let Some(username) = logged_in_user(&session)? else {
        return Ok(HttpResponse::Forbidden()
            .insert_header(no_store)
            .json(serde_json::json!({ "error": "not logged in" })));
    };
    let session_id = login_session_id(&session)?;
    let token = state.keys.current().issuer.issue_with_rooms(
        &username,
        &session_id,
        state.users.rooms_of(&username),
        claims::unix_now(),
    )?;
    bump(&state.metrics.tokens_issued);
    tracing::debug!(%username, "token issued");
    Ok(HttpResponse::Ok().insert_header(no_store).json(token))
}

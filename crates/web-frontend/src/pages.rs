//! The HTML pages and the login/logout flow.

use std::time::Instant;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use tera::Context;

use crate::backplane::RevokeOutcome;
use crate::error::{WebError, chain};
use crate::metrics::bump;
use crate::origin::is_same_origin_post;
use crate::session::{self, logged_in_user};
use crate::state::AppState;
use crate::throttle::Throttled;

/// Longest username or password looked at; anything longer cannot be valid
/// and is not worth an argon2 run.
const MAX_CREDENTIAL_BYTES: usize = 1024;

fn render(
    state: &AppState,
    status: StatusCode,
    template: &str,
    context: &Context,
) -> Result<HttpResponse, WebError> {
    let body = state.templates.render(template, context)?;
    Ok(HttpResponse::build(status)
        .content_type(ContentType::html())
        .body(body))
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

pub(crate) async fn home(
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, WebError> {
    let mut context = Context::new();
    context.insert("username", &logged_in_user(&session)?);
    render(&state, StatusCode::OK, "home.html", &context)
}

pub(crate) async fn not_found(state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    render(
        &state,
        StatusCode::NOT_FOUND,
        "not_found.html",
        &Context::new(),
    )
}

/// `GET /login`: with `Authorization: Basic` it logs in (the article's way);
/// without, it shows the form. A throttled attempt is a plain 429 with
/// `Retry-After` and no `WWW-Authenticate` (a browser would only ask again).
/// Malformed credentials guess no password: 401, not counted.
pub(crate) async fn login_form_or_basic(
    request: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, WebError> {
    let Some(authorization) = request.headers().get(header::AUTHORIZATION) else {
        return login_page(&state, StatusCode::OK, "", None);
    };
    let unauthorized = || {
        HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="site_login""#))
            .content_type(ContentType::plaintext())
            .body("wrong username or password")
    };
    let credentials = authorization.to_str().ok().and_then(basic_credentials);
    let Some((username, password)) = credentials else {
        return Ok(unauthorized());
    };
    match attempt_login(&request, &state, &username, password).await? {
        LoginOutcome::LoggedIn => start_session(&request, &state, &session, username),
        LoginOutcome::Refused => Ok(unauthorized()),
        LoginOutcome::Throttled(throttled) => Ok(HttpResponse::TooManyRequests()
            .insert_header((header::RETRY_AFTER, throttled.retry_after_secs()))
            .content_type(ContentType::plaintext())
            .body("too many failed logins; try again later")),
    }
}

/// `username:password` from a `Basic` credential (RFC 7617); `None` when malformed.
fn basic_credentials(authorization: &str) -> Option<(String, String)> {
    let (scheme, encoded) = authorization.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (username, password) = decoded.split_once(':')?;
    Some((username.to_owned(), password.to_owned()))
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// `POST /login`: the form. A wrong password shows the form again with the
/// error and the username kept; so does a throttled attempt, as a 429 with
/// `Retry-After`.
pub(crate) async fn log_in(
    request: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, WebError> {
    if !is_same_origin_post(&request) {
        return Ok(forbidden_cross_site());
    }
    let LoginForm { username, password } = form.into_inner();
    match attempt_login(&request, &state, &username, password).await? {
        LoginOutcome::LoggedIn => start_session(&request, &state, &session, username),
        LoginOutcome::Refused => login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            &username,
            Some("Wrong username or password."),
        ),
        LoginOutcome::Throttled(throttled) => {
            let secs = throttled.retry_after_secs();
            let plural = if secs == 1 { "" } else { "s" };
            let error = format!("Too many failed logins. Try again in {secs} second{plural}.");
            let mut page = login_page(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                &username,
                Some(&error),
            )?;
            page.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
            Ok(page)
        }
    }
}

/// `POST /logout`: the session is deleted from the store, so the old cookie,
/// replayed, finds nothing; its `sid` is revoked on the socket server, whose
/// sockets of that session end at once and whose tokens are refused from now.
pub(crate) async fn log_out(
    request: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, WebError> {
    if !is_same_origin_post(&request) {
        return Ok(forbidden_cross_site());
    }
    let username = logged_in_user(&session).ok().flatten();
    // Revoked before the session ends: when the revocation cannot be recorded
    // (Redis unavailable), the session stays, and the user can try again.
    if let Some(session_id) = session::existing_session_id(&session) {
        let until = claims::unix_now().saturating_add(state.revoke_for_secs);
        match state.backplane.revoke(session_id, until).await {
            RevokeOutcome::Delivered => bump(&state.metrics.revocations_delivered),
            RevokeOutcome::Resending => {
                bump(&state.metrics.revocations_undelivered);
                tracing::warn!(
                    "the logout is not yet known to the socket server; it is resent every few seconds"
                );
            }
            RevokeOutcome::Unavailable(error) => {
                tracing::warn!(error = %chain(&error), "logout refused: the revocation could not be recorded");
                return Err(WebError::StoreUnavailable);
            }
        }
    }
    session.purge();
    if let Some(username) = username {
        bump(&state.metrics.logouts);
        tracing::info!(%username, "logged out");
    }
    Ok(see_other("/"))
}

pub(crate) async fn private(
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, WebError> {
    let Some(username) = logged_in_user(&session)? else {
        return Ok(see_other("/login"));
    };
    let mut context = Context::new();
    context.insert("username", &username);
    context.insert("socket_url", &state.socket_url);
    // The room patterns the user's tokens carry: the page offers to join them.
    context.insert("rooms", state.users.rooms_of(&username));
    render(&state, StatusCode::OK, "private.html", &context)
}

fn login_page(
    state: &AppState,
    status: StatusCode,
    username: &str,
    error: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let mut context = Context::new();
    context.insert("username", username);
    context.insert("error", &error);
    render(state, status, "login.html", &context)
}

fn forbidden_cross_site() -> HttpResponse {
    HttpResponse::Forbidden()
        .content_type(ContentType::plaintext())
        .body("cross-site request refused")
}

/// A fresh session on login, holding the username; the user's sockets
/// already open elsewhere are told (in the background); on to the private
/// page.
fn start_session(
    request: &HttpRequest,
    state: &AppState,
    session: &Session,
    username: String,
) -> Result<HttpResponse, WebError> {
    session::start(session, &username)?;
    tracing::info!(%username, "logged in");
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok());
    state.notices.announce(&username, user_agent);
    Ok(see_other("/private"))
}

/// What a login attempt came to.
enum LoginOutcome {
    LoggedIn,
    /// Wrong username or password.
    Refused,
    /// Refused before any password check: too many failures (see
    /// [`crate::throttle`]).
    Throttled(Throttled),
}

/// A login attempt through the failed-login throttle: a throttled attempt runs
/// no argon2 and is not counted again; any other is checked and its outcome
/// counted. The client address is the TCP peer's, never a forwarded header.
async fn attempt_login(
    request: &HttpRequest,
    state: &web::Data<AppState>,
    username: &str,
    password: String,
) -> Result<LoginOutcome, WebError> {
    let address = request.peer_addr().map(|peer| peer.ip());
    let attempt = match state.throttle.begin(username, address, Instant::now()) {
        Ok(attempt) => attempt,
        Err(throttled) => {
            bump(&state.metrics.logins_throttled);
            tracing::info!(
                limited_by = throttled.limited_by(),
                retry_after_secs = throttled.retry_after_secs(),
                "login throttled"
            );
            return Ok(LoginOutcome::Throttled(throttled));
        }
    };
    // An error drops the attempt, which then counts as a failure.
    if check_password(state, username.to_owned(), password).await? {
        attempt.succeeded(Instant::now());
        Ok(LoginOutcome::LoggedIn)
    } else {
        attempt.failed(Instant::now());
        Ok(LoginOutcome::Refused)
    }
}

/// Runs argon2 on the blocking pool: it takes tens of milliseconds of CPU.
async fn check_password(
    state: &web::Data<AppState>,
    username: String,
    password: String,
) -> Result<bool, WebError> {
    if username.len() > MAX_CREDENTIAL_BYTES || password.len() > MAX_CREDENTIAL_BYTES {
        return Ok(false);
    }
    let directory = state.clone();
    let valid = web::block(move || directory.users.verify(&username, &password)).await?;
    if valid {
        bump(&state.metrics.logins_ok);
    } else {
        bump(&state.metrics.logins_failed);
        tracing::info!("login failed");
    }
    Ok(valid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_parsed_strictly() {
        let encoded = STANDARD.encode("gonzalo:pass:word");
        assert_eq!(
            basic_credentials(&format!("Basic {encoded}")),
            Some(("gonzalo".into(), "pass:word".into()))
        );
        assert_eq!(
            basic_credentials(&format!("basic {encoded}")).map(|c| c.0),
            Some("gonzalo".into())
        );
        assert_eq!(basic_credentials("Basic !!!"), None);
        assert_eq!(
            basic_credentials(&format!("Basic {}", STANDARD.encode("no-colon"))),
            None
        );
        assert_eq!(basic_credentials(&format!("Bearer {encoded}")), None);
        assert_eq!(basic_credentials("Basic"), None);
    }
}

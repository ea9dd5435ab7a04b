//! The web-frontend's errors, mapped to HTTP responses in one place.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// What can go wrong while serving a request. The client sees the status and
/// a generic text; the cause goes to the log.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WebError {
    /// 500: the session store failed.
    #[error("session store failed")]
    Session(#[source] anyhow::Error),
    /// 500: a template failed to render (a bug: templates are checked at start).
    #[error("page rendering failed")]
    Template(#[from] tera::Error),
    /// 500: signing a token failed.
    #[error("token signing failed")]
    Token(#[from] claims::IssueError),
    /// 500: the password check could not run.
    #[error("password check failed")]
    PasswordCheck(#[source] anyhow::Error),
}

impl From<actix_session::SessionInsertError> for WebError {
    fn from(error: actix_session::SessionInsertError) -> Self {
        WebError::Session(anyhow::anyhow!("{error}"))
    }
}

impl From<actix_session::SessionGetError> for WebError {
    fn from(error: actix_session::SessionGetError) -> Self {
        WebError::Session(anyhow::anyhow!("{error}"))
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    fn error_response(&self) -> HttpResponse {
        tracing::error!(error = %self, cause = ?std::error::Error::source(self), "request failed");
        HttpResponse::build(self.status_code())
            .content_type("text/plain; charset=utf-8")
            .body("internal error")
    }
}

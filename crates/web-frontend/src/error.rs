//! The web-frontend's errors: why it could not start, and what went wrong in a
//! request, mapped to its HTTP response in one place.

use std::net::SocketAddr;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use settings::ConfigError;

use crate::users::UserError;

/// Why the web-frontend could not start. `Display` is one line naming what is
/// at fault; the cause follows as the error's source (`main` prints the chain).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A setting that loaded but cannot be used: the address, the keys, the
    /// session secret.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `web.addr` could not be bound.
    #[error("web.addr: cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The listener (bound here or handed in) could not be served on.
    #[error("the listener")]
    Listener(#[source] std::io::Error),
    /// `redis.url` does not make a Redis connection pool.
    #[error("redis.url")]
    RedisUrl(#[source] deadpool_redis::CreatePoolError),
    /// actix-session's Redis store could not be set up on the pool (its
    /// builder reports an `anyhow::Error`, kept here as a plain source).
    #[error("the Redis session store")]
    RedisSessionStore(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The HTTP client to the socket-server could not be built (its TLS set-up).
    #[error("the HTTP client to the socket-server")]
    HttpClient(#[source] reqwest::Error),
    /// A template does not parse (a bug, caught at start).
    #[error("templates/")]
    Templates(#[source] tera::Error),
    /// A `[[users]]` entry cannot be used.
    #[error(transparent)]
    Users(#[from] UserError),
}

/// What can go wrong while serving a request. The client sees the status and
/// a generic text; the cause goes to the log. Each variant names its status.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WebError {
    /// 503 with `Retry-After: 2`: the session store or the revocation record
    /// (Redis) did not answer; nothing was changed, the client may retry. The
    /// cause is logged where it is met, with what was being done.
    #[error("the session store is unavailable")]
    StoreUnavailable,
    /// 500: reading the session failed.
    #[error("reading the session failed")]
    SessionRead(#[from] actix_session::SessionGetError),
    /// 500: writing the session failed.
    #[error("writing the session failed")]
    SessionWrite(#[from] actix_session::SessionInsertError),
    /// 500: a template failed to render (a bug: templates are checked at start).
    #[error("page rendering failed")]
    Template(#[from] tera::Error),
    /// 500: signing a token failed.
    #[error("token signing failed")]
    Token(#[from] claims::IssueError),
    /// 500: the password check could not run (the blocking pool is gone).
    #[error("password check failed")]
    PasswordCheck(#[from] actix_web::error::BlockingError),
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            WebError::SessionRead(_)
            | WebError::SessionWrite(_)
            | WebError::Template(_)
            | WebError::Token(_)
            | WebError::PasswordCheck(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let WebError::StoreUnavailable = self {
            return HttpResponse::build(self.status_code())
                .insert_header((header::RETRY_AFTER, "2"))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .content_type("text/plain; charset=utf-8")
                .body("The session store is unavailable; please try again in a moment.");
        }
        let cause = std::error::Error::source(self).map(chain);
        tracing::error!(error = %self, cause = cause.as_deref().unwrap_or(""), "request failed");
        HttpResponse::build(self.status_code())
            .content_type("text/plain; charset=utf-8")
            .body("internal error")
    }
}

/// An error and its causes, `: `-separated (as `anyhow` prints `{:#}`), for
/// the log. A cause that only repeats the text before it (a wrapper that
/// displays its inner error) is written once.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut last = text.clone();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if line != last {
            text.push_str(": ");
            text.push_str(&line);
            last = line;
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Wrapper);

    /// Displays its inner error, as actix-session's errors do.
    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Wrapper(#[source] std::io::Error);

    #[test]
    fn a_chain_names_every_cause_once() {
        let error = Outer(Wrapper(std::io::Error::other("inner")));
        assert_eq!(chain(&error), "outer: inner");
    }
}

//! The server API's refusals, each mapped to its status in one place, with a
//! JSON body `{"error": MESSAGE}` and a reason for `/metrics`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A refused API request. The message is for the caller (it names the field
/// at fault; never the key, never internals).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct ApiError {
    kind: Kind,
    message: String,
    /// Answered with the body unread: the connection is closed after it.
    unread: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// 400: a malformed body, field or header.
    BadRequest,
    /// 404: no such request in the API.
    NotFound,
    /// 401: no key, or the wrong one (the same answer for both).
    Unauthorized,
    /// 403: a browser's request (it carries `Origin`).
    Browser,
    /// 413: a body over the limit.
    TooLarge,
    /// 409: a repeat of an idempotent request whose first is still running.
    InProgress,
    /// 503: the other nodes cannot be reached; nothing was done.
    Unavailable,
}

/// Marks a refusal's response, for the middleware that counts them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Refused(pub(crate) &'static str);

impl ApiError {
    fn new(kind: Kind, message: impl Into<String>) -> Self {
        // What is refused before its body is read: the guard's refusals and
        // an oversized body.
        let unread = matches!(kind, Kind::Unauthorized | Kind::Browser | Kind::TooLarge);
        Self {
            kind,
            message: message.into(),
            unread,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Kind::BadRequest, message)
    }

    /// A 400 answered before the body was read (its type is wrong).
    pub(crate) fn bad_request_unread(message: impl Into<String>) -> Self {
        Self {
            unread: true,
            ..Self::bad_request(message)
        }
    }

    pub(crate) fn not_found() -> Self {
        Self::new(
            Kind::NotFound,
            "no such request: see POST /api/publish, /api/sessions/revoke, /api/disconnect, GET /api/presence",
        )
    }

    pub(crate) fn unauthorized() -> Self {
        Self::new(Kind::Unauthorized, "unauthorized")
    }

    pub(crate) fn browser() -> Self {
        Self::new(
            Kind::Browser,
            "requests from browsers are refused: call the API from the application's backend",
        )
    }

    pub(crate) fn too_large(limit: usize) -> Self {
        Self::new(
            Kind::TooLarge,
            format!("body: at most {} KiB", limit / 1024),
        )
    }

    pub(crate) fn in_progress() -> Self {
        Self::new(
            Kind::InProgress,
            "Idempotency-Key: a request with this key is still being carried out; try again",
        )
    }

    pub(crate) fn unavailable() -> Self {
        Self::new(
            Kind::Unavailable,
            "Redis is unreachable: nothing was done; try again",
        )
    }

    #[cfg(test)]
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    fn status(&self) -> StatusCode {
        match self.kind {
            Kind::BadRequest => StatusCode::BAD_REQUEST,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::Browser => StatusCode::FORBIDDEN,
            Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::InProgress => StatusCode::CONFLICT,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The label of `authbridge_api_refused_total`.
    fn reason(&self) -> &'static str {
        match self.kind {
            Kind::BadRequest => "bad_request",
            Kind::NotFound => "not_found",
            Kind::Unauthorized => "unauthorized",
            Kind::Browser => "browser",
            Kind::TooLarge => "too_large",
            Kind::InProgress => "in_progress",
            Kind::Unavailable => "unavailable",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status(),
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response();
        if self.kind == Kind::Unavailable {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        // Answered with the body unread: hyper then closes the connection,
        // and a client not told so sends its next request on it and gets a
        // broken pipe.
        if self.unread {
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response.extensions_mut().insert(Refused(self.reason()));
        response
    }
}

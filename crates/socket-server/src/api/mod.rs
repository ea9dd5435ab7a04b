//! The server API: the application's own backend (any language) pushes events
//! to users, sessions, rooms or everyone, ends sessions, and asks who is
//! online. Bearer key, JSON bodies, every refusal a JSON `{"error": …}` naming
//! what is wrong; served only when `api.key` is set.
//!
//! What crosses nodes goes through the backplane, so the API answers the same
//! on every node, in both modes.

mod error;
mod request;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::backplane::{Claim, ClaimError};
use crate::bus::{Action, Audience, Envelope, MAX_SURVEYED_USERS};
use crate::node::Node;
use crate::state::AppState;
use crate::targets::{Target, session_room};
use error::{ApiError, Refused};
use request::{Disconnect, Publish, Revoke};

/// A request body, at most.
const MAX_BODY_BYTES: usize = 80 * 1024;
/// An `Idempotency-Key`, at most.
const MAX_IDEMPOTENCY_KEY: usize = 128;

/// What the API's handlers share.
#[derive(Clone, Debug)]
struct Api {
    app: Arc<AppState>,
    node: Node,
    /// SHA-256 of the key: requests are compared with it in constant time.
    key_digest: [u8; 32],
    /// Idempotency keys are per API key: a prefix no one can guess the key from.
    scope: String,
    /// How long after now a revocation is kept at most: the token lifetime
    /// and the leeway (no token of the session can live longer).
    revoke_for_secs: i64,
}

/// The API's routes under `/api`, for `key`.
pub(crate) fn routes(
    key: &SecretString,
    app: Arc<AppState>,
    node: Node,
    revoke_for_secs: i64,
) -> Router {
    let key_digest: [u8; 32] = Sha256::digest(key.expose_secret().as_bytes()).into();
    let scope = key_digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let api = Arc::new(Api {
        app,
        node,
        key_digest,
        scope,
        revoke_for_secs,
    });
    let routes = Router::new()
        .route("/publish", post(publish))
        .route("/sessions/revoke", post(revoke))
        .route("/disconnect", post(disconnect))
        .route("/presence", get(presence))
        .route("/presence/{*target}", get(presence_of))
        .fallback(|| async { ApiError::not_found() })
        .layer(axum::middleware::from_fn_with_state(api.clone(), guard))
        .with_state(api);
    Router::new().nest("/api", routes)
}

/// With no key, the API is off: every `/api` path is 404, whatever the method
/// (in front of the CORS layer, which would answer any `OPTIONS` itself).
pub(crate) fn off() -> Router {
    let not_found = || async { StatusCode::NOT_FOUND };
    Router::new()
        .route("/api", any(not_found))
        .route("/api/", any(not_found))
        .route("/api/{*path}", any(not_found))
}

/// Every API request: a browser's is refused (no preflight ever passes), a
/// wrong or missing key is refused; each refusal is counted by reason.
async fn guard(State(api): State<Arc<Api>>, request: Request, next: Next) -> Response {
    let response = if request.headers().contains_key(header::ORIGIN) {
        ApiError::browser().into_response()
    } else if !api.authorized(request.headers()) {
        ApiError::unauthorized().into_response()
    } else {
        next.run(request).await
    };
    if let Some(Refused(reason)) = response.extensions().get::<Refused>() {
        api.app.metrics.api_refused(reason);
    }
    response
}

impl Api {
    /// `Authorization: Bearer KEY`, compared in constant time (digests of
    /// equal length, every byte looked at).
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(presented) = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key.trim())
        else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        digest
            .iter()
            .zip(self.key_digest.iter())
            .fold(0_u8, |differ, (a, b)| differ | (a ^ b))
            == 0
    }
}

/// The body of a JSON request: its type checked, its size bounded.
async fn json_body(headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ApiError::bad_request_unread(
            "body: Content-Type must be application/json",
        ));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES) {
        return Err(ApiError::too_large(MAX_BODY_BYTES));
    }
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::too_large(MAX_BODY_BYTES))
}

/// The request's `Idempotency-Key`: 1 to 128 printable ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let valid = value
        .to_str()
        .ok()
        .filter(|key| {
            (1..=MAX_IDEMPOTENCY_KEY).contains(&key.len())
                && key.bytes().all(|byte| (0x20..=0x7e).contains(&byte))
        })
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Idempotency-Key: 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"
            ))
        })?;
    Ok(Some(valid.to_owned()))
}

/// A publication's id: unique across nodes and restarts (a random prefix per
/// process) without a random draw, nor a system call, per publication.
fn publication_id() -> String {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..16].to_owned());
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}{n:08x}")
}

fn ok_json(body: String) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// `POST /api/publish`.
async fn publish(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = json_body(&headers, body).await?;
    let idempotency = idempotency_key(&headers)?;
    let publish = Publish::read(&body)?;
    let key = idempotency.map(|key| format!("{}:{key}", api.scope));
    if let Some(key) = &key {
        match api.app.backplane.claim(key).await {
            Ok(Claim::First) => {}
            Ok(Claim::Replay(response)) => {
                crate::metrics::bump(&api.app.metrics.api_replays);
                let mut response = ok_json(response);
                response
                    .headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
                return Ok(response);
            }
            Err(ClaimError::InProgress) => return Err(ApiError::in_progress()),
            Err(ClaimError::Unavailable(_)) => return Err(ApiError::unavailable()),
        }
    }
    let envelope = Envelope {
        to: Audience::of(&publish.to),
        action: Action::Emit {
            event: publish.event,
            data: publish.data,
        },
        offset: None,
    };
    let sockets = match api.app.backplane.publish(&api.node, &envelope).await {
        Ok(outcome) => outcome.sockets,
        Err(_) => {
            if let Some(key) = &key {
                api.app.backplane.release(key).await;
            }
            return Err(ApiError::unavailable());
        }
    };
    let metrics = &api.app.metrics;
    crate::metrics::bump(&metrics.api_publications);
    metrics
        .api_sockets_reached
        .fetch_add(sockets, std::sync::atomic::Ordering::Relaxed);
    let id = publication_id();
    let response = json!({ "id": id, "sockets": sockets }).to_string();
    if let Some(key) = &key {
        api.app.backplane.complete(key, &response).await;
    }
    Ok(ok_json(response))
}

/// `POST /api/sessions/revoke`: what a logout does, for applications that
/// issue tokens themselves.
async fn revoke(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = json_body(&headers, body).await?;
    let Revoke { sid, until } = Revoke::read(&body)?;
    // No token of the session can live longer than this.
    let until = until.min(claims::unix_now().saturating_add(api.revoke_for_secs));
    let envelope = Envelope {
        to: Audience::Rooms(vec![session_room(&sid)]),
        action: Action::Revoke { sid, until },
        offset: None,
    };
    let sockets = api
        .app
        .backplane
        .publish(&api.node, &envelope)
        .await
        .map_err(|_| ApiError::unavailable())?
        .sockets;
    crate::metrics::bump(&api.app.metrics.sessions_revoked);
    Ok(ok_json(json!({ "sockets": sockets }).to_string()))
}

/// `POST /api/disconnect`: `session_ended`, then a disconnect; tokens stay
/// valid.
async fn disconnect(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = json_body(&headers, body).await?;
    let Disconnect { to } = Disconnect::read(&body)?;
    let envelope = Envelope {
        to: Audience::of(&to),
        action: Action::End {
            reason: "disconnected by the server".to_owned(),
        },
        offset: None,
    };
    let sockets = api
        .app
        .backplane
        .publish(&api.node, &envelope)
        .await
        .map_err(|_| ApiError::unavailable())?
        .sockets;
    Ok(ok_json(json!({ "sockets": sockets }).to_string()))
}

/// `GET /api/presence`: distinct users and sockets, cluster-wide.
async fn presence(State(api): State<Arc<Api>>) -> Result<Response, ApiError> {
    let summary = api
        .app
        .backplane
        .presence_summary()
        .await
        .map_err(|_| ApiError::unavailable())?;
    Ok(ok_json(
        json!({ "users": summary.users, "sockets": summary.sockets }).to_string(),
    ))
}

/// `GET /api/presence/user:USERNAME`.
async fn presence_of(
    State(api): State<Arc<Api>>,
    Path(target): Path<String>,
) -> Result<Response, ApiError> {
    let refused =
        || ApiError::bad_request("target: presence is asked of user:USERNAME or room:NAME");
    let target = Target::parse(&target).map_err(|_| refused())?;
    if let Some(user) = target.user() {
        let sockets = api
            .app
            .backplane
            .presence_of(user)
            .await
            .map_err(|_| ApiError::unavailable())?;
        return Ok(ok_json(
            json!({ "user": user, "online": sockets > 0, "sockets": sockets }).to_string(),
        ));
    }
    let Some(room) = target.room() else {
        return Err(refused());
    };
    // One question to each node (not one per socket): who its sockets in
    // the room are.
    let envelope = Envelope {
        to: Audience::Rooms(vec![crate::targets::room(room)]),
        action: Action::Survey,
        offset: None,
    };
    let mut outcome = api
        .app
        .backplane
        .publish(&api.node, &envelope)
        .await
        .map_err(|_| ApiError::unavailable())?;
    let mut answer = json!({ "room": room, "sockets": outcome.sockets });
    if outcome.users.len() > MAX_SURVEYED_USERS {
        outcome.users.truncate(MAX_SURVEYED_USERS);
        answer["truncated"] = json!(true);
    }
    answer["users"] = json!(outcome.users);
    Ok(ok_json(answer.to_string()))
}

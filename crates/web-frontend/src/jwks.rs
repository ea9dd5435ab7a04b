//! `GET /.well-known/jwks.json`: the public keys tokens are signed with
//! (EdDSA/ES256), for the socket servers and any other verifier.

use actix_web::http::header::{self, CacheControl, CacheDirective, EntityTag};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::metrics::bump;
use crate::state::AppState;

/// How long a JWK Set may be cached: a socket server that meets an unknown
/// `kid` fetches it again anyway (rate-limited), so this only bounds how
/// stale other verifiers may be.
const JWKS_MAX_AGE_SECS: u32 = 300;

/// The keys with their `ETag` (304 when the client has them); 404 with the
/// shared secret, which is never published.
pub(crate) async fn get_jwks(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    let keys = state.keys.current();
    let Some(jwks) = keys.jwks() else {
        return HttpResponse::NotFound().json(serde_json::json!({
            "error": "no public keys: jwt.algorithm is HS256 (a shared secret)"
        }));
    };
    let cache = CacheControl(vec![
        CacheDirective::Public,
        CacheDirective::MaxAge(JWKS_MAX_AGE_SECS),
    ]);
    // RFC 9110 §13.1.2: `*`, or any listed tag weakly equal to ours.
    let unchanged = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| {
            tags.trim() == "*"
                || tags
                    .split(',')
                    .filter_map(|tag| tag.trim().parse::<EntityTag>().ok())
                    .any(|tag| tag.weak_eq(&jwks.etag))
        });
    if unchanged {
        return HttpResponse::NotModified()
            .insert_header(cache)
            .insert_header(header::ETag(jwks.etag.clone()))
            .finish();
    }
    bump(&state.metrics.jwks_served);
    HttpResponse::Ok()
        .insert_header(cache)
        .insert_header(header::ETag(jwks.etag.clone()))
        .content_type("application/json")
        .body(jwks.body.clone())
}

//! What Engine.IO keeps of a handshake for the socket's whole life: the
//! request's parts (URI and headers, read back by `socket.req_parts()`).
//!
//! hyper parses header values and the URI as slices of the connection's read
//! buffer (8–16 KiB), so keeping the parts would keep that buffer alive for as
//! long as the socket lives. Fresh copies of what is kept let it go; and only
//! the headers the transports need are kept (a browser sends a dozen more).
//! Of these, the session keeps only those that are not the transport's own
//! (`Host`, `Origin`, `X-Forwarded-For`): engineioxide drops `Upgrade`,
//! `Connection` and the `Sec-WebSocket-*` once the handshake has read them
//! (vendor/README.md, change 11).
//! Cookies, in particular, never are: the browser sends the web-frontend's
//! cookies to this port too (cookies are per host, not per port), and this
//! server never needs them.

use axum::extract::Request;
use axum::http::header::{
    CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN, SEC_WEBSOCKET_EXTENSIONS,
    SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, TRANSFER_ENCODING, UPGRADE,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::Response;

/// What the Engine.IO transports read (the WebSocket upgrade, a polling
/// request's body) and what says where a socket comes from.
const KEPT: [HeaderName; 11] = [
    HOST,
    ORIGIN,
    UPGRADE,
    CONNECTION,
    SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION,
    SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_EXTENSIONS,
    CONTENT_TYPE,
    CONTENT_LENGTH,
    TRANSFER_ENCODING,
];

pub(crate) async fn detach_parts(mut request: Request, next: Next) -> Response {
    // Only a request that opens an Engine.IO session (no `sid` yet) is kept;
    // the polls and upgrades of an open session go through untouched.
    if request.uri().path().starts_with("/socket.io") && !has_sid(request.uri()) {
        let headers = std::mem::take(request.headers_mut());
        let mut fresh = HeaderMap::with_capacity(headers.len());
        for (name, value) in &headers {
            if !KEPT.contains(name) && name.as_str() != "x-forwarded-for" {
                continue;
            }
            // Both copy their bytes into new allocations.
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_str().as_bytes()),
                HeaderValue::from_bytes(value.as_bytes()),
            ) {
                fresh.append(name, value);
            }
        }
        *request.headers_mut() = fresh;
        if let Ok(uri) = Uri::try_from(request.uri().to_string()) {
            *request.uri_mut() = uri;
        }
    }
    next.run(request).await
}

fn has_sid(uri: &Uri) -> bool {
    uri.query()
        .is_some_and(|query| query.split('&').any(|pair| pair.starts_with("sid=")))
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt as _;

    use super::*;

    #[tokio::test]
    async fn socket_requests_keep_their_uri_and_the_transport_headers_but_no_cookie() {
        let app = Router::new()
            .route(
                "/socket.io/",
                get(|request: Request| async move {
                    let headers = request.headers();
                    format!(
                        "{}|{}|{}|{}",
                        request.uri(),
                        headers
                            .get("origin")
                            .map_or("-", |v| v.to_str().unwrap_or("?")),
                        headers.contains_key("cookie"),
                        headers.contains_key("user-agent"),
                    )
                }),
            )
            .layer(axum::middleware::from_fn(detach_parts));
        let response = app
            .oneshot(
                Request::get("/socket.io/?EIO=4&transport=polling&token=a.b.c")
                    .header("origin", "http://app.example")
                    .header("cookie", "authbridge_session=secret")
                    .header("user-agent", "Mozilla/5.0")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .expect("body");
        assert_eq!(
            body,
            "/socket.io/?EIO=4&transport=polling&token=a.b.c|http://app.example|false|false"
        );
    }

    #[test]
    fn only_requests_without_a_session_id_open_a_session() {
        let uri = |text: &str| text.parse::<Uri>().expect("uri");
        assert!(!has_sid(&uri("/socket.io/?EIO=4&transport=polling")));
        assert!(!has_sid(&uri(
            "/socket.io/?EIO=4&transport=polling&token=sid=x"
        )));
        assert!(has_sid(&uri("/socket.io/?EIO=4&transport=polling&sid=abc")));
        assert!(has_sid(&uri(
            "/socket.io/?sid=abc&EIO=4&transport=websocket"
        )));
    }
}

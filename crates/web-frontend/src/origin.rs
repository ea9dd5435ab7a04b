//! Browser-facing protections: security headers on every response, and the
//! same-origin check on the state-changing posts (SameSite alone is not enough:
//! it lets sibling subdomains through).

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;

/// `Content-Security-Policy` and friends. Scripts only from this origin (no
/// inline script), sockets only to this origin and the socket server.
pub(crate) fn security_headers(socket_url: &str) -> DefaultHeaders {
    let socket_origin = origin_of(socket_url);
    let websocket_origin = socket_origin
        .replacen("https://", "wss://", 1)
        .replacen("http://", "ws://", 1);
    let csp = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self' {socket_origin} {websocket_origin}; frame-ancestors 'none'; \
         base-uri 'none'; form-action 'self'; object-src 'none'"
    );
    DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, csp))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "same-origin"))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
}

/// `scheme://host[:port]` of a URL (what browsers send as `Origin`).
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    format!("{scheme}://{authority}")
}

/// Whether a POST comes from one of this site's own pages. Browsers send
/// `Origin` on every cross-site POST; without it, `Referer` decides; a request
/// with neither is no browser's (curl, a test client) and passes.
pub(crate) fn is_same_origin_post(request: &HttpRequest) -> bool {
    let Some(host) = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    let claimed = request
        .headers()
        .get(header::ORIGIN)
        .or_else(|| request.headers().get(header::REFERER))
        .map(|value| value.to_str().unwrap_or("null"));
    match claimed {
        None => true,
        Some(url) => {
            authority_of(url).is_some_and(|authority| authority.eq_ignore_ascii_case(host))
        }
    }
}

fn authority_of(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    rest.split(['/', '?', '#'])
        .next()
        .filter(|authority| !authority.is_empty())
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn post(headers: &[(&str, &str)]) -> bool {
        let mut request = TestRequest::post().insert_header(("host", "127.0.0.1:8080"));
        for header in headers {
            request = request.insert_header(*header);
        }
        is_same_origin_post(&request.to_http_request())
    }

    #[test]
    fn same_origin_posts_pass_and_others_are_refused() {
        assert!(post(&[]));
        assert!(post(&[("origin", "http://127.0.0.1:8080")]));
        assert!(post(&[("referer", "http://127.0.0.1:8080/login?x=1")]));
        assert!(!post(&[("origin", "http://evil.example")]));
        assert!(!post(&[("origin", "null")]));
        assert!(!post(&[("origin", "http://127.0.0.1:8081")]));
        assert!(!post(&[("referer", "http://evil.example/127.0.0.1:8080")]));
    }

    #[test]
    fn the_socket_server_origin_is_allowed_for_websockets() {
        assert_eq!(
            origin_of("https://socket.example:3000/path"),
            "https://socket.example:3000"
        );
        assert_eq!(origin_of("http://127.0.0.1:3000"), "http://127.0.0.1:3000");
    }
}

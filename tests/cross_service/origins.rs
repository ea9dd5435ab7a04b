//! `socket.allowed_origins`: CORS for polling, the `Origin` check for the
//! websocket upgrade; other origins refused before any session is opened;
//! clients without `Origin` (no browser) allowed.

use reqwest::StatusCode;

use crate::helpers::*;

const ALLOWED: &str = "http://127.0.0.1:8080";
const OTHER: &str = "http://evil.example";

async fn polling_handshake(system: &TestSystem, origin: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!(
        "{}/socket.io/?EIO=4&transport=polling",
        system.socket_url
    ));
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.send().await.expect("request")
}

async fn websocket_upgrade(system: &TestSystem, origin: Option<&str>) -> StatusCode {
    let mut request = reqwest::Client::new()
        .get(format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            system.socket_url
        ))
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.send().await.expect("request").status()
}

#[tokio::test]
async fn an_allowed_origin_opens_a_polling_session_with_cors() {
    let system = spawn_system().await;
    let response = polling_handshake(&system, Some(ALLOWED)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], ALLOWED);
    assert!(
        response.text().await.expect("body").contains("\"sid\""),
        "an Engine.IO session was opened"
    );
}

#[tokio::test]
async fn an_allowed_origin_upgrades_to_websocket() {
    let system = spawn_system().await;
    assert_eq!(
        websocket_upgrade(&system, Some(ALLOWED)).await,
        StatusCode::SWITCHING_PROTOCOLS
    );
}

#[tokio::test]
async fn another_origin_is_refused_on_polling_without_a_session() {
    let system = spawn_system().await;
    let response = polling_handshake(&system, Some(OTHER)).await;
    assert_eq!(response.status(), 403);
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert!(!response.text().await.expect("body").contains("sid"));
}

#[tokio::test]
async fn another_origin_is_refused_on_websocket() {
    let system = spawn_system().await;
    assert_eq!(
        websocket_upgrade(&system, Some(OTHER)).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        websocket_upgrade(&system, Some("null")).await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_cors_preflight_from_another_origin_is_refused() {
    let system = spawn_system().await;
    let response = reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/socket.io/?EIO=4&transport=polling", system.socket_url),
        )
        .header("origin", OTHER)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn clients_without_an_origin_are_allowed_on_both_transports() {
    let system = spawn_system().await;
    assert_eq!(polling_handshake(&system, None).await.status(), 200);
    assert_eq!(
        websocket_upgrade(&system, None).await,
        StatusCode::SWITCHING_PROTOCOLS
    );
}

#[tokio::test]
async fn the_allowed_list_comes_from_the_settings() {
    let mut settings = settings();
    settings.socket.allowed_origins = vec!["https://app.example".into()];
    let system = spawn_system_with(settings).await;
    assert_eq!(
        polling_handshake(&system, Some(ALLOWED)).await.status(),
        403
    );
    assert_eq!(
        polling_handshake(&system, Some("https://app.example"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn healthz_answers_whatever_the_origin() {
    let system = spawn_system().await;
    let response = reqwest::Client::new()
        .get(format!("{}/healthz", system.socket_url))
        .header("origin", OTHER)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
}

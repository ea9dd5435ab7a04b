use claims::{KeySet, SharedKey, TokenSettings, TokenVerifier};

use crate::helpers::*;

/// The socket-server's verifier in the contract's default mode.
fn verifier() -> TokenVerifier {
    let settings = TokenSettings {
        issuer: "web-frontend".into(),
        audience: "socket-server".into(),
        ttl_secs: 300,
        leeway_secs: 5,
    };
    let key = SharedKey::new(SECRET.as_bytes()).expect("a long enough key");
    TokenVerifier::with_keys(&settings, KeySet::shared(key))
}

#[tokio::test]
async fn a_logged_in_user_gets_a_json_string_token_that_is_never_cached() {
    let app = spawn_app().await;
    app.post_login(USERNAME, PASSWORD).await;

    let response = app.get("/getIoConnectionToken").await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let token: String = response.json().await.expect("a JSON string");
    let claims = verifier()
        .verify(&token, claims::unix_now())
        .expect("a valid token");
    assert_eq!(claims.username, USERNAME);
}

#[tokio::test]
async fn each_request_gets_a_fresh_token() {
    let app = spawn_app().await;
    app.post_login(USERNAME, PASSWORD).await;
    let first: String = app
        .get("/getIoConnectionToken")
        .await
        .json()
        .await
        .expect("json");
    let second: String = app
        .get("/getIoConnectionToken")
        .await
        .json()
        .await
        .expect("json");
    assert_ne!(first, second, "jti differs");
}

#[tokio::test]
async fn without_a_session_the_token_endpoint_is_403_json() {
    let app = spawn_app().await;

    let response = app.get("/getIoConnectionToken").await;

    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value = response.json().await.expect("json");
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn the_token_lives_for_the_configured_ttl() {
    let mut settings = settings();
    settings.jwt.ttl_secs = 42;
    let app = spawn_app_with(settings).await;
    app.basic_login(USERNAME, PASSWORD).await;

    let token: String = app
        .get("/getIoConnectionToken")
        .await
        .json()
        .await
        .expect("json");

    let claims = verifier()
        .verify(&token, claims::unix_now())
        .expect("valid");
    let lifetime = claims.expires_at - claims::unix_now();
    assert!((40..=42).contains(&lifetime), "{lifetime}");
}

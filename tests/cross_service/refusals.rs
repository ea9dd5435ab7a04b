use serde_json::json;

use crate::helpers::*;
use crate::socketio::SioClient;

#[tokio::test]
async fn a_forged_token_is_refused_as_not_valid() {
    let system = spawn_system().await;
    let refusal = SioClient::refusal_with_auth(
        &system.socket_url,
        Some(json!({"token": forged_token("gonzalo")})),
    )
    .await
    .expect("refused");
    assert_eq!(refusal, "not valid token");
}

#[tokio::test]
async fn an_expired_token_is_refused_as_expired() {
    let system = spawn_system().await;
    let refusal = SioClient::refusal_with_auth(
        &system.socket_url,
        Some(json!({"token": expired_token("gonzalo")})),
    )
    .await
    .expect("refused");
    assert_eq!(refusal, "token expired");
}

#[tokio::test]
async fn an_expired_token_in_the_query_is_refused_as_expired() {
    let system = spawn_system().await;
    let refusal = SioClient::refusal_with_query(&system.socket_url, &expired_token("gonzalo"))
        .await
        .expect("refused");
    assert_eq!(refusal, "token expired");
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused_as_not_valid() {
    let system = spawn_system().await;
    let token = wrong_audience_token("gonzalo");
    let refusal = SioClient::refusal_with_auth(&system.socket_url, Some(json!({"token": token})))
        .await
        .expect("refused");
    assert_eq!(refusal, "not valid token");
}

#[tokio::test]
async fn a_missing_token_is_refused_as_not_valid() {
    let system = spawn_system().await;
    for auth in [
        None,
        Some(json!({})),
        Some(json!({"token": ""})),
        Some(json!({"token": 42})),
    ] {
        let refusal = SioClient::refusal_with_auth(&system.socket_url, auth.clone())
            .await
            .expect("refused");
        assert_eq!(refusal, "not valid token", "auth {auth:?}");
    }
}

#[tokio::test]
async fn a_token_from_a_web_frontend_with_another_key_is_refused() {
    let system = spawn_system().await;
    let mut other = settings();
    other.jwt.secret = Some(secrecy::SecretString::from(
        "another-deployment-key-0123456789abcdef",
    ));
    let other_system = spawn_system_with(other).await;
    let token = other_system.demo_token().await;

    let refusal = SioClient::refusal_with_auth(&system.socket_url, Some(json!({"token": token})))
        .await
        .expect("refused");

    assert_eq!(refusal, "not valid token");
}

#[tokio::test]
async fn a_logged_out_user_gets_no_more_tokens() {
    let system = spawn_system().await;
    let client = system.log_in("gonzalo", "password").await;
    client
        .post(format!("{}/logout", system.web_url))
        .send()
        .await
        .expect("logout");

    let response = client
        .get(format!("{}/getIoConnectionToken", system.web_url))
        .send()
        .await
        .expect("request");

    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn an_oversized_token_is_refused_as_not_valid_not_as_a_transport_error() {
    let system = spawn_system().await;
    let huge = format!(
        "{}.{}.{}",
        "a".repeat(50_000),
        "b".repeat(50_000),
        "c".repeat(10)
    );
    let refusal = SioClient::refusal_with_auth(&system.socket_url, Some(json!({"token": huge})))
        .await
        .expect("refused");
    assert_eq!(refusal, "not valid token");
}

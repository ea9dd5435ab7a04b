use serde_json::json;

use crate::helpers::*;
use crate::socketio::SioClient;

#[tokio::test]
async fn a_logged_in_user_connects_with_the_token_in_auth_and_is_welcomed_by_name() {
    let system = spawn_system().await;
    let token = system.demo_token().await;

    let client = SioClient::connect_with_auth(&system.socket_url, &token)
        .await
        .expect("connected");

    assert_eq!(client.welcome(), json!({"username": "gonzalo"}));
    client.disconnect().await.expect("disconnect");
}

#[tokio::test]
async fn the_articles_query_string_token_connects_too() {
    let system = spawn_system().await;
    let token = system.demo_token().await;

    let client = SioClient::connect_with_query(&system.socket_url, &token)
        .await
        .expect("connected");

    assert_eq!(client.welcome(), json!({"username": "gonzalo"}));
    client.disconnect().await.expect("disconnect");
}

#[tokio::test]
async fn each_user_is_known_by_their_own_name() {
    let system = spawn_system().await;
    let alice = system.log_in(SECOND_USER, SECOND_PASSWORD).await;
    let token = system.token(&alice).await;

    let client = SioClient::connect_with_auth(&system.socket_url, &token)
        .await
        .expect("connected");

    assert_eq!(client.welcome(), json!({"username": SECOND_USER}));
    client.disconnect().await.expect("disconnect");
}

#[tokio::test]
async fn a_token_minted_elsewhere_with_the_shared_key_is_accepted() {
    // The socket server trusts the key alone: no call back to the web-frontend.
    let system = spawn_system().await;
    let token = mint(&claims_now("carol"));

    let client = SioClient::connect_with_auth(&system.socket_url, &token)
        .await
        .expect("connected");

    assert_eq!(client.welcome(), json!({"username": "carol"}));
    client.disconnect().await.expect("disconnect");
}

#[tokio::test]
async fn the_socket_server_answers_healthz_on_the_same_port() {
    let system = spawn_system().await;
    let response = reqwest::get(format!("{}/healthz", system.socket_url))
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn both_services_are_ready_at_once_in_the_embedded_mode() {
    let system = spawn_system().await;
    for url in [&system.web_url, &system.socket_url] {
        let response = reqwest::get(format!("{url}/readyz"))
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(response.text().await.expect("body"), "ready");
    }
}

#[tokio::test]
async fn socket_server_metrics_count_handshakes_by_result_and_connected_sockets() {
    let system = spawn_system().await;
    let client = SioClient::connect_with_auth(&system.socket_url, &system.demo_token().await)
        .await
        .expect("connected");
    SioClient::refusal_with_auth(
        &system.socket_url,
        Some(json!({"token": expired_token("gonzalo")})),
    )
    .await
    .expect("refused");

    let body = reqwest::get(format!("{}/metrics", system.socket_url))
        .await
        .expect("request")
        .text()
        .await
        .expect("body");

    assert!(
        body.contains("authbridge_handshakes_total{result=\"accepted\",reason=\"\"} 1\n"),
        "{body}"
    );
    assert!(
        body.contains("authbridge_handshakes_total{result=\"refused\",reason=\"expired\"} 1\n"),
        "{body}"
    );
    assert!(body.contains("authbridge_connected_sockets 1\n"), "{body}");
    client.disconnect().await.expect("disconnect");
}

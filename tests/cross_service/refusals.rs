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

/// What the official client does when its CONNECT is refused while it is still
/// probing the WebSocket (the page of `browser.test.mjs`: its token refused
/// within moments of the Engine.IO open): no socket left, so it closes the
/// Engine.IO session — the probe WebSocket first, then a close packet over
/// polling. The session must outlive the failed probe, as with Node's
/// engine.io, for the close and any poll in flight to be answered 200 and not
/// 400 (a "Failed to load resource" error in the browser's console). Fails with
/// upstream engineioxide, which closed the session when a probe failed
/// (vendor/README.md, change 8).
#[tokio::test]
async fn a_refused_client_that_closes_while_probing_the_websocket_gets_no_error() {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;

    let system = spawn_system().await;
    let http = reqwest::Client::new();
    let polling = format!("{}/socket.io/?EIO=4&transport=polling", system.socket_url);
    let open = http
        .get(&polling)
        .send()
        .await
        .expect("handshake")
        .text()
        .await
        .expect("open packet");
    let open: serde_json::Value =
        serde_json::from_str(open.strip_prefix('0').expect("an open packet")).expect("JSON");
    let sid = open["sid"].as_str().expect("a sid").to_owned();
    let session = format!("{polling}&sid={sid}");

    // The probe opens, then the CONNECT goes over polling and is refused.
    let probe_url = format!(
        "{}/socket.io/?EIO=4&transport=websocket&sid={sid}",
        system.socket_url.replacen("http://", "ws://", 1)
    );
    let (mut probe, _) = tokio_tungstenite::connect_async(probe_url)
        .await
        .expect("the probe WebSocket opens");
    let connect = format!("40{}", json!({"token": forged_token("gonzalo")}));
    let posted = http
        .post(&session)
        .body(connect)
        .send()
        .await
        .expect("POST");
    assert_eq!(posted.status(), 200);
    // The client closes: the probe first (it waits for the end of the stream:
    // the server has read the close frame where it waited for the probe), then
    // the session over polling.
    probe.send(Message::Close(None)).await.expect("close frame");
    while let Some(Ok(_)) = probe.next().await {}
    let poll = http.get(&session).send().await.expect("GET");
    assert_eq!(poll.status(), 200, "a poll after the probe closed");
    assert!(
        poll.text()
            .await
            .expect("body")
            .contains(r#"44{"message":"not valid token"}"#),
        "the refusal, over polling"
    );
    let close = http.post(&session).body("1").send().await.expect("POST");
    assert_eq!(close.status(), 200, "the close packet");
    assert_eq!(close.text().await.expect("body"), "ok");
    // Now the session is gone.
    let after = http.get(&session).send().await.expect("GET");
    assert_eq!(after.status(), 400);
}

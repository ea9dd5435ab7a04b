use std::time::Duration;

use serde_json::json;

use crate::helpers::*;
use crate::socketio::SioClient;

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn a_message_reaches_every_socket_with_from_taken_from_the_token() {
    let system = spawn_system().await;
    let gonzalo = SioClient::connect_with_auth(&system.socket_url, &system.demo_token().await)
        .await
        .expect("gonzalo connects");
    let alice_session = system.log_in(SECOND_USER, SECOND_PASSWORD).await;
    let alice =
        SioClient::connect_with_query(&system.socket_url, &system.token(&alice_session).await)
            .await
            .expect("alice connects");

    gonzalo
        .emit("message", json!("hello alice"))
        .await
        .expect("emit");

    let expected = json!({"from": "gonzalo", "text": "hello alice"});
    assert_eq!(
        alice
            .next_event("message", WAIT)
            .await
            .expect("alice receives"),
        expected
    );
    assert_eq!(
        gonzalo
            .next_event("message", WAIT)
            .await
            .expect("the sender receives"),
        expected
    );
}

#[tokio::test]
async fn a_client_cannot_choose_its_from() {
    let system = spawn_system().await;
    let alice_session = system.log_in(SECOND_USER, SECOND_PASSWORD).await;
    let alice =
        SioClient::connect_with_auth(&system.socket_url, &system.token(&alice_session).await)
            .await
            .expect("connects");

    alice
        .emit("message", json!({"from": "gonzalo", "text": "spoof"}))
        .await
        .expect("emit");
    alice
        .expect_no_event("message", QUIET)
        .await
        .expect("an object is ignored");
    alice
        .emit("message", json!("really alice"))
        .await
        .expect("emit");

    let received = alice.next_event("message", WAIT).await.expect("receives");
    assert_eq!(received, json!({"from": "alice", "text": "really alice"}));
}

#[tokio::test]
async fn the_empty_string_and_exactly_4096_bytes_are_relayed_and_4097_are_not() {
    let system = spawn_system().await;
    let client = SioClient::connect_with_auth(&system.socket_url, &system.demo_token().await)
        .await
        .expect("connects");
    let at_limit = "é".repeat(2048);
    let over_limit = format!("{at_limit}x");

    client.emit("message", json!("")).await.expect("emit");
    assert_eq!(
        client.next_event("message", WAIT).await.expect("empty")["text"],
        ""
    );
    client
        .emit("message", json!(over_limit))
        .await
        .expect("emit");
    client
        .expect_no_event("message", QUIET)
        .await
        .expect("4097 bytes are ignored");
    client.emit("message", json!(at_limit)).await.expect("emit");
    assert_eq!(
        client
            .next_event("message", WAIT)
            .await
            .expect("4096 bytes")["text"],
        json!(at_limit)
    );
}

#[tokio::test]
async fn payloads_that_are_not_strings_are_ignored() {
    let system = spawn_system().await;
    let client = SioClient::connect_with_auth(&system.socket_url, &system.demo_token().await)
        .await
        .expect("connects");

    for payload in [
        json!(42),
        json!(null),
        json!(["text"]),
        json!({"text": "x"}),
        json!(true),
    ] {
        client.emit("message", payload.clone()).await.expect("emit");
        client
            .expect_no_event("message", QUIET)
            .await
            .unwrap_or_else(|e| panic!("{payload}: {e}"));
    }
}

#[tokio::test]
async fn a_burst_of_messages_reaches_another_socket_complete_and_in_order() {
    const BURST: usize = 500;
    let system = spawn_system().await;
    let token = system.demo_token().await;
    let sender = SioClient::connect_with_auth(&system.socket_url, &token)
        .await
        .expect("connects");
    let reader = SioClient::connect_with_auth(&system.socket_url, &token)
        .await
        .expect("connects");

    for index in 0..BURST {
        sender
            .emit("message", json!(format!("#{index}")))
            .await
            .expect("emit");
    }

    for index in 0..BURST {
        let message = reader
            .next_event("message", WAIT)
            .await
            .unwrap_or_else(|e| panic!("message {index}: {e}"));
        assert_eq!(message["text"], format!("#{index}"), "in the order sent");
    }
}

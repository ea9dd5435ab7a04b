//! `GET /api/presence` and `GET /api/presence/user:NAME` as sockets come and
//! go: on one node, across two (each socket counted once, each user once),
//! and when a node dies (killed: within 10 s) or stops (at once).

use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{Value, json};

use crate::api::{ApiNodes, Mode, PRESENCE_WITHIN, start_node};
use crate::api_process::{SocketServerProcess, node_env};
use crate::helpers::{forged_token, settings_with_api, token_of_session, wait_ready};
use crate::redis::RedisServer;
use crate::socketio::SioClient;

fn summary(users: u64, sockets: u64) -> Value {
    json!({"users": users, "sockets": sockets})
}

fn user(name: &str, sockets: u64) -> Value {
    json!({"user": name, "online": sockets > 0, "sockets": sockets})
}

/// `GET /api/presence/user:NAME`, the name percent-encoded.
fn user_path(name: &str) -> String {
    let mut path = "/api/presence/user:".to_owned();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            path.push(char::from(byte));
        } else {
            path.push_str(&format!("%{byte:02X}"));
        }
    }
    path
}

async fn connect(url: &str, name: &str, sid: &str) -> SioClient {
    SioClient::connect_with_auth(
        url,
        &token_of_session(name, &format!("sid-{sid}-0123456789abcdef")),
    )
    .await
    .unwrap_or_else(|error| panic!("{name} connects to {url}: {error:#}"))
}

impl ApiNodes {
    /// Polls every node until the summary and each user's answer are as expected.
    async fn presence_is(&self, expected: Value, users: &[(&str, u64)]) {
        for node in 0..2 {
            self.presence_becomes(node, "/api/presence", &expected, PRESENCE_WITHIN)
                .await;
            for (name, sockets) in users {
                self.presence_becomes(
                    node,
                    &user_path(name),
                    &user(name, *sockets),
                    PRESENCE_WITHIN,
                )
                .await;
            }
        }
    }
}

async fn presence_follows_sockets(mode: Mode) {
    let nodes = ApiNodes::start(mode).await;
    let [a, b] = &nodes.urls;
    let maria = "ana maría";
    nodes
        .presence_is(summary(0, 0), &[("ann", 0), (maria, 0)])
        .await;

    // Arrive: ann on both nodes (three sockets, two sessions), bob, ana maría.
    let ann_a = connect(a, "ann", "ann-1").await;
    let ann_b = connect(b, "ann", "ann-2").await;
    let ann_b2 = connect(b, "ann", "ann-2").await;
    let bob = connect(a, "bob", "bob").await;
    let ana = connect(b, maria, "maria").await;
    let refused =
        SioClient::refusal_with_auth(b, Some(json!({"token": forged_token("ann")}))).await;
    assert_eq!(refused.expect("refused"), "not valid token");
    nodes
        .presence_is(
            summary(3, 5),
            &[("ann", 3), ("bob", 1), (maria, 1), ("nobody", 0)],
        )
        .await;

    // Leave, one by one, by the client or by the server.
    ann_b.disconnect().await.expect("disconnects");
    nodes.presence_is(summary(3, 4), &[("ann", 2)]).await;
    ann_a.disconnect().await.expect("disconnects");
    nodes.presence_is(summary(3, 3), &[("ann", 1)]).await;
    let ended = nodes
        .post(1, "/api/disconnect")
        .json(&json!({"to": "user:bob"}))
        .send()
        .await;
    assert_eq!(ended.expect("disconnect").status(), 200);
    bob.disconnected(Duration::from_secs(5))
        .await
        .expect("bob is disconnected");
    nodes.presence_is(summary(2, 2), &[("bob", 0)]).await;
    let revoke = json!({"sid": "sid-maria-0123456789abcdef", "until": claims::unix_now() + 60});
    let revoked = nodes
        .post(0, "/api/sessions/revoke")
        .json(&revoke)
        .send()
        .await;
    assert_eq!(revoked.expect("revoke").status(), 200);
    ana.disconnected(Duration::from_secs(5))
        .await
        .expect("ana maría is disconnected");
    nodes.presence_is(summary(1, 1), &[(maria, 0)]).await;
    ann_b2.disconnect().await.expect("disconnects");
    nodes
        .presence_is(summary(0, 0), &[("ann", 0), ("bob", 0), (maria, 0)])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_on_one_node_follows_sockets_as_they_come_and_go() {
    presence_follows_sockets(Mode::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_across_two_nodes_counts_each_socket_and_each_user_once() {
    presence_follows_sockets(Mode::Scaled).await;
}

/// A node in this process (it survives) and a `socket-server` process on one
/// Redis; sockets on both. Returns the Redis, both URLs, the process and the
/// sockets (those on the process last).
async fn survivor_and_process() -> (RedisServer, ApiNodes, SocketServerProcess, Vec<SioClient>) {
    let redis = RedisServer::start().await;
    let mut settings = settings_with_api();
    settings.redis.url = Some(SecretString::from(redis.url()));
    let survivor = start_node(&settings).await;
    let process = SocketServerProcess::start(&node_env(Some(&redis.url()), "info")).await;
    for url in [&survivor, &process.url] {
        wait_ready(url, Duration::from_secs(20)).await;
    }
    let nodes = ApiNodes::at([survivor.clone(), process.url.clone()]);
    let sockets = vec![
        connect(&survivor, "ann", "ann-1").await,
        connect(&process.url, "ann", "ann-2").await,
        connect(&process.url, "ann", "ann-2").await,
        connect(&process.url, "cat", "cat").await,
    ];
    nodes
        .presence_is(summary(2, 4), &[("ann", 3), ("cat", 1)])
        .await;
    (redis, nodes, process, sockets)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_s_sockets_leave_the_cluster_s_presence_within_10_s() {
    let (_redis, nodes, process, _sockets) = survivor_and_process().await;

    process.signal("KILL");
    let killed = Instant::now();

    let within = Duration::from_secs(10);
    nodes
        .presence_becomes(0, "/api/presence", &summary(1, 1), within)
        .await;
    nodes
        .presence_becomes(0, &user_path("ann"), &user("ann", 1), within)
        .await;
    nodes
        .presence_becomes(0, &user_path("cat"), &user("cat", 0), within)
        .await;
    let corrected = killed.elapsed();
    assert!(corrected < within, "corrected after {corrected:?}");
    // Publications count the living: the dead node is not waited for.
    let sent = Instant::now();
    let answer = nodes
        .publish(0, &json!({"to": "user:ann", "event": "notice", "data": 1}))
        .await;
    assert_eq!(answer["sockets"], 1);
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "answered in {:?}",
        sent.elapsed()
    );
    eprintln!("presence corrected {corrected:?} after a node was killed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_s_sockets_leave_the_cluster_s_presence_at_once() {
    let (_redis, nodes, mut process, _sockets) = survivor_and_process().await;

    process.signal("TERM");
    let stopped = Instant::now();

    let within = Duration::from_secs(2);
    nodes
        .presence_becomes(0, "/api/presence", &summary(1, 1), within)
        .await;
    nodes
        .presence_becomes(0, &user_path("cat"), &user("cat", 0), within)
        .await;
    let corrected = stopped.elapsed();
    assert!(
        process.exited(Duration::from_secs(10)).await.success(),
        "a clean stop"
    );
    eprintln!("presence corrected {corrected:?} after a node was stopped");
}

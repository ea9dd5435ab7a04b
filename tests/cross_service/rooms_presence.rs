//! `GET /api/presence/room:NAME` for a room of more than 1,000 users: the
//! first 1,000 names in order and `"truncated": true`, the sockets all
//! counted; exactly 1,000 users is not truncated. On one node, and on two
//! nodes sharing a Redis (the members spread over both: each node's list is
//! cut, then merged and cut again).

use std::time::Instant;

use futures_util::StreamExt as _;
use serde_json::{Value, json};

use crate::api::{ApiNodes, Mode};
use crate::helpers::{claims_now, mint};
use crate::rooms_wire::Wire;

/// A token of `username` allowing `rooms`.
pub(crate) fn token_with_rooms(username: &str, rooms: &[&str]) -> String {
    let mut claims = claims_now(username);
    claims["sid"] = json!(format!("sid-{username}-0123456789abcdef"));
    claims["jti"] = json!(format!("jti-{username}-{}", claims::unix_now()));
    claims["rooms"] = json!(rooms);
    mint(&claims)
}

/// `count` sockets, one per user `{prefix}{i:04}`, alternately on either
/// node, each joined to `room`.
async fn crowd(nodes: &ApiNodes, prefix: &str, count: usize, room: &str) -> Vec<Wire> {
    futures_util::stream::iter(0..count)
        .map(|i| async move {
            let user = format!("{prefix}{i:04}");
            let wire = Wire::connect(&nodes.urls[i % 2], &token_with_rooms(&user, &[room])).await;
            let ack = wire.call("join", &json!({ "room": room })).await;
            assert_eq!(ack, json!({"ok": true}), "{user} joins");
            wire
        })
        .buffered(64)
        .collect()
        .await
}

fn names(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i:04}")).collect()
}

async fn a_room_of_more_than_1000_users_is_named_in_part(mode: Mode) {
    // 1,001 sockets, both ends in this process: 2,002 descriptors and more.
    loadgen::process::raise_open_files_limit().expect("the open-files limit");
    let nodes = ApiNodes::start(mode).await;
    let room = "crowd:all-hands";
    let path = format!("/api/presence/room:{room}");
    let started = Instant::now();
    let mut members = crowd(&nodes, "u", 1001, room).await;
    eprintln!(
        "{mode:?}: 1,001 sockets connected and joined in {:?}",
        started.elapsed()
    );

    let truncated = json!({
        "room": room,
        "users": names("u", 0..1000),
        "sockets": 1001,
        "truncated": true,
    });
    for node in 0..2 {
        let started = Instant::now();
        let answer = nodes.presence(node, &path).await;
        let took = started.elapsed();
        assert_eq!(answer, truncated, "{mode:?} via node {node}");
        eprintln!("{mode:?}: room presence of 1,001 users via node {node} in {took:?}");
    }
    // A second socket of a listed user: one more socket, the same names.
    let again = Wire::connect(&nodes.urls[1], &token_with_rooms("u0007", &[room])).await;
    assert_eq!(
        again.call("join", &json!({ "room": room })).await,
        json!({"ok": true})
    );
    let mut more = truncated.clone();
    more["sockets"] = json!(1002);
    assert_eq!(nodes.presence(0, &path).await, more);
    assert_eq!(
        again.call("leave", &json!({ "room": room })).await,
        json!({"ok": true})
    );

    // u0000 leaves: 1,000 users, every one named, no `truncated` at all.
    let first = members.remove(0);
    assert_eq!(
        first.call("leave", &json!({ "room": room })).await,
        json!({"ok": true})
    );
    let all: Value = json!({"room": room, "users": names("u", 1..1001), "sockets": 1000});
    for node in 0..2 {
        assert_eq!(
            nodes.presence(node, &path).await,
            all,
            "{mode:?} via {node}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_of_more_than_1000_users_is_named_in_part_on_one_node() {
    a_room_of_more_than_1000_users_is_named_in_part(Mode::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_of_more_than_1000_users_is_named_in_part_across_two_nodes() {
    a_room_of_more_than_1000_users_is_named_in_part(Mode::Scaled).await;
}

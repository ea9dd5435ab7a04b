//! Presence webhooks in the scaled mode: two socket-server nodes on one
//! Redis (in this process, or a real `socket-server` process beside one, to
//! SIGKILL or SIGTERM it), a user's sockets spread over both. Each
//! transition is sent once, by one node; a node that dies or stops with
//! events pending loses none of them.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::api::ApiNodes;
use crate::redis::RedisServer;
use crate::webhooks::{
    Cluster, GRACE, Node, OFFLINE, ONLINE, Receiver, barrier, connect, describe, metric,
    metric_becomes, now_ms, queue_while_held, scaled_settings, start_process, wait_sender,
};

const SOON: Duration = Duration::from_secs(10);
/// Long enough for any offline event to be made: the grace time, the watch
/// that runs each second, and a batch's way to Redis.
const PAST_THE_GRACE: Duration = Duration::from_millis(GRACE.as_millis() as u64 + 1500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaled_one_event_per_transition_whatever_node_the_sockets_are_on() {
    let receiver = Receiver::start().await;
    let cluster = Cluster::start(&receiver).await;
    let (a, b) = (cluster.url(0), cluster.url(1));

    // ann on node A: user.online; on node B too: nothing more.
    let ann_a = connect(a, "ann", 1).await;
    receiver.wait_user("ann", &[ONLINE], SOON).await;
    let ann_b = connect(b, "ann", 2).await;
    let _b1 = barrier(&receiver, b, "barrier-1").await;
    assert_eq!(receiver.delivered_of("ann"), [ONLINE]);

    // Sockets come and go on both nodes while one stays: nothing.
    ann_a.disconnect().await.expect("disconnects");
    let ann_a = connect(a, "ann", 3).await;
    ann_b.disconnect().await.expect("disconnects");
    // A socket moving from node A to node B within the grace time: nothing,
    // even once the grace time is over.
    ann_a.disconnect().await.expect("disconnects");
    let gone = Instant::now();
    let ann_b = connect(b, "ann", 4).await;
    let away = gone.elapsed();
    assert!(away < GRACE / 2, "the move took {away:?}");
    tokio::time::sleep(PAST_THE_GRACE).await;
    let _b2 = barrier(&receiver, a, "barrier-2").await;
    let _b3 = barrier(&receiver, b, "barrier-3").await;
    assert_eq!(receiver.delivered_of("ann"), [ONLINE]);

    // The last socket closes: one user.offline, not one per node.
    ann_b.disconnect().await.expect("disconnects");
    receiver.wait_user("ann", &[ONLINE, OFFLINE], SOON).await;

    // Ten users, two sockets each, one on each node, arriving and leaving
    // interleaved: one user.online and one user.offline each.
    let users: Vec<String> = (0..10).map(|i| format!("spread-{i}")).collect();
    let mut sockets = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let (first, second) = if i % 2 == 0 { (a, b) } else { (b, a) };
        sockets.push(connect(first, user, 1).await);
        sockets.push(connect(second, user, 2).await);
    }
    for user in &users {
        receiver.wait_user(user, &[ONLINE], SOON).await;
    }
    // Every user's first socket, then every second one.
    let (firsts, seconds): (Vec<_>, Vec<_>) = sockets
        .into_iter()
        .enumerate()
        .partition(|(i, _)| i % 2 == 0);
    for (_, socket) in firsts.into_iter().chain(seconds) {
        socket.disconnect().await.expect("disconnects");
    }
    for user in &users {
        receiver.wait_user(user, &[ONLINE, OFFLINE], SOON).await;
    }
    tokio::time::sleep(PAST_THE_GRACE).await;
    let _b4 = barrier(&receiver, a, "barrier-4").await;
    let _b5 = barrier(&receiver, b, "barrier-5").await;

    let hooks = receiver.hooks();
    let mut expected: std::collections::BTreeMap<String, Vec<String>> = users
        .iter()
        .map(|user| (user.clone(), vec![ONLINE.to_owned(), OFFLINE.to_owned()]))
        .collect();
    expected.insert("ann".into(), vec![ONLINE.into(), OFFLINE.into()]);
    for barrier in [
        "barrier-1",
        "barrier-2",
        "barrier-3",
        "barrier-4",
        "barrier-5",
    ] {
        expected.insert(barrier.into(), vec![ONLINE.into()]);
    }
    assert_eq!(receiver.delivered(), expected, "{}", describe(&hooks));
    assert!(hooks.iter().all(|hook| hook.answer == Some(200)));
    assert!(receiver.duplicates().is_empty(), "{}", describe(&hooks));
    receiver.assert_clean();
    // One sender: one node sent them all, the other none.
    let sent = [
        metric(a, "authbridge_webhooks_sent_total").await,
        metric(b, "authbridge_webhooks_sent_total").await,
    ];
    assert!(
        sent == [hooks.len() as u64, 0] || sent == [0, hooks.len() as u64],
        "sent by node: {sent:?}, {} events",
        hooks.len()
    );
    for url in [a, b] {
        metric_becomes(
            url,
            "authbridge_webhooks_pending",
            0,
            Duration::from_secs(3),
        )
        .await;
    }
}

/// A `socket-server` process that holds the sender's lease and a node in
/// this process on one Redis.
async fn sender_process_and_survivor(
    receiver: &Receiver,
) -> (RedisServer, crate::api_process::SocketServerProcess, Node) {
    let redis = RedisServer::start().await;
    let process = start_process(receiver, Some(&redis.url())).await;
    wait_sender(&process).await;
    let survivor = Node::start(&scaled_settings(receiver, &redis)).await;
    (redis, process, survivor)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaled_the_sender_killed_mid_send_loses_nothing_and_its_users_go_offline() {
    let receiver = Receiver::start().await;
    let (_redis, process, survivor) = sender_process_and_survivor(&receiver).await;
    let (p, s) = (process.url.as_str(), survivor.url.as_str());

    // Delivered before: k1 on the process, s1 on the survivor, both on both.
    let _k1 = connect(p, "k1", 1).await;
    let s1 = connect(s, "s1", 1).await;
    let _both_p = connect(p, "both", 1).await;
    let both_s = connect(s, "both", 2).await;
    for user in ["k1", "s1", "both"] {
        receiver.wait_user(user, &[ONLINE], SOON).await;
    }

    // The receiver stalls: the sender's try hangs, events pile up in Redis.
    let _queued = queue_while_held(&receiver, p, &["k2"], s, 1).await;
    let _s2 = connect(s, "s2", 1).await;
    s1.disconnect().await.expect("disconnects");
    metric_becomes(s, "authbridge_webhooks_pending", 3, SOON).await;
    let in_flight = receiver
        .hooks()
        .into_iter()
        .find(|hook| hook.answer.is_none())
        .expect("the try in flight");

    // SIGKILL, with that try in flight.
    process.signal("KILL");
    let killed = Instant::now();
    let killed_ms = now_ms();
    receiver.release();

    // The survivor takes the lease over once it expires (10 s at most) and
    // sends everything, the event in flight again with its id; the killed
    // node's users go offline (its share taken back within ~6 s, then the
    // grace time).
    let expected = [
        ("k1", &[ONLINE, OFFLINE][..]),
        ("k2", &[ONLINE, OFFLINE]),
        ("s1", &[ONLINE, OFFLINE]),
        ("s2", &[ONLINE]),
        ("both", &[ONLINE]),
    ];
    for (user, kinds) in expected {
        receiver
            .wait_user(user, kinds, Duration::from_secs(30))
            .await;
    }
    let hooks = receiver.hooks();
    let after_kill: Vec<_> = hooks.iter().filter(|hook| hook.arrived > killed).collect();
    let took_over = after_kill[0].arrived.duration_since(killed);
    assert!(
        took_over < Duration::from_millis(11_500),
        "the survivor sent {took_over:?} after the kill:\n{}",
        describe(&hooks)
    );
    assert_eq!(
        after_kill[0].id,
        in_flight.id,
        "the event in flight first, again, with its id:\n{}",
        describe(&hooks)
    );
    for user in ["k1", "k2"] {
        let offline = hooks
            .iter()
            .find(|hook| hook.user == user && hook.kind == OFFLINE)
            .expect("user.offline");
        let after = offline.at_ms - killed_ms;
        assert!(
            (0..=7000).contains(&after),
            "{user} went offline {after} ms after the kill"
        );
    }
    // At least once: the event in flight may have been taken twice, nothing
    // else.
    assert!(
        receiver
            .duplicates()
            .iter()
            .all(|duplicate| *duplicate == in_flight.id),
        "{}",
        describe(&hooks)
    );

    // `both` still has a socket on the survivor: its close is user.offline.
    both_s.disconnect().await.expect("disconnects");
    receiver.wait_user("both", &[ONLINE, OFFLINE], SOON).await;
    receiver.assert_clean();
    metric_becomes(s, "authbridge_webhooks_pending", 0, Duration::from_secs(3)).await;
    eprintln!("webhooks: the survivor took over {took_over:?} after the sender was killed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaled_sigterm_leaves_what_it_could_not_send_in_redis_for_the_other_node() {
    let receiver = Receiver::start().await;
    let (_redis, mut process, survivor) = sender_process_and_survivor(&receiver).await;
    let (p, s) = (process.url.as_str(), survivor.url.as_str());

    let _t1 = connect(p, "t1", 1).await;
    let _u1 = connect(s, "u1", 1).await;
    for user in ["t1", "u1"] {
        receiver.wait_user(user, &[ONLINE], SOON).await;
    }
    // Held: the process's try hangs, events wait in Redis.
    let _queued = queue_while_held(&receiver, p, &["t2"], s, 1).await;
    let _u2 = connect(s, "u2", 1).await;
    metric_becomes(s, "authbridge_webhooks_pending", 2, SOON).await;

    // SIGTERM: its sockets leave the cluster's presence at once; it drains
    // 5 s in vain, then leaves.
    process.signal("TERM");
    let stopped = Instant::now();
    let stopped_ms = now_ms();
    let api = ApiNodes::at([s.to_owned(), s.to_owned()]);
    let gone = json!({"user": "t1", "online": false, "sockets": 0});
    api.presence_becomes(0, "/api/presence/user:t1", &gone, Duration::from_secs(2))
        .await;
    let status = process.exited(Duration::from_secs(15)).await;
    let exited = Instant::now();
    let took = exited.duration_since(stopped);
    assert!(status.success(), "a clean stop:\n{}", process.output());
    assert!(
        took >= Duration::from_millis(4800) && took < Duration::from_secs(8),
        "stopped in {took:?}, after the 5 s drain"
    );
    receiver.release();

    // The survivor sends the rest at once (the lease was given up, not left
    // to expire), and the stopped node's users go offline at once too.
    let expected = [
        ("t1", &[ONLINE, OFFLINE][..]),
        ("t2", &[ONLINE, OFFLINE]),
        ("u1", &[ONLINE]),
        ("u2", &[ONLINE]),
    ];
    for (user, kinds) in expected {
        receiver.wait_user(user, kinds, SOON).await;
    }
    let hooks = receiver.hooks();
    let first_after = hooks
        .iter()
        .find(|hook| hook.arrived > exited)
        .expect("a request after the stop");
    let took_over = first_after.arrived.duration_since(exited);
    assert!(
        took_over < Duration::from_secs(2),
        "the survivor sent {took_over:?} after the stop:\n{}",
        describe(&hooks)
    );
    for user in ["t1", "t2"] {
        let offline = hooks
            .iter()
            .find(|hook| hook.user == user && hook.kind == OFFLINE)
            .expect("user.offline");
        let after = offline.at_ms - stopped_ms;
        assert!(
            (0..=1500).contains(&after),
            "{user} went offline {after} ms after the SIGTERM"
        );
    }
    let held = hooks
        .iter()
        .find(|hook| hook.user == "t2" && hook.arrived < stopped)
        .expect("t2's try before the stop");
    assert!(
        receiver
            .duplicates()
            .iter()
            .all(|duplicate| *duplicate == held.id),
        "{}",
        describe(&hooks)
    );
    receiver.assert_clean();
    metric_becomes(s, "authbridge_webhooks_pending", 0, Duration::from_secs(3)).await;
    eprintln!(
        "webhooks: stopped in {took:?}; the survivor sent {took_over:?} after the process exited"
    );
}

//! The recovery history's bounds, in both modes: at most
//! `socket.recovery_max_events` per target (scaled: each stream's XLEN; both:
//! the `authbridge_recovery_history_events` gauge, exact in the embedded mode,
//! counted every 10 s in the scaled mode), and with `socket.recovery_secs = 0`
//! no history at all and the v1 events even for a socket that opts in.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api::{ApiNodes, Mode};
use crate::helpers::token_of_session;
use crate::recovery::{next_event, recording_client, recovery_settings};
use crate::redis::RedisServer;

/// Publications to these targets, this many times each.
const FLOOD: [(&str, usize); 4] = [
    ("user:flooded", 20),
    ("room:flooded", 12),
    ("everyone", 3),
    ("session:sid-flooded-0123456789", 5),
];
const MAX: u32 = 5;
/// What the history holds after the flood: each target at the bound at most.
const KEPT: u64 = 5 + 5 + 3 + 5;

/// `redis-cli` on `redis`: the answer to one command.
async fn redis_cli(redis: &RedisServer, args: &[&str]) -> String {
    let url = redis.url();
    let port = url
        .rsplit(':')
        .next()
        .and_then(|tail| tail.split('/').next())
        .expect("a port");
    let output = tokio::process::Command::new("redis-cli")
        .args(["-p", port])
        .args(args)
        .output()
        .await
        .expect("redis-cli runs (Debian package redis-tools, with redis-server)");
    assert!(output.status.success(), "redis-cli {args:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The value of `authbridge_recovery_history_events` on `url`, if it is there.
async fn history_gauge(nodes: &ApiNodes, node: usize) -> Option<u64> {
    let text = nodes
        .http
        .get(format!("{}/metrics", nodes.urls[node]))
        .send()
        .await
        .expect("/metrics")
        .text()
        .await
        .expect("its text");
    text.lines()
        .find_map(|line| line.strip_prefix("authbridge_recovery_history_events "))
        .map(|value| value.trim().parse().expect("a number"))
}

async fn flood(nodes: &ApiNodes) {
    for (target, times) in FLOOD {
        for i in 0..times {
            nodes
                .publish(i % 2, &json!({"to": target, "event": "notice", "data": i}))
                .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_keeps_at_most_recovery_max_events_per_target_in_both_modes() {
    for mode in [Mode::Embedded, Mode::Scaled] {
        let settings = recovery_settings(120, MAX);
        let nodes = match mode {
            Mode::Embedded => ApiNodes::embedded_with(settings).await,
            Mode::Scaled => ApiNodes::scaled_with(settings).await,
        };
        assert_eq!(history_gauge(&nodes, 0).await, Some(0), "{mode:?}: empty");
        flood(&nodes).await;
        if let Some(redis) = &nodes.redis {
            for (target, times) in FLOOD {
                let kept =
                    redis_cli(redis, &["XLEN", &format!("authbridge:history:{target}")]).await;
                assert_eq!(kept, times.min(MAX as usize).to_string(), "{target}");
            }
        }
        // Scaled: the gauge is counted every 10 s.
        let started = Instant::now();
        for node in 0..2 {
            loop {
                let gauge = history_gauge(&nodes, node).await;
                if gauge == Some(KEPT) {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(15),
                    "{mode:?}: node {node}'s gauge is {gauge:?}, not {KEPT}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_recovery_off_nothing_is_kept_and_a_socket_that_opts_in_gets_v1_events() {
    for mode in [Mode::Embedded, Mode::Scaled] {
        for secs in [0, 120] {
            let settings = recovery_settings(secs, MAX);
            let nodes = match mode {
                Mode::Embedded => ApiNodes::embedded_with(settings).await,
                Mode::Scaled => ApiNodes::scaled_with(settings).await,
            };
            let token = token_of_session("optin", "sid-optin-0123456789abcdef");
            let (client, mut events, _) =
                recording_client(&nodes.urls[0], json!({"token": token, "recovery": true})).await;
            nodes
                .publish(
                    1,
                    &json!({"to": "user:optin", "event": "notice", "data": "x"}),
                )
                .await;
            let (event, args) = next_event(&mut events).await;
            assert_eq!(event, "notice");
            if secs == 0 {
                assert_eq!(args, [json!("x")], "{mode:?}: off, no offset");
                assert_eq!(history_gauge(&nodes, 0).await, None, "{mode:?}: no gauge");
                if let Some(redis) = &nodes.redis {
                    let keys = redis_cli(redis, &["KEYS", "authbridge:history*"]).await;
                    assert_eq!(keys, "", "{mode:?}: no history in Redis");
                }
            } else {
                let [data, Value::String(offset)] = args.as_slice() else {
                    panic!("{mode:?}: data and offset: {args:?}");
                };
                assert_eq!(data, &json!("x"));
                assert!(offset.parse::<u64>().is_ok(), "{offset}");
            }
            client.disconnect().await.expect("disconnects");
        }
    }
}

//! The join flood: one socket emitting 1,000 `join`s in about a second —
//! names its token allows, far more than `socket.max_rooms_per_socket`, and
//! names it does not — is answered join by join (`too many rooms` past the
//! cap, `forbidden` for the others), never holds more rooms than the cap, and
//! meanwhile other sockets' messages keep flowing with low latency. In both
//! modes, in process; and the `socket-server` binary's memory stays put
//! through repeated floods.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::time::{Instant, timeout};

use crate::api::{Answer, ApiNodes, Mode};
use crate::api_process::socket_server_binary;
use crate::helpers::{API_KEY, SECRET, settings_with_api};
use crate::rooms_presence::token_with_rooms;
use crate::rooms_wire::{WAIT, Wire};

/// The cap the suite sets (the default, set explicitly).
const CAP: usize = 100;
const JOINS: usize = 1000;

/// The `i`th name of a flood: three in four allowed by `flood:*`, the
/// fourth refused, cycling through the ways a name is refused.
fn flood_name(round: usize, i: usize) -> (Value, bool) {
    if i % 4 != 3 {
        return (json!({ "room": format!("flood:{round}:{i}") }), true);
    }
    let refused = match (i / 4) % 6 {
        0 => json!({ "room": format!("other:{i}") }),
        1 => json!({ "room": format!("user:flooder-{i}") }),
        2 => json!({ "room": format!("flood:{}", "x".repeat(100)) }),
        3 => json!({ "room": "" }),
        4 => json!({ "room": i }),
        _ => json!(format!("flood:{round}:{i}")),
    };
    (refused, false)
}

/// What a flood's acks came to.
#[derive(Debug, Default)]
struct Tally {
    /// How long emitting the joins took.
    emitted_in: Duration,
    joined: Vec<String>,
    too_many: usize,
    forbidden: usize,
}

/// Emits the `JOINS` joins of round `round` from `wire` (ten every `pace`,
/// or all at once), and collects every ack (each must come).
async fn flood(wire: &Wire, round: usize, pace: Option<Duration>) -> Tally {
    let started = Instant::now();
    let mut pending = Vec::with_capacity(JOINS);
    let mut tick = pace.map(tokio::time::interval);
    for i in 0..JOINS {
        if let Some(tick) = tick.as_mut().filter(|_| i % 10 == 0) {
            tick.tick().await;
        }
        let (payload, allowed) = flood_name(round, i);
        pending.push((
            payload.clone(),
            allowed,
            wire.emit_with_ack("join", &payload),
        ));
    }
    let mut tally = Tally {
        emitted_in: started.elapsed(),
        ..Tally::default()
    };
    for (payload, allowed, ack) in pending {
        let ack = timeout(WAIT, ack)
            .await
            .unwrap_or_else(|_| panic!("no ack for join {payload} within {WAIT:?}"))
            .expect("the ack");
        match (allowed, ack["error"].as_str()) {
            (true, None) if ack == json!({"ok": true}) => tally
                .joined
                .push(payload["room"].as_str().expect("a name").to_owned()),
            (true, Some("too many rooms")) if ack["ok"] == false => tally.too_many += 1,
            (false, Some("forbidden")) if ack["ok"] == false => tally.forbidden += 1,
            _ => panic!("join {payload} (allowed: {allowed}) answered {ack}"),
        }
    }
    tally
}

/// `authbridge_joins_refused_total` on the node at `url`.
async fn joins_refused(url: &str) -> u64 {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|line| line.strip_prefix("authbridge_joins_refused_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no authbridge_joins_refused_total in:\n{text}"))
}

/// The p-th percentile (0–100) of `samples`, sorted in place.
fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort();
    samples[(samples.len() * p / 100).min(samples.len() - 1)]
}

async fn a_join_flood_is_answered_capped_and_slows_no_one(mode: Mode) {
    let mut settings = settings_with_api();
    settings.socket.max_rooms_per_socket = u32::try_from(CAP).expect("small");
    let nodes = match mode {
        Mode::Embedded => ApiNodes::embedded_with(settings).await,
        Mode::Scaled => ApiNodes::scaled_with(settings).await,
    };
    let [a, b] = &nodes.urls;
    let flooder = Wire::connect(a, &token_with_rooms("flooder", &["flood:*"])).await;
    let sender = Wire::connect(a, &token_with_rooms("sender", &[])).await;
    let receiver = Wire::connect(b, &token_with_rooms("receiver", &[])).await;
    let refused_before = joins_refused(a).await;

    // Meanwhile: a message every 10 ms from A for 1.2 s, timed on arrival at B.
    let probes = 120;
    let probing = async {
        let mut sent = HashMap::new();
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        for i in 0..probes {
            tick.tick().await;
            sent.insert(format!("probe-{i}"), Instant::now());
            sender.emit("message", &json!(format!("probe-{i}")));
        }
        sent
    };
    let receiving = async {
        let mut arrived = HashMap::new();
        while arrived.len() < probes {
            let Some(event) = receiver.next("message", WAIT).await else {
                panic!("{} of {probes} probes arrived", arrived.len());
            };
            let text = event.args[0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if text.starts_with("probe-") {
                arrived.insert(text, event.at);
            }
        }
        arrived
    };
    let (tally, sent, arrived) = tokio::join!(
        flood(&flooder, 0, Some(Duration::from_millis(10))),
        probing,
        receiving
    );

    assert_eq!(tally.joined.len(), CAP, "exactly the cap joined");
    assert_eq!(
        tally.too_many,
        JOINS * 3 / 4 - CAP,
        "every allowed one past the cap"
    );
    assert_eq!(tally.forbidden, JOINS / 4, "every refused name forbidden");
    assert_eq!(
        joins_refused(a).await - refused_before,
        u64::try_from(JOINS - CAP).expect("small"),
        "each refusal counted"
    );
    let mut latencies: Vec<Duration> = sent
        .iter()
        .map(|(text, at)| arrived[text].saturating_duration_since(*at))
        .collect();
    let (p50, p99, max) = (
        percentile(&mut latencies, 50),
        percentile(&mut latencies, 99),
        percentile(&mut latencies, 100),
    );
    eprintln!(
        "{mode:?}: {JOINS} joins emitted in {:?}; others' messages meanwhile: p50 {p50:?}, p99 {p99:?}, max {max:?}",
        tally.emitted_in
    );
    assert!(
        p99 < Duration::from_millis(500),
        "{mode:?}: p99 {p99:?} during the flood"
    );

    // What the cluster says, room by room: the joined ones hold the flooder,
    // no other allowed name does.
    let joined: std::collections::HashSet<&String> = tally.joined.iter().collect();
    let checks = (0..JOINS)
        .filter(|i| i % 4 != 3)
        .map(|i| format!("flood:0:{i}"))
        .map(|name| {
            let expected = if joined.contains(&name) {
                json!({"room": name, "users": ["flooder"], "sockets": 1})
            } else {
                json!({"room": name, "users": [], "sockets": 0})
            };
            let nodes = &nodes;
            async move {
                let answer = nodes
                    .presence(1, &format!("/api/presence/room:{name}"))
                    .await;
                assert_eq!(answer, expected, "{mode:?}");
            }
        });
    futures_util::stream::iter(checks)
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;

    // A place freed is a place taken again, and only one.
    let left = &tally.joined[0];
    let ack = flooder.call("leave", &json!({ "room": left })).await;
    assert_eq!(ack, json!({"ok": true}));
    let ack = flooder
        .call("join", &json!({ "room": "flood:again" }))
        .await;
    assert_eq!(ack, json!({"ok": true}));
    let ack = flooder
        .call("join", &json!({ "room": "flood:one-more" }))
        .await;
    assert_eq!(ack, json!({"ok": false, "error": "too many rooms"}));
    let ack = flooder
        .call("join", &json!({ "room": tally.joined[1] }))
        .await;
    assert_eq!(ack, json!({"ok": true}), "a room it is in: joined already");
    let ack = flooder.call("join", &json!({ "room": "other:1" })).await;
    assert_eq!(
        ack,
        json!({"ok": false, "error": "forbidden"}),
        "a name the token does not allow stays forbidden at the cap"
    );
    let published = Answer::of(
        nodes
            .post(1, "/api/publish")
            .json(&json!({"to": format!("room:{left}"), "event": "x", "data": 0}))
            .send()
            .await
            .expect("publish"),
    )
    .await;
    assert_eq!(published.json["sockets"], 0, "{}", published.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_flood_is_answered_capped_and_slows_no_one_on_one_node() {
    a_join_flood_is_answered_capped_and_slows_no_one(Mode::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_flood_is_answered_capped_and_slows_no_one_across_two_nodes() {
    a_join_flood_is_answered_capped_and_slows_no_one(Mode::Scaled).await;
}

/// The resident memory of process `pid`, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binarys_memory_stays_put_through_repeated_join_floods() {
    let mut child = tokio::process::Command::new(socket_server_binary())
        .env_clear()
        .env("APP_JWT__SECRET", SECRET)
        .env("APP_API__KEY", API_KEY)
        .env("APP_SOCKET__ADDR", "127.0.0.1:0")
        .env("APP_SOCKET__MAX_ROOMS_PER_SOCKET", CAP.to_string())
        .env("RUST_LOG", "warn")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("socket-server starts");
    let pid = child.id().expect("a pid");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let url = timeout(WAIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(at) = line.find("listening on http://") {
                return line[at + "listening on ".len()..].trim().to_owned();
            }
        }
        panic!("socket-server ended before `listening on`");
    })
    .await
    .expect("`listening on` in time");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let rounds = 12;
    let mut resident = Vec::new();
    for round in 0..rounds {
        // A fresh socket each round: a flood, every room left, a second
        // flood of new names, then gone.
        let wire = Wire::connect(&url, &token_with_rooms("flooder", &["flood:*"])).await;
        let tally = flood(&wire, 2 * round, None).await;
        assert_eq!(tally.joined.len(), CAP, "round {round}");
        let leaves: Vec<_> = (tally.joined.iter())
            .map(|name| wire.emit_with_ack("leave", &json!({ "room": name })))
            .collect();
        for left in leaves {
            let ack = timeout(WAIT, left).await.expect("a leave's ack in time");
            assert_eq!(ack.expect("the ack"), json!({"ok": true}));
        }
        let tally = flood(&wire, 2 * round + 1, None).await;
        assert_eq!(tally.joined.len(), CAP, "round {round}, after leaving");
        wire.close();
        resident.push(resident_kib(pid));
    }
    // The first rounds warm the allocator up; after that, 20,000 joins more
    // must not have grown it more than a loose bound (a leak of 100 bytes per
    // join would be 2 MiB).
    let warm = resident[2];
    let last = resident[rounds - 1];
    eprintln!("socket-server VmRSS per round (KiB): {resident:?}");
    assert!(
        last < warm + 8 * 1024,
        "VmRSS grew from {warm} KiB to {last} KiB over {} floods: {resident:?}",
        2 * (rounds - 3)
    );
    let _ = child.kill().await;
}

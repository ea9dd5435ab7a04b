//! Delivery under network cuts, short (the AnyCable-style test; the long one is
//! `scripts/bench --only delivery`): `tests/js/delivery-under-cuts.mjs` puts each
//! official `socket.io-client` 4.x behind a TCP proxy of its own and unplugs it
//! every 2.5 s for 2 s (a real transport loss; the client reconnects on its own,
//! default settings) while numbered events are published at 20/s for 8 s —
//! `message` from a publisher socket, and, at the same time and on the same
//! node, the server API (`POST /api/publish` to `everyone`). Every client that
//! opted in (`auth: {token, recovery: true}`) must get every event, once, in
//! order, and come back with `recovered === true` each time; two clients that
//! did not opt in are cut the same way and must have lost events (the cuts are
//! real: without recovery this test fails).

use std::time::Duration;

use serde_json::Value;

use crate::api::{ApiNodes, Mode};
use crate::helpers::{API_KEY, SECRET};
use crate::node;

const CLIENTS: u64 = 10;
const PLAIN: u64 = 2;
/// The driver's own waits are bounded (15 s to come back, 15 s for the
/// marker); this only stops a hung run.
const DEADLINE: Duration = Duration::from_secs(90);

/// One run of the driver against `url`; its JSON report.
async fn run_driver(url: &str, publish: &str) -> Value {
    let mut command = tokio::process::Command::new("node");
    command
        .arg("delivery-under-cuts.mjs")
        .args(["--url", url, "--publish", publish, "--label", publish])
        .args([
            "--clients",
            &CLIENTS.to_string(),
            "--plain",
            &PLAIN.to_string(),
        ])
        .args(["--duration", "8", "--rate", "20"])
        .args(["--cut-every", "2.5", "--cut-for", "2"])
        .current_dir(node::js_dir())
        .env("APP_JWT__SECRET", SECRET)
        .env("APP_API__KEY", API_KEY)
        .kill_on_drop(true);
    let output = tokio::time::timeout(DEADLINE, command.output())
        .await
        .unwrap_or_else(|_| {
            panic!("delivery-under-cuts.mjs ({publish}) did not finish within {DEADLINE:?}")
        })
        .expect("node runs (is Node.js installed?)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "delivery-under-cuts.mjs ({publish}) failed:\n{stderr}"
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "delivery-under-cuts.mjs ({publish}) printed no JSON report ({e}):\n{}\n{stderr}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The report as a failure message: the counts, then each client's evidence
/// (what it lacks or got twice or out of order, with its timeline) on a line
/// of its own.
fn describe(report: &Value) -> String {
    let mut counts = report.clone();
    let mut lines = Vec::new();
    for (group, prefix) in [("plain", "plain "), ("", "")] {
        let group = if group.is_empty() {
            &mut counts
        } else {
            &mut counts[group]
        };
        for evidence in ["losses", "disorder"] {
            if let Some(Value::Array(items)) = group.get_mut(evidence).map(Value::take) {
                lines.extend(
                    items
                        .iter()
                        .map(|item| format!("{prefix}{evidence}: {item}")),
                );
            }
        }
    }
    let counts = serde_json::to_string_pretty(&counts).expect("JSON");
    format!("{counts}\n{}", lines.join("\n"))
}

/// Every opted-in client got every event once, in order, recovering at every
/// reconnection; the plain ones lost some.
fn check(report: &Value) {
    let publish = report["publish"].as_str().unwrap_or("?");
    let whole = describe(report);
    let u = |field: &str| report[field].as_u64().unwrap_or(u64::MAX);

    assert_eq!(u("sent"), 160, "{publish}: all 160 events sent:\n{whole}");
    assert_eq!(
        report["publish_failures"],
        serde_json::json!([]),
        "{publish}:\n{whole}"
    );
    assert_eq!(
        report["observer_missing"], "",
        "{publish}: the uncut socket got everything:\n{whole}"
    );
    assert_eq!(
        report["all_back"], true,
        "{publish}: every client came back:\n{whole}"
    );
    assert_eq!(
        report["unfinished"],
        serde_json::json!([]),
        "{publish}: every client got the marker:\n{whole}"
    );
    assert!(
        u("min_cuts_per_client") >= 1 && u("cuts") >= CLIENTS,
        "{publish}: every client was cut:\n{whole}"
    );
    assert_eq!(
        u("delivered"),
        u("expected_deliveries"),
        "{publish}: every event reached every client (lost: see `losses`):\n{whole}"
    );
    assert_eq!(report["delivered_pct"], 100, "{publish}:\n{whole}");
    assert_eq!(
        u("duplicates"),
        0,
        "{publish}: no event twice (see `disorder`):\n{whole}"
    );
    assert_eq!(
        u("order_violations"),
        0,
        "{publish}: in order (see `disorder`):\n{whole}"
    );
    assert_eq!(
        u("recovered"),
        u("reconnects"),
        "{publish}: every reconnection recovered:\n{whole}"
    );
    assert_eq!(
        u("reconnects"),
        u("cuts"),
        "{publish}: one reconnection per cut:\n{whole}"
    );
    assert_eq!(
        report["socket_id_kept"], true,
        "{publish}: the same socket id:\n{whole}"
    );

    let plain = &report["plain"];
    assert_eq!(plain["clients"], PLAIN, "{publish}:\n{whole}");
    assert!(
        plain["delivered"].as_u64() < plain["expected_deliveries"].as_u64()
            && plain["recovered"] == 0,
        "{publish}: clients that did not opt in lost events at the cuts (else the cuts cut nothing):\n{whole}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_once_and_in_order_through_repeated_cuts() {
    node::require_package("socket.io-client");
    node::require_package("jose");
    let nodes = ApiNodes::start(Mode::Embedded).await;
    let url = &nodes.urls[0];
    // Both at once on the same node: message events and server API events.
    let (message, api) = tokio::join!(run_driver(url, "message"), run_driver(url, "api"));
    check(&message);
    check(&api);
}

//! A flood of bad requests never delays good publications, and a client
//! whose large body was refused unread is told the connection closes (so
//! that it never sends its next request on a dead connection).

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, ORIGIN};
use serde_json::json;

use crate::api::{ApiNodes, Mode, http_client};
use crate::api_refusals::{Watcher, refused_counts};
use crate::helpers::API_KEY;

#[tokio::test]
async fn a_client_whose_large_body_was_refused_unread_gets_its_next_answer_too() {
    // One client, as an application's backend keeps one (connections pooled).
    let nodes = ApiNodes::start(Mode::Embedded).await;
    let url = format!("{}/api/publish", nodes.urls[0]);
    let large = format!(
        r#"{{"to": "everyone", "event": "refused", "data": "{}"}}"#,
        "x".repeat(150 * 1024)
    );
    let good = json!({"to": "everyone", "event": "accepted", "data": 1});

    for round in 0..10 {
        for (what, request, status) in [
            ("too large", nodes.post(0, "/api/publish"), 413),
            (
                "a wrong key",
                nodes.http.post(&url).bearer_auth("wrong"),
                401,
            ),
            (
                "from a browser",
                nodes
                    .post(0, "/api/publish")
                    .header(ORIGIN, "https://evil.example"),
                403,
            ),
        ] {
            let refused = request
                .header(CONTENT_TYPE, "application/json")
                .body(large.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("round {round}, {what}: no answer: {e:?}"));
            assert_eq!(refused.status(), status, "round {round}, {what}");
            // The body is left unread: the server closes the connection, and
            // says so, so that no client sends its next request on it.
            assert_eq!(
                refused.headers().get("connection").map(|v| v.as_bytes()),
                Some(&b"close"[..]),
                "round {round}, {what}"
            );
            let next = nodes.post(0, "/api/publish").json(&good).send().await;
            let next = next.unwrap_or_else(|e| panic!("round {round}, after {what}: {e:?}"));
            assert_eq!(next.status(), 200, "round {round}, after {what}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_requests_never_delays_good_publications() {
    const BAD: usize = 2_000;
    const FLOODERS: usize = 8;
    let nodes = Arc::new(ApiNodes::start(Mode::Embedded).await);
    let watcher = Arc::new(Watcher::connect(&nodes.urls[0], "flood-watcher").await);
    let refused_before = refused_counts(&nodes, 0).await;
    let huge = " ".repeat(200 * 1024);

    // The flood: several clients, each its own connections, every kind of
    // bad request in turn.
    let started = Instant::now();
    let flood: Vec<_> = (0..FLOODERS)
        .map(|flooder| {
            let nodes = nodes.clone();
            let huge = huge.clone();
            tokio::spawn(async move {
                let http = http_client();
                let url = format!("{}/api/publish", nodes.urls[0]);
                let mut statuses = Vec::with_capacity(BAD / FLOODERS);
                for i in 0..BAD / FLOODERS {
                    let request = match (flooder + i) % 5 {
                        0 => http
                            .post(&url)
                            .bearer_auth("a-wrong-key-of-the-right-length-0123456789")
                            .json(&json!({"to": "everyone", "event": "bad", "data": 1})),
                        1 => http
                            .post(&url)
                            .bearer_auth(API_KEY)
                            .header(CONTENT_TYPE, "application/json")
                            .body("{\"to\": [\"everyone\""),
                        2 => http
                            .post(&url)
                            .bearer_auth(API_KEY)
                            .header(CONTENT_TYPE, "application/json")
                            .body(huge.clone()),
                        3 => http.post(&url).bearer_auth(API_KEY).json(
                            &json!({"to": "everyone", "event": "message", "data": "spoofed"}),
                        ),
                        _ => http
                            .post(&url)
                            .bearer_auth(API_KEY)
                            .header(ORIGIN, "https://evil.example")
                            .json(&json!({"to": "everyone", "event": "bad", "data": 1})),
                    };
                    let status = request.send().await.map(|r| r.status().as_u16());
                    statuses.push(status.unwrap_or_else(|e| {
                        panic!("bad request {i} of flooder {flooder} got no answer: {e:?}")
                    }));
                }
                statuses
            })
        })
        .collect();

    // Meanwhile, a good publication every 20 ms, each answered and received
    // within a second.
    let (total, total_known) = tokio::sync::watch::channel(u64::MAX);
    let receiver = {
        let watcher = watcher.clone();
        tokio::spawn(async move {
            let mut arrivals = Vec::new();
            while (arrivals.len() as u64) < *total_known.borrow()
                && started.elapsed() < Duration::from_secs(20)
            {
                if let Ok(tick) = watcher
                    .socket
                    .next_event("tick", Duration::from_millis(100))
                    .await
                {
                    arrivals.push((tick.as_u64().expect("a number"), Instant::now()));
                }
            }
            arrivals
        })
    };
    let mut sent = Vec::new();
    let mut interval = tokio::time::interval(Duration::from_millis(20));
    let mut tick = 0_u64;
    while sent.len() < 50 || flood.iter().any(|task| !task.is_finished()) {
        interval.tick().await;
        let at = Instant::now();
        let answer = nodes
            .publish(
                0,
                &json!({"to": format!("user:{}", watcher.user), "event": "tick", "data": tick}),
            )
            .await;
        let answered = at.elapsed();
        assert_eq!(answer["sockets"], 1);
        assert!(
            answered < Duration::from_secs(1),
            "publication {tick} answered in {answered:?}"
        );
        sent.push((tick, at, answered));
        tick += 1;
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the flood lasts over 15 s"
        );
    }
    total.send_replace(tick);
    let mut statuses = Vec::new();
    for task in flood {
        statuses.extend(task.await.expect("a flooder"));
    }
    let flood_took = started.elapsed();
    let arrivals = receiver.await.expect("the receiver");

    assert_eq!(statuses.len(), BAD);
    for (status, expected) in [
        (401, BAD / 5),
        (400, 2 * BAD / 5),
        (413, BAD / 5),
        (403, BAD / 5),
    ] {
        assert_eq!(
            statuses.iter().filter(|s| **s == status).count(),
            expected,
            "{status}s in the flood"
        );
    }
    let refused_after = refused_counts(&nodes, 0).await;
    assert_eq!(
        [
            refused_after[0] - refused_before[0],
            refused_after[1] - refused_before[1],
            refused_after[2] - refused_before[2],
            refused_after[3] - refused_before[3]
        ],
        [
            BAD as u64 / 5,
            BAD as u64 / 5,
            BAD as u64 / 5,
            2 * BAD as u64 / 5
        ],
        "each refusal counted"
    );
    assert_eq!(
        arrivals.iter().map(|(tick, _)| *tick).collect::<Vec<_>>(),
        (0..tick).collect::<Vec<_>>(),
        "every good publication arrived, once, in order"
    );
    let mut latencies: Vec<Duration> = sent
        .iter()
        .zip(&arrivals)
        .map(|((_, at, _), (_, arrived))| arrived.duration_since(*at))
        .collect();
    latencies.sort();
    let worst = *latencies.last().expect("publications");
    assert!(
        worst < Duration::from_secs(1),
        "a good publication took {worst:?} to arrive"
    );
    let worst_answer = sent
        .iter()
        .map(|(_, _, answered)| *answered)
        .max()
        .expect("publications");
    eprintln!(
        "flood: {BAD} bad requests from {FLOODERS} clients in {flood_took:?}; {} good publications meanwhile: answered within {worst_answer:?}, delivered p50 {:?}, max {worst:?}",
        sent.len(),
        latencies[latencies.len() / 2],
    );
}

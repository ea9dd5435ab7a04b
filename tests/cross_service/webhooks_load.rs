//! Presence webhooks under load, in both modes: 2,000 users (one socket
//! each, with the load generator's own light client) connecting and leaving
//! in four waves of 500 — a quarter reloading once, a quarter twice, a
//! quarter away for longer than the grace time and back, a quarter leaving —
//! the scaled mode's sockets moving from node to node at each visit. The
//! transitions each user must cause are computed from the test's own
//! connection log (when each socket connected and closed, and the grace
//! time), and every one must be delivered exactly: nothing missing, nothing
//! extra, no duplicate (the receiver never fails here), in order per user.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use loadgen::engineio::{self, Handshake};
use tokio::sync::watch;

use crate::helpers::token_of_session;
use crate::webhooks::{
    Nodes, OFFLINE, ONLINE, Receiver, connect, describe, metric_becomes, webhook_settings,
};

const USERS: usize = 2000;
const WAVES: usize = 4;
/// Waves start this far apart (each overlaps the one before).
const WAVE_EVERY: Duration = Duration::from_millis(1500);
/// How long each socket stays.
const STAY: Duration = Duration::from_secs(1);
/// The grace time here: the default, 5 s — a reload in the thick of a wave
/// (500 handshakes at once, on a busy machine) can take seconds.
const GRACE: Duration = Duration::from_secs(5);
/// How long an away user stays away: well past the grace time.
const AWAY: Duration = Duration::from_secs(8);

#[derive(Clone, Copy, Debug)]
enum Plan {
    ReloadOnce,
    ReloadTwice,
    Away,
    Leave,
}

impl Plan {
    fn of(user: usize) -> Self {
        [Self::ReloadOnce, Self::ReloadTwice, Self::Away, Self::Leave][user % 4]
    }

    /// Sockets, one after the other.
    fn visits(self) -> usize {
        match self {
            Self::ReloadOnce | Self::Away => 2,
            Self::ReloadTwice => 3,
            Self::Leave => 1,
        }
    }
}

/// One socket's life, as the test saw it.
#[derive(Clone, Copy, Debug)]
struct Visit {
    connecting: Instant,
    welcomed: Instant,
    closing: Instant,
    closed: Instant,
}

/// One user's visits, on alternating nodes (`first` first).
async fn visit(
    user: String,
    plan: Plan,
    at: Instant,
    nodes: [SocketAddr; 2],
    first: usize,
) -> Vec<Visit> {
    tokio::time::sleep_until(at.into()).await;
    let mut visits = Vec::new();
    for n in 0..plan.visits() {
        if matches!(plan, Plan::Away) && n == 1 {
            tokio::time::sleep(AWAY).await;
        }
        let token = token_of_session(&user, &format!("sid-{user}-{n}-0123456789"));
        let connecting = Instant::now();
        let node = nodes[(first + n) % 2];
        let client = match engineio::connect(node, None, &token, Duration::from_secs(20)).await {
            Ok(Handshake::Welcomed(client)) => client,
            Ok(Handshake::Refused(reason)) => panic!("{user} refused: {reason}"),
            Err(error) => panic!("{user} at {node}: {error}"),
        };
        let welcomed = Instant::now();
        let (stop, stopped) = watch::channel(false);
        let held = tokio::spawn(client.hold_until(stopped));
        tokio::time::sleep(STAY).await;
        let closing = Instant::now();
        let _ = stop.send(true);
        held.await.expect("the socket's task");
        visits.push(Visit {
            connecting,
            welcomed,
            closing,
            closed: Instant::now(),
        });
    }
    visits
}

/// The events `visits` must cause, judged with the grace time: a gap
/// surely shorter than it is a reload (nothing), one surely longer (past
/// `slack`, the time the server may take to notice) is an offline then an
/// online. A gap too close to the grace time to tell (the test's own timing
/// under load) allows both; returns every sequence allowed, and how many
/// gaps were too close.
fn expected(visits: &[Visit], slack: Duration) -> (Vec<Vec<String>>, usize) {
    let mut allowed = vec![vec![ONLINE.to_owned()]];
    let mut unclear = 0;
    let away = |kinds: &[String]| {
        let mut kinds = kinds.to_vec();
        kinds.extend([OFFLINE.to_owned(), ONLINE.to_owned()]);
        kinds
    };
    for pair in visits.windows(2) {
        let longest = pair[1].welcomed.duration_since(pair[0].closing);
        let shortest = pair[1].connecting.saturating_duration_since(pair[0].closed);
        if longest + Duration::from_millis(200) < GRACE {
            continue;
        }
        if shortest > GRACE + slack {
            allowed = allowed.iter().map(|kinds| away(kinds)).collect();
        } else {
            unclear += 1;
            let both: Vec<_> = allowed.iter().map(|kinds| away(kinds)).collect();
            allowed.extend(both);
        }
    }
    for kinds in &mut allowed {
        kinds.push(OFFLINE.to_owned());
    }
    (allowed, unclear)
}

fn address(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .parse()
        .expect("a node's address")
}

async fn every_transition_delivered_exactly(scaled: bool) {
    let mode = if scaled { "scaled" } else { "embedded" };
    let receiver = Receiver::start().await;
    let mut settings = webhook_settings(&receiver);
    settings.webhooks.offline_grace_secs = GRACE.as_secs();
    let nodes = Nodes::start_with(scaled, settings).await;
    let urls = nodes.urls();
    let addresses = urls.map(address);
    // The server notices a close within milliseconds; in the scaled mode the
    // departing users are looked at each second.
    let slack = if scaled {
        Duration::from_millis(1500)
    } else {
        Duration::from_millis(300)
    };

    let started = Instant::now();
    let wave_size = USERS / WAVES;
    let users: Vec<String> = (0..USERS).map(|i| format!("load-{i:04}")).collect();
    let tasks: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, user)| {
            let at = started + WAVE_EVERY * u32::try_from(i / wave_size).expect("few waves");
            tokio::spawn(visit(user.clone(), Plan::of(i), at, addresses, i % 2))
        })
        .collect();
    let mut log = BTreeMap::new();
    for (user, task) in users.iter().zip(tasks) {
        log.insert(user.clone(), task.await.expect("a user's task"));
    }
    let ran = started.elapsed();
    let last_close = log
        .values()
        .flatten()
        .map(|visit| visit.closed)
        .max()
        .expect("visits");

    let mut expectation = BTreeMap::new();
    let mut unclear = 0;
    for (user, visits) in &log {
        let (allowed, gaps) = expected(visits, slack);
        expectation.insert(user.clone(), allowed);
        unclear += gaps;
    }
    // On a busy machine a few handshakes take seconds; many would mean the
    // test no longer tells anything.
    assert!(
        unclear <= USERS / 20,
        "{mode}: {unclear} gaps too close to the grace time to tell: the test's timing"
    );
    let mut handshakes: Vec<Duration> = log
        .values()
        .flatten()
        .map(|visit| visit.welcomed.duration_since(visit.connecting))
        .collect();
    handshakes.sort_unstable();
    let percentile = |p: usize| handshakes[(handshakes.len() - 1) * p / 100];
    let (p50, p99, slowest) = (percentile(50), percentile(99), percentile(100));
    let longest_reload = log
        .values()
        .flat_map(|visits| visits.windows(2))
        .map(|pair| pair[1].welcomed.duration_since(pair[0].closing))
        .filter(|away| *away < GRACE)
        .max()
        .unwrap_or_default();

    // Every offline is made by now (the grace time and the scaled mode's
    // look each second): a barrier user on each node comes after them all.
    tokio::time::sleep_until((last_close + GRACE + slack + Duration::from_secs(1)).into()).await;
    let barriers = if scaled { 2 } else { 1 };
    let mut sockets = Vec::new();
    for (node, url) in urls.iter().enumerate().take(barriers) {
        let user = format!("barrier-{node}");
        sockets.push(connect(url, &user, 0).await);
        receiver
            .wait_user(&user, &[ONLINE], Duration::from_secs(60))
            .await;
    }
    let delivered_in = started.elapsed();

    let mut delivered = receiver.delivered();
    for node in 0..barriers {
        delivered.remove(&format!("barrier-{node}"));
    }
    let hooks = receiver.hooks();
    let wrong: Vec<_> = expectation
        .iter()
        .filter(|(user, allowed)| {
            !delivered
                .get(*user)
                .is_some_and(|kinds| allowed.contains(kinds))
        })
        .map(|(user, allowed)| {
            format!(
                "{user}: expected {allowed:?}, delivered {:?} ({:?})",
                delivered.get(user),
                log[user]
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{mode}: {} of {USERS} users not as computed:\n{}",
        wrong.len(),
        wrong
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    let total: usize = delivered.values().map(Vec::len).sum();
    assert_eq!(delivered.len(), USERS, "{mode}: events of unknown users");
    assert!(
        hooks.iter().all(|hook| hook.answer == Some(200)),
        "{mode}: a request not answered 200"
    );
    let duplicates = receiver.duplicates();
    assert!(
        duplicates.is_empty(),
        "{mode}: delivered twice: {duplicates:?}\n{}",
        describe(&hooks[..hooks.len().min(50)])
    );
    assert_eq!(
        hooks.len(),
        total + barriers,
        "{mode}: one request per event"
    );
    receiver.assert_clean();
    assert_eq!(nodes.metric("authbridge_webhooks_dropped_total").await, 0);
    assert_eq!(
        nodes.metric("authbridge_webhooks_sent_total").await,
        (total + barriers) as u64
    );
    for url in urls {
        metric_becomes(
            url,
            "authbridge_webhooks_pending",
            0,
            Duration::from_secs(3),
        )
        .await;
    }
    eprintln!(
        "webhooks load ({mode}): {USERS} users, {} sockets, {total} transitions ({unclear} gaps too close to the grace time to tell); the waves took {:.1} s, every event was delivered {:.1} s after the start; the longest reload {longest_reload:?}; handshakes p50 {p50:?}, p99 {p99:?}, slowest {slowest:?}",
        log.values().map(Vec::len).sum::<usize>(),
        ran.as_secs_f64(),
        delivered_in.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_2000_users_in_waves_every_transition_delivered_exactly_as_computed() {
    every_transition_delivered_exactly(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaled_2000_users_in_waves_every_transition_delivered_exactly_as_computed() {
    every_transition_delivered_exactly(true).await;
}

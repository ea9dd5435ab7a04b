//! `publish`: N users connected (one socket each, distinct usernames) and an
//! application backend publishing to them through the server API
//! (`POST /api/publish`, C requests in flight on keep-alive connections), one
//! phase per target kind: one user at a time, everyone, or a user with no
//! socket (what the API itself costs). Publications and deliveries per
//! second, API and delivery latency, server CPU per publication; every
//! delivery is counted by the socket that got it and checked against what
//! the publications reached and what the API said it reached.
//!
//! Long on purpose (~790 lines, a third of it tests): one scenario whose
//! driver, workers and report share private state (what was sent, what each
//! socket counted); the parts used by other scenarios live in their modules.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::engineio::{Incoming, SocketIoClient};
use crate::error::LoadError;
use crate::fleet;
use crate::http1::{self, Connection};
use crate::process::CpuMeter;
use crate::run::SocketRun;
use crate::stats::{Latencies, Percentiles, millis, per_second};
use crate::tokens::TokenSource;

/// The event every publication carries (not one of the contract's reserved names).
pub const EVENT: &str = "bench";
/// The target of the `none` phase: a user no socket belongs to.
pub const NOBODY: &str = "user:nobody";
/// How many error messages a report keeps, as examples.
const ERROR_SAMPLES: usize = 5;
/// How often the driver looks whether a phase's deliveries have all arrived.
const DRAIN_POLL: Duration = Duration::from_millis(1);

/// Whom a phase's publications are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// `user:userK`, K round robin over the N users: one delivery each.
    User,
    /// `everyone`: N deliveries each.
    Everyone,
    /// `user:nobody`: no delivery; what is left is the API's own cost
    /// (request, auth, the backplane, the response).
    None,
}

impl TargetKind {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "user" => Some(Self::User),
            "everyone" => Some(Self::Everyone),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Everyone => "everyone",
            Self::None => "none",
        }
    }
}

/// One phase: this many publications to this kind of target.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    pub to: TargetKind,
    pub publications: usize,
}

#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// The users' sockets (`connections` = N; tokens minted, one user each)
    /// and the nodes the API requests go to, round robin per connection.
    pub run: SocketRun,
    /// The server API's key (`api.key`).
    pub api_key: SecretString,
    /// In order, on the same sockets.
    pub phases: Vec<Phase>,
    /// API requests in flight, each on its own keep-alive connection.
    pub in_flight: usize,
    /// A phase stops sending after this long (what was sent is reported).
    pub phase_limit: Option<Duration>,
    /// More server processes (the other nodes): their CPU is the server's too.
    pub more_server_pids: Vec<u32>,
    /// Redis's process in the scaled mode: its CPU reported apart.
    pub redis_pid: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PublishReport {
    pub users: usize,
    /// Socket nodes the sockets and API requests were spread over.
    pub nodes: usize,
    pub in_flight: usize,
    /// Users whose socket was welcomed.
    pub greeted: usize,
    /// Failed handshakes plus every phase's errors.
    pub errors: usize,
    pub error_samples: Vec<String>,
    pub phases: Vec<PhaseReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub to: TargetKind,
    /// Requests sent.
    pub publications: usize,
    /// Answered 200.
    pub ok: usize,
    /// Any other answer, or none in time.
    pub failed: usize,
    /// What the accepted publications should reach: 1 (user), N (everyone), 0.
    pub expected_deliveries: usize,
    /// Counted by the sockets.
    pub delivered: usize,
    /// Deliveries a socket should have had and never got.
    pub missing: usize,
    /// Deliveries beyond what a socket should have had (duplicates).
    pub unexpected: usize,
    /// The sum of the API's `sockets` answers.
    pub api_sockets: u64,
    /// Accepted publications whose `sockets` was not what they should reach.
    /// Not counted in `errors`: the scaled mode's count is best effort within
    /// 1 s (the contract), so a node that takes longer answers short.
    pub sockets_mismatches: usize,
    /// failed + missing + unexpected.
    pub errors: usize,
    /// First request sent → last response read.
    pub elapsed_secs: f64,
    pub publications_per_sec: f64,
    /// First request sent → last delivery.
    pub delivery_secs: f64,
    pub deliveries_per_sec: f64,
    /// Request sent → response read.
    pub api_latency_ms: Percentiles,
    /// Request sent → event read by the socket (the send time rides in `data`).
    pub delivery_latency_ms: Percentiles,
    /// Server CPU (every node, user + system) from the first request to the
    /// last delivery, per accepted publication.
    pub server_cpu_us_per_publication: Option<f64>,
    pub server_cpu_us_per_delivery: Option<f64>,
    /// The kernel's share (system time) of that server CPU; on loopback it
    /// holds the TCP work of both ends of every write.
    pub server_kernel_share: Option<f64>,
    pub redis_cpu_us_per_publication: Option<f64>,
    pub client_cpu_us_per_publication: Option<f64>,
}

impl PublishReport {
    pub(crate) fn summary(&self) -> String {
        let mut line = format!(
            "publish: {}/{} users connected over {} node(s), {} in flight, {} errors",
            self.greeted, self.users, self.nodes, self.in_flight, self.errors
        );
        for phase in &self.phases {
            let _ = write!(
                line,
                "; to {}: {}/{} ok, {:.0} publications/s, {}/{} delivered, {:.0} deliveries/s, \
                 API p50 {:.2} ms p99 {:.2} ms, delivery p50 {:.2} ms p99 {:.2} ms",
                phase.to.name(),
                phase.ok,
                phase.publications,
                phase.publications_per_sec,
                phase.delivered,
                phase.expected_deliveries,
                phase.deliveries_per_sec,
                phase.api_latency_ms.p50,
                phase.api_latency_ms.p99,
                phase.delivery_latency_ms.p50,
                phase.delivery_latency_ms.p99,
            );
            if phase.sockets_mismatches > 0 {
                let _ = write!(
                    line,
                    ", {} answers with another socket count",
                    phase.sockets_mismatches
                );
            }
            if let Some(cpu) = phase.server_cpu_us_per_publication {
                let _ = write!(line, ", server CPU {cpu:.1} µs/publication");
            }
        }
        line
    }
}

/// What every socket's reader shares with the driver, per phase.
#[derive(Debug)]
struct Progress {
    base: Instant,
    delivered: Vec<AtomicUsize>,
    /// The last delivery, in µs from `base`.
    last_micros: Vec<AtomicU64>,
}

impl Progress {
    fn micros(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// What one socket received, per phase.
#[derive(Debug)]
struct Inbox {
    user: usize,
    counts: Vec<usize>,
    latencies: Vec<Latencies>,
    error: Option<String>,
}

/// What one API connection did in a phase.
#[derive(Debug, Default)]
struct Sent {
    publications: usize,
    ok: usize,
    failed: usize,
    /// For each accepted publication to one user: the user's index.
    users: Vec<usize>,
    api_sockets: u64,
    sockets_mismatches: usize,
    latencies: Latencies,
    first_sent: Option<u64>,
    last_answer: u64,
    errors: Vec<String>,
}

/// The driver's API connections and what a request needs.
struct Driver {
    connections: Vec<Connection>,
    authorization: Arc<str>,
    step_timeout: Duration,
}

/// Runs the scenario; the connections are closed before it returns.
pub async fn run(options: &PublishOptions) -> Result<PublishReport, LoadError> {
    let run = &options.run;
    let deadline = Instant::now() + run.deadline;
    match &run.tokens {
        TokenSource::Mint(mint) if mint.users.is_none() => {}
        _ => {
            return Err(LoadError::Usage(
                "publish mints one user per socket: tokens from --secret, without --users".into(),
            ));
        }
    }
    let tokens = run
        .tokens
        .tokens(run.connections, 0.0, run.step_timeout)
        .await?;
    let mut clients = Vec::with_capacity(run.connections);
    let tally = fleet::open_all(run, tokens, deadline, |index, client| {
        clients.push((index, client));
    })
    .await?;
    let mut connected = vec![false; run.connections];
    for (index, _) in &clients {
        connected[*index] = true;
    }

    let phases = options.phases.len();
    let progress = Arc::new(Progress {
        base: Instant::now(),
        delivered: (0..phases).map(|_| AtomicUsize::new(0)).collect(),
        last_micros: (0..phases).map(|_| AtomicU64::new(0)).collect(),
    });
    let (stop, stopped) = watch::channel(false);
    let mut readers = JoinSet::new();
    for (user, client) in clients {
        readers.spawn(read(
            client,
            user,
            phases,
            progress.clone(),
            stopped.clone(),
        ));
    }

    let servers = run.servers();
    let in_flight = options.in_flight.max(1);
    let mut driver = Driver {
        connections: (0..in_flight)
            .map(|index| Connection::new(servers[index % servers.len()]))
            .collect(),
        authorization: format!("Bearer {}", options.api_key.expose_secret()).into(),
        step_timeout: run.step_timeout,
    };
    let mut server_pids: Vec<u32> = run.server_pid.into_iter().collect();
    server_pids.extend(&options.more_server_pids);

    let mut sent = Vec::with_capacity(phases);
    let mut meters = Vec::with_capacity(phases);
    for (number, phase) in options.phases.iter().enumerate() {
        let server = start_meters(&server_pids)?;
        let redis = start_meters(&options.redis_pid.into_iter().collect::<Vec<_>>())?;
        let client = start_meters(&[std::process::id()])?;
        let phase_sent = tokio::time::timeout_at(
            deadline.into(),
            driver.phase(
                number,
                *phase,
                &connected,
                tally.greeted,
                &progress,
                options.phase_limit,
            ),
        )
        .await
        .map_err(|_| LoadError::Deadline(format!("publishing to {}", phase.to.name())))?;
        // Every delivery in, or as long as one request may take.
        let expected = expected_total(*phase, &phase_sent, tally.greeted);
        let drained = (Instant::now() + run.step_timeout).min(deadline);
        while progress.delivered[number].load(Ordering::Relaxed) < expected
            && Instant::now() < drained
        {
            tokio::time::sleep(DRAIN_POLL).await;
        }
        meters.push((used(&server)?, used(&redis)?, used(&client)?));
        sent.push(phase_sent);
    }

    stop.send_replace(true);
    let mut inboxes = Vec::with_capacity(tally.greeted);
    let mut open = Vec::with_capacity(tally.greeted);
    let gathered = tokio::time::timeout_at(deadline.into(), async {
        while let Some(joined) = readers.join_next().await {
            if let Ok((inbox, client)) = joined {
                inboxes.push(inbox);
                open.push(client);
            }
        }
    })
    .await;
    drop(open);
    if gathered.is_err() {
        readers.abort_all();
        return Err(LoadError::Deadline(
            "the sockets' counts were not gathered".into(),
        ));
    }

    let mut errors = tally.errors;
    let mut error_samples = tally.error_samples;
    let mut reports = Vec::with_capacity(phases);
    for (number, ((phase, phase_sent), (server, redis, client))) in
        options.phases.iter().zip(sent).zip(meters).enumerate()
    {
        let report = phase_report(
            number,
            *phase,
            phase_sent,
            &inboxes,
            &progress,
            tally.greeted,
            [server, redis, client],
            &mut error_samples,
        );
        errors += report.errors;
        reports.push(report);
    }
    for inbox in &inboxes {
        if let Some(error) = &inbox.error {
            errors += 1;
            sample(&mut error_samples, format!("user{}: {error}", inbox.user));
        }
    }
    Ok(PublishReport {
        users: run.connections,
        nodes: servers.len(),
        in_flight,
        greeted: tally.greeted,
        errors,
        error_samples,
        phases: reports,
    })
}

/// Deliveries the accepted publications of a phase should make.
fn expected_total(phase: Phase, sent: &Sent, greeted: usize) -> usize {
    match phase.to {
        TargetKind::User => sent.users.len(),
        TargetKind::Everyone => sent.ok * greeted,
        TargetKind::None => 0,
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one phase's pieces, gathered from the driver, the sockets and the meters"
)]
fn phase_report(
    number: usize,
    phase: Phase,
    sent: Sent,
    inboxes: &[Inbox],
    progress: &Progress,
    greeted: usize,
    [server, redis, client]: [Option<Used>; 3],
    error_samples: &mut Vec<String>,
) -> PhaseReport {
    // What each user's socket should have had.
    let mut per_user = std::collections::HashMap::<usize, usize>::new();
    if phase.to == TargetKind::User {
        for user in &sent.users {
            *per_user.entry(*user).or_default() += 1;
        }
    }
    let should_have = |user: usize| match phase.to {
        TargetKind::User => per_user.get(&user).copied().unwrap_or(0),
        TargetKind::Everyone => sent.ok,
        TargetKind::None => 0,
    };
    let (mut delivered, mut missing, mut unexpected) = (0, 0, 0);
    let mut latencies = Latencies::default();
    for inbox in inboxes {
        let got = inbox.counts[number];
        let should = should_have(inbox.user);
        delivered += got;
        missing += should.saturating_sub(got);
        unexpected += got.saturating_sub(should);
        latencies.extend(inbox.latencies[number].clone());
    }
    if missing > 0 {
        sample(
            error_samples,
            format!("to {}: {missing} deliveries missing", phase.to.name()),
        );
    }
    if unexpected > 0 {
        sample(
            error_samples,
            format!("to {}: {unexpected} deliveries unexpected", phase.to.name()),
        );
    }
    if sent.sockets_mismatches > 0 {
        sample(
            error_samples,
            format!(
                "to {}: {} answers named another number of sockets than connected",
                phase.to.name(),
                sent.sockets_mismatches
            ),
        );
    }
    for error in &sent.errors {
        sample(error_samples, format!("to {}: {error}", phase.to.name()));
    }
    let first = sent.first_sent.unwrap_or(0);
    let last_delivery = progress.last_micros[number].load(Ordering::Relaxed);
    let elapsed = Duration::from_micros(sent.last_answer.saturating_sub(first));
    let delivery_span = Duration::from_micros(last_delivery.saturating_sub(first));
    let per_publication = |cpu: Option<Used>| {
        cpu.filter(|_| sent.ok > 0)
            .map(|cpu| millis(cpu.total()) * 1000.0 / sent.ok as f64)
    };
    PhaseReport {
        to: phase.to,
        publications: sent.publications,
        ok: sent.ok,
        failed: sent.failed,
        expected_deliveries: expected_total(phase, &sent, greeted),
        delivered,
        missing,
        unexpected,
        api_sockets: sent.api_sockets,
        sockets_mismatches: sent.sockets_mismatches,
        errors: sent.failed + missing + unexpected,
        elapsed_secs: elapsed.as_secs_f64(),
        publications_per_sec: per_second(sent.ok, elapsed),
        delivery_secs: delivery_span.as_secs_f64(),
        deliveries_per_sec: per_second(delivered, delivery_span),
        api_latency_ms: sent.latencies.percentiles(),
        delivery_latency_ms: latencies.percentiles(),
        server_cpu_us_per_publication: per_publication(server),
        server_cpu_us_per_delivery: server
            .filter(|_| delivered > 0)
            .map(|cpu| millis(cpu.total()) * 1000.0 / delivered as f64),
        server_kernel_share: server
            .filter(|cpu| !cpu.total().is_zero())
            .map(|cpu| cpu.system.as_secs_f64() / cpu.total().as_secs_f64()),
        redis_cpu_us_per_publication: per_publication(redis),
        client_cpu_us_per_publication: per_publication(client),
    }
}

fn sample(samples: &mut Vec<String>, error: String) {
    if samples.len() < ERROR_SAMPLES {
        samples.push(error);
    }
}

/// Meters for these processes (none: `None`).
fn start_meters(pids: &[u32]) -> Result<Option<Vec<CpuMeter>>, LoadError> {
    if pids.is_empty() {
        return Ok(None);
    }
    pids.iter()
        .map(|pid| CpuMeter::start(*pid))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
        .map_err(LoadError::Process)
}

/// CPU used since the meters started: user and system time, summed over
/// the processes.
fn used(meters: &Option<Vec<CpuMeter>>) -> Result<Option<Used>, LoadError> {
    let Some(meters) = meters else {
        return Ok(None);
    };
    let mut total = Used::default();
    for meter in meters {
        let (user, system) = meter.elapsed_apart().map_err(LoadError::Process)?;
        total.user += user;
        total.system += system;
    }
    Ok(Some(total))
}

#[derive(Debug, Default, Clone, Copy)]
struct Used {
    user: Duration,
    system: Duration,
}

impl Used {
    fn total(self) -> Duration {
        self.user + self.system
    }
}

impl Driver {
    /// Sends a phase's publications, `connections.len()` in flight, and
    /// gathers what came back.
    async fn phase(
        &mut self,
        number: usize,
        phase: Phase,
        connected: &[bool],
        greeted: usize,
        progress: &Arc<Progress>,
        limit: Option<Duration>,
    ) -> Sent {
        let next = Arc::new(AtomicUsize::new(0));
        let stop_at = limit.map(|limit| Instant::now() + limit);
        let connected: Arc<[bool]> = connected.into();
        let mut workers = JoinSet::new();
        for connection in self.connections.drain(..) {
            let worker = Worker {
                number,
                phase,
                next: next.clone(),
                stop_at,
                connected: connected.clone(),
                greeted,
                progress: progress.clone(),
                host: connection.server().to_string(),
                authorization: self.authorization.clone(),
                step_timeout: self.step_timeout,
            };
            workers.spawn(worker.run(connection));
        }
        let mut all = Sent::default();
        while let Some(joined) = workers.join_next().await {
            let Ok((sent, connection)) = joined else {
                continue;
            };
            self.connections.push(connection);
            all.publications += sent.publications;
            all.ok += sent.ok;
            all.failed += sent.failed;
            all.users.extend(sent.users);
            all.api_sockets += sent.api_sockets;
            all.sockets_mismatches += sent.sockets_mismatches;
            all.latencies.extend(sent.latencies);
            all.first_sent = match (all.first_sent, sent.first_sent) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            all.last_answer = all.last_answer.max(sent.last_answer);
            for error in sent.errors {
                if all.errors.len() < ERROR_SAMPLES {
                    all.errors.push(error);
                }
            }
        }
        all
    }
}

/// One API connection's share of a phase.
struct Worker {
    number: usize,
    phase: Phase,
    next: Arc<AtomicUsize>,
    stop_at: Option<Instant>,
    connected: Arc<[bool]>,
    greeted: usize,
    progress: Arc<Progress>,
    host: String,
    authorization: Arc<str>,
    step_timeout: Duration,
}

impl Worker {
    async fn run(self, mut connection: Connection) -> (Sent, Connection) {
        let mut sent = Sent::default();
        let users = self.connected.len().max(1);
        let mut body = String::with_capacity(128);
        loop {
            if self.stop_at.is_some_and(|stop| Instant::now() >= stop) {
                break;
            }
            let seq = self.next.fetch_add(1, Ordering::Relaxed);
            if seq >= self.phase.publications {
                break;
            }
            let user = seq % users;
            let (target, should_reach) = match self.phase.to {
                TargetKind::User => (
                    format!("user:user{user}"),
                    usize::from(self.connected[user]),
                ),
                TargetKind::Everyone => ("everyone".to_owned(), self.greeted),
                TargetKind::None => (NOBODY.to_owned(), 0),
            };
            let at = self.progress.micros();
            body.clear();
            let _ = write!(
                body,
                r#"{{"to":"{target}","event":"{EVENT}","data":{{"p":{},"s":{seq},"t":{at}}}}}"#,
                self.number
            );
            let request = http1::post_json(
                &self.host,
                "/api/publish",
                &self.authorization,
                body.as_bytes(),
            );
            sent.publications += 1;
            sent.first_sent.get_or_insert(at);
            let started = Instant::now();
            let answer = connection.exchange(&request, self.step_timeout).await;
            sent.last_answer = self.progress.micros();
            match answer {
                Ok(response) if response.status == 200 => {
                    sent.latencies.record(started.elapsed());
                    sent.ok += 1;
                    if self.phase.to == TargetKind::User && should_reach > 0 {
                        sent.users.push(user);
                    }
                    let sockets = sockets_answered(&response.body);
                    sent.api_sockets += sockets.unwrap_or(0);
                    if sockets != Some(should_reach as u64) {
                        sent.sockets_mismatches += 1;
                    }
                }
                Ok(response) => {
                    sent.failed += 1;
                    if sent.errors.len() < ERROR_SAMPLES {
                        sent.errors.push(format!(
                            "HTTP {}: {}",
                            response.status,
                            String::from_utf8_lossy(&response.body)
                        ));
                    }
                }
                Err(error) => {
                    sent.failed += 1;
                    if sent.errors.len() < ERROR_SAMPLES {
                        sent.errors.push(error.to_string());
                    }
                }
            }
        }
        (sent, connection)
    }
}

/// `N` of an API answer `{"id": …, "sockets": N}`.
fn sockets_answered(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    let after = text.split_once("\"sockets\":")?.1.trim_start();
    let digits = after
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after.len());
    after[..digits].parse().ok()
}

/// The phase and send time (µs from the run's base) of a publication's
/// event: `["bench",{"p":PHASE,"s":SEQ,"t":MICROS}]`.
fn stamp(event: &str) -> Option<(usize, u64)> {
    let data = event.strip_prefix("[\"bench\",")?;
    let number = |key: &str| -> Option<u64> {
        let after = data.split_once(key)?.1;
        let digits = after
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after.len());
        after[..digits].parse().ok()
    };
    let phase = usize::try_from(number("\"p\":")?).ok()?;
    Some((phase, number("\"t\":")?))
}

/// Reads one user's socket until told to stop, counting each phase's events.
async fn read(
    mut client: SocketIoClient,
    user: usize,
    phases: usize,
    progress: Arc<Progress>,
    mut stop: watch::Receiver<bool>,
) -> (Inbox, SocketIoClient) {
    let mut inbox = Inbox {
        user,
        counts: vec![0; phases],
        latencies: vec![Latencies::default(); phases],
        error: None,
    };
    loop {
        tokio::select! {
            biased;
            packet = client.next() => match packet {
                Ok(Some(Incoming::Event(event))) => {
                    let Some((phase, sent)) = stamp(&event) else { continue };
                    if phase >= phases {
                        continue;
                    }
                    let now = progress.micros();
                    inbox.counts[phase] += 1;
                    inbox.latencies[phase].record_micros(now.saturating_sub(sent));
                    progress.delivered[phase].fetch_add(1, Ordering::Relaxed);
                    progress.last_micros[phase].fetch_max(now, Ordering::Relaxed);
                }
                Ok(Some(Incoming::Other)) => {}
                Ok(None) => {
                    inbox.error = Some("closed by the server".into());
                    break;
                }
                Err(error) => {
                    inbox.error = Some(error.to_string());
                    break;
                }
            },
            _ = stop.wait_for(|stop| *stop) => break,
        }
    }
    (inbox, client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_gives_back_its_phase_and_send_time() {
        assert_eq!(
            stamp(r#"["bench",{"p":2,"s":17,"t":123456}]"#),
            Some((2, 123_456))
        );
        assert_eq!(stamp(r#"["bench",{"t":9,"p":0}]"#), Some((0, 9)));
        assert_eq!(stamp(r#"["welcome",{"username":"user0"}]"#), None);
        assert_eq!(stamp(r#"["bench",{"p":"x","t":1}]"#), None);
    }

    #[test]
    fn the_answer_names_its_sockets() {
        assert_eq!(
            sockets_answered(br#"{"id":"0f3a","sockets":10000}"#),
            Some(10_000)
        );
        assert_eq!(sockets_answered(br#"{"sockets": 0, "id":"x"}"#), Some(0));
        assert_eq!(sockets_answered(br#"{"error":"unauthorized"}"#), None);
    }

    #[test]
    fn target_kinds_read_as_written() {
        for kind in [TargetKind::User, TargetKind::Everyone, TargetKind::None] {
            assert_eq!(TargetKind::parse(kind.name()), Some(kind));
        }
        assert_eq!(TargetKind::parse("room"), None);
    }
}

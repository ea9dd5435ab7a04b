//! Presence webhooks end to end, embedded (one socket-server): a real HTTP
//! receiver here — an axum server on 127.0.0.1:0 — checks **every** request
//! (the Standard Webhooks signature with the secret, `webhook-id`,
//! `webhook-timestamp`, the body `{"type", "timestamp", "data": {"user"}}`),
//! records the events in arrival order and answers as each test programs it
//! (200, 500 for a while, 410 for one event, held, slow). This module holds
//! that receiver and the node harness the `webhooks_*` modules share.
//!
//! Nothing is waited for by a fixed sleep but the grace time itself: "nothing
//! was sent" is shown with a barrier — another user connected on the same
//! node after the action; the sender is first in, first out, so once the
//! barrier's `user.online` is in, anything the action had caused is too.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use base64::Engine as _;
use hmac::{Hmac, KeyInit as _, Mac as _};
use secrecy::SecretString;
use serde_json::Value;
use settings::Settings;
use sha2::Sha256;
use tokio::sync::watch;

use crate::api::http_client;
use crate::api_process::{SocketServerProcess, node_env};
use crate::helpers::{settings_with_api, token_of_session, wait_ready};
use crate::redis::RedisServer;
use crate::socketio::SioClient;

/// `webhooks.secret` in these tests (≥ 32 bytes, a key of its own).
pub(crate) const HOOK_SECRET: &str = "cross-service-webhook-signing-key-0123456789";
/// `webhooks.offline_grace_secs` in these tests: short, to keep them fast.
pub(crate) const GRACE_SECS: u64 = 1;
pub(crate) const GRACE: Duration = Duration::from_secs(GRACE_SECS);
/// The receiver's path.
const PATH: &str = "/hooks";

pub(crate) const ONLINE: &str = "user.online";
pub(crate) const OFFLINE: &str = "user.offline";

/// How long a scaled node may take to be set up on a fresh Redis.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// One request the receiver took in, checked.
#[derive(Clone, Debug)]
pub(crate) struct Hook {
    pub(crate) id: String,
    pub(crate) kind: String,
    pub(crate) user: String,
    /// The body's `timestamp` (when it happened), ms since the epoch.
    pub(crate) at_ms: i64,
    /// `webhook-timestamp` (when this try was signed), seconds.
    pub(crate) timestamp: String,
    pub(crate) signature: String,
    pub(crate) body: String,
    pub(crate) arrived: Instant,
    /// What the receiver answered; `None` while held, or if the sender went
    /// away before the answer.
    pub(crate) answer: Option<u16>,
}

impl Hook {
    pub(crate) fn delivered(&self) -> bool {
        self.answer
            .is_some_and(|status| (200..300).contains(&status))
    }
}

/// What the receiver answers.
#[derive(Debug, Default)]
struct Plan {
    /// This status to every request until then.
    failing: Option<(Instant, StatusCode)>,
    /// Users whose next event is answered 410 (that event's id, for good).
    gone_users: HashSet<String>,
    gone_ids: HashSet<String>,
    /// How long each answer takes.
    delay: Duration,
}

#[derive(Debug)]
struct Shared {
    secret: Vec<u8>,
    log: Mutex<Vec<Hook>>,
    violations: Mutex<Vec<String>>,
    plan: Mutex<Plan>,
    /// While true, requests are held unanswered.
    held: watch::Sender<bool>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The Standard Webhooks signature: `v1,` and the base64 HMAC-SHA256 of
/// `ID.TIMESTAMP.BODY` with the secret's bytes.
pub(crate) fn sign(secret: &[u8], id: &str, timestamp: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

impl Shared {
    /// Every rule of the contract, for one request.
    fn check(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Hook, String> {
        let header = |name: &str| {
            let values: Vec<_> = headers.get_all(name).iter().collect();
            match values.as_slice() {
                [value] => value
                    .to_str()
                    .map(str::to_owned)
                    .map_err(|_| format!("{name}: not ASCII")),
                [] => Err(format!("no {name} header")),
                _ => Err(format!("{name}: more than one")),
            }
        };
        if method != Method::POST || uri.path() != PATH {
            return Err(format!("{method} {uri}: not POST {PATH}"));
        }
        let content_type = header("content-type")?;
        if content_type != "application/json" {
            return Err(format!("content-type {content_type}"));
        }
        let id = header("webhook-id")?;
        let tail = id.strip_prefix("evt_").unwrap_or_default();
        if tail.is_empty()
            || !tail
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        {
            return Err(format!("webhook-id {id:?}"));
        }
        let timestamp = header("webhook-timestamp")?;
        let sent_at: i64 = timestamp
            .parse()
            .ok()
            .filter(|_| timestamp.bytes().all(|byte| byte.is_ascii_digit()))
            .ok_or_else(|| format!("webhook-timestamp {timestamp:?}"))?;
        let now = claims::unix_now();
        if (now - sent_at).abs() > 5 {
            return Err(format!("webhook-timestamp {sent_at}, now {now}"));
        }
        let body = std::str::from_utf8(body).map_err(|_| "body: not UTF-8".to_owned())?;
        let signature = header("webhook-signature")?;
        let expected = sign(&self.secret, &id, &timestamp, body);
        if !signature.split(' ').any(|given| given == expected) {
            return Err(format!(
                "{id}: webhook-signature {signature:?}, expected {expected:?}"
            ));
        }
        let json: Value =
            serde_json::from_str(body).map_err(|error| format!("body {body:?}: {error}"))?;
        let fields = json.as_object().ok_or("body: not an object")?;
        let mut keys: Vec<_> = fields.keys().map(String::as_str).collect();
        keys.sort_unstable();
        if keys != ["data", "timestamp", "type"] {
            return Err(format!("body {body}: keys {keys:?}"));
        }
        let kind = fields["type"].as_str().unwrap_or_default();
        if kind != ONLINE && kind != OFFLINE {
            return Err(format!("body {body}: type"));
        }
        let at = fields["timestamp"]
            .as_str()
            .and_then(|at| {
                time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()
            })
            .ok_or_else(|| format!("body {body}: timestamp not RFC 3339"))?;
        let at_ms = i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or_default();
        if at_ms > (sent_at + 1) * 1000 || at_ms < (now - 3600) * 1000 {
            return Err(format!("body {body}: timestamp, signed at {sent_at}"));
        }
        let data = fields["data"].as_object().ok_or("data: not an object")?;
        let user = match (data.len(), data.get("user").and_then(Value::as_str)) {
            (1, Some(user)) if !user.is_empty() => user.to_owned(),
            _ => return Err(format!("body {body}: data")),
        };
        Ok(Hook {
            id,
            kind: kind.to_owned(),
            user,
            at_ms,
            timestamp,
            signature,
            body: body.to_owned(),
            arrived: Instant::now(),
            answer: None,
        })
    }

    fn answer(&self, hook: &Hook) -> (StatusCode, Duration) {
        let mut plan = lock(&self.plan);
        if plan.gone_ids.contains(&hook.id) {
            return (StatusCode::GONE, Duration::ZERO);
        }
        if plan.gone_users.remove(&hook.user) {
            plan.gone_ids.insert(hook.id.clone());
            return (StatusCode::GONE, Duration::ZERO);
        }
        if let Some((until, status)) = plan.failing
            && Instant::now() < until
        {
            return (status, Duration::ZERO);
        }
        (StatusCode::OK, plan.delay)
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let hook = match shared.check(&method, &uri, &headers, &body) {
        Ok(hook) => hook,
        Err(problem) => {
            lock(&shared.violations).push(problem);
            return StatusCode::BAD_REQUEST;
        }
    };
    let index = {
        let mut log = lock(&shared.log);
        log.push(hook.clone());
        log.len() - 1
    };
    let mut held = shared.held.subscribe();
    let _ = held.wait_for(|held| !*held).await;
    let (status, delay) = shared.answer(&hook);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    lock(&shared.log)[index].answer = Some(status.as_u16());
    status
}

/// The application's endpoint: every request checked and recorded.
pub(crate) struct Receiver {
    pub(crate) url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Receiver {
    pub(crate) async fn start() -> Self {
        let shared = Arc::new(Shared {
            secret: HOOK_SECRET.as_bytes().to_vec(),
            log: Mutex::default(),
            violations: Mutex::default(),
            plan: Mutex::default(),
            held: watch::channel(false).0,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}{PATH}", listener.local_addr().expect("addr"));
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the receiver runs");
        });
        Self {
            url,
            shared,
            server,
        }
    }

    /// Every request so far, in arrival order.
    pub(crate) fn hooks(&self) -> Vec<Hook> {
        lock(&self.shared.log).clone()
    }

    /// Requests that broke a rule (answered 400): none, or the test fails.
    pub(crate) fn assert_clean(&self) {
        let violations = lock(&self.shared.violations).clone();
        assert!(violations.is_empty(), "refused requests: {violations:#?}");
    }

    /// Requests are held unanswered from now on…
    pub(crate) fn hold(&self) {
        self.shared.held.send_replace(true);
    }

    /// …and answered again (the held ones too).
    pub(crate) fn release(&self) {
        self.shared.held.send_replace(false);
    }

    /// `status` to every request for `duration`.
    pub(crate) fn fail_for(&self, duration: Duration, status: StatusCode) {
        lock(&self.shared.plan).failing = Some((Instant::now() + duration, status));
    }

    /// 410 to `user`'s next event (and to that event for good).
    pub(crate) fn gone_next_of(&self, user: &str) {
        lock(&self.shared.plan).gone_users.insert(user.to_owned());
    }

    /// Each answer takes `delay`.
    pub(crate) fn slow(&self, delay: Duration) {
        lock(&self.shared.plan).delay = delay;
    }

    /// Each user's events as delivered (answered 2xx): every event once (by
    /// id, at its first delivery), in arrival order.
    pub(crate) fn delivered(&self) -> BTreeMap<String, Vec<String>> {
        let mut seen = HashSet::new();
        let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for hook in self.hooks() {
            if hook.delivered() && seen.insert(hook.id.clone()) {
                users.entry(hook.user).or_default().push(hook.kind);
            }
        }
        users
    }

    /// `user`'s events as delivered.
    pub(crate) fn delivered_of(&self, user: &str) -> Vec<String> {
        self.delivered().remove(user).unwrap_or_default()
    }

    /// Ids delivered more than once.
    pub(crate) fn duplicates(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        let mut twice = Vec::new();
        for hook in self.hooks() {
            if hook.delivered() && !seen.insert(hook.id.clone()) {
                twice.push(hook.id);
            }
        }
        twice
    }

    /// Polls until `done` holds for the requests so far, within `within`.
    pub(crate) async fn wait(
        &self,
        what: &str,
        within: Duration,
        done: impl Fn(&[Hook]) -> bool,
    ) -> Vec<Hook> {
        let started = Instant::now();
        loop {
            let hooks = self.hooks();
            if done(&hooks) {
                return hooks;
            }
            if started.elapsed() > within {
                panic!(
                    "{what}: not within {within:?}; received:\n{}",
                    describe(&hooks)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls until `user` was delivered exactly `kinds` (a prefix of it so
    /// far is fine; anything else fails at once).
    pub(crate) async fn wait_user(&self, user: &str, kinds: &[&str], within: Duration) {
        let started = Instant::now();
        loop {
            let delivered = self.delivered_of(user);
            if delivered == kinds {
                return;
            }
            assert!(
                kinds.starts_with(&delivered.iter().map(String::as_str).collect::<Vec<_>>()),
                "{user}: delivered {delivered:?}, expected {kinds:?}:\n{}",
                describe(&self.hooks())
            );
            assert!(
                started.elapsed() < within,
                "{user}: {delivered:?} after {within:?}, expected {kinds:?}:\n{}",
                describe(&self.hooks())
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The requests, one a line, for failure messages.
pub(crate) fn describe(hooks: &[Hook]) -> String {
    let first = hooks.first().map(|hook| hook.arrived);
    hooks
        .iter()
        .map(|hook| {
            let at = first.map_or(0.0, |first| {
                hook.arrived.duration_since(first).as_secs_f64()
            });
            format!(
                "  +{at:.3}s {} {} {} → {:?}",
                hook.id, hook.kind, hook.user, hook.answer
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The API settings with webhooks to `receiver` and the test's grace time.
pub(crate) fn webhook_settings(receiver: &Receiver) -> Settings {
    let mut settings = settings_with_api();
    settings.webhooks.url = Some(receiver.url.clone());
    settings.webhooks.secret = Some(SecretString::from(HOOK_SECRET));
    settings.webhooks.offline_grace_secs = GRACE_SECS;
    settings
}

/// The environment of a `socket-server` process with webhooks to `receiver`
/// (`redis_url`: scaled).
pub(crate) fn webhook_env(
    receiver: &Receiver,
    redis_url: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut env = node_env(redis_url, "info");
    env.push(("APP_WEBHOOKS__URL", receiver.url.clone()));
    env.push(("APP_WEBHOOKS__SECRET", HOOK_SECRET.to_owned()));
    env.push(("APP_WEBHOOKS__OFFLINE_GRACE_SECS", GRACE_SECS.to_string()));
    env
}

/// A socket-server node in this process, stopped (as SIGTERM does) when
/// dropped.
pub(crate) struct Node {
    pub(crate) url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Node {
    /// Binds, builds and runs a node with `settings`; ready. An embedded node
    /// has no web-frontend: the tests' tokens are issued after its first
    /// second, so that none waits for a revocation list that never comes.
    pub(crate) async fn start(settings: &Settings) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let node = socket_server::Application::build_with_listener(settings, listener)
            .await
            .expect("a socket-server node builds");
        let started = claims::unix_now();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(node.run_until(async move {
            let _ = stopped.await;
        }));
        wait_ready(&url, READY_WITHIN).await;
        after_the_second(started).await;
        Self { url, _stop: stop }
    }
}

/// Returns once the Unix second `second` is over.
pub(crate) async fn after_the_second(second: i64) {
    while claims::unix_now() <= second {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two nodes on a Redis of their own, with webhooks to `receiver`.
pub(crate) struct Cluster {
    pub(crate) nodes: [Node; 2],
    _redis: RedisServer,
}

impl Cluster {
    pub(crate) async fn start(receiver: &Receiver) -> Self {
        Self::start_with(webhook_settings(receiver)).await
    }

    /// Two nodes with `settings` and the Redis.
    pub(crate) async fn start_with(mut settings: Settings) -> Self {
        let redis = RedisServer::start().await;
        settings.redis.url = Some(SecretString::from(redis.url()));
        let nodes = [Node::start(&settings).await, Node::start(&settings).await];
        Self {
            nodes,
            _redis: redis,
        }
    }

    pub(crate) fn url(&self, node: usize) -> &str {
        &self.nodes[node].url
    }
}

/// [`webhook_settings`] on `redis`.
pub(crate) fn scaled_settings(receiver: &Receiver, redis: &RedisServer) -> Settings {
    let mut settings = webhook_settings(receiver);
    settings.redis.url = Some(SecretString::from(redis.url()));
    settings
}

/// A `socket-server` process with webhooks to `receiver`, ready, past its
/// first second.
pub(crate) async fn start_process(
    receiver: &Receiver,
    redis_url: Option<&str>,
) -> SocketServerProcess {
    let started = claims::unix_now();
    let process = SocketServerProcess::start(&webhook_env(receiver, redis_url)).await;
    wait_ready(&process.url, READY_WITHIN).await;
    after_the_second(started).await;
    process
}

/// Polls until the process says it holds the sender's lease.
pub(crate) async fn wait_sender(process: &SocketServerProcess) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !process
        .output()
        .contains("this node sends the presence webhooks")
    {
        assert!(
            Instant::now() < deadline,
            "the process never became the sender:\n{}",
            process.output()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A socket of `user` (its `n`th login session), welcomed.
pub(crate) async fn connect(url: &str, user: &str, n: u32) -> SioClient {
    let tag: String = user.bytes().map(|byte| format!("{byte:02x}")).collect();
    SioClient::connect_with_auth(url, &token_of_session(user, &format!("sid-{tag}-{n:04}")))
        .await
        .unwrap_or_else(|error| panic!("{user} connects to {url}: {error:#}"))
}

/// Connects `user` on `url` and waits for its `user.online`: every event
/// the node made before is in by then (the barrier). Returns the socket.
pub(crate) async fn barrier(receiver: &Receiver, url: &str, user: &str) -> SioClient {
    let socket = connect(url, user, 0).await;
    receiver
        .wait_user(user, &[ONLINE], Duration::from_secs(15))
        .await;
    socket
}

/// One sample of `url`'s `/metrics` (`name` with its labels), 0 when absent.
pub(crate) async fn metric(url: &str, name: &str) -> u64 {
    let text = http_client()
        .get(format!("{url}/metrics"))
        .send()
        .await
        .expect("/metrics")
        .text()
        .await
        .expect("/metrics text");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// Polls `url`'s `name` until it is `expected`.
pub(crate) async fn metric_becomes(url: &str, name: &str, expected: u64, within: Duration) {
    let started = Instant::now();
    loop {
        let now = metric(url, name).await;
        if now == expected {
            return;
        }
        assert!(
            started.elapsed() < within,
            "{url} {name}: {now}, not {expected} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sequence(kinds: &[&str]) -> Vec<String> {
    kinds.iter().map(|kind| (*kind).to_owned()).collect()
}

/// The whole record: exactly `expected` per user, every request delivered
/// at its first try (200), no duplicate, none refused.
fn assert_exactly(receiver: &Receiver, expected: &[(&str, &[&str])]) {
    let expected: BTreeMap<String, Vec<String>> = expected
        .iter()
        .map(|(user, kinds)| ((*user).to_owned(), sequence(kinds)))
        .collect();
    let hooks = receiver.hooks();
    assert_eq!(receiver.delivered(), expected, "{}", describe(&hooks));
    assert!(
        hooks.iter().all(|hook| hook.answer == Some(200)),
        "{}",
        describe(&hooks)
    );
    assert!(receiver.duplicates().is_empty(), "{}", describe(&hooks));
    receiver.assert_clean();
}

const SOON: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_online_at_the_first_socket_nothing_for_a_second_socket_or_a_reload_offline_after_the_grace_time()
 {
    let receiver = Receiver::start().await;
    let node = Node::start(&webhook_settings(&receiver)).await;
    let url = node.url.as_str();

    // The first socket: user.online, at once, stamped with the connect.
    let before = now_ms();
    let ann = connect(url, "ann", 1).await;
    receiver.wait_user("ann", &[ONLINE], SOON).await;
    let online = &receiver.hooks()[0];
    assert!(
        (before - 50..=now_ms()).contains(&online.at_ms),
        "user.online's timestamp {} is its socket's connect ({before}…)",
        online.at_ms
    );

    // A second socket of the same user: nothing.
    let ann_2 = connect(url, "ann", 2).await;
    let _b1 = barrier(&receiver, url, "barrier-1").await;
    assert_eq!(receiver.delivered_of("ann"), [ONLINE]);

    // A reload: both sockets gone, one back within the grace time: nothing,
    // even once the grace time is over.
    ann.disconnect().await.expect("disconnects");
    ann_2.disconnect().await.expect("disconnects");
    let gone = Instant::now();
    let ann = connect(url, "ann", 3).await;
    let away = gone.elapsed();
    assert!(away < GRACE / 2, "the reload took {away:?}");
    tokio::time::sleep(GRACE + Duration::from_millis(500)).await;
    let _b2 = barrier(&receiver, url, "barrier-2").await;
    assert_eq!(receiver.delivered_of("ann"), [ONLINE]);

    // The last socket closes: user.offline once the grace time is over,
    // stamped with the close.
    let closed_ms = now_ms();
    ann.disconnect().await.expect("disconnects");
    let closed = Instant::now();
    receiver.wait_user("ann", &[ONLINE, OFFLINE], SOON).await;
    let offline = receiver
        .hooks()
        .into_iter()
        .rfind(|hook| hook.user == "ann")
        .expect("ann's user.offline");
    let after = offline.arrived.duration_since(closed);
    assert!(
        after >= GRACE - Duration::from_millis(50),
        "user.offline {after:?} after the close, before the grace time"
    );
    assert!(
        (closed_ms..=closed_ms + 500).contains(&offline.at_ms),
        "user.offline's timestamp {} is the close's ({closed_ms})",
        offline.at_ms
    );

    // Back: online, then offline again — in order, per user.
    let ann = connect(url, "ann", 4).await;
    receiver
        .wait_user("ann", &[ONLINE, OFFLINE, ONLINE], SOON)
        .await;
    ann.disconnect().await.expect("disconnects");
    receiver
        .wait_user("ann", &[ONLINE, OFFLINE, ONLINE, OFFLINE], SOON)
        .await;

    assert_exactly(
        &receiver,
        &[
            ("ann", &[ONLINE, OFFLINE, ONLINE, OFFLINE]),
            ("barrier-1", &[ONLINE]),
            ("barrier-2", &[ONLINE]),
        ],
    );
    metric_becomes(url, "authbridge_webhooks_sent_total", 6, SOON).await;
    for (name, value) in [
        ("authbridge_webhooks_retried_total", 0),
        ("authbridge_webhooks_failed_total{reason=\"gone\"}", 0),
        ("authbridge_webhooks_failed_total{reason=\"expired\"}", 0),
        ("authbridge_webhooks_dropped_total", 0),
        ("authbridge_webhooks_pending", 0),
        ("authbridge_webhooks_oldest_pending_seconds", 0),
    ] {
        assert_eq!(metric(url, name).await, value, "{name}");
    }
}

/// Now, in ms since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_for_20_s_gets_every_event_afterwards_in_order_with_the_same_ids() {
    let receiver = Receiver::start().await;
    let failing = Duration::from_secs(20);
    receiver.fail_for(failing, StatusCode::INTERNAL_SERVER_ERROR);
    let failing_since = Instant::now();
    let node = Node::start(&webhook_settings(&receiver)).await;
    let url = node.url.as_str();

    // Several users' transitions while the receiver fails: r1's user.online
    // is tried again and again, the others wait behind it.
    let r1 = connect(url, "r1", 1).await;
    receiver
        .wait("the first try", SOON, |hooks| !hooks.is_empty())
        .await;
    let r2 = connect(url, "r2", 1).await;
    let r3 = connect(url, "r3", 1).await;
    r1.disconnect().await.expect("disconnects");
    // r2 reloads: nothing.
    r2.disconnect().await.expect("disconnects");
    let _r2 = connect(url, "r2", 2).await;
    tokio::time::sleep(GRACE + Duration::from_millis(500)).await;
    let r1 = connect(url, "r1", 2).await;
    r3.disconnect().await.expect("disconnects");
    tokio::time::sleep(GRACE + Duration::from_millis(500)).await;
    assert!(
        receiver.delivered().is_empty(),
        "nothing is delivered while the receiver fails"
    );
    assert_eq!(metric(url, "authbridge_webhooks_pending").await, 6);

    let expected = [
        ("r1", &[ONLINE, OFFLINE, ONLINE][..]),
        ("r2", &[ONLINE]),
        ("r3", &[ONLINE, OFFLINE]),
    ];
    for (user, kinds) in expected {
        receiver
            .wait_user(user, kinds, Duration::from_secs(60))
            .await;
    }
    let hooks = receiver.hooks();
    let first_ok = hooks
        .iter()
        .position(|hook| hook.answer == Some(200))
        .expect("a delivery");
    // Until the receiver takes events again, the same event (same id, a
    // fresh timestamp and signature each time) on each try, after about 1 s,
    // then twice as long each time (±20 %).
    let (failed, delivered) = hooks.split_at(first_ok);
    assert!(failed.len() >= 4, "{}", describe(&hooks));
    assert!(
        failed
            .iter()
            .chain(&delivered[..1])
            .all(|hook| hook.id == failed[0].id && hook.user == "r1" && hook.kind == ONLINE),
        "every try before the first 200 is r1's user.online:\n{}",
        describe(&hooks)
    );
    assert!(failed.iter().all(|hook| hook.answer == Some(500)));
    assert!(
        delivered[0].arrived.duration_since(failing_since) >= failing,
        "delivered while the receiver failed"
    );
    let tries: Vec<Instant> = hooks[..=first_ok].iter().map(|hook| hook.arrived).collect();
    for (n, pair) in tries.windows(2).enumerate() {
        let gap = pair[1].duration_since(pair[0]).as_secs_f64();
        let wait = 2_f64.powi(i32::try_from(n).expect("few tries")).min(60.0);
        assert!(
            (0.8 * wait - 0.05..=1.2 * wait + 0.5).contains(&gap),
            "try {} came {gap:.2} s after the previous one, not about {wait} s:\n{}",
            n + 2,
            describe(&hooks)
        );
    }
    // Afterwards every event once, at its first try.
    assert!(
        delivered.iter().all(|hook| hook.answer == Some(200)),
        "{}",
        describe(&hooks)
    );
    assert_eq!(delivered.len(), 6, "{}", describe(&hooks));
    assert!(receiver.duplicates().is_empty());
    receiver.assert_clean();
    metric_becomes(url, "authbridge_webhooks_sent_total", 6, SOON).await;
    assert_eq!(
        metric(url, "authbridge_webhooks_retried_total").await,
        failed.len() as u64,
        "one retry counted per failed try"
    );
    assert_eq!(metric(url, "authbridge_webhooks_pending").await, 0);
    drop(r1);
    eprintln!(
        "webhooks: delivered {:.1} s after the receiver began failing, after {} tries",
        delivered[0]
            .arrived
            .duration_since(failing_since)
            .as_secs_f64(),
        failed.len() + 1
    );
}

/// One node, or two on one Redis: the URLs of two nodes (the same twice in
/// the embedded mode) and what keeps them running.
pub(crate) enum Nodes {
    Embedded(Node),
    Scaled(Box<Cluster>),
}

impl Nodes {
    pub(crate) async fn start(scaled: bool, receiver: &Receiver) -> Self {
        Self::start_with(scaled, webhook_settings(receiver)).await
    }

    /// With `settings` (and, scaled, a Redis of their own).
    pub(crate) async fn start_with(scaled: bool, settings: Settings) -> Self {
        if scaled {
            Self::Scaled(Box::new(Cluster::start_with(settings).await))
        } else {
            Self::Embedded(Node::start(&settings).await)
        }
    }

    pub(crate) fn urls(&self) -> [&str; 2] {
        match self {
            Self::Embedded(node) => [&node.url, &node.url],
            Self::Scaled(cluster) => [cluster.url(0), cluster.url(1)],
        }
    }

    /// `name`, summed over the nodes.
    pub(crate) async fn metric(&self, name: &str) -> u64 {
        match self {
            Self::Embedded(node) => metric(&node.url, name).await,
            Self::Scaled(cluster) => {
                metric(cluster.url(0), name).await + metric(cluster.url(1), name).await
            }
        }
    }
}

async fn gone_stops_that_event_and_the_next_ones_go_on(scaled: bool) {
    let receiver = Receiver::start().await;
    receiver.gone_next_of("gone");
    let nodes = Nodes::start(scaled, &receiver).await;
    let [a, b] = nodes.urls();

    let gone = connect(a, "gone", 1).await;
    let gone_online = receiver
        .wait("gone's user.online", SOON, |hooks| {
            hooks.iter().any(|hook| hook.user == "gone")
        })
        .await
        .into_iter()
        .find(|hook| hook.user == "gone")
        .expect("gone's user.online");
    assert_eq!(gone_online.kind, ONLINE);
    let _other = connect(b, "other", 1).await;
    gone.disconnect().await.expect("disconnects");
    // What comes after the refused event is delivered: so the sender is past
    // it (it sends in order), and never tries it again.
    receiver.wait_user("other", &[ONLINE], SOON).await;
    receiver.wait_user("gone", &[OFFLINE], SOON).await;
    let hooks = receiver.hooks();
    let tries: Vec<_> = hooks
        .iter()
        .filter(|hook| hook.id == gone_online.id)
        .collect();
    assert_eq!(tries.len(), 1, "410 is not retried:\n{}", describe(&hooks));
    assert_eq!(tries[0].answer, Some(410));
    assert_eq!(hooks.len(), 3, "{}", describe(&hooks));
    assert!(receiver.duplicates().is_empty());
    receiver.assert_clean();
    let failed_gone = "authbridge_webhooks_failed_total{reason=\"gone\"}";
    assert_eq!(nodes.metric(failed_gone).await, 1);
    assert_eq!(nodes.metric("authbridge_webhooks_retried_total").await, 0);
    let started = Instant::now();
    while nodes.metric("authbridge_webhooks_sent_total").await != 2 {
        assert!(started.elapsed() < SOON, "sent_total is not 2");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_410_stops_that_event_and_the_next_ones_go_on() {
    gone_stops_that_event_and_the_next_ones_go_on(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaled_410_stops_that_event_and_the_next_ones_go_on() {
    gone_stops_that_event_and_the_next_ones_go_on(true).await;
}

/// Connects `users` (one socket each) to `url` while the receiver holds
/// every request: the first event is in flight, the others queue. Returns
/// the sockets once `pending` events are pending on `gauge_url`.
pub(crate) async fn queue_while_held(
    receiver: &Receiver,
    url: &str,
    users: &[&str],
    gauge_url: &str,
    pending: u64,
) -> Vec<SioClient> {
    receiver.hold();
    let mut sockets = Vec::new();
    for user in users {
        sockets.push(connect(url, user, 1).await);
    }
    receiver
        .wait("a request held", SOON, |hooks| {
            hooks.iter().any(|hook| hook.answer.is_none())
        })
        .await;
    metric_becomes(
        gauge_url,
        "authbridge_webhooks_pending",
        pending,
        Duration::from_secs(5),
    )
    .await;
    sockets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_sigterm_drains_the_events_queued_before_the_stop_within_5_s() {
    // Drained: the receiver holds the first event while the stop begins, and
    // answers again 2 s into it.
    let receiver = Receiver::start().await;
    let mut process = start_process(&receiver, None).await;
    let users = ["d1", "d2", "d3"];
    let _sockets = queue_while_held(&receiver, &process.url, &users, &process.url, 3).await;
    process.signal("TERM");
    let stopped = Instant::now();
    // The sockets are closed within milliseconds: the drain is under way.
    tokio::time::sleep(Duration::from_secs(2)).await;
    receiver.release();
    let status = process.exited(Duration::from_secs(10)).await;
    let took = stopped.elapsed();
    assert!(status.success(), "a clean stop:\n{}", process.output());
    for user in users {
        assert_eq!(
            receiver.delivered_of(user),
            [ONLINE],
            "{user}:\n{}",
            describe(&receiver.hooks())
        );
    }
    assert!(
        took < Duration::from_secs(5) + Duration::from_millis(1500),
        "stopped in {took:?}"
    );
    assert!(
        !process
            .output()
            .contains("some presence events were not sent before the shutdown"),
        "{}",
        process.output()
    );
    receiver.assert_clean();

    // Not drained: a receiver that never answers holds the stop 5 s, no
    // more.
    let receiver = Receiver::start().await;
    let mut process = start_process(&receiver, None).await;
    let _sockets = queue_while_held(&receiver, &process.url, &users, &process.url, 3).await;
    process.signal("TERM");
    let stopped = Instant::now();
    let status = process.exited(Duration::from_secs(15)).await;
    let took = stopped.elapsed();
    assert!(status.success(), "a clean stop:\n{}", process.output());
    assert!(
        took >= Duration::from_millis(4800) && took < Duration::from_secs(8),
        "stopped in {took:?}, after the 5 s drain"
    );
    assert!(
        process
            .output()
            .contains("some presence events were not sent before the shutdown"),
        "{}",
        process.output()
    );
    eprintln!("webhooks: a stop with an unanswered receiver took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_does_not_answer_within_10_s_gets_the_event_again() {
    let receiver = Receiver::start().await;
    receiver.slow(Duration::from_secs(15));
    let node = Node::start(&webhook_settings(&receiver)).await;
    let url = node.url.as_str();

    let _slow = connect(url, "slow", 1).await;
    receiver
        .wait("the first try", SOON, |hooks| !hooks.is_empty())
        .await;
    receiver.slow(Duration::ZERO);
    receiver
        .wait_user("slow", &[ONLINE], Duration::from_secs(20))
        .await;
    let hooks = receiver.hooks();
    assert_eq!(hooks.len(), 2, "{}", describe(&hooks));
    assert_eq!(hooks[0].id, hooks[1].id, "the same event, again");
    assert_eq!(hooks[0].answer, None, "the first try was given up");
    let gap = hooks[1].arrived.duration_since(hooks[0].arrived);
    assert!(
        gap >= Duration::from_millis(10_700) && gap <= Duration::from_millis(11_700),
        "tried again {gap:?} after the first try: 10 s without an answer, then about 1 s"
    );
    assert_eq!(metric(url, "authbridge_webhooks_retried_total").await, 1);
    receiver.assert_clean();
}

//! The server API (`/api`) end to end, in both modes: one socket-server node
//! (beside its web-frontend) or two nodes sharing a real Redis. This module
//! holds the harness the `api_*` modules share, and runs
//! `tests/js/api.test.mjs`: the official `socket.io-client` 4.x receiving what
//! the API publishes, revokes and disconnects, with the sockets spread over
//! both nodes and the requests sent through either.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use settings::Settings;

use crate::helpers::{
    API_KEY, SECRET, TestSystem, settings_with_api, spawn_system_with, token_of_session, wait_ready,
};
use crate::node;
use crate::redis::RedisServer;
use crate::socketio::SioClient;

/// How long a scaled node may take to be set up on a fresh Redis.
const READY_WITHIN: Duration = Duration::from_secs(20);
/// How long presence may take to show a change (the scaled mode batches it).
pub(crate) const PRESENCE_WITHIN: Duration = Duration::from_secs(5);

/// One node, or two on one Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Embedded,
    Scaled,
}

/// Socket-server nodes with the API on. `urls` names two nodes; in the
/// embedded mode both are the one node, so a test written for two runs on
/// one unchanged.
pub(crate) struct ApiNodes {
    pub(crate) urls: [String; 2],
    pub(crate) http: reqwest::Client,
    /// The embedded node and its web-frontend: they stop when this is dropped.
    _system: Option<TestSystem>,
    /// The scaled mode's Redis.
    pub(crate) redis: Option<RedisServer>,
}

/// A JSON answer of the API.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) text: String,
    pub(crate) json: Value,
}

impl Answer {
    pub(crate) async fn of(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("an answer's body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            text,
            json,
        }
    }
}

impl ApiNodes {
    pub(crate) async fn start(mode: Mode) -> Self {
        match mode {
            Mode::Embedded => Self::embedded_with(settings_with_api()).await,
            Mode::Scaled => Self::scaled_with(settings_with_api()).await,
        }
    }

    /// One socket-server and its web-frontend (whose revocation notices tell
    /// the socket-server its list is complete), with `settings`.
    pub(crate) async fn embedded_with(settings: Settings) -> Self {
        let system = spawn_system_with(settings).await;
        let url = system.socket_url.clone();
        Self {
            urls: [url.clone(), url],
            http: http_client(),
            _system: Some(system),
            redis: None,
        }
    }

    /// Two socket-server nodes on a Redis of their own, ready.
    pub(crate) async fn scaled_with(mut settings: Settings) -> Self {
        let redis = RedisServer::start().await;
        settings.redis.url = Some(SecretString::from(redis.url()));
        let urls = [start_node(&settings).await, start_node(&settings).await];
        for url in &urls {
            wait_ready(url, READY_WITHIN).await;
        }
        Self {
            urls,
            http: http_client(),
            _system: None,
            redis: Some(redis),
        }
    }

    /// Nodes running elsewhere (a process, or started by the test).
    pub(crate) fn at(urls: [String; 2]) -> Self {
        Self {
            urls,
            http: http_client(),
            _system: None,
            redis: None,
        }
    }

    /// `POST {path}` on node `node`, with the key.
    pub(crate) fn post(&self, node: usize, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.urls[node]))
            .bearer_auth(API_KEY)
    }

    /// `GET {path}` on node `node`, with the key.
    pub(crate) fn get(&self, node: usize, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.urls[node]))
            .bearer_auth(API_KEY)
    }

    /// `POST /api/publish` with `body` through node `node`, carried out: its
    /// answer `{"id", "sockets"}`.
    pub(crate) async fn publish(&self, node: usize, body: &Value) -> Value {
        let answer = Answer::of(
            self.post(node, "/api/publish")
                .json(body)
                .send()
                .await
                .expect("a publish request"),
        )
        .await;
        assert_eq!(answer.status, 200, "publish {body}: {}", answer.text);
        assert!(answer.json["id"].is_string(), "{}", answer.text);
        answer.json
    }

    /// `GET {path}` (a presence query) through node `node`: its JSON answer.
    pub(crate) async fn presence(&self, node: usize, path: &str) -> Value {
        let answer = Answer::of(
            self.get(node, path)
                .send()
                .await
                .expect("a presence request"),
        )
        .await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text);
        answer.json
    }

    /// Polls `GET {path}` on node `node` until it answers `expected`.
    pub(crate) async fn presence_becomes(
        &self,
        node: usize,
        path: &str,
        expected: &Value,
        within: Duration,
    ) -> Duration {
        let started = Instant::now();
        loop {
            let now = self.presence(node, path).await;
            if &now == expected {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "{path} on node {node}: {now}, not {expected} within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A client that sends what the test says: no cookies, no `Origin`.
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// Binds first, then runs a socket-server node with `settings` in this
/// process; its URL (it may not be ready yet).
pub(crate) async fn start_node(settings: &Settings) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let node = socket_server::Application::build_with_listener(settings, listener)
        .await
        .expect("a socket-server node builds");
    tokio::spawn(node.run_until(std::future::pending()));
    url
}

#[tokio::test]
async fn turning_the_api_on_leaves_socket_io_and_the_other_routes_as_they_were() {
    for mode in [Mode::Embedded, Mode::Scaled] {
        let nodes = ApiNodes::start(mode).await;
        for url in &nodes.urls {
            let handshake = nodes
                .http
                .get(format!("{url}/socket.io/?EIO=4&transport=polling"))
                .send()
                .await
                .expect("a polling handshake");
            assert_eq!(handshake.status(), 200, "{mode:?}: Engine.IO at {url}");
            for path in ["/healthz", "/readyz", "/metrics"] {
                let answer = nodes.http.get(format!("{url}{path}")).send().await;
                assert_eq!(answer.expect(path).status(), 200, "{mode:?}: {url}{path}");
            }
            let socket = SioClient::connect_with_auth(url, &token_of_session("gonzalo", "sid-a"))
                .await
                .unwrap_or_else(|error| panic!("{mode:?}: a socket at {url}: {error:#}"));
            assert_eq!(socket.welcome(), json!({"username": "gonzalo"}));
        }
    }
}

/// `redis-cli` on the test's Redis: the answer to one command.
async fn redis_cli(redis: &RedisServer, args: &[&str]) -> String {
    let port = redis
        .url()
        .rsplit(':')
        .next()
        .and_then(|tail| tail.split('/').next())
        .map(str::to_owned);
    let output = tokio::process::Command::new("redis-cli")
        .args(["-p", &port.expect("a port")])
        .args(args)
        .output()
        .await
        .expect("redis-cli runs (Debian package redis-tools, with redis-server)");
    assert!(output.status.success(), "redis-cli {args:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_is_kept_in_redis_no_longer_than_a_token_of_the_session_can_live() {
    let nodes = ApiNodes::start(Mode::Scaled).await;
    let redis = nodes.redis.as_ref().expect("the scaled mode's Redis");
    let settings = settings_with_api();
    let longest = settings.jwt.ttl_secs + settings.jwt.leeway_secs;
    let now = claims::unix_now();

    for (sid, until, kept_at_most) in [
        ("sid-far-future-0123456789", i64::MAX, longest),
        (
            "sid-in-a-century-0123456789",
            now + 100 * 365 * 24 * 3600,
            longest,
        ),
        ("sid-in-a-minute-0123456789", now + 60, 60),
    ] {
        let answer = Answer::of(
            nodes
                .post(1, "/api/sessions/revoke")
                .json(&json!({"sid": sid, "until": until}))
                .send()
                .await
                .expect("a revoke"),
        )
        .await;
        assert_eq!(answer.status, 200, "{sid}: {}", answer.text);
        assert_eq!(answer.json, json!({"sockets": 0}));

        let key = format!("{}{sid}", claims::REVOKED_KEY_PREFIX);
        let ttl: u64 = redis_cli(redis, &["TTL", &key])
            .await
            .parse()
            .expect("a TTL");
        assert!(
            ttl > 0 && ttl <= kept_at_most,
            "{sid}: kept {ttl} s, at most {kept_at_most} s"
        );
        for url in &nodes.urls {
            let refusal = SioClient::refusal_with_auth(
                url,
                Some(json!({"token": token_of_session("gonzalo", sid)})),
            )
            .await
            .expect("refused");
            assert_eq!(refusal, "token revoked", "{sid} at {url}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_away_the_api_answers_503_and_delivers_nothing_then_serves_again() {
    let mut nodes = ApiNodes::start(Mode::Scaled).await;
    let token = token_of_session("gonzalo", "sid-redis-away-0123456789");
    let sockets = [
        SioClient::connect_with_auth(&nodes.urls[0], &token)
            .await
            .expect("on A"),
        SioClient::connect_with_auth(&nodes.urls[1], &token)
            .await
            .expect("on B"),
    ];
    let publish = json!({"to": "user:gonzalo", "event": "notice", "data": "lost"});

    nodes.redis.as_mut().expect("Redis").kill().await;
    // All or nothing: not even the sockets of the node asked get it.
    for node in 0..2 {
        let request = nodes.post(node, "/api/publish").json(&publish);
        let answer = Answer::of(request.send().await.expect("an answer")).await;
        assert_eq!(answer.status, 503, "node {node}: {}", answer.text);
        assert!(answer.json["error"].is_string(), "{}", answer.text);
        let retry_after = answer.headers.get("retry-after").map(|v| v.as_bytes());
        assert_eq!(retry_after, Some(&b"1"[..]));
        let presence = nodes
            .get(node, "/api/presence")
            .send()
            .await
            .expect("an answer");
        assert_eq!(presence.status(), 503, "node {node}");
    }
    let redis = nodes.redis.as_mut().expect("Redis");
    redis.restart().await;
    for url in &nodes.urls {
        wait_ready(url, READY_WITHIN).await;
    }
    let back = json!({"to": "user:gonzalo", "event": "notice", "data": "back"});
    let answer = nodes.publish(1, &back).await;

    assert_eq!(answer["sockets"], 2);
    for socket in &sockets {
        let notice = socket.next_event("notice", Duration::from_secs(5)).await;
        assert_eq!(
            notice.expect("the notice"),
            "back",
            "the refused one never came"
        );
    }
}

async fn run_api_suite(nodes: &ApiNodes) {
    node::require_package("socket.io-client");
    node::require_package("jose");
    let env = [
        ("SOCKET_URLS", nodes.urls.join(",")),
        ("API_KEY", API_KEY.to_owned()),
        ("JWT_SECRET", SECRET.to_owned()),
    ];
    // The suite takes a few seconds; the deadline only stops a hung run.
    node::run_suite("api.test.mjs", &env, Duration::from_secs(120)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_gets_what_the_api_publishes_revokes_and_disconnects_on_one_node() {
    let nodes = ApiNodes::start(Mode::Embedded).await;
    run_api_suite(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_gets_what_the_api_publishes_revokes_and_disconnects_across_two_nodes()
{
    let nodes = ApiNodes::start(Mode::Scaled).await;
    run_api_suite(&nodes).await;
}

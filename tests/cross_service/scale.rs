//! The scaled mode: two web-frontend nodes and two socket-server nodes on one
//! real Redis behave as one system, and survive Redis going away.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use secrecy::SecretString;
use serde_json::json;

use crate::helpers::{SECOND_PASSWORD, SECOND_USER, browser, settings};
use crate::redis::RedisServer;
use crate::socketio::SioClient;

const WAIT: Duration = Duration::from_secs(5);
/// How long a node may take to (re)connect to Redis.
const RECOVERY: Duration = Duration::from_secs(20);

/// Two nodes of each service sharing one Redis.
struct Cluster {
    web: [String; 2],
    sockets: [String; 2],
    http: reqwest::Client,
}

/// Every node started on `redis_url`, and ready.
async fn cluster(redis_url: &str) -> Cluster {
    let cluster = start_nodes(redis_url).await;
    cluster.all_ready(RECOVERY).await;
    cluster
}

/// Binds the four listeners first (so each node's settings can name the
/// others), then starts every node on `redis_url`; they listen at once,
/// ready or not.
async fn start_nodes(redis_url: &str) -> Cluster {
    let bind = || std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let listeners = [bind(), bind(), bind(), bind()];
    let url = |listener: &std::net::TcpListener| {
        format!("http://{}", listener.local_addr().expect("addr"))
    };
    let web = [url(&listeners[0]), url(&listeners[1])];
    let sockets = [url(&listeners[2]), url(&listeners[3])];
    let mut settings = settings();
    settings.redis.url = Some(SecretString::from(redis_url));
    settings.web.socket_url = sockets[0].clone();
    settings.socket.allowed_origins.extend(web.iter().cloned());
    let [web_a, web_b, socket_a, socket_b] = listeners;
    for listener in [web_a, web_b] {
        let node = web_frontend::Application::build_with_listener(&settings, listener)
            .await
            .expect("a web-frontend node builds");
        tokio::spawn(node.run_until(std::future::pending()));
    }
    for listener in [socket_a, socket_b] {
        let node = socket_server::Application::build_with_listener(&settings, listener)
            .await
            .expect("a socket-server node builds");
        tokio::spawn(node.run_until(std::future::pending()));
    }
    Cluster {
        web,
        sockets,
        http: reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .expect("client"),
    }
}

impl Cluster {
    fn nodes(&self) -> impl Iterator<Item = &String> {
        self.web.iter().chain(&self.sockets)
    }

    async fn readyz(&self, node: &str) -> StatusCode {
        match self.http.get(format!("{node}/readyz")).send().await {
            Ok(response) => response.status(),
            Err(error) => panic!("{node}/readyz: {error}"),
        }
    }

    /// Polls every node's `/readyz` until all answer 200.
    async fn all_ready(&self, within: Duration) {
        self.all_readyz(StatusCode::OK, within).await;
    }

    /// Polls every node's `/readyz` until all answer `status`.
    async fn all_readyz(&self, status: StatusCode, within: Duration) {
        let deadline = Instant::now() + within;
        for node in self.nodes() {
            while self.readyz(node).await != status {
                assert!(
                    Instant::now() < deadline,
                    "{node}/readyz not {status} within {within:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    async fn log_in(&self, node: usize, username: &str, password: &str) -> reqwest::Client {
        let browser = browser();
        let response = self.try_log_in(&browser, node, username, password).await;
        assert_eq!(response.status(), 303, "login on web node {node}");
        browser
    }

    /// The answer to a login form on web node `node`, whatever it is.
    async fn try_log_in(
        &self,
        browser: &reqwest::Client,
        node: usize,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        browser
            .post(format!("{}/login", self.web[node]))
            .form(&[("username", username), ("password", password)])
            .send()
            .await
            .expect("login request")
    }

    async fn token(&self, browser: &reqwest::Client, node: usize) -> String {
        let response = browser
            .get(format!("{}/getIoConnectionToken", self.web[node]))
            .send()
            .await
            .expect("token request");
        assert_eq!(response.status(), 200, "token from web node {node}");
        response.json().await.expect("a JSON string")
    }

    async fn log_out(&self, browser: &reqwest::Client, node: usize) {
        let response = browser
            .post(format!("{}/logout", self.web[node]))
            .header("Origin", &self.web[node])
            .send()
            .await
            .expect("logout request");
        assert_eq!(response.status(), 303, "logout on web node {node}");
    }

    async fn connect(&self, node: usize, token: &str) -> SioClient {
        SioClient::connect_with_auth(&self.sockets[node], token)
            .await
            .unwrap_or_else(|error| panic!("socket node {node}: {error:#}"))
    }
}

/// The messages `socket` receives next, in order.
async fn texts(socket: &SioClient, count: usize) -> Vec<String> {
    let mut texts = Vec::with_capacity(count);
    for _ in 0..count {
        let message = socket.next_event("message", WAIT).await.expect("a message");
        texts.push(message["text"].as_str().expect("text").to_owned());
    }
    texts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_from_one_web_node_works_on_the_other_and_on_every_socket_node() {
    let redis = RedisServer::start().await;
    let cluster = cluster(&redis.url()).await;
    let browser = cluster.log_in(0, "gonzalo", "password").await;

    let page = browser
        .get(format!("{}/private", cluster.web[1]))
        .send()
        .await
        .expect("private page");
    assert_eq!(page.status(), 200, "web node B knows web node A's session");
    assert!(
        page.text()
            .await
            .expect("body")
            .contains("Welcome gonzalo!")
    );

    let token = cluster.token(&browser, 1).await;
    for node in 0..2 {
        let socket = cluster.connect(node, &token).await;
        assert_eq!(socket.welcome(), json!({"username": "gonzalo"}));
    }
    // The same token from either web node names the same login session.
    let other = cluster.token(&browser, 0).await;
    assert_eq!(sid(&token), sid(&other));
}

fn sid(token: &str) -> String {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a payload");
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    serde_json::from_slice::<serde_json::Value>(&payload).expect("json")["sid"]
        .as_str()
        .expect("sid")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_reaches_every_socket_on_every_node_once_and_in_order() {
    let redis = RedisServer::start().await;
    let cluster = cluster(&redis.url()).await;
    let gonzalo = cluster.log_in(0, "gonzalo", "password").await;
    let alice = cluster.log_in(1, SECOND_USER, SECOND_PASSWORD).await;
    let sender = cluster.connect(0, &cluster.token(&gonzalo, 0).await).await;
    let same_node = cluster.connect(0, &cluster.token(&alice, 1).await).await;
    let other_node = cluster.connect(1, &cluster.token(&alice, 1).await).await;

    // Many lines, then a last one: each socket gets each line once, in order,
    // and nothing after the last (a duplicate would come before it or right
    // after it).
    let sent: Vec<String> = (0..200).map(|i| format!("line {i}")).collect();
    let started = Instant::now();
    for text in &sent {
        sender.emit("message", json!(text)).await.expect("emit");
    }
    for socket in [&sender, &same_node, &other_node] {
        assert_eq!(texts(socket, sent.len()).await, sent);
    }
    let elapsed = started.elapsed();
    for socket in [&sender, &same_node, &other_node] {
        socket
            .expect_no_event("message", Duration::from_millis(300))
            .await
            .expect("no duplicate");
    }

    // One line at a time, from node A to a socket on node B: the latency of
    // a broadcast across nodes.
    let mut latencies = Vec::new();
    for i in 0..200 {
        let text = format!("ping {i}");
        let sent_at = Instant::now();
        sender.emit("message", json!(text)).await.expect("emit");
        let got = other_node.next_event("message", WAIT).await.expect("ping");
        latencies.push(sent_at.elapsed());
        assert_eq!(got["text"], json!(text));
    }
    latencies.sort();
    eprintln!(
        "across nodes over Redis: burst of 200 lines to 3 sockets in {elapsed:?}; \
         one line A → B: p50 {:?}, p99 {:?}, max {:?}",
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 99 / 100],
        latencies[latencies.len() - 1],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_web_node_ends_the_session_on_every_socket_node_within_a_second() {
    let redis = RedisServer::start().await;
    let cluster = cluster(&redis.url()).await;
    let browser = cluster.log_in(0, "gonzalo", "password").await;
    let token = cluster.token(&browser, 0).await;
    let on_a = cluster.connect(0, &token).await;
    let on_b = cluster.connect(1, &token).await;
    // Another user's socket stays.
    let alice = cluster.log_in(1, SECOND_USER, SECOND_PASSWORD).await;
    let bystander = cluster.connect(1, &cluster.token(&alice, 1).await).await;

    cluster.log_out(&browser, 1).await;
    let logged_out = Instant::now();
    for socket in [&on_a, &on_b] {
        let ended = socket
            .next_event("session_ended", Duration::from_secs(1))
            .await
            .expect("session_ended within 1 s of the logout");
        assert_eq!(ended, json!({"reason": "logged out"}));
        socket
            .disconnected(Duration::from_secs(1))
            .await
            .expect("disconnected");
    }
    assert!(logged_out.elapsed() < Duration::from_secs(1));
    for node in 0..2 {
        let refusal =
            SioClient::refusal_with_auth(&cluster.sockets[node], Some(json!({ "token": token })))
                .await
                .expect("a refusal");
        assert_eq!(refusal, "token revoked", "socket node {node}");
    }
    bystander
        .expect_no_event("session_ended", Duration::from_millis(200))
        .await
        .expect("another session is untouched");
    // The old cookie is dead on both web nodes.
    for node in 0..2 {
        let response = browser
            .get(format!("{}/getIoConnectionToken", cluster.web[node]))
            .send()
            .await
            .expect("token request");
        assert_eq!(response.status(), 403, "web node {node}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nodes_survive_redis_going_away_and_work_again_when_it_is_back() {
    let mut redis = RedisServer::start().await;
    let cluster = cluster(&redis.url()).await;
    let browser = cluster.log_in(0, "gonzalo", "password").await;
    let token = cluster.token(&browser, 0).await;
    let on_a = cluster.connect(0, &token).await;

    redis.kill().await;
    // Every node stays up and says what is wrong; what needs Redis is a 503.
    for node in cluster.nodes() {
        let health = cluster.http.get(format!("{node}/healthz")).send().await;
        assert_eq!(health.expect("healthz").status(), 200, "{node} is alive");
    }
    cluster
        .all_readyz(StatusCode::SERVICE_UNAVAILABLE, RECOVERY)
        .await;
    for node in cluster.nodes() {
        let metrics = cluster.http.get(format!("{node}/metrics")).send().await;
        let metrics = metrics.expect("metrics").text().await.expect("body");
        assert!(
            metrics.contains("\nauthbridge_redis_up 0\n"),
            "{node}/metrics: {metrics}"
        );
    }
    let during = browser
        .get(format!("{}/getIoConnectionToken", cluster.web[1]))
        .send()
        .await
        .expect("token request");
    assert_eq!(
        during.status(),
        503,
        "a request that needs the session store"
    );
    assert!(during.headers().contains_key("retry-after"));
    let login = cluster
        .try_log_in(&crate::helpers::browser(), 0, "gonzalo", "password")
        .await;
    assert_eq!(login.status(), 503, "a login cannot be stored");
    // Static files never touch the session store, cookie or not.
    let stylesheet = browser
        .get(format!("{}/static/app.css", cluster.web[0]))
        .send()
        .await
        .expect("stylesheet request");
    assert_eq!(stylesheet.status(), 200);
    // A socket already open still talks to its own node.
    on_a.emit("message", json!("while Redis is away"))
        .await
        .expect("emit");
    assert_eq!(texts(&on_a, 1).await, ["while Redis is away"]);

    redis.restart().await;
    cluster.all_ready(RECOVERY).await;
    // Redis restarted empty: the old session is gone (documented), a new login works.
    let browser = cluster.log_in(1, "gonzalo", "password").await;
    let token = cluster.token(&browser, 0).await;
    let on_b = cluster.connect(1, &token).await;
    let deadline = Instant::now() + RECOVERY;
    // Across nodes again: the adapter has subscribed again by itself.
    loop {
        on_b.emit("message", json!("back")).await.expect("emit");
        match on_a.next_event("message", Duration::from_millis(500)).await {
            Ok(message) if message["text"] == "back" => break,
            Ok(other) => panic!("unexpected message {other}"),
            Err(_) => assert!(
                Instant::now() < deadline,
                "broadcasts did not cross nodes again"
            ),
        }
    }
    cluster.log_out(&browser, 0).await;
    on_b.next_event("session_ended", Duration::from_secs(1))
        .await
        .expect("revocations travel again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_started_before_redis_answer_503_then_serve_when_it_comes() {
    // A port where no Redis listens (yet).
    let mut redis = RedisServer::start().await;
    redis.kill().await;
    let cluster = start_nodes(&redis.url()).await;

    for node in cluster.nodes() {
        assert_eq!(cluster.readyz(node).await, 503, "{node} is not ready");
    }
    for node in &cluster.sockets {
        let handshake = cluster
            .http
            .get(format!("{node}/socket.io/?EIO=4&transport=polling"))
            .send()
            .await
            .expect("handshake request");
        assert_eq!(handshake.status(), 503, "{node}: no socket before Redis");
        assert!(handshake.headers().contains_key("retry-after"));
    }
    let login = cluster
        .try_log_in(&crate::helpers::browser(), 0, "gonzalo", "password")
        .await;
    assert_eq!(login.status(), 503);

    redis.restart().await;
    cluster.all_ready(RECOVERY).await;
    let browser = cluster.log_in(0, "gonzalo", "password").await;
    let token = cluster.token(&browser, 1).await;
    cluster.connect(1, &token).await;
}

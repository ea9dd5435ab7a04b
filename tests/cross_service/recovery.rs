//! Connection state recovery end to end, in both modes: `tests/js/recovery.test.mjs`
//! (the official `socket.io-client` 4.x with its own recovery, beside
//! socket.io-client 2.x and python-socketio) against two sets of nodes — one
//! with the recovery defaults and a web-frontend (logins and logouts), one with
//! a short window and a small history bound — plus the `socket-server` binary,
//! which the suite runs itself for the restart tests. One node per set in the
//! embedded mode; two nodes on a Redis of their own per set in the scaled mode.
//! Here too: rust_socketio sees the v1 events unchanged. The history's bounds
//! and gauge are in `recovery_bounds.rs`.

use std::time::Duration;

use futures_util::FutureExt as _;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use rust_socketio::{Event, Payload};
use secrecy::SecretString;
use serde_json::{Value, json};
use settings::Settings;
use tokio::sync::mpsc;

use crate::api::{ApiNodes, Mode, start_node};
use crate::api_process::socket_server_binary;
use crate::helpers::{
    API_KEY, SECRET, TestSystem, settings_with_api, spawn_system_with, token_of_session, wait_ready,
};
use crate::node;
use crate::redis::RedisServer;
use crate::rooms::PYTHON;

/// The short window of the second set (the "too late" tests wait it out).
pub(crate) const SHORT_SECS: u64 = 2;
/// The second set's history bound per target.
pub(crate) const SHORT_MAX: u32 = 5;

/// Settings with the API on and recovery as given.
pub(crate) fn recovery_settings(secs: u64, max_events: u32) -> Settings {
    let mut settings = settings_with_api();
    settings.socket.recovery_secs = secs;
    settings.socket.recovery_max_events = max_events;
    settings
}

/// One set of nodes: two socket-server URLs (one node twice when embedded), a
/// web-frontend, and the scaled mode's Redis.
struct NodeSet {
    sockets: [String; 2],
    web: String,
    redis: Option<RedisServer>,
    /// The embedded set's services: stopped when dropped.
    _system: Option<TestSystem>,
}

impl NodeSet {
    async fn start(mode: Mode, settings: Settings) -> Self {
        match mode {
            Mode::Embedded => {
                let system = spawn_system_with(settings).await;
                Self {
                    sockets: [system.socket_url.clone(), system.socket_url.clone()],
                    web: system.web_url.clone(),
                    redis: None,
                    _system: Some(system),
                }
            }
            Mode::Scaled => {
                let redis = RedisServer::start().await;
                let mut settings = settings;
                settings.redis.url = Some(SecretString::from(redis.url()));
                let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
                let web = format!("http://{}", listener.local_addr().expect("addr"));
                let frontend = web_frontend::Application::build_with_listener(&settings, listener)
                    .await
                    .expect("a web-frontend node builds");
                tokio::spawn(frontend.run_until(std::future::pending()));
                let sockets = [start_node(&settings).await, start_node(&settings).await];
                for url in sockets.iter().chain([&web]) {
                    wait_ready(url, Duration::from_secs(20)).await;
                }
                Self {
                    sockets,
                    web,
                    redis: Some(redis),
                    _system: None,
                }
            }
        }
    }

    fn redis_url(&self) -> String {
        self.redis
            .as_ref()
            .map(RedisServer::url)
            .unwrap_or_default()
    }
}

async fn run_recovery_suite(mode: Mode) {
    node::require_package("socket.io-client");
    node::require_package("socket.io-client-v2");
    node::require_package("jose");
    let main = NodeSet::start(mode, recovery_settings(120, 1000)).await;
    let short = NodeSet::start(mode, recovery_settings(SHORT_SECS, SHORT_MAX)).await;
    let env = [
        (
            "MODE",
            match mode {
                Mode::Embedded => "embedded",
                Mode::Scaled => "scaled",
            }
            .to_owned(),
        ),
        ("SOCKET_URLS", main.sockets.join(",")),
        ("WEB_URL", main.web.clone()),
        ("SHORT_SOCKET_URLS", short.sockets.join(",")),
        ("SHORT_SECS", SHORT_SECS.to_string()),
        ("SHORT_MAX", SHORT_MAX.to_string()),
        ("MAIN_REDIS_URL", main.redis_url()),
        ("SHORT_REDIS_URL", short.redis_url()),
        (
            "SOCKET_SERVER_BIN",
            socket_server_binary().display().to_string(),
        ),
        ("PACKAGE_ROOT", env!("CARGO_MANIFEST_DIR").to_owned()),
        ("API_KEY", API_KEY.to_owned()),
        ("JWT_SECRET", SECRET.to_owned()),
        ("PYTHON", PYTHON.to_owned()),
    ];
    // About a minute; the deadline only stops a hung run.
    node::run_suite("recovery.test.mjs", &env, Duration::from_secs(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_with_the_official_client_on_one_node() {
    run_recovery_suite(Mode::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_with_the_official_client_across_two_nodes_and_restarts() {
    run_recovery_suite(Mode::Scaled).await;
}

/// What a recording client received: each event with all its arguments.
pub(crate) type Events = mpsc::UnboundedReceiver<(String, Vec<Value>)>;

/// A rust_socketio client with `auth` that records every event; returned once
/// its `welcome` came (rust_socketio's `connect` returns earlier), with the
/// welcome's arguments.
pub(crate) async fn recording_client(url: &str, auth: Value) -> (Client, Events, Vec<Value>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let client = ClientBuilder::new(url)
        .reconnect(false)
        .auth(auth)
        .on_any(move |event: Event, payload: Payload, _: Client| {
            if let Payload::Text(args) = payload {
                let _ = tx.send((event.as_str().to_owned(), args));
            }
            async {}.boxed()
        })
        .connect()
        .await
        .expect("rust_socketio connects");
    let (event, welcome) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a welcome within 5 s")
        .expect("the client runs");
    assert_eq!(event, "welcome");
    (client, rx, welcome)
}

/// The next event that is not `welcome`, with all its arguments.
pub(crate) async fn next_event(events: &mut Events) -> (String, Vec<Value>) {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("an event within 5 s")
            .expect("the client runs");
        if event.0 != "welcome" {
            return event;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_socketio_sees_exactly_the_v1_events_with_recovery_on() {
    for mode in [Mode::Embedded, Mode::Scaled] {
        let nodes = ApiNodes::start(mode).await;
        let (client, mut events, welcome) = recording_client(
            &nodes.urls[1],
            json!({"token": token_of_session("rusty", "sid-rusty-0123456789abcdef")}),
        )
        .await;
        assert_eq!(welcome, [json!({"username": "rusty"})]);

        nodes
            .publish(
                0,
                &json!({"to": "user:rusty", "event": "notice", "data": {"n": 1}}),
            )
            .await;
        client
            .emit("message", json!("from rust"))
            .await
            .expect("a message");
        assert_eq!(
            next_event(&mut events).await,
            ("notice".to_owned(), vec![json!({"n": 1})]),
            "{mode:?}: one argument"
        );
        assert_eq!(
            next_event(&mut events).await,
            (
                "message".to_owned(),
                vec![json!({"from": "rusty", "text": "from rust"})]
            ),
            "{mode:?}: one argument"
        );
        client.disconnect().await.expect("disconnects");
    }
}

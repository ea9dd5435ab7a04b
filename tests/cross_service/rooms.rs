//! Rooms whose permissions travel in the token, end to end: `tests/js/rooms.test.mjs`
//! (the official `socket.io-client` 4.x, and python-socketio through
//! `tests/py/rooms_client.py`) on one node and on two nodes sharing a Redis;
//! and a user's `[[users]] rooms` in a configuration file arriving in the
//! token the web-frontend issues, then allowing exactly those joins.
//! The join flood is in `rooms_flood.rs`, a room of more than 1,000 users in
//! `rooms_presence.rs`, the bare client both use in `rooms_wire.rs`.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use settings::Settings;

use crate::api::{ApiNodes, Mode};
use crate::helpers::{API_KEY, SECRET, log_in_at, spawn_system_with, token_at};
use crate::node;
use crate::socketio::SioClient;

/// Debian's Python: a pyenv shim named `python3` lacks Debian's modules.
pub(crate) const PYTHON: &str = "/usr/bin/python3";

/// `tests/py/rooms_client.py`.
fn python_client() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/rooms_client.py")
}

/// Fails unless Debian's python3-socketio (with python3-websocket) is there.
fn require_python_socketio() {
    let found = std::process::Command::new(PYTHON)
        .args(["-c", "import socketio, websocket"])
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        found,
        "{PYTHON} cannot import socketio and websocket: apt-get install python3-socketio python3-websocket (scripts/test does it)"
    );
}

async fn run_rooms_suite(nodes: &ApiNodes) {
    node::require_package("socket.io-client");
    node::require_package("jose");
    require_python_socketio();
    let env = [
        ("SOCKET_URLS", nodes.urls.join(",")),
        ("API_KEY", API_KEY.to_owned()),
        ("JWT_SECRET", SECRET.to_owned()),
        ("PYTHON", PYTHON.to_owned()),
        ("PY_CLIENT", python_client().display().to_string()),
    ];
    // A few seconds; the deadline only stops a hung run.
    node::run_suite("rooms.test.mjs", &env, Duration::from_secs(120)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_and_python_socketio_use_rooms_on_one_node() {
    let nodes = ApiNodes::start(Mode::Embedded).await;
    run_rooms_suite(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_and_python_socketio_use_rooms_across_two_nodes() {
    let nodes = ApiNodes::start(Mode::Scaled).await;
    run_rooms_suite(&nodes).await;
}

/// The claims of a compact JWS, unchecked.
fn payload_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a compact JWS");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// Settings read as a deployment reads them: `config/default.toml`, then a
/// file named by `APP_CONFIG` holding `[[users]]` entries with `rooms`, then
/// the environment.
fn settings_with_users_file(users: &[(&str, &str, &[&str])]) -> Settings {
    let mut toml = String::new();
    for (username, password, rooms) in users {
        let hash = web_frontend::users::hash_password(password).expect("hash");
        toml.push_str(&format!(
            "[[users]]\nusername = {username:?}\npassword_hash = {hash:?}\n"
        ));
        if !rooms.is_empty() {
            toml.push_str(&format!("rooms = {}\n", json!(rooms)));
        }
    }
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("rooms-users-{}.toml", uuid_like()));
    std::fs::write(&path, toml).expect("the users file");
    let vars = [
        ("APP_CONFIG", path.display().to_string()),
        ("APP_JWT__SECRET", SECRET.to_owned()),
        ("APP_API__KEY", API_KEY.to_owned()),
        ("APP_WEB__ADDR", "127.0.0.1:0".to_owned()),
        ("APP_SOCKET__ADDR", "127.0.0.1:0".to_owned()),
    ];
    let settings = Settings::load_from(vars.map(|(name, value)| (name.to_owned(), value)))
        .expect("the settings load");
    let _ = std::fs::remove_file(&path);
    settings
}

/// A name no other run of the test uses at the same time.
fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_configured_room_patterns_travel_in_the_web_frontends_token_and_allow_exactly_those_joins()
 {
    let settings = settings_with_users_file(&[
        ("carol", "carol's password", &["ops:*", "team:7"]),
        ("dave", "dave's password", &[]),
    ]);
    let system = spawn_system_with(settings).await;

    let carol_web = log_in_at(&system.web_url, "carol", "carol's password").await;
    let carol_token = token_at(&system.web_url, &carol_web).await;
    let dave_token = token_at(
        &system.web_url,
        &log_in_at(&system.web_url, "dave", "dave's password").await,
    )
    .await;
    assert_eq!(
        payload_of(&carol_token)["rooms"],
        json!(["ops:*", "team:7"]),
        "the claim is the user's patterns, in order"
    );
    let dave_claims = payload_of(&dave_token);
    assert!(
        dave_claims.get("rooms").is_none(),
        "no patterns: no claim at all ({dave_claims})"
    );

    let carol = SioClient::connect_with_auth(&system.socket_url, &carol_token)
        .await
        .expect("carol is welcomed");
    let dave = SioClient::connect_with_auth(&system.socket_url, &dave_token)
        .await
        .expect("dave is welcomed");
    let ok = json!({"ok": true});
    let forbidden = json!({"ok": false, "error": "forbidden"});
    for (room, expected) in [
        ("ops:db", &ok),
        ("ops:", &ok),
        ("team:7", &ok),
        ("team:70", &forbidden),
        ("ops", &forbidden),
        ("user:dave", &forbidden),
    ] {
        let ack = carol.call("join", json!({"room": room})).await.expect(room);
        assert_eq!(&ack, expected, "carol joins {room}");
    }
    for room in ["ops:db", "team:7"] {
        let ack = dave.call("join", json!({"room": room})).await.expect(room);
        assert_eq!(ack, forbidden, "dave's token allows no room: {room}");
    }

    // A room message reaches carol (in the room), not dave: dave's next
    // `message` is the plain one carol sent after it.
    carol
        .emit("message", json!({"room": "ops:db", "text": "deploying"}))
        .await
        .expect("a room message");
    carol
        .emit("message", json!("hello"))
        .await
        .expect("a plain one");
    let within = Duration::from_secs(5);
    assert_eq!(
        carol.next_event("message", within).await.expect("carol's"),
        json!({"from": "carol", "room": "ops:db", "text": "deploying"})
    );
    assert_eq!(
        dave.next_event("message", within).await.expect("dave's"),
        json!({"from": "carol", "text": "hello"}),
        "dave gets the plain message only"
    );

    let nodes = ApiNodes::at([system.socket_url.clone(), system.socket_url.clone()]);
    let presence = nodes.presence(0, "/api/presence/room:ops:db").await;
    assert_eq!(
        presence,
        json!({"room": "ops:db", "users": ["carol"], "sockets": 1})
    );
}

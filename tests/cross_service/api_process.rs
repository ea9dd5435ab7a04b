//! The `socket-server` binary as an operator runs it: a real process whose
//! output is read — no key reaches it, even at `RUST_LOG=debug`. The process
//! harness here also serves the tests that kill a node and run its `publish`
//! command.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::ORIGIN;
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::api::{Answer, http_client};
use crate::helpers::{API_KEY, SECRET, token_of_session, wait_ready};
use crate::redis::RedisServer;
use crate::socketio::SioClient;

/// How long the binary may take to say where it listens.
const LISTENING_WITHIN: Duration = Duration::from_secs(10);

/// The `socket-server` binary of this build: cargo puts every binary of the
/// workspace in one directory, and `cargo test --workspace` builds them all
/// before any test runs.
pub(crate) fn socket_server_binary() -> PathBuf {
    let authbridge = PathBuf::from(env!("CARGO_BIN_EXE_authbridge"));
    let binary = authbridge
        .parent()
        .expect("the target directory")
        .join(format!("socket-server{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.is_file(),
        "{} is missing: build it first (`cargo test --workspace` does, or `cargo build -p socket-server`)",
        binary.display()
    );
    let modified = |path: &PathBuf| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    if modified(&binary) < modified(&authbridge) {
        eprintln!(
            "warning: {} is older than the authbridge binary and may be stale (`cargo build -p socket-server`)",
            binary.display()
        );
    }
    binary
}

/// A `socket-server` process, its output collected line by line.
pub(crate) struct SocketServerProcess {
    child: Child,
    pub(crate) url: String,
    output: Arc<Mutex<Vec<String>>>,
}

impl SocketServerProcess {
    /// Starts the binary with exactly `env` (and port 0), from the package
    /// root (where `config/` is), and waits for its `listening on` line.
    pub(crate) async fn start(env: &[(&str, String)]) -> Self {
        let mut child = Command::new(socket_server_binary())
            .env_clear()
            .envs(env.iter().map(|(name, value)| (*name, value)))
            .env("APP_SOCKET__ADDR", "127.0.0.1:0")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("socket-server starts");
        let output = Arc::new(Mutex::new(Vec::new()));
        let (lines, mut incoming) = mpsc::unbounded_channel();
        for stream in [
            Box::new(child.stdout.take().expect("stdout"))
                as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let (lines, output) = (lines.clone(), output.clone());
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    output.lock().expect("output").push(line.clone());
                    let _ = lines.send(line);
                }
            });
        }
        let listening = tokio::time::timeout(LISTENING_WITHIN, async {
            while let Some(line) = incoming.recv().await {
                if let Some(at) = line.find("listening on http://") {
                    return Some(line[at + "listening on ".len()..].trim().to_owned());
                }
            }
            None
        })
        .await;
        let url = match listening {
            Ok(Some(url)) => url,
            _ => panic!(
                "socket-server said no `listening on` within {LISTENING_WITHIN:?}:\n{}",
                output.lock().expect("output").join("\n")
            ),
        };
        Self { child, url, output }
    }

    /// Sends `signal` (`TERM`, `KILL`, …) to the process.
    pub(crate) fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("the process runs");
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {pid}");
    }

    /// Waits for the process to end.
    pub(crate) async fn exited(&mut self, within: Duration) -> ExitStatus {
        tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("socket-server still runs after {within:?}"))
            .expect("the exit status")
    }

    /// Everything it wrote so far, stdout and stderr.
    pub(crate) fn output(&self) -> String {
        self.output.lock().expect("output").join("\n")
    }
}

/// The environment of a node with the API on (`redis_url`: scaled).
pub(crate) fn node_env(redis_url: Option<&str>, log: &str) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("APP_JWT__SECRET", SECRET.to_owned()),
        ("APP_API__KEY", API_KEY.to_owned()),
        ("RUST_LOG", log.to_owned()),
    ];
    if let Some(url) = redis_url {
        env.push(("APP_REDIS__URL", url.to_owned()));
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_reaches_the_log_even_at_debug_whatever_the_requests_carry() {
    const WRONG_KEY: &str = "a-wrong-api-key-that-must-not-be-logged-either-42";
    let redis = RedisServer::start().await;
    for redis_url in [None, Some(redis.url())] {
        let mut node = SocketServerProcess::start(&node_env(redis_url.as_deref(), "debug")).await;
        wait_ready(&node.url, Duration::from_secs(20)).await;
        let http = http_client();
        let publish = format!("{}/api/publish", node.url);
        let body = json!({"to": "user:logged", "event": "notice", "data": {"text": "hi"}});
        // A socket the publications reach (the scaled node's list is loaded
        // at once; the embedded one, without a web-frontend, would hold a
        // token minted in its first second back for the resync).
        let socket = match redis_url {
            Some(_) => Some(
                SioClient::connect_with_auth(
                    &node.url,
                    &token_of_session("logged", "sid-logged-0123456789"),
                )
                .await
                .expect("a socket"),
            ),
            None => None,
        };

        let requests = [
            (http.post(&publish).bearer_auth(API_KEY).json(&body), 200),
            (
                http.post(&publish)
                    .bearer_auth(API_KEY)
                    .header("idempotency-key", "log-1")
                    .json(&body),
                200,
            ),
            (
                http.post(&publish)
                    .bearer_auth(API_KEY)
                    .header("idempotency-key", "log-1")
                    .json(&body),
                200,
            ),
            (http.post(&publish).bearer_auth(WRONG_KEY).json(&body), 401),
            (
                http.post(&publish)
                    .header("authorization", format!("Basic {API_KEY}"))
                    .json(&body),
                401,
            ),
            (
                http.post(&publish)
                    .bearer_auth(API_KEY)
                    .header(ORIGIN, "https://evil.example")
                    .json(&body),
                403,
            ),
            (
                http.post(&publish)
                    .bearer_auth(API_KEY)
                    .json(&json!({"to": API_KEY, "event": "notice", "data": 1})),
                400,
            ),
            (
                http.post(&publish)
                    .bearer_auth(API_KEY)
                    .json(&json!({"to": "everyone", "event": "message", "data": API_KEY})),
                400,
            ),
            (
                http.post(format!("{}/api/sessions/revoke", node.url))
                    .bearer_auth(WRONG_KEY)
                    .json(&json!({"sid": "s", "until": 1})),
                401,
            ),
            (
                http.post(format!("{}/api/disconnect", node.url))
                    .bearer_auth(API_KEY)
                    .json(&json!({"to": "user:nobody"})),
                200,
            ),
            (
                http.get(format!("{}/api/presence", node.url))
                    .bearer_auth(API_KEY),
                200,
            ),
            (
                http.get(format!("{}/api/presence/user:logged", node.url))
                    .bearer_auth(WRONG_KEY),
                401,
            ),
            (
                http.get(format!("{}/socket.io/?EIO=4&transport=polling", node.url))
                    .bearer_auth(API_KEY),
                200,
            ),
        ];
        for (request, status) in requests {
            let answer = Answer::of(request.send().await.expect("an answer")).await;
            assert_eq!(answer.status, status, "{}", answer.text);
        }
        for token in [API_KEY, WRONG_KEY] {
            let refusal = SioClient::refusal_with_auth(&node.url, Some(json!({"token": token})))
                .await
                .expect("refused");
            assert_eq!(refusal, "not valid token");
            let refusal = SioClient::refusal_with_query(&node.url, token)
                .await
                .expect("refused");
            assert_eq!(refusal, "not valid token");
        }
        if let Some(socket) = &socket {
            let notice = socket
                .next_event("notice", Duration::from_secs(5))
                .await
                .expect("a notice");
            assert_eq!(notice, json!({"text": "hi"}));
        }
        node.signal("TERM");
        assert!(node.exited(Duration::from_secs(15)).await.success());

        let output = node.output();
        assert!(output.contains("DEBUG"), "the log is at debug: {output}");
        for secret in [API_KEY, WRONG_KEY, SECRET] {
            assert!(
                !output.contains(secret),
                "a key in the log ({}):\n{output}",
                if redis_url.is_some() {
                    "scaled"
                } else {
                    "embedded"
                }
            );
        }
    }
}

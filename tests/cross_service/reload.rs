//! The operator's path of a rotation: the `authbridge` binary reads its keys
//! from files, the files change, SIGHUP — and the new keys are in use, with
//! the connected sockets untouched. A reload that does not build is refused
//! and the keys in use stay.

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::helpers::{log_in_at, token_at, wait_ready};
use crate::socketio::SioClient;

const OLD_KEY: &str = "reload-test-old-shared-key-0123456789abcdef";
const NEW_KEY: &str = "reload-test-new-shared-key-fedcba9876543210";

fn write(path: &Path, text: &str) {
    let mut file = std::fs::File::create(path).expect("creates");
    file.write_all(text.as_bytes()).expect("writes");
}

fn config(dir: &Path, rotating_until: Option<&str>) -> String {
    let mut text = format!("[jwt]\nsecret_file = {:?}\n", dir.join("current.key"));
    if let Some(until) = rotating_until {
        text.push_str(&format!(
            "previous_secret_file = {:?}\nprevious_secret_valid_until = {until:?}\n",
            dir.join("previous.key")
        ));
    }
    text
}

struct Running {
    child: Child,
    web_url: String,
    socket_url: String,
    log: mpsc::UnboundedReceiver<String>,
}

impl Running {
    async fn start(dir: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_authbridge"))
            .env_clear()
            .env("APP_CONFIG", dir.join("app.toml"))
            .env("APP_WEB__ADDR", "127.0.0.1:0")
            .env("APP_SOCKET__ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("authbridge starts");
        let (lines, log) = mpsc::unbounded_channel();
        for stream in [
            Box::new(child.stdout.take().expect("stdout"))
                as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let lines = lines.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    let _ = lines.send(line);
                }
            });
        }
        let mut running = Self {
            child,
            web_url: String::new(),
            socket_url: String::new(),
            log,
        };
        // Two `listening on` lines; the socket server is the one that opens
        // Engine.IO sessions.
        let mut urls = Vec::new();
        while urls.len() < 2 {
            let line = running.next_line_with("listening on http://").await;
            urls.push(line.trim_start_matches("listening on ").to_owned());
        }
        for url in urls {
            let engine = reqwest::get(format!("{url}/socket.io/?EIO=4&transport=polling"))
                .await
                .expect("a request");
            if engine.status() == 200 {
                running.socket_url = url;
            } else {
                running.web_url = url;
            }
        }
        assert!(!running.socket_url.is_empty() && !running.web_url.is_empty());
        running
    }

    /// The next output line containing `needle`, within 10 s.
    async fn next_line_with(&mut self, needle: &str) -> String {
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(line) = self.log.recv().await {
                assert!(
                    !line.contains(OLD_KEY) && !line.contains(NEW_KEY),
                    "a key in the log: {line}"
                );
                if line.contains(needle) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            _ => panic!("no line with {needle:?} within 10 s"),
        }
    }

    fn hang_up(&self) {
        let pid = self.child.id().expect("running");
        let status = std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    async fn token(&self, client: &reqwest::Client) -> String {
        token_at(&self.web_url, client).await
    }
}

#[tokio::test]
async fn sighup_puts_new_key_files_in_use_and_keeps_the_sockets() {
    let dir = crate::keys::KeyDir::new("sighup");
    write(&dir.join("current.key"), &format!("{OLD_KEY}\n"));
    write(&dir.join("app.toml"), &config(&dir, None));
    let mut running = Running::start(&dir).await;

    let client = log_in_at(&running.web_url, "gonzalo", "password").await;
    let old_token = running.token(&client).await;
    let socket = SioClient::connect_with_auth(&running.socket_url, &old_token)
        .await
        .expect("accepted");

    // The rotation: the new key in the key file, the old one as previous.
    write(&dir.join("previous.key"), &format!("{OLD_KEY}\n"));
    write(&dir.join("current.key"), &format!("{NEW_KEY}\n"));
    let until = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let until = until
        .replace_nanosecond(0)
        .expect("a time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formats");
    write(&dir.join("app.toml"), &config(&dir, Some(&until)));
    running.hang_up();
    let reloaded = running.next_line_with("keys reloaded").await;
    assert!(reloaded.contains("kid"), "{reloaded}");

    let new_token = running.token(&client).await;
    assert_ne!(new_token, old_token);
    let ack = socket
        .call("reauth", json!({ "token": new_token }))
        .await
        .expect("an ack");
    assert_eq!(
        ack["ok"], true,
        "the connected socket takes the new key's token: {ack}"
    );
    SioClient::connect_with_auth(&running.socket_url, &old_token)
        .await
        .expect("the previous key's token during the overlap");
    // The session cookie outlives the rotation: it is not sealed with the new key.
    assert_eq!(
        client
            .get(format!("{}/private", running.web_url))
            .send()
            .await
            .expect("private")
            .status(),
        200
    );

    // A configuration that does not load is refused; the keys in use stay.
    write(&dir.join("app.toml"), &config(&dir, Some("next tuesday")));
    running.hang_up();
    let refused = running.next_line_with("reload refused").await;
    assert!(
        refused.contains("jwt.previous_secret_valid_until"),
        "{refused}"
    );
    SioClient::connect_with_auth(&running.socket_url, &running.token(&client).await)
        .await
        .expect("the keys in use stayed");
    socket
        .emit("message", json!("through two reloads"))
        .await
        .expect("emits");
    assert_eq!(
        socket
            .next_event("message", Duration::from_secs(2))
            .await
            .expect("still connected")["text"],
        "through two reloads"
    );
    let _ = running.child.kill().await;
}

/// `cargo run` with a key pair: the all-in-one points its socket server at its
/// own web-frontend's JWK Set, and a login gets a socket.
#[tokio::test]
async fn the_all_in_one_binary_runs_with_a_key_pair() {
    let dir = crate::keys::KeyDir::new("all-in-one");
    let (private, _) = dir.pair("signing", claims::Algorithm::EdDSA);
    write(
        &dir.join("app.toml"),
        &format!("[jwt]\nalgorithm = \"EdDSA\"\nprivate_key_file = {private:?}\n"),
    );
    let running = Running::start(&dir).await;
    let client = log_in_at(&running.web_url, "gonzalo", "password").await;
    let token = running.token(&client).await;
    // The socket server fetches the JWK Set right after it starts; a handshake
    // before that gets 503, which the client retries: wait for readiness.
    wait_ready(&running.socket_url, Duration::from_secs(10)).await;
    let socket = SioClient::connect_with_auth(&running.socket_url, &token)
        .await
        .expect("accepted");
    assert_eq!(socket.welcome(), json!({ "username": "gonzalo" }));
}

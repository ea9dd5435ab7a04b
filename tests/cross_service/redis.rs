//! A real `redis-server` (Debian's package) on a free loopback port, started
//! and stopped by the tests of the scaled mode.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// How long `redis-server` may take to say it accepts connections.
const READY_WITHIN: Duration = Duration::from_secs(10);

pub(crate) struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a port no one listens on.
    pub(crate) async fn start() -> Self {
        // Redis cannot bind port 0 and report it: take a free port from the
        // kernel, release it, and let Redis bind it (retried on a lost race).
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free port")
                .port();
            if let Some(child) = spawn(port).await {
                return Self {
                    port,
                    child: Some(child),
                };
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (as a crash would: no goodbye to the clients).
    pub(crate) async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("redis-server killed");
        }
    }

    /// Starts it again on the same port, empty (nothing is persisted).
    pub(crate) async fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server is running");
        self.child = Some(
            spawn(self.port)
                .await
                .expect("redis-server starts again on its port"),
        );
    }
}

/// `None` when the port was taken meanwhile.
async fn spawn(port: u16) -> Option<Child> {
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--loglevel", "notice"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server runs (Debian package redis-server; the test command installs it)");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    let ready = tokio::time::timeout(READY_WITHIN, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("Ready to accept connections") {
                return true;
            }
            let taken = line.contains("Address already in use");
            seen.push(line);
            if taken {
                return false;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    if !ready {
        let _ = child.kill().await;
        if seen.iter().any(|line| line.contains("in use")) {
            return None;
        }
        panic!(
            "redis-server on port {port} did not become ready:\n{}",
            seen.join("\n")
        );
    }
    // Keep reading, so that the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Some(child)
}

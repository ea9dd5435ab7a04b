//! The `socket-server` binary itself: its start-up refusals are one line naming
//! the variable, with one worker thread it serves (current-thread runtime), and
//! its allocator purges in the background only while it is idle.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "binary-tests-shared-key-0123456789abcdef";

fn socket_server() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_socket-server"));
    command
        .env_clear()
        .env("APP_SOCKET__ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

/// The address of the `listening on` line on `child`'s stdout, within 10 s.
fn listening_address(child: &mut std::process::Child) -> String {
    let stdout = child.stdout.take().expect("stdout");
    let (lines, line) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for text in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(text);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        let text = line
            .recv_timeout(wait)
            .expect("a `listening on` line within 10 s");
        if let Some(addr) = text.strip_prefix("listening on http://") {
            return addr.to_owned();
        }
    }
}

#[test]
fn a_bad_worker_thread_count_is_refused_in_one_line() {
    for value in ["0", "many", "-1"] {
        let output = socket_server()
            .env("APP_JWT__SECRET", SECRET)
            .env("TOKIO_WORKER_THREADS", value)
            .output()
            .expect("runs");
        assert!(!output.status.success(), "{value}: must not start");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{value}: one line: {stderr}");
        assert!(stderr.contains("TOKIO_WORKER_THREADS"), "{value}: {stderr}");
    }
}

#[test]
fn a_missing_secret_is_refused_in_one_line_naming_the_variable() {
    let output = socket_server().output().expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("APP_JWT__SECRET"), "{stderr}");
}

#[test]
fn one_worker_thread_serves_on_the_current_thread_runtime() {
    let mut child = socket_server()
        .env("APP_JWT__SECRET", SECRET)
        .env("TOKIO_WORKER_THREADS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let addr = listening_address(&mut child);
    let health = std::net::TcpStream::connect(&addr).and_then(|mut stream| {
        use std::io::{Read as _, Write as _};
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer)
    });
    let _ = child.kill();
    let _ = child.wait();
    let answer = health.expect("/healthz answered");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn production_refuses_the_demo_user_of_the_shipped_configuration() {
    // From the workspace root: config/default.toml holds the demo user.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = socket_server()
        .current_dir(root)
        .env("APP_JWT__SECRET", SECRET)
        .env("APP_ENV", "production")
        .env("APP_WEB__SOCKET_URL", "https://socket.example.com")
        .output()
        .expect("runs");
    assert!(!output.status.success(), "must not start");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("users") && stderr.contains("demo user"),
        "{stderr}"
    );
}

/// How many of the process's threads are jemalloc's background purgers.
fn purger_threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .filter_map(Result::ok)
                .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
                .filter(|name| name.trim() == "jemalloc_bg_thd")
                .count()
        })
        .unwrap_or(0)
}

/// Polls `ready` every 50 ms until it holds, for at most `within`.
fn eventually(within: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ready()
}

/// jemalloc's background thread gives freed memory back while the server is
/// idle, and is stopped while it works (it competed with the handshakes for
/// the cores: docs/performance.md).
#[test]
fn the_allocator_purges_in_the_background_only_while_idle() {
    let mut child = socket_server()
        .env("APP_JWT__SECRET", SECRET)
        .env("TOKIO_WORKER_THREADS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let pid = child.id();
    let addr = listening_address(&mut child);

    let idle_runs = eventually(Duration::from_secs(10), || purger_threads(pid) > 0);

    // Work: health checks, each on a connection of its own, from two threads.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..2)
        .map(|_| {
            let (addr, stop) = (addr.clone(), stop.clone());
            std::thread::spawn(move || {
                use std::io::{Read as _, Write as _};
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(mut stream) = std::net::TcpStream::connect(&addr) {
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                        let _ = stream.write_all(
                            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                        );
                        let _ = stream.read_to_end(&mut Vec::new());
                    }
                }
            })
        })
        .collect();
    let busy_stops = eventually(Duration::from_secs(10), || purger_threads(pid) == 0);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for thread in load {
        let _ = thread.join();
    }
    let idle_again_runs = eventually(Duration::from_secs(10), || purger_threads(pid) > 0);
    let _ = child.kill();
    let _ = child.wait();
    assert!(idle_runs, "idle: jemalloc's background thread runs");
    assert!(busy_stops, "busy: the background thread is stopped");
    assert!(idle_again_runs, "idle again: it runs again");
}

//! The official npm clients — `socket.io-client` 4.x (protocol v5) and 2.x (the
//! article's protocol v4 client) — against our socket-server, through the
//! `node --test` suite in `tests/js`.

use std::path::Path;
use std::time::Duration;

use crate::helpers::*;

/// The whole Node suite takes a few seconds; this only stops a hung run.
const NODE_DEADLINE: Duration = Duration::from_secs(180);

#[tokio::test]
async fn the_official_socket_io_clients_pass_the_contract_suite() {
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    assert!(
        js.join("node_modules/socket.io-client").is_dir()
            && js.join("node_modules/socket.io-client-v2").is_dir(),
        "the npm clients are not installed: run `npm ci --prefix tests/js` (scripts/test does it)"
    );
    let system = spawn_system().await;
    let valid = system.demo_token().await;

    let run = tokio::process::Command::new("node")
        .arg("--test")
        .arg("--test-reporter=spec")
        .arg("clients.test.mjs")
        .current_dir(&js)
        .env("SOCKET_URL", &system.socket_url)
        .env("TOKEN_VALID", &valid)
        .env("TOKEN_VALID_USER", "gonzalo")
        .env("TOKEN_EXPIRED", expired_token("gonzalo"))
        .env("TOKEN_FORGED", forged_token("gonzalo"))
        .env("TOKEN_WRONG_AUDIENCE", wrong_audience_token("gonzalo"))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(NODE_DEADLINE, run)
        .await
        .expect("the node suite finishes in time")
        .expect("node runs (is Node.js installed?)");

    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the official clients' suite failed:\n{report}"
    );
    assert!(
        report.contains("fail 0"),
        "the suite ran no test or reported failures:\n{report}"
    );
}

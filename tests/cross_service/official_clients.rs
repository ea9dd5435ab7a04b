//! The official npm clients — `socket.io-client` 4.x (protocol v5) and 2.x (the
//! article's protocol v4 client) — against our socket-server, through the
//! `node --test` suite in `tests/js`.

use std::time::Duration;

use crate::helpers::*;
use crate::node;

#[tokio::test]
async fn the_official_socket_io_clients_pass_the_contract_suite() {
    node::require_package("socket.io-client");
    node::require_package("socket.io-client-v2");
    let system = spawn_system().await;
    let valid = system.demo_token().await;

    let env = [
        ("SOCKET_URL", system.socket_url.clone()),
        ("TOKEN_VALID", valid),
        ("TOKEN_VALID_USER", "gonzalo".to_owned()),
        ("TOKEN_EXPIRED", expired_token("gonzalo")),
        ("TOKEN_FORGED", forged_token("gonzalo")),
        ("TOKEN_WRONG_AUDIENCE", wrong_audience_token("gonzalo")),
    ];
    // The suite takes a few seconds; the deadline only stops a hung run.
    node::run_suite("clients.test.mjs", &env, Duration::from_secs(180)).await;
}

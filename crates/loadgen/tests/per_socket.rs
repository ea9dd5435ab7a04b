//! What a held, authenticated WebSocket costs the socket-server in tasks: one
//! (the connection's own, which reads, writes and keeps the heartbeat), not the
//! three engineioxide 0.17.9 ran per socket (vendor/README.md, change 4).
//!
//! The server runs on a current-thread runtime of its own, in a thread of its
//! own, so that its task count is its alone; the clients run on the test's.

use std::net::SocketAddr;
use std::time::Duration;

use loadgen::engineio::{self, Handshake};
use loadgen::{MintSettings, TokenSource};
use secrecy::SecretString;
use settings::Settings;

const SECRET: &str = "loadgen-per-socket-test-shared-key-0123";
const N: usize = 100;

fn spawn_server() -> (SocketAddr, tokio::runtime::Handle) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let handle = runtime.handle().clone();
    let (ready, started) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let mut settings = Settings::default();
            settings.jwt.secret = Some(SecretString::from(SECRET));
            settings.socket.addr = addr.to_string();
            let server = socket_server::Application::build_with_listener(&settings, listener)
                .await
                .expect("socket-server builds");
            ready.send(()).expect("the test waits");
            server
                .run_until(std::future::pending())
                .await
                .expect("serves");
        });
    });
    started.recv().expect("the server starts");
    (addr, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_socket_is_one_task_of_the_server() {
    let (addr, server) = spawn_server();
    let tasks = server.metrics();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = tasks.num_alive_tasks();

    let tokens = TokenSource::Mint(MintSettings::new(SecretString::from(SECRET)))
        .tokens(N, 0.0, Duration::from_secs(10))
        .await
        .expect("tokens");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut held = tokio::task::JoinSet::new();
    for token in tokens {
        match engineio::connect(addr, None, &token.token, Duration::from_secs(10)).await {
            Ok(Handshake::Welcomed(client)) => {
                held.spawn(client.hold_until(stopped.clone()));
            }
            other => panic!("not welcomed: {other:?}"),
        }
    }
    // The handshakes' own tasks (the HTTP connection, the namespace connect)
    // are over once every socket is welcomed and the server is idle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per_socket = tasks.num_alive_tasks().saturating_sub(before) as f64 / N as f64;

    stop.send_replace(true);
    while held.join_next().await.is_some() {}
    assert!(
        per_socket <= 1.05,
        "{per_socket:.2} tasks per held socket (engineioxide 0.17.9 as published: 3)"
    );
}

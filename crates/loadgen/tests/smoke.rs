//! Keeps the load generator from rotting: each scenario, small, against our
//! socket-server and web-frontend started in this process on 127.0.0.1:0.

use std::net::SocketAddr;
use std::time::Duration;

use loadgen::{
    ConnectOptions, FanoutOptions, HoldOptions, IssueOptions, MintSettings, Phase, PublishOptions,
    SocketRun, TargetKind, TokenSource, WebLogin,
};
use secrecy::SecretString;
use settings::{Settings, UserEntry};

const SECRET: &str = "loadgen-smoke-test-shared-key-0123456789";
const API_KEY: &str = "loadgen-smoke-test-server-api-key-9876543210";
const USERNAME: &str = "gonzalo";
const PASSWORD: &str = "password";
const N: usize = 50;

/// Both services, running until the test's runtime ends.
struct System {
    socket_addr: SocketAddr,
    web_url: String,
}

async fn spawn_system() -> System {
    let web_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let socket_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let socket_addr = socket_listener.local_addr().expect("addr");
    let web_url = format!("http://{}", web_listener.local_addr().expect("addr"));

    let mut settings = Settings::default();
    settings.jwt.secret = Some(SecretString::from(SECRET));
    settings.api.key = Some(SecretString::from(API_KEY));
    settings.web.addr = "127.0.0.1:0".into();
    settings.socket.addr = socket_addr.to_string();
    settings.web.socket_url = format!("http://{socket_addr}");
    settings.users.push(UserEntry {
        username: USERNAME.into(),
        password_hash: web_frontend::users::hash_password(PASSWORD).expect("hash"),
        rooms: Vec::new(),
    });

    let web = web_frontend::Application::build_with_listener(&settings, web_listener)
        .await
        .expect("web-frontend builds");
    tokio::spawn(web.run_until(std::future::pending()));
    let socket = socket_server::Application::build_with_listener(&settings, socket_listener)
        .await
        .expect("socket-server builds");
    tokio::spawn(socket.run_until(std::future::pending()));
    System {
        socket_addr,
        web_url,
    }
}

impl System {
    /// A run of `connections` with tokens minted here (made after the servers
    /// started, as the bench does).
    fn run(&self, connections: usize) -> SocketRun {
        let mint = MintSettings::new(SecretString::from(SECRET));
        let mut run = SocketRun::new(self.socket_addr, TokenSource::Mint(mint), connections);
        run.concurrency = 10;
        run.deadline = Duration::from_secs(30);
        run
    }

    fn web_login(&self) -> WebLogin {
        WebLogin {
            url: self.web_url.clone(),
            username: USERNAME.into(),
            password: SecretString::from(PASSWORD),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_greets_every_genuine_token_and_refuses_every_forged_one() {
    let system = spawn_system().await;

    let report = loadgen::connect::run(&ConnectOptions {
        run: system.run(N),
        bad_share: 0.1,
    })
    .await
    .expect("the run finishes");

    assert_eq!(report.errors, 0, "{:?}", report.error_samples);
    assert_eq!((report.greeted, report.refused, report.forged), (45, 5, 5));
    assert!(report.handshakes_per_sec > 0.0);
    assert!(report.latency_ms.p50 > 0.0 && report.latency_ms.max >= report.latency_ms.p99);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_with_tokens_from_the_web_frontend_greets_them_all() {
    let system = spawn_system().await;
    // One user's tokens: fewer than the per-user connection limit.
    let mut run = system.run(10);
    run.tokens = TokenSource::Web(system.web_login());

    let report = loadgen::connect::run(&ConnectOptions {
        run,
        bad_share: 0.2,
    })
    .await
    .expect("the run finishes");

    assert_eq!(report.errors, 0, "{:?}", report.error_samples);
    assert_eq!((report.greeted, report.refused), (8, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_keeps_every_connection_and_reads_the_servers_memory() {
    let system = spawn_system().await;
    // The server runs in this process.
    let mut run = system.run(N);
    run.server_pid = Some(std::process::id());

    let report = loadgen::hold::run(&HoldOptions {
        run,
        settle: Duration::ZERO,
        after_close: Duration::from_millis(100),
    })
    .await
    .expect("the run finishes");

    assert_eq!(report.errors, 0, "{:?}", report.error_samples);
    assert_eq!(report.greeted, N);
    assert!(report.rss_before_bytes > 0 && report.rss_after_bytes > 0);
    assert!(report.rss_after_close_bytes.is_some_and(|bytes| bytes > 0));
    assert_eq!(report.after_close_secs, Some(0.1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_delivers_every_message_to_every_client() {
    let system = spawn_system().await;

    let report = loadgen::fanout::run(&FanoutOptions {
        run: system.run(N),
        messages: 10,
        rate: 0.0,
    })
    .await
    .expect("the run finishes");

    assert_eq!(report.errors, 0, "{:?}", report.error_samples);
    assert_eq!((report.expected, report.delivered), (N * 10, N * 10));
    assert!(report.deliveries_per_sec > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_gets_a_token_for_every_request_of_every_logged_in_client() {
    let system = spawn_system().await;

    let report = loadgen::issue::run(&IssueOptions {
        web: system.web_login(),
        clients: 2,
        duration: Duration::from_millis(500),
        server_pid: Some(std::process::id()),
        step_timeout: Duration::from_secs(10),
        deadline: Duration::from_secs(30),
    })
    .await
    .expect("the run finishes");

    assert_eq!(report.failed, 0, "{:?}", report.error_samples);
    assert!(report.ok > 0);
    assert!(report.requests_per_sec > 0.0);
}

fn publish_options(
    run: SocketRun,
    api_key: &str,
    phases: &[(TargetKind, usize)],
) -> PublishOptions {
    PublishOptions {
        run,
        api_key: SecretString::from(api_key),
        phases: phases
            .iter()
            .map(|&(to, publications)| Phase { to, publications })
            .collect(),
        in_flight: 4,
        phase_limit: None,
        more_server_pids: Vec::new(),
        redis_pid: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_delivers_every_publication_to_its_users_and_the_counts_match() {
    let system = spawn_system().await;
    let users = 20;
    let mut run = system.run(users);
    run.server_pid = Some(std::process::id());

    let report = loadgen::publish::run(&publish_options(
        run,
        API_KEY,
        &[
            (TargetKind::User, 200),
            (TargetKind::Everyone, 200),
            (TargetKind::None, 50),
        ],
    ))
    .await
    .expect("the run finishes");

    assert_eq!(report.errors, 0, "{:?}", report.error_samples);
    assert_eq!(report.greeted, users);
    let [user, everyone, none] = report.phases.as_slice() else {
        panic!("three phases: {:?}", report.phases);
    };
    // One user each: every publication is one delivery, and the API says 1.
    assert_eq!(
        (
            user.ok,
            user.expected_deliveries,
            user.delivered,
            user.api_sockets
        ),
        (200, 200, 200, 200)
    );
    // Everyone: every socket gets every one, and the API says 20 each time.
    assert_eq!(
        (
            everyone.ok,
            everyone.expected_deliveries,
            everyone.delivered,
            everyone.api_sockets
        ),
        (200, 200 * users, 200 * users, 200 * users as u64)
    );
    // Nobody: answered, delivered to no one.
    assert_eq!((none.ok, none.delivered, none.api_sockets), (50, 0, 0));
    for phase in &report.phases {
        assert_eq!(
            (
                phase.failed,
                phase.missing,
                phase.unexpected,
                phase.sockets_mismatches
            ),
            (0, 0, 0, 0),
            "{phase:?}"
        );
        assert!(phase.publications_per_sec > 0.0);
        assert!(phase.api_latency_ms.p99 > 0.0);
        assert!(phase.server_cpu_us_per_publication.is_some());
    }
    assert!(user.deliveries_per_sec > 0.0 && user.delivery_latency_ms.p50 > 0.0);
    assert!(everyone.deliveries_per_sec > user.deliveries_per_sec / 100.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_with_a_wrong_key_counts_every_refusal_and_finishes() {
    let system = spawn_system().await;

    let report = loadgen::publish::run(&publish_options(
        system.run(5),
        "not-the-key-of-this-server-0123456789abcdef",
        &[(TargetKind::User, 10)],
    ))
    .await
    .expect("the run finishes");

    let phase = &report.phases[0];
    assert_eq!((phase.ok, phase.failed, phase.delivered), (0, 10, 0));
    assert_eq!(report.errors, 10);
    assert!(
        report
            .error_samples
            .iter()
            .any(|error| error.contains("HTTP 401")),
        "{:?}",
        report.error_samples
    );
}

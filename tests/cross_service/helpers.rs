//! `spawn_system()`: a web-frontend and a socket-server sharing one key, each on
//! 127.0.0.1:0, and a cookie-keeping HTTP client per user.

use reqwest::redirect::Policy;
use secrecy::SecretString;
use serde_json::{Value, json};
use settings::{Settings, UserEntry};

pub(crate) const SECRET: &str = "cross-service-tests-shared-key-0123456789";
pub(crate) const SECOND_USER: &str = "alice";
pub(crate) const SECOND_PASSWORD: &str = "alice's password";
/// The server API's key (`api.key`) in the tests that turn the API on.
pub(crate) const API_KEY: &str = "cross-service-tests-server-api-key-fedcba9876";

/// Both services, running.
pub(crate) struct TestSystem {
    pub(crate) web_url: String,
    pub(crate) socket_url: String,
    /// The web-frontend's keys: `reload` as SIGHUP does.
    pub(crate) web_keys: web_frontend::KeyRing,
    settings: Settings,
    socket: Option<RunningSocket>,
}

struct RunningSocket {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    keys: socket_server::KeyRing,
}

/// The settings the project ships (config/default.toml, with the demo user),
/// with ephemeral ports, the test key and a second user.
pub(crate) fn settings() -> Settings {
    // Cargo runs integration tests from the package root, where config/ is.
    let mut settings: Settings = settings::figment(std::iter::empty())
        .and_then(|figment| {
            figment
                .extract()
                .map_err(|e| panic!("config/default.toml: {e}"))
        })
        .expect("the project's configuration loads");
    settings.jwt.secret = Some(SecretString::from(SECRET));
    settings.web.addr = "127.0.0.1:0".into();
    settings.socket.addr = "127.0.0.1:0".into();
    settings.users.push(UserEntry {
        username: SECOND_USER.into(),
        password_hash: web_frontend::users::hash_password(SECOND_PASSWORD).expect("hash"),
        rooms: Vec::new(),
    });
    settings
}

/// [`settings`] with the server API on ([`API_KEY`]).
pub(crate) fn settings_with_api() -> Settings {
    let mut settings = settings();
    settings.api.key = Some(SecretString::from(API_KEY));
    settings
}

pub(crate) async fn spawn_system() -> TestSystem {
    spawn_system_with(settings()).await
}

/// Both services as a deployment has them: the page knows the socket server's
/// address (and the web-frontend reports logouts there), and the socket server
/// allows the web-frontend's origin next to the configured ones. Both listeners
/// are bound before either service is configured, so no test waits for
/// readiness.
pub(crate) async fn spawn_system_with(mut settings: Settings) -> TestSystem {
    let web_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let socket_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let web_url = format!("http://{}", web_listener.local_addr().expect("addr"));
    let socket_addr = socket_listener.local_addr().expect("addr");
    let socket_url = format!("http://{socket_addr}");
    settings.web.socket_url = socket_url.clone();
    settings.socket.allowed_origins.push(web_url.clone());
    // A restarted socket server binds the same port again.
    settings.socket.addr = socket_addr.to_string();
    // A key pair with no public keys configured: the socket server reads the
    // web-frontend's JWK Set, as a deployment would.
    if settings.jwt.algorithm.is_asymmetric()
        && settings.jwt.public_key_files.is_empty()
        && settings.jwt.jwks_url.is_none()
    {
        settings.jwt.jwks_url = Some(format!("{web_url}/.well-known/jwks.json"));
    }

    let web = web_frontend::Application::build_with_listener(&settings, web_listener)
        .await
        .expect("web-frontend builds");
    let web_keys = web.keys();
    tokio::spawn(web.run_until(std::future::pending()));
    let socket = socket_server::Application::build_with_listener(&settings, socket_listener)
        .await
        .expect("socket-server builds");
    let system = TestSystem {
        web_url,
        socket_url,
        web_keys,
        settings,
        socket: Some(run_socket(socket)),
    };
    if system.settings.jwt.jwks_url.is_some() {
        // Its first fetch of the JWK Set is under way: wait for it.
        system
            .wait_socket_ready(std::time::Duration::from_secs(10))
            .await;
    }
    system
}

fn run_socket(socket: socket_server::Application) -> RunningSocket {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let keys = socket.keys();
    let task = tokio::spawn(socket.run_until(async move {
        let _ = stopped.await;
    }));
    RunningSocket { stop, task, keys }
}

impl TestSystem {
    /// Polls the socket server's `/readyz` until it answers 200.
    pub(crate) async fn wait_socket_ready(&self, within: std::time::Duration) {
        wait_ready(&self.socket_url, within).await;
    }

    /// The settings both services were started with.
    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The running socket server's keys: `reload` as SIGHUP does.
    pub(crate) fn socket_keys(&self) -> socket_server::KeyRing {
        self.socket
            .as_ref()
            .expect("the socket server runs")
            .keys
            .clone()
    }

    /// Stops the socket server as SIGTERM does, and waits until it has closed
    /// every transport.
    pub(crate) async fn stop_socket_server(&mut self) {
        let running = self.socket.take().expect("the socket server runs");
        let _ = running.stop.send(());
        running
            .task
            .await
            .expect("the socket server task")
            .expect("a clean stop");
    }

    /// Starts a new socket server on the same port.
    pub(crate) async fn start_socket_server(&mut self) {
        assert!(
            self.socket.is_none(),
            "the socket server is already running"
        );
        let socket = socket_server::Application::build(&self.settings)
            .await
            .expect("the socket server starts again on its port");
        self.socket = Some(run_socket(socket));
    }

    /// Logs `username` in with the form, as a browser would, and returns its client.
    pub(crate) async fn log_in(&self, username: &str, password: &str) -> reqwest::Client {
        log_in_at(&self.web_url, username, password).await
    }

    /// The token of a logged-in client, as the page fetches it.
    pub(crate) async fn token(&self, client: &reqwest::Client) -> String {
        token_at(&self.web_url, client).await
    }

    /// Logs a client out, as the page's button does (same-origin POST).
    pub(crate) async fn log_out(&self, client: &reqwest::Client) {
        let response = client
            .post(format!("{}/logout", self.web_url))
            .header("Origin", &self.web_url)
            .send()
            .await
            .expect("logout request");
        assert_eq!(response.status(), 303, "logout");
    }

    /// Logs in as the article's demo user and fetches a token.
    pub(crate) async fn demo_token(&self) -> String {
        let client = self.log_in("gonzalo", "password").await;
        self.token(&client).await
    }
}

/// A browser-like client: keeps cookies, follows no redirect.
pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// Logs `username` in at the web-frontend `web_url` with the form; its client.
pub(crate) async fn log_in_at(web_url: &str, username: &str, password: &str) -> reqwest::Client {
    let client = browser();
    let response = client
        .post(format!("{web_url}/login"))
        .form(&[("username", username), ("password", password)])
        .send()
        .await
        .expect("login request");
    assert_eq!(response.status(), 303, "login as {username}");
    client
}

/// The token of a client logged in at `web_url`, as the page fetches it.
pub(crate) async fn token_at(web_url: &str, client: &reqwest::Client) -> String {
    let response = client
        .get(format!("{web_url}/getIoConnectionToken"))
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), 200);
    response.json().await.expect("the token is a JSON string")
}

/// Polls `{base_url}/readyz` until it answers 200, within `within`.
pub(crate) async fn wait_ready(base_url: &str, within: std::time::Duration) {
    let deadline = tokio::time::Instant::now() + within;
    let url = format!("{base_url}/readyz");
    loop {
        if reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url} not 200 within {within:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The claims a valid token carries, issued now.
pub(crate) fn claims_now(username: &str) -> Value {
    let now = claims::unix_now();
    json!({
        "sub": username,
        "user": {"username": username},
        "iat": now,
        "exp": now + 300,
        "iss": "web-frontend",
        "aud": "socket-server",
        "jti": format!("test-{now}"),
    })
}

/// A valid token of `username` for login session `sid`, as an application
/// that issues its own tokens makes it.
pub(crate) fn token_of_session(username: &str, sid: &str) -> String {
    let mut payload = claims_now(username);
    payload["sid"] = json!(sid);
    mint(&payload)
}

pub(crate) fn mint(payload: &Value) -> String {
    testkit::sign_hs256(SECRET.as_bytes(), payload)
}

pub(crate) fn expired_token(username: &str) -> String {
    let mut payload = claims_now(username);
    payload["iat"] = json!(claims::unix_now() - 600);
    payload["exp"] = json!(claims::unix_now() - 300);
    mint(&payload)
}

pub(crate) fn forged_token(username: &str) -> String {
    testkit::sign_hs256(
        b"not-the-shared-key-not-the-shared-key!!",
        &claims_now(username),
    )
}

pub(crate) fn wrong_audience_token(username: &str) -> String {
    let mut payload = claims_now(username);
    payload["aud"] = json!("another-service");
    mint(&payload)
}

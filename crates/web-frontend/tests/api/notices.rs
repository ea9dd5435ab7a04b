//! Sign-in notices: a login publishes `notice` to the user's sockets through
//! the socket-server's server API (here a fake one), in the background.

use std::time::{Duration, Instant};

use secrecy::SecretString;
use settings::Settings;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::fake_socket_api::{Answer, FakeSocketApi, silent_api};
use crate::helpers::*;

const API_KEY: &str = "notice-tests-api-key-0123456789-abcdefghij";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0";
const EDGE: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51";
/// Long enough for a notice that is coming to arrive.
const ARRIVES_WITHIN: Duration = Duration::from_secs(5);
/// How long to wait for a notice that must not come.
const QUIET_FOR: Duration = Duration::from_millis(500);

fn settings_with_api(base_url: &str) -> Settings {
    let mut settings = settings();
    settings.api.key = Some(SecretString::from(API_KEY));
    settings.web.socket_internal_url = Some(base_url.to_owned());
    settings
}

impl TestApp {
    async fn basic_login_from(&self, user_agent: &str) -> reqwest::Response {
        self.client
            .get(self.url("/login"))
            .basic_auth(USERNAME, Some(PASSWORD))
            .header("user-agent", user_agent)
            .send()
            .await
            .expect("request")
    }

    async fn form_login_from(&self, user_agent: &str) -> reqwest::Response {
        self.client
            .post(self.url("/login"))
            .form(&[("username", USERNAME), ("password", PASSWORD)])
            .header("user-agent", user_agent)
            .send()
            .await
            .expect("request")
    }

    async fn metrics(&self) -> String {
        self.get("/metrics").await.text().await.expect("body")
    }

    /// Polls `/metrics` until it holds `line`, within `within`.
    async fn wait_for_metric(&self, line: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let metrics = self.metrics().await;
            if metrics.lines().any(|l| l == line) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no `{line}` within {within:?} in:\n{metrics}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Checks one publication: its request line, headers and body.
fn assert_sign_in_notice(request: &crate::fake_socket_api::Received, browser: &str) {
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/api/publish");
    assert_eq!(
        request.authorization.as_deref(),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    assert_eq!(request.content_type.as_deref(), Some("application/json"));
    let body = &request.body;
    assert_eq!(body["to"], format!("user:{USERNAME}"));
    assert_eq!(body["event"], "notice");
    let data = body["data"].as_object().expect("data is an object");
    let mut keys: Vec<&str> = data.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["browser", "kind", "text", "time"],
        "nothing else (no address)"
    );
    assert_eq!(data["kind"], "sign-in");
    assert_eq!(data["text"], "New sign-in to your account");
    assert_eq!(data["browser"], browser);
    let time = data["time"].as_str().expect("time is a string");
    let time = OffsetDateTime::parse(time, &Rfc3339).expect("time is RFC 3339");
    let skew = (OffsetDateTime::now_utc() - time).abs();
    assert!(
        skew < time::Duration::seconds(5),
        "time {time} is not now ({skew})"
    );
    assert_eq!(time.offset(), time::UtcOffset::UTC, "time is UTC");
}

#[tokio::test]
async fn a_basic_auth_login_publishes_exactly_one_sign_in_notice() {
    let mut api = FakeSocketApi::spawn(Answer::Published);
    let app = spawn_app_with(settings_with_api(&api.url)).await;

    let response = app.basic_login_from(FIREFOX).await;

    assert_eq!(response.status(), 303);
    let request = api.next_request(ARRIVES_WITHIN).await.expect("a notice");
    assert_sign_in_notice(&request, "Firefox");
    assert!(api.next_request(QUIET_FOR).await.is_none(), "only one");
    app.wait_for_metric(
        r#"authbridge_sign_in_notices_total{result="sent"} 1"#,
        ARRIVES_WITHIN,
    )
    .await;
}

#[tokio::test]
async fn a_form_login_publishes_exactly_one_sign_in_notice() {
    let mut api = FakeSocketApi::spawn(Answer::Published);
    let app = spawn_app_with(settings_with_api(&api.url)).await;

    let response = app.form_login_from(EDGE).await;

    assert_eq!(response.status(), 303);
    let request = api.next_request(ARRIVES_WITHIN).await.expect("a notice");
    assert_sign_in_notice(&request, "Edge");
    assert!(api.next_request(QUIET_FOR).await.is_none(), "only one");
}

#[tokio::test]
async fn a_login_without_a_user_agent_names_another_browser() {
    let mut api = FakeSocketApi::spawn(Answer::Published);
    let app = spawn_app_with(settings_with_api(&api.url)).await;

    let response = app.post_login(USERNAME, PASSWORD).await;

    assert_eq!(response.status(), 303);
    let request = api.next_request(ARRIVES_WITHIN).await.expect("a notice");
    assert_sign_in_notice(&request, "another browser");
}

#[tokio::test]
async fn a_failed_login_publishes_nothing() {
    let mut api = FakeSocketApi::spawn(Answer::Published);
    let app = spawn_app_with(settings_with_api(&api.url)).await;

    let response = app.post_login(USERNAME, "wrong").await;

    assert_eq!(response.status(), 401);
    assert!(api.next_request(QUIET_FOR).await.is_none());
}

#[tokio::test]
async fn without_an_api_key_a_login_publishes_nothing_and_counts_nothing() {
    let mut api = FakeSocketApi::spawn(Answer::Published);
    let mut settings = settings_with_api(&api.url);
    settings.api.key = None;
    let app = spawn_app_with(settings).await;

    assert_eq!(app.basic_login_from(FIREFOX).await.status(), 303);
    assert_eq!(app.form_login_from(FIREFOX).await.status(), 303);

    assert!(api.next_request(QUIET_FOR).await.is_none());
    assert!(
        !app.metrics()
            .await
            .contains("authbridge_sign_in_notices_total")
    );
}

#[tokio::test]
async fn an_api_answering_500_neither_delays_the_login_nor_goes_uncounted() {
    let mut api = FakeSocketApi::spawn(Answer::ServerError);
    let app = spawn_app_with(settings_with_api(&api.url)).await;

    let started = Instant::now();
    let response = app.form_login_from(FIREFOX).await;

    assert_eq!(response.status(), 303);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(api.next_request(ARRIVES_WITHIN).await.is_some());
    app.wait_for_metric(
        r#"authbridge_sign_in_notices_total{result="failed"} 1"#,
        ARRIVES_WITHIN,
    )
    .await;
    let metrics = app.metrics().await;
    assert!(metrics.contains(r#"authbridge_sign_in_notices_total{result="sent"} 0"#));
}

#[tokio::test]
async fn an_api_that_never_answers_neither_delays_the_login_nor_goes_uncounted() {
    let (url, _silent) = silent_api();
    let app = spawn_app_with(settings_with_api(&url)).await;

    let started = Instant::now();
    let response = app.basic_login_from(FIREFOX).await;

    assert_eq!(response.status(), 303);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(app.get("/private").await.status(), 200, "logged in");
    // The notice gives up after 2 s.
    app.wait_for_metric(
        r#"authbridge_sign_in_notices_total{result="failed"} 1"#,
        ARRIVES_WITHIN,
    )
    .await;
}

#[tokio::test]
async fn an_api_that_is_down_neither_delays_the_login_nor_goes_uncounted() {
    // A port nobody listens on: bound, then closed.
    let (url, listener) = silent_api();
    drop(listener);
    let app = spawn_app_with(settings_with_api(&url)).await;

    let started = Instant::now();
    let response = app.form_login_from(FIREFOX).await;

    assert_eq!(response.status(), 303);
    assert!(started.elapsed() < Duration::from_secs(1));
    app.wait_for_metric(
        r#"authbridge_sign_in_notices_total{result="failed"} 1"#,
        ARRIVES_WITHIN,
    )
    .await;
}

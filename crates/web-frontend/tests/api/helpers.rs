//! `spawn_app()`: a real web-frontend on 127.0.0.1:0 and a cookie-keeping client.

use reqwest::redirect::Policy;
use secrecy::SecretString;
use settings::{Settings, UserEntry};
use web_frontend::Application;

pub(crate) const SECRET: &str = "api-tests-shared-key-0123456789abcdef";
pub(crate) const USERNAME: &str = "alice";
pub(crate) const PASSWORD: &str = "correct horse battery staple";

pub(crate) struct TestApp {
    pub(crate) address: String,
    /// Keeps cookies, never follows redirects (tests look at each 303).
    pub(crate) client: reqwest::Client,
}

pub(crate) fn settings() -> Settings {
    let mut settings = Settings::default();
    settings.jwt.secret = Some(SecretString::from(SECRET));
    settings.web.addr = "127.0.0.1:0".into();
    settings.users = vec![UserEntry {
        username: USERNAME.into(),
        password_hash: web_frontend::users::hash_password(PASSWORD).expect("hash"),
        rooms: Vec::new(),
    }];
    settings
}

pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(settings()).await
}

pub(crate) async fn spawn_app_with(settings: Settings) -> TestApp {
    let app = Application::build(&settings)
        .await
        .expect("the web-frontend builds");
    // Bound before it is spawned: requests queue until it accepts, no sleep needed.
    let address = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        address,
        client: client(),
    }
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .expect("client")
}

impl TestApp {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub(crate) async fn post_login(&self, username: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/login"))
            .form(&[("username", username), ("password", password)])
            .send()
            .await
            .expect("request")
    }

    pub(crate) async fn basic_login(&self, username: &str, password: &str) -> reqwest::Response {
        self.client
            .get(self.url("/login"))
            .basic_auth(username, Some(password))
            .send()
            .await
            .expect("request")
    }

    pub(crate) async fn post_logout(&self) -> reqwest::Response {
        self.client
            .post(self.url("/logout"))
            .send()
            .await
            .expect("request")
    }
}

pub(crate) fn location(response: &reqwest::Response) -> &str {
    response
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

/// The `name=value` part of the response's session cookie.
pub(crate) fn session_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(web_frontend::SESSION_COOKIE))
        .and_then(|value| value.split(';').next())
        .expect("a session cookie is set")
        .to_owned()
}

//! A Rust client for the two services: log in to the web-frontend, then open a
//! Socket.IO connection (rust_socketio) that presents a fresh token on every
//! connection *and every reconnection*.
//!
//! This is the pattern that makes short-lived tokens survive a socket-server
//! restart: the client never reuses the token it connected with, it asks the
//! web-frontend for a new one each time (`on_reconnect`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), client::ClientError> {
//! use futures_util::FutureExt as _;
//! let session = client::WebSession::log_in("http://127.0.0.1:8080", "gonzalo", "password").await?;
//! let socket = client::socket_builder("http://127.0.0.1:3000", &session)
//!     .await?
//!     .on("welcome", |payload, _| async move { println!("{payload:?}") }.boxed())
//!     .connect()
//!     .await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::FutureExt as _;
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use rust_socketio::TransportType;
use rust_socketio::asynchronous::{ClientBuilder, ReconnectSettings};
use serde_json::json;

/// What can go wrong before a socket exists.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the web-frontend is unreachable: {0}")]
    Http(#[from] reqwest::Error),
    #[error("wrong username or password")]
    LoginRefused,
    /// `/getIoConnectionToken` answered 403: logged out, or the session expired.
    #[error("the login session has ended")]
    SessionEnded,
    #[error("the web-frontend answered {0}")]
    Unexpected(StatusCode),
    #[error(transparent)]
    Socket(#[from] rust_socketio::Error),
}

/// A logged-in session on the web-frontend (its cookie), which hands out tokens.
#[derive(Clone, Debug)]
pub struct WebSession {
    http: reqwest::Client,
    web_url: String,
    tokens_fetched: Arc<AtomicUsize>,
}

impl WebSession {
    /// Logs in with the login form, as a browser does.
    pub async fn log_in(
        web_url: &str,
        username: &str,
        password: &str,
    ) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .timeout(Duration::from_secs(10))
            .build()?;
        let web_url = web_url.trim_end_matches('/').to_owned();
        let response = http
            .post(format!("{web_url}/login"))
            .form(&[("username", username), ("password", password)])
            .send()
            .await?;
        match response.status() {
            StatusCode::SEE_OTHER => Ok(Self {
                http,
                web_url,
                tokens_fetched: Arc::default(),
            }),
            StatusCode::UNAUTHORIZED => Err(ClientError::LoginRefused),
            other => Err(ClientError::Unexpected(other)),
        }
    }

    /// A fresh connection token (`GET /getIoConnectionToken`).
    pub async fn connection_token(&self) -> Result<String, ClientError> {
        let response = self
            .http
            .get(format!("{}/getIoConnectionToken", self.web_url))
            .send()
            .await?;
        match response.status() {
            StatusCode::OK => {
                self.tokens_fetched.fetch_add(1, Ordering::Relaxed);
                Ok(response.json().await?)
            }
            StatusCode::FORBIDDEN => Err(ClientError::SessionEnded),
            other => Err(ClientError::Unexpected(other)),
        }
    }

    /// Ends the session (`POST /logout`).
    pub async fn log_out(&self) -> Result<(), ClientError> {
        let response = self
            .http
            .post(format!("{}/logout", self.web_url))
            .send()
            .await?;
        match response.status() {
            StatusCode::SEE_OTHER => Ok(()),
            other => Err(ClientError::Unexpected(other)),
        }
    }

    /// How many tokens this session has fetched so far.
    pub fn tokens_fetched(&self) -> usize {
        self.tokens_fetched.load(Ordering::Relaxed)
    }
}

/// A rust_socketio builder for `socket_url` that authenticates with a fresh
/// token now and on every reconnection. It reconnects after a transport close
/// (a restart), not after the server ended the socket (`session_ended`,
/// `token_expired`). Add handlers, then `connect()`.
pub async fn socket_builder(
    socket_url: &str,
    session: &WebSession,
) -> Result<ClientBuilder, ClientError> {
    let first = session.connection_token().await?;
    let session = session.clone();
    Ok(ClientBuilder::new(socket_url)
        .auth(json!({ "token": first }))
        // rust_socketio 0.6 notices a lost transport (and reconnects) only on
        // websocket; over long-polling it keeps polling the old session.
        .transport_type(TransportType::Websocket)
        .reconnect(true)
        .reconnect_on_disconnect(false)
        .reconnect_delay(200, 2000)
        .on_reconnect(move || {
            let session = session.clone();
            async move {
                let mut settings = ReconnectSettings::new();
                // Without a token the handshake is refused, which is the right
                // outcome when the session has ended.
                if let Ok(token) = session.connection_token().await {
                    settings.auth(json!({ "token": token }));
                }
                settings
            }
            .boxed()
        }))
}

//! Socket.IO test client: `rust_socketio`'s async client with its callbacks turned into
//! awaitable events, and a deadline on every wait.
//!
//! A client counts as connected only once the server's `welcome` arrived:
//! `rust_socketio` 0.6 returns from `connect()` as soon as it has *sent* the
//! CONNECT packet, before the server's connect middleware has accepted or
//! refused it, so the outcome has to be read from the events that follow.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::{collections::VecDeque, fmt, time::Duration};

use anyhow::{Context as _, Result, anyhow, bail};
use futures_util::FutureExt as _;
use rust_socketio::{
    Event, Payload,
    asynchronous::{Client, ClientBuilder},
};
use serde_json::{Value, json};
use tokio::{
    sync::{Mutex, mpsc},
    time::{Instant, timeout, timeout_at},
};

/// The most a handshake, an emit or a disconnect may take before the test fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// rust_socketio 0.6 reports a CONNECT_ERROR packet on the `error` callback as
/// this text followed by the packet's raw JSON data, e.g.
/// `{"message":"not valid token"}` (src/asynchronous/client/client.rs, `PacketId::ConnectError`).
const CONNECT_ERROR_PREFIX: &str = "Received an ConnectError frame: ";

/// The server refused the connection: its CONNECT_ERROR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// What a JavaScript client sees as `err.message` in `connect_error`, e.g. `not valid token`.
    pub(crate) message: String,
    /// The packet's whole data, e.g. `{"message": "not valid token"}`.
    pub(crate) data: Value,
}

impl Refusal {
    fn from_connect_error(raw: &str) -> Self {
        let data = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
        let message = match &data {
            Value::Object(fields) => fields
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned),
            // Protocol v4 servers send the bare message as a JSON string.
            Value::String(message) => Some(message.clone()),
            _ => None,
        };
        let message = message.unwrap_or_else(|| data.to_string());
        Self { message, data }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the server refused the connection: {}", self.message)
    }
}

impl std::error::Error for Refusal {}

/// What the callbacks forward, in arrival order (they run one at a time on the client's task).
#[derive(Debug)]
enum Incoming {
    Event {
        name: String,
        args: Vec<Value>,
    },
    Refused(Refusal),
    /// Anything else on the `error` callback: transport failures, undecodable packets.
    Error(String),
    /// The server sent a DISCONNECT packet.
    Closed,
}

/// Events received but not yet asked for, so that waiting for one event never loses another.
#[derive(Debug)]
struct Inbox {
    rx: mpsc::UnboundedReceiver<Incoming>,
    backlog: VecDeque<(String, Vec<Value>)>,
}

impl Inbox {
    /// The arguments of the next `name` event, `None` if none came by `deadline`.
    async fn take(&mut self, name: &str, deadline: Instant) -> Result<Option<Vec<Value>>> {
        if let Some(index) = self.backlog.iter().position(|(event, _)| event == name) {
            return Ok(self.backlog.remove(index).map(|(_, args)| args));
        }
        loop {
            let Ok(incoming) = timeout_at(deadline, self.rx.recv()).await else {
                return Ok(None);
            };
            match incoming {
                Some(Incoming::Event { name: event, args }) if event == name => {
                    return Ok(Some(args));
                }
                Some(Incoming::Event { name: event, args }) => {
                    self.backlog.push_back((event, args))
                }
                Some(Incoming::Refused(refusal)) => return Err(refusal.into()),
                Some(Incoming::Error(error)) => {
                    bail!("Socket.IO error while waiting for `{name}`: {error}")
                }
                Some(Incoming::Closed) => {
                    bail!("the server disconnected while waiting for `{name}`")
                }
                None => bail!("the Socket.IO client stopped while waiting for `{name}`"),
            }
        }
    }
}

/// How the server answered a handshake.
#[derive(Debug)]
enum Outcome {
    Welcomed(Value),
    Refused(Refusal),
}

/// A connected, welcomed Socket.IO client.
pub(crate) struct SioClient {
    client: Client,
    welcome: Value,
    inbox: Mutex<Inbox>,
}

impl fmt::Debug for SioClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SioClient")
            .field("welcome", &self.welcome)
            .finish_non_exhaustive()
    }
}

impl SioClient {
    /// Connects with `{"token": token}` as the handshake `auth` payload and waits for `welcome`.
    pub(crate) async fn connect_with_auth(url: &str, token: &str) -> Result<Self> {
        Self::connect(url, Some(json!({ "token": token }))).await
    }

    /// Connects with `?token=` in the handshake URL (the article's client) and waits for `welcome`.
    pub(crate) async fn connect_with_query(url: &str, token: &str) -> Result<Self> {
        Self::connect(&token_query_url(url, token), None).await
    }

    /// Connects to `url` (which may carry a query) with an optional `auth` payload and
    /// waits for `welcome`. A refusal is an error that downcasts to [`Refusal`].
    pub(crate) async fn connect(url: &str, auth: Option<Value>) -> Result<Self> {
        let (client, inbox, outcome) = handshake(url, auth).await?;
        match outcome {
            Outcome::Welcomed(welcome) => Ok(Self {
                client,
                welcome,
                inbox: Mutex::new(inbox),
            }),
            Outcome::Refused(refusal) => Err(refusal.into()),
        }
    }

    /// Expects the server to refuse a handshake with this `auth` payload (`None`: no
    /// payload) and returns the refusal's message, e.g. `not valid token`.
    pub(crate) async fn refusal_with_auth(url: &str, auth: Option<Value>) -> Result<String> {
        match handshake(url, auth).await? {
            // The refused client is dropped unclosed: rust_socketio 0.6 cannot close it (its
            // disconnect() fails with IllegalActionBeforeOpen once CONNECT_ERROR has cleared its
            // connected flag), so its Engine.IO session lasts until the test's runtime ends or
            // the server's connect timeout drops it.
            (_, _, Outcome::Refused(refusal)) => Ok(refusal.message),
            (client, _, Outcome::Welcomed(welcome)) => {
                // Best effort: the test already fails for the acceptance itself.
                let _ = timeout(DEADLINE, client.disconnect()).await;
                Err(anyhow!(
                    "expected the server to refuse the connection, but it sent welcome {welcome}"
                ))
            }
        }
    }

    /// Expects the server to refuse `?token=token` and returns the refusal's message.
    pub(crate) async fn refusal_with_query(url: &str, token: &str) -> Result<String> {
        Self::refusal_with_auth(&token_query_url(url, token), None).await
    }

    /// The first argument of the server's `welcome` event, e.g. `{"username": "gonzalo"}`.
    pub(crate) fn welcome(&self) -> Value {
        self.welcome.clone()
    }

    /// Emits `event` with `data` as its one argument.
    pub(crate) async fn emit(&self, event: &str, data: Value) -> Result<()> {
        timeout(DEADLINE, self.client.emit(event, data))
            .await
            .with_context(|| format!("emitting `{event}` took longer than {DEADLINE:?}"))?
            .with_context(|| format!("emitting `{event}`"))
    }

    /// Waits up to `within` for the next `event` and returns its first argument
    /// (`null` if it had none). Other events received meanwhile are kept for later calls.
    pub(crate) async fn next_event(&self, event: &str, within: Duration) -> Result<Value> {
        let mut inbox = self.inbox.lock().await;
        match inbox.take(event, Instant::now() + within).await? {
            Some(args) => Ok(args.into_iter().next().unwrap_or(Value::Null)),
            None => bail!("no `{event}` event within {within:?}"),
        }
    }

    /// Fails if an `event` arrives (or is already waiting) within `within`.
    pub(crate) async fn expect_no_event(&self, event: &str, within: Duration) -> Result<()> {
        let mut inbox = self.inbox.lock().await;
        match inbox.take(event, Instant::now() + within).await? {
            Some(args) => bail!("unexpected `{event}` event within {within:?}: {args:?}"),
            None => Ok(()),
        }
    }

    /// Emits `event` with `data` and an ack, and returns the ack's first argument.
    pub(crate) async fn call(&self, event: &str, data: Value) -> Result<Value> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let reply = std::sync::Arc::new(std::sync::Mutex::new(Some(reply)));
        let callback = move |payload: Payload, _: Client| {
            if let Some(reply) = reply.lock().ok().and_then(|mut reply| reply.take()) {
                // rust_socketio hands an ack's arguments over as one array.
                let first = match payload_args(payload).into_iter().next() {
                    Some(Value::Array(args)) => args.into_iter().next(),
                    other => other,
                };
                let _ = reply.send(first.unwrap_or(Value::Null));
            }
            async {}.boxed()
        };
        timeout(
            DEADLINE,
            self.client.emit_with_ack(event, data, DEADLINE, callback),
        )
        .await
        .with_context(|| format!("emitting `{event}` took longer than {DEADLINE:?}"))?
        .with_context(|| format!("emitting `{event}`"))?;
        timeout(DEADLINE, answer)
            .await
            .with_context(|| format!("no ack for `{event}` within {DEADLINE:?}"))?
            .with_context(|| format!("the ack for `{event}` was dropped"))
    }

    /// Waits up to `within` for the server to disconnect this socket (its
    /// DISCONNECT packet); events received meanwhile are kept.
    pub(crate) async fn disconnected(&self, within: Duration) -> Result<()> {
        let mut inbox = self.inbox.lock().await;
        let deadline = Instant::now() + within;
        loop {
            let Ok(incoming) = timeout_at(deadline, inbox.rx.recv()).await else {
                bail!("still connected after {within:?}");
            };
            match incoming {
                Some(Incoming::Closed) | None => return Ok(()),
                Some(Incoming::Event { name, args }) => inbox.backlog.push_back((name, args)),
                Some(Incoming::Refused(refusal)) => return Err(refusal.into()),
                Some(Incoming::Error(error)) => {
                    bail!("Socket.IO error while waiting for a disconnect: {error}")
                }
            }
        }
    }

    /// Sends DISCONNECT and closes the Engine.IO session.
    pub(crate) async fn disconnect(self) -> Result<()> {
        timeout(DEADLINE, self.client.disconnect())
            .await
            .with_context(|| format!("disconnecting took longer than {DEADLINE:?}"))?
            .context("disconnecting")
    }
}

/// `url` with `token=<token>` added to its query, percent-encoded (JWTs need none,
/// but malformed test tokens may).
pub(crate) fn token_query_url(url: &str, token: &str) -> String {
    // rust_socketio keeps the query: it only replaces a bare `/` path with
    // `/socket.io/`, and rust_engineio appends `EIO`, `transport` and `sid` to it.
    let separator = if url.contains('?') { '&' } else { '?' };
    let mut out = format!("{url}{separator}token=");
    for byte in token.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Connects and waits for the server's verdict: `welcome` or CONNECT_ERROR.
async fn handshake(url: &str, auth: Option<Value>) -> Result<(Client, Inbox, Outcome)> {
    let deadline = Instant::now() + DEADLINE;
    let (tx, rx) = mpsc::unbounded_channel();
    let on_any = {
        let tx = tx.clone();
        move |event: Event, payload: Payload, _: Client| {
            // A send fails only once the SioClient, and the test with it, is gone.
            let _ = tx.send(Incoming::Event {
                name: event.as_str().to_owned(),
                args: payload_args(payload),
            });
            async {}.boxed()
        }
    };
    let on_error = {
        let tx = tx.clone();
        move |payload: Payload, _: Client| {
            let text = payload_text(payload);
            let incoming = match text.strip_prefix(CONNECT_ERROR_PREFIX) {
                Some(raw) => Incoming::Refused(Refusal::from_connect_error(raw)),
                None => Incoming::Error(text),
            };
            let _ = tx.send(incoming);
            async {}.boxed()
        }
    };
    let on_close = move |_: Payload, _: Client| {
        let _ = tx.send(Incoming::Closed);
        async {}.boxed()
    };
    let mut builder = ClientBuilder::new(url)
        // A dropped connection should fail the test, not be silently re-established.
        .reconnect(false)
        .on_any(on_any)
        .on(Event::Error, on_error)
        .on(Event::Close, on_close);
    if let Some(auth) = auth {
        // Sent as the CONNECT packet's data: `0{"token":"…"}`.
        builder = builder.auth(auth);
    }
    let client = timeout_at(deadline, builder.connect())
        .await
        .with_context(|| format!("connecting to {url} took longer than {DEADLINE:?}"))?
        .with_context(|| format!("connecting to {url}"))?;

    let mut inbox = Inbox {
        rx,
        backlog: VecDeque::new(),
    };
    let outcome = loop {
        let incoming = timeout_at(deadline, inbox.rx.recv())
            .await
            .with_context(|| {
                format!("neither welcome nor a refusal from {url} within {DEADLINE:?}")
            })?;
        match incoming {
            Some(Incoming::Event { name, args }) if name == "welcome" => {
                break Outcome::Welcomed(args.into_iter().next().unwrap_or(Value::Null));
            }
            Some(Incoming::Event { name, args }) => inbox.backlog.push_back((name, args)),
            Some(Incoming::Refused(refusal)) => break Outcome::Refused(refusal),
            Some(Incoming::Error(error)) => {
                bail!("Socket.IO error before welcome from {url}: {error}")
            }
            Some(Incoming::Closed) => bail!("{url} disconnected before welcome"),
            None => bail!("the Socket.IO client for {url} stopped before welcome"),
        }
    };
    Ok((client, inbox, outcome))
}

/// A payload as JSON arguments, binary attachments as arrays of bytes.
fn payload_args(payload: Payload) -> Vec<Value> {
    match payload {
        Payload::Text(values) => values,
        Payload::Binary(bytes) => vec![Value::from(bytes.to_vec())],
        #[allow(deprecated)] // never produced for received events, but still a variant
        Payload::String(text) => vec![serde_json::from_str(&text).unwrap_or(Value::String(text))],
    }
}

/// The text the crate passes to the `error` callback (a one-string payload).
fn payload_text(payload: Payload) -> String {
    match payload_args(payload).as_mut_slice() {
        [Value::String(text)] => std::mem::take(text),
        args => Value::from(args.to_vec()).to_string(),
    }
}

//! Load generator for the socket-server and the web-frontend (and the Node peer,
//! which serves the same contract): handshakes, held connections, fanout and
//! token issuance, each measured and reported as one line or one JSON object.
//!
//! It speaks Engine.IO v4 / Socket.IO v5 over a WebSocket itself
//! ([`engineio`]): one TCP stream and a few buffers per connection, so that
//! tens of thousands of connections measure the server, not the client.
//! Every wait on a server has a timeout, and every scenario a deadline.

pub mod connect;
pub mod engineio;
pub mod fanout;
mod fleet;
pub mod hold;
pub mod issue;
pub mod process;
pub mod stats;
pub mod tokens;

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

pub use connect::{ConnectOptions, ConnectReport};
pub use fanout::{FanoutOptions, FanoutReport};
pub use fleet::NOT_VALID_TOKEN;
pub use hold::{HoldOptions, HoldReport};
pub use issue::{IssueOptions, IssueReport};
pub use tokens::{MintSettings, TokenSource, WebLogin};

/// Why a run could not be carried out (failures of single connections are
/// counted in the reports instead).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Usage(String),
    #[error("tokens: {0}")]
    Tokens(String),
    #[error("web-frontend: {0}")]
    Web(String),
    #[error("server process: {0}")]
    Process(std::io::Error),
    #[error("deadline passed: {0}")]
    Deadline(String),
}

/// What the Socket.IO scenarios share: the server, the tokens, how many
/// connections and how fast.
#[derive(Debug, Clone)]
pub struct SocketRun {
    /// The socket server's address.
    pub server: SocketAddr,
    pub tokens: TokenSource,
    pub connections: usize,
    /// Handshakes in flight at once.
    pub concurrency: usize,
    /// Source addresses 127.0.0.1 … 127.0.0.K; `None`: one per 20,000 connections.
    pub sources: Option<usize>,
    /// The server's process, for its CPU time (and memory, in `hold`).
    pub server_pid: Option<u32>,
    /// Bound on each handshake (and each request of the token source).
    pub step_timeout: Duration,
    /// Bound on the whole run.
    pub deadline: Duration,
}

impl SocketRun {
    /// A run of `connections` against `server` with the defaults: 200 in
    /// flight, 10 s per handshake, 120 s in all.
    pub fn new(server: SocketAddr, tokens: TokenSource, connections: usize) -> Self {
        Self {
            server,
            tokens,
            connections,
            concurrency: 200,
            sources: None,
            server_pid: None,
            step_timeout: Duration::from_secs(10),
            deadline: Duration::from_secs(120),
        }
    }
}

/// `http://host:port[/…]` (or `ws://`, or a bare `host:port`) to a socket address.
pub async fn resolve(url: &str) -> Result<SocketAddr, LoadError> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let lookup = tokio::time::timeout(Duration::from_secs(10), tokio::net::lookup_host(authority));
    lookup
        .await
        .ok()
        .and_then(Result::ok)
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| LoadError::Usage(format!("cannot resolve {url:?} (want http://host:port)")))
}

/// One run's result, as printed.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "scenario", rename_all = "lowercase")]
pub enum Report {
    Connect(ConnectReport),
    Hold(HoldReport),
    Fanout(FanoutReport),
    Issue(IssueReport),
}

impl Report {
    /// Mismatches and failures counted during the run.
    pub fn errors(&self) -> usize {
        match self {
            Report::Connect(report) => report.errors,
            Report::Hold(report) => report.errors,
            Report::Fanout(report) => report.errors,
            Report::Issue(report) => report.failed,
        }
    }

    /// One line for a person.
    pub fn summary(&self) -> String {
        match self {
            Report::Connect(report) => report.summary(),
            Report::Hold(report) => report.summary(),
            Report::Fanout(report) => report.summary(),
            Report::Issue(report) => report.summary(),
        }
    }
}

/// Milliseconds, for reports.
fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Server CPU per unit of work, in milliseconds, when the server was watched.
fn cpu_ms_per(cpu: Option<Duration>, count: usize) -> Option<f64> {
    cpu.filter(|_| count > 0)
        .map(|cpu| millis(cpu) / count as f64)
}

/// Starts the server's CPU meter when a pid was given.
fn cpu_meter(pid: Option<u32>) -> Result<Option<process::CpuMeter>, LoadError> {
    pid.map(process::CpuMeter::start)
        .transpose()
        .map_err(LoadError::Process)
}

fn cpu_used(meter: Option<process::CpuMeter>) -> Result<Option<Duration>, LoadError> {
    meter
        .map(|meter| meter.elapsed())
        .transpose()
        .map_err(LoadError::Process)
}

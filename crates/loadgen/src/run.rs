//! What the Socket.IO scenarios share, and where the server is.

use std::net::SocketAddr;
use std::time::Duration;

use crate::error::LoadError;
use crate::tokens::TokenSource;

/// What the Socket.IO scenarios share: the server, the tokens, how many
/// connections and how fast.
#[derive(Debug, Clone)]
pub struct SocketRun {
    /// The socket server's address.
    pub server: SocketAddr,
    /// More socket nodes of the same cluster (the scaled mode): connection
    /// `i` goes to `[server, more_servers…][i % (1 + more_servers.len())]`.
    pub more_servers: Vec<SocketAddr>,
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
            more_servers: Vec::new(),
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

impl SocketRun {
    /// Every socket node: `server` first.
    pub fn servers(&self) -> Vec<SocketAddr> {
        std::iter::once(self.server)
            .chain(self.more_servers.iter().copied())
            .collect()
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

//! Load generator for the socket-server and the web-frontend (and the Node peer,
//! which serves the same contract): handshakes, held connections, fanout,
//! token issuance and the server API's publications, each measured and
//! reported as one line or one JSON object.
//!
//! It speaks Engine.IO v4 / Socket.IO v5 over a WebSocket itself
//! ([`engineio`]): one TCP stream and a few buffers per connection, so that
//! tens of thousands of connections measure the server, not the client.
//! Every wait on a server has a timeout, and every scenario a deadline.

pub mod connect;
pub mod engineio;
mod error;
pub mod fanout;
mod fleet;
pub mod hold;
pub mod http1;
pub mod issue;
pub mod process;
pub mod publish;
mod run;
pub mod stats;
pub mod tokens;

use serde::Serialize;

pub use connect::{ConnectOptions, ConnectReport};
pub use error::LoadError;
pub use fanout::{FanoutOptions, FanoutReport};
pub use fleet::NOT_VALID_TOKEN;
pub use hold::{HoldOptions, HoldReport};
pub use issue::{IssueOptions, IssueReport};
pub use publish::{Phase, PhaseReport, PublishOptions, PublishReport, TargetKind};
pub use run::{SocketRun, resolve};
pub use tokens::{MintSettings, TokenSource, WebLogin};

/// One run's result, as printed.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "scenario", rename_all = "lowercase")]
pub enum Report {
    Connect(ConnectReport),
    Hold(HoldReport),
    Fanout(FanoutReport),
    Issue(IssueReport),
    Publish(PublishReport),
}

impl Report {
    /// Mismatches and failures counted during the run.
    pub fn errors(&self) -> usize {
        match self {
            Report::Connect(report) => report.errors,
            Report::Hold(report) => report.errors,
            Report::Fanout(report) => report.errors,
            Report::Issue(report) => report.failed,
            Report::Publish(report) => report.errors,
        }
    }

    /// One line for a person.
    pub fn summary(&self) -> String {
        match self {
            Report::Connect(report) => report.summary(),
            Report::Hold(report) => report.summary(),
            Report::Fanout(report) => report.summary(),
            Report::Issue(report) => report.summary(),
            Report::Publish(report) => report.summary(),
        }
    }
}

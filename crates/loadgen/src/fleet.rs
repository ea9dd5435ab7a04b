//! Many Socket.IO handshakes at a bounded concurrency, what each one ended
//! in, and the sockets held open afterwards.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::engineio::{self, ClientError, Handshake, SocketIoClient};
use crate::error::LoadError;
use crate::run::SocketRun;
use crate::stats::Latencies;
use crate::tokens::Token;

/// The refusal every forged token must get.
pub const NOT_VALID_TOKEN: &str = "not valid token";

/// How many error messages a report keeps, as examples.
const ERROR_SAMPLES: usize = 5;

struct Finished {
    index: usize,
    forged: bool,
    latency: Duration,
    outcome: Result<Handshake, ClientError>,
}

/// What the handshakes of a run added up to.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Genuine tokens welcomed.
    pub(crate) greeted: usize,
    /// Forged tokens refused with `not valid token`.
    pub(crate) refused: usize,
    /// Everything else: failures, timeouts, a genuine token refused, a forged
    /// one accepted or refused with another message.
    pub(crate) errors: usize,
    pub(crate) error_samples: Vec<String>,
    /// TCP connect → `welcome`, genuine tokens only.
    pub(crate) latencies: Latencies,
    /// First connect → last handshake finished.
    pub(crate) elapsed: Duration,
}

impl Tally {
    pub(crate) fn error(&mut self, message: String) {
        self.errors += 1;
        if self.error_samples.len() < ERROR_SAMPLES {
            self.error_samples.push(message);
        }
    }
}

/// The source addresses to spread `connections` over: none (the kernel picks)
/// up to 20,000, else one loopback address per 20,000 (each has ~28k ports).
pub(crate) fn sources(
    server: SocketAddr,
    connections: usize,
    wanted: Option<usize>,
) -> Vec<IpAddr> {
    let count = wanted.unwrap_or_else(|| connections.div_ceil(20_000));
    if count <= 1 || !server.ip().is_loopback() || !server.is_ipv4() {
        return Vec::new();
    }
    (1..=count.min(254))
        .map(|host| IpAddr::V4(Ipv4Addr::new(127, 0, 0, host as u8)))
        .collect()
}

/// Opens one connection per token, `run.concurrency` handshakes in flight,
/// and hands every welcomed socket to `keep` (in the order they finish).
/// Fails when `deadline` passes before every handshake has finished.
pub(crate) async fn open_all(
    run: &SocketRun,
    tokens: Vec<Token>,
    deadline: Instant,
    mut keep: impl FnMut(usize, SocketIoClient),
) -> Result<Tally, LoadError> {
    let count = tokens.len();
    let sources = sources(run.server, count, run.sources);
    let (finished_tx, mut finished) = mpsc::unbounded_channel::<Finished>();
    let in_flight = Arc::new(Semaphore::new(run.concurrency.max(1)));
    let servers = run.servers();
    let step_timeout = run.step_timeout;
    let started = Instant::now();
    let driver = tokio::spawn(async move {
        for (index, Token { token, forged }) in tokens.into_iter().enumerate() {
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                return;
            };
            let source = (!sources.is_empty()).then(|| sources[index % sources.len()]);
            let server = servers[index % servers.len()];
            let finished = finished_tx.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                let outcome = engineio::connect(server, source, &token, step_timeout).await;
                let latency = start.elapsed();
                drop(permit);
                let _ = finished.send(Finished {
                    index,
                    forged,
                    latency,
                    outcome,
                });
            });
        }
    });

    let mut tally = Tally::default();
    for done in 0..count {
        let Ok(Some(handshake)) = tokio::time::timeout_at(deadline.into(), finished.recv()).await
        else {
            driver.abort();
            return Err(LoadError::Deadline(format!(
                "{done} of {count} handshakes finished ({} greeted, {} errors)",
                tally.greeted, tally.errors
            )));
        };
        let Finished {
            index,
            forged,
            latency,
            outcome,
        } = handshake;
        match (outcome, forged) {
            (Ok(Handshake::Welcomed(client)), false) => {
                tally.greeted += 1;
                tally.latencies.record(latency);
                keep(index, client);
            }
            (Ok(Handshake::Welcomed(_)), true) => {
                tally.error(format!("connection {index}: a forged token was welcomed"));
            }
            (Ok(Handshake::Refused(message)), true) if message == NOT_VALID_TOKEN => tally.refused += 1,
            (Ok(Handshake::Refused(message)), true) => tally.error(format!(
                "connection {index}: a forged token was refused with {message:?}, not {NOT_VALID_TOKEN:?}"
            )),
            (Ok(Handshake::Refused(message)), false) => {
                tally.error(format!("connection {index}: refused: {message}"));
            }
            (Err(error), _) => tally.error(format!("connection {index}: {error}")),
        }
    }
    tally.elapsed = started.elapsed();
    Ok(tally)
}

/// Welcomed sockets kept open (pings answered) until released.
#[derive(Debug)]
pub(crate) struct Holders {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Holders {
    pub(crate) fn new() -> Self {
        Self {
            stop: watch::channel(false).0,
            tasks: JoinSet::new(),
        }
    }

    pub(crate) fn hold(&mut self, client: SocketIoClient) {
        self.tasks.spawn(client.hold_until(self.stop.subscribe()));
    }

    /// Closes every held socket (bounded: stragglers are dropped).
    pub(crate) async fn release(mut self) {
        self.stop.send_replace(true);
        let all_closed = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(10), all_closed)
            .await
            .is_err()
        {
            self.tasks.abort_all();
        }
    }
}

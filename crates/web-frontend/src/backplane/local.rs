//! The embedded mode's revocation channel: a logout is pushed to the
//! socket-server over HTTP at once (the handler waits for it, briefly), and
//! every session ended within one token lifetime is pushed again every 2
//! seconds — an empty list too, as a heartbeat — so a socket server that was
//! down or restarted learns the whole list within 2 s (and holds back tokens
//! older than itself until it has). Notices are signed
//! (`claims::RevocationSigner`).

use std::collections::HashMap;
use std::time::Duration;

use claims::Revocation;
use tokio::sync::{mpsc, oneshot};

use super::http::SocketServerHttp;
use crate::error::BuildError;
use crate::keys::KeyRing;

/// How often the whole list of live revocations is sent again.
const RESYNC_EVERY: Duration = Duration::from_secs(2);
/// One push may take this long (the logout response waits at most that).
const PUSH_TIMEOUT: Duration = Duration::from_millis(800);
/// Logouts waiting for the publisher; past this, a logout waits for room.
const QUEUE: usize = 1024;
/// The socket-server's endpoint for notices.
const REVOCATIONS_PATH: &str = "/internal/revocations";

/// The handle request handlers use; the publisher task does the sending.
#[derive(Clone, Debug)]
pub(crate) struct RevocationPublisher {
    commands: mpsc::Sender<Command>,
}

#[derive(Debug)]
struct Command {
    revocation: Revocation,
    delivered: oneshot::Sender<bool>,
}

impl RevocationPublisher {
    /// Starts the publisher task on the current runtime, sending to the
    /// socket-server at `socket_base_url`.
    pub(crate) fn start(keys: KeyRing, socket_base_url: &str) -> Result<Self, BuildError> {
        let http = SocketServerHttp::new(socket_base_url, PUSH_TIMEOUT)?;
        let (commands, receiver) = mpsc::channel(QUEUE);
        let task = Publisher {
            reachable: true,
            http,
            keys,
            live: HashMap::new(),
        };
        tokio::spawn(task.run(receiver));
        Ok(Self { commands })
    }

    /// Pushes a revocation: `true` once the socket servers have it, `false`
    /// when not yet (the resync keeps sending it).
    pub(crate) async fn push(&self, revocation: Revocation) -> bool {
        let (delivered, outcome) = oneshot::channel();
        let command = Command {
            revocation,
            delivered,
        };
        if self.commands.send(command).await.is_err() {
            return false;
        }
        outcome.await.unwrap_or(false)
    }
}

struct Publisher {
    /// Whether the last push got through (warnings are for changes only).
    reachable: bool,
    http: SocketServerHttp,
    keys: KeyRing,
    /// sid → until: every session ended within one token lifetime.
    live: HashMap<String, i64>,
}

impl Publisher {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut resync = tokio::time::interval(RESYNC_EVERY);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = commands.recv() => {
                    let Some(Command { revocation, delivered }) = command else { return };
                    self.live.insert(revocation.sid.clone(), revocation.until);
                    let ok = self.push(std::slice::from_ref(&revocation)).await;
                    let _ = delivered.send(ok);
                }
                _ = resync.tick() => {
                    let now = claims::unix_now();
                    self.live.retain(|_, until| now < *until);
                    let all: Vec<Revocation> = self
                        .live
                        .iter()
                        .map(|(sid, until)| Revocation { sid: sid.clone(), until: *until })
                        .collect();
                    self.push(&all).await;
                }
            }
        }
    }

    async fn push(&mut self, revocations: &[Revocation]) -> bool {
        let delivered = self.deliver(revocations).await;
        if delivered != self.reachable {
            self.reachable = delivered;
            if delivered {
                tracing::info!("the socket server takes revocation notices again");
            }
        }
        delivered
    }

    async fn deliver(&self, revocations: &[Revocation]) -> bool {
        let notice = match self
            .keys
            .current()
            .revocations
            .sign(revocations, claims::unix_now())
        {
            Ok(notice) => notice,
            Err(error) => {
                tracing::error!(%error, "signing a revocation notice failed");
                return false;
            }
        };
        match self.http.post(REVOCATIONS_PATH).body(notice).send().await {
            Ok(response) if response.status().is_success() => true,
            Ok(response) => {
                if self.reachable {
                    tracing::warn!(status = %response.status(), "the socket server refused a revocation notice (same keys? it retries every 2 s)");
                }
                false
            }
            Err(error) => {
                if self.reachable {
                    tracing::warn!(%error, "the socket server is unreachable for revocation notices; retrying every 2 s");
                }
                false
            }
        }
    }
}

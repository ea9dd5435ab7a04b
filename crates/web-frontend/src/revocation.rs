//! Logout revocation: the web-frontend tells the socket-server which login
//! sessions ended, over the authenticated channel (`claims::RevocationSigner`).
//!
//! Scaled mode: the notice goes through Redis ([`crate::backplane`]) to every
//! socket-server node. Embedded mode: a logout is pushed at once (the handler waits for it, briefly), and every
//! session ended within one token lifetime is pushed again every 2 seconds —
//! an empty list too, as a heartbeat — so a socket server that was down or
//! restarted learns the whole list within 2 s (and holds back tokens older
//! than itself until it has).

use std::collections::HashMap;
use std::time::Duration;

use claims::Revocation;

use crate::keys::KeyRing;
use tokio::sync::{mpsc, oneshot};

/// How often the whole list of live revocations is sent again.
const RESYNC_EVERY: Duration = Duration::from_secs(2);
/// One push may take this long (the logout response waits at most that).
const PUSH_TIMEOUT: Duration = Duration::from_millis(800);
/// Logouts waiting for the publisher; past this, a logout waits for room.
const QUEUE: usize = 1024;

#[derive(Debug)]
pub(crate) struct Command {
    revocation: Revocation,
    delivered: oneshot::Sender<bool>,
}

/// The handle request handlers use.
#[derive(Clone, Debug)]
pub(crate) enum RevocationPublisher {
    /// Embedded: pushed over HTTP to the socket-server, and resent.
    Http(mpsc::Sender<Command>),
    /// Scaled: recorded in Redis and announced on its channel.
    Redis {
        redis: crate::backplane::Redis,
        keys: KeyRing,
    },
}

impl RevocationPublisher {
    /// Starts the HTTP publisher task on the current runtime.
    pub(crate) fn start(keys: KeyRing, socket_base_url: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(PUSH_TIMEOUT)
            .build()
            .map_err(|error| anyhow::anyhow!("the revocation channel's HTTP client: {error}"))?;
        let url = format!(
            "{}/internal/revocations",
            socket_base_url.trim_end_matches('/')
        );
        let (commands, receiver) = mpsc::channel(QUEUE);
        let task = Publisher {
            reachable: true,
            client,
            url,
            keys,
            live: HashMap::new(),
        };
        tokio::spawn(task.run(receiver));
        Ok(Self::Http(commands))
    }

    /// Revokes a session. `Ok(true)`: the socket servers have it; `Ok(false)`:
    /// not yet (embedded mode: the resync keeps trying); `Err`: Redis is
    /// unavailable and nothing was recorded (the logout must not go ahead).
    pub(crate) async fn revoke(&self, sid: String, until: i64) -> anyhow::Result<bool> {
        let revocation = Revocation { sid, until };
        match self {
            RevocationPublisher::Http(commands) => {
                let (delivered, outcome) = oneshot::channel();
                let command = Command {
                    revocation,
                    delivered,
                };
                if commands.send(command).await.is_err() {
                    return Ok(false);
                }
                Ok(outcome.await.unwrap_or(false))
            }
            RevocationPublisher::Redis { redis, keys } => {
                redis
                    .revoke(&keys.current().revocations, revocation)
                    .await?;
                Ok(true)
            }
        }
    }
}

struct Publisher {
    /// Whether the last push got through (warnings are for changes only).
    reachable: bool,
    client: reqwest::Client,
    url: String,
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
        match self.client.post(&self.url).body(notice).send().await {
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

//! Tokens expire on live sockets too: one task holds one deadline per socket
//! (a timer wheel), so thousands of sockets cost thousands of small entries,
//! not thousands of tasks.

use std::collections::HashMap;
use std::time::Duration;

use socketioxide::SocketIo;
use socketioxide::socket::Sid;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::time::DelayQueue;

use std::sync::Arc;

use crate::identity::Identity;
use crate::metrics::Metrics;

enum Command {
    Schedule(Sid, i64),
    Cancel(Sid),
}

/// Sets and clears the expiry deadline of each connected socket.
#[derive(Clone, Debug)]
pub(crate) struct ExpiryScheduler {
    commands: mpsc::UnboundedSender<Command>,
    leeway_secs: i64,
}

/// The receiving half, handed to [`ExpiryTask::run`] once the `SocketIo` handle exists.
pub(crate) struct ExpiryTask {
    commands: mpsc::UnboundedReceiver<Command>,
    leeway_secs: i64,
    metrics: Arc<Metrics>,
}

pub(crate) fn scheduler(leeway_secs: u64, metrics: Arc<Metrics>) -> (ExpiryScheduler, ExpiryTask) {
    let (commands, receiver) = mpsc::unbounded_channel();
    let leeway_secs = i64::try_from(leeway_secs).unwrap_or(i64::MAX);
    let task = ExpiryTask {
        commands: receiver,
        leeway_secs,
        metrics,
    };
    (
        ExpiryScheduler {
            commands,
            leeway_secs,
        },
        task,
    )
}

impl ExpiryScheduler {
    /// The socket is ended when `expires_at` (+ leeway) passes, unless
    /// rescheduled (a successful `reauth`) or cancelled (disconnected) first.
    pub(crate) fn schedule(&self, socket: Sid, expires_at: i64) {
        let _ = self.commands.send(Command::Schedule(
            socket,
            expires_at.saturating_add(self.leeway_secs),
        ));
    }

    pub(crate) fn cancel(&self, socket: Sid) {
        let _ = self.commands.send(Command::Cancel(socket));
    }
}

fn instant_at(deadline: i64) -> Instant {
    let wait = u64::try_from(deadline.saturating_sub(claims::unix_now())).unwrap_or(0);
    // Beyond a year means "never" for a live socket (and keeps the wheel's range).
    Instant::now() + Duration::from_secs(wait.min(365 * 24 * 3600))
}

impl ExpiryTask {
    /// Runs until every [`ExpiryScheduler`] is gone.
    pub(crate) async fn run(mut self, io: SocketIo) {
        let mut deadlines = DelayQueue::new();
        let mut keys = HashMap::new();
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Schedule(socket, deadline)) => match keys.get(&socket) {
                        Some(key) => deadlines.reset_at(key, instant_at(deadline)),
                        None => {
                            keys.insert(socket, deadlines.insert_at(socket, instant_at(deadline)));
                        }
                    },
                    Some(Command::Cancel(socket)) => {
                        if let Some(key) = keys.remove(&socket) {
                            deadlines.remove(&key);
                        }
                    }
                    None => return,
                },
                Some(expired) = std::future::poll_fn(|cx| deadlines.poll_expired(cx)) => {
                    let socket = expired.into_inner();
                    keys.remove(&socket);
                    self.expire(&io, socket);
                }
            }
        }
    }

    fn expire(&self, io: &SocketIo, socket: Sid) {
        // `of`: after a shutdown closed the namespace there is nothing to expire.
        let Some(socket) = io.of("/").and_then(|ns| ns.get_socket(socket)) else {
            return;
        };
        let Some(identity) = socket.extensions.get::<Identity>() else {
            return;
        };
        // A reauth racing the timer has moved the deadline: nothing to do.
        if claims::unix_now() < identity.expires_at.saturating_add(self.leeway_secs) {
            return;
        }
        tracing::debug!(sid = %socket.id, username = %identity.username, "token expired on a live socket");
        crate::metrics::bump(&self.metrics.tokens_expired);
        let _ = socket.emit(
            "token_expired",
            &serde_json::json!({ "exp": identity.expires_at }),
        );
        let _ = socket.disconnect();
    }
}

//! `hold`: N connections held open; the server's resident memory before and
//! once all are greeted, and the bytes each connection costs it.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::LoadError;
use crate::fleet::{self, Holders};
use crate::process;
use crate::run::SocketRun;

#[derive(Debug, Clone)]
pub struct HoldOptions {
    /// `run.server_pid` is required: its memory is the measurement.
    pub run: SocketRun,
    /// How long the connections stay open before the second reading (the
    /// server may still be allocating for the last ones).
    pub settle: Duration,
    /// How long after every connection closed the third reading is taken (the
    /// memory the server gave back); zero: no third reading.
    pub after_close: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct HoldReport {
    pub connections: usize,
    pub greeted: usize,
    pub errors: usize,
    pub error_samples: Vec<String>,
    /// Source addresses the connections came from (0: the kernel's choice).
    pub sources: usize,
    /// Opening every connection took this long.
    pub elapsed_secs: f64,
    pub rss_before_bytes: u64,
    pub rss_after_bytes: u64,
    /// (after − before) / greeted.
    pub bytes_per_connection: f64,
    pub kib_per_connection: f64,
    /// VmRSS `after_close_secs` after every connection was closed (when asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_after_close_bytes: Option<u64>,
    /// How long after the close the third reading was taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_close_secs: Option<f64>,
}

impl HoldReport {
    pub(crate) fn summary(&self) -> String {
        let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
        let closed = match (self.rss_after_close_bytes, self.after_close_secs) {
            (Some(bytes), Some(secs)) => {
                format!("; {:.1} MiB {secs:.0} s after they closed", mib(bytes))
            }
            _ => String::new(),
        };
        format!(
            "hold: {}/{} greeted, {} errors in {:.2} s; server RSS {:.1} MiB → {:.1} MiB: {:.1} KiB per connection{closed}",
            self.greeted,
            self.connections,
            self.errors,
            self.elapsed_secs,
            mib(self.rss_before_bytes),
            mib(self.rss_after_bytes),
            self.kib_per_connection,
        )
    }
}

/// Runs the scenario; the connections are closed before it returns.
pub async fn run(options: &HoldOptions) -> Result<HoldReport, LoadError> {
    let run = &options.run;
    let pid = run.server_pid.ok_or_else(|| {
        LoadError::Usage("hold needs the server's process id (--server-pid)".into())
    })?;
    let deadline = Instant::now() + run.deadline;
    let tokens = run
        .tokens
        .tokens(run.connections, 0.0, run.step_timeout)
        .await?;
    let rss_before = process::rss_bytes(pid).map_err(LoadError::Process)?;
    let mut holders = Holders::new();
    let tally = fleet::open_all(run, tokens, deadline, |_, client| holders.hold(client)).await;
    let rss_after = match &tally {
        Ok(_) => {
            let settle = options
                .settle
                .min(deadline.saturating_duration_since(Instant::now()));
            tokio::time::sleep(settle).await;
            process::rss_bytes(pid).map_err(LoadError::Process)
        }
        Err(_) => Ok(0),
    };
    holders.release().await;
    let tally = tally?;
    let rss_after = rss_after?;
    // What the server gives back once the connections are gone (its allocator
    // may return memory with a delay: the reading is the last of the wait).
    let rss_after_close = if options.after_close.is_zero() {
        None
    } else {
        tokio::time::sleep(options.after_close).await;
        Some(process::rss_bytes(pid).map_err(LoadError::Process)?)
    };
    let bytes_per_connection = if tally.greeted > 0 {
        rss_after.saturating_sub(rss_before) as f64 / tally.greeted as f64
    } else {
        0.0
    };
    Ok(HoldReport {
        connections: run.connections,
        greeted: tally.greeted,
        errors: tally.errors,
        error_samples: tally.error_samples,
        sources: fleet::sources(run.server, run.connections, run.sources).len(),
        elapsed_secs: tally.elapsed.as_secs_f64(),
        rss_before_bytes: rss_before,
        rss_after_bytes: rss_after,
        bytes_per_connection,
        kib_per_connection: bytes_per_connection / 1024.0,
        rss_after_close_bytes: rss_after_close,
        after_close_secs: rss_after_close.map(|_| options.after_close.as_secs_f64()),
    })
}

//! `issue`: K logged-in HTTP clients each asking `GET /getIoConnectionToken`
//! back to back for D seconds; requests per second and latency.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::error::LoadError;
use crate::process::{cpu_meter, cpu_ms_per, cpu_used};
use crate::stats::{Latencies, Percentiles, per_second};
use crate::tokens::{WebLogin, fetch_token};

/// Logins run this many at a time: each one is an argon2 hash on the server.
const LOGINS_IN_FLIGHT: usize = 2;

#[derive(Debug, Clone)]
pub struct IssueOptions {
    pub web: WebLogin,
    /// Concurrent clients, each with its own login session.
    pub clients: usize,
    /// How long the clients ask.
    pub duration: Duration,
    pub server_pid: Option<u32>,
    /// Bound on each request.
    pub step_timeout: Duration,
    /// Bound on the whole run (logins included).
    pub deadline: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct IssueReport {
    pub clients: usize,
    pub duration_secs: f64,
    pub requests: usize,
    /// 200 with a JSON string body.
    pub ok: usize,
    pub failed: usize,
    pub error_samples: Vec<String>,
    /// Successful requests per second.
    pub requests_per_sec: f64,
    pub latency_ms: Percentiles,
    /// Server CPU (user + system) per request.
    pub server_cpu_ms_per_request: Option<f64>,
}

impl IssueReport {
    pub(crate) fn summary(&self) -> String {
        let mut line = format!(
            "issue: {} clients for {:.1} s: {} ok, {} failed: {:.0} requests/s; \
             latency p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms",
            self.clients,
            self.duration_secs,
            self.ok,
            self.failed,
            self.requests_per_sec,
            self.latency_ms.p50,
            self.latency_ms.p99,
            self.latency_ms.max,
        );
        if let Some(cpu) = self.server_cpu_ms_per_request {
            line.push_str(&format!("; server CPU {cpu:.3} ms/request"));
        }
        line
    }
}

#[derive(Debug, Default)]
struct ClientTally {
    ok: usize,
    failed: usize,
    error: Option<String>,
    latencies: Latencies,
}

/// Runs the scenario.
pub async fn run(options: &IssueOptions) -> Result<IssueReport, LoadError> {
    let deadline = Instant::now() + options.deadline;
    let logins = futures_util::stream::iter(0..options.clients)
        .map(|_| options.web.log_in(options.step_timeout))
        .buffer_unordered(LOGINS_IN_FLIGHT)
        .collect::<Vec<_>>();
    let clients = tokio::time::timeout_at(deadline.into(), logins)
        .await
        .map_err(|_| LoadError::Deadline(format!("logging {} clients in", options.clients)))?
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;

    let server_cpu = cpu_meter(options.server_pid)?;
    let started = Instant::now();
    let end = started + options.duration;
    if end > deadline {
        return Err(LoadError::Deadline(format!(
            "--duration {:?} does not fit in the deadline",
            options.duration
        )));
    }
    let mut tasks = JoinSet::new();
    for client in clients {
        let url = options.web.url.clone();
        let step_timeout = options.step_timeout;
        tasks.spawn(async move {
            let mut tally = ClientTally::default();
            while Instant::now() < end {
                let start = Instant::now();
                match tokio::time::timeout(step_timeout, fetch_token(&client, &url)).await {
                    Ok(Ok(_token)) => {
                        tally.ok += 1;
                        tally.latencies.record(start.elapsed());
                    }
                    Ok(Err(error)) => {
                        tally.failed += 1;
                        tally.error.get_or_insert_with(|| error.to_string());
                    }
                    Err(_) => {
                        tally.failed += 1;
                        tally
                            .error
                            .get_or_insert_with(|| format!("no answer within {step_timeout:?}"));
                    }
                }
            }
            tally
        });
    }
    let mut all = ClientTally::default();
    let mut error_samples = Vec::new();
    let joined = tokio::time::timeout_at(deadline.into(), async {
        while let Some(tally) = tasks.join_next().await {
            let Ok(tally) = tally else { continue };
            all.ok += tally.ok;
            all.failed += tally.failed;
            all.latencies.extend(tally.latencies);
            if let Some(error) = tally.error
                && error_samples.len() < 5
            {
                error_samples.push(error);
            }
        }
    })
    .await;
    let elapsed = started.elapsed();
    let server_cpu = cpu_used(server_cpu)?;
    if joined.is_err() {
        tasks.abort_all();
        return Err(LoadError::Deadline(
            "the token requests did not finish".into(),
        ));
    }
    Ok(IssueReport {
        clients: options.clients,
        duration_secs: elapsed.as_secs_f64(),
        requests: all.ok + all.failed,
        ok: all.ok,
        failed: all.failed,
        error_samples,
        requests_per_sec: per_second(all.ok, elapsed),
        latency_ms: all.latencies.percentiles(),
        server_cpu_ms_per_request: cpu_ms_per(server_cpu, all.ok),
    })
}

//! `connect`: N authenticated handshakes, C in flight; handshakes per second
//! and latency from TCP connect to `welcome`.

use std::time::Instant;

use serde::Serialize;

use crate::error::LoadError;
use crate::fleet::{self, Holders};
use crate::process::{cpu_meter, cpu_ms_per, cpu_used};
use crate::run::SocketRun;
use crate::stats::{Percentiles, per_second};

#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub run: SocketRun,
    /// This share of the tokens is forged; each must be refused with
    /// `not valid token`.
    pub bad_share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnectReport {
    pub connections: usize,
    pub concurrency: usize,
    pub bad_share: f64,
    /// Genuine tokens welcomed.
    pub greeted: usize,
    /// Forged tokens refused with `not valid token`.
    pub refused: usize,
    /// Forged tokens in the run.
    pub forged: usize,
    pub errors: usize,
    pub error_samples: Vec<String>,
    pub elapsed_secs: f64,
    /// Handshakes that ended as they should (welcomed or refused), per second.
    pub handshakes_per_sec: f64,
    /// TCP connect → `welcome`.
    pub latency_ms: Percentiles,
    /// Server CPU (user + system) during the run, per handshake.
    pub server_cpu_ms_per_handshake: Option<f64>,
    /// This process's CPU during the run, per handshake.
    pub client_cpu_ms_per_handshake: Option<f64>,
}

impl ConnectReport {
    pub(crate) fn summary(&self) -> String {
        let mut line = format!(
            "connect: {}/{} greeted, {}/{} forged refused, {} errors in {:.2} s: {:.0} handshakes/s; \
             latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.greeted,
            self.connections - self.forged,
            self.refused,
            self.forged,
            self.errors,
            self.elapsed_secs,
            self.handshakes_per_sec,
            self.latency_ms.p50,
            self.latency_ms.p90,
            self.latency_ms.p99,
            self.latency_ms.max,
        );
        if let Some(cpu) = self.server_cpu_ms_per_handshake {
            line.push_str(&format!("; server CPU {cpu:.3} ms/handshake"));
        }
        line
    }
}

/// Runs the scenario; the connections are closed before it returns.
pub async fn run(options: &ConnectOptions) -> Result<ConnectReport, LoadError> {
    let run = &options.run;
    let deadline = Instant::now() + run.deadline;
    let tokens = run
        .tokens
        .tokens(run.connections, options.bad_share, run.step_timeout)
        .await?;
    let forged = tokens.iter().filter(|token| token.forged).count();
    let server_cpu = cpu_meter(run.server_pid)?;
    let client_cpu = cpu_meter(Some(std::process::id()))?;
    let mut holders = Holders::new();
    let tally = fleet::open_all(run, tokens, deadline, |_, client| holders.hold(client)).await;
    let server_cpu = cpu_used(server_cpu)?;
    let client_cpu = cpu_used(client_cpu)?;
    holders.release().await;
    let tally = tally?;
    let completed = tally.greeted + tally.refused;
    Ok(ConnectReport {
        connections: run.connections,
        concurrency: run.concurrency,
        bad_share: options.bad_share,
        greeted: tally.greeted,
        refused: tally.refused,
        forged,
        errors: tally.errors,
        error_samples: tally.error_samples,
        elapsed_secs: tally.elapsed.as_secs_f64(),
        handshakes_per_sec: per_second(completed, tally.elapsed),
        latency_ms: tally.latencies.percentiles(),
        server_cpu_ms_per_handshake: cpu_ms_per(server_cpu, completed),
        client_cpu_ms_per_handshake: cpu_ms_per(client_cpu, completed),
    })
}

//! `fanout`: N clients, one of them sends M `message`s; every client (the
//! sender too) must receive every one. Deliveries per second, and the delivery
//! latency from the send timestamp embedded in each text.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;

use crate::engineio::{Incoming, SocketIoClient};
use crate::error::LoadError;
use crate::fleet;
use crate::process::{cpu_meter, cpu_used};
use crate::run::SocketRun;
use crate::stats::millis;
use crate::stats::{Latencies, Percentiles, per_second};

#[derive(Debug, Clone)]
pub struct FanoutOptions {
    pub run: SocketRun,
    /// Messages the sender emits.
    pub messages: usize,
    /// Messages per second; 0: all at once.
    pub rate: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FanoutReport {
    pub clients: usize,
    pub messages: usize,
    pub rate: f64,
    /// clients × messages.
    pub expected: usize,
    pub delivered: usize,
    /// Connections that failed, and deliveries that never came.
    pub errors: usize,
    pub error_samples: Vec<String>,
    /// First send → last delivery.
    pub elapsed_secs: f64,
    pub deliveries_per_sec: f64,
    /// Send → delivery.
    pub latency_ms: Percentiles,
    /// Server CPU (user + system) per delivery, in microseconds.
    pub server_cpu_us_per_delivery: Option<f64>,
}

impl FanoutReport {
    pub(crate) fn summary(&self) -> String {
        let mut line = format!(
            "fanout: {}/{} delivered to {} clients, {} errors in {:.2} s: {:.0} deliveries/s; \
             latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.delivered,
            self.expected,
            self.clients,
            self.errors,
            self.elapsed_secs,
            self.deliveries_per_sec,
            self.latency_ms.p50,
            self.latency_ms.p99,
            self.latency_ms.max,
        );
        if let Some(cpu) = self.server_cpu_us_per_delivery {
            line.push_str(&format!("; server CPU {cpu:.1} µs/delivery"));
        }
        line
    }
}

/// What one client received.
#[derive(Debug, Default)]
struct Received {
    count: usize,
    latencies: Latencies,
    /// When the last one arrived, from the run's base instant.
    last: Duration,
    error: Option<String>,
}

/// The send timestamp (µs from the run's base) of a relayed `message` event:
/// `["message",{"from":…,"text":"SEQ MICROS"}]`.
fn sent_at(event: &str) -> Option<u64> {
    if !event.starts_with("[\"message\"") {
        return None;
    }
    let text = event.split_once("\"text\":\"")?.1;
    let text = &text[..text.find('"')?];
    text.split_once(' ')?.1.parse().ok()
}

/// Runs the scenario; the connections are closed before it returns.
pub async fn run(options: &FanoutOptions) -> Result<FanoutReport, LoadError> {
    let run = &options.run;
    let deadline = Instant::now() + run.deadline;
    let tokens = run
        .tokens
        .tokens(run.connections, 0.0, run.step_timeout)
        .await?;
    let mut clients = Vec::with_capacity(run.connections);
    let tally = fleet::open_all(run, tokens, deadline, |_, client| clients.push(client)).await?;

    let messages = options.messages;
    let interval = if options.rate > 0.0 {
        Duration::from_secs_f64(1.0 / options.rate)
    } else {
        Duration::ZERO
    };
    let base = Instant::now();
    let server_cpu = cpu_meter(run.server_pid)?;
    let mut receivers = JoinSet::new();
    let mut clients = clients.into_iter();
    let sender = clients.next();
    for client in clients {
        receivers.spawn(receive(client, messages, base, deadline, None));
    }
    // The sender starts once every receiver is reading.
    if let Some(sender) = sender {
        receivers.spawn(receive(sender, messages, base, deadline, Some(interval)));
    }
    let mut received = Vec::with_capacity(tally.greeted);
    while let Some(joined) = receivers.join_next().await {
        if let Ok(result) = joined {
            received.push(result);
        }
    }
    let server_cpu = cpu_used(server_cpu)?;

    let mut latencies = Latencies::default();
    let mut errors = tally.errors;
    let mut error_samples = tally.error_samples;
    let mut last = Duration::ZERO;
    let mut delivered = 0;
    // Keep the sockets open until every client is done, then close them all.
    let mut open = Vec::with_capacity(received.len());
    for (outcome, client) in received {
        delivered += outcome.count;
        last = last.max(outcome.last);
        latencies.extend(outcome.latencies);
        if let Some(error) = outcome.error {
            errors += 1;
            if error_samples.len() < 5 {
                error_samples.push(error);
            }
        }
        open.push(client);
    }
    drop(open);
    let expected = tally.greeted * messages;
    Ok(FanoutReport {
        clients: run.connections,
        messages,
        rate: options.rate,
        expected,
        delivered,
        errors,
        error_samples,
        elapsed_secs: last.as_secs_f64(),
        deliveries_per_sec: per_second(delivered, last),
        latency_ms: latencies.percentiles(),
        server_cpu_us_per_delivery: server_cpu
            .filter(|_| delivered > 0)
            .map(|cpu| millis(cpu) * 1000.0 / delivered as f64),
    })
}

/// Reads until `messages` deliveries arrived (or the deadline); the sender
/// (`send_every` set) also emits them, one per interval.
async fn receive(
    mut client: SocketIoClient,
    messages: usize,
    base: Instant,
    deadline: Instant,
    send_every: Option<Duration>,
) -> (Received, SocketIoClient) {
    let mut received = Received::default();
    let mut to_send = if send_every.is_some() { messages } else { 0 };
    let interval = send_every.unwrap_or_default();
    let mut next_send = tokio::time::Instant::now();
    while received.count < messages || to_send > 0 {
        tokio::select! {
            () = tokio::time::sleep_until(next_send), if to_send > 0 => {
                let seq = messages - to_send;
                let text = format!("{seq} {}", base.elapsed().as_micros());
                match tokio::time::timeout_at(deadline.into(), client.emit_message(&text)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        received.error = Some(format!("sending: {error}"));
                        break;
                    }
                    Err(_) => {
                        received.error = Some(format!("deadline passed sending message {seq}"));
                        break;
                    }
                }
                to_send -= 1;
                next_send += interval;
            }
            packet = tokio::time::timeout_at(deadline.into(), client.next()) => match packet {
                Ok(Ok(Some(Incoming::Event(event)))) => {
                    if let Some(sent) = sent_at(&event) {
                        let now = u64::try_from(base.elapsed().as_micros()).unwrap_or(u64::MAX);
                        received.latencies.record_micros(now.saturating_sub(sent));
                        received.last = base.elapsed();
                        received.count += 1;
                    }
                }
                Ok(Ok(Some(Incoming::Other))) => {}
                Ok(Ok(None)) => {
                    received.error = Some(format!("closed by the server after {} of {messages} messages", received.count));
                    break;
                }
                Ok(Err(error)) => {
                    received.error = Some(format!("after {} of {messages} messages: {error}", received.count));
                    break;
                }
                Err(_) => {
                    received.error = Some(format!("deadline passed after {} of {messages} messages", received.count));
                    break;
                }
            },
        }
    }
    (received, client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_send_time_is_read_back_from_the_relayed_text() {
        assert_eq!(
            sent_at(r#"["message",{"from":"user0","text":"7 123456"}]"#),
            Some(123_456)
        );
        assert_eq!(
            sent_at(r#"["message",{"text":"7 99","from":"user0"}]"#),
            Some(99)
        );
        assert_eq!(sent_at(r#"["welcome",{"username":"user0"}]"#), None);
        assert_eq!(sent_at(r#"["message",{"from":"x","text":"hello"}]"#), None);
    }
}

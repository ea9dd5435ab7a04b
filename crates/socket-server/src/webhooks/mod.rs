//! Presence webhooks: the application hears when a user comes online and goes
//! offline. The backplane judges the transitions (cluster-wide, with the grace
//! time) and queues the events; one sender — in the scaled mode the one node
//! holding the lease — POSTs them in order, each signed as Standard Webhooks
//! says, retried until a 2xx (or a 410, which stops that event) for at least
//! an hour, and takes each off the queue only once it is done: at least once,
//! never lost to a node that dies.

mod sign;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use settings::Settings;
use tokio::sync::watch;

use crate::backplane::Backplane;
use crate::presence::PresenceEvent;

/// One try may take this long.
const TRY_TIMEOUT: Duration = Duration::from_secs(10);
/// The first retry comes after about this long, then twice as long each time…
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// …never more than this between two tries.
const MAX_RETRY: Duration = Duration::from_secs(60);
/// An event is tried for this long at least, then given up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(3600);
/// A graceful shutdown waits this long for the queue to empty.
pub(crate) const DRAIN: Duration = Duration::from_secs(5);

/// What the sender counts (for `/metrics`).
#[derive(Debug, Default)]
pub(crate) struct WebhookMetrics {
    sent: AtomicU64,
    retried: AtomicU64,
    gone: AtomicU64,
    expired: AtomicU64,
}

/// The configured receiver.
#[derive(Debug)]
pub(crate) struct Webhooks {
    url: String,
    secret: SecretString,
    client: reqwest::Client,
    metrics: Arc<WebhookMetrics>,
    /// Whether the last try of any event failed (warnings are for changes).
    failing: AtomicBool,
}

impl Webhooks {
    /// `None` without `webhooks.url`.
    pub(crate) fn from_settings(
        settings: &Settings,
    ) -> Result<Option<Self>, settings::ConfigError> {
        let (Some(url), Some(secret)) = (&settings.webhooks.url, &settings.webhooks.secret) else {
            return Ok(None);
        };
        let client = reqwest::Client::builder()
            .timeout(TRY_TIMEOUT)
            // The events go where the operator said, not elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("authbridge-socket-server")
            .build()
            .map_err(|error| settings::ConfigError::invalid("webhooks.url", error.to_string()))?;
        Ok(Some(Self {
            url: url.clone(),
            secret: secret.clone(),
            client,
            metrics: Arc::default(),
            failing: AtomicBool::new(false),
        }))
    }

    pub(crate) fn metrics(&self) -> Arc<WebhookMetrics> {
        self.metrics.clone()
    }

    /// Sends every event the backplane hands this node, one at a time, for as
    /// long as the node runs; `idle` says when it waits for the next one.
    pub(crate) async fn run(self, backplane: Backplane, idle: watch::Sender<bool>) {
        loop {
            idle.send_replace(true);
            let event = backplane.next_webhook().await;
            idle.send_replace(false);
            if self.deliver(&event, &backplane).await {
                backplane.webhook_done(&event).await;
            }
        }
    }

    /// Tries `event` until the receiver takes it (2xx), refuses it for good
    /// (410), or an hour has passed: `true`, it is done. `false`: this node
    /// stopped being the sender meanwhile; the event stays for the next one.
    async fn deliver(&self, event: &PresenceEvent, backplane: &Backplane) -> bool {
        let body = body(event);
        let mut wait = FIRST_RETRY;
        loop {
            match self.try_once(event, &body).await {
                Ok(status) if status.is_success() => {
                    self.metrics.sent.fetch_add(1, Ordering::Relaxed);
                    if self.failing.swap(false, Ordering::Relaxed) {
                        tracing::info!("the webhook receiver takes presence events again");
                    }
                    return true;
                }
                Ok(reqwest::StatusCode::GONE) => {
                    self.metrics.gone.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(id = %event.id, "the webhook receiver answered 410: that event is not sent again");
                    return true;
                }
                answer => {
                    if !self.failing.swap(true, Ordering::Relaxed) {
                        let answer = match answer {
                            Ok(status) => status.to_string(),
                            Err(reason) => reason.to_owned(),
                        };
                        tracing::warn!(%answer, "the webhook receiver does not take presence events: retrying with backoff, in order");
                    }
                }
            }
            let age_ms = crate::presence::now_ms().saturating_sub(event.at_ms);
            if u128::try_from(age_ms).unwrap_or(0) >= GIVE_UP_AFTER.as_millis() {
                self.metrics.expired.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(id = %event.id, "a presence event was given up after an hour of failed tries");
                return true;
            }
            self.metrics.retried.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(jittered(wait)).await;
            if !backplane.may_send_webhooks() {
                return false;
            }
            wait = (wait * 2).min(MAX_RETRY);
        }
    }

    async fn try_once(
        &self,
        event: &PresenceEvent,
        body: &str,
    ) -> Result<reqwest::StatusCode, &'static str> {
        let timestamp = claims::unix_now();
        let signature = sign::signature(
            self.secret.expose_secret().as_bytes(),
            &event.id,
            timestamp,
            body,
        );
        let response = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &event.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_owned())
            .send()
            .await
            // Never the URL (it may carry credentials): only what went wrong.
            .map_err(|error| {
                if error.is_timeout() {
                    "no answer within 10 s"
                } else if error.is_connect() {
                    "cannot connect"
                } else {
                    "request failed"
                }
            })?;
        Ok(response.status())
    }

    /// `authbridge_webhooks_*`.
    pub(crate) fn render_metrics(
        metrics: &WebhookMetrics,
        backplane: &Backplane,
        out: &mut String,
    ) {
        use service::metrics::{family, sample};
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        family(
            out,
            "authbridge_webhooks_sent_total",
            "counter",
            "Presence events the receiver took (2xx).",
        );
        sample(
            out,
            "authbridge_webhooks_sent_total",
            &[],
            get(&metrics.sent),
        );
        family(
            out,
            "authbridge_webhooks_retried_total",
            "counter",
            "Tries of presence events that failed and were retried.",
        );
        sample(
            out,
            "authbridge_webhooks_retried_total",
            &[],
            get(&metrics.retried),
        );
        family(
            out,
            "authbridge_webhooks_failed_total",
            "counter",
            "Presence events not sent: 410 from the receiver, or given up after an hour.",
        );
        sample(
            out,
            "authbridge_webhooks_failed_total",
            &[("reason", "gone")],
            get(&metrics.gone),
        );
        sample(
            out,
            "authbridge_webhooks_failed_total",
            &[("reason", "expired")],
            get(&metrics.expired),
        );
        let (pending, oldest_ms, dropped) = backplane.webhook_queue();
        family(
            out,
            "authbridge_webhooks_dropped_total",
            "counter",
            "Presence events dropped because the queue was full (by this node).",
        );
        sample(out, "authbridge_webhooks_dropped_total", &[], dropped);
        family(
            out,
            "authbridge_webhooks_pending",
            "gauge",
            "Presence events waiting to be sent (cluster-wide in the scaled mode).",
        );
        sample(out, "authbridge_webhooks_pending", &[], pending);
        let age = oldest_ms.map_or(0, |oldest| {
            u64::try_from(crate::presence::now_ms().saturating_sub(oldest) / 1000).unwrap_or(0)
        });
        family(
            out,
            "authbridge_webhooks_oldest_pending_seconds",
            "gauge",
            "Age of the oldest presence event waiting to be sent.",
        );
        sample(out, "authbridge_webhooks_oldest_pending_seconds", &[], age);
    }
}

/// The event's body: `{"type", "timestamp" (RFC 3339), "data": {"user"}}`.
fn body(event: &PresenceEvent) -> String {
    serde_json::json!({
        "type": event.kind,
        "timestamp": rfc3339(event.at_ms),
        "data": { "user": event.user },
    })
    .to_string()
}

fn rfc3339(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `wait`, 20 % either way at random: nodes retrying together spread out.
fn jittered(wait: Duration) -> Duration {
    let nanos = u64::from(uuid::Uuid::new_v4().as_fields().0) % 1000;
    // 0.8 … 1.2 of `wait`.
    wait.mul_f64(0.8 + 0.4 * (nanos as f64 / 1000.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_names_the_type_the_time_and_the_user() {
        let event = PresenceEvent {
            id: "evt_1".into(),
            kind: "user.offline".into(),
            user: "gonzalo".into(),
            at_ms: 1_796_083_200_250,
        };
        assert_eq!(
            body(&event),
            r#"{"data":{"user":"gonzalo"},"timestamp":"2026-12-01T00:00:00.25Z","type":"user.offline"}"#
        );
    }

    #[test]
    fn retries_wait_about_the_time_asked() {
        for _ in 0..100 {
            let wait = jittered(Duration::from_secs(10));
            assert!(wait >= Duration::from_secs(8) && wait <= Duration::from_secs(12));
        }
    }
}

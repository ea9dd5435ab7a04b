//! The socket server's counters, rendered in the Prometheus text format for
//! `GET /metrics` (served by `http`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use service::metrics::{family, sample};

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) handshakes_accepted: AtomicU64,
    /// By refusal reason (a fixed, small set of static labels).
    handshakes_refused: Mutex<BTreeMap<&'static str, u64>>,
    pub(crate) connected: AtomicI64,
    pub(crate) reauths_ok: AtomicU64,
    pub(crate) reauths_refused: AtomicU64,
    pub(crate) tokens_expired: AtomicU64,
    pub(crate) sessions_revoked: AtomicU64,
    pub(crate) messages_relayed: AtomicU64,
    /// `join`s refused (`forbidden` or `too many rooms`).
    pub(crate) joins_refused: AtomicU64,
    /// Relayed to this node's sockets only: the backplane could not reach the others.
    pub(crate) messages_relayed_locally: AtomicU64,
    /// Server API publications carried out (repeats of an idempotent one aside).
    pub(crate) api_publications: AtomicU64,
    /// Sockets those publications reached, cluster-wide.
    pub(crate) api_sockets_reached: AtomicU64,
    /// Repeats of an idempotent publication, answered without delivering.
    pub(crate) api_replays: AtomicU64,
    /// Refused API requests, by reason (a fixed, small set of static labels).
    api_refused: Mutex<BTreeMap<&'static str, u64>>,
    /// Handshakes of recovering sockets, by outcome.
    recoveries: Mutex<BTreeMap<&'static str, u64>>,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub(crate) fn refused(&self, reason: &'static str) {
        let mut refused = self
            .handshakes_refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *refused.entry(reason).or_default() += 1;
    }

    /// A recovering socket's handshake: `new`, `recovered` or `not recovered`.
    pub(crate) fn recovery(&self, outcome: &'static str) {
        let mut recoveries = self
            .recoveries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *recoveries.entry(outcome).or_default() += 1;
    }

    pub(crate) fn api_refused(&self, reason: &'static str) {
        let mut refused = self
            .api_refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *refused.entry(reason).or_default() += 1;
    }

    /// This node's counters; the backplane and the key ring add their own lines.
    pub(crate) fn render(&self) -> String {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut out = String::new();
        family(
            &mut out,
            "authbridge_handshakes_total",
            "counter",
            "Socket handshakes, by result and refusal reason.",
        );
        sample(
            &mut out,
            "authbridge_handshakes_total",
            &[("result", "accepted"), ("reason", "")],
            get(&self.handshakes_accepted),
        );
        let refused = self
            .handshakes_refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for (reason, count) in refused {
            sample(
                &mut out,
                "authbridge_handshakes_total",
                &[("result", "refused"), ("reason", reason)],
                count,
            );
        }
        family(
            &mut out,
            "authbridge_connected_sockets",
            "gauge",
            "Authenticated sockets connected now.",
        );
        let connected = u64::try_from(self.connected.load(Ordering::Relaxed)).unwrap_or(0);
        sample(&mut out, "authbridge_connected_sockets", &[], connected);
        family(
            &mut out,
            "authbridge_reauths_total",
            "counter",
            "In-band token refreshes, by result.",
        );
        sample(
            &mut out,
            "authbridge_reauths_total",
            &[("result", "ok")],
            get(&self.reauths_ok),
        );
        sample(
            &mut out,
            "authbridge_reauths_total",
            &[("result", "refused")],
            get(&self.reauths_refused),
        );
        family(
            &mut out,
            "authbridge_tokens_expired_total",
            "counter",
            "Live sockets ended by their token's expiry.",
        );
        sample(
            &mut out,
            "authbridge_tokens_expired_total",
            &[],
            get(&self.tokens_expired),
        );
        family(
            &mut out,
            "authbridge_sessions_revoked_total",
            "counter",
            "Login sessions revoked by a logout.",
        );
        sample(
            &mut out,
            "authbridge_sessions_revoked_total",
            &[],
            get(&self.sessions_revoked),
        );
        family(
            &mut out,
            "authbridge_messages_relayed_total",
            "counter",
            "`message` events broadcast.",
        );
        sample(
            &mut out,
            "authbridge_messages_relayed_total",
            &[],
            get(&self.messages_relayed),
        );
        family(
            &mut out,
            "authbridge_messages_relayed_locally_total",
            "counter",
            "`message` events broadcast on this node only, Redis being unreachable.",
        );
        sample(
            &mut out,
            "authbridge_messages_relayed_locally_total",
            &[],
            get(&self.messages_relayed_locally),
        );
        family(
            &mut out,
            "authbridge_joins_refused_total",
            "counter",
            "Room joins refused (forbidden, or too many rooms).",
        );
        sample(
            &mut out,
            "authbridge_joins_refused_total",
            &[],
            get(&self.joins_refused),
        );
        family(
            &mut out,
            "authbridge_recoveries_total",
            "counter",
            "Handshakes of sockets that opted in to recovery, by outcome.",
        );
        let recoveries = self
            .recoveries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for outcome in ["new", "recovered", "not recovered"] {
            let count = recoveries.get(outcome).copied().unwrap_or(0);
            sample(
                &mut out,
                "authbridge_recoveries_total",
                &[("outcome", outcome)],
                count,
            );
        }
        self.render_api(&mut out);
        out
    }

    fn render_api(&self, out: &mut String) {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        for (name, help, counter) in [
            (
                "authbridge_api_publications_total",
                "Server API publications carried out (idempotent repeats aside).",
                &self.api_publications,
            ),
            (
                "authbridge_api_sockets_reached_total",
                "Sockets the server API's publications reached, cluster-wide.",
                &self.api_sockets_reached,
            ),
            (
                "authbridge_api_replays_total",
                "Repeated idempotent publications, answered without delivering.",
                &self.api_replays,
            ),
        ] {
            family(out, name, "counter", help);
            sample(out, name, &[], get(counter));
        }
        family(
            out,
            "authbridge_api_refused_total",
            "counter",
            "Refused server API requests, by reason.",
        );
        let refused = self
            .api_refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for reason in [
            "bad_request",
            "not_found",
            "unauthorized",
            "browser",
            "too_large",
            "in_progress",
            "unavailable",
        ] {
            let count = refused.get(reason).copied().unwrap_or(0);
            sample(
                out,
                "authbridge_api_refused_total",
                &[("reason", reason)],
                count,
            );
        }
    }
}

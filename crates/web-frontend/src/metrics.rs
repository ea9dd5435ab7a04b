//! The web-frontend's counters, rendered in the Prometheus text format for
//! `GET /metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

use service::metrics::{family, sample, single};

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) logins_ok: AtomicU64,
    pub(crate) logins_failed: AtomicU64,
    /// Login attempts refused by the throttle (no password checked).
    pub(crate) logins_throttled: AtomicU64,
    pub(crate) logouts: AtomicU64,
    pub(crate) tokens_issued: AtomicU64,
    /// `GET /.well-known/jwks.json` answered with the keys (not 304, not 404).
    pub(crate) jwks_served: AtomicU64,
    pub(crate) revocations_delivered: AtomicU64,
    pub(crate) revocations_undelivered: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub(crate) fn render(&self) -> String {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut out = String::new();
        family(
            &mut out,
            "authbridge_logins_total",
            "counter",
            "Login attempts, by result.",
        );
        sample(
            &mut out,
            "authbridge_logins_total",
            &[("result", "ok")],
            get(&self.logins_ok),
        );
        sample(
            &mut out,
            "authbridge_logins_total",
            &[("result", "failed")],
            get(&self.logins_failed),
        );
        sample(
            &mut out,
            "authbridge_logins_total",
            &[("result", "throttled")],
            get(&self.logins_throttled),
        );
        single(
            &mut out,
            "authbridge_logouts_total",
            "counter",
            "Sessions ended by logout.",
            get(&self.logouts),
        );
        single(
            &mut out,
            "authbridge_tokens_issued_total",
            "counter",
            "Connection tokens issued.",
            get(&self.tokens_issued),
        );
        single(
            &mut out,
            "authbridge_jwks_served_total",
            "counter",
            "JWK Set documents served in full (EdDSA/ES256).",
            get(&self.jwks_served),
        );
        family(
            &mut out,
            "authbridge_revocations_total",
            "counter",
            "Logouts reported to the socket server at once, by outcome (undelivered ones are resent).",
        );
        sample(
            &mut out,
            "authbridge_revocations_total",
            &[("result", "delivered")],
            get(&self.revocations_delivered),
        );
        sample(
            &mut out,
            "authbridge_revocations_total",
            &[("result", "undelivered")],
            get(&self.revocations_undelivered),
        );
        out
    }
}

//! What every request handler shares, built once at start.

use crate::backplane::Backplane;
use crate::keys::KeyRing;
use crate::metrics::Metrics;
use crate::notices::SignInNotices;
use crate::throttle::LoginThrottle;
use crate::users::UserDirectory;

/// Read-only after start, apart from the counters, the throttle and a key
/// reload.
#[derive(Debug)]
pub(crate) struct AppState {
    /// What tokens and revocation notices are signed with (swapped on reload).
    pub(crate) keys: KeyRing,
    pub(crate) users: UserDirectory,
    pub(crate) templates: tera::Tera,
    pub(crate) socket_url: String,
    /// One node or many: where sessions live, where logouts go, readiness.
    pub(crate) backplane: Backplane,
    /// What a login tells the user's other sockets (off without `api.key`).
    pub(crate) notices: SignInNotices,
    /// How long after a logout its tokens could still be accepted: the token
    /// lifetime plus the verifier's leeway.
    pub(crate) revoke_for_secs: i64,
    pub(crate) metrics: Metrics,
    /// Failed logins, counted per username and per client address (behind
    /// its own lock).
    pub(crate) throttle: LoginThrottle,
}

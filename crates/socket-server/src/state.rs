//! What every socket handler shares, built once per node.

use std::sync::Arc;

use crate::backplane::Backplane;
use crate::expiry::ExpiryScheduler;
use crate::keys::KeyRing;
use crate::limits::ConnectionLimits;
use crate::membership::Membership;
use crate::metrics::Metrics;
use crate::relay::RelayQueue;
use crate::revocations::RevocationList;
use crate::webhooks::WebhookMetrics;

/// What every handler shares (the socket handlers get it as socketioxide
/// state, the HTTP routes beside the `SocketIo` handle).
#[derive(Debug)]
pub(crate) struct AppState {
    /// What tokens are checked with (swapped on reload and JWK Set fetches).
    pub(crate) keys: KeyRing,
    pub(crate) revocations: Arc<RevocationList>,
    pub(crate) expiry: ExpiryScheduler,
    pub(crate) relay: RelayQueue,
    pub(crate) metrics: Arc<Metrics>,
    /// Sockets per user on this node (`socket.max_connections_per_user`).
    pub(crate) limits: ConnectionLimits,
    /// One node or many.
    pub(crate) backplane: Backplane,
    /// Rooms one socket may be in at once (`socket.max_rooms_per_socket`).
    pub(crate) max_rooms_per_socket: usize,
    /// Serializes each socket's joins (see [`Membership`]).
    pub(crate) membership: Membership,
    /// With webhooks: what the sender counts.
    pub(crate) webhooks: Option<Arc<WebhookMetrics>>,
}

//! What the backplane's operations answer, in either mode.

use std::time::Duration;

/// How long an idempotency key is remembered.
pub(super) const IDEMPOTENCY_TTL: Duration = Duration::from_secs(3600);

/// How long a claimed key waits for its response before it is free again: a
/// node that dies mid-request must not block the key for the hour.
pub(super) const IDEMPOTENCY_PENDING: Duration = Duration::from_secs(30);

/// How long a repeat of an idempotent request waits for the first one to
/// finish before it is told to try again.
pub(super) const IDEMPOTENCY_WAIT: Duration = Duration::from_secs(5);

/// The other nodes could not be reached (Redis is away): nothing was done.
#[derive(Debug, thiserror::Error)]
#[error("Redis is unreachable")]
pub(crate) struct Unavailable;

/// What an idempotency key says about a request.
#[derive(Debug)]
pub(crate) enum Claim {
    /// The first with this key: carry it out, then [`Backplane::complete`] it
    /// (or [`Backplane::release`] it when it could not be carried out).
    First,
    /// Carried out before: this was its response.
    Replay(String),
}

/// Why an idempotency key could not be claimed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClaimError {
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// The first request with this key has not finished yet.
    #[error("a request with this Idempotency-Key is still being carried out")]
    InProgress,
}

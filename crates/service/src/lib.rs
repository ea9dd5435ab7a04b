//! What every service binary does at start and stop, the same for both
//! services: its logs ([`telemetry`]), the `listening on` line, the signals that
//! stop or reload it ([`signals`]), the `healthcheck` probe ([`health`]), the
//! Prometheus text of `/metrics` ([`metrics`]), the keys its configuration
//! names, read from their files ([`keys`]), and its CPU time ([`process`]).
//!
//! `settings` only describes and checks the configuration; this crate acts on it.

pub mod health;
pub mod keys;
pub mod metrics;
pub mod process;
pub mod signals;
pub mod telemetry;

mod listen;

pub use listen::announce_listening;
pub use signals::{reload_keys_on_sighup, shutdown_signal};

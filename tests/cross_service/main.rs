//! The cross-service tests: both services on ephemeral ports, a real login over
//! HTTP, the token handed to real Socket.IO clients (rust_socketio here, the
//! official npm clients through `tests/js`), and every way a token can be wrong.

mod api;
mod api_cli;
mod api_flood;
mod api_presence;
mod api_process;
mod api_refusals;
mod browser;
mod byo;
mod delivery_under_cuts;
mod helpers;
mod interop;
mod keys;
mod lifecycle;
mod limits;
mod messages;
mod node;
mod official_clients;
mod origins;
mod recovery;
mod recovery_bounds;
mod redis;
mod refusals;
mod reload;
mod rooms;
mod rooms_flood;
mod rooms_presence;
mod rooms_wire;
mod scale;
mod socketio;
mod webhooks;
mod webhooks_load;
mod webhooks_scaled;
mod webhooks_verify;
mod welcome;

//! The one configuration schema both services read, its loader and its checks.
//!
//! Layers, later wins: built-in defaults → `config/default.toml` → the TOML file
//! named by `APP_CONFIG` → `APP_<SECTION>__<KEY>` environment variables. Both
//! services load the whole schema, so a key either of them knows is known to both,
//! and a key neither knows is refused at start. What a service then does with
//! its configuration (keys read from files, logs, signals) is the `service`
//! crate's.

mod env;
mod error;
mod load;
mod schema;
mod validate;

pub use error::ConfigError;
pub use load::{DEFAULT_FILE, figment};
pub use schema::{
    ApiSettings, DEMO_USERNAME, Environment, JwtSettings, LogFormat, LogSettings, RedisSettings,
    Settings, SocketSettings, UserEntry, WebSettings,
};
pub use validate::{parse_valid_until, resolve_addr};

#[cfg(test)]
mod tests;

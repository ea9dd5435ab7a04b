//! Why a socket server could not be built.

use std::net::SocketAddr;

use settings::ConfigError;

/// A socket server that cannot start: one line each, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A value the configuration loaded, but that cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `socket.addr` could not be bound.
    #[error("socket.addr: cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The listener handed in could not be used.
    #[error("the listener: {0}")]
    Listener(#[source] std::io::Error),
}

//! `SERVICE healthcheck`: asks the running service's own `/healthz`, for a
//! container's HEALTHCHECK (the images carry no curl or wget).

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(3);

/// Why the service is not healthy.
#[derive(Debug, thiserror::Error)]
pub enum Unhealthy {
    /// It could not be reached, or did not answer in time.
    #[error("{target}: {source}")]
    Unreachable {
        target: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// It answered something else than 200.
    #[error("{target}: /healthz answered {status:?}")]
    Status { target: SocketAddr, status: String },
}

/// `Ok` when `GET /healthz` on `listen` (a wildcard address means this host)
/// answers 200 within a few seconds.
pub fn probe(listen: SocketAddr) -> Result<(), Unhealthy> {
    let mut target = listen;
    if target.ip().is_unspecified() {
        target.set_ip(match target.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    let unreachable = |source| Unhealthy::Unreachable { target, source };
    let mut stream = TcpStream::connect_timeout(&target, TIMEOUT).map_err(unreachable)?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(unreachable)?;
    stream
        .set_write_timeout(Some(TIMEOUT))
        .map_err(unreachable)?;
    stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(unreachable)?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).map_err(unreachable)?;
    // "HTTP/1.1 200" or "HTTP/1.0 200"
    if head.starts_with(b"HTTP/1.") && &head[8..12] == b" 200" {
        Ok(())
    } else {
        Err(Unhealthy::Status {
            target,
            status: String::from_utf8_lossy(&head).into_owned(),
        })
    }
}

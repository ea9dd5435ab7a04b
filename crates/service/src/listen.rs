//! The contract's `listening on` line.

use std::io::Write as _;
use std::net::SocketAddr;

/// Prints the contract's `listening on http://ADDR` line, alone on stdout, once
/// the listener is bound (connections queue from then on). Scripts and tests
/// wait for this line instead of sleeping.
#[allow(
    clippy::print_stdout,
    reason = "the contract fixes this line on stdout"
)]
pub fn announce_listening(addr: SocketAddr) {
    // `println!` (not a raw handle) so that test harnesses capture it; stdout
    // is line-buffered, and the flush makes sure a pipe sees it at once.
    println!("listening on http://{addr}");
    let _ = std::io::stdout().flush();
}

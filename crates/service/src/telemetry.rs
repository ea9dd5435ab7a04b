//! Logging for the service binaries: `tracing` to stderr, filtered by `RUST_LOG`
//! (default `info`), as text or as JSON lines (`log.format`).

use tracing_subscriber::EnvFilter;

use settings::LogFormat;

/// The Socket.IO libraries log whole packets at `trace` — a handshake's token
/// among them. Whatever `RUST_LOG` asks, they log at `debug` at most: no token
/// reaches a log.
const NEVER_TRACE: [&str; 2] = ["socketioxide=debug", "engineioxide=debug"];

/// Installs the subscriber once per process (a second call keeps the first).
pub fn init(format: LogFormat) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    for directive in NEVER_TRACE {
        if let Ok(directive) = directive.parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // A second init (tests running services in one process) keeps the first.
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

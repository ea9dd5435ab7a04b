//! `socket-server`: reads the settings, starts logging, serves until SIGTERM;
//! `socket-server healthcheck` asks a running one for `/healthz`.

use std::process::ExitCode;

use settings::Settings;
use socket_server::Application;

const USAGE: &str = "usage: socket-server [serve | healthcheck | --help]

  serve        run the socket server (default); configuration: config/default.toml,
               the TOML file named by APP_CONFIG, APP_<SECTION>__<KEY> variables
  healthcheck  exit 0 when the socket server at socket.addr answers /healthz";

fn main() -> ExitCode {
    let result = match std::env::args().nth(1).as_deref() {
        None | Some("serve") => runtime().and_then(|runtime| runtime.block_on(serve())),
        Some("healthcheck") => healthcheck(),
        Some("--help" | "-h" | "help") => {
            eprintln!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(anyhow::anyhow!("unknown command {other:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line: the contract's refusals name the key or variable.
            eprintln!("socket-server: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// tokio's multi-threaded scheduler, one worker per core (`TOKIO_WORKER_THREADS`
/// sets how many, as for any tokio program); with exactly one, the
/// current-thread scheduler, which does the same work without the cost of
/// work stealing and cross-thread wake-ups (for one process per core, as Node
/// runs: scale out with `redis.url`).
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let threads = match std::env::var("TOKIO_WORKER_THREADS") {
        Err(_) => None,
        Ok(threads) => match threads.trim().parse::<usize>() {
            Ok(threads) if threads > 0 => Some(threads),
            _ => anyhow::bail!("TOKIO_WORKER_THREADS: {threads:?} is not a positive number"),
        },
    };
    let mut builder = match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(threads) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(threads);
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    builder
        .enable_all()
        .build()
        .map_err(|error| anyhow::anyhow!("cannot start the runtime: {error}"))
}

async fn serve() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    service::telemetry::init(settings.log.format);
    let app = Application::build(&settings).await?;
    let keys = app.keys();
    service::reload_keys_on_sighup("socket-server", move |settings| keys.reload(settings));
    app.run_until_stopped().await?;
    Ok(())
}

fn healthcheck() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    let addr = settings::resolve_addr("socket.addr", &settings.socket.addr)?;
    service::health::probe(addr).map_err(|error| anyhow::anyhow!("unhealthy: {error}"))
}

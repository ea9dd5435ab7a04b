//! `socket-server`: reads the settings, starts logging, serves until SIGTERM;
//! `socket-server healthcheck` asks a running one for `/healthz`.

use std::process::ExitCode;

use settings::Settings;
use socket_server::Application;

const USAGE: &str = "usage: socket-server [serve | healthcheck | --help]

  serve        run the socket server (default); configuration: config/default.toml,
               the TOML file named by APP_CONFIG, APP_<SECTION>__<KEY> variables
  healthcheck  exit 0 when the socket server at socket.addr answers /healthz";

#[tokio::main]
async fn main() -> ExitCode {
    let result = match std::env::args().nth(1).as_deref() {
        None | Some("serve") => serve().await,
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

async fn serve() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    settings::telemetry::init(settings.log.format);
    let app = Application::build(&settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}

fn healthcheck() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    let addr = settings::resolve_addr("socket.addr", &settings.socket.addr)?;
    settings::health::probe(addr).map_err(|error| anyhow::anyhow!("unhealthy: {error}"))
}

//! `socket-server`: reads the settings, starts logging, serves until SIGTERM.

use std::process::ExitCode;

use settings::Settings;
use socket_server::Application;

#[tokio::main]
async fn main() -> ExitCode {
    settings::telemetry::init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line: the contract's refusals name the key or variable.
            eprintln!("socket-server: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    let app = Application::build(&settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}

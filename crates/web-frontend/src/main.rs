//! `web-frontend`: serves the site; `web-frontend hash-password`,
//! `generate-secret` and `generate-keypair` help write its configuration.

use std::io::{BufRead as _, IsTerminal as _};
use std::process::ExitCode;

use settings::Settings;
use web_frontend::Application;

const USAGE: &str =
    "usage: web-frontend [serve | healthcheck | hash-password | generate-secret | generate-keypair | --help]

  serve            run the web-frontend (default); configuration: config/default.toml,
                   the TOML file named by APP_CONFIG, APP_<SECTION>__<KEY> variables
  healthcheck      exit 0 when the web-frontend at web.addr answers /healthz
  hash-password    read a password on stdin, print its argon2id hash for [[users]]
  generate-secret  print a random 256-bit shared key for APP_JWT__SECRET
  generate-keypair [--algorithm EdDSA|ES256] --out PREFIX [--if-missing]
                   write a new key pair: PREFIX.key.pem (private, mode 0600, for
                   jwt.private_key_file) and PREFIX.pub.pem (for jwt.public_key_files);
                   print its kid. Default algorithm: EdDSA. Never overwrites a file;
                   --if-missing: when PREFIX.key.pem exists, keep it and succeed.

  On SIGHUP, serve re-reads its configuration and puts the jwt keys it names in
  use (a rotation without a restart); other changes need a restart.";

#[tokio::main]
async fn main() -> ExitCode {
    let command = std::env::args().nth(1);
    let result = match command.as_deref() {
        None | Some("serve") => serve().await,
        Some("healthcheck") => healthcheck(),
        Some("hash-password") => hash_password(),
        Some("generate-secret") => {
            write_line(&web_frontend::users::generate_secret());
            Ok(())
        }
        Some("generate-keypair") => generate_keypair(std::env::args().skip(2)),
        Some("--help" | "-h" | "help") => {
            write_line(USAGE);
            Ok(())
        }
        Some(other) => Err(anyhow::anyhow!("unknown command {other:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("web-frontend: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    service::telemetry::init(settings.log.format);
    let app = Application::build(&settings).await?;
    let keys = app.keys();
    service::reload_keys_on_sighup("web-frontend", move |settings| keys.reload(settings));
    app.run_until_stopped().await?;
    Ok(())
}

fn healthcheck() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    let addr = settings::resolve_addr("web.addr", &settings.web.addr)?;
    service::health::probe(addr).map_err(|error| anyhow::anyhow!("unhealthy: {error}"))
}

fn hash_password() -> anyhow::Result<()> {
    if std::io::stdin().is_terminal() {
        eprintln!("password (echoed; end with Enter):");
    }
    let mut password = String::new();
    std::io::stdin().lock().read_line(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        anyhow::bail!("empty password");
    }
    write_line(&web_frontend::users::hash_password(password)?);
    Ok(())
}

fn generate_keypair(mut args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let mut algorithm = claims::Algorithm::EdDSA;
    let mut out = None;
    let mut if_missing = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--if-missing" => if_missing = true,
            "--algorithm" => {
                algorithm = match args.next().as_deref() {
                    Some("EdDSA") => claims::Algorithm::EdDSA,
                    Some("ES256") => claims::Algorithm::ES256,
                    other => anyhow::bail!("--algorithm: EdDSA or ES256, not {other:?}"),
                }
            }
            "--out" => out = args.next(),
            other => anyhow::bail!("generate-keypair: unknown argument {other:?}\n{USAGE}"),
        }
    }
    let Some(prefix) = out else {
        anyhow::bail!("generate-keypair: --out PREFIX is required\n{USAGE}");
    };
    let existing = std::path::PathBuf::from(format!("{prefix}.key.pem"));
    if if_missing && existing.exists() {
        write_line(&format!("{} exists: kept", existing.display()));
        return Ok(());
    }
    let pair = web_frontend::users::generate_keypair(algorithm, std::path::Path::new(&prefix))?;
    write_line(&pair);
    Ok(())
}

#[allow(
    clippy::print_stdout,
    reason = "these commands print their result for the operator"
)]
fn write_line(text: &str) {
    println!("{text}");
}

//! `socket-server`: reads the settings, starts logging, serves until SIGTERM;
//! `socket-server healthcheck` asks a running one for `/healthz`, and
//! `socket-server publish` pushes an event through a running one's server API.

use std::process::ExitCode;

use settings::Settings;
use socket_server::Application;

const USAGE: &str = "usage: socket-server [serve | healthcheck | publish … | --help]

  serve        run the socket server (default); configuration: config/default.toml,
               the TOML file named by APP_CONFIG, APP_<SECTION>__<KEY> variables
  healthcheck  exit 0 when the socket server at socket.addr answers /healthz
  publish --to TARGET [--to TARGET …] --event NAME [--data JSON]
          [--idempotency-key KEY] [--url http://HOST:PORT]
               push an event through the server API (POST /api/publish) of the
               socket server at socket.addr (or --url), with api.key from the same
               configuration; prints the answer ({\"id\": …, \"sockets\": N}).
               TARGET: user:NAME, session:SID, room:NAME or everyone; JSON
               defaults to null";

/// jemalloc: it holds a connection in less memory and CPU than glibc's malloc,
/// and its background thread gives freed pages back to the system (after a wave
/// of connections closes, RSS comes back down; glibc's malloc kept it) — run
/// only while the server is idle ([`purge_in_background_when_idle`];
/// docs/performance.md, the memory section).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let result = match std::env::args().nth(1).as_deref() {
        None | Some("serve") => runtime().and_then(|runtime| runtime.block_on(serve())),
        Some("healthcheck") => healthcheck(),
        Some("publish") => runtime_current_thread()
            .and_then(|runtime| runtime.block_on(publish(std::env::args().skip(2)))),
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
    tokio::spawn(purge_in_background_when_idle());
    let keys = app.keys();
    service::reload_keys_on_sighup("socket-server", move |settings| keys.reload(settings));
    app.run_until_stopped().await?;
    Ok(())
}

/// jemalloc's background thread purges freed pages, but on a busy server it is
/// one more thread competing for the cores — on two cores it was the tail of a
/// burst of handshakes (p99 36–43 ms with it, 19–29 without:
/// docs/performance.md) — and while the server works jemalloc purges in the
/// threads that allocate anyway. So the thread runs only once the process has
/// been idle (under a fifth of a core) for two seconds, and is stopped within
/// a tenth of a second of work coming back. Where `/proc` cannot be read, it
/// simply runs.
async fn purge_in_background_when_idle() {
    const WINDOW: std::time::Duration = std::time::Duration::from_millis(100);
    /// More CPU than this in a window (a fifth of a core) is work.
    const BUSY: std::time::Duration = std::time::Duration::from_millis(20);
    const QUIET_WINDOWS: u32 = 20;
    let Ok(switch) = tikv_jemalloc_ctl::background_thread::mib() else {
        return;
    };
    let mut windows = tokio::time::interval(WINDOW);
    windows.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = cpu_time();
    let mut quiet = 0_u32;
    let mut running = switch.read().unwrap_or(false);
    loop {
        windows.tick().await;
        let now = cpu_time();
        let busy =
            matches!((last, now), (Some(before), Some(now)) if now.saturating_sub(before) > BUSY);
        last = now;
        quiet = if busy { 0 } else { quiet.saturating_add(1) };
        let wanted = quiet >= QUIET_WINDOWS || now.is_none();
        if wanted == running {
            continue;
        }
        // Stopping joins the thread: not on the runtime's own thread.
        let switched = tokio::task::spawn_blocking(move || switch.write(wanted)).await;
        if !matches!(switched, Ok(Ok(()))) {
            tracing::warn!("jemalloc's background thread cannot be switched: left as it is");
            return;
        }
        running = wanted;
    }
}

/// The process's CPU time so far (user and system, all threads).
fn cpu_time() -> Option<std::time::Duration> {
    let (user, system) = service::process::cpu_times(std::process::id()).ok()?;
    Some(user + system)
}

fn healthcheck() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    let addr = settings::resolve_addr("socket.addr", &settings.socket.addr)?;
    service::health::probe(addr).map_err(|error| anyhow::anyhow!("unhealthy: {error}"))
}

fn runtime_current_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| anyhow::anyhow!("cannot start the runtime: {error}"))
}

/// `socket-server publish`: one request to the server API; the answer on
/// stdout, a refusal as the error.
async fn publish(mut args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let mut to: Vec<String> = Vec::new();
    let (mut event, mut data, mut key, mut url) = (None, None, None, None);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--to" => to.push(value()?),
            "--event" => event = Some(value()?),
            "--data" => data = Some(value()?),
            "--idempotency-key" => key = Some(value()?),
            "--url" => url = Some(value()?),
            other => anyhow::bail!("publish: unknown argument {other:?}\n{USAGE}"),
        }
    }
    let Some(event) = event else {
        anyhow::bail!("publish: --event NAME is required\n{USAGE}");
    };
    if to.is_empty() {
        anyhow::bail!("publish: at least one --to TARGET is required\n{USAGE}");
    }
    let data: serde_json::Value = match data {
        None => serde_json::Value::Null,
        Some(json) => serde_json::from_str(&json)
            .map_err(|error| anyhow::anyhow!("--data is not JSON: {error}"))?,
    };
    let settings = Settings::load()?;
    let Some(api_key) = &settings.api.key else {
        anyhow::bail!("api.key (APP_API__KEY) is not set: the server API is off");
    };
    let base = match url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let mut addr = settings::resolve_addr("socket.addr", &settings.socket.addr)?;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}")
        }
    };
    let body = serde_json::json!({ "to": to, "event": event, "data": data });
    let mut request = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()?
        .post(format!("{base}/api/publish"))
        .bearer_auth(secrecy::ExposeSecret::expose_secret(api_key))
        .json(&body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request
        .send()
        .await
        .map_err(|error| anyhow::anyhow!("{base}: {}", error.without_url()))?;
    let status = response.status();
    let replayed = response.headers().contains_key("idempotent-replayed");
    let text = response.text().await?;
    if !status.is_success() {
        anyhow::bail!("{status}: {text}");
    }
    write_line(&text);
    if replayed {
        eprintln!("(a repeat: the first answer again, nothing delivered)");
    }
    Ok(())
}

#[allow(
    clippy::print_stdout,
    reason = "the command prints the API's answer for the operator"
)]
fn write_line(text: &str) {
    println!("{text}");
}

//! The command line: one scenario and its options (lexopt, by hand).

use std::ffi::OsString;
use std::time::Duration;

use lexopt::prelude::*;
use loadgen::{
    ConnectOptions, FanoutOptions, HoldOptions, IssueOptions, LoadError, MintSettings, Report,
    SocketRun, TokenSource, WebLogin,
};
use secrecy::SecretString;

pub(crate) const USAGE: &str = "\
usage: loadgen SCENARIO [OPTIONS]

Scenarios:
  connect  N authenticated handshakes, C in flight: handshakes/s, latency from
           TCP connect to `welcome` (p50/p90/p99/max); with --bad-share, that
           share of the tokens is forged and each must be refused with
           `not valid token`
  hold     N connections held open: the server's VmRSS before and once all are
           greeted (--server-pid required), bytes per connection
  fanout   N clients, the first sends M `message`s: deliveries/s, delivery
           latency p50/p99 (every client, the sender included, gets every one)
  issue    K logged-in clients GET /getIoConnectionToken for D seconds:
           requests/s, latency (--web required)

Target and tokens:
  --url URL            the socket server [default: http://127.0.0.1:3000]
  --secret KEY         mint tokens here with the shared key (default: the
                       APP_JWT__SECRET variable); claims as the contract's:
                       sub, user, iat, exp, iss, aud, jti, sid
  --issuer ISS         iss of minted tokens [default: web-frontend]
  --audience AUD       aud of minted tokens [default: socket-server]
  --ttl SECS           lifetime of minted tokens [default: 300]
  --users K            minted tokens name K users round robin [default: one
                       user per connection]
  --web URL            the web-frontend: tokens come from there (POST /login,
                       GET /getIoConnectionToken) unless --secret is given;
                       the target of `issue`
  --user NAME          login for --web [default: gonzalo]
  --password PASSWORD  login for --web [default: password]

Load:
  -n, --connections N  connections (connect, hold) or clients (fanout) [default: 1000]
  -c, --concurrency C  handshakes in flight [default: 200]
  --bad-share F        connect: share of forged tokens, 0 to 1 [default: 0]
  --sources K          spread connections over 127.0.0.1 … 127.0.0.K [default:
                       one address per 20,000 connections]
  --settle SECS        hold: wait before the second reading [default: 1]
  --messages M         fanout: messages sent [default: 100]
  --rate R             fanout: messages per second, 0 for all at once [default: 0]
  --clients K          issue: concurrent clients [default: 50]
  --duration SECS      issue: how long [default: 10]

Measurement and output:
  --server-pid PID     the server process: its CPU time per handshake,
                       delivery or request; its memory in `hold`
  --timeout SECS       deadline of the whole run [default: 120]
  --step-timeout SECS  deadline of each handshake or request [default: 10]
  --threads T          runtime threads, 1 = current-thread [default: 1]
  --json               one JSON object instead of a line
  -h, --help           this text

Exit status: 0 ok, 1 the run failed (deadline, setup), 2 usage, 3 the run
finished but counted errors (the report says which).";

/// What the command line asks for.
pub(crate) enum Parsed {
    Help,
    Run(Box<Command>),
}

pub(crate) struct Command {
    pub(crate) scenario: Scenario,
    pub(crate) threads: usize,
    pub(crate) json: bool,
}

pub(crate) enum Scenario {
    /// The socket scenarios resolve the server's address once running.
    Connect {
        url: String,
        options: ConnectOptions,
    },
    Hold {
        url: String,
        options: HoldOptions,
    },
    Fanout {
        url: String,
        options: FanoutOptions,
    },
    Issue(IssueOptions),
}

impl Scenario {
    pub(crate) async fn run(self) -> Result<Report, LoadError> {
        match self {
            Scenario::Connect { url, mut options } => {
                options.run.server = loadgen::resolve(&url).await?;
                loadgen::connect::run(&options).await.map(Report::Connect)
            }
            Scenario::Hold { url, mut options } => {
                options.run.server = loadgen::resolve(&url).await?;
                loadgen::hold::run(&options).await.map(Report::Hold)
            }
            Scenario::Fanout { url, mut options } => {
                options.run.server = loadgen::resolve(&url).await?;
                loadgen::fanout::run(&options).await.map(Report::Fanout)
            }
            Scenario::Issue(options) => loadgen::issue::run(&options).await.map(Report::Issue),
        }
    }
}

/// Every option, before it is checked against the scenario.
struct Raw {
    url: String,
    secret: Option<String>,
    issuer: String,
    audience: String,
    ttl_secs: u64,
    users: Option<usize>,
    web: Option<String>,
    user: String,
    password: String,
    connections: usize,
    concurrency: usize,
    bad_share: f64,
    sources: Option<usize>,
    settle: Duration,
    messages: usize,
    rate: f64,
    clients: usize,
    duration: Duration,
    server_pid: Option<u32>,
    timeout: Duration,
    step_timeout: Duration,
    threads: usize,
    json: bool,
}

impl Default for Raw {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:3000".into(),
            secret: None,
            issuer: "web-frontend".into(),
            audience: "socket-server".into(),
            ttl_secs: 300,
            users: None,
            web: None,
            user: "gonzalo".into(),
            password: "password".into(),
            connections: 1000,
            concurrency: 200,
            bad_share: 0.0,
            sources: None,
            settle: Duration::from_secs(1),
            messages: 100,
            rate: 0.0,
            clients: 50,
            duration: Duration::from_secs(10),
            server_pid: None,
            timeout: Duration::from_secs(120),
            step_timeout: Duration::from_secs(10),
            threads: 1,
            json: false,
        }
    }
}

pub(crate) fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, String> {
    parse_args(args).map_err(|error| error.to_string())
}

fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, lexopt::Error> {
    let mut parser = lexopt::Parser::from_args(args);
    let mut scenario: Option<String> = None;
    let mut raw = Raw::default();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Parsed::Help),
            Value(value) if scenario.is_none() => scenario = Some(value.string()?),
            Long("url") => raw.url = parser.value()?.string()?,
            Long("secret") => raw.secret = Some(parser.value()?.string()?),
            Long("issuer") => raw.issuer = parser.value()?.string()?,
            Long("audience") => raw.audience = parser.value()?.string()?,
            Long("ttl") => raw.ttl_secs = parser.value()?.parse()?,
            Long("users") => raw.users = Some(parser.value()?.parse()?),
            Long("web") => raw.web = Some(parser.value()?.string()?),
            Long("user") => raw.user = parser.value()?.string()?,
            Long("password") => raw.password = parser.value()?.string()?,
            Short('n') | Long("connections") => raw.connections = parser.value()?.parse()?,
            Short('c') | Long("concurrency") => raw.concurrency = parser.value()?.parse()?,
            Long("bad-share") => raw.bad_share = parser.value()?.parse()?,
            Long("sources") => raw.sources = Some(parser.value()?.parse()?),
            Long("settle") => raw.settle = seconds(parser.value()?.parse()?)?,
            Long("messages") => raw.messages = parser.value()?.parse()?,
            Long("rate") => raw.rate = parser.value()?.parse()?,
            Long("clients") => raw.clients = parser.value()?.parse()?,
            Long("duration") => raw.duration = seconds(parser.value()?.parse()?)?,
            Long("server-pid") => raw.server_pid = Some(parser.value()?.parse()?),
            Long("timeout") => raw.timeout = seconds(parser.value()?.parse()?)?,
            Long("step-timeout") => raw.step_timeout = seconds(parser.value()?.parse()?)?,
            Long("threads") => raw.threads = parser.value()?.parse()?,
            Long("json") => raw.json = true,
            _ => return Err(arg.unexpected()),
        }
    }
    let Some(scenario) = scenario else {
        return Err("missing SCENARIO (connect, hold, fanout or issue)".into());
    };
    if !(0.0..=1.0).contains(&raw.bad_share) {
        return Err("--bad-share must be between 0 and 1".into());
    }
    if raw.connections == 0 || raw.concurrency == 0 {
        return Err("--connections and --concurrency must be at least 1".into());
    }
    let (threads, json) = (raw.threads, raw.json);
    Ok(Parsed::Run(Box::new(Command {
        scenario: raw.scenario(&scenario)?,
        threads,
        json,
    })))
}

fn seconds(value: f64) -> Result<Duration, lexopt::Error> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| format!("{value} is not a duration in seconds").into())
}

impl Raw {
    fn scenario(self, name: &str) -> Result<Scenario, lexopt::Error> {
        if name == "issue" {
            let Some(url) = self.web.clone() else {
                return Err("issue needs --web URL".into());
            };
            return Ok(Scenario::Issue(IssueOptions {
                web: self.web_login(url),
                clients: self.clients.max(1),
                duration: self.duration,
                server_pid: self.server_pid,
                step_timeout: self.step_timeout,
                deadline: self.timeout,
            }));
        }
        let url = self.url.clone();
        let run = self.socket_run()?;
        Ok(match name {
            "connect" => Scenario::Connect {
                url,
                options: ConnectOptions {
                    run,
                    bad_share: self.bad_share,
                },
            },
            "hold" => {
                if run.server_pid.is_none() {
                    return Err("hold needs --server-pid PID".into());
                }
                Scenario::Hold {
                    url,
                    options: HoldOptions {
                        run,
                        settle: self.settle,
                    },
                }
            }
            "fanout" => Scenario::Fanout {
                url,
                options: FanoutOptions {
                    run,
                    messages: self.messages,
                    rate: self.rate,
                },
            },
            other => {
                return Err(
                    format!("unknown scenario {other:?} (connect, hold, fanout or issue)").into(),
                );
            }
        })
    }

    fn web_login(&self, url: String) -> WebLogin {
        WebLogin {
            url: url.trim_end_matches('/').to_owned(),
            username: self.user.clone(),
            password: SecretString::from(self.password.clone()),
        }
    }

    fn token_source(&self) -> Result<TokenSource, lexopt::Error> {
        let secret = self.secret.clone().or_else(|| {
            std::env::var("APP_JWT__SECRET")
                .ok()
                .filter(|_| self.web.is_none())
        });
        match (secret, &self.web) {
            (Some(secret), _) => {
                let mut mint = MintSettings::new(SecretString::from(secret));
                mint.issuer.clone_from(&self.issuer);
                mint.audience.clone_from(&self.audience);
                mint.ttl_secs = self.ttl_secs;
                mint.users = self.users;
                Ok(TokenSource::Mint(mint))
            }
            (None, Some(web)) => Ok(TokenSource::Web(self.web_login(web.clone()))),
            (None, None) => {
                Err("tokens: give --secret KEY (or APP_JWT__SECRET), or --web URL".into())
            }
        }
    }

    fn socket_run(&self) -> Result<SocketRun, lexopt::Error> {
        // The address is resolved when the run starts.
        let placeholder = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let mut run = SocketRun::new(placeholder, self.token_source()?, self.connections);
        run.concurrency = self.concurrency;
        run.sources = self.sources;
        run.server_pid = self.server_pid;
        run.step_timeout = self.step_timeout;
        run.deadline = self.timeout;
        Ok(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Parsed, String> {
        parse(line.split_whitespace().map(OsString::from))
    }

    #[test]
    fn a_connect_run_takes_its_numbers_and_a_secret() {
        let Ok(Parsed::Run(command)) = parse_line(
            "connect --secret 0123456789abcdef0123456789abcdef -n 50 -c 5 --bad-share 0.1 --json",
        ) else {
            panic!("parses");
        };
        let Scenario::Connect { options, .. } = command.scenario else {
            panic!("connect");
        };
        assert_eq!(options.run.connections, 50);
        assert_eq!(options.run.concurrency, 5);
        assert!((options.bad_share - 0.1).abs() < f64::EPSILON);
        assert!(command.json);
    }

    #[test]
    fn wrong_command_lines_are_refused_with_a_reason() {
        assert!(matches!(parse_line("--help"), Ok(Parsed::Help)));
        let missing = parse_line("").err().unwrap_or_default();
        assert!(missing.contains("missing SCENARIO"), "{missing}");
        let unknown = parse_line("dance --secret x").err().unwrap_or_default();
        assert!(unknown.contains("unknown scenario"), "{unknown}");
        let hold = parse_line("hold --secret x").err().unwrap_or_default();
        assert!(hold.contains("--server-pid"), "{hold}");
        let issue = parse_line("issue").err().unwrap_or_default();
        assert!(issue.contains("--web"), "{issue}");
        let share = parse_line("connect --secret x --bad-share 2")
            .err()
            .unwrap_or_default();
        assert!(share.contains("--bad-share"), "{share}");
    }
}

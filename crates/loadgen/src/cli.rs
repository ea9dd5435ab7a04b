//! The command line: one scenario and its options (lexopt, by hand).
//!
//! Long on purpose (~550 lines, a sixth of it tests): the usage text and one
//! parser for every scenario's options, kept together so they cannot drift.

use std::ffi::OsString;
use std::time::Duration;

use lexopt::prelude::*;
use loadgen::{
    ConnectOptions, FanoutOptions, HoldOptions, IssueOptions, LoadError, MintSettings, Phase,
    PublishOptions, Report, SocketRun, TargetKind, TokenSource, WebLogin,
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
           greeted (--server-pid required), bytes per connection; with
           --after-close, its VmRSS again that long after they all closed
  fanout   N clients, the first sends M `message`s: deliveries/s, delivery
           latency p50/p99 (every client, the sender included, gets every one)
  issue    K logged-in clients GET /getIoConnectionToken for D seconds:
           requests/s, latency (--web required)
  publish  N users connected (one socket each, minted tokens user0 …), then
           the server API: POST /api/publish, C requests in flight on
           keep-alive connections, one phase per --to kind: publications/s,
           deliveries/s (counted by the sockets), API and delivery latency
           p50/p99, server CPU per publication; every delivery checked, and
           the API's `sockets` answers too

Target and tokens:
  --url URL            the socket server [default: http://127.0.0.1:3000];
                       publish: repeat it for each node of a cluster (sockets
                       and API connections spread over them round robin)
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
  --after-close SECS   hold: close every connection, wait, read VmRSS a third
                       time (the memory given back) [default: 0: not read]
  --messages M         fanout: messages sent [default: 100]
  --rate R             fanout: messages per second, 0 for all at once [default: 0]
  --clients K          issue: concurrent clients [default: 50]
  --duration SECS      issue: how long [default: 10]; publish: each phase
                       stops sending after this long [default: no limit]
  --api-key KEY        publish: the server API key (default: the APP_API__KEY
                       variable)
  --to LIST            publish: phases, in order, comma-separated KIND[=COUNT]:
                       user (user:userK, K round robin: one delivery each),
                       everyone (N each), none (user:nobody: no delivery, the
                       API's own cost) [default: user,everyone]
  --publications P     publish: publications of a phase without =COUNT
                       [default: 1000]
  --in-flight C        publish: API requests in flight [default: 32]

Measurement and output:
  --server-pid PID     the server process: its CPU time per handshake,
                       delivery or request; its memory in `hold`; publish:
                       repeat it for each node (their CPU is summed)
  --redis-pid PID      publish: Redis's process, its CPU reported apart
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
    Publish {
        urls: Vec<String>,
        options: PublishOptions,
    },
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
            Scenario::Publish { urls, mut options } => {
                let mut servers = Vec::with_capacity(urls.len());
                for url in &urls {
                    servers.push(loadgen::resolve(url).await?);
                }
                let mut servers = servers.into_iter();
                if let Some(first) = servers.next() {
                    options.run.server = first;
                }
                options.run.more_servers = servers.collect();
                loadgen::publish::run(&options).await.map(Report::Publish)
            }
        }
    }
}

/// Every option, before it is checked against the scenario.
struct Raw {
    urls: Vec<String>,
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
    after_close: Duration,
    messages: usize,
    rate: f64,
    clients: usize,
    duration: Option<Duration>,
    api_key: Option<String>,
    to: String,
    publications: usize,
    in_flight: usize,
    server_pids: Vec<u32>,
    redis_pid: Option<u32>,
    timeout: Duration,
    step_timeout: Duration,
    threads: usize,
    json: bool,
}

impl Default for Raw {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
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
            after_close: Duration::ZERO,
            messages: 100,
            rate: 0.0,
            clients: 50,
            duration: None,
            api_key: None,
            to: "user,everyone".into(),
            publications: 1000,
            in_flight: 32,
            server_pids: Vec::new(),
            redis_pid: None,
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
            Long("url") => raw.urls.push(parser.value()?.string()?),
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
            Long("after-close") => raw.after_close = seconds(parser.value()?.parse()?)?,
            Long("messages") => raw.messages = parser.value()?.parse()?,
            Long("rate") => raw.rate = parser.value()?.parse()?,
            Long("clients") => raw.clients = parser.value()?.parse()?,
            Long("duration") => raw.duration = Some(seconds(parser.value()?.parse()?)?),
            Long("api-key") => raw.api_key = Some(parser.value()?.string()?),
            Long("to") => raw.to = parser.value()?.string()?,
            Long("publications") => raw.publications = parser.value()?.parse()?,
            Long("in-flight") => raw.in_flight = parser.value()?.parse()?,
            Long("server-pid") => raw.server_pids.push(parser.value()?.parse()?),
            Long("redis-pid") => raw.redis_pid = Some(parser.value()?.parse()?),
            Long("timeout") => raw.timeout = seconds(parser.value()?.parse()?)?,
            Long("step-timeout") => raw.step_timeout = seconds(parser.value()?.parse()?)?,
            Long("threads") => raw.threads = parser.value()?.parse()?,
            Long("json") => raw.json = true,
            _ => return Err(arg.unexpected()),
        }
    }
    let Some(scenario) = scenario else {
        return Err("missing SCENARIO (connect, hold, fanout, issue or publish)".into());
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
                duration: self.duration.unwrap_or(Duration::from_secs(10)),
                server_pid: self.server_pids.first().copied(),
                step_timeout: self.step_timeout,
                deadline: self.timeout,
            }));
        }
        if name == "publish" {
            return self.publish();
        }
        if self.urls.len() > 1 || self.server_pids.len() > 1 {
            return Err(format!(
                "{name} takes one --url and one --server-pid (several: publish only)"
            )
            .into());
        }
        let url = self.url();
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
                        after_close: self.after_close,
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
                return Err(format!(
                    "unknown scenario {other:?} (connect, hold, fanout, issue or publish)"
                )
                .into());
            }
        })
    }

    /// The (first) socket server.
    fn url(&self) -> String {
        self.urls
            .first()
            .cloned()
            .unwrap_or_else(|| "http://127.0.0.1:3000".into())
    }

    fn publish(self) -> Result<Scenario, lexopt::Error> {
        if self.web.is_some() || self.users.is_some() {
            return Err(
                "publish mints one user per socket: give --secret (or APP_JWT__SECRET), not --web or --users"
                    .into(),
            );
        }
        let Some(api_key) = self
            .api_key
            .clone()
            .or_else(|| std::env::var("APP_API__KEY").ok())
        else {
            return Err("publish needs the API key: --api-key KEY or APP_API__KEY".into());
        };
        let phases = phases(&self.to, self.publications)?;
        let urls = if self.urls.is_empty() {
            vec![self.url()]
        } else {
            self.urls.clone()
        };
        Ok(Scenario::Publish {
            urls,
            options: PublishOptions {
                run: self.socket_run()?,
                api_key: SecretString::from(api_key),
                phases,
                in_flight: self.in_flight.max(1),
                phase_limit: self.duration,
                more_server_pids: self.server_pids.iter().skip(1).copied().collect(),
                redis_pid: self.redis_pid,
            },
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
        run.server_pid = self.server_pids.first().copied();
        run.step_timeout = self.step_timeout;
        run.deadline = self.timeout;
        Ok(run)
    }
}

/// `--to`: `KIND[=COUNT],…`.
fn phases(list: &str, default_count: usize) -> Result<Vec<Phase>, lexopt::Error> {
    let phases = list
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (kind, count) = match item.split_once('=') {
                Some((kind, count)) => (
                    kind,
                    count
                        .parse::<usize>()
                        .map_err(|_| format!("--to: {count:?} is not a count"))?,
                ),
                None => (item, default_count),
            };
            let to = TargetKind::parse(kind)
                .ok_or_else(|| format!("--to: {kind:?} is not user, everyone or none"))?;
            Ok(Phase {
                to,
                publications: count,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    if phases.is_empty() {
        return Err("--to: at least one phase".into());
    }
    Ok(phases)
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
        let two = parse_line("connect --secret x --url a:1 --url b:2")
            .err()
            .unwrap_or_default();
        assert!(two.contains("publish only"), "{two}");
    }

    #[test]
    fn a_publish_run_takes_its_nodes_phases_and_key() {
        let Ok(Parsed::Run(command)) = parse_line(
            "publish --secret 0123456789abcdef0123456789abcdef --api-key k -n 100 \
             --url http://127.0.0.1:1 --url http://127.0.0.1:2 --server-pid 7 --server-pid 8 \
             --to user=500,everyone,none=20 --publications 30 --in-flight 4",
        ) else {
            panic!("parses");
        };
        let Scenario::Publish { urls, options } = command.scenario else {
            panic!("publish");
        };
        assert_eq!(urls.len(), 2);
        assert_eq!(options.run.connections, 100);
        assert_eq!(options.run.server_pid, Some(7));
        assert_eq!(options.more_server_pids, vec![8]);
        assert_eq!(options.in_flight, 4);
        let phases: Vec<(TargetKind, usize)> = options
            .phases
            .iter()
            .map(|phase| (phase.to, phase.publications))
            .collect();
        assert_eq!(
            phases,
            vec![
                (TargetKind::User, 500),
                (TargetKind::Everyone, 30),
                (TargetKind::None, 20)
            ]
        );
        let bad = parse_line("publish --secret x --api-key k --to room")
            .err()
            .unwrap_or_default();
        assert!(bad.contains("--to"), "{bad}");
        let web = parse_line("publish --web http://x --api-key k")
            .err()
            .unwrap_or_default();
        assert!(web.contains("mints one user"), "{web}");
    }
}

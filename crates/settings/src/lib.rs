//! The one configuration schema both services read, and its loader.
//!
//! Layers, later wins: built-in defaults → `config/default.toml` → the TOML file
//! named by `APP_CONFIG` → `APP_<SECTION>__<KEY>` environment variables. Both
//! services load the whole schema, so a key either of them knows is known to both,
//! and a key neither knows is refused at start.

mod env;
mod error;
pub mod health;
mod load;
pub mod metrics;
mod signal;
pub mod telemetry;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use claims::{Algorithm, KeySet, KeySettings, PrivateKey, PublicKey, SharedKey, SigningKey};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub use error::ConfigError;
pub use load::{DEFAULT_FILE, figment};
pub use signal::{announce_listening, reload_keys_on_sighup, shutdown_signal};

/// Every section of the configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `development` (default) or `production`.
    pub env: Environment,
    pub jwt: JwtSettings,
    pub web: WebSettings,
    pub socket: SocketSettings,
    pub redis: RedisSettings,
    pub log: LogSettings,
    /// Who can log in to the web-frontend; a later layer's list replaces an earlier one.
    pub users: Vec<UserEntry>,
}

/// `[log]`: how the services write their logs (to stderr).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    #[default]
    Development,
    Production,
}

/// `[jwt]`: the token both services agree on.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtSettings {
    /// `HS256` (the shared secret, the default), `EdDSA` or `ES256` (a key
    /// pair: the web-frontend signs with the private key, the socket server
    /// holds public keys only).
    pub algorithm: Algorithm,
    pub secret: Option<SecretString>,
    /// A file holding the shared key (a Docker or Kubernetes secret); read
    /// once at start, its trailing newline ignored. Exclusive with `secret`.
    pub secret_file: Option<PathBuf>,
    /// HS256 rotation: the key being replaced, still accepted (never used to
    /// sign) until `previous_secret_valid_until`.
    pub previous_secret: Option<SecretString>,
    /// As `secret_file`, for `previous_secret`.
    pub previous_secret_file: Option<PathBuf>,
    /// RFC 3339 (`2026-12-01T00:00:00Z`): the end of `previous_secret`.
    pub previous_secret_valid_until: Option<String>,
    /// EdDSA/ES256, web-frontend: the PEM private key it signs with.
    pub private_key_file: Option<PathBuf>,
    /// EdDSA/ES256: PEM public keys. The socket server verifies with them; the
    /// web-frontend publishes them in its JWK Set beside its own key's (the
    /// next key before a switch, the previous one until its tokens expire).
    pub public_key_files: Vec<PathBuf>,
    /// EdDSA/ES256, socket server: the web-frontend's JWK Set, fetched at
    /// start, every `jwks_refresh_secs`, and for a token naming an unknown
    /// key (at most once per 10 s).
    pub jwks_url: Option<String>,
    pub jwks_refresh_secs: u64,
    pub issuer: String,
    pub audience: String,
    pub ttl_secs: u64,
    pub leeway_secs: u64,
}

impl Default for JwtSettings {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::HS256,
            secret: None,
            secret_file: None,
            previous_secret: None,
            previous_secret_file: None,
            previous_secret_valid_until: None,
            private_key_file: None,
            public_key_files: Vec::new(),
            jwks_url: None,
            jwks_refresh_secs: 300,
            issuer: "web-frontend".into(),
            audience: "socket-server".into(),
            ttl_secs: 300,
            leeway_secs: 5,
        }
    }
}

/// `[web]`: the web-frontend.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSettings {
    pub addr: String,
    /// Where browsers reach the socket server.
    pub socket_url: String,
    /// Where the web-frontend itself reaches the socket server to report
    /// logouts (the revocation channel); default: `socket_url`.
    pub socket_internal_url: Option<String>,
    /// The key session cookies are sealed with (every web node the same).
    /// Default: derived from `jwt.secret`; with a key pair and Redis it is
    /// required, without Redis a random one per process (sessions live in
    /// that process anyway).
    pub session_secret: Option<SecretString>,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8080".into(),
            socket_url: "http://127.0.0.1:3000".into(),
            socket_internal_url: None,
            session_secret: None,
        }
    }
}

impl WebSettings {
    /// Where the revocation channel goes: `socket_internal_url`, else `socket_url`.
    pub fn revocation_base_url(&self) -> &str {
        self.socket_internal_url
            .as_deref()
            .unwrap_or(&self.socket_url)
    }
}

/// `[socket]`: the socket-server.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SocketSettings {
    pub addr: String,
    /// Browser origins allowed to open a socket; requests without `Origin` are allowed.
    pub allowed_origins: Vec<String>,
    /// Sockets one user may hold at once on one node; one more is refused
    /// with `too many connections`.
    pub max_connections_per_user: u32,
}

impl Default for SocketSettings {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:3000".into(),
            allowed_origins: vec![
                "http://127.0.0.1:8080".into(),
                "http://localhost:8080".into(),
            ],
            max_connections_per_user: 20,
        }
    }
}

/// `[redis]`: scale-out. Unset: embedded mode.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://[user:password@]host:port[/db]`; secret, as it may hold a password.
    pub url: Option<SecretString>,
}

impl RedisSettings {
    /// `host:port` of the Redis URL, for logs: never the password.
    pub fn display_host(&self) -> Option<String> {
        let url = self.url.as_ref()?.expose_secret();
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let authority = rest.split(['/', '?']).next().unwrap_or(rest);
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        Some(host.to_owned())
    }
}

/// One `[[users]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub username: String,
    /// An argon2 PHC string, never the plain password.
    pub password_hash: String,
}

/// The demo user of the article; refused in production.
pub const DEMO_USERNAME: &str = "gonzalo";

/// The demo user's password hash as `config/default.toml` ships it (the
/// password is `password`); refused in production under any username.
const DEMO_PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$aS4gHeddNtL1JiDM9Ef7EQ$TeZ+Hn8d+YaV+cjQ9xmX5AYzyv6EB/9Wi08q06+LHqM";

impl Settings {
    /// Loads every layer from the process environment and checks the values
    /// that need more than their type.
    pub fn load() -> Result<Self, ConfigError> {
        let settings: Settings = figment(std::env::vars())?
            .extract()
            .map_err(ConfigError::from_figment)?;
        settings.finish()
    }

    /// Reads what the settings name (`jwt.secret_file`,
    /// `jwt.previous_secret_file`), then [`Settings::validate`].
    pub fn finish(mut self) -> Result<Self, ConfigError> {
        self.jwt.secret = secret_from_file(
            self.jwt.secret.take(),
            self.jwt.secret_file.as_deref(),
            ("jwt.secret", "jwt.secret_file"),
        )?;
        self.jwt.previous_secret = secret_from_file(
            self.jwt.previous_secret.take(),
            self.jwt.previous_secret_file.as_deref(),
            ("jwt.previous_secret", "jwt.previous_secret_file"),
        )?;
        self.validate()?;
        Ok(self)
    }

    /// The checks serde cannot express. Each error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(secret) = &self.jwt.secret {
            check_secret(
                secret,
                KeySource {
                    key: "jwt.secret",
                    file: self
                        .jwt
                        .secret_file
                        .as_deref()
                        .map(|f| ("jwt.secret_file", f)),
                },
            )?;
        }
        self.validate_keys()?;
        if self.jwt.ttl_secs == 0 {
            return Err(ConfigError::invalid("jwt.ttl_secs", "must be at least 1"));
        }
        if self.jwt.leeway_secs > 300 {
            return Err(ConfigError::invalid(
                "jwt.leeway_secs",
                "must be at most 300",
            ));
        }
        for (key, value) in [
            ("jwt.issuer", &self.jwt.issuer),
            ("jwt.audience", &self.jwt.audience),
        ] {
            if value.is_empty() {
                return Err(ConfigError::invalid(key, "must not be empty"));
            }
        }
        resolve_addr("web.addr", &self.web.addr)?;
        resolve_addr("socket.addr", &self.socket.addr)?;
        check_http_url("web.socket_url", &self.web.socket_url)?;
        if let Some(url) = &self.web.socket_internal_url {
            check_http_url("web.socket_internal_url", url)?;
        }
        if self.socket.max_connections_per_user == 0 {
            return Err(ConfigError::invalid(
                "socket.max_connections_per_user",
                "must be at least 1",
            ));
        }
        for origin in &self.socket.allowed_origins {
            check_http_url("socket.allowed_origins", origin)?;
        }
        if let Some(url) = &self.redis.url {
            check_redis_url(url.expose_secret())?;
        }
        let mut seen = std::collections::HashSet::new();
        for user in &self.users {
            if !user.password_hash.starts_with("$argon2") {
                return Err(ConfigError::invalid(
                    "users",
                    format!(
                        "the password_hash of {:?} is not an argon2 PHC string",
                        user.username
                    ),
                ));
            }
            if user.username.is_empty() || !seen.insert(user.username.as_str()) {
                return Err(ConfigError::invalid(
                    "users",
                    "every [[users]] entry needs a distinct, non-empty username",
                ));
            }
        }
        if self.env == Environment::Production {
            if self.users.iter().any(|user| user.username == DEMO_USERNAME) {
                return Err(ConfigError::invalid(
                    "users",
                    "the demo user is refused when env = production",
                ));
            }
            if let Some(user) = self
                .users
                .iter()
                .find(|user| user.password_hash == DEMO_PASSWORD_HASH)
            {
                return Err(ConfigError::invalid(
                    "users",
                    format!(
                        "{:?} has the demo user's password hash (its password is `password`): refused when env = production",
                        user.username
                    ),
                ));
            }
            if !self.web.socket_url.starts_with("https://") {
                return Err(ConfigError::invalid(
                    "web.socket_url",
                    "must be https:// when env = production",
                ));
            }
        }
        Ok(())
    }

    /// The rules of `jwt.algorithm`'s keys that need no file read.
    fn validate_keys(&self) -> Result<(), ConfigError> {
        let jwt = &self.jwt;
        let algorithm = jwt.algorithm;
        if algorithm.is_asymmetric() {
            for (key, set) in [
                ("jwt.secret", jwt.secret.is_some()),
                ("jwt.previous_secret", jwt.previous_secret.is_some()),
                (
                    "jwt.previous_secret_valid_until",
                    jwt.previous_secret_valid_until.is_some(),
                ),
            ] {
                if set {
                    return Err(ConfigError::invalid(
                        key,
                        format!(
                            "a shared secret is not used with jwt.algorithm = {algorithm} (its keys: jwt.private_key_file, jwt.public_key_files, jwt.jwks_url)"
                        ),
                    ));
                }
            }
            if jwt.public_key_files.len() > claims::MAX_KEYS {
                return Err(ConfigError::invalid(
                    "jwt.public_key_files",
                    format!("at most {} keys", claims::MAX_KEYS),
                ));
            }
            if let Some(url) = &jwt.jwks_url {
                check_http_url("jwt.jwks_url", url)?;
                if self.env == Environment::Production && !url.starts_with("https://") {
                    return Err(ConfigError::invalid(
                        "jwt.jwks_url",
                        "must be https:// when env = production (whoever can change the keys in transit can mint tokens; or mount jwt.public_key_files)",
                    ));
                }
            }
            if !(1..=86_400).contains(&jwt.jwks_refresh_secs) {
                return Err(ConfigError::invalid(
                    "jwt.jwks_refresh_secs",
                    "must be between 1 and 86400",
                ));
            }
        } else {
            for (key, set) in [
                ("jwt.private_key_file", jwt.private_key_file.is_some()),
                ("jwt.public_key_files", !jwt.public_key_files.is_empty()),
                ("jwt.jwks_url", jwt.jwks_url.is_some()),
            ] {
                if set {
                    return Err(ConfigError::invalid(
                        key,
                        "needs jwt.algorithm = EdDSA or ES256 (HS256 uses the shared secret)",
                    ));
                }
            }
            match (&jwt.previous_secret, &jwt.previous_secret_valid_until) {
                (Some(previous), Some(until)) => {
                    check_secret(
                        previous,
                        KeySource {
                            key: "jwt.previous_secret",
                            file: jwt
                                .previous_secret_file
                                .as_deref()
                                .map(|f| ("jwt.previous_secret_file", f)),
                        },
                    )?;
                    parse_valid_until(until)?;
                    if jwt
                        .secret
                        .as_ref()
                        .is_some_and(|secret| secret.expose_secret() == previous.expose_secret())
                    {
                        return Err(ConfigError::invalid(
                            "jwt.previous_secret",
                            "is the same key as jwt.secret",
                        ));
                    }
                }
                (Some(_), None) => {
                    return Err(ConfigError::invalid(
                        "jwt.previous_secret_valid_until",
                        "is required with jwt.previous_secret (when the old key's tokens stop being accepted)",
                    ));
                }
                (None, Some(_)) => {
                    return Err(ConfigError::invalid(
                        "jwt.previous_secret_valid_until",
                        "needs jwt.previous_secret",
                    ));
                }
                (None, None) => {}
            }
        }
        if let Some(secret) = &self.web.session_secret {
            check_secret(
                secret,
                KeySource {
                    key: "web.session_secret",
                    file: None,
                },
            )?;
        }
        Ok(())
    }

    /// What the token rules are besides the keys.
    pub fn token_settings(&self) -> claims::TokenSettings {
        claims::TokenSettings {
            issuer: self.jwt.issuer.clone(),
            audience: self.jwt.audience.clone(),
            ttl_secs: self.jwt.ttl_secs,
            leeway_secs: self.jwt.leeway_secs,
        }
    }

    /// The web-frontend's signing key: the shared secret (announcing its
    /// `kid` while a previous one is configured), or the private key of
    /// `jwt.private_key_file`.
    pub fn signing_key(&self) -> Result<SigningKey, ConfigError> {
        match self.jwt.algorithm {
            Algorithm::HS256 => Ok(SigningKey::Shared {
                key: self.shared_key()?,
                announce_kid: self.jwt.previous_secret.is_some(),
            }),
            algorithm => {
                let path = self
                    .jwt
                    .private_key_file
                    .as_deref()
                    .ok_or(ConfigError::MissingPrivateKey(algorithm))?;
                let pem = read_key_file("jwt.private_key_file", path)?;
                PrivateKey::from_pem(algorithm, &pem)
                    .map(SigningKey::Private)
                    .map_err(|error| {
                        ConfigError::invalid(
                            "jwt.private_key_file",
                            format!("{}: {error}", path.display()),
                        )
                    })
            }
        }
    }

    /// The public keys of `jwt.public_key_files` (none with HS256).
    pub fn public_keys(&self) -> Result<Vec<PublicKey>, ConfigError> {
        let algorithm = self.jwt.algorithm;
        if !algorithm.is_asymmetric() {
            return Ok(Vec::new());
        }
        let mut keys: Vec<PublicKey> = Vec::new();
        for path in &self.jwt.public_key_files {
            let pem = read_key_file("jwt.public_key_files", path)?;
            let key = PublicKey::from_pem(algorithm, &pem).map_err(|error| {
                ConfigError::invalid(
                    "jwt.public_key_files",
                    format!("{}: {error}", path.display()),
                )
            })?;
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        Ok(keys)
    }

    /// HS256: the keys a verifier accepts — the secret, and the previous one
    /// until its end.
    pub fn shared_key_set(&self) -> Result<KeySet, ConfigError> {
        let previous = match (
            &self.jwt.previous_secret,
            &self.jwt.previous_secret_valid_until,
        ) {
            (Some(previous), Some(until)) => Some((
                SharedKey::new(previous.expose_secret().as_bytes()).map_err(|error| {
                    ConfigError::invalid("jwt.previous_secret", error.to_string())
                })?,
                parse_valid_until(until)?,
            )),
            _ => None,
        };
        Ok(KeySet::Shared {
            current: self.shared_key()?,
            previous,
        })
    }

    fn shared_key(&self) -> Result<SharedKey, ConfigError> {
        let secret = self.jwt.secret.as_ref().ok_or(ConfigError::MissingSecret)?;
        SharedKey::new(secret.expose_secret().as_bytes())
            .map_err(|error| ConfigError::BadSecret(error.to_string()))
    }

    /// The key settings of the token, for a service that signs or verifies.
    /// Without a secret this is the contract's one-line refusal.
    pub fn key_settings(&self) -> Result<KeySettings, ConfigError> {
        let secret = self.jwt.secret.clone().ok_or(ConfigError::MissingSecret)?;
        Ok(self.key_settings_with(secret))
    }

    /// The key settings with the given secret (the all-in-one runner's generated one).
    pub fn key_settings_with(&self, secret: SecretString) -> KeySettings {
        KeySettings {
            secret,
            issuer: self.jwt.issuer.clone(),
            audience: self.jwt.audience.clone(),
            ttl_secs: self.jwt.ttl_secs,
            leeway_secs: self.jwt.leeway_secs,
        }
    }

    /// Whether cookies must be `Secure`: the deployment is served over https,
    /// which `web.socket_url` tells (a page over https can only reach an https
    /// socket server, and production requires it).
    pub fn served_over_https(&self) -> bool {
        self.web.socket_url.starts_with("https://")
    }
}

/// Where a key was configured: its key, and the file it was read from (whose
/// own key, e.g. `jwt.secret_file`, the refusal then names).
struct KeySource<'a> {
    key: &'static str,
    file: Option<(&'static str, &'a std::path::Path)>,
}

/// The rules every key meets, wherever it came from (`jwt.secret`,
/// `jwt.previous_secret`, `web.session_secret`, or their files). The
/// message for `jwt.secret` itself is the contract's, naming its variable.
fn check_secret(secret: &SecretString, source: KeySource<'_>) -> Result<(), ConfigError> {
    let key = secret.expose_secret();
    let fault = if key.len() < claims::MIN_SECRET_BYTES {
        format!(
            "must be at least {} bytes, it has {}",
            claims::MIN_SECRET_BYTES,
            key.len()
        )
    } else if let Some(reason) = weak_key(key) {
        reason.to_owned()
    } else {
        return Ok(());
    };
    Err(match source {
        KeySource {
            file: Some((file_key, path)),
            ..
        } => ConfigError::invalid(file_key, format!("the key in {} {fault}", path.display())),
        KeySource {
            key: "jwt.secret", ..
        } => ConfigError::BadSecret(fault),
        KeySource { key, .. } => ConfigError::invalid(key, fault),
    })
}

/// Why a key of the right length is still no key: a published example, or
/// too few distinct characters (40 spaces).
fn weak_key(key: &str) -> Option<&'static str> {
    if KNOWN_EXAMPLE_KEYS.contains(&key) {
        return Some(
            "is a key published as an example: make a new one (web-frontend generate-secret)",
        );
    }
    let distinct: std::collections::HashSet<u8> = key.bytes().collect();
    if distinct.len() < 8 {
        return Some(
            "has fewer than 8 distinct characters: make a random one (web-frontend generate-secret)",
        );
    }
    None
}

/// Keys printed in documentation, ours and the article's (and jwt.io's
/// default): whoever reads them could mint tokens for any deployment that
/// copied one. Shorter ones are refused by length already.
const KNOWN_EXAMPLE_KEYS: &[&str] = &[
    // .env.example's placeholder.
    "replace-me-with-64-hex-characters-from-openssl-rand-hex-32",
    // The article's key, and padded variants seen in copies of it.
    "my_super_secret_key",
    "my_super_secret_key_my_super_secret_key",
    "my_super_secret_key_0123456789abcdef",
    // jwt.io's default HS256 secret, and its longer form.
    "your-256-bit-secret",
    "your-256-bit-secret-your-256-bit-secret",
    // Common placeholders at the minimum length.
    "changeme-changeme-changeme-changeme",
    "secretsecretsecretsecretsecretsecret",
    "00000000000000000000000000000000",
    "0123456789abcdef0123456789abcdef",
];

/// `jwt.previous_secret_valid_until`, RFC 3339, as seconds since the Unix epoch.
pub fn parse_valid_until(value: &str) -> Result<i64, ConfigError> {
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map(time::OffsetDateTime::unix_timestamp)
        .map_err(|_| {
            ConfigError::invalid(
                "jwt.previous_secret_valid_until",
                format!("{value:?} is not an RFC 3339 time, as in 2026-12-01T00:00:00Z"),
            )
        })
}

/// The value of `secret`, or the one in `file`, never both.
fn secret_from_file(
    secret: Option<SecretString>,
    file: Option<&std::path::Path>,
    (key, file_key): (&'static str, &'static str),
) -> Result<Option<SecretString>, ConfigError> {
    match (secret, file) {
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            file_key,
            format!(
                "set {key} ({}) or {file_key} ({}), not both",
                env_name(key),
                env_name(file_key)
            ),
        )),
        (secret, None) => Ok(secret),
        (None, Some(path)) => read_secret_file(file_key, path).map(Some),
    }
}

/// `jwt.secret` → `APP_JWT__SECRET`.
fn env_name(key: &str) -> String {
    format!("APP_{}", key.replace('.', "__").to_ascii_uppercase())
}

/// A PEM key file's bytes; the error names the key and the file, never the content.
fn read_key_file(key: &'static str, path: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|error| {
        ConfigError::invalid(key, format!("cannot read {}: {error}", path.display()))
    })
}

/// The key in `path`, without its trailing newline (`echo key > file`); the
/// rules of a key are checked with the others ([`Settings::validate`]).
fn read_secret_file(
    file_key: &'static str,
    path: &std::path::Path,
) -> Result<SecretString, ConfigError> {
    let bytes = std::fs::read(path).map_err(|error| {
        ConfigError::invalid(file_key, format!("cannot read {}: {error}", path.display()))
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        ConfigError::invalid(
            file_key,
            format!("{} does not hold UTF-8 text", path.display()),
        )
    })?;
    let key = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    Ok(SecretString::from(key))
}

/// Resolves a `host:port` listen address; a port of 0 binds an ephemeral port.
pub fn resolve_addr(key: &'static str, addr: &str) -> Result<SocketAddr, ConfigError> {
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| ConfigError::invalid(key, format!("{addr:?} is not a host:port address")))
}

/// A plain `redis://host[:port][/db]` URL; the services add the query
/// parameters their client libraries need (`protocol=resp3`).
fn check_redis_url(url: &str) -> Result<(), ConfigError> {
    const KEY: &str = "redis.url";
    let Some(rest) = url.strip_prefix("redis://") else {
        return Err(ConfigError::invalid(
            KEY,
            "must start with redis:// (the value is not shown: it may hold a password)",
        ));
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host.is_empty() || url.contains(char::is_whitespace) || url.contains('?') {
        return Err(ConfigError::invalid(
            KEY,
            "must be redis://host[:port][/db] without a query",
        ));
    }
    if !path.is_empty() && path.parse::<u32>().is_err() {
        return Err(ConfigError::invalid(
            KEY,
            "the path names the database: a number, as in redis://host:6379/0",
        ));
    }
    Ok(())
}

fn check_http_url(key: &'static str, url: &str) -> Result<(), ConfigError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .filter(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace));
    match rest {
        Some(_) => Ok(()),
        None => Err(ConfigError::invalid(
            key,
            format!("{url:?} is not an http(s) URL"),
        )),
    }
}

#[cfg(test)]
mod tests;

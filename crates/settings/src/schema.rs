//! The configuration schema: every section and key, with its default.

use std::path::PathBuf;

use claims::Algorithm;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

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
    pub api: ApiSettings,
    pub webhooks: WebhookSettings,
    pub log: LogSettings,
    /// Who can log in to the web-frontend; a later layer's list replaces an earlier one.
    pub users: Vec<UserEntry>,
}

/// `[api]`: the socket-server's server API, for the application's own backend.
/// Unset key: the API is off (every `/api/` path answers 404).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// The bearer key every API request carries (same rules as `jwt.secret`).
    pub key: Option<SecretString>,
    /// A file holding the key (a Docker or Kubernetes secret); read once at
    /// start, its trailing newline ignored. Exclusive with `key`.
    pub key_file: Option<PathBuf>,
}

/// `[webhooks]`: presence events (`user.online`, `user.offline`) POSTed by
/// the socket-server to the application. Unset URL: none are sent.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Where the events go (`https://` in production).
    pub url: Option<String>,
    /// The key events are signed with (Standard Webhooks; required with a URL).
    pub secret: Option<SecretString>,
    /// How long a user stays without sockets before `user.offline` (a page
    /// reload within it sends nothing).
    pub offline_grace_secs: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            url: None,
            secret: None,
            offline_grace_secs: 5,
        }
    }
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
    /// Rooms one socket may be in at once; one more `join` is refused with
    /// `too many rooms`.
    pub max_rooms_per_socket: u32,
    /// How long a disconnected client can come back and get what it missed
    /// (connection state recovery); 0 turns recovery off.
    pub recovery_secs: u64,
    /// Events kept for recovery, per target (user, session, room, everyone).
    pub recovery_max_events: u32,
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
            max_rooms_per_socket: 100,
            recovery_secs: 120,
            recovery_max_events: 1000,
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
    /// The rooms the user may join, as patterns: a name (`team:42`), or a
    /// prefix and a trailing `*` (`org:7:*`). They travel in the token.
    #[serde(default)]
    pub rooms: Vec<String>,
}

/// The demo user of the article; refused in production.
pub const DEMO_USERNAME: &str = "gonzalo";

/// The demo user's password hash as `config/default.toml` ships it (the
/// password is `password`); refused in production under any username.
pub(crate) const DEMO_PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$aS4gHeddNtL1JiDM9Ef7EQ$TeZ+Hn8d+YaV+cjQ9xmX5AYzyv6EB/9Wi08q06+LHqM";

impl Settings {
    /// What the token rules are besides the keys.
    pub fn token_settings(&self) -> claims::TokenSettings {
        claims::TokenSettings {
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

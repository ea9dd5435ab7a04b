//! The checks serde cannot express: each refusal names the key (or its
//! variable), never a secret's value.
//!
//! Long on purpose (~500 lines): one check per key of the schema, together,
//! so a reader finds every rule of a key in one place.

use std::net::{SocketAddr, ToSocketAddrs};

use secrecy::{ExposeSecret, SecretString};

use crate::error::ConfigError;
use crate::schema::{DEMO_PASSWORD_HASH, DEMO_USERNAME, Environment, Settings};

impl Settings {
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
        if self.socket.recovery_secs > 86_400 {
            return Err(ConfigError::invalid(
                "socket.recovery_secs",
                "must be at most 86400",
            ));
        }
        if !(1..=100_000).contains(&self.socket.recovery_max_events) {
            return Err(ConfigError::invalid(
                "socket.recovery_max_events",
                "must be between 1 and 100000",
            ));
        }
        if self.socket.max_rooms_per_socket == 0 {
            return Err(ConfigError::invalid(
                "socket.max_rooms_per_socket",
                "must be at least 1",
            ));
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
            check_room_patterns(user)?;
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
        self.validate_api()?;
        self.validate_webhooks()
    }

    /// The webhook URL and its signing key come together; the key follows the
    /// rules of any key and is its own.
    fn validate_webhooks(&self) -> Result<(), ConfigError> {
        let hooks = &self.webhooks;
        if hooks.offline_grace_secs > 3600 {
            return Err(ConfigError::invalid(
                "webhooks.offline_grace_secs",
                "must be at most 3600",
            ));
        }
        let Some(url) = &hooks.url else {
            return Ok(());
        };
        check_http_url("webhooks.url", url)?;
        if self.env == Environment::Production && !url.starts_with("https://") {
            return Err(ConfigError::invalid(
                "webhooks.url",
                "must be https:// when env = production (the events name your users)",
            ));
        }
        let Some(secret) = &hooks.secret else {
            return Err(ConfigError::invalid(
                "webhooks.secret",
                "is required with webhooks.url (APP_WEBHOOKS__SECRET): the events are signed with it",
            ));
        };
        check_secret(
            secret,
            KeySource {
                key: "webhooks.secret",
                file: None,
            },
        )?;
        for (other, key) in [
            ("jwt.secret", &self.jwt.secret),
            ("api.key", &self.api.key),
            ("web.session_secret", &self.web.session_secret),
        ] {
            if key
                .as_ref()
                .is_some_and(|key| key.expose_secret() == secret.expose_secret())
            {
                return Err(ConfigError::invalid(
                    "webhooks.secret",
                    format!("is the same key as {other}: the webhooks need a key of their own"),
                ));
            }
        }
        Ok(())
    }

    /// The API key: the rules of any key, and a key of its own (whoever holds
    /// it can push events, not mint tokens, and the other way round).
    fn validate_api(&self) -> Result<(), ConfigError> {
        let Some(key) = &self.api.key else {
            return Ok(());
        };
        check_secret(
            key,
            KeySource {
                key: "api.key",
                file: self.api.key_file.as_deref().map(|f| ("api.key_file", f)),
            },
        )?;
        let others = [
            ("jwt.secret", &self.jwt.secret),
            ("jwt.previous_secret", &self.jwt.previous_secret),
            ("web.session_secret", &self.web.session_secret),
        ];
        for (other, secret) in others {
            if secret
                .as_ref()
                .is_some_and(|secret| secret.expose_secret() == key.expose_secret())
            {
                return Err(ConfigError::invalid(
                    "api.key",
                    format!("is the same key as {other}: the API needs a key of its own"),
                ));
            }
        }
        Ok(())
    }
}

/// A user's room patterns: what a token can carry, and nothing that could
/// never match a room a socket may join.
fn check_room_patterns(user: &crate::schema::UserEntry) -> Result<(), ConfigError> {
    let refuse = |pattern: &str, why: &str| {
        Err(ConfigError::invalid(
            "users",
            format!("the room pattern {pattern:?} of {:?} {why}", user.username),
        ))
    };
    if user.rooms.len() > claims::MAX_ROOM_PATTERNS {
        return Err(ConfigError::invalid(
            "users",
            format!(
                "{:?} has more than {} room patterns",
                user.username,
                claims::MAX_ROOM_PATTERNS
            ),
        ));
    }
    for pattern in &user.rooms {
        let name = pattern.strip_suffix('*').unwrap_or(pattern);
        if pattern.is_empty() || name.chars().count() > claims::MAX_ROOM_NAME_CHARS {
            return refuse(pattern, "must have 1 to 100 characters before its `*`");
        }
        if name.contains('*') {
            return refuse(pattern, "may have a `*` at its end only");
        }
        if pattern.chars().any(char::is_control) {
            return refuse(pattern, "holds a control character");
        }
        if name.starts_with("user:") || name.starts_with("session:") {
            return refuse(
                pattern,
                "names a reserved room (user: and session: rooms are never joined)",
            );
        }
    }
    Ok(())
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

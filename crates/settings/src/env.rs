//! `APP_<SECTION>__<KEY>` environment variables as a figment provider.
//!
//! figment's own `Env` parses every value (`"0123"` would become the number 123,
//! and an all-digit secret a number), and names a failing key `JWT.TTL_SECS`.
//! This provider keeps string keys verbatim, parses only numbers and lists, and
//! names the variable itself in errors.

use figment::value::{Dict, Map, Value};
use figment::{Error, Metadata, Profile, Provider};

pub(crate) const METADATA_NAME: &str = "environment variable";

/// Keys read as they are written: strings, where parsing could only lose.
const VERBATIM_KEYS: &[&str] = &[
    "env",
    "log.format",
    "jwt.algorithm",
    "jwt.secret",
    "jwt.secret_file",
    "jwt.previous_secret",
    "jwt.previous_secret_file",
    "jwt.previous_secret_valid_until",
    "jwt.private_key_file",
    "jwt.jwks_url",
    "web.session_secret",
    "jwt.issuer",
    "jwt.audience",
    "web.addr",
    "web.socket_url",
    "web.socket_internal_url",
    "socket.addr",
    "redis.url",
    "api.key",
    "api.key_file",
    "webhooks.url",
    "webhooks.secret",
];

/// Names outside the schema's layering that start with the prefix.
const NOT_SETTINGS: &[&str] = &["APP_CONFIG"];

#[derive(Debug)]
pub(crate) struct AppEnv {
    vars: Vec<(String, String)>,
}

impl AppEnv {
    pub(crate) fn new(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let vars = vars
            .into_iter()
            .filter(|(name, _)| name.starts_with("APP_") && !NOT_SETTINGS.contains(&name.as_str()))
            .collect();
        Self { vars }
    }
}

impl Provider for AppEnv {
    fn metadata(&self) -> Metadata {
        Metadata::named(METADATA_NAME).interpolater(|_: &Profile, keys: &[&str]| {
            format!("APP_{}", keys.join("__").to_ascii_uppercase())
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let mut root = Dict::new();
        for (name, raw) in &self.vars {
            let path: Vec<String> = name["APP_".len()..]
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect();
            let key = path.join(".");
            let value = if VERBATIM_KEYS.contains(&key.as_str()) {
                Value::from(raw.clone())
            } else {
                // Infallible: what does not parse stays a string.
                raw.parse::<Value>()
                    .unwrap_or_else(|_| Value::from(raw.clone()))
            };
            insert(&mut root, &path, value);
        }
        Ok(Profile::Default.collect(root))
    }
}

fn insert(dict: &mut Dict, path: &[String], value: Value) {
    match path {
        [] => {}
        [last] => {
            dict.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, value);
            } else {
                // `APP_JWT=x` and `APP_JWT__TTL_SECS=1` together: the table wins, and
                // the schema refuses the leftover when it sees a non-table `jwt`.
                let mut inner = Dict::new();
                insert(&mut inner, rest, value);
                *entry = Value::from(inner);
            }
        }
    }
}

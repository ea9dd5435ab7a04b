//! Configuration errors: one line each, naming the key or variable, never a secret value.

use figment::error::Kind;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("missing APP_JWT__SECRET: the HS256 shared key (jwt.secret) is required")]
    MissingSecret,
    /// A key pair's algorithm without the private key to sign with.
    #[error(
        "missing APP_JWT__PRIVATE_KEY_FILE: jwt.algorithm = {0} signs with a PEM private key (jwt.private_key_file; web-frontend generate-keypair makes one)"
    )]
    MissingPrivateKey(claims::Algorithm),
    /// A key pair's algorithm without any key to verify with.
    #[error(
        "jwt.algorithm = {0} verifies with public keys: set jwt.public_key_files (APP_JWT__PUBLIC_KEY_FILES) or jwt.jwks_url (APP_JWT__JWKS_URL)"
    )]
    MissingPublicKeys(claims::Algorithm),
    /// A key pair and Redis, without a shared key for the session cookies.
    #[error(
        "missing APP_WEB__SESSION_SECRET: with jwt.algorithm = {0} and redis.url, every web-frontend node seals session cookies with web.session_secret (web-frontend generate-secret makes one)"
    )]
    MissingSessionSecret(claims::Algorithm),
    /// Too short, or weak: the reason (never the key).
    #[error("APP_JWT__SECRET (jwt.secret) {0}")]
    BadSecret(String),
    #[error("APP_CONFIG names {path:?}, which cannot be read: {reason}")]
    UnreadableFile { path: String, reason: String },
    /// A value figment could not read into the schema (unknown key, wrong type).
    #[error("{0}")]
    Figment(String),
    #[error("{key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl ConfigError {
    /// The key and what is wrong with its value (never the value of a secret).
    pub fn invalid(key: &'static str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key,
            reason: reason.into(),
        }
    }

    /// One line naming the key (or environment variable) and where it came from.
    pub(crate) fn from_figment(error: figment::Error) -> Self {
        // For an unknown field, figment's path already ends with the field's name.
        let path = &error.path;
        let key = path.join(".");
        let secret = matches!(
            key.as_str(),
            "jwt.secret"
                | "jwt.previous_secret"
                | "web.session_secret"
                | "redis.url"
                | "api.key"
                | "webhooks.secret"
        );
        let what = match &error.kind {
            Kind::UnknownField(..) => "unknown configuration key".to_owned(),
            // serde's message would quote the value: never for a secret.
            Kind::InvalidType(..) | Kind::InvalidValue(..) if secret => {
                "malformed value: expected a string".to_owned()
            }
            Kind::InvalidType(actual, expected) => {
                format!("malformed value: found {actual}, expected {expected}")
            }
            Kind::InvalidValue(actual, expected) => {
                format!("malformed value: found {actual}, expected {expected}")
            }
            // Secret values never reach an error message: serde reports types, not values.
            // A TOML syntax error spans lines (the source excerpt): keep its first.
            other => other
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
        };
        let line = match &error.metadata {
            Some(metadata) if metadata.name == crate::env::METADATA_NAME => {
                let path: Vec<&str> = path.iter().map(String::as_str).collect();
                let variable = metadata.interpolate(&figment::Profile::Default, &path);
                format!("{variable}: {what}")
            }
            Some(metadata) => {
                let source = match &metadata.source {
                    Some(source) => source.to_string(),
                    None => metadata.name.to_string(),
                };
                if key.is_empty() {
                    format!("{source}: {what}")
                } else {
                    format!("{key} in {source}: {what}")
                }
            }
            None if key.is_empty() => what,
            None => format!("{key}: {what}"),
        };
        ConfigError::Figment(line)
    }
}

//! Loading: the layering in one function, then the files the settings name.

use figment::Figment;
use figment::providers::{Format, Toml};

use secrecy::SecretString;

use crate::env::AppEnv;
use crate::error::ConfigError;
use crate::schema::Settings;

/// The project's defaults file, relative to the working directory.
pub const DEFAULT_FILE: &str = "config/default.toml";

/// The layered configuration for the given environment variables (tests pass
/// their own; [`Settings::load`] passes the process's).
pub fn figment(vars: impl IntoIterator<Item = (String, String)>) -> Result<Figment, ConfigError> {
    let vars: Vec<(String, String)> = vars.into_iter().collect();
    // `file_exact`: figment's `file` would also search parent directories. The
    // defaults file is optional (a service deployed alone may have none).
    let mut figment = Figment::new();
    if std::path::Path::new(DEFAULT_FILE).is_file() {
        figment = figment.merge(Toml::file_exact(DEFAULT_FILE));
    }
    if let Some((_, path)) = vars.iter().find(|(name, _)| name == "APP_CONFIG") {
        if let Err(error) = std::fs::metadata(path) {
            return Err(ConfigError::UnreadableFile {
                path: path.clone(),
                reason: error.to_string(),
            });
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    Ok(figment.merge(AppEnv::new(vars)))
}

impl Settings {
    /// Loads every layer from the process environment and checks the values
    /// that need more than their type.
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_from(std::env::vars())
    }

    /// As [`Settings::load`], with these environment variables instead of the
    /// process's (tests pass their own).
    pub fn load_from(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let settings: Settings = figment(vars)?
            .extract()
            .map_err(ConfigError::from_figment)?;
        settings.finish()
    }

    /// Reads what the settings name (`jwt.secret_file`,
    /// `jwt.previous_secret_file`, `api.key_file`), then [`Settings::validate`].
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
        self.api.key = secret_from_file(
            self.api.key.take(),
            self.api.key_file.as_deref(),
            ("api.key", "api.key_file"),
        )?;
        self.validate()?;
        Ok(self)
    }
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

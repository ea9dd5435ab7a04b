//! The layering, in one function.

use figment::Figment;
use figment::providers::{Format, Toml};

use crate::ConfigError;
use crate::env::AppEnv;

/// The project's defaults file, relative to the working directory.
pub const DEFAULT_FILE: &str = "config/default.toml";

/// The layered configuration for the given environment variables (tests pass
/// their own; [`crate::Settings::load`] passes the process's).
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

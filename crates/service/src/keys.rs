//! The keys the configuration names, built for a service that signs or
//! verifies: the shared secret (already read by `settings`), or PEM key files,
//! read here on every call so that a reload (SIGHUP) reads them again.

use std::path::Path;

use claims::{Algorithm, KeySet, PrivateKey, PublicKey, SharedKey, SigningKey};
use secrecy::ExposeSecret as _;
use settings::{ConfigError, Settings};

/// The web-frontend's signing key: the shared secret (announcing its `kid`
/// while a previous one is configured), or the private key of
/// `jwt.private_key_file`.
pub fn signing_key(settings: &Settings) -> Result<SigningKey, ConfigError> {
    match settings.jwt.algorithm {
        Algorithm::HS256 => Ok(SigningKey::Shared {
            key: shared_key(settings)?,
            announce_kid: settings.jwt.previous_secret.is_some(),
        }),
        algorithm => {
            let path = settings
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

/// The public keys of `jwt.public_key_files` (none with HS256), each once.
pub fn public_keys(settings: &Settings) -> Result<Vec<PublicKey>, ConfigError> {
    let algorithm = settings.jwt.algorithm;
    if !algorithm.is_asymmetric() {
        return Ok(Vec::new());
    }
    let mut keys: Vec<PublicKey> = Vec::new();
    for path in &settings.jwt.public_key_files {
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
pub fn shared_key_set(settings: &Settings) -> Result<KeySet, ConfigError> {
    let jwt = &settings.jwt;
    let previous = match (&jwt.previous_secret, &jwt.previous_secret_valid_until) {
        (Some(previous), Some(until)) => Some((
            SharedKey::new(previous.expose_secret().as_bytes())
                .map_err(|error| ConfigError::invalid("jwt.previous_secret", error.to_string()))?,
            settings::parse_valid_until(until)?,
        )),
        _ => None,
    };
    Ok(KeySet::Shared {
        current: shared_key(settings)?,
        previous,
    })
}

fn shared_key(settings: &Settings) -> Result<SharedKey, ConfigError> {
    let secret = settings
        .jwt
        .secret
        .as_ref()
        .ok_or(ConfigError::MissingSecret)?;
    SharedKey::new(secret.expose_secret().as_bytes())
        .map_err(|error| ConfigError::BadSecret(error.to_string()))
}

/// A PEM key file's bytes; the error names the key and the file, never the content.
fn read_key_file(key: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|error| {
        ConfigError::invalid(key, format!("cannot read {}: {error}", path.display()))
    })
}

//! Who can log in: the `[[users]]` of the configuration, with argon2 hashes.

use std::collections::HashMap;

use anyhow::Context as _;
use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use settings::UserEntry;

/// The users and their password hashes, checked once at start.
pub struct UserDirectory {
    hashes: HashMap<String, String>,
    /// Checked for unknown usernames, so that a login takes as long whether or
    /// not the user exists (no user enumeration by timing).
    dummy_hash: String,
}

impl std::fmt::Debug for UserDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserDirectory")
            .field("users", &self.hashes.len())
            .finish_non_exhaustive()
    }
}

impl UserDirectory {
    pub fn from_settings(users: &[UserEntry]) -> anyhow::Result<Self> {
        let mut hashes = HashMap::with_capacity(users.len());
        for user in users {
            PasswordHash::new(&user.password_hash)
                .ok()
                .filter(|hash| hash.algorithm.as_str().starts_with("argon2"))
                .with_context(|| {
                    format!(
                        "users: the password_hash of {:?} is not an argon2 PHC string",
                        user.username
                    )
                })?;
            hashes.insert(user.username.clone(), user.password_hash.clone());
        }
        let dummy_hash = hash_password(SaltString::generate(&mut OsRng).as_ref())?;
        Ok(Self { hashes, dummy_hash })
    }

    /// Whether `password` is `username`'s. CPU-heavy (argon2): run it off the
    /// async workers.
    pub fn verify(&self, username: &str, password: &str) -> bool {
        let (hash, known) = match self.hashes.get(username) {
            Some(hash) => (hash.as_str(), true),
            None => (self.dummy_hash.as_str(), false),
        };
        let matches = PasswordHash::new(hash).is_ok_and(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        });
        known && matches
    }
}

/// An argon2id PHC string for `password` (argon2's recommended parameters),
/// for a `[[users]]` entry.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| anyhow::anyhow!("hashing the password failed: {error}"))
}

/// A random 256-bit key, hex-encoded (64 characters), for `APP_JWT__SECRET`.
pub fn generate_secret() -> String {
    use argon2::password_hash::rand_core::RngCore as _;
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory() -> UserDirectory {
        let entry = UserEntry {
            username: "alice".into(),
            password_hash: hash_password("wonderland").expect("hash"),
        };
        UserDirectory::from_settings(&[entry]).expect("valid users")
    }

    #[test]
    fn the_right_password_logs_in_and_nothing_else_does() {
        let users = directory();
        assert!(users.verify("alice", "wonderland"));
        assert!(!users.verify("alice", "Wonderland"));
        assert!(!users.verify("alice", ""));
        assert!(!users.verify("bob", "wonderland"));
    }

    #[test]
    fn a_hash_that_is_not_argon2_is_refused_at_start() {
        let entry = UserEntry {
            username: "alice".into(),
            password_hash: "plain-password".into(),
        };
        let error = UserDirectory::from_settings(&[entry])
            .expect_err("refused")
            .to_string();
        assert_eq!(
            error,
            "users: the password_hash of \"alice\" is not an argon2 PHC string"
        );
    }
}

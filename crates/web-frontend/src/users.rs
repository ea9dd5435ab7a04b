//! Who can log in: the `[[users]]` of the configuration, with argon2 hashes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use settings::UserEntry;

/// Why the `[[users]]` cannot be used, or a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The entry's `password_hash` is not an argon2 PHC string.
    #[error("users: the password_hash of {username:?} is not an argon2 PHC string")]
    NotArgon2 { username: String },
    /// argon2 refused to hash (it does not, with its default parameters).
    #[error("hashing the password failed")]
    Hash(#[source] argon2::password_hash::Error),
}

/// Why `generate-keypair` wrote no key pair.
#[derive(Debug, thiserror::Error)]
pub enum KeyPairError {
    /// The algorithm signs with a shared secret.
    #[error("{0} has no key pairs (generate-secret makes an HS256 key)")]
    NotAsymmetric(claims::Algorithm),
    /// The generated key did not read back (a bug).
    #[error(transparent)]
    Key(#[from] claims::KeyError),
    /// The file exists already, or its directory cannot be written.
    #[error("cannot create {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was created but could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The users and their password hashes, checked once at start.
pub struct UserDirectory {
    hashes: HashMap<String, String>,
    /// Each user's room patterns (users without any have no entry).
    rooms: HashMap<String, Vec<String>>,
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
    pub fn from_settings(users: &[UserEntry]) -> Result<Self, UserError> {
        let mut hashes = HashMap::with_capacity(users.len());
        let mut rooms = HashMap::new();
        for user in users {
            let is_argon2 = PasswordHash::new(&user.password_hash)
                .is_ok_and(|hash| hash.algorithm.as_str().starts_with("argon2"));
            if !is_argon2 {
                return Err(UserError::NotArgon2 {
                    username: user.username.clone(),
                });
            }
            hashes.insert(user.username.clone(), user.password_hash.clone());
            if !user.rooms.is_empty() {
                rooms.insert(user.username.clone(), user.rooms.clone());
            }
        }
        let dummy_hash = hash_password(SaltString::generate(&mut OsRng).as_ref())?;
        Ok(Self {
            hashes,
            rooms,
            dummy_hash,
        })
    }

    /// The room patterns `username`'s tokens carry (none for most users).
    pub fn rooms_of(&self, username: &str) -> &[String] {
        self.rooms.get(username).map_or(&[], Vec::as_slice)
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
pub fn hash_password(password: &str) -> Result<String, UserError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(UserError::Hash)
}

/// A random 256-bit key, hex-encoded (64 characters), for `APP_JWT__SECRET`.
pub fn generate_secret() -> String {
    use argon2::password_hash::rand_core::RngCore as _;
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Writes a new key pair for `algorithm` to `PREFIX.key.pem` (the private
/// key, created with mode 0600) and `PREFIX.pub.pem`, refusing to overwrite
/// either; returns a line naming both files and the `kid`.
pub fn generate_keypair(
    algorithm: claims::Algorithm,
    prefix: &Path,
) -> Result<String, KeyPairError> {
    use argon2::password_hash::rand_core::RngCore as _;
    let (private, public) = loop {
        let mut seed = [0u8; 32];
        OsRng.fill_bytes(&mut seed);
        // A P-256 seed is out of range about once in 2^32 draws: draw again.
        if let Some(pair) = claims::PrivateKey::generate_pem(algorithm, &seed) {
            break pair;
        }
        if !algorithm.is_asymmetric() {
            return Err(KeyPairError::NotAsymmetric(algorithm));
        }
    };
    let kid = claims::PublicKey::from_pem(algorithm, public.as_bytes())?
        .kid()
        .to_owned();
    let with_suffix = |suffix: &str| {
        let mut name = prefix.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let (private_path, public_path) = (with_suffix(".key.pem"), with_suffix(".pub.pem"));
    write_new(&private_path, private.as_bytes(), 0o600)?;
    write_new(&public_path, public.as_bytes(), 0o644)?;
    Ok(format!(
        "{algorithm} key pair: {} (private, jwt.private_key_file) and {} (public, jwt.public_key_files); kid {kid}",
        private_path.display(),
        public_path.display()
    ))
}

/// Creates `path` with `mode` (never replacing a file) and writes `bytes`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyPairError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|source| KeyPairError::Create {
        path: path.to_owned(),
        source,
    })?;
    file.write_all(bytes).map_err(|source| KeyPairError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_pair_is_written_once_and_reads_back() {
        let dir = std::env::temp_dir().join(format!("authbridge-keypair-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        for algorithm in [claims::Algorithm::EdDSA, claims::Algorithm::ES256] {
            let prefix = dir.join(algorithm.as_str());
            let line = generate_keypair(algorithm, &prefix).expect("written");
            let private = std::fs::read(dir.join(format!("{algorithm}.key.pem"))).expect("private");
            let public = std::fs::read(dir.join(format!("{algorithm}.pub.pem"))).expect("public");
            let private = claims::PrivateKey::from_pem(algorithm, &private).expect("reads");
            assert_eq!(
                private.public(),
                &claims::PublicKey::from_pem(algorithm, &public).expect("reads")
            );
            assert!(
                line.ends_with(&format!("kid {}", private.public().kid())),
                "{line}"
            );
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = std::fs::metadata(dir.join(format!("{algorithm}.key.pem")))
                    .expect("metadata")
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600);
            }
            let again = generate_keypair(algorithm, &prefix).expect_err("never overwrites");
            assert!(again.to_string().contains("cannot create"), "{again}");
        }
        assert!(generate_keypair(claims::Algorithm::HS256, &dir.join("hs")).is_err());
        std::fs::remove_dir_all(&dir).expect("cleaned up");
    }

    fn directory() -> UserDirectory {
        let entry = UserEntry {
            username: "alice".into(),
            password_hash: hash_password("wonderland").expect("hash"),
            rooms: Vec::new(),
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
            rooms: Vec::new(),
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

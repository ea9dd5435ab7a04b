//! The keys a configuration names, built as the services build them: key
//! files read, with errors naming the key and the file, never the content.

#![allow(
    clippy::result_large_err,
    reason = "figment::Jail closures return figment::Error, whose size is figment's choice"
)]

use claims::{Algorithm, KeySet, SigningKey};
use figment::Jail;
use service::keys::{public_keys, shared_key_set, signing_key};
use settings::{ConfigError, Settings};

const SECRET: &str = "a-shared-key-of-at-least-32-bytes!!";
const OTHER_SECRET: &str = "another-shared-key-of-32-bytes-or-more";

fn load(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    Settings::load_from(
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
    )
}

#[test]
fn a_previous_secret_is_accepted_until_its_end_and_the_kid_announced() {
    Jail::expect_with(|_| {
        let rotating = [
            ("APP_JWT__SECRET", SECRET),
            ("APP_JWT__PREVIOUS_SECRET", OTHER_SECRET),
            (
                "APP_JWT__PREVIOUS_SECRET_VALID_UNTIL",
                "2026-12-01T00:00:00Z",
            ),
        ];
        let settings = load(&rotating).expect("loads");
        let KeySet::Shared { previous, .. } = shared_key_set(&settings).expect("keys") else {
            panic!("a shared key set");
        };
        assert_eq!(previous.expect("a previous key").1, 1_796_083_200);
        assert!(matches!(
            signing_key(&settings).expect("a key"),
            SigningKey::Shared {
                announce_kid: true,
                ..
            }
        ));
        Ok(())
    });
}

#[test]
fn key_files_are_read_when_a_service_needs_them_with_errors_naming_the_file() {
    Jail::expect_with(|jail| {
        let settings = load(&[("APP_JWT__ALGORITHM", "ES256")]).expect("loads");
        assert_eq!(
            signing_key(&settings).expect_err("no key").to_string(),
            "missing APP_JWT__PRIVATE_KEY_FILE: jwt.algorithm = ES256 signs with a PEM private key (jwt.private_key_file; web-frontend generate-keypair makes one)"
        );
        let (private, public) =
            claims::PrivateKey::generate_pem(Algorithm::ES256, &[9; 32]).expect("a pair");
        jail.create_file("k.key.pem", &private)?;
        jail.create_file("k.pub.pem", &public)?;
        jail.create_file(
            "garbage.pem",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )?;
        let settings = load(&[
            ("APP_JWT__ALGORITHM", "ES256"),
            ("APP_JWT__PRIVATE_KEY_FILE", "k.key.pem"),
            ("APP_JWT__PUBLIC_KEY_FILES", r#"["k.pub.pem", "k.pub.pem"]"#),
        ])
        .expect("loads");
        let SigningKey::Private(key) = signing_key(&settings).expect("a key") else {
            panic!("a private key");
        };
        assert_eq!(
            public_keys(&settings).expect("keys"),
            vec![key.public().clone()],
            "deduplicated"
        );

        let bad = load(&[
            ("APP_JWT__ALGORITHM", "EdDSA"),
            ("APP_JWT__PRIVATE_KEY_FILE", "k.key.pem"),
            (
                "APP_JWT__PUBLIC_KEY_FILES",
                r#"["garbage.pem", "missing.pem"]"#,
            ),
        ])
        .expect("loads");
        let message = signing_key(&bad)
            .expect_err("a P-256 key is no Ed25519 key")
            .to_string();
        assert_eq!(
            message,
            "jwt.private_key_file: k.key.pem: not a PEM private key for EdDSA (-----BEGIN PRIVATE KEY-----, Ed25519)"
        );
        assert!(!message.contains("MIG"), "never the key");
        let message = public_keys(&bad).expect_err("garbage").to_string();
        assert!(
            message.starts_with("jwt.public_key_files: garbage.pem: not a PEM public key"),
            "{message}"
        );
        Ok(())
    });
}

#[test]
fn a_service_that_needs_the_shared_key_and_lacks_it_is_refused_naming_the_variable() {
    Jail::expect_with(|_| {
        let settings = load(&[]).expect("loads: the key is checked where it is needed");
        for error in [
            signing_key(&settings).expect_err("no key to sign with"),
            shared_key_set(&settings).expect_err("no key to verify with"),
        ] {
            assert_eq!(
                error.to_string(),
                "missing APP_JWT__SECRET: the HS256 shared key (jwt.secret) is required"
            );
        }
        Ok(())
    });
}

//! The loader, each layer and each refusal, in a `figment::Jail` (its own
//! working directory; environment variables are passed in, not set).

#![allow(
    clippy::result_large_err,
    reason = "figment::Jail closures return figment::Error, whose size is figment's choice"
)]

use figment::providers::Format;
use figment::{Figment, Jail};
use secrecy::ExposeSecret;

use claims::Algorithm;

use super::*;
use crate::schema::DEMO_PASSWORD_HASH;

const SECRET: &str = "a-shared-key-of-at-least-32-bytes!!";

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let settings: Settings = figment(vars(pairs))?
        .extract()
        .map_err(ConfigError::from_figment)?;
    settings.finish()
}

fn error(pairs: &[(&str, &str)]) -> String {
    load(pairs).expect_err("must be refused").to_string()
}

#[test]
fn built_in_defaults_match_the_contract() {
    Jail::expect_with(|_| {
        let settings = load(&[]).expect("defaults load");
        assert!(settings.jwt.secret.is_none());
        assert_eq!(settings.jwt.issuer, "web-frontend");
        assert_eq!(settings.jwt.audience, "socket-server");
        assert_eq!(settings.jwt.ttl_secs, 300);
        assert_eq!(settings.jwt.leeway_secs, 5);
        assert_eq!(settings.web.addr, "127.0.0.1:8080");
        assert_eq!(settings.web.socket_url, "http://127.0.0.1:3000");
        assert_eq!(settings.socket.addr, "127.0.0.1:3000");
        assert_eq!(
            settings.socket.allowed_origins,
            ["http://127.0.0.1:8080", "http://localhost:8080"]
        );
        assert_eq!(settings.env, Environment::Development);
        assert!(settings.users.is_empty());
        Ok(())
    });
}

#[test]
fn layers_apply_in_order_defaults_file_app_config_env() {
    Jail::expect_with(|jail| {
        jail.create_dir("config")?;
        jail.create_file(
            DEFAULT_FILE,
            r#"
            [jwt]
            ttl_secs = 100
            issuer = "from-default-file"
            [[users]]
            username = "gonzalo"
            password_hash = "$argon2id$x"
            "#,
        )?;
        jail.create_file(
            "local.toml",
            r#"
            [jwt]
            ttl_secs = 200
            [[users]]
            username = "alice"
            password_hash = "$argon2id$y"
            "#,
        )?;
        let settings =
            load(&[("APP_CONFIG", "local.toml"), ("APP_JWT__TTL_SECS", "60")]).expect("loads");
        assert_eq!(settings.jwt.ttl_secs, 60, "env wins");
        assert_eq!(settings.jwt.issuer, "from-default-file");
        let names: Vec<&str> = settings.users.iter().map(|u| u.username.as_str()).collect();
        assert_eq!(
            names,
            ["alice"],
            "a later users list replaces the earlier one"
        );
        Ok(())
    });
}

#[test]
fn the_project_default_file_holds_the_demo_user_as_an_argon2_hash() {
    let text = include_str!("../../../config/default.toml");
    let settings: Settings = Figment::from(figment::providers::Toml::string(text))
        .extract()
        .expect("parses");
    let demo = settings
        .users
        .iter()
        .find(|u| u.username == DEMO_USERNAME)
        .expect("demo user");
    assert!(demo.password_hash.starts_with("$argon2id$"));
    assert!(!text.contains("password = "), "never the plain password");
}

#[test]
fn env_strings_are_kept_verbatim() {
    Jail::expect_with(|_| {
        let digits = "01234567890123456789012345678901234567890123456789";
        let settings =
            load(&[("APP_JWT__SECRET", digits), ("APP_JWT__ISSUER", "007")]).expect("loads");
        assert_eq!(settings.jwt.secret.expect("secret").expose_secret(), digits);
        assert_eq!(settings.jwt.issuer, "007");
        Ok(())
    });
}

#[test]
fn env_lists_are_written_as_arrays() {
    Jail::expect_with(|_| {
        let settings = load(&[(
            "APP_SOCKET__ALLOWED_ORIGINS",
            r#"["https://a.example", "https://b.example"]"#,
        )])
        .expect("loads");
        assert_eq!(
            settings.socket.allowed_origins,
            ["https://a.example", "https://b.example"]
        );
        Ok(())
    });
}

#[test]
fn an_unknown_env_variable_is_refused_by_name() {
    Jail::expect_with(|_| {
        assert_eq!(
            error(&[("APP_JWT__SECRETS", "x")]),
            "APP_JWT__SECRETS: unknown configuration key"
        );
        assert_eq!(
            error(&[("APP_WEBB__ADDR", "x")]),
            "APP_WEBB: unknown configuration key"
        );
        Ok(())
    });
}

#[test]
fn an_unknown_file_key_is_refused_with_its_file() {
    Jail::expect_with(|jail| {
        jail.create_file("local.toml", "[web]\nport = 1\n")?;
        let message = error(&[("APP_CONFIG", "local.toml")]);
        assert!(message.starts_with("web.port in "), "{message}");
        assert!(message.contains("local.toml"), "{message}");
        assert!(message.ends_with("unknown configuration key"), "{message}");
        Ok(())
    });
}

#[test]
fn a_malformed_value_is_refused_by_name() {
    Jail::expect_with(|_| {
        let message = error(&[("APP_JWT__TTL_SECS", "soon")]);
        assert!(
            message.starts_with("APP_JWT__TTL_SECS: malformed value"),
            "{message}"
        );
        let message = error(&[("APP_JWT__TTL_SECS", "-1")]);
        assert!(
            message.starts_with("APP_JWT__TTL_SECS: malformed value"),
            "{message}"
        );
        assert!(error(&[("APP_WEB__ADDR", "nowhere")]).starts_with("web.addr: "));
        assert!(error(&[("APP_WEB__SOCKET_URL", "ftp://x")]).starts_with("web.socket_url: "));
        assert!(error(&[("APP_JWT__TTL_SECS", "0")]).starts_with("jwt.ttl_secs: "));
        assert!(error(&[("APP_ENV", "staging")]).starts_with("APP_ENV: "));
        Ok(())
    });
}

#[test]
fn a_short_secret_is_refused_without_showing_it() {
    Jail::expect_with(|_| {
        let message = error(&[("APP_JWT__SECRET", "short-secret-value")]);
        assert_eq!(
            message,
            "APP_JWT__SECRET (jwt.secret) must be at least 32 bytes, it has 18"
        );
        assert!(!message.contains("short-secret-value"));
        Ok(())
    });
}

#[test]
fn a_missing_secret_is_refused_when_a_service_needs_it() {
    Jail::expect_with(|_| {
        // Loading passes without one (a key pair needs none); a service that
        // needs it refuses with this line (`service::keys` builds the key).
        let settings = load(&[]).expect("loads");
        assert!(settings.jwt.secret.is_none());
        let message = ConfigError::MissingSecret.to_string();
        assert_eq!(
            message,
            "missing APP_JWT__SECRET: the HS256 shared key (jwt.secret) is required"
        );
        let settings = load(&[("APP_JWT__SECRET", SECRET)]).expect("loads");
        assert_eq!(
            settings
                .jwt
                .secret
                .as_ref()
                .expect("has one")
                .expose_secret(),
            SECRET
        );
        Ok(())
    });
}

#[test]
fn a_missing_app_config_file_is_refused() {
    Jail::expect_with(|_| {
        assert!(
            error(&[("APP_CONFIG", "nope.toml")]).starts_with("APP_CONFIG names \"nope.toml\"")
        );
        Ok(())
    });
}

#[test]
fn a_broken_toml_file_is_refused_with_its_name() {
    Jail::expect_with(|jail| {
        jail.create_file("local.toml", "[jwt\nttl_secs = 1")?;
        let message = error(&[("APP_CONFIG", "local.toml")]);
        assert!(message.contains("local.toml"), "{message}");
        assert!(!message.contains('\n'), "one line: {message}");
        Ok(())
    });
}

#[test]
fn a_redis_url_turns_scale_out_on_and_is_never_echoed() {
    Jail::expect_with(|_| {
        let settings = load(&[("APP_REDIS__URL", "redis://:hunter2-secret@10.0.0.5:6380/2")])
            .expect("a plain redis URL loads");
        assert_eq!(
            settings.redis.display_host().as_deref(),
            Some("10.0.0.5:6380")
        );
        assert!(
            load(&[]).expect("defaults").redis.url.is_none(),
            "embedded by default"
        );
        for bad in [
            "http://127.0.0.1:6379",
            "redis://",
            "redis://127.0.0.1:6379/zero",
            "redis://127.0.0.1:6379/0?protocol=resp3",
            "rediss://:hunter2-secret@host",
        ] {
            let message = error(&[("APP_REDIS__URL", bad)]);
            assert!(message.starts_with("redis.url: "), "{bad}: {message}");
            assert!(
                !message.contains("hunter2"),
                "the password leaked: {message}"
            );
            assert!(!message.contains('\n'), "one line: {message}");
        }
        Ok(())
    });
}

#[test]
fn production_refuses_the_demo_user_and_plain_http() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "users.toml",
            "[[users]]\nusername = \"gonzalo\"\npassword_hash = \"$argon2id$x\"\n",
        )?;
        let https = ("APP_WEB__SOCKET_URL", "https://socket.example");
        assert!(
            error(&[
                ("APP_ENV", "production"),
                ("APP_CONFIG", "users.toml"),
                https
            ])
            .starts_with("users: ")
        );
        assert!(error(&[("APP_ENV", "production")]).starts_with("web.socket_url: "));
        assert!(load(&[("APP_ENV", "production"), https]).is_ok());
        Ok(())
    });
}

#[test]
fn duplicate_usernames_are_refused() {
    Jail::expect_with(|jail| {
        let entry = "[[users]]\nusername = \"a\"\npassword_hash = \"$argon2id$x\"\n";
        jail.create_file("users.toml", &format!("{entry}{entry}"))?;
        assert!(error(&[("APP_CONFIG", "users.toml")]).starts_with("users: "));
        Ok(())
    });
}

#[test]
fn cookies_are_secure_when_the_deployment_is_https() {
    Jail::expect_with(|_| {
        assert!(!load(&[]).expect("loads").served_over_https());
        assert!(
            load(&[("APP_WEB__SOCKET_URL", "https://s.example")])
                .expect("loads")
                .served_over_https()
        );
        Ok(())
    });
}

#[test]
fn a_secret_of_the_wrong_type_is_refused_without_showing_it() {
    Jail::expect_with(|jail| {
        jail.create_file("local.toml", "[jwt]\nsecret = 123456789012345678\n")?;
        let message = error(&[("APP_CONFIG", "local.toml")]);
        assert!(message.starts_with("jwt.secret in "), "{message}");
        assert!(!message.contains("123456789012345678"), "{message}");
        Ok(())
    });
}

#[test]
fn a_password_hash_that_is_not_argon2_is_refused_by_both_services() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "users.toml",
            "[[users]]\nusername = \"a\"\npassword_hash = \"plain\"\n",
        )?;
        let message = error(&[("APP_CONFIG", "users.toml")]);
        assert_eq!(
            message,
            "users: the password_hash of \"a\" is not an argon2 PHC string"
        );
        Ok(())
    });
}

#[test]
fn the_log_format_is_text_or_json() {
    Jail::expect_with(|_| {
        assert_eq!(load(&[]).expect("loads").log.format, LogFormat::Text);
        assert_eq!(
            load(&[("APP_LOG__FORMAT", "json")])
                .expect("loads")
                .log
                .format,
            LogFormat::Json
        );
        assert!(error(&[("APP_LOG__FORMAT", "xml")]).starts_with("APP_LOG__FORMAT: "));
        Ok(())
    });
}

#[test]
fn the_key_can_come_from_a_file_without_its_trailing_newline() {
    Jail::expect_with(|jail| {
        jail.create_file("key", &format!("{SECRET}\n"))?;
        let settings = load(&[("APP_JWT__SECRET_FILE", "key")]).expect("loads");
        assert_eq!(
            settings
                .jwt
                .secret
                .as_ref()
                .map(ExposeSecret::expose_secret),
            Some(SECRET)
        );
        jail.create_file("crlf", &format!("{SECRET}\r\n"))?;
        let settings = load(&[("APP_JWT__SECRET_FILE", "crlf")]).expect("loads");
        assert_eq!(
            settings
                .jwt
                .secret
                .as_ref()
                .map(ExposeSecret::expose_secret),
            Some(SECRET)
        );
        jail.create_file("local.toml", "[jwt]\nsecret_file = \"key\"\n")?;
        assert!(
            load(&[("APP_CONFIG", "local.toml")]).is_ok(),
            "from a file too"
        );
        Ok(())
    });
}

#[test]
fn a_key_file_is_refused_when_missing_short_or_beside_a_secret() {
    Jail::expect_with(|jail| {
        let missing = error(&[("APP_JWT__SECRET_FILE", "nope")]);
        assert!(
            missing.starts_with("jwt.secret_file: cannot read nope"),
            "{missing}"
        );
        jail.create_file("short", "too-short\n")?;
        let short = error(&[("APP_JWT__SECRET_FILE", "short")]);
        assert!(short.starts_with("jwt.secret_file: "), "{short}");
        assert!(!short.contains("too-short"), "the key leaked: {short}");
        jail.create_file("key", SECRET)?;
        let both = error(&[("APP_JWT__SECRET_FILE", "key"), ("APP_JWT__SECRET", SECRET)]);
        assert!(both.starts_with("jwt.secret_file: "), "{both}");
        for message in [missing, short, both] {
            assert!(!message.contains('\n'), "one line: {message}");
            assert!(!message.contains(SECRET), "the key leaked: {message}");
        }
        Ok(())
    });
}

#[test]
fn published_example_keys_are_refused() {
    Jail::expect_with(|jail| {
        for key in [
            "replace-me-with-64-hex-characters-from-openssl-rand-hex-32",
            "my_super_secret_key_my_super_secret_key",
        ] {
            let message = error(&[("APP_JWT__SECRET", key)]);
            assert!(message.contains("example"), "{key}: {message}");
            assert!(!message.contains(key), "the key leaked: {message}");
            jail.create_file("example", key)?;
            let message = error(&[("APP_JWT__SECRET_FILE", "example")]);
            assert!(message.contains("example"), "{key} in a file: {message}");
            assert!(
                message.starts_with("jwt.secret_file: "),
                "names the file's key: {message}"
            );
        }
        // The article's own key is short as well.
        assert!(error(&[("APP_JWT__SECRET", "my_super_secret_key")]).contains("at least 32 bytes"));
        Ok(())
    });
}

#[test]
fn a_key_of_few_distinct_characters_is_refused() {
    Jail::expect_with(|jail| {
        let spaces = " ".repeat(40);
        let message = error(&[("APP_JWT__SECRET", &spaces)]);
        assert!(message.starts_with("APP_JWT__SECRET"), "{message}");
        assert!(message.contains("distinct"), "{message}");
        jail.create_file("weak", &"ab".repeat(20))?;
        assert!(error(&[("APP_JWT__SECRET_FILE", "weak")]).starts_with("jwt.secret_file: "));
        Ok(())
    });
}

#[test]
fn production_refuses_the_demo_password_hash_under_any_name() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "prod.toml",
            &format!(
                "env = \"production\"\n[web]\nsocket_url = \"https://socket.example.com\"\n[[users]]\nusername = \"admin\"\npassword_hash = \"{DEMO_PASSWORD_HASH}\"\n"
            ),
        )?;
        let message = error(&[("APP_CONFIG", "prod.toml"), ("APP_JWT__SECRET", SECRET)]);
        assert!(message.starts_with("users: "), "{message}");
        assert!(message.contains("admin"), "{message}");
        Ok(())
    });
}

const OTHER_SECRET: &str = "another-shared-key-of-32-bytes-or-more";

#[test]
fn the_algorithm_is_hs256_unless_configured_and_unknown_ones_are_refused() {
    Jail::expect_with(|_| {
        assert_eq!(load(&[]).expect("loads").jwt.algorithm, Algorithm::HS256);
        for (value, algorithm) in [
            ("HS256", Algorithm::HS256),
            ("EdDSA", Algorithm::EdDSA),
            ("ES256", Algorithm::ES256),
        ] {
            let settings = load(&[("APP_JWT__ALGORITHM", value)]).expect("loads");
            assert_eq!(settings.jwt.algorithm, algorithm);
        }
        for value in ["RS256", "none", "hs256", "HS512"] {
            let message = error(&[("APP_JWT__ALGORITHM", value)]);
            assert!(message.starts_with("APP_JWT__ALGORITHM: "), "{message}");
        }
        Ok(())
    });
}

#[test]
fn keys_of_the_other_kind_are_refused_for_the_algorithm() {
    Jail::expect_with(|_| {
        for (name, value) in [
            ("APP_JWT__PRIVATE_KEY_FILE", "k.pem"),
            ("APP_JWT__PUBLIC_KEY_FILES", r#"["k.pub.pem"]"#),
            ("APP_JWT__JWKS_URL", "http://web:8080/.well-known/jwks.json"),
        ] {
            let message = error(&[(name, value)]);
            assert!(
                message.contains("needs jwt.algorithm = EdDSA or ES256"),
                "{name}: {message}"
            );
        }
        let message = error(&[("APP_JWT__ALGORITHM", "EdDSA"), ("APP_JWT__SECRET", SECRET)]);
        assert!(
            message
                .starts_with("jwt.secret: a shared secret is not used with jwt.algorithm = EdDSA"),
            "{message}"
        );
        assert!(!message.contains(SECRET));
        Ok(())
    });
}

#[test]
fn a_previous_secret_needs_its_end_and_the_rules_of_a_key() {
    Jail::expect_with(|_| {
        let rotating = [
            ("APP_JWT__SECRET", SECRET),
            ("APP_JWT__PREVIOUS_SECRET", OTHER_SECRET),
            (
                "APP_JWT__PREVIOUS_SECRET_VALID_UNTIL",
                "2026-12-01T00:00:00Z",
            ),
        ];
        load(&rotating).expect("loads");
        let message = error(&rotating[..2]);
        assert!(
            message.starts_with("jwt.previous_secret_valid_until: is required"),
            "{message}"
        );
        let message = error(&[rotating[0], rotating[2]]);
        assert!(
            message.starts_with("jwt.previous_secret_valid_until: needs jwt.previous_secret"),
            "{message}"
        );
        for bad in [
            "tomorrow",
            "2026-12-01",
            "1796083200",
            "2026-13-01T00:00:00Z",
        ] {
            let message = error(&[
                rotating[0],
                rotating[1],
                ("APP_JWT__PREVIOUS_SECRET_VALID_UNTIL", bad),
            ]);
            assert!(
                message.starts_with("jwt.previous_secret_valid_until: ")
                    && message.contains("RFC 3339"),
                "{bad}: {message}"
            );
        }
        let message = error(&[
            rotating[0],
            ("APP_JWT__PREVIOUS_SECRET", "short"),
            rotating[2],
        ]);
        assert_eq!(
            message,
            "jwt.previous_secret: must be at least 32 bytes, it has 5"
        );
        let message = error(&[
            rotating[0],
            ("APP_JWT__PREVIOUS_SECRET", SECRET),
            rotating[2],
        ]);
        assert_eq!(
            message,
            "jwt.previous_secret: is the same key as jwt.secret"
        );
        let message = error(&[
            rotating[0],
            (
                "APP_JWT__PREVIOUS_SECRET",
                "my_super_secret_key_my_super_secret_key",
            ),
            rotating[2],
        ]);
        assert!(
            message.starts_with("jwt.previous_secret: is a key published"),
            "{message}"
        );
        Ok(())
    });
}

#[test]
fn a_previous_secret_can_come_from_a_file() {
    Jail::expect_with(|jail| {
        jail.create_file("old-key", &format!("{OTHER_SECRET}\n"))?;
        let settings = load(&[
            ("APP_JWT__SECRET", SECRET),
            ("APP_JWT__PREVIOUS_SECRET_FILE", "old-key"),
            (
                "APP_JWT__PREVIOUS_SECRET_VALID_UNTIL",
                "2026-12-01T01:00:00+01:00",
            ),
        ])
        .expect("loads");
        assert_eq!(
            settings
                .jwt
                .previous_secret
                .as_ref()
                .map(ExposeSecret::expose_secret),
            Some(OTHER_SECRET)
        );
        let both = error(&[
            ("APP_JWT__SECRET", SECRET),
            ("APP_JWT__PREVIOUS_SECRET", OTHER_SECRET),
            ("APP_JWT__PREVIOUS_SECRET_FILE", "old-key"),
            (
                "APP_JWT__PREVIOUS_SECRET_VALID_UNTIL",
                "2026-12-01T00:00:00Z",
            ),
        ]);
        assert!(
            both.starts_with(
                "jwt.previous_secret_file: set jwt.previous_secret (APP_JWT__PREVIOUS_SECRET) or"
            ),
            "{both}"
        );
        jail.create_file("weak-key", "0123456789abcdef0123456789abcdef\n")?;
        let weak = error(&[
            ("APP_JWT__SECRET", SECRET),
            ("APP_JWT__PREVIOUS_SECRET_FILE", "weak-key"),
            (
                "APP_JWT__PREVIOUS_SECRET_VALID_UNTIL",
                "2026-12-01T00:00:00Z",
            ),
        ]);
        assert!(
            weak.starts_with("jwt.previous_secret_file: the key in weak-key"),
            "{weak}"
        );
        Ok(())
    });
}

#[test]
fn a_jwks_url_is_an_http_url_and_https_in_production() {
    Jail::expect_with(|_| {
        let message = error(&[
            ("APP_JWT__ALGORITHM", "EdDSA"),
            ("APP_JWT__JWKS_URL", "web:8080/keys"),
        ]);
        assert!(message.starts_with("jwt.jwks_url: "), "{message}");
        let message = error(&[
            ("APP_ENV", "production"),
            ("APP_USERS", "[]"),
            ("APP_WEB__SOCKET_URL", "https://socket.example"),
            ("APP_JWT__ALGORITHM", "EdDSA"),
            ("APP_JWT__JWKS_URL", "http://web:8080/.well-known/jwks.json"),
        ]);
        assert!(
            message.starts_with("jwt.jwks_url: must be https://"),
            "{message}"
        );
        let message = error(&[
            ("APP_JWT__ALGORITHM", "EdDSA"),
            ("APP_JWT__JWKS_URL", "http://web:8080/.well-known/jwks.json"),
            ("APP_JWT__JWKS_REFRESH_SECS", "0"),
        ]);
        assert!(message.starts_with("jwt.jwks_refresh_secs: "), "{message}");
        Ok(())
    });
}

#[test]
fn a_session_secret_meets_the_rules_of_a_key_without_being_shown() {
    Jail::expect_with(|_| {
        let message = error(&[("APP_WEB__SESSION_SECRET", "short-session-key")]);
        assert_eq!(
            message,
            "web.session_secret: must be at least 32 bytes, it has 17"
        );
        let message = error(&[(
            "APP_WEB__SESSION_SECRET",
            "00000000000000000000000000000000",
        )]);
        assert!(message.starts_with("web.session_secret: "), "{message}");
        assert!(!message.contains("0000000000"));
        load(&[("APP_WEB__SESSION_SECRET", OTHER_SECRET)]).expect("a good one loads");
        Ok(())
    });
}

const API_KEY: &str = "an-api-key-of-at-least-32-bytes-long!";

#[test]
fn the_api_key_is_off_by_default_and_follows_the_rules_of_a_key() {
    Jail::expect_with(|jail| {
        assert!(load(&[]).expect("defaults").api.key.is_none());
        let settings = load(&[("APP_API__KEY", API_KEY)]).expect("loads");
        assert_eq!(
            settings.api.key.as_ref().map(ExposeSecret::expose_secret),
            Some(API_KEY)
        );
        assert_eq!(
            error(&[("APP_API__KEY", "short")]),
            "api.key: must be at least 32 bytes, it has 5"
        );
        let weak = error(&[("APP_API__KEY", "0123456789abcdef0123456789abcdef")]);
        assert!(weak.starts_with("api.key: is a key published"), "{weak}");
        // A key of its own: the token key would let an API client mint tokens.
        let same = error(&[("APP_JWT__SECRET", SECRET), ("APP_API__KEY", SECRET)]);
        assert_eq!(
            same,
            "api.key: is the same key as jwt.secret: the API needs a key of its own"
        );
        assert!(!same.contains(SECRET));

        jail.create_file("api-key", &format!("{API_KEY}\n"))?;
        let settings = load(&[("APP_API__KEY_FILE", "api-key")]).expect("loads");
        assert_eq!(
            settings.api.key.as_ref().map(ExposeSecret::expose_secret),
            Some(API_KEY)
        );
        let both = error(&[("APP_API__KEY", API_KEY), ("APP_API__KEY_FILE", "api-key")]);
        assert!(
            both.starts_with("api.key_file: set api.key (APP_API__KEY) or api.key_file"),
            "{both}"
        );
        jail.create_file("short-key", "short\n")?;
        let short = error(&[("APP_API__KEY_FILE", "short-key")]);
        assert!(
            short.starts_with("api.key_file: the key in short-key"),
            "{short}"
        );
        // A malformed value never echoes the key.
        jail.create_file("api.toml", "[api]\nkey = 424242\n")?;
        let malformed = error(&[("APP_CONFIG", "api.toml")]);
        assert_eq!(
            malformed,
            "api.key in api.toml: malformed value: expected a string"
        );
        Ok(())
    });
}

#[test]
fn room_patterns_and_the_rooms_cap_are_checked() {
    Jail::expect_with(|jail| {
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
        let users = |rooms: &str| {
            format!("[[users]]\nusername = \"ana\"\npassword_hash = \"{hash}\"\nrooms = {rooms}\n")
        };
        jail.create_file("good.toml", &users(r#"["team:42", "org:7:*", "*"]"#))?;
        let settings = load(&[("APP_CONFIG", "good.toml")]).expect("loads");
        assert_eq!(settings.users[0].rooms, ["team:42", "org:7:*", "*"]);
        assert_eq!(settings.socket.max_rooms_per_socket, 100);
        for (rooms, why) in [
            (r#"[""]"#, "must have 1 to 100 characters"),
            (r#"["a*b"]"#, "may have a `*` at its end only"),
            (r#"["user:ana"]"#, "names a reserved room"),
            (r#"["session:*"]"#, "names a reserved room"),
        ] {
            jail.create_file("bad.toml", &users(rooms))?;
            let message = error(&[("APP_CONFIG", "bad.toml")]);
            assert!(
                message.starts_with("users: the room pattern"),
                "{rooms}: {message}"
            );
            assert!(message.contains(why), "{rooms}: {message}");
        }
        let long = format!("[\"{}\"]", "x".repeat(101));
        jail.create_file("long.toml", &users(&long))?;
        assert!(error(&[("APP_CONFIG", "long.toml")]).contains("1 to 100 characters"));
        assert_eq!(
            error(&[("APP_SOCKET__MAX_ROOMS_PER_SOCKET", "0")]),
            "socket.max_rooms_per_socket: must be at least 1"
        );
        let settings = load(&[("APP_SOCKET__MAX_ROOMS_PER_SOCKET", "3")]).expect("loads");
        assert_eq!(settings.socket.max_rooms_per_socket, 3);
        Ok(())
    });
}

const HOOK_SECRET: &str = "a-webhook-signing-key-of-32-bytes-at-least";

#[test]
fn webhooks_need_a_url_and_a_key_of_their_own() {
    Jail::expect_with(|_| {
        let settings = load(&[]).expect("defaults");
        assert!(settings.webhooks.url.is_none());
        assert_eq!(settings.webhooks.offline_grace_secs, 5);
        let url = ("APP_WEBHOOKS__URL", "http://127.0.0.1:9000/hooks");
        let settings = load(&[url, ("APP_WEBHOOKS__SECRET", HOOK_SECRET)]).expect("loads");
        assert_eq!(
            settings.webhooks.url.as_deref(),
            Some("http://127.0.0.1:9000/hooks")
        );
        assert!(error(&[url]).starts_with("webhooks.secret: is required with webhooks.url"));
        assert_eq!(
            error(&[url, ("APP_WEBHOOKS__SECRET", "short")]),
            "webhooks.secret: must be at least 32 bytes, it has 5"
        );
        let same = error(&[
            url,
            ("APP_WEBHOOKS__SECRET", SECRET),
            ("APP_JWT__SECRET", SECRET),
        ]);
        assert!(
            same.starts_with("webhooks.secret: is the same key as jwt.secret"),
            "{same}"
        );
        assert!(!same.contains(SECRET));
        assert!(
            error(&[
                ("APP_WEBHOOKS__URL", "ftp://x"),
                ("APP_WEBHOOKS__SECRET", HOOK_SECRET)
            ])
            .starts_with("webhooks.url: ")
        );
        assert_eq!(
            error(&[("APP_WEBHOOKS__OFFLINE_GRACE_SECS", "3601")]),
            "webhooks.offline_grace_secs: must be at most 3600"
        );
        Ok(())
    });
}

#[test]
fn production_webhooks_are_https() {
    Jail::expect_with(|_| {
        let production = [
            ("APP_ENV", "production"),
            ("APP_WEB__SOCKET_URL", "https://socket.example"),
            ("APP_WEBHOOKS__URL", "http://app.example/hooks"),
            ("APP_WEBHOOKS__SECRET", HOOK_SECRET),
        ];
        let message = error(&production);
        assert!(
            message.starts_with("webhooks.url: must be https:// when env = production"),
            "{message}"
        );
        Ok(())
    });
}

#[test]
fn recovery_is_on_for_two_minutes_by_default_and_bounded() {
    Jail::expect_with(|_| {
        let settings = load(&[]).expect("defaults");
        assert_eq!(settings.socket.recovery_secs, 120);
        assert_eq!(settings.socket.recovery_max_events, 1000);
        let off = load(&[("APP_SOCKET__RECOVERY_SECS", "0")]).expect("0 turns it off");
        assert_eq!(off.socket.recovery_secs, 0);
        assert_eq!(
            error(&[("APP_SOCKET__RECOVERY_SECS", "86401")]),
            "socket.recovery_secs: must be at most 86400"
        );
        assert_eq!(
            error(&[("APP_SOCKET__RECOVERY_MAX_EVENTS", "0")]),
            "socket.recovery_max_events: must be between 1 and 100000"
        );
        Ok(())
    });
}

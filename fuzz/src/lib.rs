//! What the fuzz targets share: the settings of the verifiers under test.

use claims::KeySettings;
use secrecy::SecretString;

/// Fixed settings; the fuzzer never finds this key, so nothing may verify.
pub fn key_settings() -> KeySettings {
    KeySettings {
        secret: SecretString::from("fuzzing-shared-key-0123456789abcdef"),
        issuer: "web-frontend".into(),
        audience: "socket-server".into(),
        ttl_secs: 300,
        leeway_secs: 5,
    }
}

/// The time every input is checked at.
pub const NOW: i64 = 1_800_000_000;

/// The token rules besides the keys.
pub fn token_settings() -> claims::TokenSettings {
    key_settings().token_settings()
}

/// The claims of a valid token at [`NOW`].
pub fn claims() -> serde_json::Value {
    serde_json::json!({
        "sub": "gonzalo", "iat": NOW, "exp": NOW + 300,
        "iss": "web-frontend", "aud": "socket-server", "sid": "fuzzing-session-0001",
    })
}

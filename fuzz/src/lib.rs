//! What both fuzz targets share: the key settings of the verifier under test.

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

//! What the fuzz targets share: the keys and settings of the verifiers under test.

use testkit::Hs256Fixture;

/// Fixed keys and the contract's settings; the fuzzer never finds this key,
/// so nothing may verify.
pub fn fixture() -> Hs256Fixture {
    Hs256Fixture::new("fuzzing-shared-key-0123456789abcdef")
}

/// The time every input is checked at.
pub const NOW: i64 = 1_800_000_000;

/// The token rules besides the keys.
pub fn token_settings() -> claims::TokenSettings {
    fixture().settings
}

/// The claims of a valid token at [`NOW`].
pub fn claims() -> serde_json::Value {
    serde_json::json!({
        "sub": "gonzalo", "iat": NOW, "exp": NOW + 300,
        "iss": "web-frontend", "aud": "socket-server", "sid": "fuzzing-session-0001",
    })
}

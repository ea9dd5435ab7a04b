//! Any bytes, as the token of a handshake or a `reauth`: never a panic, and
//! never accepted (nothing here is signed with the key).
#![no_main]

use claims::{KeySettings, TokenVerifier};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

fuzz_target!(|data: &[u8]| {
    let verifier = TokenVerifier::new(&KeySettings {
        secret: SecretString::from("fuzzing-shared-key-0123456789abcdef"),
        issuer: "web-frontend".into(),
        audience: "socket-server".into(),
        ttl_secs: 300,
        leeway_secs: 5,
    })
    .expect("a usable key");
    let token = String::from_utf8_lossy(data);
    assert!(verifier.verify(&token, 1_800_000_000).is_err());
});

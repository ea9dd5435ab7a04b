//! Any bytes, as a revocation notice (HTTP body or Redis message): never a
//! panic, and never accepted.
#![no_main]

use claims::{KeySettings, RevocationVerifier};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

fuzz_target!(|data: &[u8]| {
    let verifier = RevocationVerifier::new(&KeySettings {
        secret: SecretString::from("fuzzing-shared-key-0123456789abcdef"),
        issuer: "web-frontend".into(),
        audience: "socket-server".into(),
        ttl_secs: 300,
        leeway_secs: 5,
    })
    .expect("a usable key");
    let notice = String::from_utf8_lossy(data);
    assert!(verifier.verify(&notice, 1_800_000_000).is_err());
});

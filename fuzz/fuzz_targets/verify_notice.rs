//! Any bytes, as a revocation notice (HTTP body or Redis message): never a
//! panic, and never accepted.
#![no_main]

use std::sync::LazyLock;

use claims::RevocationVerifier;
use libfuzzer_sys::fuzz_target;

static VERIFIER: LazyLock<RevocationVerifier> = LazyLock::new(|| {
    authbridge_fuzz::fixture()
        .revocation_verifier()
        .expect("a usable key")
});

fuzz_target!(|data: &[u8]| {
    let notice = String::from_utf8_lossy(data);
    assert!(VERIFIER.verify(&notice, authbridge_fuzz::NOW).is_err());
});

//! Any bytes, as the token of a handshake or a `reauth`: never a panic, and
//! never accepted (nothing here is signed with the key).
#![no_main]

use std::sync::LazyLock;

use claims::TokenVerifier;
use libfuzzer_sys::fuzz_target;

static VERIFIER: LazyLock<TokenVerifier> =
    LazyLock::new(|| authbridge_fuzz::fixture().verifier().expect("a usable key"));

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    assert!(VERIFIER.verify(&token, authbridge_fuzz::NOW).is_err());
});

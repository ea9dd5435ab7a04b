//! Any bytes, as the JWK Set document a socket server fetched: reading it
//! never panics, and no key it yields makes checking a token panic, with or
//! without a `kid` — the check the audit of the key pair modes found
//! jsonwebtoken panicking in, for a short Ed25519 key.
#![no_main]

use std::sync::LazyLock;

use claims::{Algorithm, KeySet, TokenVerifier};
use libfuzzer_sys::fuzz_target;
use testkit::KeyPair;

/// A token per algorithm, signed by a key no document here can hold, and the
/// same without its `kid`.
static TOKENS: LazyLock<Vec<(Algorithm, String)>> = LazyLock::new(|| {
    let mut tokens = Vec::new();
    for algorithm in [Algorithm::EdDSA, Algorithm::ES256] {
        let token = KeyPair::generate(algorithm, 42).sign(&authbridge_fuzz::claims());
        let (_, rest) = token.split_once('.').expect("a dot");
        // `{"alg":…}` alone, base64url.
        let header = match algorithm {
            Algorithm::EdDSA => "eyJhbGciOiJFZERTQSJ9",
            _ => "eyJhbGciOiJFUzI1NiJ9",
        };
        let bare = format!("{header}.{rest}");
        tokens.push((algorithm, token));
        tokens.push((algorithm, bare));
    }
    tokens
});

fuzz_target!(|data: &[u8]| {
    for (algorithm, token) in TOKENS.iter() {
        let Ok(keys) = claims::keys_from_jwks(*algorithm, data) else {
            continue;
        };
        let verifier = TokenVerifier::with_keys(
            &authbridge_fuzz::token_settings(),
            KeySet::public(*algorithm, keys).expect("keys of the algorithm, at most 8"),
        );
        // Whether it verifies is not the point (a document could hold the
        // signing key, fixed here); it must not panic.
        let _ = verifier.verify(token, authbridge_fuzz::NOW);
    }
});

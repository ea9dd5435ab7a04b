//! Signing and verifying a connection token, next to a bare HMAC-SHA256 over
//! the same signing input: the floor that verify cannot go below.
//!
//! `scripts/bench` reads the medians criterion writes and prints verify/floor.

use std::hint::black_box;

use claims::Algorithm;
use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;
use testkit::{Hs256Fixture, KeyPair};

const SECRET: &str = "claims-benchmark-shared-key-0123456789abcdef";
const USERNAME: &str = "gonzalo";
const SESSION: &str = "0123456789abcdef0123456789abcdef";

fn tokens(c: &mut Criterion) {
    let (issuer, verifier) = Hs256Fixture::new(SECRET).pair().expect("a usable key");
    let now = claims::unix_now();
    let token = issuer.issue(USERNAME, SESSION, now).expect("signs");
    assert!(verifier.verify(&token, now).is_ok(), "the token verifies");
    let signing_input = &token[..token.rfind('.').expect("a compact JWS")];

    let mut group = c.benchmark_group("tokens");
    group.bench_function("sign", |b| {
        b.iter(|| issuer.issue(black_box(USERNAME), black_box(SESSION), black_box(now)));
    });
    group.bench_function("verify", |b| {
        b.iter(|| verifier.verify(black_box(&token), black_box(now)));
    });
    group.bench_function("hmac_sha256_floor", |b| {
        b.iter(|| {
            let mut mac =
                Hmac::<Sha256>::new_from_slice(black_box(SECRET.as_bytes())).expect("any key size");
            mac.update(black_box(signing_input.as_bytes()));
            mac.finalize().into_bytes()
        });
    });
    group.finish();
}

/// The key-pair algorithms: what a socket server pays per handshake with
/// public keys instead of the shared secret.
fn key_pairs(c: &mut Criterion) {
    let mut group = c.benchmark_group("key_pairs");
    for algorithm in [Algorithm::EdDSA, Algorithm::ES256] {
        let (issuer, verifier) = KeyPair::generate(algorithm, 7).pair();
        let now = claims::unix_now();
        let token = issuer.issue(USERNAME, SESSION, now).expect("signs");
        assert!(verifier.verify(&token, now).is_ok(), "the token verifies");
        group.bench_function(format!("sign_{algorithm}"), |b| {
            b.iter(|| issuer.issue(black_box(USERNAME), black_box(SESSION), black_box(now)));
        });
        group.bench_function(format!("verify_{algorithm}"), |b| {
            b.iter(|| verifier.verify(black_box(&token), black_box(now)));
        });
    }
    group.finish();
}

criterion_group!(benches, tokens, key_pairs);
criterion_main!(benches);

//! testkit signs as claims does: the same bytes for HS256, the same header for
//! a key pair, and tokens claims' verifiers accept.

use claims::{Algorithm, KeyError, VerifyError};
use serde_json::json;

use super::*;

const SECRET: &str = "0123456789abcdef0123456789abcdef-testkit-key";
const NOW: i64 = 1_800_000_000;

fn header(token: &str) -> &str {
    token.split('.').next().unwrap_or_default()
}

fn valid_payload() -> Value {
    json!({
        "sub": "gonzalo", "user": {"username": "gonzalo"}, "iat": NOW, "exp": NOW + 300,
        "iss": ISSUER, "aud": AUDIENCE, "jti": "abc",
    })
}

#[test]
fn hs256_signing_is_byte_for_byte_the_issuers() {
    let fixture = Hs256Fixture::new(SECRET);
    let issuer = fixture.issuer().expect("issuer");
    let claims = issuer.claims_for("gonzalo", "a-session", NOW);
    let payload = serde_json::to_vec(&claims).expect("json");
    assert_eq!(
        sign_hs256_bytes(SECRET.as_bytes(), &payload),
        issuer.sign(&claims).expect("signs")
    );
    assert_eq!(
        header(&fixture.sign(&valid_payload())),
        URL_SAFE_NO_PAD.encode(HS256_HEADER)
    );
}

#[test]
fn the_fixtures_issuer_verifier_and_raw_tokens_agree() {
    let fixture = Hs256Fixture::new(SECRET);
    let (issuer, verifier) = fixture.pair().expect("pair");
    let token = issuer.issue("gonzalo", "a-session", NOW).expect("token");
    assert_eq!(
        verifier.verify(&token, NOW).expect("valid").username,
        "gonzalo"
    );
    assert!(
        verifier
            .verify(&fixture.sign(&valid_payload()), NOW)
            .is_ok()
    );
    let other_header = json!({"typ": "JWT", "alg": "HS256"});
    let token = sign_hs256_with_header(SECRET.as_bytes(), &other_header, &valid_payload());
    assert!(verifier.verify(&token, NOW).is_ok());
    let notice = fixture
        .revocation_signer()
        .expect("signer")
        .sign(&[], NOW)
        .expect("notice");
    let revocations = fixture.revocation_verifier().expect("verifier");
    assert_eq!(revocations.verify(&notice, NOW), Ok(Vec::new()));
}

#[test]
fn the_leeway_is_the_fixtures() {
    let strict = Hs256Fixture::new(SECRET).with_leeway(0);
    let token = strict.sign(&json!({
        "sub": "gonzalo", "iat": NOW - 10, "exp": NOW, "iss": ISSUER, "aud": AUDIENCE,
    }));
    assert_eq!(
        strict.verifier().expect("verifier").verify(&token, NOW),
        Err(VerifyError::Expired)
    );
    let lenient = Hs256Fixture::new(SECRET).verifier().expect("verifier");
    assert!(lenient.verify(&token, NOW).is_ok());
}

#[test]
fn a_short_secret_is_claims_refusal() {
    let short = Hs256Fixture::new("too-short");
    assert_eq!(short.issuer().err(), Some(KeyError::SecretTooShort(9)));
    assert_eq!(short.verifier().err(), Some(KeyError::SecretTooShort(9)));
}

#[test]
fn a_key_pair_signs_under_the_issuers_header_and_its_verifier_accepts() {
    for algorithm in [Algorithm::EdDSA, Algorithm::ES256] {
        let pair = KeyPair::generate(algorithm, 7);
        let (issuer, verifier) = pair.pair();
        let issued = issuer.issue("gonzalo", "a-session", NOW).expect("token");
        let raw = pair.sign(&valid_payload());
        assert_eq!(header(&raw), header(&issued), "{algorithm}");
        assert!(verifier.verify(&raw, NOW).is_ok(), "{algorithm}");
        assert_eq!(pair.public_key().kid(), issuer.kid().expect("a kid"));
        let again = KeyPair::from_private_pem(algorithm, pair.private_pem().as_bytes())
            .expect("its own PEM reads");
        assert_eq!(again.public_key(), pair.public_key());
        assert!(!format!("{pair:?}").contains(pair.private_pem()));
    }
}

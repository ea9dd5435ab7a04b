//! One test per rule of the contract's "The token" section.

use claims::{
    Invalid, KeyError, MAX_TOKEN_BYTES, REVOCATION_TYP, Revocation, TokenVerifier, VerifiedClaims,
    VerifyError,
};
use serde_json::{Value, json};
use testkit::Hs256Fixture;

const SECRET: &str = "0123456789abcdef0123456789abcdef-test-key";
const NOW: i64 = 1_800_000_000;
const SESSION: &str = "s3ss10n-0f-th3-l0g1n";

fn settings() -> Hs256Fixture {
    Hs256Fixture::new(SECRET)
}

fn verifier() -> TokenVerifier {
    settings().verifier().expect("valid settings")
}

fn valid_payload() -> Value {
    json!({
        "sub": "gonzalo",
        "user": {"username": "gonzalo"},
        "iat": NOW,
        "exp": NOW + 300,
        "iss": "web-frontend",
        "aud": "socket-server",
        "jti": "abc",
    })
}

fn with(mut payload: Value, key: &str, value: Value) -> Value {
    payload[key] = value;
    payload
}

fn without(mut payload: Value, key: &str) -> Value {
    payload.as_object_mut().expect("object").remove(key);
    payload
}

fn signed(payload: &Value) -> String {
    testkit::sign_hs256(SECRET.as_bytes(), payload)
}

fn b64(value: &Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

/// A token with any header, signed with HS256 over exactly what it carries.
fn signed_with_header(header: &Value, payload: &Value) -> String {
    testkit::sign_hs256_with_header(SECRET.as_bytes(), header, payload)
}

fn refusal(token: &str) -> VerifyError {
    verifier()
        .verify(token, NOW)
        .expect_err("token must be refused")
}

#[test]
fn exactly_one_crypto_backend_is_compiled_in() {
    // jsonwebtoken compiles with none or both backends and panics at the first
    // sign; this fails the build's tests instead.
    assert!(jsonwebtoken::crypto::CryptoProvider::try_get_default().is_some());
    assert!(
        settings()
            .issuer()
            .expect("issuer")
            .issue("gonzalo", SESSION, NOW)
            .is_ok()
    );
}

#[test]
fn an_issued_token_round_trips_through_the_verifier() {
    let issuer = settings().issuer().expect("issuer");
    let token = issuer.issue("gonzalo", SESSION, NOW).expect("token");
    let claims = verifier().verify(&token, NOW + 10).expect("valid");
    assert_eq!(
        claims,
        VerifiedClaims {
            username: "gonzalo".into(),
            expires_at: NOW + 300,
            issued_at: NOW,
            session_id: Some(SESSION.into()),
            rooms: Vec::new(),
        }
    );
}

#[test]
fn room_patterns_travel_in_the_rooms_claim_and_are_absent_without_any() {
    let issuer = settings().issuer().expect("issuer");
    let rooms = vec!["team:42".to_owned(), "org:7:*".to_owned()];
    let token = issuer
        .issue_with_rooms("gonzalo", SESSION, &rooms, NOW)
        .expect("token");
    let claims = verifier().verify(&token, NOW + 10).expect("valid");
    assert_eq!(claims.rooms, rooms);
    let payload = |token: &str| -> serde_json::Value {
        use base64::Engine as _;
        let segment = token.split('.').nth(1).expect("a payload");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(segment)
            .expect("base64url");
        serde_json::from_slice(&bytes).expect("json")
    };
    assert_eq!(payload(&token)["rooms"], serde_json::json!(rooms));
    let without = issuer.issue("gonzalo", SESSION, NOW).expect("token");
    assert!(payload(&without).get("rooms").is_none(), "absent = none");
}

#[test]
fn a_rooms_claim_that_is_not_an_array_of_patterns_within_bounds_is_refused() {
    let fixture = settings();
    let base = |rooms: serde_json::Value| {
        serde_json::json!({
            "sub": "gonzalo", "iat": NOW, "exp": NOW + 300,
            "iss": "web-frontend", "aud": "socket-server", "rooms": rooms,
        })
    };
    for bad in [
        serde_json::json!("team:42"),
        serde_json::json!([1]),
        serde_json::json!([""]),
        serde_json::json!(["x".repeat(101)]),
        serde_json::json!(["tab\there"]),
        serde_json::Value::Array(
            (0..101)
                .map(|i| serde_json::json!(format!("r{i}")))
                .collect(),
        ),
    ] {
        let token = fixture.sign(&base(bad.clone()));
        let error = verifier().verify(&token, NOW).expect_err("refused");
        assert_eq!(error.to_string(), "not valid token", "{bad}");
    }
    for good in [
        serde_json::Value::Null,
        serde_json::json!([]),
        serde_json::json!([format!("{}*", "x".repeat(100)), "*", "a*b"]),
    ] {
        let token = fixture.sign(&base(good.clone()));
        assert!(verifier().verify(&token, NOW).is_ok(), "{good}");
    }
}

#[test]
fn issued_tokens_have_the_exact_header_and_every_claim() {
    use base64::Engine as _;
    let token = settings()
        .issuer()
        .expect("issuer")
        .issue("gonzalo", SESSION, NOW)
        .expect("token");
    let mut parts = token.split('.');
    let decode = |part: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .expect("base64")
    };
    assert_eq!(
        decode(parts.next().expect("header")),
        br#"{"alg":"HS256","typ":"JWT"}"#
    );
    let payload: Value =
        serde_json::from_slice(&decode(parts.next().expect("payload"))).expect("json");
    assert_eq!(payload["sub"], "gonzalo");
    assert_eq!(payload["user"], json!({"username": "gonzalo"}));
    assert_eq!(payload["iat"], NOW);
    assert_eq!(payload["exp"], NOW + 300);
    assert_eq!(payload["iss"], "web-frontend");
    assert_eq!(payload["aud"], "socket-server");
    assert!(payload["jti"].as_str().is_some_and(|jti| jti.len() >= 16));
    assert_eq!(payload["sid"], SESSION);
}

#[test]
fn every_token_gets_its_own_jti() {
    let issuer = settings().issuer().expect("issuer");
    assert_ne!(
        issuer.claims_for("gonzalo", SESSION, NOW).jti,
        issuer.claims_for("gonzalo", SESSION, NOW).jti
    );
}

#[test]
fn a_token_from_another_library_with_another_header_order_is_accepted() {
    let header = json!({"typ": "JWT", "alg": "HS256"});
    assert!(
        verifier()
            .verify(&signed_with_header(&header, &valid_payload()), NOW)
            .is_ok()
    );
}

#[test]
fn a_connect_token_typed_as_a_revocation_notice_is_refused() {
    let token = signed_with_header(
        &json!({"alg": "HS256", "typ": REVOCATION_TYP}),
        &valid_payload(),
    );
    assert_eq!(refusal(&token), VerifyError::Invalid(Invalid::WrongType));
    assert_eq!(refusal(&token).to_string(), "not valid token");
}

#[test]
fn typ_may_be_absent() {
    let token = signed_with_header(&json!({"alg": "HS256"}), &valid_payload());
    assert!(verifier().verify(&token, NOW).is_ok());
}

#[test]
fn kid_jku_x5u_and_jwk_headers_are_ignored() {
    let header = json!({
        "alg": "HS256", "kid": "../../etc/passwd", "jku": "http://127.0.0.1:1/jwks",
        "x5u": "http://127.0.0.1:1/x5u", "jwk": {"kty": "oct", "k": "AAAA"},
    });
    assert!(
        verifier()
            .verify(&signed_with_header(&header, &valid_payload()), NOW)
            .is_ok()
    );
}

#[test]
fn a_wrong_signature_is_refused() {
    let token = testkit::sign_hs256(b"another-key-another-key-another-key!", &valid_payload());
    assert_eq!(refusal(&token), VerifyError::Invalid(Invalid::BadSignature));
}

#[test]
fn a_tampered_payload_is_refused() {
    let token = signed(&valid_payload());
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged = b64(&with(valid_payload(), "sub", json!("admin")));
    parts[1] = &forged;
    assert_eq!(
        refusal(&parts.join(".")),
        VerifyError::Invalid(Invalid::BadSignature)
    );
}

#[test]
fn any_other_alg_is_refused() {
    for alg in ["none", "HS384", "HS512", "RS256", "EdDSA", "hs256", ""] {
        let token = signed_with_header(&json!({"alg": alg, "typ": "JWT"}), &valid_payload());
        assert_eq!(
            refusal(&token),
            VerifyError::Invalid(Invalid::WrongAlgorithm),
            "alg {alg}"
        );
    }
}

#[test]
fn an_unsigned_alg_none_token_is_refused() {
    let token = format!(
        "{}.{}.",
        b64(&json!({"alg": "none"})),
        b64(&valid_payload())
    );
    assert_eq!(
        refusal(&token),
        VerifyError::Invalid(Invalid::WrongAlgorithm)
    );
}

#[test]
fn a_missing_alg_is_refused() {
    let token = signed_with_header(&json!({"typ": "JWT"}), &valid_payload());
    assert_eq!(
        refusal(&token),
        VerifyError::Invalid(Invalid::WrongAlgorithm)
    );
}

#[test]
fn any_crit_header_is_refused() {
    for crit in [json!(["exp"]), json!([]), Value::Null] {
        let header = json!({"alg": "HS256", "crit": crit});
        let token = signed_with_header(&header, &valid_payload());
        assert_eq!(
            refusal(&token),
            VerifyError::Invalid(Invalid::CriticalHeader)
        );
    }
}

#[test]
fn malformed_tokens_are_refused() {
    let valid = signed(&valid_payload());
    let cases = [
        String::new(),
        "abc".into(),
        "a.b".into(),
        "a.b.c".into(),
        format!("{valid}.extra"),
        valid.replacen('.', "", 1),
        format!("!!{valid}"),
        format!(
            "{}.{}",
            b64(&json!(["alg", "HS256"])),
            valid.split_once('.').expect("dot").1
        ),
    ];
    for token in cases {
        assert!(
            matches!(refusal(&token), VerifyError::Invalid(_)),
            "{token:?} must be refused as not valid"
        );
    }
}

#[test]
fn an_oversized_token_is_refused_before_parsing() {
    let token = "a".repeat(MAX_TOKEN_BYTES + 1);
    assert_eq!(refusal(&token), VerifyError::Invalid(Invalid::TooLong));
}

#[test]
fn a_payload_that_is_not_a_json_object_is_refused() {
    for payload in [json!(["gonzalo", NOW]), json!("gonzalo"), json!(null)] {
        assert_eq!(
            refusal(&signed(&payload)),
            VerifyError::Invalid(Invalid::MalformedClaims)
        );
    }
}

#[test]
fn each_required_claim_is_required() {
    for claim in ["sub", "exp", "iat", "iss", "aud"] {
        let token = signed(&without(valid_payload(), claim));
        assert_eq!(
            refusal(&token),
            VerifyError::Invalid(Invalid::MissingClaim(claim)),
            "{claim}"
        );
    }
}

#[test]
fn claims_of_the_wrong_type_are_refused() {
    for (claim, value) in [
        ("sub", json!(42)),
        ("exp", json!("soon")),
        ("iat", json!(true)),
        ("aud", json!([1])),
    ] {
        let token = signed(&with(valid_payload(), claim, value));
        assert_eq!(
            refusal(&token),
            VerifyError::Invalid(Invalid::MalformedClaims),
            "{claim}"
        );
    }
}

#[test]
fn an_empty_sub_is_refused() {
    let token = signed(&with(valid_payload(), "sub", json!("")));
    assert_eq!(
        refusal(&token),
        VerifyError::Invalid(Invalid::MissingClaim("sub"))
    );
}

#[test]
fn a_wrong_issuer_is_refused() {
    let token = signed(&with(valid_payload(), "iss", json!("someone-else")));
    assert_eq!(refusal(&token), VerifyError::Invalid(Invalid::WrongIssuer));
}

#[test]
fn a_wrong_audience_is_refused() {
    let token = signed(&with(valid_payload(), "aud", json!("another-service")));
    assert_eq!(
        refusal(&token),
        VerifyError::Invalid(Invalid::WrongAudience)
    );
    let token = signed(&with(valid_payload(), "aud", json!(["a", "b"])));
    assert_eq!(
        refusal(&token),
        VerifyError::Invalid(Invalid::WrongAudience)
    );
}

#[test]
fn an_audience_array_holding_ours_is_accepted() {
    let token = signed(&with(
        valid_payload(),
        "aud",
        json!(["other", "socket-server"]),
    ));
    assert!(verifier().verify(&token, NOW).is_ok());
}

#[test]
fn an_expired_token_is_refused_as_expired() {
    let token = signed(&with(valid_payload(), "exp", json!(NOW - 6)));
    assert_eq!(refusal(&token), VerifyError::Expired);
    assert_eq!(VerifyError::Expired.to_string(), "token expired");
}

#[test]
fn exp_is_checked_with_the_leeway() {
    let token = signed(&with(valid_payload(), "exp", json!(NOW - 4)));
    assert!(verifier().verify(&token, NOW).is_ok());
    let token = signed(&with(valid_payload(), "exp", json!(NOW - 5)));
    assert_eq!(refusal(&token), VerifyError::Expired);
}

#[test]
fn fractional_numeric_dates_are_accepted() {
    let payload = with(
        with(valid_payload(), "iat", json!(NOW as f64 + 0.5)),
        "exp",
        json!(NOW as f64 + 60.25),
    );
    assert_eq!(
        verifier()
            .verify(&signed(&payload), NOW)
            .expect("valid")
            .expires_at,
        NOW + 60
    );
}

#[test]
fn an_expired_token_with_another_fault_is_not_valid_rather_than_expired() {
    let payload = with(
        with(valid_payload(), "exp", json!(NOW - 60)),
        "aud",
        json!("other"),
    );
    assert_eq!(
        refusal(&signed(&payload)),
        VerifyError::Invalid(Invalid::WrongAudience)
    );
    let forged = testkit::sign_hs256(
        b"another-key-another-key-another-key!",
        &with(valid_payload(), "exp", json!(NOW - 60)),
    );
    assert_eq!(
        refusal(&forged),
        VerifyError::Invalid(Invalid::BadSignature)
    );
}

#[test]
fn nbf_in_the_future_is_refused_beyond_the_leeway() {
    let token = signed(&with(valid_payload(), "nbf", json!(NOW + 5)));
    assert!(verifier().verify(&token, NOW).is_ok());
    let token = signed(&with(valid_payload(), "nbf", json!(NOW + 6)));
    assert_eq!(refusal(&token), VerifyError::Invalid(Invalid::NotYetValid));
}

#[test]
fn iat_in_the_future_is_refused_beyond_the_leeway() {
    let token = signed(&with(valid_payload(), "iat", json!(NOW + 5)));
    assert!(verifier().verify(&token, NOW).is_ok());
    let token = signed(&with(valid_payload(), "iat", json!(NOW + 6)));
    assert_eq!(
        refusal(&token),
        VerifyError::Invalid(Invalid::IssuedInFuture)
    );
}

#[test]
fn user_is_optional() {
    let token = signed(&without(valid_payload(), "user"));
    assert_eq!(
        verifier().verify(&token, NOW).expect("valid").username,
        "gonzalo"
    );
}

#[test]
fn a_present_user_must_name_the_same_user_as_sub() {
    for user in [
        json!({"username": "admin"}),
        json!({}),
        json!("gonzalo"),
        Value::Null,
        json!({"username": 1}),
        json!(["gonzalo"]),
        json!(true),
        json!(7),
    ] {
        let token = signed(&with(valid_payload(), "user", user.clone()));
        assert_eq!(
            refusal(&token),
            VerifyError::Invalid(Invalid::UserMismatch),
            "user {user}"
        );
    }
}

#[test]
fn a_user_with_extra_fields_is_accepted_and_a_doubled_username_refused() {
    let extra = with(
        valid_payload(),
        "user",
        json!({"id": 7, "username": "gonzalo", "roles": ["a"]}),
    );
    assert!(verifier().verify(&signed(&extra), NOW).is_ok());
    // JSON with a duplicate key cannot be built with serde_json's map: by hand.
    let doubled = serde_json::to_string(&valid_payload())
        .expect("json")
        .replacen(
            r#""user":{"username":"gonzalo"}"#,
            r#""user":{"username":"gonzalo","username":"admin"}"#,
            1,
        );
    assert!(doubled.contains(r#""username":"admin""#), "{doubled}");
    let token = sign_raw_bytes(&doubled);
    assert_eq!(refusal(&token), VerifyError::Invalid(Invalid::UserMismatch));
    let doubled_sub = serde_json::to_string(&valid_payload())
        .expect("json")
        .replacen(r#""sub":"gonzalo""#, r#""sub":"gonzalo","sub":"admin""#, 1);
    assert_eq!(
        refusal(&sign_raw_bytes(&doubled_sub)),
        VerifyError::Invalid(Invalid::MalformedClaims)
    );
}

/// A token over exactly these payload bytes, with the test key.
fn sign_raw_bytes(payload: &str) -> String {
    testkit::sign_hs256_bytes(SECRET.as_bytes(), payload.as_bytes())
}

#[test]
fn identity_is_sub() {
    let payload = with(
        with(valid_payload(), "sub", json!("alice")),
        "user",
        json!({"username": "alice"}),
    );
    assert_eq!(
        verifier()
            .verify(&signed(&payload), NOW)
            .expect("valid")
            .username,
        "alice"
    );
}

#[test]
fn a_short_secret_is_refused_when_building() {
    let mut short = settings();
    short.secret = b"too-short".to_vec();
    assert_eq!(short.issuer().err(), Some(KeyError::SecretTooShort(9)));
    assert_eq!(short.verifier().err(), Some(KeyError::SecretTooShort(9)));
}

#[test]
fn only_two_client_messages_exist() {
    assert_eq!(
        VerifyError::Invalid(Invalid::BadSignature).to_string(),
        "not valid token"
    );
    assert_eq!(
        VerifyError::Invalid(Invalid::MissingClaim("sub"))
            .reason()
            .to_string(),
        "missing claim"
    );
    assert_eq!(
        Invalid::MissingClaim("sub").to_string(),
        "missing claim sub"
    );
}

#[test]
fn debug_output_never_shows_the_key() {
    let shown = format!(
        "{:?} {:?}",
        settings().issuer().expect("issuer"),
        verifier()
    );
    assert!(!shown.contains(SECRET));
}

#[test]
fn sid_is_optional_for_tokens_minted_elsewhere() {
    let claims = verifier()
        .verify(&signed(&valid_payload()), NOW)
        .expect("valid");
    assert_eq!(claims.session_id, None);
    let token = signed(&with(valid_payload(), "sid", json!("abc")));
    assert_eq!(
        verifier()
            .verify(&token, NOW)
            .expect("valid")
            .session_id
            .as_deref(),
        Some("abc")
    );
    let token = signed(&with(valid_payload(), "sid", json!(7)));
    assert_eq!(
        refusal(&token),
        VerifyError::Invalid(Invalid::MalformedClaims)
    );
}

mod revocation_channel {
    use super::*;

    fn revoked() -> Vec<Revocation> {
        vec![Revocation {
            sid: SESSION.into(),
            until: NOW + 305,
        }]
    }

    #[test]
    fn a_notice_round_trips() {
        let notice = settings()
            .revocation_signer()
            .expect("signer")
            .sign(&revoked(), NOW)
            .expect("sign");
        let verifier = settings().revocation_verifier().expect("verifier");
        assert_eq!(verifier.verify(&notice, NOW + 1), Ok(revoked()));
    }

    #[test]
    fn a_notice_signed_with_another_key_is_refused() {
        let mut other = settings();
        other.secret = b"a-different-shared-key-of-32-bytes-or-more".to_vec();
        let spoofed = other
            .revocation_signer()
            .expect("signer")
            .sign(&revoked(), NOW)
            .expect("sign");
        let verifier = settings().revocation_verifier().expect("verifier");
        assert_eq!(verifier.verify(&spoofed, NOW), Err(Invalid::BadSignature));
    }

    #[test]
    fn a_connect_token_is_never_a_notice() {
        let token = settings()
            .issuer()
            .expect("issuer")
            .issue("gonzalo", SESSION, NOW)
            .expect("token");
        let verifier = settings().revocation_verifier().expect("verifier");
        assert_eq!(verifier.verify(&token, NOW), Err(Invalid::WrongType));
        // Even with the notice's typ, the shared key itself does not sign notices.
        let forged =
            signed_with_header(&json!({"alg": "HS256", "typ": REVOCATION_TYP}), &json!({}));
        assert_eq!(verifier.verify(&forged, NOW), Err(Invalid::BadSignature));
    }

    #[test]
    fn a_notice_is_never_a_connect_token() {
        let notice = settings()
            .revocation_signer()
            .expect("signer")
            .sign(&revoked(), NOW)
            .expect("sign");
        // Refused by its `typ` already (and its key would not verify either).
        assert_eq!(refusal(&notice), VerifyError::Invalid(Invalid::WrongType));
        assert_eq!(refusal(&notice).to_string(), "not valid token");
    }

    #[test]
    fn a_stale_notice_is_refused() {
        let notice = settings()
            .revocation_signer()
            .expect("signer")
            .sign(&revoked(), NOW)
            .expect("sign");
        let verifier = settings().revocation_verifier().expect("verifier");
        assert_eq!(verifier.verify(&notice, NOW + 65), Err(Invalid::Stale));
        assert_eq!(
            verifier.verify(&notice, NOW - 6),
            Err(Invalid::IssuedInFuture)
        );
    }
}

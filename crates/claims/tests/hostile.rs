//! Hostile tokens, each built by hand: the header and payload are written as
//! bytes, base64url-encoded here, and signed here with a bare HMAC (or left
//! unsigned, or signed wrongly). Nothing below goes through the crate's own
//! signing, so a mistake shared by the issuer and the verifier cannot hide.
//!
//! Each test is named after the rule of the contract's "The token" section it
//! proves, and checks the refusal's `Display`: the message the client sees,
//! `token expired` only for a token whose one fault is its passed `exp`, and
//! `not valid token` for everything else.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use claims::{
    Invalid, MAX_NOTICE_BYTES, MAX_TOKEN_BYTES, REVOCATION_TYP, Revocation, RevocationVerifier,
    TokenVerifier, VerifiedClaims, VerifyError,
};
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::{Sha256, Sha384, Sha512};
use testkit::Hs256Fixture;

const SECRET: &str = "0123456789abcdef0123456789abcdef-hostile-test-key";
/// Another key of a legal size: what an attacker signs with.
const ATTACKER_KEY: &str = "attacker-controlled-key-0123456789abcdef";
const NOW: i64 = 1_800_000_000;
const LEEWAY: i64 = 5;
const SESSION: &str = "s3ss10n-0f-th3-l0g1n";

const NOT_VALID: &str = "not valid token";
const EXPIRED: &str = "token expired";

/// The header the contract fixes for issued tokens.
const HS256_JWT: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// What an RS256 verifier would hold: the classic key-confusion "secret".
const PUBLIC_KEY_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo
4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u
+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyeh
kd3qqGElvW/VDL5AaWTg0nLVkjRo9z+40RQzuVaE8AkAFmxZzow3x+VJYKdjykkJ
0iT9wCS0DRTXu269V264Vf/3jvredZiKRkgwlL9xNAwxXFg0x/XFw005UWVRIkdg
cKWTjpBP2dPwVZ4WWC+9aGVd+Gyn1o0CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbc
mwIDAQAB
-----END PUBLIC KEY-----
";

// ---------------------------------------------------------------------------
// Building tokens by hand
// ---------------------------------------------------------------------------

/// The verifiers under test are built from the shared fixture; only the
/// tokens are made by hand.
fn settings_with_leeway(leeway_secs: u64) -> Hs256Fixture {
    Hs256Fixture::new(SECRET).with_leeway(leeway_secs)
}

fn settings() -> Hs256Fixture {
    settings_with_leeway(LEEWAY.unsigned_abs())
}

fn verifier() -> TokenVerifier {
    settings().verifier().expect("valid settings")
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(segment: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(segment).expect("base64url")
}

fn hs256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hs384(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha384>::new_from_slice(key).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hs512(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// `base64url(header).base64url(payload)`: what a signature covers.
fn signing_input(header: &[u8], payload: &[u8]) -> String {
    format!("{}.{}", b64(header), b64(payload))
}

/// `input` followed by an HS256 signature with `key` over exactly `input`,
/// whatever `input` holds (so a malformed segment is refused for its form,
/// not for its signature).
fn sign_input_with(key: &[u8], input: &str) -> String {
    format!("{input}.{}", b64(hs256(key, input.as_bytes())))
}

fn sign_input(input: &str) -> String {
    sign_input_with(SECRET.as_bytes(), input)
}

/// Header and payload bytes as given, signed with HS256 and the shared key.
fn token_bytes(header: &[u8], payload: &[u8]) -> String {
    sign_input(&signing_input(header, payload))
}

fn token(header: &str, payload: &str) -> String {
    token_bytes(header.as_bytes(), payload.as_bytes())
}

/// A token with the contract's header over `payload`.
fn connect_token(payload: &str) -> String {
    token(HS256_JWT, payload)
}

/// The claims of a good token, as `(name, raw JSON value)` in issuing order.
fn base_claims() -> Vec<(String, String)> {
    [
        ("sub", r#""gonzalo""#.to_owned()),
        ("user", r#"{"username":"gonzalo"}"#.to_owned()),
        ("iat", NOW.to_string()),
        ("exp", (NOW + 300).to_string()),
        ("iss", r#""web-frontend""#.to_owned()),
        ("aud", r#""socket-server""#.to_owned()),
        ("jti", r#""0f1e2d3c4b5a69788796a5b4c3d2e1f0""#.to_owned()),
        ("sid", format!(r#""{SESSION}""#)),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

/// The good claims with some changed: `Some(raw JSON)` sets (or adds) a
/// claim, `None` removes it. Written as JSON text by hand.
fn claims_with(edits: &[(&str, Option<&str>)]) -> String {
    let mut claims = base_claims();
    for (name, edit) in edits {
        let at = claims.iter().position(|(claim, _)| claim == name);
        match (at, edit) {
            (Some(at), Some(value)) => claims[at].1 = (*value).to_owned(),
            (Some(at), None) => {
                claims.remove(at);
            }
            (None, Some(value)) => claims.push(((*name).to_owned(), (*value).to_owned())),
            (None, None) => {}
        }
    }
    let members: Vec<String> = claims
        .iter()
        .map(|(name, value)| format!(r#""{name}":{value}"#))
        .collect();
    format!("{{{}}}", members.join(","))
}

fn good_claims() -> String {
    claims_with(&[])
}

/// Enough of a token to tell which one failed, without printing a megabyte.
fn shown(token: &str) -> String {
    if token.len() > 160 {
        format!(
            "{}… ({} bytes)",
            &token[..token.floor_char_boundary(160)],
            token.len()
        )
    } else {
        format!("{token:?}")
    }
}

#[track_caller]
fn assert_refused_with(verifier: &TokenVerifier, token: &str, now: i64, message: &str) {
    match verifier.verify(token, now) {
        Ok(claims) => panic!(
            "token {} must be refused with {message:?}, but was accepted as {claims:?}",
            shown(token)
        ),
        Err(error) => assert_eq!(
            error.to_string(),
            message,
            "token {} refused for the wrong reason ({})",
            shown(token),
            error.reason()
        ),
    }
}

#[track_caller]
fn assert_not_valid(token: &str) {
    assert_refused_with(&verifier(), token, NOW, NOT_VALID);
}

#[track_caller]
fn assert_expired(token: &str) {
    assert_refused_with(&verifier(), token, NOW, EXPIRED);
}

#[track_caller]
fn assert_accepted(token: &str) -> VerifiedClaims {
    match verifier().verify(token, NOW) {
        Ok(claims) => {
            assert_eq!(claims.username, "gonzalo", "token {}", shown(token));
            claims
        }
        Err(error) => panic!(
            "token {} must be accepted, was refused: {error} ({})",
            shown(token),
            error.reason()
        ),
    }
}

/// The token with one segment replaced by `segment`.
fn with_segment(token: &str, index: usize, segment: &str) -> String {
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[index] = segment;
    parts.join(".")
}

// ---------------------------------------------------------------------------
// The baseline: hand-built tokens are real tokens
// ---------------------------------------------------------------------------

#[test]
fn a_hand_built_token_with_the_shared_key_is_accepted() {
    let claims = assert_accepted(&connect_token(&good_claims()));
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
fn the_hand_built_signature_is_the_crates_own_hs256() {
    // Same bytes in, same token out: the hand-made HMAC is the real thing, so
    // every refusal below is about what was changed, not about this file.
    let payload = r#"{"aud":"socket-server","exp":1800000300,"iat":1800000000,"iss":"web-frontend","sub":"gonzalo"}"#;
    let value: serde_json::Value = serde_json::from_str(payload).expect("json");
    assert_eq!(
        testkit::sign_hs256(SECRET.as_bytes(), &value),
        connect_token(payload)
    );
    // And the issuer's own signing, over the bytes it writes for these claims.
    let issuer = settings().issuer().expect("issuer");
    let claims = issuer.claims_for("gonzalo", SESSION, NOW);
    let written = serde_json::to_string(&claims).expect("json");
    assert_eq!(
        issuer.sign(&claims).expect("token"),
        connect_token(&written)
    );
}

#[test]
fn a_hand_built_token_matches_an_issued_one_in_form() {
    let issued = settings()
        .issuer()
        .expect("issuer")
        .issue("gonzalo", SESSION, NOW)
        .expect("token");
    let hand_built = connect_token(&good_claims());
    assert_eq!(
        issued.split('.').next(),
        hand_built.split('.').next(),
        "the same header bytes"
    );
    assert_accepted(&issued);
}

// ---------------------------------------------------------------------------
// alg: HS256 with the shared key only
// ---------------------------------------------------------------------------

#[test]
fn alg_none_in_any_case_is_refused_unsigned_or_signed() {
    for alg in ["none", "None", "NONE", "nOnE"] {
        for header in [
            format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#),
            format!(r#"{{"alg":"{alg}"}}"#),
        ] {
            let input = signing_input(header.as_bytes(), good_claims().as_bytes());
            // Empty signature, as RFC 7519's unsecured JWT has it.
            assert_not_valid(&format!("{input}."));
            // No signature segment at all.
            assert_not_valid(&input);
            // A signature that is right for the bytes, with the shared key.
            assert_not_valid(&sign_input(&input));
            // The signature of the same claims under the real header.
            let real = connect_token(&good_claims());
            let real_signature = real.rsplit('.').next().expect("signature");
            assert_not_valid(&format!("{input}.{real_signature}"));
        }
    }
}

#[test]
fn alg_missing_null_empty_or_not_a_string_is_refused() {
    for header in [
        r#"{"typ":"JWT"}"#,
        r#"{"alg":null,"typ":"JWT"}"#,
        r#"{"alg":"","typ":"JWT"}"#,
        r#"{"alg":["HS256"],"typ":"JWT"}"#,
        r#"{"alg":{"name":"HS256"},"typ":"JWT"}"#,
        r#"{"alg":256,"typ":"JWT"}"#,
        r#"{"alg":true,"typ":"JWT"}"#,
        r#"{"alg":"hs256","typ":"JWT"}"#,
        r#"{"alg":"HS256 ","typ":"JWT"}"#,
        r#"{"alg":"HS256\u0000","typ":"JWT"}"#,
        r#"{}"#,
    ] {
        assert_not_valid(&token(header, &good_claims()));
    }
}

#[test]
fn hs384_and_hs512_are_refused_even_with_the_right_key() {
    let payload = good_claims();
    let key = SECRET.as_bytes();
    for (alg, mac) in [
        ("HS384", hs384 as fn(&[u8], &[u8]) -> Vec<u8>),
        ("HS512", hs512),
    ] {
        let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
        let input = signing_input(header.as_bytes(), payload.as_bytes());
        let signature = b64(mac(key, input.as_bytes()));
        assert_not_valid(&format!("{input}.{signature}"));
    }
}

#[test]
fn an_hs256_header_with_a_longer_or_shorter_mac_is_refused() {
    let input = signing_input(HS256_JWT.as_bytes(), good_claims().as_bytes());
    let key = SECRET.as_bytes();
    let hs256_mac = hs256(key, input.as_bytes());
    let hs384_mac = hs384(key, input.as_bytes());
    let hs512_mac = hs512(key, input.as_bytes());
    let mut extended = hs256_mac.clone();
    extended.push(0);
    for (what, signature) in [
        ("48-byte HS384 MAC", hs384_mac.clone()),
        ("64-byte HS512 MAC", hs512_mac.clone()),
        ("HS512 truncated to 32 bytes", hs512_mac[..32].to_vec()),
        ("HS384 truncated to 32 bytes", hs384_mac[..32].to_vec()),
        ("HS256 plus one byte", extended),
        (
            "HS256 doubled",
            [hs256_mac.clone(), hs256_mac.clone()].concat(),
        ),
        ("HS256 less its last byte", hs256_mac[..31].to_vec()),
        ("HS256 truncated to 16 bytes", hs256_mac[..16].to_vec()),
        ("one zero byte", vec![0]),
        ("32 zero bytes", vec![0; 32]),
    ] {
        let token = format!("{input}.{}", b64(&signature));
        match verifier().verify(&token, NOW) {
            Ok(claims) => panic!("{what}: accepted as {claims:?}"),
            Err(error) => assert_eq!(error.to_string(), NOT_VALID, "{what}"),
        }
    }
    // The control: the same input with the right MAC is accepted.
    assert_accepted(&format!("{input}.{}", b64(&hs256_mac)));
}

#[test]
fn asymmetric_algorithm_headers_are_refused() {
    let payload = good_claims();
    for alg in [
        "RS256", "RS384", "RS512", "PS256", "PS512", "ES256", "ES384", "ES512", "ES256K", "EdDSA",
        "Ed25519",
    ] {
        let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
        let input = signing_input(header.as_bytes(), payload.as_bytes());
        // An HMAC with the shared key (a verifier that trusts the header
        // would be led to treat the key as something else).
        assert_not_valid(&sign_input(&input));
        // Signature-shaped garbage of the sizes these algorithms produce.
        for size in [64, 96, 132, 256, 512] {
            assert_not_valid(&format!("{input}.{}", b64(vec![0x5a; size])));
        }
    }
}

#[test]
fn key_confusion_with_a_public_key_as_the_hmac_secret_is_refused() {
    let payload = good_claims();
    let pem = PUBLIC_KEY_PEM.as_bytes();
    for header in [
        HS256_JWT,
        r#"{"alg":"RS256","typ":"JWT"}"#,
        r#"{"alg":"HS256","typ":"JWT","kid":"rsa-public-key"}"#,
    ] {
        let input = signing_input(header.as_bytes(), payload.as_bytes());
        assert_not_valid(&sign_input_with(pem, &input));
        // The PEM without its trailing newline, and as base64 DER.
        assert_not_valid(&sign_input_with(pem.trim_ascii_end(), &input));
        let der: String = PUBLIC_KEY_PEM
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        assert_not_valid(&sign_input_with(der.as_bytes(), &input));
    }
    // A verifier whose shared key *is* that PEM accepts its own tokens only:
    // the key comes from configuration, never from the token.
    let mut pem_settings = settings();
    pem_settings.secret = PUBLIC_KEY_PEM.as_bytes().to_vec();
    let pem_verifier = pem_settings.verifier().expect("a PEM is a long enough key");
    assert_refused_with(&pem_verifier, &connect_token(&payload), NOW, NOT_VALID);
}

#[test]
fn a_token_signed_with_another_key_is_refused() {
    let input = signing_input(HS256_JWT.as_bytes(), good_claims().as_bytes());
    for key in [
        ATTACKER_KEY.as_bytes(),
        &b""[..],
        &SECRET.as_bytes()[..32],
        SECRET.to_uppercase().as_bytes(),
    ] {
        assert_not_valid(&sign_input_with(key, &input));
    }
}

// ---------------------------------------------------------------------------
// Tampering: one bit anywhere breaks the signature
// ---------------------------------------------------------------------------

/// Every single-bit flip of one decoded segment, re-encoded, the rest kept.
fn each_bit_flipped(token: &str, segment: usize) -> Vec<String> {
    let bytes = unb64(token.split('.').nth(segment).expect("segment"));
    let mut tokens = Vec::with_capacity(bytes.len() * 8);
    for at in 0..bytes.len() {
        for bit in 0..8 {
            let mut flipped = bytes.clone();
            flipped[at] ^= 1 << bit;
            tokens.push(with_segment(token, segment, &b64(&flipped)));
        }
    }
    tokens
}

#[test]
fn a_header_with_one_bit_flipped_is_refused() {
    let good = connect_token(&good_claims());
    let flipped = each_bit_flipped(&good, 0);
    assert_eq!(flipped.len(), HS256_JWT.len() * 8);
    for token in flipped {
        assert_not_valid(&token);
    }
}

#[test]
fn a_payload_with_one_bit_flipped_is_refused() {
    let good = connect_token(&good_claims());
    for token in each_bit_flipped(&good, 1) {
        assert_not_valid(&token);
    }
}

#[test]
fn a_signature_with_one_bit_flipped_is_refused() {
    let good = connect_token(&good_claims());
    let flipped = each_bit_flipped(&good, 2);
    assert_eq!(flipped.len(), 32 * 8);
    for token in flipped {
        assert_not_valid(&token);
    }
}

#[test]
fn a_payload_rewritten_to_another_user_keeps_no_signature() {
    let good = connect_token(&good_claims());
    let forged = claims_with(&[
        ("sub", Some(r#""admin""#)),
        ("user", Some(r#"{"username":"admin"}"#)),
    ]);
    assert_not_valid(&with_segment(&good, 1, &b64(&forged)));
    // A later exp, under the old signature.
    let extended = claims_with(&[("exp", Some(&(NOW + 86_400).to_string()))]);
    assert_not_valid(&with_segment(&good, 1, &b64(&extended)));
}

#[test]
fn a_signature_with_nonzero_trailing_bits_is_refused() {
    // 32 bytes are 43 base64 characters whose last one carries 2 unused bits:
    // setting them gives another string for the same bytes. Only the
    // canonical one is the token.
    let good = connect_token(&good_claims());
    let signature = good.rsplit('.').next().expect("signature");
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = signature.as_bytes()[signature.len() - 1];
    let value = alphabet.iter().position(|&c| c == last).expect("base64url");
    assert_eq!(value & 0b11, 0, "the canonical encoding");
    for unused in 1..=3 {
        let mut other = signature.to_owned();
        other.pop();
        other.push(char::from(alphabet[value | unused]));
        assert_not_valid(&with_segment(&good, 2, &other));
    }
}

// ---------------------------------------------------------------------------
// Headers: crit refused; kid, jku, x5u, jwk ignored
// ---------------------------------------------------------------------------

#[test]
fn a_crit_header_in_any_form_is_refused() {
    for crit in [
        r#""crit":["exp"]"#,
        r#""crit":[]"#,
        r#""crit":null"#,
        r#""crit":"exp""#,
        r#""crit":{}"#,
        r#""crit":false"#,
        r#""crit":["b64"],"b64":false"#,
    ] {
        for header in [
            format!(r#"{{"alg":"HS256","typ":"JWT",{crit}}}"#),
            format!(r#"{{{crit},"alg":"HS256"}}"#),
        ] {
            assert_not_valid(&token(&header, &good_claims()));
        }
    }
}

#[test]
fn kid_jku_x5u_and_jwk_headers_are_ignored_on_a_valid_token() {
    let attacker_jwk = format!(r#"{{"kty":"oct","k":"{}"}}"#, b64(ATTACKER_KEY));
    let extras = [
        r#""kid":"../../../../etc/passwd""#.to_owned(),
        r#""kid":"' OR '1'='1""#.to_owned(),
        r#""kid":123"#.to_owned(),
        r#""jku":"https://attacker.invalid/jwks.json""#.to_owned(),
        r#""x5u":"https://attacker.invalid/cert.pem""#.to_owned(),
        format!(r#""jwk":{attacker_jwk}"#),
        r#""x5c":["MIIB"],"x5t":"abc","cty":"JWT""#.to_owned(),
        format!(
            r#""kid":"k","jku":"http://127.0.0.1:9/jwks","x5u":"http://127.0.0.1:9/x5u","jwk":{attacker_jwk}"#
        ),
    ];
    for extra in &extras {
        let header = format!(r#"{{"alg":"HS256","typ":"JWT",{extra}}}"#);
        assert_accepted(&token(&header, &good_claims()));
    }
}

#[test]
fn a_jku_or_jwk_naming_another_key_does_not_make_its_signature_valid() {
    let attacker_jwk = format!(r#"{{"kty":"oct","k":"{}"}}"#, b64(ATTACKER_KEY));
    for extra in [
        r#""jku":"https://attacker.invalid/jwks.json","kid":"attacker""#.to_owned(),
        r#""x5u":"https://attacker.invalid/cert.pem""#.to_owned(),
        format!(r#""jwk":{attacker_jwk}"#),
        r#""kid":"attacker""#.to_owned(),
    ] {
        let header = format!(r#"{{"alg":"HS256","typ":"JWT",{extra}}}"#);
        let input = signing_input(header.as_bytes(), good_claims().as_bytes());
        assert_not_valid(&sign_input_with(ATTACKER_KEY.as_bytes(), &input));
    }
}

#[test]
fn typ_may_be_absent_and_header_members_may_come_in_any_order() {
    for header in [
        r#"{"alg":"HS256"}"#,
        r#"{"typ":"JWT","alg":"HS256"}"#,
        r#"{ "alg" : "HS256" , "typ" : "JWT" }"#,
        "\n{\"alg\":\"HS256\"}\n",
    ] {
        assert_accepted(&token(header, &good_claims()));
    }
}

#[test]
fn a_header_that_is_not_a_json_object_is_refused() {
    for header in [
        r#"["HS256"]"#,
        r#""HS256""#,
        "null",
        "",
        "{",
        r#"{"alg":"HS256"}x"#,
        r#"{"alg":"HS256"}{"alg":"none"}"#,
        "\u{feff}{\"alg\":\"HS256\"}",
    ] {
        assert_not_valid(&token(header, &good_claims()));
    }
}

// ---------------------------------------------------------------------------
// Size
// ---------------------------------------------------------------------------

/// A validly signed token of exactly `len` bytes (padded with a `pad` claim).
fn signed_token_of_len(len: usize) -> String {
    let padded = |pad: usize| {
        connect_token(&claims_with(&[(
            "pad",
            Some(&format!(r#""{}""#, "x".repeat(pad))),
        )]))
    };
    // Each padding byte is 4/3 of a character: start near the answer.
    let estimate = (len.saturating_sub(padded(0).len())) * 3 / 4;
    (estimate.saturating_sub(4)..estimate + 4)
        .map(padded)
        .find(|token| token.len() == len)
        .expect("some padding gives that exact length")
}

#[test]
fn a_token_of_exactly_8_kib_is_accepted() {
    let token = signed_token_of_len(MAX_TOKEN_BYTES);
    assert_eq!(token.len(), 8 * 1024);
    assert_accepted(&token);
}

#[test]
fn tokens_over_8_kib_are_refused() {
    let just_over = signed_token_of_len(MAX_TOKEN_BYTES + 1);
    assert_not_valid(&just_over);
    let mebibyte = signed_token_of_len(1024 * 1024);
    assert_not_valid(&mebibyte);
    assert_not_valid(&"a".repeat(1024 * 1024));
    assert_not_valid(&".".repeat(1024 * 1024));
    assert_not_valid(&"é".repeat(MAX_TOKEN_BYTES / 2 + 1));
}

// ---------------------------------------------------------------------------
// Framing and base64url
// ---------------------------------------------------------------------------

#[test]
fn padded_base64_segments_are_refused() {
    // Each signed over exactly the text it carries: refused for its form.
    // Claims whose base64url text needs padding (its length is not 4n).
    let claims = (0..3)
        .map(|n| claims_with(&[("jti", Some(&format!(r#""{}""#, "j".repeat(n))))]))
        .find(|claims| claims.len() % 3 != 0)
        .expect("one of three lengths");
    let header = b64(HS256_JWT);
    let payload = b64(&claims);
    assert_accepted(&sign_input(&format!("{header}.{payload}")));
    let padded_payload = URL_SAFE.encode(&claims);
    assert_ne!(padded_payload, payload);
    for input in [
        format!("{header}=.{payload}"),
        format!("{header}.{padded_payload}"),
        format!("{header}.{payload}="),
        format!("{header}.{payload}=="),
        format!("{header}.{payload}===="),
        format!("{}.{padded_payload}", URL_SAFE.encode(HS256_JWT)),
    ] {
        assert_not_valid(&sign_input(&input));
    }
    let good = connect_token(&good_claims());
    assert_not_valid(&format!("{good}="));
    let signature = good.rsplit('.').next().expect("signature");
    assert_eq!(signature.len(), 43);
    assert_not_valid(&with_segment(&good, 2, &URL_SAFE.encode(unb64(signature))));
}

/// Good claims whose base64url text holds both `-` and `_`, and whose
/// signature does too: the two characters the standard alphabet spells `+`
/// and `/`.
fn token_using_the_url_safe_characters() -> String {
    (0..10_000)
        .map(|n| {
            connect_token(&claims_with(&[(
                "jti",
                Some(&format!(r#""{}~~~???{n}""#, "x".repeat(n % 3))),
            )]))
        })
        .find(|token| {
            let (head, signature) = token.rsplit_once('.').expect("three segments");
            let payload = head.split_once('.').expect("two segments").1;
            payload.contains('-')
                && payload.contains('_')
                && signature.contains('-')
                && signature.contains('_')
        })
        .expect("some jti gives both characters in both segments")
}

#[test]
fn the_standard_base64_alphabet_is_refused() {
    let good = token_using_the_url_safe_characters();
    assert_accepted(&good);
    let (input, signature) = good.rsplit_once('.').expect("three segments");
    // The payload in the standard alphabet, signed over exactly that text.
    let (header, payload) = input.split_once('.').expect("two segments");
    let standard_payload = STANDARD_NO_PAD.encode(unb64(payload));
    assert_ne!(standard_payload, payload);
    assert_not_valid(&sign_input(&format!("{header}.{standard_payload}")));
    // The signature in the standard alphabet (same bytes), padded or not.
    let bytes = unb64(signature);
    assert_not_valid(&format!("{input}.{}", STANDARD_NO_PAD.encode(&bytes)));
    assert_not_valid(&format!("{input}.{}", STANDARD.encode(&bytes)));
    // One character at a time.
    assert_not_valid(&format!("{input}.{}", signature.replacen('-', "+", 1)));
    assert_not_valid(&format!("{input}.{}", signature.replacen('_', "/", 1)));
}

#[test]
fn whitespace_anywhere_in_a_token_is_refused() {
    let good = connect_token(&good_claims());
    let (input, signature) = good.rsplit_once('.').expect("three segments");
    let (header, payload) = input.split_once('.').expect("two segments");
    for space in [" ", "\n", "\r\n", "\t", "\u{a0}", "\u{2028}"] {
        // Inside the header or payload, signed over exactly that text.
        let spaced_header = format!("{}{space}{}", &header[..10], &header[10..]);
        assert_not_valid(&sign_input(&format!("{spaced_header}.{payload}")));
        let spaced_payload = format!("{}{space}{}", &payload[..20], &payload[20..]);
        assert_not_valid(&sign_input(&format!("{header}.{spaced_payload}")));
        assert_not_valid(&sign_input(&format!("{header}{space}.{payload}")));
        // Inside or around the signature, and around the token.
        let spaced_signature = format!("{}{space}{}", &signature[..21], &signature[21..]);
        assert_not_valid(&format!("{input}.{spaced_signature}"));
        assert_not_valid(&format!("{good}{space}"));
        assert_not_valid(&format!("{space}{good}"));
        assert_not_valid(&format!("{input}.{space}{signature}"));
    }
}

#[test]
fn characters_outside_base64url_are_refused() {
    let good = connect_token(&good_claims());
    let (input, signature) = good.rsplit_once('.').expect("three segments");
    for bad in ["!", "*", "%2D", "\0", "é", "\u{fffd}", "\\", "\""] {
        assert_not_valid(&format!("{input}.{}{bad}", &signature[..42]));
        assert_not_valid(&format!("{input}.{bad}{}", &signature[1..]));
        let (header, payload) = input.split_once('.').expect("two segments");
        assert_not_valid(&sign_input(&format!("{header}{bad}.{payload}")));
        assert_not_valid(&sign_input(&format!("{header}.{payload}{bad}")));
    }
}

#[test]
fn a_token_of_other_than_three_segments_is_refused() {
    let good = connect_token(&good_claims());
    let (input, signature) = good.rsplit_once('.').expect("three segments");
    let (header, payload) = input.split_once('.').expect("two segments");
    for token in [
        format!("{good}.{signature}"),
        format!("{good}."),
        format!("{good}.."),
        format!("{good}.x.y"),
        format!("{header}.{payload}.{signature}.{signature}.{signature}"),
        // A JWE-shaped token: five segments.
        format!("{header}..{payload}.{signature}.{signature}"),
        input.to_owned(),
        header.to_owned(),
        format!("{header}{payload}{signature}"),
        format!("{header}.{payload}{signature}"),
    ] {
        assert_not_valid(&token);
    }
}

#[test]
fn empty_segments_are_refused() {
    let good = connect_token(&good_claims());
    let (input, signature) = good.rsplit_once('.').expect("three segments");
    let (header, payload) = input.split_once('.').expect("two segments");
    for token in [
        format!("{input}."),
        format!(".{payload}.{signature}"),
        format!("{header}..{signature}"),
        // Empty header or payload, signed over exactly that.
        sign_input(&format!(".{payload}")),
        sign_input(&format!("{header}.")),
        sign_input("."),
        String::new(),
    ] {
        assert_not_valid(&token);
    }
}

#[test]
fn a_token_of_only_dots_is_refused() {
    for dots in [1, 2, 3, 4, 5, MAX_TOKEN_BYTES, MAX_TOKEN_BYTES + 1] {
        assert_not_valid(&".".repeat(dots));
    }
}

// ---------------------------------------------------------------------------
// The bytes inside: UTF-8 JSON objects only
// ---------------------------------------------------------------------------

/// The good claims text with `from` replaced by these raw bytes.
fn claims_bytes_replacing(from: &str, to: &[u8]) -> Vec<u8> {
    let text = good_claims();
    let at = text.find(from).expect("present");
    [
        &text.as_bytes()[..at],
        to,
        &text.as_bytes()[at + from.len()..],
    ]
    .concat()
}

/// Each token that is not refused with `not valid token`, with the reason.
fn not_refused(tokens: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
    tokens
        .into_iter()
        .filter_map(|(what, token)| match verifier().verify(&token, NOW) {
            Err(error) if error.to_string() == NOT_VALID => None,
            Err(error) => Some(format!("{what}: refused as {error:?}")),
            Ok(claims) => Some(format!("{what}: accepted as {claims:?} ({token})")),
        })
        .collect()
}

#[test]
fn non_utf8_bytes_in_the_header_are_refused() {
    let headers: [&[u8]; 8] = [
        b"{\"alg\":\"HS256\",\"typ\":\"JW\xff\"}",
        b"{\"alg\":\"HS256\xc3\",\"typ\":\"JWT\"}",
        b"{\"al\xe9\":\"HS256\"}",
        b"{\"alg\":\"HS256\",\"\xff\":1}",
        b"{\"alg\":\"HS256\"}\xff",
        b"\xfe\xff\x00{\x00\"\x00a\x00l\x00g\x00\"",
        // In members the verifier ignores (kid): a UTF-16 surrogate written
        // in UTF-8 (CESU-8), and bytes that are no UTF-8 at all.
        b"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"\xed\xa0\x80\"}",
        b"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"\xff\xfe\"}",
    ];
    let tokens = headers
        .iter()
        .map(|header| {
            assert!(std::str::from_utf8(header).is_err());
            *header
        })
        // Not UTF-8 trouble but a byte-order mark: JSON texts have none.
        .chain([&b"\xef\xbb\xbf{\"alg\":\"HS256\"}"[..]])
        .map(|header| {
            (
                String::from_utf8_lossy(header).into_owned(),
                token_bytes(header, good_claims().as_bytes()),
            )
        });
    let accepted = not_refused(tokens);
    assert!(accepted.is_empty(), "{accepted:#?}");
}

#[test]
fn non_utf8_bytes_in_the_payload_are_refused() {
    let cases: [(&str, &[u8]); 11] = [
        ("\"gonzalo\"", b"\"gonz\xffalo\""),
        (
            "{\"username\":\"gonzalo\"}",
            b"{\"username\":\"gonz\xffalo\"}",
        ),
        ("\"web-frontend\"", b"\"web-fr\xc3ontend\""),
        ("\"socket-server\"", b"\"socket-server\xe2\x82\""),
        // A UTF-16 surrogate written in UTF-8 (CESU-8), and an overlong NUL.
        ("\"gonzalo\"", b"\"gonzalo\xed\xa0\x80\""),
        ("\"gonzalo\"", b"\"gonzalo\xc0\x80\""),
        ("\"s3ss10n-0f-th3-l0g1n\"", b"\"s3ss10n-\xff\xfe\""),
        ("\"jti\"", b"\"jt\xff\""),
        // In members the verifier ignores: jti, and user's other members.
        ("\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\"", b"\"\xff\""),
        ("\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\"", b"\"\xed\xa0\x80\""),
        (
            "{\"username\":\"gonzalo\"}",
            b"{\"username\":\"gonzalo\",\"role\":\"\xff\"}",
        ),
    ];
    let good = good_claims();
    let tokens = cases
        .iter()
        .map(|(from, to)| claims_bytes_replacing(from, to))
        // A byte after the object.
        .chain([[good.as_bytes(), b"\xff"].concat()])
        .inspect(|payload| assert!(std::str::from_utf8(payload).is_err()))
        // Not UTF-8 trouble but a byte-order mark: JSON texts have none.
        .chain([[&b"\xef\xbb\xbf"[..], good.as_bytes()].concat()])
        .map(|payload| {
            (
                String::from_utf8_lossy(&payload).into_owned(),
                token_bytes(HS256_JWT.as_bytes(), &payload),
            )
        });
    let accepted = not_refused(tokens);
    assert!(accepted.is_empty(), "{accepted:#?}");
}

#[test]
fn lone_surrogate_escapes_in_checked_claims_are_refused() {
    for (claim, value) in [
        ("sub", r#""gonzalo\ud800""#),
        ("sub", r#""\udc00gonzalo""#),
        ("iss", r#""web-frontend\ud800""#),
        ("aud", r#""socket-server\udfff""#),
        ("sid", r#""\ud800\ud800""#),
        ("user", r#"{"username":"gonzalo\ud800"}"#),
    ] {
        assert_not_valid(&connect_token(&claims_with(&[(claim, Some(value))])));
    }
}

#[test]
fn a_payload_that_is_not_a_json_object_is_refused() {
    let good = good_claims();
    for payload in [
        "[]".to_owned(),
        r#"["gonzalo",1800000300]"#.to_owned(),
        r#""gonzalo""#.to_owned(),
        "null".to_owned(),
        "1800000300".to_owned(),
        String::new(),
        "{".to_owned(),
        good[..good.len() - 1].to_owned(),
        format!("{good}x"),
        format!("{good}{good}"),
        format!("{good},{{}}"),
        format!("[{good}]"),
        good.replacen(',', ",,", 1),
        good.replacen('}', ",}", 1),
        good.replace('"', "'"),
        format!("/* */{good}"),
    ] {
        assert_not_valid(&connect_token(&payload));
    }
}

/// A token that is under the size limit, so that what is tested is the parser.
#[track_caller]
fn fitting(token: String) -> String {
    assert!(token.len() <= MAX_TOKEN_BYTES, "{} bytes", token.len());
    token
}

#[test]
fn deeply_nested_json_never_overflows_the_stack() {
    // As deep as fits in 8 KiB: 2,000 arrays, or 700 objects.
    let deep_arrays = format!("{}{}", "[".repeat(2_000), "]".repeat(2_000));
    let deep_objects = format!("{}1{}", r#"{"a":"#.repeat(700), "}".repeat(700));
    // Claims that are checked: refused.
    for claim in ["sub", "exp", "iat", "iss", "aud", "nbf", "sid", "user"] {
        for value in [&deep_arrays, &deep_objects] {
            assert_not_valid(&fitting(connect_token(&claims_with(&[(
                claim,
                Some(value),
            )]))));
        }
    }
    assert_not_valid(&fitting(connect_token(&claims_with(&[(
        "user",
        Some(&format!(r#"{{"username":{deep_arrays}}}"#)),
    )]))));
    // A header nested that deep, signed.
    assert_not_valid(&fitting(token(&deep_arrays, &good_claims())));
    // Claims and header members that are ignored: no crash, whatever the answer.
    for value in [&deep_arrays, &deep_objects] {
        for token in [
            connect_token(&claims_with(&[("jti", Some(value))])),
            connect_token(&claims_with(&[(
                "user",
                Some(&format!(r#"{{"username":"gonzalo","extra":{value}}}"#)),
            )])),
            token(
                &format!(r#"{{"alg":"HS256","kid":{value}}}"#),
                &good_claims(),
            ),
        ] {
            let _ = verifier().verify(&fitting(token), NOW);
        }
    }
}

// ---------------------------------------------------------------------------
// Duplicate keys: ambiguous, so refused
// ---------------------------------------------------------------------------

#[test]
fn a_duplicate_claim_is_refused() {
    let good = good_claims();
    for (claim, first, second) in [
        ("sub", r#""gonzalo""#, r#""admin""#),
        ("sub", r#""gonzalo""#, r#""gonzalo""#),
        (
            "exp",
            &*(NOW + 300).to_string(),
            &*(NOW + 86_400).to_string(),
        ),
        ("exp", &*(NOW + 300).to_string(), &*(NOW + 300).to_string()),
        ("iat", &*NOW.to_string(), &*(NOW - 1).to_string()),
        ("iss", r#""web-frontend""#, r#""elsewhere""#),
        ("aud", r#""socket-server""#, r#""elsewhere""#),
        (
            "sid",
            &*format!(r#""{SESSION}""#),
            r#""another-session-0123""#,
        ),
        (
            "user",
            r#"{"username":"gonzalo"}"#,
            r#"{"username":"admin"}"#,
        ),
    ] {
        let original = format!(r#""{claim}":{first}"#);
        assert!(good.contains(&original), "{original}");
        let doubled = good.replacen(&original, &format!(r#"{original},"{claim}":{second}"#), 1);
        assert_not_valid(&connect_token(&doubled));
        // The duplicate first, the original second.
        let doubled = good.replacen(&original, &format!(r#""{claim}":{second},{original}"#), 1);
        assert_not_valid(&connect_token(&doubled));
    }
    // nbf, which the good claims lack.
    let with_nbf = claims_with(&[("nbf", Some(&NOW.to_string()))]);
    let doubled = with_nbf.replacen(
        &format!(r#""nbf":{NOW}"#),
        &format!(r#""nbf":{NOW},"nbf":{}"#, NOW + 3_600),
        1,
    );
    assert_not_valid(&connect_token(&doubled));
    // username inside user.
    let doubled = claims_with(&[("user", Some(r#"{"username":"gonzalo","username":"admin"}"#))]);
    assert_not_valid(&connect_token(&doubled));
}

#[test]
fn a_duplicate_claim_spelled_with_escapes_is_refused() {
    for (claim, escaped, value) in [
        ("sub", r#"s\u0075b"#, r#""admin""#),
        ("exp", r#"\u0065xp"#, "4000000000"),
        ("iss", r#"\u0069\u0073\u0073"#, r#""elsewhere""#),
        ("sid", r#"si\u0064"#, r#""another-session-0123""#),
    ] {
        let payload = format!(
            "{},\"{escaped}\":{value}}}",
            &good_claims()[..good_claims().len() - 1]
        );
        assert!(payload.contains(escaped), "{claim}");
        assert_not_valid(&connect_token(&payload));
    }
}

#[test]
fn a_duplicate_header_member_is_refused() {
    for header in [
        r#"{"alg":"HS256","alg":"none","typ":"JWT"}"#,
        r#"{"alg":"none","alg":"HS256","typ":"JWT"}"#,
        r#"{"alg":"HS256","alg":"HS256","typ":"JWT"}"#,
        r#"{"alg":"HS256","\u0061lg":"none"}"#,
        r#"{"alg":"HS256","typ":"JWT","typ":"JWT"}"#,
        r#"{"alg":"HS256","crit":null,"crit":null}"#,
    ] {
        assert_not_valid(&token(header, &good_claims()));
    }
}

// ---------------------------------------------------------------------------
// Claims of the wrong type
// ---------------------------------------------------------------------------

#[test]
fn every_claim_of_the_wrong_type_is_refused_as_not_valid() {
    let cases: &[(&str, &[&str])] = &[
        (
            "sub",
            &[
                "42",
                "null",
                "true",
                "[]",
                r#"["gonzalo"]"#,
                "{}",
                r#"{"username":"gonzalo"}"#,
                r#""""#,
            ],
        ),
        (
            "exp",
            &[
                r#""1800000300""#,
                "true",
                "false",
                "null",
                "[]",
                "[1800000300]",
                "{}",
                r#""""#,
                "1e400",
            ],
        ),
        (
            "iat",
            &[
                r#""1800000000""#,
                "true",
                "null",
                "[1800000000]",
                "{}",
                "-1e400",
            ],
        ),
        (
            "iss",
            &[
                "1",
                "null",
                "true",
                r#"["web-frontend"]"#,
                r#"{"iss":"web-frontend"}"#,
            ],
        ),
        (
            "aud",
            &[
                "1",
                "null",
                "true",
                "{}",
                r#"{"aud":"socket-server"}"#,
                "[1,2]",
                "[null]",
                r#"["socket-server",1]"#,
                r#"[["socket-server"]]"#,
                "[]",
            ],
        ),
        ("nbf", &[r#""1800000000""#, "true", "[]", "{}", "1e400"]),
        (
            "user",
            &[
                "[]",
                r#"["gonzalo"]"#,
                r#""gonzalo""#,
                "42",
                "null",
                "true",
                "{}",
                r#"{"username":1}"#,
                r#"{"username":null}"#,
                r#"{"username":["gonzalo"]}"#,
                r#"{"name":"gonzalo"}"#,
            ],
        ),
        (
            "sid",
            &["1", "true", "[]", r#"["s3ss10n-0f-th3-l0g1n"]"#, "{}"],
        ),
    ];
    for (claim, values) in cases {
        for value in *values {
            let token = connect_token(&claims_with(&[(claim, Some(value))]));
            match verifier().verify(&token, NOW) {
                Ok(accepted) => panic!("{claim}: {value} accepted as {accepted:?}"),
                Err(error) => assert_eq!(
                    error.to_string(),
                    NOT_VALID,
                    "{claim}: {value} ({})",
                    error.reason()
                ),
            }
        }
    }
}

#[test]
fn an_exp_of_the_wrong_type_is_not_valid_even_when_a_number_would_be_expired() {
    // "token expired" is for a readable, passed exp only.
    for value in [r#""1""#, "null", "true", "[1]"] {
        let token = connect_token(&claims_with(&[("exp", Some(value))]));
        assert_not_valid(&token);
    }
}

#[test]
fn each_required_claim_missing_is_refused() {
    for claim in ["sub", "exp", "iat", "iss", "aud"] {
        assert_not_valid(&connect_token(&claims_with(&[(claim, None)])));
    }
    assert_not_valid(&connect_token("{}"));
}

#[test]
fn optional_claims_may_be_absent() {
    let claims = assert_accepted(&connect_token(&claims_with(&[
        ("user", None),
        ("jti", None),
        ("sid", None),
    ])));
    assert_eq!(claims.session_id, None);
}

#[test]
fn an_audience_array_holding_ours_is_accepted_and_one_without_it_refused() {
    assert_accepted(&connect_token(&claims_with(&[(
        "aud",
        Some(r#"["elsewhere","socket-server"]"#),
    )])));
    for aud in [
        r#"["elsewhere"]"#,
        r#""Socket-Server""#,
        r#""socket-server ""#,
        r#""socket-server#revocations""#,
        r#"["socket-server#revocations"]"#,
    ] {
        assert_not_valid(&connect_token(&claims_with(&[("aud", Some(aud))])));
    }
}

#[test]
fn a_wrong_issuer_is_refused() {
    for iss in [
        r#""elsewhere""#,
        r#""Web-Frontend""#,
        r#""web-frontend ""#,
        r#""""#,
    ] {
        assert_not_valid(&connect_token(&claims_with(&[("iss", Some(iss))])));
    }
}

#[test]
fn numeric_dates_at_the_edges_of_f64_never_panic() {
    // Far future: valid, and reported saturated rather than wrapped.
    let claims = assert_accepted(&connect_token(&claims_with(&[("exp", Some("1e308"))])));
    assert_eq!(claims.expires_at, i64::MAX);
    let claims = assert_accepted(&connect_token(&claims_with(&[(
        "exp",
        Some("18446744073709551616"),
    )])));
    assert_eq!(claims.expires_at, i64::MAX);
    let claims = assert_accepted(&connect_token(&claims_with(&[("iat", Some("-1e308"))])));
    assert_eq!(claims.issued_at, i64::MIN);
    // Far past: expired.
    assert_expired(&connect_token(&claims_with(&[("exp", Some("-1e308"))])));
    assert_expired(&connect_token(&claims_with(&[("exp", Some("0"))])));
    assert_expired(&connect_token(&claims_with(&[("exp", Some("-0.0"))])));
    // Far future iat and nbf: refused.
    for (claim, value) in [
        ("iat", "1e308"),
        ("nbf", "1e308"),
        ("iat", "9223372036854775808"),
    ] {
        assert_not_valid(&connect_token(&claims_with(&[(claim, Some(value))])));
    }
    // Any clock value.
    let token = connect_token(&good_claims());
    for now in [i64::MIN, -1, 0, i64::MAX] {
        let _ = verifier().verify(&token, now);
    }
}

// ---------------------------------------------------------------------------
// Time: exp, nbf, iat with the leeway
// ---------------------------------------------------------------------------

#[test]
fn exp_at_now_is_expired_without_leeway() {
    let strict = settings_with_leeway(0).verifier().expect("verifier");
    let at_now = connect_token(&claims_with(&[("exp", Some(&NOW.to_string()))]));
    assert_refused_with(&strict, &at_now, NOW, EXPIRED);
    let next_second = connect_token(&claims_with(&[("exp", Some(&(NOW + 1).to_string()))]));
    assert_eq!(
        strict.verify(&next_second, NOW).map(|c| c.username),
        Ok("gonzalo".to_owned())
    );
}

#[test]
fn exp_is_checked_with_the_leeway() {
    // At exp itself the leeway still covers the token…
    assert_accepted(&connect_token(&claims_with(&[(
        "exp",
        Some(&NOW.to_string()),
    )])));
    // …up to now - leeway + 1…
    let last_second = (NOW - LEEWAY + 1).to_string();
    assert_accepted(&connect_token(&claims_with(&[("exp", Some(&last_second))])));
    let last_fraction = format!("{}.5", NOW - LEEWAY);
    assert_accepted(&connect_token(&claims_with(&[(
        "exp",
        Some(&last_fraction),
    )])));
    // …and from now - leeway on it is expired.
    for exp in [NOW - LEEWAY, NOW - LEEWAY - 1, NOW - 3_600] {
        assert_expired(&connect_token(&claims_with(&[(
            "exp",
            Some(&exp.to_string()),
        )])));
    }
}

#[test]
fn nbf_in_the_future_beyond_the_leeway_is_refused_and_within_it_accepted() {
    for nbf in [NOW - 3_600, NOW, NOW + 1, NOW + LEEWAY] {
        assert_accepted(&connect_token(&claims_with(&[(
            "nbf",
            Some(&nbf.to_string()),
        )])));
    }
    for nbf in [
        (NOW + LEEWAY + 1).to_string(),
        format!("{}.5", NOW + LEEWAY),
        (NOW + 3_600).to_string(),
    ] {
        assert_not_valid(&connect_token(&claims_with(&[("nbf", Some(&nbf))])));
    }
}

#[test]
fn iat_in_the_future_beyond_the_leeway_is_refused_and_within_it_accepted() {
    for iat in [NOW - 3_600, NOW + 1, NOW + LEEWAY] {
        assert_accepted(&connect_token(&claims_with(&[(
            "iat",
            Some(&iat.to_string()),
        )])));
    }
    for iat in [
        (NOW + LEEWAY + 1).to_string(),
        format!("{}.5", NOW + LEEWAY),
        (NOW + 3_600).to_string(),
    ] {
        assert_not_valid(&connect_token(&claims_with(&[("iat", Some(&iat))])));
    }
}

#[test]
fn an_expired_token_with_any_other_fault_is_not_valid_rather_than_expired() {
    fn expired(edits: &[(&str, Option<&str>)]) -> String {
        let past = (NOW - 3_600).to_string();
        let mut all = vec![("exp", Some(past.as_str()))];
        all.extend_from_slice(edits);
        claims_with(&all)
    }
    // The control: expired alone.
    assert_expired(&connect_token(&expired(&[])));
    let future = (NOW + 3_600).to_string();
    for payload in [
        expired(&[("iss", Some(r#""elsewhere""#))]),
        expired(&[("aud", Some(r#""elsewhere""#))]),
        expired(&[("sub", None)]),
        expired(&[("iat", None)]),
        expired(&[("iat", Some(&future))]),
        expired(&[("nbf", Some(&future))]),
        expired(&[("user", Some(r#"{"username":"admin"}"#))]),
        expired(&[("sid", Some("7"))]),
    ] {
        assert_not_valid(&connect_token(&payload));
    }
    let input = signing_input(HS256_JWT.as_bytes(), expired(&[]).as_bytes());
    assert_not_valid(&sign_input_with(ATTACKER_KEY.as_bytes(), &input));
    assert_not_valid(&format!("{input}."));
    assert_not_valid(&token(r#"{"alg":"none"}"#, &expired(&[])));
    assert_not_valid(&token(r#"{"alg":"HS256","crit":[]}"#, &expired(&[])));
    assert_not_valid(&token(r#"{"alg":"HS512"}"#, &expired(&[])));
}

#[test]
fn a_present_user_must_name_the_same_user_as_sub() {
    for user in [
        r#"{"username":"admin"}"#,
        r#"{"username":"Gonzalo"}"#,
        r#"{"username":"gonzalo "}"#,
        r#"{"username":""}"#,
    ] {
        assert_not_valid(&connect_token(&claims_with(&[("user", Some(user))])));
    }
    assert_accepted(&connect_token(&claims_with(&[(
        "user",
        Some(r#"{"id":7,"username":"gonzalo","roles":["admin"]}"#),
    )])));
}

#[test]
fn an_empty_sub_is_refused() {
    assert_not_valid(&connect_token(&claims_with(&[
        ("sub", Some(r#""""#)),
        ("user", Some(r#"{"username":""}"#)),
    ])));
}

// ---------------------------------------------------------------------------
// The revocation channel: a notice is never a connect token, and the reverse
// ---------------------------------------------------------------------------

/// The channel's key, derived as `revocation.rs` documents it: HMAC-SHA256 of
/// a fixed label under the shared key. Rebuilt here so that notices can be
/// forged layer by layer; `the_channel_key_is_derived_from_the_shared_key`
/// fails first if the derivation ever changes.
fn channel_key() -> Vec<u8> {
    hs256(SECRET.as_bytes(), b"authbridge revocation channel v1")
}

fn revocation_header() -> String {
    format!(r#"{{"alg":"HS256","typ":"{REVOCATION_TYP}"}}"#)
}

fn notice_claims(aud: &str) -> String {
    format!(
        r#"{{"iss":"web-frontend","aud":"{aud}","iat":{NOW},"exp":{},"revoked":[{{"sid":"{SESSION}","until":{}}}]}}"#,
        NOW + 60,
        NOW + 305
    )
}

fn notice_token(key: &[u8], header: &str, payload: &str) -> String {
    sign_input_with(key, &signing_input(header.as_bytes(), payload.as_bytes()))
}

fn revocation_verifier() -> RevocationVerifier {
    settings().revocation_verifier().expect("verifier")
}

fn revoked() -> Vec<Revocation> {
    vec![Revocation {
        sid: SESSION.into(),
        until: NOW + 305,
    }]
}

#[track_caller]
fn assert_notice_refused(notice: &str, now: i64) -> Invalid {
    match revocation_verifier().verify(notice, now) {
        Ok(revoked) => panic!(
            "notice {} must be refused, was accepted revoking {revoked:?}",
            shown(notice)
        ),
        Err(reason) => {
            // Were it ever shown to a client, it is one of the two messages.
            assert_eq!(VerifyError::from(reason).to_string(), NOT_VALID);
            reason
        }
    }
}

#[test]
fn the_channel_key_is_derived_from_the_shared_key() {
    let forged = notice_token(
        &channel_key(),
        &revocation_header(),
        &notice_claims("socket-server#revocations"),
    );
    assert_eq!(
        revocation_verifier().verify(&forged, NOW),
        Ok(revoked()),
        "the revocation key derivation changed: update channel_key() here"
    );
}

#[test]
fn a_revocation_notice_is_refused_as_a_connect_token() {
    let notice = settings()
        .revocation_signer()
        .expect("signer")
        .sign(&revoked(), NOW)
        .expect("notice");
    for now in [NOW, NOW + 1, NOW + 59] {
        assert_refused_with(&verifier(), &notice, now, NOT_VALID);
    }
    // Even a notice that also carries every connect claim, under the notice's
    // key and typ.
    let hybrid = claims_with(&[
        ("aud", Some(r#""socket-server#revocations""#)),
        (
            "revoked",
            Some(&format!(r#"[{{"sid":"{SESSION}","until":{NOW}}}]"#)),
        ),
    ]);
    assert_not_valid(&notice_token(&channel_key(), &revocation_header(), &hybrid));
    // And with the connect audience but the notice's key.
    assert_not_valid(&notice_token(
        &channel_key(),
        &revocation_header(),
        &good_claims(),
    ));
    assert_not_valid(&notice_token(&channel_key(), HS256_JWT, &good_claims()));
}

#[test]
fn a_token_with_the_channel_audience_is_refused_as_a_connect_token() {
    // Signed with the shared key itself: the audience alone keeps it out.
    for aud in [
        r#""socket-server#revocations""#,
        r#"["socket-server#revocations"]"#,
    ] {
        assert_not_valid(&connect_token(&claims_with(&[("aud", Some(aud))])));
    }
}

#[test]
fn a_connect_token_is_refused_by_the_revocation_verifier() {
    let issued = settings()
        .issuer()
        .expect("issuer")
        .issue("gonzalo", SESSION, NOW)
        .expect("token");
    assert_eq!(assert_notice_refused(&issued, NOW), Invalid::WrongType);
    assert_notice_refused(&connect_token(&good_claims()), NOW);
    // With the notice's typ, signed with the shared key: not the channel's key.
    let retyped = notice_token(
        SECRET.as_bytes(),
        &revocation_header(),
        &notice_claims("socket-server#revocations"),
    );
    assert_eq!(assert_notice_refused(&retyped, NOW), Invalid::BadSignature);
}

#[test]
fn a_notice_needs_the_notice_typ_even_with_the_channel_key() {
    let payload = notice_claims("socket-server#revocations");
    for header in [
        HS256_JWT.to_owned(),
        r#"{"alg":"HS256"}"#.to_owned(),
        r#"{"alg":"HS256","typ":null}"#.to_owned(),
        r#"{"alg":"HS256","typ":"AUTHBRIDGE-REVOCATION+JWT"}"#.to_owned(),
        format!(r#"{{"alg":"HS256","typ":"JWT","typ":"{REVOCATION_TYP}"}}"#),
        format!(r#"{{"alg":"HS256","typ":"{REVOCATION_TYP}","typ":"{REVOCATION_TYP}"}}"#),
    ] {
        assert_notice_refused(&notice_token(&channel_key(), &header, &payload), NOW);
    }
}

#[test]
fn a_notice_needs_the_channel_audience_even_with_the_channel_key_and_typ() {
    for aud in ["socket-server", "elsewhere", ""] {
        let notice = notice_token(&channel_key(), &revocation_header(), &notice_claims(aud));
        assert_eq!(assert_notice_refused(&notice, NOW), Invalid::WrongAudience);
    }
}

#[test]
fn hostile_notices_are_refused() {
    let key = channel_key();
    let payload = notice_claims("socket-server#revocations");
    let input = signing_input(revocation_header().as_bytes(), payload.as_bytes());
    for alg in ["none", "None", "NONE", "nOnE", "HS384", "HS512", "RS256"] {
        let header = format!(r#"{{"alg":"{alg}","typ":"{REVOCATION_TYP}"}}"#);
        let input = signing_input(header.as_bytes(), payload.as_bytes());
        assert_notice_refused(&format!("{input}."), NOW);
        assert_notice_refused(&sign_input_with(&key, &input), NOW);
    }
    let crit = format!(r#"{{"alg":"HS256","typ":"{REVOCATION_TYP}","crit":[]}}"#);
    assert_notice_refused(&notice_token(&key, &crit, &payload), NOW);
    assert_notice_refused(&sign_input_with(ATTACKER_KEY.as_bytes(), &input), NOW);
    assert_notice_refused(
        &format!("{input}.{}", b64(hs512(&key, input.as_bytes()))),
        NOW,
    );
    for token in each_bit_flipped(&sign_input_with(&key, &input), 1) {
        assert_notice_refused(&token, NOW);
    }
    // Duplicate and mistyped members of the notice.
    for bad in [
        payload.replacen(
            r#""iss":"web-frontend""#,
            r#""iss":"web-frontend","iss":"x""#,
            1,
        ),
        payload.replacen(r#""revoked":["#, r#""revoked":[],"revoked":["#, 1),
        payload
            .replacen(r#""revoked":["#, r#""revoked":"#, 1)
            .replacen("}]}", "}}", 1),
        payload.replacen(&format!(r#""exp":{}"#, NOW + 60), r#""exp":"soon""#, 1),
        payload.replacen(&format!(r#""until":{}"#, NOW + 305), r#""until":null"#, 1),
        payload.replacen(SESSION, "\\ud800", 1),
        "[]".to_owned(),
    ] {
        assert_notice_refused(&notice_token(&key, &revocation_header(), &bad), NOW);
    }
    // Stale and early.
    let notice = sign_input_with(&key, &input);
    assert_eq!(
        assert_notice_refused(&notice, NOW + 60 + LEEWAY),
        Invalid::Stale
    );
    assert_eq!(
        assert_notice_refused(&notice, NOW - LEEWAY - 1),
        Invalid::IssuedInFuture
    );
    // Oversize, before anything else.
    assert_notice_refused(&"a".repeat(MAX_NOTICE_BYTES + 1), NOW);
}

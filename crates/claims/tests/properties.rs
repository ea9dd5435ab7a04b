//! Properties of the verifiers over generated input: no input makes them
//! panic, nothing unsigned gets through, an issued token always comes back as
//! its user, one changed byte always breaks it, and a signed payload is
//! accepted exactly when the contract's rules (written out again here, as a
//! model) say so.
//!
//! 256 cases per property unless `PROPTEST_CASES` says otherwise.

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use claims::{
    REVOCATION_TYP, Revocation, RevocationSigner, RevocationVerifier, TokenIssuer, TokenVerifier,
    VerifiedClaims,
};
use hmac::{Hmac, KeyInit as _, Mac as _};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use testkit::Hs256Fixture;

const SECRET: &str = "0123456789abcdef0123456789abcdef-property-test-key";
const NOW: i64 = 1_800_000_000;
const LEEWAY: i64 = 5;
const HS256_JWT: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

fn settings() -> Hs256Fixture {
    Hs256Fixture::new(SECRET).with_leeway(LEEWAY.unsigned_abs())
}

static VERIFIER: LazyLock<TokenVerifier> =
    LazyLock::new(|| settings().verifier().expect("valid settings"));
static ISSUER: LazyLock<TokenIssuer> =
    LazyLock::new(|| settings().issuer().expect("valid settings"));
static REVOCATIONS: LazyLock<RevocationVerifier> =
    LazyLock::new(|| settings().revocation_verifier().expect("valid settings"));
static NOTICES: LazyLock<RevocationSigner> =
    LazyLock::new(|| settings().revocation_signer().expect("valid settings"));

/// Failures print their minimal case; no regression file is written into the
/// source tree.
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `base64url(header).base64url(payload)` signed with HS256 and `key`.
fn signed_with(key: &[u8], header: &[u8], payload: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(mac.finalize().into_bytes()))
}

fn signed(header: &[u8], payload: &[u8]) -> String {
    signed_with(SECRET.as_bytes(), header, payload)
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// Any string, newlines and all.
fn any_text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("(?s).{{0,{max}}}")).expect("a regex")
}

/// Arbitrary bytes, made into a string the lossy way.
fn lossy_bytes() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<u8>(), 0..600)
        .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// One to four dot-separated segments of base64url-ish characters (and the
/// few a sloppy encoder would write: `+`, `/`, `=`, a space).
fn dotted_segments() -> impl Strategy<Value = String> {
    proptest::collection::vec("[A-Za-z0-9_+/= -]{0,80}", 1..=4).prop_map(|parts| parts.join("."))
}

/// Base64url of arbitrary bytes in each segment: framing and base64 pass, so
/// the header's JSON and the signature are what is tried.
fn encoded_segments() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..=4)
        .prop_map(|parts| parts.iter().map(b64).collect::<Vec<_>>().join("."))
}

/// The real header, then anything.
fn after_a_real_header() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just(b64(HS256_JWT)),
            Just(b64(format!(
                r#"{{"alg":"HS256","typ":"{REVOCATION_TYP}"}}"#
            ))),
        ],
        proptest::collection::vec("[A-Za-z0-9_-]{0,64}", 0..=3),
    )
        .prop_map(|(header, rest)| {
            std::iter::once(header)
                .chain(rest)
                .collect::<Vec<_>>()
                .join(".")
        })
}

/// Every kind of unsigned input above.
fn unsigned_input() -> impl Strategy<Value = String> {
    prop_oneof![
        any_text(200),
        lossy_bytes(),
        dotted_segments(),
        encoded_segments(),
        after_a_real_header(),
    ]
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        any_text(12).prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![Just("username".to_owned()), any_text(6)],
                inner,
                0..4
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A claim: mostly `good`, sometimes a near miss, absent, or anything at all.
fn claim(good: Value, near: Vec<Value>) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        6 => Just(Some(good)),
        1 => Just(None),
        2 => proptest::sample::select(near).prop_map(Some),
        1 => any_json().prop_map(Some),
    ]
}

/// A NumericDate close to `NOW + offset`: whole and fractional seconds around
/// the leeway's edges.
fn date_near(offset: i64) -> impl Strategy<Value = Value> {
    prop_oneof![
        (-12_i64..=12).prop_map(move |d| json!(NOW + offset + d)),
        (-12.0_f64..12.0).prop_map(move |d| json!((NOW + offset) as f64 + d)),
        (-2_i64..=2).prop_map(move |d| json!((NOW + offset + d) as f64 + 0.5)),
    ]
}

fn date_claim(offset: i64) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        6 => date_near(offset).prop_map(Some),
        1 => Just(None),
        1 => any_json().prop_map(Some),
    ]
}

/// Claims sets around a good one, every claim varied independently.
fn claims_sets() -> impl Strategy<Value = Map<String, Value>> {
    let names = (
        claim(
            json!("gonzalo"),
            vec![json!("admin"), json!(""), json!("Gonzalo"), Value::Null],
        ),
        claim(
            json!({"username": "gonzalo"}),
            vec![
                json!({"username": "admin"}),
                json!({}),
                json!({"username": "gonzalo", "id": 7}),
                json!({"username": 1}),
                Value::Null,
                json!("gonzalo"),
            ],
        ),
        claim(
            json!("web-frontend"),
            vec![
                json!("web-frontend "),
                json!("elsewhere"),
                json!(["web-frontend"]),
            ],
        ),
        claim(
            json!("socket-server"),
            vec![
                json!(["elsewhere", "socket-server"]),
                json!(["elsewhere"]),
                json!([]),
                json!(["socket-server", 1]),
                json!("socket-server#revocations"),
            ],
        ),
        claim(
            json!("s3ss10n-0f-th3-l0g1n"),
            vec![Value::Null, json!(7), json!("")],
        ),
    );
    let dates = (
        date_claim(0),
        date_claim(-LEEWAY),
        prop_oneof![3 => Just(None), 2 => date_claim(LEEWAY)],
        proptest::option::of(any_json()),
    );
    let too_many: Vec<Value> = (0..101).map(|i| json!(format!("room:{i}"))).collect();
    let rooms = claim(
        json!(["team:42", "org:7:*"]),
        vec![
            Value::Null,
            json!([]),
            json!("team:42"),
            json!([1]),
            json!([""]),
            json!(["*"]),
            json!(["a*b"]),
            json!([format!("{}*", "x".repeat(100))]),
            json!(["x".repeat(101)]),
            json!(["line\nbreak"]),
            Value::Array(too_many),
        ],
    );
    (names, dates, rooms).prop_map(
        |((sub, user, iss, aud, sid), (iat, exp, nbf, jti), rooms)| {
            [
                ("rooms", rooms),
                ("sub", sub),
                ("user", user),
                ("iss", iss),
                ("aud", aud),
                ("sid", sid),
                ("iat", iat),
                ("exp", exp),
                ("nbf", nbf),
                ("jti", jti),
            ]
            .into_iter()
            .filter_map(|(name, value)| Some((name.to_owned(), value?)))
            .collect()
        },
    )
}

// ---------------------------------------------------------------------------
// The model: the contract's rules, read off a parsed claims set
// ---------------------------------------------------------------------------

const NOT_VALID: &str = "not valid token";
const EXPIRED: &str = "token expired";

/// What the verifier must answer for these claims at `NOW`, signed properly.
fn model(claims: &Map<String, Value>) -> Result<VerifiedClaims, &'static str> {
    let now = NOW as f64;
    let leeway = LEEWAY as f64;
    let string = |name: &str| match claims.get(name) {
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err(NOT_VALID),
    };
    let number = |name: &str| match claims.get(name) {
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or(NOT_VALID),
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err(NOT_VALID),
    };
    let sub = string("sub")?
        .filter(|sub| !sub.is_empty())
        .ok_or(NOT_VALID)?;
    let exp = number("exp")?.ok_or(NOT_VALID)?;
    let iat = number("iat")?.ok_or(NOT_VALID)?;
    let nbf = number("nbf")?;
    let iss = string("iss")?.ok_or(NOT_VALID)?;
    let sid = string("sid")?;
    let aud_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == "socket-server",
        Some(Value::Array(auds)) => {
            if !auds.iter().all(Value::is_string) {
                return Err(NOT_VALID);
            }
            auds.iter().any(|aud| aud == "socket-server")
        }
        _ => return Err(NOT_VALID),
    };
    if iss != "web-frontend" || !aud_ok {
        return Err(NOT_VALID);
    }
    if iat > now + leeway || nbf.is_some_and(|nbf| nbf > now + leeway) {
        return Err(NOT_VALID);
    }
    if let Some(user) = claims.get("user")
        && user.get("username").and_then(Value::as_str) != Some(sub)
    {
        return Err(NOT_VALID);
    }
    // `rooms`: absent or null is none; else an array of at most 100 patterns,
    // each a name of 1 to 100 characters and an optional trailing `*`.
    let rooms = match claims.get("rooms") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(rooms)) => {
            let mut patterns = Vec::new();
            for room in rooms {
                let Some(pattern) = room.as_str() else {
                    return Err(NOT_VALID);
                };
                let name = pattern.strip_suffix('*').unwrap_or(pattern);
                if pattern.is_empty()
                    || name.chars().count() > 100
                    || pattern.chars().any(char::is_control)
                {
                    return Err(NOT_VALID);
                }
                patterns.push(pattern.to_owned());
            }
            if patterns.len() > 100 {
                return Err(NOT_VALID);
            }
            patterns
        }
        Some(_) => return Err(NOT_VALID),
    };
    if now >= exp + leeway {
        return Err(EXPIRED);
    }
    Ok(VerifiedClaims {
        username: sub.to_owned(),
        expires_at: exp.floor() as i64,
        issued_at: iat.floor() as i64,
        session_id: sid.map(str::to_owned),
        rooms,
    })
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// (a) No string makes `verify` panic, and nothing unsigned is accepted.
    #[test]
    fn verify_never_panics_and_refuses_unsigned_input(input in unsigned_input(), now in any::<i64>()) {
        let refused = VERIFIER.verify(&input, now);
        prop_assert!(refused.is_err(), "accepted: {:?}", refused);
        let message = refused.err().map(|e| e.to_string());
        prop_assert_eq!(message.as_deref(), Some(NOT_VALID));
    }

    /// (a) Signed with the key but with any bytes as the payload: no panic,
    /// and whatever is accepted names a user.
    #[test]
    fn verify_never_panics_on_signed_arbitrary_payload_bytes(
        payload in proptest::collection::vec(any::<u8>(), 0..400),
        now in any::<i64>(),
    ) {
        let token = signed(HS256_JWT.as_bytes(), &payload);
        if let Ok(claims) = VERIFIER.verify(&token, now) {
            prop_assert!(!claims.username.is_empty());
            prop_assert!(std::str::from_utf8(&payload).is_ok(), "accepted a payload that is not UTF-8");
        }
    }

    /// Raw bytes inside a string the verifier does not otherwise read (the
    /// header's `kid`, the `jti` claim, another member of `user`): the token
    /// is accepted exactly when they are UTF-8, as JSON text must be.
    #[test]
    fn a_token_is_accepted_only_if_its_json_is_utf8(
        place in 0_usize..3,
        bytes in proptest::collection::vec(
            any::<u8>().prop_filter("raw in a JSON string", |b| *b >= 0x20 && *b != b'"' && *b != b'\\'),
            0..12,
        ),
    ) {
        let quoted = [&b"\""[..], &bytes, b"\""].concat();
        let claims = |user: &[u8], jti: &[u8]| {
            [
                &br#"{"sub":"gonzalo","user":{"username":"gonzalo","role":"#[..],
                user,
                br#"},"iat":1800000000,"exp":1800000300,"iss":"web-frontend","aud":"socket-server","jti":"#,
                jti,
                b"}",
            ]
            .concat()
        };
        let plain = &b"\"x\""[..];
        let (header, payload) = match place {
            0 => ([&br#"{"alg":"HS256","kid":"#[..], &quoted, b"}"].concat(), claims(plain, plain)),
            1 => (HS256_JWT.as_bytes().to_vec(), claims(plain, &quoted)),
            _ => (HS256_JWT.as_bytes().to_vec(), claims(&quoted, plain)),
        };
        let verdict = VERIFIER.verify(&signed(&header, &payload), NOW);
        prop_assert_eq!(
            verdict.is_ok(),
            std::str::from_utf8(&bytes).is_ok(),
            "bytes {:?} in place {}: {:?}", bytes, place, verdict
        );
    }

    /// (a) Signed with the key but with any header: accepted only under a
    /// JSON object header whose `alg` is HS256 and that has no `crit`.
    #[test]
    fn only_an_hs256_header_without_crit_is_accepted(
        header in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..80),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("alg".to_owned()), Just("typ".to_owned()), Just("crit".to_owned()),
                    Just("kid".to_owned()), Just("jku".to_owned()), any_text(5),
                ],
                prop_oneof![
                    3 => Just(json!("HS256")), 1 => Just(json!("none")), 1 => Just(json!("HS512")),
                    1 => Just(json!("JWT")), 1 => any_json(),
                ],
                0..5,
            )
            .prop_map(|map| Value::Object(map.into_iter().collect()).to_string().into_bytes()),
        ],
    ) {
        let payload = json!({
            "sub": "gonzalo", "iat": NOW, "exp": NOW + 300,
            "iss": "web-frontend", "aud": "socket-server",
        });
        let token = signed(&header, payload.to_string().as_bytes());
        if VERIFIER.verify(&token, NOW).is_ok() {
            let parsed: Value = serde_json::from_slice(&header).expect("an accepted header is JSON");
            prop_assert_eq!(parsed.get("alg"), Some(&json!("HS256")));
            prop_assert!(parsed.get("crit").is_none());
        }
    }

    /// Every rule at once: a signed claims set is accepted exactly when the
    /// contract's rules say so, and refused with exactly the message they say.
    #[test]
    fn a_signed_claims_set_is_judged_as_the_contract_says(claims in claims_sets()) {
        let text = Value::Object(claims).to_string();
        let token = signed(HS256_JWT.as_bytes(), text.as_bytes());
        let verdict = VERIFIER.verify(&token, NOW).map_err(|e| e.to_string());
        // The model reads the very text the verifier reads (numbers included).
        let claims: Map<String, Value> = serde_json::from_str(&text).expect("JSON");
        let expected = model(&claims).map_err(str::to_owned);
        prop_assert_eq!(verdict, expected, "claims {}", text);
    }

    /// (b) Whatever the username and session, an issued token verifies back to them.
    #[test]
    fn an_issued_token_verifies_back_to_its_user(
        username in any_text(64).prop_filter("a user has a name", |name| !name.is_empty()),
        session_id in any_text(64),
        now in 0_i64..=253_402_300_799,
    ) {
        let token = ISSUER.issue(&username, &session_id, now).expect("signs");
        let claims = VERIFIER.verify(&token, now).expect("an issued token verifies");
        prop_assert_eq!(&claims.username, &username);
        prop_assert_eq!(claims.session_id.as_deref(), Some(session_id.as_str()));
        prop_assert_eq!(claims.issued_at, now);
        prop_assert_eq!(claims.expires_at, now + 300);
        // And it lives exactly as long as its ttl and the leeway.
        let last = now + 300 + LEEWAY - 1;
        prop_assert!(VERIFIER.verify(&token, last).is_ok());
        let expired = VERIFIER.verify(&token, last + 1).map_err(|e| e.to_string());
        prop_assert_eq!(expired, Err(EXPIRED.to_owned()));
    }

    /// (c) Changing any one byte of an issued token makes it refused.
    #[test]
    fn one_changed_byte_breaks_an_issued_token(
        username in any_text(24).prop_filter("a user has a name", |name| !name.is_empty()),
        at in any::<Index>(),
        delta in 1_u8..=255,
    ) {
        let token = ISSUER.issue(&username, "s3ss10n-0f-th3-l0g1n", NOW).expect("signs");
        let mut bytes = token.into_bytes();
        let at = at.index(bytes.len());
        bytes[at] ^= delta;
        let changed = String::from_utf8_lossy(&bytes).into_owned();
        let verdict = VERIFIER.verify(&changed, NOW);
        prop_assert!(verdict.is_err(), "byte {} changed, accepted as {:?}", at, verdict);
    }

    /// (d) No string makes the revocation verifier panic, and nothing unsigned
    /// is accepted.
    #[test]
    fn revocation_verify_never_panics_and_refuses_unsigned_input(
        input in unsigned_input(),
        now in any::<i64>(),
    ) {
        prop_assert!(REVOCATIONS.verify(&input, now).is_err());
    }

    /// (d) Notices signed with the shared key itself (not the channel's key),
    /// whatever they hold, are refused.
    #[test]
    fn revocation_verify_refuses_what_the_shared_key_signs(
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        now in any::<i64>(),
    ) {
        let header = format!(r#"{{"alg":"HS256","typ":"{REVOCATION_TYP}"}}"#);
        prop_assert!(REVOCATIONS.verify(&signed(header.as_bytes(), &payload), now).is_err());
    }

    /// (d) A real notice round-trips, one changed byte breaks it, and it is
    /// never a connect token.
    #[test]
    fn a_notice_round_trips_and_one_changed_byte_breaks_it(
        sids in proptest::collection::vec(any_text(24), 0..4),
        at in any::<Index>(),
        delta in 1_u8..=255,
    ) {
        let revoked: Vec<Revocation> = sids
            .into_iter()
            .map(|sid| Revocation { sid, until: NOW + 305 })
            .collect();
        let notice = NOTICES.sign(&revoked, NOW).expect("signs");
        prop_assert_eq!(REVOCATIONS.verify(&notice, NOW), Ok(revoked));
        prop_assert!(VERIFIER.verify(&notice, NOW).is_err());
        let mut bytes = notice.into_bytes();
        let at = at.index(bytes.len());
        bytes[at] ^= delta;
        let changed = String::from_utf8_lossy(&bytes).into_owned();
        prop_assert!(REVOCATIONS.verify(&changed, NOW).is_err(), "byte {} changed", at);
    }
}

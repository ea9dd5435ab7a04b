//! Key pairs (EdDSA, ES256), key sets, JWK Sets and rotation of the shared
//! secret: every rule of the asymmetric modes, through the public API.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use claims::{
    Algorithm, Invalid, KeyError, KeySet, PrivateKey, PublicKey, Revocation, RevocationSigner,
    RevocationVerifier, SharedKey, SigningKey, TokenIssuer, TokenVerifier, VerifyError,
    jwks_document, keys_from_jwks,
};
use serde_json::{Value, json};
use testkit::token_settings;

const NOW: i64 = 1_800_000_000;
const SESSION: &str = "s3ss10n-0f-th3-l0g1n";
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-current-key";
const OLD_SECRET: &[u8] = b"fedcba9876543210fedcba9876543210-previous-key";

/// A fresh pair for `algorithm` (deterministic: the seed is fixed per call site).
fn pair(algorithm: Algorithm, seed: u8) -> (PrivateKey, PublicKey) {
    let (private, public) = PrivateKey::generate_pem(algorithm, &[seed; 32]).expect("a valid seed");
    assert!(
        private.starts_with("-----BEGIN PRIVATE KEY-----"),
        "{private}"
    );
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"), "{public}");
    (
        PrivateKey::from_pem(algorithm, private.as_bytes()).expect("its private key reads"),
        PublicKey::from_pem(algorithm, public.as_bytes()).expect("its public key reads"),
    )
}

fn header(token: &str) -> Value {
    let header = token.split('.').next().expect("a header");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url")).expect("JSON")
}

fn verifier(keys: KeySet) -> TokenVerifier {
    TokenVerifier::with_keys(&token_settings(), keys)
}

fn refusal(verifier: &TokenVerifier, token: &str, now: i64) -> Invalid {
    match verifier.verify(token, now) {
        Err(VerifyError::Invalid(reason)) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn eddsa_and_es256_tokens_carry_the_thumbprint_as_kid_and_verify_with_the_public_key_alone() {
    for algorithm in [Algorithm::EdDSA, Algorithm::ES256] {
        let (private, public) = pair(algorithm, 7);
        assert_eq!(private.public(), &public, "{algorithm}: the same key");
        let issuer = TokenIssuer::with_key(&token_settings(), &SigningKey::Private(private));
        let token = issuer.issue("gonzalo", SESSION, NOW).expect("signs");
        assert_eq!(
            header(&token),
            json!({ "alg": algorithm.as_str(), "typ": "JWT", "kid": public.kid() })
        );
        let verifier = verifier(KeySet::public(algorithm, vec![public]).expect("a set"));
        let claims = verifier.verify(&token, NOW).expect("verifies");
        assert_eq!(claims.username, "gonzalo");
        assert_eq!(claims.session_id.as_deref(), Some(SESSION));
        // Expiry is judged as for HS256.
        assert_eq!(
            verifier.verify(&token, NOW + 400),
            Err(VerifyError::Expired)
        );
    }
}

#[test]
fn the_kid_is_the_rfc_7638_thumbprint() {
    // RFC 8037, appendix A.2 and A.3: the Ed25519 key and its thumbprint.
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(json!({
        "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    }))
    .expect("a JWK");
    let key = PublicKey::from_jwk(Algorithm::EdDSA, &jwk).expect("an Ed25519 key");
    assert_eq!(key.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
}

#[test]
fn a_token_signed_by_a_key_not_in_the_set_is_refused() {
    for algorithm in [Algorithm::EdDSA, Algorithm::ES256] {
        let (_, trusted) = pair(algorithm, 1);
        let (stranger, _) = pair(algorithm, 2);
        let verifier = verifier(KeySet::public(algorithm, vec![trusted.clone()]).expect("a set"));
        let forged = TokenIssuer::with_key(&token_settings(), &SigningKey::Private(stranger))
            .issue("gonzalo", SESSION, NOW)
            .expect("signs");
        // Its own kid: unknown here.
        assert_eq!(refusal(&verifier, &forged, NOW), Invalid::UnknownKey);
        // The stranger's signature under the trusted key's kid, or no kid.
        let payload = forged.split('.').nth(1).expect("payload");
        let signature = forged.split('.').nth(2).expect("signature");
        for head in [
            json!({ "alg": algorithm.as_str(), "kid": trusted.kid() }),
            json!({ "alg": algorithm.as_str() }),
        ] {
            let token = format!(
                "{}.{payload}.{signature}",
                URL_SAFE_NO_PAD.encode(head.to_string())
            );
            assert_eq!(refusal(&verifier, &token, NOW), Invalid::BadSignature);
        }
    }
}

#[test]
fn an_hs256_token_made_with_the_public_key_as_its_secret_is_refused() {
    for algorithm in [Algorithm::EdDSA, Algorithm::ES256] {
        let (private, public) = pair(algorithm, 3);
        let pem = PrivateKey::generate_pem(algorithm, &[3; 32])
            .expect("a valid seed")
            .1;
        let verifier = verifier(KeySet::public(algorithm, vec![public.clone()]).expect("a set"));
        let claims = TokenIssuer::with_key(&token_settings(), &SigningKey::Private(private))
            .claims_for("gonzalo", SESSION, NOW);
        // The classic confusion: the public key's bytes (PEM, or the JWK's x)
        // as an HMAC secret, with and without the key's kid.
        let x = serde_json::to_value(public.jwk()).expect("a JWK")["x"].clone();
        for secret in [pem.into_bytes(), x.as_str().expect("x").as_bytes().to_vec()] {
            for announce_kid in [false, true] {
                let key = SigningKey::Shared {
                    key: SharedKey::new(&secret).expect("long enough"),
                    announce_kid,
                };
                let mut token = TokenIssuer::with_key(&token_settings(), &key)
                    .sign(&claims)
                    .expect("signs");
                if announce_kid {
                    let head = json!({ "alg": "HS256", "typ": "JWT", "kid": public.kid() });
                    let rest = token.split_once('.').expect("a dot").1.to_owned();
                    token = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(head.to_string()));
                }
                assert_eq!(refusal(&verifier, &token, NOW), Invalid::WrongAlgorithm);
            }
        }
    }
}

#[test]
fn a_key_serves_its_own_algorithm_only() {
    let (ed_private, ed_public) = pair(Algorithm::EdDSA, 4);
    let (es_private, es_public) = pair(Algorithm::ES256, 4);
    // A set holds keys of its algorithm alone.
    assert_eq!(
        KeySet::public(Algorithm::EdDSA, vec![ed_public.clone(), es_public.clone()]).err(),
        Some(KeyError::BadPublicKey(Algorithm::EdDSA))
    );
    assert_eq!(
        KeySet::public(Algorithm::HS256, vec![]).err(),
        Some(KeyError::NotAsymmetric)
    );
    // A PEM key of the other curve does not read as this algorithm's.
    let ed_pem = PrivateKey::generate_pem(Algorithm::EdDSA, &[4; 32]).expect("pem");
    assert!(PublicKey::from_pem(Algorithm::ES256, ed_pem.1.as_bytes()).is_err());
    assert!(PrivateKey::from_pem(Algorithm::ES256, ed_pem.0.as_bytes()).is_err());
    assert!(PublicKey::from_pem(Algorithm::HS256, ed_pem.1.as_bytes()).is_err());
    // An EdDSA token to an ES256 verifier, and the reverse: wrong algorithm,
    // whatever the kid says.
    let ed_token = TokenIssuer::with_key(&token_settings(), &SigningKey::Private(ed_private))
        .issue("gonzalo", SESSION, NOW)
        .expect("signs");
    let es_token = TokenIssuer::with_key(&token_settings(), &SigningKey::Private(es_private))
        .issue("gonzalo", SESSION, NOW)
        .expect("signs");
    let es_verifier = verifier(KeySet::public(Algorithm::ES256, vec![es_public]).expect("set"));
    let ed_verifier = verifier(KeySet::public(Algorithm::EdDSA, vec![ed_public]).expect("set"));
    assert_eq!(
        refusal(&es_verifier, &ed_token, NOW),
        Invalid::WrongAlgorithm
    );
    assert_eq!(
        refusal(&ed_verifier, &es_token, NOW),
        Invalid::WrongAlgorithm
    );
    // And an asymmetric token to the shared-secret verifier.
    let hs_verifier = verifier(KeySet::shared(SharedKey::new(SECRET).expect("key")));
    assert_eq!(
        refusal(&hs_verifier, &ed_token, NOW),
        Invalid::WrongAlgorithm
    );
}

#[test]
fn a_kid_less_token_is_tried_against_every_key_of_the_set() {
    for algorithm in [Algorithm::EdDSA, Algorithm::ES256] {
        let pems: Vec<_> = [5, 6]
            .map(|seed| PrivateKey::generate_pem(algorithm, &[seed; 32]).expect("pem"))
            .into();
        let publics = pems
            .iter()
            .map(|(_, public)| PublicKey::from_pem(algorithm, public.as_bytes()).expect("key"))
            .collect();
        let verifier = verifier(KeySet::public(algorithm, publics).expect("set"));
        let claims = TokenIssuer::with_key(
            &token_settings(),
            &SigningKey::Private(pair(algorithm, 5).0),
        )
        .claims_for("gonzalo", SESSION, NOW);
        for (private, _) in &pems {
            // jsonwebtoken's own encoder: `{"typ":"JWT","alg":…}`, no kid.
            let key = match algorithm {
                Algorithm::EdDSA => jsonwebtoken::EncodingKey::from_ed_pem(private.as_bytes()),
                _ => jsonwebtoken::EncodingKey::from_ec_pem(private.as_bytes()),
            }
            .expect("jsonwebtoken reads our PEM");
            let header = jsonwebtoken::Header::new(match algorithm {
                Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
                _ => jsonwebtoken::Algorithm::ES256,
            });
            let token = jsonwebtoken::encode(&header, &claims, &key).expect("signs");
            assert!(self::header(&token).get("kid").is_none());
            assert!(
                verifier.verify(&token, NOW).is_ok(),
                "{algorithm} without a kid"
            );
        }
    }
}

#[test]
fn the_published_jwk_set_reads_back_into_the_same_keys_and_skips_the_others() {
    let (_, ed) = pair(Algorithm::EdDSA, 8);
    let (_, ed_next) = pair(Algorithm::EdDSA, 9);
    let (_, es) = pair(Algorithm::ES256, 8);
    let document: Value =
        serde_json::from_str(&jwks_document(&[ed.clone(), ed_next.clone()])).expect("JSON");
    for jwk in document["keys"].as_array().expect("keys") {
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["alg"], "EdDSA");
        assert_eq!(jwk["kty"], "OKP");
        assert!(jwk.get("d").is_none(), "never the private part");
    }
    let mut keys = document["keys"].as_array().expect("keys").clone();
    // Keys that must not be taken for EdDSA: another algorithm, another use,
    // another type, a private part (kept out of the result), garbage.
    keys.push(serde_json::to_value(es.jwk()).expect("JWK"));
    let mut encryption = serde_json::to_value(ed.jwk()).expect("JWK");
    encryption["use"] = "enc".into();
    encryption["kid"] = "enc".into();
    keys.push(encryption);
    let mut mislabelled = serde_json::to_value(ed.jwk()).expect("JWK");
    mislabelled["alg"] = "ES256".into();
    mislabelled["kid"] = "mislabelled".into();
    keys.push(mislabelled);
    keys.push(json!({ "kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "rsa" }));
    keys.push(json!({ "kty": "oct", "k": "c2VjcmV0", "kid": "oct" }));
    keys.push(json!("not a key"));
    let read = keys_from_jwks(
        Algorithm::EdDSA,
        json!({ "keys": keys }).to_string().as_bytes(),
    )
    .expect("a JWK Set");
    assert_eq!(read, vec![ed, ed_next]);
    let es_read = keys_from_jwks(
        Algorithm::ES256,
        json!({ "keys": keys }).to_string().as_bytes(),
    )
    .expect("a JWK Set");
    assert_eq!(es_read, vec![es]);
    for garbage in [&b"[]"[..], b"{}", b"{\"keys\":1}", b"\xff", b""] {
        assert_eq!(
            keys_from_jwks(Algorithm::EdDSA, garbage),
            Err(KeyError::BadJwks)
        );
    }
}

#[test]
fn a_p256_seed_outside_the_group_is_refused_and_hs256_has_no_pair() {
    assert!(PrivateKey::generate_pem(Algorithm::ES256, &[0xff; 32]).is_none());
    assert!(PrivateKey::generate_pem(Algorithm::ES256, &[0; 32]).is_none());
    assert!(PrivateKey::generate_pem(Algorithm::HS256, &[1; 32]).is_none());
}

fn rotated(valid_until: i64) -> TokenVerifier {
    verifier(KeySet::Shared {
        current: SharedKey::new(SECRET).expect("key"),
        previous: Some((SharedKey::new(OLD_SECRET).expect("key"), valid_until)),
    })
}

fn shared_issuer(secret: &[u8], announce_kid: bool) -> TokenIssuer {
    TokenIssuer::with_key(
        &token_settings(),
        &SigningKey::Shared {
            key: SharedKey::new(secret).expect("key"),
            announce_kid,
        },
    )
}

#[test]
fn a_previous_secret_verifies_until_its_end_and_not_after() {
    let until = NOW + 60;
    let verifier = rotated(until);
    let new = shared_issuer(SECRET, true);
    let old = shared_issuer(OLD_SECRET, true);
    // A web node not yet given the new secret signs as before: no kid.
    let old_bare = shared_issuer(OLD_SECRET, false);
    let new_token = new.issue("gonzalo", SESSION, NOW).expect("signs");
    assert_eq!(
        header(&new_token)["kid"],
        SharedKey::new(SECRET).expect("key").id()
    );
    for token in [
        &new_token,
        &old.issue("gonzalo", SESSION, NOW).expect("signs"),
        &old_bare.issue("gonzalo", SESSION, NOW).expect("signs"),
    ] {
        assert!(verifier.verify(token, NOW).is_ok(), "{:?}", header(token));
    }
    // After the end: the old key's tokens are refused, however fresh.
    let later = until + 1;
    assert!(
        verifier
            .verify(&new.issue("gonzalo", SESSION, later).expect("signs"), later)
            .is_ok()
    );
    assert_eq!(
        refusal(
            &verifier,
            &old.issue("gonzalo", SESSION, later).expect("signs"),
            later
        ),
        Invalid::RetiredKey
    );
    assert_eq!(
        refusal(
            &verifier,
            &old_bare.issue("gonzalo", SESSION, later).expect("signs"),
            later
        ),
        Invalid::BadSignature
    );
    // A kid naming the current key is checked against it alone.
    let mut forged_kid = old_bare.issue("gonzalo", SESSION, NOW).expect("signs");
    let head =
        json!({ "alg": "HS256", "typ": "JWT", "kid": SharedKey::new(SECRET).expect("key").id() });
    forged_kid = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(head.to_string()),
        forged_kid.split_once('.').expect("a dot").1
    );
    assert_eq!(refusal(&verifier, &forged_kid, NOW), Invalid::BadSignature);
}

#[test]
fn a_shared_key_id_says_nothing_of_the_key_and_differs_between_keys() {
    let id = SharedKey::new(SECRET).expect("key").id().to_owned();
    assert_eq!(id.len(), 16);
    assert_ne!(id, SharedKey::new(OLD_SECRET).expect("key").id());
    assert!(!id.contains(std::str::from_utf8(&SECRET[..8]).expect("ascii")));
    // Without a previous secret, the contract's header stays exact.
    let token = shared_issuer(SECRET, false)
        .issue("gonzalo", SESSION, NOW)
        .expect("signs");
    assert_eq!(header(&token), json!({ "alg": "HS256", "typ": "JWT" }));
}

#[test]
fn revocation_notices_are_signed_by_the_private_key_and_never_pass_for_tokens() {
    let (private, public) = pair(Algorithm::ES256, 10);
    let key = SigningKey::Private(private);
    let keys = KeySet::public(Algorithm::ES256, vec![public]).expect("set");
    let signer = RevocationSigner::with_key(&token_settings(), &key);
    let channel = RevocationVerifier::with_keys(&token_settings(), &keys);
    let revoked = vec![Revocation {
        sid: SESSION.into(),
        until: NOW + 300,
    }];
    let notice = signer.sign(&revoked, NOW).expect("signs");
    assert_eq!(channel.verify(&notice, NOW), Ok(revoked));
    // A notice is no connect token, and a token no notice.
    let token = TokenIssuer::with_key(&token_settings(), &key)
        .issue("gonzalo", SESSION, NOW)
        .expect("signs");
    assert_eq!(channel.verify(&token, NOW), Err(Invalid::WrongType));
    assert_eq!(refusal(&verifier(keys), &notice, NOW), Invalid::WrongType);
    // Another pair's notice is refused.
    let (stranger, _) = pair(Algorithm::ES256, 11);
    let forged = RevocationSigner::with_key(&token_settings(), &SigningKey::Private(stranger))
        .sign(&[], NOW)
        .expect("signs");
    assert_eq!(channel.verify(&forged, NOW), Err(Invalid::UnknownKey));
}

#[test]
fn during_a_rotation_notices_of_either_secret_are_accepted() {
    let keys = KeySet::Shared {
        current: SharedKey::new(SECRET).expect("key"),
        previous: Some((SharedKey::new(OLD_SECRET).expect("key"), NOW + 60)),
    };
    let channel = RevocationVerifier::with_keys(&token_settings(), &keys);
    for (secret, announce_kid) in [(SECRET, true), (OLD_SECRET, false), (OLD_SECRET, true)] {
        let signer = RevocationSigner::with_key(
            &token_settings(),
            &SigningKey::Shared {
                key: SharedKey::new(secret).expect("key"),
                announce_kid,
            },
        );
        assert_eq!(
            channel.verify(&signer.sign(&[], NOW).expect("signs"), NOW),
            Ok(vec![])
        );
    }
    // A connect token of the shared secret is no notice (its key is not the
    // channel's derived key).
    let token = shared_issuer(SECRET, false)
        .issue("gonzalo", SESSION, NOW)
        .expect("signs");
    assert!(channel.verify(&token, NOW).is_err());
}

/// What `openssl ec -pubout` writes for keys of other curves.
const P384_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEm9pwsFCXdYKEnn8++aFTVMqmbKWPqyRS
444mM+atv6P1CZ5b2muS+YE1AMRu1OHKq/CU3EHXGrsJeqvBCplw/S5NaF3w5Xhk
IjDxQbdr2stMhb8AiiX3Nr7cNVz/hxEi
-----END PUBLIC KEY-----
";
const SECP256K1_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFYwEAYHKoZIzj0CAQYFK4EEAAoDQgAEzRQDNNRA1ZQr39j6QuXEAr8BrvEnvpQT
tBOkTTqKVtEn2mcoyzD91ncoiHKVh8fQRbB5uAJU5GYrTOjbWlnpwg==
-----END PUBLIC KEY-----
";

#[test]
fn public_keys_of_other_curves_are_refused_for_es256() {
    for pem in [P384_PUBLIC_PEM, SECP256K1_PUBLIC_PEM] {
        assert_eq!(
            PublicKey::from_pem(Algorithm::ES256, pem.as_bytes()).err(),
            Some(KeyError::BadPublicKey(Algorithm::ES256)),
            "{pem}"
        );
    }
}

/// A JWK Set may carry anything: keys that are no points of the curve (which
/// jsonwebtoken would only fail on — or panic on — at the first signature)
/// and keys restricted to other operations are skipped.
#[test]
fn jwk_set_keys_that_are_not_curve_points_or_not_for_verifying_are_skipped() {
    let (_, ed) = pair(Algorithm::EdDSA, 12);
    let (_, es) = pair(Algorithm::ES256, 12);
    let ed_jwk = serde_json::to_value(ed.jwk()).expect("JWK");
    let es_jwk = serde_json::to_value(es.jwk()).expect("JWK");
    let with = |jwk: &Value, member: &str, value: Value| {
        let mut jwk = jwk.clone();
        jwk[member] = value;
        jwk["kid"] = format!("{member}-{}", jwk["kid"].as_str().expect("kid")).into();
        jwk
    };
    let mut no_use = ed_jwk.clone();
    no_use.as_object_mut().expect("object").remove("use");
    let candidates = [
        // 31 and 33 bytes, and 32 that are no point (y = 2 is not on the curve).
        with(&ed_jwk, "x", URL_SAFE_NO_PAD.encode([7u8; 31]).into()),
        with(&ed_jwk, "x", URL_SAFE_NO_PAD.encode([7u8; 33]).into()),
        with(
            &ed_jwk,
            "x",
            URL_SAFE_NO_PAD
                .encode({
                    let mut y = [0u8; 32];
                    y[0] = 2;
                    y
                })
                .into(),
        ),
        with(&ed_jwk, "x", "".into()),
        with(&es_jwk, "y", es_jwk["x"].clone()),
        with(&es_jwk, "x", URL_SAFE_NO_PAD.encode([1u8; 31]).into()),
        with(&no_use, "key_ops", json!(["encrypt"])),
        with(&no_use, "key_ops", json!(["sign"])),
    ];
    for algorithm in [Algorithm::EdDSA, Algorithm::ES256] {
        let document = json!({ "keys": candidates });
        assert_eq!(
            keys_from_jwks(algorithm, document.to_string().as_bytes()),
            Ok(vec![]),
            "{algorithm}"
        );
    }
    // `key_ops` naming `verify` is fine.
    let verify = with(&no_use, "key_ops", json!(["verify"]));
    let document = json!({ "keys": [verify] });
    assert_eq!(
        keys_from_jwks(Algorithm::EdDSA, document.to_string().as_bytes())
            .expect("a set")
            .len(),
        1
    );
}

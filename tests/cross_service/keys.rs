//! Key pairs (EdDSA, ES256), the web-frontend's JWK Set, and rotations in both
//! modes, across the two services: real logins, real sockets, keys swapped
//! while sockets stay connected.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use claims::Algorithm;
use secrecy::SecretString;
use serde_json::{Value, json};
use settings::Settings;

use crate::helpers::*;
use crate::socketio::SioClient;
use futures_util::StreamExt as _;

/// A fresh directory for one test's key files, removed when it is dropped
/// (whether the test passed or not).
pub(crate) struct KeyDir(PathBuf);

impl KeyDir {
    pub(crate) fn new(test: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "authbridge-keys-{}-{test}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("a key directory");
        Self(dir)
    }

    /// Writes a key pair as `generate-keypair` does; (private, public) paths.
    pub(crate) fn pair(&self, name: &str, algorithm: Algorithm) -> (PathBuf, PathBuf) {
        web_frontend::users::generate_keypair(algorithm, &self.0.join(name)).expect("a key pair");
        (
            self.0.join(format!("{name}.key.pem")),
            self.0.join(format!("{name}.pub.pem")),
        )
    }
}

impl std::ops::Deref for KeyDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for KeyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls a handshake with `token` until it is refused with `not valid token`
/// (a key retired by a fetch or a clock), within `within`.
async fn refused_within(system: &TestSystem, token: &str, within: Duration, what: &str) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let refusal =
            SioClient::refusal_with_auth(&system.socket_url, Some(json!({ "token": token }))).await;
        if refusal.as_deref().ok() == Some("not valid token") {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reloads the web-frontend (as SIGHUP does) signing with `private`, with
/// `published` in its JWK Set beside it; the settings now in use.
fn switch_signing(system: &TestSystem, private: &Path, published: &[PathBuf]) -> Settings {
    let mut next = system.settings().clone();
    next.jwt.private_key_file = Some(private.to_owned());
    next.jwt.public_key_files = published.to_vec();
    system
        .web_keys
        .reload(&next)
        .expect("the web-frontend reloads");
    next
}

/// The shipped settings with a key pair instead of the shared secret.
pub(crate) fn asymmetric_settings(algorithm: Algorithm, private_key: &Path) -> Settings {
    let mut settings = settings();
    settings.jwt.secret = None;
    settings.jwt.algorithm = algorithm;
    settings.jwt.private_key_file = Some(private_key.to_owned());
    settings
}

/// The key pair of a private PEM file, to sign any payload with.
pub(crate) fn key_pair(algorithm: Algorithm, path: &Path) -> testkit::KeyPair {
    testkit::KeyPair::from_private_pem(algorithm, &std::fs::read(path).expect("a PEM file"))
        .expect("a private key")
}

fn header(token: &str) -> Value {
    let header = token.split('.').next().expect("a header");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url")).expect("JSON")
}

async fn jwks(system: &TestSystem) -> Value {
    let response = reqwest::get(format!("{}/.well-known/jwks.json", system.web_url))
        .await
        .expect("the JWK Set request");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON")
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|key| key["kid"].as_str().expect("a kid").to_owned())
        .collect()
}

/// A counter of `/metrics` (the sum of its samples matching `labels`).
pub(crate) async fn metric(base_url: &str, name: &str, labels: &str) -> u64 {
    let text = reqwest::get(format!("{base_url}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter(|line| line.starts_with(name) && line.contains(labels))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn eddsa_and_es256_log_in_to_a_socket_through_the_jwk_set() {
    for algorithm in [Algorithm::EdDSA, Algorithm::ES256] {
        let dir = KeyDir::new(algorithm.as_str());
        let (private, public) = dir.pair("signing", algorithm);
        let system = spawn_system_with(asymmetric_settings(algorithm, &private)).await;

        let client = system.log_in("gonzalo", "password").await;
        let token = system.token(&client).await;
        let published = jwks(&system).await;
        let kid = claims::PublicKey::from_pem(algorithm, &std::fs::read(&public).expect("pem"))
            .expect("a public key")
            .kid()
            .to_owned();
        assert_eq!(
            header(&token),
            json!({ "alg": algorithm.as_str(), "typ": "JWT", "kid": kid })
        );
        assert_eq!(kids(&published), vec![kid.clone()], "{published}");
        assert_eq!(published["keys"][0]["alg"], algorithm.as_str());
        assert!(
            published["keys"][0].get("d").is_none(),
            "never the private part"
        );

        let socket = SioClient::connect_with_auth(&system.socket_url, &token)
            .await
            .unwrap_or_else(|error| panic!("{algorithm}: accepted: {error}"));
        assert_eq!(socket.welcome(), json!({ "username": "gonzalo" }));

        // Logging out still ends the socket: the notice is signed by the
        // private key, and the socket server checks it with the public one.
        system.log_out(&client).await;
        socket
            .next_event("session_ended", Duration::from_secs(2))
            .await
            .expect("session_ended after the logout");
    }
}

#[tokio::test]
async fn tokens_of_a_key_not_in_the_set_and_hs256_with_the_public_key_are_refused() {
    let algorithm = Algorithm::EdDSA;
    let dir = KeyDir::new("strangers");
    let (private, public) = dir.pair("signing", algorithm);
    let (stranger, _) = dir.pair("stranger", algorithm);
    let system = spawn_system_with(asymmetric_settings(algorithm, &private)).await;
    let claims = claims_now("gonzalo");

    let stranger = key_pair(algorithm, &stranger);
    let signed_by_stranger = stranger.sign(&claims);
    // The classic confusion: HS256 with the public key (its PEM) as the secret.
    let public_pem = std::fs::read(&public).expect("pem");
    let confused = testkit::sign_hs256(&public_pem, &claims);
    // And the contract's HS256 token with some shared key.
    for (what, token) in [
        ("a key not in the set", signed_by_stranger),
        ("HS256 keyed with the public key", confused),
        ("HS256 with a shared key", mint(&claims)),
    ] {
        let refusal =
            SioClient::refusal_with_auth(&system.socket_url, Some(json!({ "token": token })))
                .await
                .unwrap_or_else(|error| panic!("{what}: {error}"));
        assert_eq!(refusal, "not valid token", "{what}");
    }
}

#[tokio::test]
async fn the_jwk_set_is_cacheable_and_absent_with_a_shared_secret() {
    let dir = KeyDir::new("cache");
    let (private, _) = dir.pair("signing", Algorithm::ES256);
    let system = spawn_system_with(asymmetric_settings(Algorithm::ES256, &private)).await;
    let url = format!("{}/.well-known/jwks.json", system.web_url);
    let response = reqwest::get(&url).await.expect("request");
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "public, max-age=300");
    let etag = headers["etag"].to_str().expect("an ETag").to_owned();
    let served = metric(&system.web_url, "authbridge_jwks_served_total", "").await;
    for tags in [etag.clone(), format!("\"other\", {etag}"), "*".to_owned()] {
        let again = reqwest::Client::new()
            .get(&url)
            .header("If-None-Match", &tags)
            .send()
            .await
            .expect("request");
        assert_eq!(again.status(), 304, "If-None-Match: {tags}");
    }
    assert_eq!(
        metric(&system.web_url, "authbridge_jwks_served_total", "").await,
        served,
        "a 304 is not a document served"
    );

    let shared = spawn_system().await;
    let response = reqwest::get(format!("{}/.well-known/jwks.json", shared.web_url))
        .await
        .expect("request");
    assert_eq!(response.status(), 404, "a shared secret is never published");
}

#[tokio::test]
async fn a_socket_server_started_before_the_web_frontend_fetches_the_keys_when_it_is_up() {
    let dir = KeyDir::new("early");
    let (private, _) = dir.pair("signing", Algorithm::EdDSA);
    let mut settings = asymmetric_settings(Algorithm::EdDSA, &private);
    let web_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let web_url = format!("http://{}", web_listener.local_addr().expect("addr"));
    let socket_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let socket_url = format!("http://{}", socket_listener.local_addr().expect("addr"));
    settings.web.socket_url = socket_url.clone();
    settings.jwt.jwks_url = Some(format!("{web_url}/.well-known/jwks.json"));
    // Nobody answers on the web port yet: connections are refused.
    drop(web_listener);

    let socket = socket_server::Application::build_with_listener(&settings, socket_listener)
        .await
        .expect("the socket server starts without the web-frontend");
    tokio::spawn(socket.run_until(std::future::pending()));
    let readyz = reqwest::get(format!("{socket_url}/readyz"))
        .await
        .expect("readyz");
    assert_eq!(readyz.status(), 503);
    assert!(
        readyz.text().await.expect("text").contains("JWK Set"),
        "says what it waits for"
    );
    let handshake = reqwest::get(format!("{socket_url}/socket.io/?EIO=4&transport=polling"))
        .await
        .expect("handshake");
    assert_eq!(handshake.status(), 503, "clients are told to retry");
    assert_eq!(handshake.headers()["retry-after"], "1");

    // The web-frontend comes up on its port.
    let web_listener =
        std::net::TcpListener::bind(web_url.trim_start_matches("http://")).expect("rebind");
    let web = web_frontend::Application::build_with_listener(&settings, web_listener)
        .await
        .expect("web-frontend builds");
    tokio::spawn(web.run_until(std::future::pending()));

    // The socket server's retries find it (backoff from 250 ms, capped at 30 s).
    wait_ready(&socket_url, Duration::from_secs(10)).await;
    let client = log_in_at(&web_url, "gonzalo", "password").await;
    let token = token_at(&web_url, &client).await;
    SioClient::connect_with_auth(&socket_url, &token)
        .await
        .expect("accepted once the keys are fetched");
}

#[tokio::test]
async fn a_flood_of_unknown_kids_costs_one_fetch_of_the_jwk_set() {
    let algorithm = Algorithm::EdDSA;
    let dir = KeyDir::new("flood");
    let (private, _) = dir.pair("signing", algorithm);
    let (stranger, _) = dir.pair("stranger", algorithm);
    let system = spawn_system_with(asymmetric_settings(algorithm, &private)).await;
    let stranger = key_pair(algorithm, &stranger);
    let served_before = metric(&system.web_url, "authbridge_jwks_served_total", "").await;
    let fetched_before = metric(
        &system.socket_url,
        "authbridge_jwks_fetches_total",
        "result=\"ok\"",
    )
    .await;
    assert_eq!(fetched_before, 1, "the start's fetch");

    // 500 handshakes, 50 at a time, each token naming a kid of its own.
    let claims = claims_now("gonzalo");
    let signed = stranger.sign(&claims);
    let (_, rest) = signed.split_once('.').expect("a dot");
    let addr = loadgen::resolve(&system.socket_url).await.expect("address");
    let started = tokio::time::Instant::now();
    let refusals =
        futures_util::stream::iter(0..500)
            .map(|n| {
                let head = json!({ "alg": "EdDSA", "typ": "JWT", "kid": format!("made-up-{n}") });
                let token = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(head.to_string()));
                async move {
                    loadgen::engineio::connect(addr, None, &token, Duration::from_secs(10)).await
                }
            })
            .buffer_unordered(50)
            .collect::<Vec<_>>()
            .await;
    let took = started.elapsed();
    for refusal in refusals {
        match refusal.expect("a handshake") {
            loadgen::engineio::Handshake::Refused(message) => {
                assert_eq!(message, "not valid token");
            }
            loadgen::engineio::Handshake::Welcomed(_) => panic!("a made-up kid was accepted"),
        }
    }
    // One fetch per 10 s at most: the count below holds for a flood shorter
    // than that.
    assert!(took < socket_server_refetch(), "the flood took {took:?}");
    let served = metric(&system.web_url, "authbridge_jwks_served_total", "").await - served_before;
    let fetched = metric(
        &system.socket_url,
        "authbridge_jwks_fetches_total",
        "result=\"ok\"",
    )
    .await
        - fetched_before;
    assert_eq!(
        fetched, 1,
        "one fetch for 200 unknown kids (socket server's count)"
    );
    assert_eq!(
        served, 1,
        "one fetch for 200 unknown kids (web-frontend's count)"
    );
    // And the real user still gets in.
    SioClient::connect_with_auth(&system.socket_url, &system.demo_token().await)
        .await
        .expect("accepted");
}

/// A key put in use after the socket server's last fetch: the first token
/// naming it makes the socket server fetch the set again, once, and get in.
#[tokio::test]
async fn a_new_kid_is_fetched_on_its_first_token() {
    let algorithm = Algorithm::EdDSA;
    let dir = KeyDir::new("new-kid");
    let (old_private, old_public) = dir.pair("k1", algorithm);
    let (new_private, _) = dir.pair("k2", algorithm);
    // The default refresh (300 s): only the unknown kid can bring the key.
    let system = spawn_system_with(asymmetric_settings(algorithm, &old_private)).await;
    let fetched = || {
        metric(
            &system.socket_url,
            "authbridge_jwks_fetches_total",
            "result=\"ok\"",
        )
    };
    assert_eq!(fetched().await, 1);
    switch_signing(&system, &new_private, &[old_public]);
    let client = system.log_in("gonzalo", "password").await;
    for _ in 0..3 {
        SioClient::connect_with_auth(&system.socket_url, &system.token(&client).await)
            .await
            .expect("the new key's token is accepted at once");
    }
    assert_eq!(fetched().await, 2, "one fetch, for the first token");
}

/// A logout right after the web-frontend switched keys: its notice names a
/// key the socket server has not fetched yet, and is applied at once anyway.
#[tokio::test]
async fn a_logout_signed_by_a_new_key_is_applied_at_once() {
    let algorithm = Algorithm::EdDSA;
    let dir = KeyDir::new("new-key-logout");
    let (old_private, old_public) = dir.pair("k1", algorithm);
    let (new_private, _) = dir.pair("k2", algorithm);
    let system = spawn_system_with(asymmetric_settings(algorithm, &old_private)).await;
    let client = system.log_in("gonzalo", "password").await;
    let socket = SioClient::connect_with_auth(&system.socket_url, &system.token(&client).await)
        .await
        .expect("accepted");
    switch_signing(&system, &new_private, &[old_public]);
    system.log_out(&client).await;
    socket
        .next_event("session_ended", Duration::from_secs(1))
        .await
        .expect("session_ended within 1 s of the logout");
}

/// The socket server's least time between two fetches for unknown kids.
fn socket_server_refetch() -> Duration {
    Duration::from_secs(10)
}

/// Asymmetric rotation, as the runbook has it: publish the next key, switch
/// signing to it (the old one still published), retire the old one.
#[tokio::test]
async fn a_key_pair_rotation_keeps_sockets_and_retires_the_old_key() {
    let algorithm = Algorithm::ES256;
    let dir = KeyDir::new("rotation");
    let (old_private, old_public) = dir.pair("k1", algorithm);
    let (new_private, new_public) = dir.pair("k2", algorithm);
    let mut settings = asymmetric_settings(algorithm, &old_private);
    // Fetched again every second: the retirement is seen within a second.
    settings.jwt.jwks_refresh_secs = 1;
    let system = spawn_system_with(settings).await;
    let client = system.log_in("gonzalo", "password").await;
    let old_token = system.token(&client).await;
    let old_socket = SioClient::connect_with_auth(&system.socket_url, &old_token)
        .await
        .expect("accepted");

    // 1. Publish the next key beside the signing one.
    let mut next = system.settings().clone();
    next.jwt.public_key_files = vec![new_public.clone()];
    system.web_keys.reload(&next).expect("reloads");
    assert_eq!(kids(&jwks(&system).await).len(), 2);
    // 2. Switch signing to it; the old key stays published.
    next.jwt.private_key_file = Some(new_private.clone());
    next.jwt.public_key_files = vec![old_public.clone()];
    system.web_keys.reload(&next).expect("reloads");
    let new_token = system.token(&client).await;
    let new_kid = header(&new_token)["kid"].as_str().expect("kid").to_owned();
    assert_ne!(header(&old_token)["kid"], new_kid.as_str());
    assert_eq!(
        kids(&jwks(&system).await)[0],
        new_kid,
        "the signing key first"
    );
    // The old socket is still there, and moves to the new key in band.
    let ack = old_socket
        .call("reauth", json!({ "token": new_token }))
        .await
        .expect("an ack");
    assert_eq!(ack["ok"], true, "{ack}");
    SioClient::connect_with_auth(&system.socket_url, &new_token)
        .await
        .expect("a new socket with the new key");
    SioClient::connect_with_auth(&system.socket_url, &old_token)
        .await
        .expect("the old key's tokens still work while it is published");

    // 3. Retire the old key: once the socket server has fetched the set
    // again, its tokens are refused; sockets stay connected.
    next.jwt.public_key_files = Vec::new();
    system.web_keys.reload(&next).expect("reloads");
    assert_eq!(kids(&jwks(&system).await), vec![new_kid]);
    refused_within(
        &system,
        &old_token,
        Duration::from_secs(10),
        "the retired key still works after 10 s",
    )
    .await;
    old_socket
        .emit("message", json!("still here"))
        .await
        .expect("emits");
    let message = old_socket
        .next_event("message", Duration::from_secs(2))
        .await
        .expect("the socket connected before the rotation still chats");
    assert_eq!(message["text"], "still here");
}

/// Public keys from files on the socket server (no JWK Set): a reload
/// (SIGHUP) adds and retires them.
#[tokio::test]
async fn configured_public_keys_rotate_on_reload() {
    let algorithm = Algorithm::EdDSA;
    let dir = KeyDir::new("files");
    let (old_private, old_public) = dir.pair("k1", algorithm);
    let (new_private, new_public) = dir.pair("k2", algorithm);
    let mut settings = asymmetric_settings(algorithm, &old_private);
    settings.jwt.public_key_files = vec![old_public.clone()];
    let system = spawn_system_with(settings).await;
    let client = system.log_in("gonzalo", "password").await;
    let old_token = system.token(&client).await;
    let socket = SioClient::connect_with_auth(&system.socket_url, &old_token)
        .await
        .expect("accepted");

    let mut next = system.settings().clone();
    next.jwt.public_key_files = vec![old_public.clone(), new_public.clone()];
    system
        .socket_keys()
        .reload(&next)
        .expect("the socket server reloads");
    next.jwt.private_key_file = Some(new_private);
    system
        .web_keys
        .reload(&next)
        .expect("the web-frontend reloads");
    let new_token = system.token(&client).await;
    let ack = socket
        .call("reauth", json!({ "token": new_token }))
        .await
        .expect("an ack");
    assert_eq!(ack["ok"], true, "{ack}");

    next.jwt.public_key_files = vec![new_public];
    system
        .socket_keys()
        .reload(&next)
        .expect("retires the old key");
    let refusal =
        SioClient::refusal_with_auth(&system.socket_url, Some(json!({ "token": old_token })))
            .await
            .expect("refused");
    assert_eq!(refusal, "not valid token");
    SioClient::connect_with_auth(&system.socket_url, &new_token)
        .await
        .expect("the new key's tokens");
    socket
        .expect_no_event("session_ended", Duration::from_millis(200))
        .await
        .expect("the socket stays");
    // A reload that does not build keeps the keys in use.
    next.jwt.public_key_files = vec![dir.join("missing.pub.pem")];
    let error = system.socket_keys().reload(&next).expect_err("refused");
    assert!(
        error
            .to_string()
            .starts_with("jwt.public_key_files: cannot read"),
        "{error}"
    );
    SioClient::connect_with_auth(&system.socket_url, &new_token)
        .await
        .expect("still the same keys");
}

const NEW_SECRET: &str = "rotated-shared-key-for-the-cross-service-tests-9876";

/// HS256 rotation: the new secret signs, the previous one verifies until its
/// end; sockets stay connected throughout.
#[tokio::test]
async fn a_shared_secret_rotation_keeps_sockets_and_ends_the_old_key_on_time() {
    let system = spawn_system().await;
    let client = system.log_in("gonzalo", "password").await;
    let old_token = system.token(&client).await;
    assert!(
        header(&old_token).get("kid").is_none(),
        "the contract's header"
    );
    let socket = SioClient::connect_with_auth(&system.socket_url, &old_token)
        .await
        .expect("accepted");

    // The overlap ends 4 s from now (RFC 3339, whole seconds).
    let until = claims::unix_now() + 4;
    let until_text = time_rfc3339(until);
    let mut next = system.settings().clone();
    next.jwt.secret = Some(SecretString::from(NEW_SECRET));
    next.jwt.previous_secret = Some(SecretString::from(SECRET));
    next.jwt.previous_secret_valid_until = Some(until_text);
    // A reload changes keys only: not the lifetime revocations were sized for.
    next.jwt.ttl_secs = 1;
    next.validate().expect("a valid rotation");
    // Verifiers first, then the signer: no token is ever unverifiable.
    system
        .socket_keys()
        .reload(&next)
        .expect("socket server reloads");
    system.web_keys.reload(&next).expect("web-frontend reloads");

    let new_token = system.token(&client).await;
    assert!(
        header(&new_token).get("kid").is_some(),
        "kid while rotating"
    );
    let payload: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(new_token.split('.').nth(1).expect("a payload"))
            .expect("base64url"),
    )
    .expect("JSON");
    assert_eq!(
        payload["exp"].as_i64().expect("exp") - payload["iat"].as_i64().expect("iat"),
        300,
        "the lifetime of the start"
    );
    let ack = socket
        .call("reauth", json!({ "token": new_token }))
        .await
        .expect("an ack");
    assert_eq!(ack["ok"], true, "{ack}");
    SioClient::connect_with_auth(&system.socket_url, &old_token)
        .await
        .expect("the previous secret's tokens during the overlap");
    let old_socket = SioClient::connect_with_auth(&system.socket_url, &old_token)
        .await
        .expect("accepted");

    // After the overlap: refused, though the token itself has not expired.
    refused_within(
        &system,
        &old_token,
        Duration::from_secs(10),
        "the previous secret still works 10 s after its end",
    )
    .await;
    assert!(claims::unix_now() >= until, "not before its end");
    SioClient::connect_with_auth(&system.socket_url, &new_token)
        .await
        .expect("the new secret's tokens");
    // Sockets opened with old-key tokens stay (until their own exp).
    old_socket
        .emit("message", json!("after the overlap"))
        .await
        .expect("emits");
    assert_eq!(
        old_socket
            .next_event("message", Duration::from_secs(2))
            .await
            .expect("still connected")["text"],
        "after the overlap"
    );
    socket
        .expect_no_event("token_expired", Duration::from_millis(100))
        .await
        .expect("the first socket stays too");
}

/// Seconds since the Unix epoch as RFC 3339 UTC.
fn time_rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .expect("a time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formats")
}

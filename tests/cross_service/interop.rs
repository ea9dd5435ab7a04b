//! Interop with another JWT library: `jose` (npm) signs tokens with our key
//! pairs (EdDSA, ES256) and the shared secret (HS256), which our socket-server
//! accepts; and jose accepts the web-frontend's tokens through its JWK Set.
//! The checks are `tests/js/interop.test.mjs`; this test starts the services.

use std::time::Duration;

use claims::Algorithm;

use crate::helpers::*;
use crate::keys::{KeyDir, asymmetric_settings};
use crate::node;

#[tokio::test]
async fn jose_tokens_are_accepted_and_jose_accepts_ours_through_the_jwk_set() {
    node::require_package("jose");
    node::require_package("socket.io-client");
    let mut env: Vec<(String, String)> = vec![("TOKEN_USER".into(), "gonzalo".into())];
    // The services run until the test ends: keep every system (and key
    // directory: each is removed when dropped).
    let mut systems = Vec::new();
    let mut dirs = Vec::new();
    for (algorithm, prefix) in [(Algorithm::EdDSA, "EDDSA"), (Algorithm::ES256, "ES256")] {
        let dir = KeyDir::new(&format!("interop-{}", algorithm.as_str()));
        let (private, public) = dir.pair("signing", algorithm);
        let system = spawn_system_with(asymmetric_settings(algorithm, &private)).await;
        let token = system.demo_token().await;
        let path = |path: &std::path::Path| path.to_str().expect("a UTF-8 path").to_owned();
        env.extend([
            (format!("{prefix}_SOCKET_URL"), system.socket_url.clone()),
            (format!("{prefix}_WEB_URL"), system.web_url.clone()),
            (format!("{prefix}_PRIVATE_KEY_FILE"), path(&private)),
            (format!("{prefix}_PUBLIC_KEY_FILE"), path(&public)),
            (format!("{prefix}_TOKEN"), token),
        ]);
        systems.push(system);
        dirs.push(dir);
    }
    let shared = spawn_system().await;
    env.extend([
        ("HS256_SOCKET_URL".into(), shared.socket_url.clone()),
        ("HS256_SECRET".into(), SECRET.into()),
    ]);
    systems.push(shared);

    let env: Vec<(&str, String)> = env
        .iter()
        .map(|(name, value)| (name.as_str(), value.clone()))
        .collect();
    // The suite takes a second or two; the deadline only stops a hung run.
    node::run_suite("interop.test.mjs", &env, Duration::from_secs(120)).await;
}

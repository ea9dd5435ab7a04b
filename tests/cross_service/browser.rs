//! The live page in a real headless Chromium (`tests/js/browser.test.mjs`,
//! playwright-core driving Debian's chromium).

use std::path::Path;
use std::time::Duration;

use crate::helpers::*;
use crate::node;

const CHROMIUM: &str = "/usr/bin/chromium";
const TOKEN_TTL_SECS: u64 = 4;
/// The server API's key, on both services: the web-frontend publishes sign-in
/// notices with it, the suite publishes notices of its own.
const API_KEY: &str = "browser-tests-server-api-key-0123456789abcdef";
/// A third user, who may join `team:42` (and no other room); the second user
/// may join none.
const THIRD_USER: &str = "carol";
const THIRD_PASSWORD: &str = "carol's password";
/// A short recovery window: the suite waits past it to see a reconnection
/// that cannot recover (every other cut comes back within it).
const RECOVERY_SECS: u64 = 5;

#[tokio::test]
async fn the_live_page_works_in_a_real_browser() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| CHROMIUM.to_owned());
    assert!(
        Path::new(&chromium).is_file(),
        "{chromium} is missing: apt-get install chromium (scripts/test does it)"
    );
    node::require_package("playwright-core");
    // Short tokens: the page must refresh them in-band, again and again.
    let mut settings = settings();
    settings.jwt.ttl_secs = TOKEN_TTL_SECS;
    settings.jwt.leeway_secs = 1;
    settings.api.key = Some(secrecy::SecretString::from(API_KEY));
    settings.socket.recovery_secs = RECOVERY_SECS;
    settings.users.push(settings::UserEntry {
        username: THIRD_USER.into(),
        password_hash: web_frontend::users::hash_password(THIRD_PASSWORD).expect("hash"),
        rooms: vec!["team:42".into()],
    });
    let system = spawn_system_with(settings).await;
    // gonzalo's token once his rooms are narrowed to `team:42` (no `org:7:*`
    // any more), valid for the whole suite.
    let mut narrow = claims_now("gonzalo");
    narrow["rooms"] = serde_json::json!(["team:42"]);
    narrow["exp"] = serde_json::json!(claims::unix_now() + 900);
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");

    let env = [
        ("WEB_URL", system.web_url.clone()),
        ("SOCKET_URL", system.socket_url.clone()),
        ("USER1", "gonzalo".to_owned()),
        ("PASS1", "password".to_owned()),
        ("USER2", SECOND_USER.to_owned()),
        ("PASS2", SECOND_PASSWORD.to_owned()),
        ("USER3", THIRD_USER.to_owned()),
        ("PASS3", THIRD_PASSWORD.to_owned()),
        ("TOKEN_NARROW_ROOMS", mint(&narrow)),
        ("TOKEN_EXPIRED", expired_token("gonzalo")),
        ("TOKEN_TTL_SECS", TOKEN_TTL_SECS.to_string()),
        ("API_KEY", API_KEY.to_owned()),
        ("RECOVERY_SECS", RECOVERY_SECS.to_string()),
        ("CHROMIUM", chromium),
        ("SCREENSHOT_DIR", screenshots.display().to_string()),
    ];
    node::run_suite("browser.test.mjs", &env, Duration::from_secs(300)).await;
}

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
    let system = spawn_system_with(settings).await;
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");

    let env = [
        ("WEB_URL", system.web_url.clone()),
        ("SOCKET_URL", system.socket_url.clone()),
        ("USER1", "gonzalo".to_owned()),
        ("PASS1", "password".to_owned()),
        ("USER2", SECOND_USER.to_owned()),
        ("PASS2", SECOND_PASSWORD.to_owned()),
        ("TOKEN_EXPIRED", expired_token("gonzalo")),
        ("TOKEN_TTL_SECS", TOKEN_TTL_SECS.to_string()),
        ("API_KEY", API_KEY.to_owned()),
        ("CHROMIUM", chromium),
        ("SCREENSHOT_DIR", screenshots.display().to_string()),
    ];
    node::run_suite("browser.test.mjs", &env, Duration::from_secs(300)).await;
}

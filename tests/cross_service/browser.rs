//! The live page in a real headless Chromium (`tests/js/browser.test.mjs`,
//! playwright-core driving Debian's chromium).

use std::path::Path;
use std::time::Duration;

use crate::helpers::*;

const NODE_DEADLINE: Duration = Duration::from_secs(300);
const CHROMIUM: &str = "/usr/bin/chromium";
const TOKEN_TTL_SECS: u64 = 4;

#[tokio::test]
async fn the_live_page_works_in_a_real_browser() {
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| CHROMIUM.to_owned());
    assert!(
        Path::new(&chromium).is_file(),
        "{chromium} is missing: apt-get install chromium (scripts/test does it)"
    );
    assert!(
        js.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run `npm ci --prefix tests/js` (scripts/test does it)"
    );
    // Short tokens: the page must refresh them in-band, again and again.
    let mut settings = settings();
    settings.jwt.ttl_secs = TOKEN_TTL_SECS;
    settings.jwt.leeway_secs = 1;
    let system = spawn_system_with(settings).await;
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");

    let run = tokio::process::Command::new("node")
        .args(["--test", "--test-reporter=spec", "browser.test.mjs"])
        .current_dir(&js)
        .env("WEB_URL", &system.web_url)
        .env("SOCKET_URL", &system.socket_url)
        .env("USER1", "gonzalo")
        .env("PASS1", "password")
        .env("USER2", SECOND_USER)
        .env("PASS2", SECOND_PASSWORD)
        .env("TOKEN_EXPIRED", expired_token("gonzalo"))
        .env("TOKEN_TTL_SECS", TOKEN_TTL_SECS.to_string())
        .env("CHROMIUM", &chromium)
        .env("SCREENSHOT_DIR", &screenshots)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(NODE_DEADLINE, run)
        .await
        .expect("the browser suite finishes in time")
        .expect("node runs (is Node.js installed?)");

    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the browser suite failed:\n{report}"
    );
    assert!(
        report.contains("fail 0"),
        "the browser suite ran no test or failed:\n{report}"
    );
}

//! Runs one `node --test` suite of `tests/js` against the services under test.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The `tests/js` folder (its npm packages installed by `npm ci`).
pub(crate) fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

/// Fails unless an npm package is installed in `tests/js`.
pub(crate) fn require_package(package: &str) {
    assert!(
        js_dir().join("node_modules").join(package).is_dir(),
        "{package} is not installed: run `npm ci --prefix tests/js` (scripts/test does it)"
    );
}

/// Runs `node --test <suite>` in `tests/js` with `env`, within `deadline`, and
/// fails the Rust test (with Node's whole report) unless every test passed.
pub(crate) async fn run_suite(suite: &str, env: &[(&str, String)], deadline: Duration) {
    let mut command = tokio::process::Command::new("node");
    command
        .args(["--test", "--test-reporter=spec", suite])
        .current_dir(js_dir())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::time::timeout(deadline, command.output())
        .await
        .unwrap_or_else(|_| panic!("{suite} did not finish within {deadline:?}"))
        .expect("node runs (is Node.js installed?)");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{suite} failed:\n{report}");
    assert!(
        report.contains("fail 0"),
        "{suite} ran no test or reported failures:\n{report}"
    );
}

//! Finds what the binary embeds: the workspace's `templates/` (exported as
//! `AUTHBRIDGE_TEMPLATES_DIR`, so no source file climbs out of the crate with
//! `../`), and the official socket.io-client browser bundle, which `npm ci` in
//! `client/` produces (pinned by its lockfile, never committed). When the
//! bundle is missing and npm is at hand, this runs `npm ci` once, so that a
//! plain `cargo build` works on a machine with Node.js.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    export_templates(&manifest);
    export_client_bundle(&manifest.join("client"));
}

/// The product design names the top-level `templates/` as the one place for
/// templates: the crate reaches it through this variable alone.
fn export_templates(manifest: &Path) {
    let templates = manifest.join("../../templates");
    let Ok(templates) = templates.canonicalize() else {
        panic!(
            "the workspace's templates/ directory is missing (looked for {}): \
             web-frontend is built inside the authbridge workspace",
            templates.display()
        );
    };
    // The directory too: a template added or removed reruns this.
    println!("cargo:rerun-if-changed={}", templates.display());
    let entries = std::fs::read_dir(&templates).expect("templates/ is readable");
    for entry in entries {
        let path = entry.expect("templates/ is readable").path();
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!(
        "cargo:rustc-env=AUTHBRIDGE_TEMPLATES_DIR={}",
        templates.display()
    );
}

fn export_client_bundle(client: &Path) {
    let bundle = client.join("dist/socket.io.min.js");
    for watched in [
        "package-lock.json",
        "package.json",
        "build.mjs",
        "dist/socket.io.min.js",
    ] {
        println!("cargo:rerun-if-changed={}", client.join(watched).display());
    }
    if !bundle.is_file() {
        install(client);
    }
    if !bundle.is_file() {
        panic!(
            "the page's Socket.IO client is missing: run `npm ci --prefix crates/web-frontend/client` \
             (Node.js 18+ and npm needed; scripts/run and scripts/test do it)"
        );
    }
    let bundle = bundle.canonicalize().expect("the bundle exists");
    let map = bundle.with_extension("js.map");
    println!("cargo:rustc-env=SOCKET_IO_CLIENT_JS={}", bundle.display());
    println!("cargo:rustc-env=SOCKET_IO_CLIENT_JS_MAP={}", map.display());
}

fn install(client: &Path) {
    println!(
        "cargo:warning=crates/web-frontend/client/dist is missing: running `npm ci` in {}",
        client.display()
    );
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(client)
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => println!("cargo:warning=`npm ci` in client/ failed: {status}"),
        Err(error) => println!("cargo:warning=npm could not be run: {error}"),
    }
}

//! Embeds the official socket.io-client browser bundle, which `npm ci` in
//! `client/` produces (pinned by its lockfile, never committed). When it is
//! missing and npm is at hand, this runs `npm ci` once, so that a plain
//! `cargo build` works on a machine with Node.js.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let client = manifest.join("../../client");
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
        install(&client);
    }
    if !bundle.is_file() {
        panic!(
            "the page's Socket.IO client is missing: run `npm ci --prefix client` \
             (Node.js 18+ and npm needed; scripts/run and scripts/test do it)"
        );
    }
    let bundle = bundle.canonicalize().expect("the bundle exists");
    let map = bundle.with_extension("js.map");
    println!("cargo:rustc-env=SOCKET_IO_CLIENT_JS={}", bundle.display());
    println!("cargo:rustc-env=SOCKET_IO_CLIENT_JS_MAP={}", map.display());
}

fn install(client: &Path) {
    println!("cargo:warning=client/dist is missing: running `npm ci --prefix client`");
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

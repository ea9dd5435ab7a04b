//! Bring your own frontend: a socket-server alone (no web-frontend), and the
//! application's own code — the snippets in `examples/`, run as child
//! processes with PHP, Python, Node and curl — making the tokens, publishing
//! to a user, asking who is online and revoking a session at logout, with a
//! real Socket.IO client on the other end. `docs/server-api.md` embeds each
//! snippet verbatim, so what the docs show is what these tests run.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use base64::Engine as _;
use secrecy::SecretString;
use serde_json::{Value, json};
use settings::Settings;

use crate::helpers::{SECRET, mint, settings};
use crate::socketio::{DEADLINE, SioClient};

/// The server API's key in these tests (≥ 32 bytes, not the token key).
const API_KEY: &str = "byo-tests-server-api-key-0123456789abcdef";

/// What a snippet runs with, and the Debian packages that bring it.
struct Language {
    name: &'static str,
    program: &'static str,
    token: &'static str,
    api: &'static str,
    packages: &'static str,
}

const PHP: Language = Language {
    name: "PHP",
    program: "php",
    token: "examples/php/token.php",
    api: "examples/php/api.php",
    packages: "php-cli php-curl",
};

// Debian's python3, with Debian's python3-requests (a pyenv shim earlier on
// PATH may have neither).
const PYTHON: Language = Language {
    name: "Python",
    program: "/usr/bin/python3",
    token: "examples/python/socket_token.py",
    api: "examples/python/socket_api.py",
    packages: "python3 python3-requests",
};

const NODE: Language = Language {
    name: "Node",
    program: "node",
    token: "examples/node/token.mjs",
    api: "examples/node/api.mjs",
    packages: "nodejs",
};

/// Every file in `examples/`: each one is run by a test below and shown in
/// the API reference.
const EXAMPLES: &[&str] = &[
    "examples/curl.sh",
    "examples/node/api.mjs",
    "examples/node/token.mjs",
    "examples/php/api.php",
    "examples/php/token.php",
    "examples/python/socket_api.py",
    "examples/python/socket_token.py",
];

/// The API reference that embeds them.
const API_REFERENCE: &str = "docs/server-api.md";

/// The data every test publishes: nested objects and arrays, an empty object
/// (which PHP must not turn into `[]`), non-ASCII and escaped text, numbers,
/// `null` and booleans.
fn notice_data(language: &str) -> Value {
    json!({
        "text": format!("hi from {language} — é ☃ \"quoted\" \\ / <b>"),
        "n": 42,
        "f": 1.5,
        "negative": -7,
        "list": [1, "two", null, true, false, {}, []],
        "empty": {},
        "nested": {"a": {"b": [{"c": "d"}]}},
    })
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A socket-server on its own, on 127.0.0.1:0, with the API on; its URL.
async fn socket_server_alone(mut settings: Settings) -> String {
    settings.api.key = Some(SecretString::from(API_KEY));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    settings.socket.addr = listener.local_addr().expect("addr").to_string();
    let server = socket_server::Application::build_with_listener(&settings, listener)
        .await
        .expect("the socket-server builds");
    let started = claims::unix_now();
    tokio::spawn(server.run_until(std::future::pending()));
    // A token issued no later than the server's start (whole seconds) waits
    // up to 5 s at the handshake for a web-frontend's revocation list, which
    // never comes here: the tests' tokens are issued after that second.
    while claims::unix_now() <= started {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    url
}

/// The environment the snippets read.
struct Env {
    socket_url: String,
    api_key: String,
    /// `JWT_ISSUER` / `JWT_AUDIENCE`, when not the defaults.
    issuer: Option<(String, String)>,
}

impl Env {
    fn new(socket_url: &str) -> Self {
        Self {
            socket_url: socket_url.to_owned(),
            api_key: API_KEY.to_owned(),
            issuer: None,
        }
    }
}

/// Runs `program script args…` from the repository root with the snippets'
/// environment (and nothing of ours that they read besides).
async fn run(program: &str, script: &str, args: &[&str], env: &Env, packages: &str) -> Output {
    let mut command = tokio::process::Command::new(program);
    command
        .arg(script)
        .args(args)
        .current_dir(repo())
        .env("SOCKET_URL", &env.socket_url)
        .env("JWT_SECRET", SECRET)
        .env("API_KEY", &env.api_key)
        .env_remove("JWT_ISSUER")
        .env_remove("JWT_AUDIENCE")
        .kill_on_drop(true);
    if let Some((issuer, audience)) = &env.issuer {
        command
            .env("JWT_ISSUER", issuer)
            .env("JWT_AUDIENCE", audience);
    }
    let deadline = Duration::from_secs(30);
    tokio::time::timeout(deadline, command.output())
        .await
        .unwrap_or_else(|_| panic!("{program} {script} {args:?}: no answer within {deadline:?}"))
        .unwrap_or_else(|error| {
            panic!("{program} does not run ({error}): install {packages} (scripts/test does it)")
        })
}

/// What a snippet printed, which must have succeeded.
fn stdout_of(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap_or_else(|_| panic!("{what}: its output is not UTF-8"))
        .trim()
        .to_owned()
}

/// The one JSON document a snippet printed: the API's answer.
fn json_of(output: &Output, what: &str) -> Value {
    let text = stdout_of(output, what);
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what} printed no JSON: {text:?}"))
}

impl Language {
    async fn token(&self, username: &str, sid: &str, env: &Env) -> String {
        let what = format!("{} {username} {sid}", self.token);
        let output = run(
            self.program,
            self.token,
            &[username, sid],
            env,
            self.packages,
        )
        .await;
        stdout_of(&output, &what)
    }

    async fn api(&self, args: &[&str], env: &Env) -> Value {
        let what = format!("{} {}", self.api, args.join(" "));
        let output = run(self.program, self.api, args, env, self.packages).await;
        json_of(&output, &what)
    }

    async fn api_refused(&self, args: &[&str], env: &Env) -> String {
        let output = run(self.program, self.api, args, env, self.packages).await;
        assert!(
            !output.status.success(),
            "{} {args:?} succeeded where the API refuses",
            self.api
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }
}

/// A JWS part, decoded.
fn part(token: &str, index: usize) -> Vec<u8> {
    let part = token
        .split('.')
        .nth(index)
        .unwrap_or_else(|| panic!("{token:?} is no compact JWS"));
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap_or_else(|_| panic!("{token:?}: part {index} is not base64url without padding"))
}

/// The token a snippet made is the contract's: header exactly
/// `{"alg":"HS256","typ":"JWT"}`, and every claim. Returns its claims.
fn check_token(token: &str, username: &str, sid: &str, iss: &str, aud: &str) -> Value {
    assert_eq!(token.split('.').count(), 3, "{token:?}");
    assert_eq!(
        String::from_utf8(part(token, 0)).expect("UTF-8 header"),
        r#"{"alg":"HS256","typ":"JWT"}"#
    );
    assert_eq!(part(token, 2).len(), 32, "an HMAC-SHA256 signature");
    let claims: Value = serde_json::from_slice(&part(token, 1)).expect("JSON claims");
    let now = claims::unix_now();
    let iat = claims["iat"].as_i64().expect("iat: an integer");
    assert!((now - 5..=now + 1).contains(&iat), "iat {iat}, now {now}");
    assert_eq!(claims["exp"].as_i64(), Some(iat + 300), "exp: iat + 300");
    assert_eq!(claims["sub"], username);
    assert_eq!(claims["user"], json!({ "username": username }));
    assert_eq!(claims["iss"], iss);
    assert_eq!(claims["aud"], aud);
    assert_eq!(claims["sid"], sid);
    assert!(
        claims["jti"].as_str().is_some_and(|jti| jti.len() >= 16),
        "jti: {}",
        claims["jti"]
    );
    claims
}

/// Polls `presence user:NAME` through a snippet until it says `sockets`.
async fn presence_becomes(language: &Language, username: &str, sockets: u64, env: &Env) {
    let target = format!("user:{username}");
    let expected = json!({"user": username, "online": sockets > 0, "sockets": sockets});
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let answer = language.api(&["presence", &target], env).await;
        if answer == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} presence {target}: {answer}, expected {expected}",
            language.name
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A login session id as the snippets' `new_session_id` makes them: 32 hex
/// characters (fixed here, per test, so a failure names it).
fn session_id(language: &str) -> String {
    let tag: String = language.bytes().map(|byte| format!("{byte:02x}")).collect();
    format!("{tag:0<32}")
}

/// The whole path for one language: its token gets a socket `welcome`d, its
/// publish reaches that socket with the exact data, presence follows, and its
/// revoke ends the socket and refuses the session's tokens afterwards.
async fn bring_your_own_frontend(language: &Language, username: &str, env: &Env) {
    let sid = session_id(language.name);
    let (iss, aud) = env
        .issuer
        .clone()
        .unwrap_or_else(|| ("web-frontend".to_owned(), "socket-server".to_owned()));
    let socket_url = env.socket_url.as_str();

    // Nobody is connected yet.
    assert_eq!(
        language.api(&["presence"], env).await,
        json!({"users": 0, "sockets": 0})
    );
    presence_becomes(language, username, 0, env).await;

    // The application's own token opens a socket.
    let token = language.token(username, &sid, env).await;
    let claims = check_token(&token, username, &sid, &iss, &aud);
    let socket = SioClient::connect_with_auth(socket_url, &token)
        .await
        .unwrap_or_else(|error| panic!("{} token refused: {error:#}", language.name));
    assert_eq!(socket.welcome(), json!({ "username": username }));
    presence_becomes(language, username, 1, env).await;
    assert_eq!(
        language.api(&["presence"], env).await,
        json!({"users": 1, "sockets": 1})
    );

    // A publication to the user reaches its socket, with the exact data.
    let data = notice_data(language.name);
    let target = format!("user:{username}");
    let answer = language
        .api(&["publish", &target, "notice", &data.to_string()], env)
        .await;
    assert_eq!(answer["sockets"], 1, "{answer}");
    assert!(
        answer["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{answer}"
    );
    let received = socket
        .next_event("notice", DEADLINE)
        .await
        .expect("the published notice");
    assert_eq!(received, data);
    // Through the session too; to another user, it reaches no one.
    let session = format!("session:{sid}");
    let answer = language
        .api(
            &["publish", &session, "order.shipped", r#"{"order":7}"#],
            env,
        )
        .await;
    assert_eq!(answer["sockets"], 1, "{answer}");
    assert_eq!(
        socket
            .next_event("order.shipped", DEADLINE)
            .await
            .expect("the session's event"),
        json!({"order": 7})
    );
    let answer = language
        .api(&["publish", "user:somebody-else", "notice", "null"], env)
        .await;
    assert_eq!(answer["sockets"], 0, "{answer}");
    socket
        .expect_no_event("notice", Duration::from_millis(300))
        .await
        .expect("nothing for another user");

    // The API's refusals reach the caller as failures, with the API's reason.
    let refusal = language
        .api_refused(&["publish", &target, "message", "1"], env)
        .await;
    assert!(refusal.contains("is reserved"), "{refusal}");
    let wrong_key = Env {
        api_key: "not-the-api-key-not-the-api-key-0123456789".to_owned(),
        socket_url: env.socket_url.clone(),
        issuer: None,
    };
    let refusal = language.api_refused(&["presence"], &wrong_key).await;
    assert!(refusal.contains("unauthorized"), "{refusal}");

    // Logout: the session is revoked until its last token's exp.
    let until = claims["exp"].as_i64().expect("exp").to_string();
    let answer = language.api(&["revoke", &sid, &until], env).await;
    assert_eq!(answer, json!({"sockets": 1}));
    socket
        .next_event("session_ended", DEADLINE)
        .await
        .expect("session_ended on revoke");
    socket
        .disconnected(DEADLINE)
        .await
        .expect("the revoked socket is disconnected");
    presence_becomes(language, username, 0, env).await;

    // Any token of that session is refused now, a new login's is not.
    let again = language.token(username, &sid, env).await;
    let refusal = SioClient::refusal_with_auth(socket_url, Some(json!({ "token": again })))
        .await
        .expect("a refusal");
    assert_eq!(refusal, "token revoked");
    let next_login = language
        .token(username, &session_id(&format!("{} 2", language.name)), env)
        .await;
    let socket = SioClient::connect_with_auth(socket_url, &next_login)
        .await
        .unwrap_or_else(|error| panic!("a new session's token: {error:#}"));
    assert_eq!(socket.welcome(), json!({ "username": username }));
    socket.disconnect().await.expect("disconnect");
}

#[tokio::test]
async fn a_php_application_makes_tokens_publishes_and_revokes_with_the_socket_server_alone() {
    let url = socket_server_alone(settings()).await;
    bring_your_own_frontend(&PHP, "php-user", &Env::new(&url)).await;
}

#[tokio::test]
async fn a_python_application_makes_tokens_publishes_and_revokes_with_the_socket_server_alone() {
    let url = socket_server_alone(settings()).await;
    bring_your_own_frontend(&PYTHON, "python-user", &Env::new(&url)).await;
}

/// Node, with an issuer and audience of the application's own (the snippets
/// read `JWT_ISSUER` / `JWT_AUDIENCE` as the socket-server reads `jwt.issuer`
/// / `jwt.audience`).
#[tokio::test]
async fn a_node_application_makes_tokens_publishes_and_revokes_with_the_socket_server_alone() {
    let mut settings = settings();
    settings.jwt.issuer = "my-shop".to_owned();
    settings.jwt.audience = "my-sockets".to_owned();
    let url = socket_server_alone(settings).await;
    let mut env = Env::new(&url);
    env.issuer = Some(("my-shop".to_owned(), "my-sockets".to_owned()));
    bring_your_own_frontend(&NODE, "node-user", &env).await;
}

/// `examples/curl.sh`: publish, presence and revoke with curl, for a socket
/// opened with a token of the same shape.
#[tokio::test]
async fn curl_publishes_asks_for_presence_and_revokes() {
    let url = socket_server_alone(settings()).await;
    let env = Env::new(&url);
    let curl = Language {
        name: "curl",
        program: "sh",
        token: "",
        api: "examples/curl.sh",
        packages: "curl",
    };
    let sid = session_id("curl");
    let mut claims = crate::helpers::claims_now("curl-user");
    claims["sid"] = json!(sid);
    let token = mint(&claims);
    let socket = SioClient::connect_with_auth(&url, &token)
        .await
        .expect("welcome");
    presence_becomes(&curl, "curl-user", 1, &env).await;
    assert_eq!(
        curl.api(&["presence"], &env).await,
        json!({"users": 1, "sockets": 1})
    );

    let data = notice_data("curl");
    let answer = curl
        .api(
            &["publish", "user:curl-user", "notice", &data.to_string()],
            &env,
        )
        .await;
    assert_eq!(answer["sockets"], 1, "{answer}");
    assert_eq!(
        socket
            .next_event("notice", DEADLINE)
            .await
            .expect("the notice"),
        data
    );

    let wrong_key = Env {
        api_key: "not-the-api-key-not-the-api-key-0123456789".to_owned(),
        ..Env::new(&url)
    };
    let refusal = curl.api_refused(&["presence"], &wrong_key).await;
    assert!(refusal.contains(r#"{"error":"unauthorized"}"#), "{refusal}");

    let until = claims["exp"].as_i64().expect("exp").to_string();
    assert_eq!(
        curl.api(&["revoke", &sid, &until], &env).await,
        json!({"sockets": 1})
    );
    socket
        .next_event("session_ended", DEADLINE)
        .await
        .expect("session_ended");
    socket.disconnected(DEADLINE).await.expect("disconnected");
    let refusal = SioClient::refusal_with_auth(&url, Some(json!({ "token": token })))
        .await
        .expect("a refusal");
    assert_eq!(refusal, "token revoked");
    presence_becomes(&curl, "curl-user", 0, &env).await;
}

/// The fenced block right after `<!-- file: PATH -->` in the API reference.
fn embedded<'a>(doc: &'a str, path: &str) -> Option<&'a str> {
    let marker = format!("<!-- file: {path} -->\n");
    let after = &doc[doc.find(&marker)? + marker.len()..];
    let body = &after[after.strip_prefix("```")?.find('\n')? + 4..];
    let end = body.find("\n```\n")?;
    Some(&body[..=end])
}

#[test]
fn the_api_reference_embeds_every_example_verbatim() {
    let doc = std::fs::read_to_string(repo().join(API_REFERENCE))
        .unwrap_or_else(|error| panic!("{API_REFERENCE}: {error}"));
    let mut on_disk = Vec::new();
    let mut folders = vec![repo().join("examples")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("examples/ lists") {
            let path: PathBuf = entry.expect("an entry").path();
            // What running Python may leave beside the scripts; the webhook
            // receivers, which docs/webhooks.md shows (webhooks_verify.rs).
            if path.file_name().is_some_and(|name| name == "__pycache__")
                || path == repo().join("examples/webhooks")
            {
                continue;
            }
            if path.is_dir() {
                folders.push(path);
            } else {
                let relative = path.strip_prefix(repo()).expect("under the repository");
                on_disk.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    on_disk.sort();
    assert_eq!(
        on_disk, EXAMPLES,
        "examples/ holds exactly the snippets the tests run"
    );
    for path in EXAMPLES {
        let file = std::fs::read_to_string(repo().join(path)).expect("the example reads");
        let shown = embedded(&doc, path).unwrap_or_else(|| {
            panic!("{API_REFERENCE} has no fenced block after `<!-- file: {path} -->`")
        });
        assert!(
            shown == file,
            "{API_REFERENCE} shows another {path} than the file: copy the file into the block"
        );
    }
}

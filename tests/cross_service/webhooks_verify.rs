//! The receiver-side snippets of `examples/webhooks/` — PHP (`php -S`),
//! Python, Node, and Node with the official Standard Webhooks library — run
//! as the small receivers they are, as child processes: every real request a
//! socket-server sent is forwarded to each, which must take it (and print the
//! event), while a tampered body, a wrong key, a timestamp more than 5
//! minutes old or ahead, a missing signature and another event's signature
//! are refused. `docs/webhooks.md` embeds each snippet verbatim, so what the
//! page shows is what these tests run.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::api::http_client;
use crate::webhooks::{
    HOOK_SECRET, Hook, Node, OFFLINE, ONLINE, Receiver, connect, sign, webhook_settings,
};

/// One snippet, how it runs, and what brings it.
struct Snippet {
    name: &'static str,
    program: &'static str,
    args: &'static [&'static str],
    packages: &'static str,
}

const SNIPPETS: &[Snippet] = &[
    Snippet {
        name: "PHP",
        program: "php",
        args: &["-S", "127.0.0.1:0", "examples/webhooks/verify.php"],
        packages: "php-cli",
    },
    // Debian's python3 (a pyenv shim earlier on PATH may be another).
    Snippet {
        name: "Python",
        program: "/usr/bin/python3",
        args: &["examples/webhooks/verify.py"],
        packages: "python3",
    },
    Snippet {
        name: "Node",
        program: "node",
        args: &["examples/webhooks/verify.mjs"],
        packages: "nodejs",
    },
    Snippet {
        name: "Node with the standardwebhooks library",
        program: "node",
        args: &["examples/webhooks/verify-standardwebhooks.mjs"],
        packages: "nodejs, then `npm ci --prefix examples/webhooks`",
    },
];

/// Every file of `examples/webhooks/` (what npm and Python leave beside them
/// aside), each shown on the webhooks page.
const FILES: &[&str] = &[
    "examples/webhooks/package.json",
    "examples/webhooks/verify-standardwebhooks.mjs",
    "examples/webhooks/verify.mjs",
    "examples/webhooks/verify.php",
    "examples/webhooks/verify.py",
];

const PAGE: &str = "docs/webhooks.md";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A snippet running as a receiver.
struct Running {
    name: &'static str,
    url: String,
    /// What it printed on stdout: one JSON line per event it took.
    printed: mpsc::UnboundedReceiver<String>,
    _child: Child,
}

async fn run(snippet: &Snippet, secret: &str) -> Running {
    let mut child = Command::new(snippet.program)
        .args(snippet.args)
        .current_dir(repo())
        .env("WEBHOOK_SECRET", secret)
        .env("PORT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "{} does not run ({error}): install {}",
                snippet.program, snippet.packages
            )
        });
    let (printed, lines) = mpsc::unbounded_channel();
    let (said, mut heard) = mpsc::unbounded_channel();
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let (stdout_said, stderr_said) = (said.clone(), said);
    tokio::spawn(async move {
        let mut stdout = stdout.lines();
        while let Ok(Some(line)) = stdout.next_line().await {
            if line.starts_with('{') {
                let _ = printed.send(line);
            } else {
                let _ = stdout_said.send(line);
            }
        }
    });
    tokio::spawn(async move {
        let mut stderr = stderr.lines();
        while let Ok(Some(line)) = stderr.next_line().await {
            let _ = stderr_said.send(line);
        }
    });
    // `listening on http://127.0.0.1:PORT` (PHP: `Development Server
    // (http://127.0.0.1:PORT) started`).
    let mut seen = Vec::new();
    let url = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = heard.recv().await {
            if let Some(at) = line.find("http://127.0.0.1:") {
                let port: String = line[at + "http://127.0.0.1:".len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                return Some(format!("http://127.0.0.1:{port}/"));
            }
            seen.push(line);
        }
        None
    })
    .await;
    let Ok(Some(url)) = url else {
        panic!("{} says no address: {seen:?}", snippet.name);
    };
    Running {
        name: snippet.name,
        url,
        printed: lines,
        _child: child,
    }
}

/// A request as the socket-server sends it, or altered.
struct Request {
    id: String,
    timestamp: String,
    signature: Option<String>,
    body: String,
}

impl Request {
    fn of(hook: &Hook) -> Self {
        Self {
            id: hook.id.clone(),
            timestamp: hook.timestamp.clone(),
            signature: Some(hook.signature.clone()),
            body: hook.body.clone(),
        }
    }

    /// Signed again, with `secret`, at `timestamp`.
    fn signed_at(hook: &Hook, timestamp: i64, secret: &str) -> Self {
        let timestamp = timestamp.to_string();
        Self {
            signature: Some(sign(secret.as_bytes(), &hook.id, &timestamp, &hook.body)),
            timestamp,
            ..Self::of(hook)
        }
    }
}

impl Running {
    /// POSTs `request`; the status and the answer's text.
    async fn post(&self, request: &Request) -> (u16, String) {
        let mut post = http_client()
            .post(&self.url)
            .header("content-type", "application/json")
            .header("webhook-id", &request.id)
            .header("webhook-timestamp", &request.timestamp)
            .body(request.body.clone());
        if let Some(signature) = &request.signature {
            post = post.header("webhook-signature", signature);
        }
        let response = post.send().await.expect("the snippet answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// It takes `request`, and prints `hook`'s event.
    async fn takes(&mut self, request: &Request, hook: &Hook, what: &str) {
        let (status, text) = self.post(request).await;
        assert!(
            (200..300).contains(&status),
            "{}: {what} refused with {status} {text:?}",
            self.name
        );
        // Printed before the answer, read by another task: a moment.
        let printed = tokio::time::timeout(Duration::from_secs(5), self.printed.recv())
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("{}: {what} taken, nothing printed", self.name));
        let printed: Value = serde_json::from_str(&printed).expect("a JSON line");
        assert_eq!(
            printed,
            json!({"id": hook.id, "type": hook.kind, "user": hook.user}),
            "{}: {what}",
            self.name
        );
    }

    /// It refuses `request` with 400, and handles nothing.
    async fn refuses(&mut self, request: &Request, what: &str) {
        let (status, text) = self.post(request).await;
        assert_eq!(
            status, 400,
            "{}: {what} answered {status} {text:?}",
            self.name
        );
        assert!(
            self.printed.try_recv().is_err(),
            "{}: {what} was handled",
            self.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_php_python_and_node_verifiers_take_real_requests_and_refuse_forgeries() {
    // Real requests: a socket-server's user.online and user.offline for a
    // user whose name needs escaping and more than ASCII.
    let receiver = Receiver::start().await;
    let node = Node::start(&webhook_settings(&receiver)).await;
    let user = "ana maría ☃ \"quoted\" \\ </b>";
    let socket = connect(&node.url, user, 1).await;
    socket.disconnect().await.expect("disconnects");
    receiver
        .wait_user(user, &[ONLINE, OFFLINE], Duration::from_secs(10))
        .await;
    receiver.assert_clean();
    let hooks = receiver.hooks();

    let wrong_key = "not-the-webhook-signing-key-0123456789abcdef";
    for snippet in SNIPPETS {
        let mut running = run(snippet, HOOK_SECRET).await;
        for hook in &hooks {
            let what = format!("{} {}", hook.kind, hook.id);
            running
                .takes(&Request::of(hook), hook, &format!("the real {what}"))
                .await;
            let now = claims::unix_now();
            // Within 5 minutes either way; one good signature among others.
            for (timestamp, age) in [(now - 290, "290 s old"), (now + 290, "290 s ahead")] {
                let request = Request::signed_at(hook, timestamp, HOOK_SECRET);
                running
                    .takes(&request, hook, &format!("{what} {age}"))
                    .await;
            }
            let mut request = Request::of(hook);
            request.signature = Some(format!("v1,bm90IGl0 {} v2,bm90IGl0", hook.signature));
            running
                .takes(&request, hook, &format!("{what} among other signatures"))
                .await;

            let mut tampered = Request::of(hook);
            tampered.body = if hook.kind == ONLINE {
                hook.body.replace(ONLINE, OFFLINE)
            } else {
                hook.body.replace(OFFLINE, ONLINE)
            };
            assert_ne!(tampered.body, hook.body);
            running
                .refuses(&tampered, &format!("{what}, its type changed"))
                .await;
            let mut tampered = Request::of(hook);
            tampered.body = hook.body.replacen("ana", "eve", 1);
            running
                .refuses(&tampered, &format!("{what}, its user changed"))
                .await;
            let mut tampered = Request::of(hook);
            tampered.body.push(' ');
            running
                .refuses(&tampered, &format!("{what}, a byte added"))
                .await;
            let wrong = Request::signed_at(hook, now, wrong_key);
            running
                .refuses(&wrong, &format!("{what} signed with another key"))
                .await;
            for (timestamp, age) in [(now - 305, "305 s old"), (now + 305, "305 s ahead")] {
                let request = Request::signed_at(hook, timestamp, HOOK_SECRET);
                running.refuses(&request, &format!("{what} {age}")).await;
            }
            let mut replayed = Request::of(hook);
            replayed.timestamp = (now - 3600).to_string();
            running
                .refuses(&replayed, &format!("{what} with an hour-old timestamp"))
                .await;
            let mut unsigned = Request::of(hook);
            unsigned.signature = None;
            running
                .refuses(&unsigned, &format!("{what} unsigned"))
                .await;
            let mut other = Request::of(hook);
            other.id = format!("{}0", hook.id);
            running
                .refuses(&other, &format!("{what} under another id"))
                .await;
            let mut bare = Request::of(hook);
            bare.signature = hook.signature.strip_prefix("v1,").map(str::to_owned);
            running
                .refuses(&bare, &format!("{what}, the signature without v1,"))
                .await;
        }
        // A receiver with the wrong key takes nothing.
        let mut wrong = run(snippet, wrong_key).await;
        wrong
            .refuses(
                &Request::of(&hooks[0]),
                "a real request, the receiver's key wrong",
            )
            .await;
    }
}

/// The fenced block right after `<!-- file: PATH -->` in the page.
fn embedded<'a>(doc: &'a str, path: &str) -> Option<&'a str> {
    let marker = format!("<!-- file: {path} -->\n");
    let after = &doc[doc.find(&marker)? + marker.len()..];
    let body = &after[after.strip_prefix("```")?.find('\n')? + 4..];
    let end = body.find("\n```\n")?;
    Some(&body[..=end])
}

#[test]
fn the_webhooks_page_embeds_every_snippet_verbatim() {
    let doc = std::fs::read_to_string(repo().join(PAGE))
        .unwrap_or_else(|error| panic!("{PAGE}: {error}"));
    let mut on_disk: Vec<String> = std::fs::read_dir(repo().join("examples/webhooks"))
        .expect("examples/webhooks/ lists")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        // What npm and Python leave beside the snippets.
        .filter(|name| {
            !["node_modules", "package-lock.json", "__pycache__"].contains(&name.as_str())
        })
        .map(|name| format!("examples/webhooks/{name}"))
        .collect();
    on_disk.sort();
    assert_eq!(
        on_disk, FILES,
        "examples/webhooks/ holds exactly the snippets"
    );
    for path in FILES {
        let file = std::fs::read_to_string(repo().join(path)).expect("the snippet reads");
        let shown = embedded(&doc, path)
            .unwrap_or_else(|| panic!("{PAGE} has no fenced block after `<!-- file: {path} -->`"));
        assert!(
            shown == file,
            "{PAGE} shows another {path} than the file: copy the file into the block"
        );
    }
}

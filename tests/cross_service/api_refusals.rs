//! Every refusal row of the server API's contract, status and body, in both
//! modes: a refused request changes nothing (a socket of its targets receives
//! nothing, its session stays), is counted in `/metrics` by reason, and the
//! requests at the very edge of each limit are carried out. Without a key,
//! every `/api` path is 404.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, ORIGIN};
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::api::{Answer, ApiNodes, Mode};
use crate::helpers::{API_KEY, settings, token_of_session};
use crate::keys::metric;
use crate::socketio::SioClient;

/// The API's body limit, and its `data` limit.
pub(crate) const MAX_BODY: usize = 80 * 1024;
const MAX_DATA: usize = 64 * 1024;

/// Event names the server or the Socket.IO clients reserve.
const RESERVED: [&str; 14] = [
    "welcome",
    "message",
    "token_expired",
    "session_ended",
    "reauth",
    "join",
    "leave",
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "error",
    "newListener",
    "removeListener",
];

/// The labels of `authbridge_api_refused_total`, by status.
pub(crate) const REASONS: [(u16, &str); 5] = [
    (401, "unauthorized"),
    (403, "browser"),
    (413, "too_large"),
    (400, "bad_request"),
    (404, "not_found"),
];

/// A socket of one user and login session, watching for anything delivered
/// to it.
pub(crate) struct Watcher {
    pub(crate) socket: SioClient,
    pub(crate) user: String,
    sid: String,
}

impl Watcher {
    pub(crate) async fn connect(url: &str, user: &str) -> Self {
        let sid = format!("sid-{user}-0123456789abcdef");
        let socket = SioClient::connect_with_auth(url, &token_of_session(user, &sid))
            .await
            .unwrap_or_else(|error| panic!("{user} connects to {url}: {error:#}"));
        let user = user.to_owned();
        Self { socket, user, sid }
    }

    /// Publishes a fence to the watcher through node `node` and waits for
    /// it: whatever was published before it has arrived by then (one order
    /// per target), so the events received are final.
    async fn fence(&self, nodes: &ApiNodes, node: usize) {
        let to = format!("user:{}", self.user);
        nodes
            .publish(node, &json!({"to": to, "event": "fence", "data": "last"}))
            .await;
        let fence = self
            .socket
            .next_event("fence", Duration::from_secs(5))
            .await;
        assert_eq!(fence.expect("the fence arrives"), "last");
    }

    /// Every `event` received so far.
    async fn received(&self, event: &str) -> Vec<Value> {
        let mut received = Vec::new();
        while let Ok(data) = self.socket.next_event(event, Duration::ZERO).await {
            received.push(data);
        }
        received
    }
}

/// A request the API must refuse with `status`, its `{"error": …}` starting
/// with `error` (the field at fault).
struct Refused {
    what: String,
    request: RequestBuilder,
    status: u16,
    error: String,
}

/// The refusal rows, built for one node.
struct Rows<'a> {
    nodes: &'a ApiNodes,
    node: usize,
    rows: Vec<Refused>,
}

impl Rows<'_> {
    fn add(&mut self, what: impl Into<String>, request: RequestBuilder, status: u16, error: &str) {
        let (what, error) = (what.into(), error.to_owned());
        self.rows.push(Refused {
            what,
            request,
            status,
            error,
        });
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.nodes.urls[self.node])
    }

    /// `POST /api/publish` with the key and `body` as JSON text.
    fn publish(&self, body: impl Into<String>) -> RequestBuilder {
        let request = self.nodes.post(self.node, "/api/publish");
        request
            .header(CONTENT_TYPE, "application/json")
            .body(body.into())
    }
}

/// Every refusal row, through node `node`, aimed at `watcher`.
fn refusal_rows(nodes: &ApiNodes, node: usize, watcher: &Watcher) -> Vec<Refused> {
    let mut rows = Rows {
        nodes,
        node,
        rows: Vec::new(),
    };
    let to = format!("user:{}", watcher.user);
    let valid = json!({"to": to, "event": "refused", "data": "nothing"});

    // 401, one body for all: no key, a wrong one, another scheme, a token.
    let publish_url = rows.url("/api/publish");
    let request = nodes.http.post(&publish_url).json(&valid);
    rows.add("no Authorization", request, 401, "unauthorized");
    let token = token_of_session(&watcher.user, &watcher.sid);
    for (what, value) in [
        ("a wrong key", format!("Bearer {API_KEY}x")),
        ("the key cut short", format!("Bearer {}", &API_KEY[1..])),
        ("an empty bearer", "Bearer ".to_owned()),
        ("the key without a scheme", API_KEY.to_owned()),
        ("the key as Basic", format!("Basic {API_KEY}")),
        ("a valid socket token", format!("Bearer {token}")),
    ] {
        let request = nodes.http.post(&publish_url).header(AUTHORIZATION, value);
        rows.add(what, request.json(&valid), 401, "unauthorized");
    }
    for (method, path) in [
        (Method::GET, "/api/presence"),
        (Method::GET, "/api/presence/user:someone"),
        (Method::POST, "/api/sessions/revoke"),
        (Method::POST, "/api/disconnect"),
    ] {
        let request = nodes.http.request(method, rows.url(path)).json(&json!({}));
        rows.add(
            format!("{path} without a key"),
            request,
            401,
            "unauthorized",
        );
    }

    // 404 behind the guard: an unknown API request, with the key.
    for (method, path) in [
        (Method::GET, "/api/unknown"),
        (Method::POST, "/api/publish/extra"),
    ] {
        let request = nodes.http.request(method.clone(), rows.url(path));
        let request = request.bearer_auth(API_KEY);
        rows.add(
            format!("{method} {path} with the key"),
            request.json(&valid),
            404,
            "no such request",
        );
    }
    let unknown = nodes.http.get(rows.url("/api/unknown"));
    rows.add(
        "an unknown API path without a key",
        unknown,
        401,
        "unauthorized",
    );

    // 403: whatever a browser sends, allowed origin or not, preflight or not.
    for origin in ["http://127.0.0.1:8080", "https://evil.example", "null"] {
        let request = rows.publish(valid.to_string()).header(ORIGIN, origin);
        rows.add(format!("Origin {origin}"), request, 403, "");
    }
    let preflight = nodes
        .http
        .request(Method::OPTIONS, &publish_url)
        .header(ORIGIN, "http://127.0.0.1:8080")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization");
    rows.add("a CORS preflight", preflight, 403, "");
    let presence = nodes.get(node, "/api/presence");
    let presence = presence.header(ORIGIN, "http://127.0.0.1:8080");
    rows.add("a presence query with Origin", presence, 403, "");
    let keyless = nodes.http.post(&publish_url).json(&valid);
    let keyless = keyless.header(ORIGIN, "https://evil.example");
    rows.add("Origin and no key", keyless, 403, "");

    // 413: over 80 KiB, whatever the body holds.
    for (what, size) in [("80 KiB + 1", MAX_BODY + 1), ("1 MiB", 1 << 20)] {
        let request = rows.publish(padded(valid.to_string(), size));
        rows.add(
            format!("a body of {what}"),
            request,
            413,
            "body: at most 80 KiB",
        );
    }
    let revoke = nodes.post(node, "/api/sessions/revoke");
    let revoke = revoke.header(CONTENT_TYPE, "application/json");
    let revoke = revoke.body(" ".repeat(MAX_BODY + 1));
    rows.add(
        "a revoke of 80 KiB + 1",
        revoke,
        413,
        "body: at most 80 KiB",
    );

    // 400: the body as a whole.
    for (what, body) in [
        ("malformed JSON", format!(r#"{{"to": "{to}", "event":"#)),
        ("an empty body", String::new()),
        ("a JSON array", format!(r#"["{to}"]"#)),
        ("a JSON string", r#""publish""#.to_owned()),
        ("JSON then garbage", format!("{valid} trailing")),
    ] {
        rows.add(what, rows.publish(body), 400, "body:");
    }
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonp",
    ] {
        let request = nodes.post(node, "/api/publish").body(valid.to_string());
        let request = request.header(CONTENT_TYPE, content_type);
        rows.add(content_type, request, 400, "body: Content-Type");
    }
    let untyped = nodes.post(node, "/api/publish").body(valid.to_string());
    rows.add("no Content-Type", untyped, 400, "body: Content-Type");

    // 400: each field of a publication.
    let many: Vec<String> = (0..101).map(|i| format!("user:{i}")).collect();
    let publish_fields = [
        (
            "no to",
            json!({"event": "refused", "data": 1}),
            "to: required",
        ),
        ("no event", json!({"to": to, "data": 1}), "event: required"),
        (
            "no data",
            json!({"to": to, "event": "refused"}),
            "data: required",
        ),
        (
            "an unknown field",
            json!({"to": to, "event": "refused", "data": 1, "ttl": 5}),
            r#""ttl": unknown field"#,
        ),
        (
            "to: 101 targets",
            json!({"to": many, "event": "refused", "data": 1}),
            "to:",
        ),
        (
            "data of 64 KiB + 1",
            json!({"to": to, "event": "refused", "data": "x".repeat(MAX_DATA - 1)}),
            "data: at most 65536 bytes",
        ),
    ];
    for (what, body, error) in publish_fields {
        rows.add(what, rows.publish(body.to_string()), 400, error);
    }
    let long_user = format!("user:{}", "a".repeat(257));
    for target in [
        json!([]),
        json!("nobody"),
        json!("user:"),
        json!("session:"),
        json!("room:"),
        json!("Everyone"),
        json!(""),
        json!("user:a\u{1}b"),
        json!(long_user),
        json!(5),
        json!(null),
        json!([to, 5]),
        json!([to, "team:1"]),
    ] {
        let body = json!({"to": target, "event": "refused", "data": 1});
        rows.add(
            format!("to {target}"),
            rows.publish(body.to_string()),
            400,
            "to:",
        );
    }
    for name in RESERVED {
        let body = json!({"to": to, "event": name, "data": 1});
        let error = format!("event: {name:?} is reserved");
        rows.add(
            format!("event {name}"),
            rows.publish(body.to_string()),
            400,
            &error,
        );
    }
    let too_long = format!("a{}", "b".repeat(64));
    for name in [
        json!(""),
        json!("1abc"),
        json!("_a"),
        json!("a b"),
        json!("a/b"),
        json!("é"),
        json!("aé"),
        json!(too_long),
        json!(5),
        json!(null),
        json!(["a"]),
    ] {
        let body = json!({"to": to, "event": name, "data": 1});
        rows.add(
            format!("event {name}"),
            rows.publish(body.to_string()),
            400,
            "event:",
        );
    }

    // 400: the Idempotency-Key header.
    for (what, value) in [
        ("empty", HeaderValue::from_static("")),
        (
            "of 129 characters",
            HeaderValue::from_str(&"k".repeat(129)).expect("ASCII"),
        ),
        ("with a tab", HeaderValue::from_static("a\tb")),
        (
            "non-ASCII",
            HeaderValue::from_bytes("clé".as_bytes()).expect("obs-text"),
        ),
    ] {
        let request = rows
            .publish(valid.to_string())
            .header("idempotency-key", value);
        rows.add(
            format!("an Idempotency-Key {what}"),
            request,
            400,
            "Idempotency-Key:",
        );
    }

    // 400: revoke and disconnect, each field.
    let sid = watcher.sid.as_str();
    let later = 4_000_000_000_u64;
    let (revoke, disconnect) = ("/api/sessions/revoke", "/api/disconnect");
    let other_fields = [
        (revoke, json!({"until": later}), "sid: required"),
        (revoke, json!({"sid": "", "until": later}), "sid:"),
        (revoke, json!({"sid": 5, "until": later}), "sid:"),
        (
            revoke,
            json!({"sid": format!("{sid}\u{7}"), "until": later}),
            "sid:",
        ),
        (
            revoke,
            json!({"sid": "x".repeat(257), "until": later}),
            "sid:",
        ),
        (revoke, json!({"sid": sid}), "until: required"),
        (revoke, json!({"sid": sid, "until": "4000000000"}), "until:"),
        (revoke, json!({"sid": sid, "until": 4.0e9}), "until:"),
        (
            revoke,
            json!({"sid": sid, "until": 9_223_372_036_854_775_808_u64}),
            "until:",
        ),
        (revoke, json!({"sid": sid, "until": null}), "until:"),
        (
            revoke,
            json!({"sid": sid, "until": later, "to": "everyone"}),
            r#""to": unknown field"#,
        ),
        (disconnect, json!({}), "to: required"),
        (disconnect, json!({"to": []}), "to:"),
        (disconnect, json!({"to": "nobody"}), "to:"),
        (disconnect, json!({"to": many}), "to:"),
    ];
    for (path, body, error) in other_fields {
        let request = nodes.post(node, path).json(&body);
        rows.add(format!("{path} {body}"), request, 400, error);
    }

    // 400: presence is asked of one user or one room.
    let session = format!("session:{sid}");
    for target in ["everyone", &session, "user:", "room:", "gonzalo"] {
        let request = nodes.get(node, &format!("/api/presence/{target}"));
        rows.add(format!("presence of {target}"), request, 400, "target:");
    }
    rows.rows
}

/// The requests at the very edge of each limit, each carried out and
/// reaching the watcher once with its label as data.
fn accepted_edges(nodes: &ApiNodes, node: usize, to: &str) -> Vec<(String, RequestBuilder)> {
    let publish = |body: &Value| nodes.post(node, "/api/publish").json(body);
    let accepted = |label: &str| json!({"to": to, "event": "accepted", "data": label});
    let mut edges = Vec::new();
    let mut hundred: Vec<String> = (1..100).map(|i| format!("user:nobody-{i}")).collect();
    hundred.push(to.to_owned());
    let label = "100 targets".to_owned();
    let body = json!({"to": hundred, "event": "accepted", "data": label});
    edges.push((label, publish(&body)));
    let longest = format!("a{}", "b".repeat(63));
    let label = format!("the event {longest}");
    let body = json!({"to": to, "event": longest, "data": label});
    edges.push((label, publish(&body)));
    // `"` + 65,534 characters + `"`: 64 KiB serialized.
    let label = "x".repeat(MAX_DATA - 2);
    edges.push((label.clone(), publish(&accepted(&label))));
    let label = "a body of 80 KiB".to_owned();
    let body = padded(accepted(&label).to_string(), MAX_BODY);
    let request = nodes.post(node, "/api/publish").body(body);
    let request = request.header(CONTENT_TYPE, "application/json; charset=utf-8");
    edges.push((label, request));
    for key in [
        "k".repeat(128),
        r##" !"#$%&'()*+,-./09:;<=>?@AZ[\]^_`az{|}~"##.to_owned(),
    ] {
        let label = format!("an Idempotency-Key of {} characters", key.len());
        let request = publish(&accepted(&label)).header("idempotency-key", key);
        edges.push((label, request));
    }
    edges
}

/// `json` followed by spaces, `size` bytes in all (JSON allows them).
fn padded(mut json: String, size: usize) -> String {
    json.push_str(&" ".repeat(size - json.len()));
    json
}

/// `authbridge_api_refused_total` of node `node`, by reason (as [`REASONS`]).
pub(crate) async fn refused_counts(nodes: &ApiNodes, node: usize) -> [u64; REASONS.len()] {
    let mut counts = [0; REASONS.len()];
    for (count, (_, reason)) in counts.iter_mut().zip(REASONS) {
        let labels = format!("reason=\"{reason}\"");
        *count = metric(&nodes.urls[node], "authbridge_api_refused_total", &labels).await;
    }
    counts
}

/// `authbridge_api_publications_total` and `…_sockets_reached_total`.
async fn publication_counts(nodes: &ApiNodes, node: usize) -> [u64; 2] {
    let url = &nodes.urls[node];
    [
        metric(url, "authbridge_api_publications_total", "").await,
        metric(url, "authbridge_api_sockets_reached_total", "").await,
    ]
}

async fn every_refusal_is_answered_counted_and_changes_nothing(mode: Mode) {
    // The watcher on node A; the requests through node B (the same node in
    // the embedded mode).
    let nodes = ApiNodes::start(mode).await;
    let (watched, asked) = (0, 1);
    let watcher = Watcher::connect(&nodes.urls[watched], "watcher").await;
    let refused_before = refused_counts(&nodes, asked).await;
    let published_before = publication_counts(&nodes, asked).await;
    let mut expected = refused_before;

    for row in refusal_rows(&nodes, asked, &watcher) {
        let what = format!("{mode:?}, {}", row.what);
        let answer = row.request.send().await;
        let answer = Answer::of(answer.unwrap_or_else(|e| panic!("{what}: {e}"))).await;

        assert_eq!(answer.status, row.status, "{what}: {}", answer.text);
        let error = answer.json["error"].as_str().unwrap_or_default();
        assert!(error.starts_with(&row.error), "{what}: {}", answer.text);
        assert_eq!(answer.json.as_object().map(|o| o.len()), Some(1), "{what}");
        if row.status == 401 {
            // One answer for every failed authentication, byte for byte.
            assert_eq!(answer.text, r#"{"error":"unauthorized"}"#, "{what}");
            let content_type = answer.headers.get(CONTENT_TYPE);
            assert_eq!(
                content_type.map(|c| c.as_bytes()),
                Some(&b"application/json"[..])
            );
        }
        assert!(
            !answer.headers.contains_key("access-control-allow-origin"),
            "{what}"
        );
        assert!(!answer.text.contains(API_KEY), "{what}: the key echoed");
        let reason = REASONS.iter().position(|(status, _)| *status == row.status);
        expected[reason.expect("a counted status")] += 1;
    }
    let chunked = chunked_oversized_publish(&nodes.urls[asked], &watcher.user).await;
    assert!(
        chunked.starts_with("HTTP/1.1 413"),
        "{mode:?}, a chunked body: {chunked}"
    );
    assert!(
        chunked.ends_with(r#"{"error":"body: at most 80 KiB"}"#),
        "{chunked}"
    );
    expected[2] += 1;
    let to = format!("user:{}", watcher.user);
    let mut carried_out = Vec::new();
    for (label, request) in accepted_edges(&nodes, asked, &to) {
        let what = format!("{mode:?}, {}", &label[..label.len().min(40)]);
        let answer = Answer::of(request.send().await.expect("an answer")).await;
        assert_eq!(answer.status, 200, "{what}: {}", answer.text);
        assert_eq!(answer.json["sockets"], 1, "{what}");
        carried_out.push(label);
    }
    watcher.fence(&nodes, asked).await;

    // Only what was carried out arrived, each once; nothing else was emitted
    // to the watcher, whose session stays.
    let longest = format!("a{}", "b".repeat(63));
    let mut received = watcher.received("accepted").await;
    received.extend(watcher.received(&longest).await);
    let mut received: Vec<String> = received
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    received.sort();
    carried_out.sort();
    assert!(
        received == carried_out,
        "{mode:?}: {} received, {} carried out",
        received.len(),
        carried_out.len()
    );
    for event in ["refused", "fence"]
        .into_iter()
        .chain(RESERVED)
        .chain(["a b", "1abc", "_a", "a/b", ""])
    {
        let none = watcher.socket.expect_no_event(event, Duration::ZERO).await;
        none.unwrap_or_else(|e| panic!("{mode:?}: {e:#}"));
    }
    assert_eq!(
        refused_counts(&nodes, asked).await,
        expected,
        "{mode:?}: by reason"
    );
    let published = publication_counts(&nodes, asked).await;
    let carried_out = carried_out.len() as u64 + 1; // and the fence
    assert_eq!(published[0] - published_before[0], carried_out, "{mode:?}");
    assert_eq!(published[1] - published_before[1], carried_out, "{mode:?}");
    // The API key opens no socket.
    for url in &nodes.urls {
        let auth = Some(json!({"token": API_KEY}));
        let refusal = SioClient::refusal_with_auth(url, auth).await;
        assert_eq!(refusal.expect("refused"), "not valid token");
    }
}

/// A publish whose chunked body grows past 80 KiB (no `Content-Length` to
/// refuse it by): the raw answer.
async fn chunked_oversized_publish(base_url: &str, user: &str) -> String {
    let addr = base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let head = format!(
        "POST /api/publish HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {API_KEY}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("writes");
    let mut body = format!(r#"{{"to": "user:{user}", "event": "refused", "data": ""#).into_bytes();
    body.resize(MAX_BODY + 8 * 1024, b'x');
    body.extend_from_slice(b"\"}");
    // The server may answer and close before the last chunk: its answer is
    // what matters.
    for chunk in body.chunks(4096) {
        let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        if stream.write_all(&frame).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    let _ = tokio::time::timeout(Duration::from_secs(10), read).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_on_one_node_is_answered_counted_and_changes_nothing() {
    every_refusal_is_answered_counted_and_changes_nothing(Mode::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_through_the_other_node_is_answered_counted_and_changes_nothing() {
    every_refusal_is_answered_counted_and_changes_nothing(Mode::Scaled).await;
}

#[tokio::test]
async fn without_an_api_key_every_api_path_is_404_and_delivers_nothing() {
    let nodes = ApiNodes::embedded_with(settings()).await;
    let watcher = Watcher::connect(&nodes.urls[0], "watcher").await;
    let publish = json!({"to": "everyone", "event": "refused", "data": 1});
    let paths = [
        "/api",
        "/api/",
        "/api/publish",
        "/api/sessions/revoke",
        "/api/disconnect",
        "/api/presence",
        "/api/presence/user:watcher",
        "/api/unknown/path",
    ];
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
    ];

    for path in paths {
        for method in &methods {
            // As a backend sends it, as a browser would, and as a CORS preflight.
            for browser in [None, Some(false), Some(true)] {
                let url = format!("{}{path}", nodes.urls[0]);
                let request = nodes.http.request(method.clone(), url).bearer_auth(API_KEY);
                let mut request = request.json(&publish);
                if let Some(preflight) = browser {
                    request = request.header(ORIGIN, "http://127.0.0.1:8080");
                    if preflight {
                        request = request.header("access-control-request-method", "POST");
                    }
                }
                let status = request.send().await.expect("an answer").status();
                assert_eq!(status, 404, "{method} {path} (browser: {browser:?})");
            }
        }
    }

    // Nothing delivered: the next event is a message sent after it all.
    watcher
        .socket
        .emit("message", json!("after"))
        .await
        .expect("emits");
    let message = watcher
        .socket
        .next_event("message", Duration::from_secs(5))
        .await;
    assert_eq!(message.expect("a message")["text"], "after");
    let nothing = watcher
        .socket
        .expect_no_event("refused", Duration::ZERO)
        .await;
    nothing.expect("nothing published");
}

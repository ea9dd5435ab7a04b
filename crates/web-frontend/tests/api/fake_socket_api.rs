//! A stand-in for the socket-server's server API: a real HTTP server on
//! 127.0.0.1:0 that records every request to `/api/…` and answers as told.

use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use tokio::sync::mpsc;

/// How the fake answers.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Answer {
    /// 200 with a body like the real API's.
    Published,
    /// 500.
    ServerError,
}

/// One request the fake received.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) authorization: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) body: serde_json::Value,
}

pub(crate) struct FakeSocketApi {
    /// The base URL, for `web.socket_internal_url`.
    pub(crate) url: String,
    received: mpsc::UnboundedReceiver<Received>,
}

impl FakeSocketApi {
    /// A fake that answers every API request with `answer` (and anything
    /// else with 204, unrecorded).
    pub(crate) fn spawn(answer: Answer) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (record, received) = mpsc::unbounded_channel();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(record.clone()))
                .app_data(web::PayloadConfig::new(1024 * 1024))
                .default_service(web::to(
                    move |request: HttpRequest,
                          body: web::Bytes,
                          record: web::Data<mpsc::UnboundedSender<Received>>| async move {
                        // The revocation channel's resync goes to the same
                        // base URL every 2 s: not the API's business here.
                        if !request.path().starts_with("/api/") {
                            return HttpResponse::NoContent().finish();
                        }
                        let header = |name: &str| {
                            request
                                .headers()
                                .get(name)
                                .and_then(|value| value.to_str().ok())
                                .map(str::to_owned)
                        };
                        let _ = record.send(Received {
                            method: request.method().to_string(),
                            path: request.path().to_owned(),
                            authorization: header("authorization"),
                            content_type: header("content-type"),
                            body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
                        });
                        match answer {
                            Answer::Published => HttpResponse::Ok()
                                .json(serde_json::json!({"id": "fake-1", "sockets": 1})),
                            Answer::ServerError => HttpResponse::InternalServerError()
                                .json(serde_json::json!({"error": "internal"})),
                        }
                    },
                ))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        Self { url, received }
    }

    /// The next request, if one arrives within `within`.
    pub(crate) async fn next_request(&mut self, within: Duration) -> Option<Received> {
        tokio::time::timeout(within, self.received.recv())
            .await
            .ok()
            .flatten()
    }
}

/// A base URL whose listener accepts connections (the kernel does) but never
/// answers: the listener is kept, never accepted from.
pub(crate) fn silent_api() -> (String, std::net::TcpListener) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    (url, listener)
}

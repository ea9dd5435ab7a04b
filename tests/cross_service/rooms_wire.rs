//! A bare Socket.IO v5 client over one WebSocket for the rooms suites that
//! need many sockets or many packets at once (a thousand sockets in one room,
//! a thousand `join`s in a second): any number of acks in flight, and every
//! event stamped with the instant it arrived. The Engine.IO and Socket.IO
//! framing is written out here, so nothing of a client library's pacing or
//! buffering sits between the test and the server.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, timeout, timeout_at};
use tokio_tungstenite::tungstenite::Message;

/// The most a handshake or one awaited packet may take.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// One event received: when, its name, its arguments.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) at: Instant,
    pub(crate) name: String,
    pub(crate) args: Vec<Value>,
}

type Acks = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// An open, welcomed socket.
pub(crate) struct Wire {
    out: mpsc::UnboundedSender<Message>,
    next_ack: AtomicU64,
    acks: Acks,
    events: tokio::sync::Mutex<(mpsc::UnboundedReceiver<Received>, VecDeque<Received>)>,
    /// Reads the socket; the writer ends by itself once `out` is dropped
    /// (sending what was queued, then a close).
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// How a handshake ended.
pub(crate) enum Handshake {
    Welcomed(Wire),
    Refused(String),
}

impl Wire {
    /// Connects to the socket-server at `url` (`http://…`) over WebSocket with
    /// `{"token": token}` as the `auth` payload; fails unless welcomed.
    pub(crate) async fn connect(url: &str, token: &str) -> Self {
        match Self::handshake(url, token).await {
            Handshake::Welcomed(wire) => wire,
            Handshake::Refused(message) => panic!("{url} refused the socket: {message}"),
        }
    }

    /// The handshake's outcome: welcomed, or refused with the message.
    pub(crate) async fn handshake(url: &str, token: &str) -> Handshake {
        let ws_url = format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            url.replacen("http://", "ws://", 1)
        );
        let deadline = Instant::now() + WAIT;
        let (ws, _) = timeout_at(deadline, tokio_tungstenite::connect_async(ws_url))
            .await
            .expect("the WebSocket opens in time")
            .expect("the WebSocket opens");
        let (mut sink, mut stream) = ws.split();
        let open = next_text(&mut stream, deadline).await;
        assert!(open.starts_with('0'), "an Engine.IO open packet: {open}");
        let connect = format!("40{}", json!({ "token": token }));
        sink.send(Message::text(connect))
            .await
            .expect("CONNECT sent");
        let welcome = loop {
            let packet = next_text(&mut stream, deadline).await;
            if let Some(error) = packet.strip_prefix("44") {
                let data: Value = serde_json::from_str(error).unwrap_or(Value::Null);
                let message = data["message"].as_str().unwrap_or(error).to_owned();
                return Handshake::Refused(message);
            }
            if packet == "2" {
                sink.send(Message::text("3")).await.expect("a pong");
                continue;
            }
            if packet.starts_with("40") {
                continue;
            }
            let event = packet
                .strip_prefix("42")
                .unwrap_or_else(|| panic!("an event after CONNECT: {packet}"));
            let event: Value = serde_json::from_str(event).expect("an event's JSON");
            assert_eq!(event[0], "welcome", "the first event is welcome: {packet}");
            break event;
        };
        let _ = welcome;

        let (out, mut outgoing) = mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            while let Some(message) = outgoing.recv().await {
                if sink.send(message).await.is_err() {
                    return;
                }
            }
            let _ = sink.close().await;
        });
        let acks: Acks = Arc::default();
        let (events, received) = mpsc::unbounded_channel();
        let reader = {
            let (out, acks) = (out.clone(), acks.clone());
            tokio::spawn(async move {
                while let Some(Ok(frame)) = stream.next().await {
                    let Message::Text(text) = frame else {
                        continue;
                    };
                    let at = Instant::now();
                    let text = text.as_str();
                    if text == "2" {
                        let _ = out.send(Message::text("3"));
                    } else if let Some(event) = text.strip_prefix("42") {
                        if let Ok(Value::Array(mut array)) = serde_json::from_str(event) {
                            let name = array.remove(0).as_str().unwrap_or_default().to_owned();
                            let _ = events.send(Received {
                                at,
                                name,
                                args: array,
                            });
                        }
                    } else if let Some(ack) = text.strip_prefix("43") {
                        let digits = ack.bytes().take_while(u8::is_ascii_digit).count();
                        let (id, args) = ack.split_at(digits);
                        let first = serde_json::from_str::<Value>(args)
                            .ok()
                            .and_then(|args| args.get(0).cloned())
                            .unwrap_or(Value::Null);
                        let waiting = id
                            .parse::<u64>()
                            .ok()
                            .and_then(|id| acks.lock().expect("acks").remove(&id));
                        if let Some(waiting) = waiting {
                            let _ = waiting.send(first);
                        }
                    } else if text.starts_with("41") || text.starts_with('1') {
                        return;
                    }
                }
            })
        };
        Handshake::Welcomed(Self {
            out,
            next_ack: AtomicU64::new(1),
            acks,
            events: tokio::sync::Mutex::new((received, VecDeque::new())),
            reader,
        })
    }

    /// Emits `event` with `data` as its one argument.
    pub(crate) fn emit(&self, event: &str, data: &Value) {
        let packet = format!("42{}", json!([event, data]));
        self.out
            .send(Message::text(packet))
            .expect("the socket is open");
    }

    /// Emits `event` with `data` and an ack id; the ack's first argument
    /// arrives on the returned receiver.
    pub(crate) fn emit_with_ack(&self, event: &str, data: &Value) -> oneshot::Receiver<Value> {
        let id = self.next_ack.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        self.acks.lock().expect("acks").insert(id, reply);
        let packet = format!("42{id}{}", json!([event, data]));
        self.out
            .send(Message::text(packet))
            .expect("the socket is open");
        answer
    }

    /// Emits `event` with `data` and waits for the ack's first argument.
    pub(crate) async fn call(&self, event: &str, data: &Value) -> Value {
        let answer = self.emit_with_ack(event, data);
        timeout(WAIT, answer)
            .await
            .unwrap_or_else(|_| panic!("no ack for {event} {data} within {WAIT:?}"))
            .expect("the ack")
    }

    /// The next `name` event (others received meanwhile are kept), within
    /// `within`; `None` when none came.
    pub(crate) async fn next(&self, name: &str, within: Duration) -> Option<Received> {
        let deadline = Instant::now() + within;
        let mut guard = self.events.lock().await;
        let (incoming, backlog) = &mut *guard;
        if let Some(index) = backlog.iter().position(|event| event.name == name) {
            return backlog.remove(index);
        }
        loop {
            match timeout_at(deadline, incoming.recv()).await {
                Ok(Some(event)) if event.name == name => return Some(event),
                Ok(Some(event)) => backlog.push_back(event),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// Closes the WebSocket (after what was emitted so far).
    pub(crate) fn close(self) {
        drop(self);
    }
}

type Stream = futures_util::stream::SplitStream<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
>;

/// The next text frame of a handshake.
async fn next_text(stream: &mut Stream, deadline: Instant) -> String {
    loop {
        let frame = timeout_at(deadline, stream.next())
            .await
            .expect("a handshake packet in time")
            .expect("the server keeps the socket open during the handshake")
            .expect("a WebSocket frame");
        if let Message::Text(text) = frame {
            return text.as_str().to_owned();
        }
    }
}

//! The ws transport module is responsible for handling websocket connections
//! The only public function is [`new_req`] which is used to upgrade a http request to a websocket connection
//!
//! Other functions are used internally to handle the websocket connection through tasks and channels
//! and to handle upgrade from polling to ws

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use http::{HeaderValue, Request, Response, StatusCode, request::Parts};
use smallvec::smallvec;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self, Message,
        handshake::derive_accept_key,
        protocol::{Role, WebSocketConfig},
    },
};
use tokio_util::future::FutureExt as _;

use engineioxide_core::{Packet, ProtocolVersion, Sid, Str, TransportType};

use crate::{
    DisconnectReason, Socket, body::ResponseBody, config::EngineIoConfig, engine::EngineIo,
    errors::Error, handler::EngineIoHandler, transport::make_open_packet,
};

/// Create a response for websocket upgrade
fn ws_response<B>(ws_key: &HeaderValue) -> Response<ResponseBody<B>> {
    let derived = derive_accept_key(ws_key.as_bytes());
    let sec = derived.parse::<HeaderValue>().unwrap();
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(http::header::UPGRADE, HeaderValue::from_static("websocket"))
        .header(
            http::header::CONNECTION,
            HeaderValue::from_static("Upgrade"),
        )
        .header(http::header::SEC_WEBSOCKET_ACCEPT, sec)
        .body(ResponseBody::empty_response())
        .unwrap() // we are only using constants
}

/// Upgrade a websocket request to create a websocket connection.
///
/// If a sid is provided in the query it means that is is upgraded from an existing HTTP polling request.
/// In this case the http polling request is closed and the SID is kept for the websocket
pub fn new_req<R: Send + 'static, B, H: EngineIoHandler>(
    engine: Arc<EngineIo<H>>,
    protocol: ProtocolVersion,
    sid: Option<Sid>,
    req: Request<R>,
) -> Result<Response<ResponseBody<B>>, Error> {
    let mut req = req;
    let ws_key = req
        .headers()
        .get("Sec-WebSocket-Key")
        .ok_or(Error::InvalidWebSocketKey)?
        .clone();
    // authbridge patch (vendor/README.md, change 11): the upgrade is taken from the
    // request, and its parts go on without a copy (cloning them shared every kept
    // header value for the session's whole life).
    let on_upgrade = hyper::upgrade::on(&mut req);
    let (parts, body) = req.into_parts();

    // authbridge patch: one task per WebSocket connection, for its whole life. What
    // only its start needs (the request, the upgrade, the handshakes) is boxed, and
    // freed once done: the task itself keeps only what the connection needs.
    let setup = Box::pin(async move {
        // Dropped where the request was before (`hyper::upgrade::on(req)`).
        drop(body);
        let conn = match on_upgrade.await {
            Ok(conn) => hyper_util::rt::TokioIo::new(conn),
            Err(_e) => {
                #[cfg(feature = "tracing")]
                tracing::debug!("ws upgrade error: {}", _e);
                return None;
            }
        };
        match start(engine.clone(), conn, protocol, sid, parts).await {
            Ok((socket, ws, heartbeat)) => Some(Connection::new(engine, socket, ws, heartbeat)),
            // authbridge patch (vendor/README.md, change 8): a failed probe leaves the
            // polling session as it was (`start` has undone the upgrade), as Node's
            // engine.io does; `start` closes what must go (a failed new session, an
            // upgrade that timed out).
            Err(_e) => {
                #[cfg(feature = "tracing")]
                tracing::debug!(?sid, "ws closed with error: {_e}");
                None
            }
        }
    });
    tokio::spawn(run(setup));

    Ok(ws_response(&ws_key))
}

/// Handle a websocket connection upgrade
///
/// Sends an open packet if it is not an upgrade from a polling request
///
/// Read packets from the websocket and handle them, it will block until the connection is closed
pub async fn on_init<H: EngineIoHandler, S>(
    engine: Arc<EngineIo<H>>,
    conn: S,
    protocol: ProtocolVersion,
    sid: Option<Sid>,
    req_data: Parts,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // authbridge patch: what only the start needs (the upgrade, the handshakes) is
    // boxed and freed once done, so that the connection's task keeps only what it
    // needs while it lives.
    let (socket, ws, heartbeat) =
        Box::pin(start(engine.clone(), conn, protocol, sid, req_data)).await?;
    let conn = Connection::new(engine, socket, ws, heartbeat);
    run(std::future::ready(Some(conn))).await;
    Ok(())
}

/// Starts a websocket connection: a new session, or the upgrade of a polling one.
///
/// Sends an open packet if it is not an upgrade from a polling request. Returns the
/// socket, its WebSocket, and whether the connection runs the heartbeat itself (a new
/// WebSocket session: yes; an upgraded polling session keeps its heartbeat task).
#[cfg_attr(
    feature = "tracing",
    tracing::instrument(level = "trace", name = "init_websocket", skip(engine, conn, req_data))
)]
async fn start<H: EngineIoHandler, S>(
    engine: Arc<EngineIo<H>>,
    conn: S,
    protocol: ProtocolVersion,
    sid: Option<Sid>,
    req_data: Parts,
) -> Result<(Arc<Socket<H::Data>>, WebSocketStream<S>, bool), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(engine.config.ws_read_buffer_size)
        .max_message_size(Some(engine.config.ws_max_message_size))
        .max_frame_size(Some(engine.config.ws_max_frame_size));

    let ws_init = move || WebSocketStream::from_raw_socket(conn, Role::Server, Some(ws_config));
    if let Some(sid) = sid {
        match engine.get_socket(sid) {
            None => Err(Error::UnknownSessionID(sid)),
            Some(socket) if socket.is_ws() => Err(Error::MultipleWebsocketRequests),
            Some(socket) => {
                let mut ws = ws_init().await;

                let upgrade_fut = upgrade_handshake::<H, S>(&socket, &mut ws);
                let result = match tokio::time::timeout(engine.config.upgrade_timeout, upgrade_fut)
                    .with_cancellation_token(&socket.cancellation_token)
                    .await
                {
                    Some(Ok(res)) => res,
                    Some(Err(_)) => {
                        // Abandoned (e.g. a proxy that never relays the 101): the
                        // session goes, as upstream's (its heartbeat is paused while
                        // upgrading).
                        #[cfg(feature = "tracing")]
                        tracing::debug!(?sid, "ws upgrade timed out, closing session");
                        engine.close_session(socket.id, DisconnectReason::TransportError);
                        return Err(Error::Upgrade);
                    }
                    None => {
                        #[cfg(feature = "tracing")]
                        tracing::debug!(?sid, "socket is being closed");
                        return Err(Error::Upgrade);
                    }
                };
                if let Err(e) = result {
                    // authbridge patch (vendor/README.md, change 8): the probe failed
                    // (closed, or not the expected packets) before the client
                    // sent its upgrade packet, so the client is still polling: undo the
                    // upgrade and keep the session, as Node's engine.io does. (Upstream
                    // closed the session: a client closing while it probed, e.g. after
                    // a refused CONNECT, then had its last requests answered 400.)
                    socket.cancel_upgrade();
                    return Err(e);
                }
                Ok((socket, ws, false))
            }
        }
    } else {
        let socket = engine.create_session(protocol, TransportType::Websocket, req_data, false);

        #[cfg(feature = "tracing")]
        tracing::debug!("new websocket connection");

        let mut ws = ws_init().await;
        if let Err(e) = init_handshake(socket.id, &mut ws, &engine.config).await {
            // The session exists from `create_session` on: it must not outlive its
            // connection (upstream left it to the heartbeat, never started here).
            engine.close_session(socket.id, DisconnectReason::TransportError);
            return Err(e);
        }
        Ok((socket, ws, true))
    }
}

/// The heartbeat of a WebSocket session, run by its connection (authbridge patch: in
/// place of a task per socket). The same schedule as [`Socket::spawn_heartbeat`]: v4,
/// a ping at once and then every `ping_interval`, a pong due within `ping_timeout`;
/// v3, a ping from the client due within `ping_interval + ping_timeout` of the last.
struct Heartbeat {
    /// When the next ping is sent (v4).
    next_ping: tokio::time::Instant,
    /// A ping was sent and its pong has not come yet (v4).
    waiting: bool,
}

/// Why a connection ended.
#[derive(Debug)]
enum End {
    /// The session was closed by `close_session`: nothing more to report.
    Cancelled,
    /// The transport ended or failed: the session is closed with this reason.
    Closed(DisconnectReason),
}

/// A WebSocket connection: what its task keeps while it lives.
///
/// authbridge patch: upstream split the WebSocket in two and ran a reader task, a
/// writer task and a heartbeat task per socket (three task cells, a `BiLock`, two
/// channels: ~6 KiB per idle socket); this is one poll loop in the task that upgraded
/// the connection, and its state is this struct (its timer boxed, so that it can be
/// polled in place by reference).
struct Connection<H: EngineIoHandler, S> {
    engine: Arc<EngineIo<H>>,
    socket: Arc<Socket<H::Data>>,
    ws: WebSocketStream<S>,
    /// The heartbeat's timer (its next ping, or the pong or ping due), then the bound on
    /// closing the WebSocket.
    timer: Pin<Box<tokio::time::Sleep>>,
    /// The heartbeat, when this connection runs it (a new WebSocket session).
    beat: Option<Heartbeat>,
    /// Frames were written and not flushed yet.
    flushing: bool,
    /// Set once the session ended: the WebSocket is being flushed and closed.
    closing: bool,
}

impl<H: EngineIoHandler, S> Connection<H, S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn new(
        engine: Arc<EngineIo<H>>,
        socket: Arc<Socket<H::Data>>,
        ws: WebSocketStream<S>,
        heartbeat: bool,
    ) -> Self {
        let config = &engine.config;
        let now = tokio::time::Instant::now();
        // v4: the first ping goes at once, queued here behind the open packet (which
        // `start` fed to the WebSocket unflushed: both leave in one write); the next
        // one after `ping_interval`, its pong due within `ping_timeout`. (A timer at
        // `now`, polled to send it, was a deadline earlier than any other: tokio
        // wakes its driver for one, through an eventfd write, on every connection.)
        let first_ping = heartbeat
            && socket.protocol == ProtocolVersion::V4
            && socket.outbox.try_send(smallvec![Packet::Ping]).is_ok();
        let deadline = match socket.protocol {
            ProtocolVersion::V4 if first_ping => now + config.ping_timeout,
            ProtocolVersion::V4 => now,
            #[cfg(feature = "v3")]
            ProtocolVersion::V3 => now + config.ping_interval + config.ping_timeout,
            #[cfg(not(feature = "v3"))]
            ProtocolVersion::V3 => now,
        };
        Self {
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            beat: heartbeat.then_some(Heartbeat {
                next_ping: if first_ping {
                    now + config.ping_interval
                } else {
                    now
                },
                waiting: first_ping,
            }),
            // What `start` fed to the WebSocket (the open packet) is flushed with the
            // first packets.
            flushing: true,
            closing: false,
            engine,
            socket,
            ws,
        }
    }

    /// Runs until the session ends: reads and handles the client's packets, writes the
    /// socket's, keeps the heartbeat; then flushes and closes the WebSocket.
    fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.closing {
            let Poll::Ready(end) = self.poll_session(cx) else {
                return Poll::Pending;
            };
            match end {
                End::Closed(reason) => {
                    #[cfg(feature = "tracing")]
                    tracing::debug!(sid = %self.socket.id, ?reason, "ws transport was closed");
                    self.engine.close_session(self.socket.id, reason);
                }
                End::Cancelled => {
                    #[cfg(feature = "tracing")]
                    tracing::debug!(sid = %self.socket.id, "socket is closing");
                }
            }
            // What was written is flushed and the WebSocket closed, within the ping
            // timeout.
            #[cfg(feature = "tracing")]
            tracing::trace!(sid = %self.socket.id, "ws closing flush");
            self.closing = true;
            self.flushing = true;
            let deadline = tokio::time::Instant::now() + self.engine.config.ping_timeout;
            self.timer.as_mut().reset(deadline);
        }
        if self.timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        if self.flushing {
            if Pin::new(&mut self.ws).poll_flush(cx).is_pending() {
                return Poll::Pending;
            }
            self.flushing = false;
        }
        Pin::new(&mut self.ws).poll_close(cx).map(|_| ())
    }

    fn poll_session(&mut self, cx: &mut Context<'_>) -> Poll<End> {
        let socket = &self.socket;
        // Read what the client sent.
        loop {
            let reason = match Pin::new(&mut self.ws).poll_next(cx) {
                Poll::Pending => break,
                Poll::Ready(None) => DisconnectReason::TransportClose,
                Poll::Ready(Some(Ok(msg))) => {
                    let config = &self.engine.config;
                    match on_message(
                        &self.engine,
                        socket,
                        msg,
                        self.beat.as_mut(),
                        config,
                        self.timer.as_mut(),
                    ) {
                        Ok(true) => continue,
                        Ok(false) => DisconnectReason::TransportClose,
                        Err(e) => {
                            #[cfg(feature = "tracing")]
                            tracing::debug!("error when handling packet: {:?}", e);
                            Option::<DisconnectReason>::from(&e)
                                .unwrap_or(DisconnectReason::TransportError)
                        }
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    let e = Error::from(e);
                    #[cfg(feature = "tracing")]
                    tracing::debug!("error when handling packet: {:?}", e);
                    Option::<DisconnectReason>::from(&e).unwrap_or(DisconnectReason::TransportError)
                }
            };
            return Poll::Ready(End::Closed(reason));
        }

        // The heartbeat (polling the timer registers its deadline).
        while self.beat.is_some() && self.timer.as_mut().poll(cx).is_ready() {
            let config = &self.engine.config;
            if let Err(_e) = on_timer(socket, config, self.beat.as_mut(), self.timer.as_mut()) {
                #[cfg(feature = "tracing")]
                tracing::debug!(id = ?socket.id, "heartbeat error: {_e}");
                self.beat = None;
                socket.close(DisconnectReason::HeartbeatTimeout);
            }
        }

        // Write what is queued for the client, the volatile packet after it.
        loop {
            match Pin::new(&mut self.ws).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_e)) => {
                    #[cfg(feature = "tracing")]
                    tracing::debug!("[sid={}] error sending packet: {}", socket.id, _e);
                }
                Poll::Pending => break,
            }
            let packets = match socket.outbox.poll_recv(cx) {
                Poll::Ready(Some(packets)) => packets,
                // Closed: only `close_session` closes it, after the cancellation.
                Poll::Ready(None) => break,
                Poll::Pending => match socket.outbox.poll_volatile(cx) {
                    Poll::Ready(Some(packets)) => {
                        #[cfg(feature = "tracing")]
                        tracing::debug!(sid = ?socket.id, "ws volatile flush: {} packets", packets.len());
                        packets
                    }
                    Poll::Ready(None) | Poll::Pending => break,
                },
            };
            for packet in packets {
                write_packet(socket, &mut self.ws, packet);
            }
            self.flushing = true;
        }
        if self.flushing {
            #[cfg(feature = "tracing")]
            tracing::trace!(sid = %socket.id, "ws flush");
            if Pin::new(&mut self.ws).poll_flush(cx).is_ready() {
                self.flushing = false;
            }
        }

        // `close_session` cancels the token and wakes the outbox's reader: this loop.
        if socket.cancellation_token.is_cancelled() {
            return Poll::Ready(End::Cancelled);
        }
        Poll::Pending
    }
}

/// Starts a WebSocket connection with `setup` and runs it until it ends.
///
/// `setup` is best boxed: it is kept in the task's state only while it runs.
async fn run<H: EngineIoHandler, S>(setup: impl Future<Output = Option<Connection<H, S>>>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(mut conn) = setup.await else {
        return;
    };
    let socket = conn.socket.clone();
    // The right to read the outbox. A polling request that was in progress during an
    // upgrade may still hold it: wait for it (rare: boxed, so that the task's state
    // stays small).
    let guard = match socket.internal_rx.try_lock() {
        Ok(guard) => Some(guard),
        Err(_) => {
            Box::pin(
                socket
                    .internal_rx
                    .lock()
                    .with_cancellation_token(&socket.cancellation_token),
            )
            .await
        }
    };
    let Some(_guard) = guard else {
        #[cfg(feature = "tracing")]
        tracing::debug!(sid = %socket.id, "session closed before starting the ws writer");
        return;
    };
    std::future::poll_fn(|cx| conn.poll_run(cx)).await;
}

/// Handles one message of the client; `false` when it closed the session.
fn on_message<H: EngineIoHandler>(
    engine: &Arc<EngineIo<H>>,
    socket: &Arc<Socket<H::Data>>,
    msg: Message,
    beat: Option<&mut Heartbeat>,
    config: &EngineIoConfig,
    timer: Pin<&mut tokio::time::Sleep>,
) -> Result<bool, Error> {
    match msg {
        Message::Text(msg) => match Packet::parse(socket.protocol, ws_bytes_to_str(msg))? {
            Packet::Close => {
                #[cfg(feature = "tracing")]
                tracing::debug!("[sid={}] closing session", socket.id);
                return Ok(false);
            }
            Packet::Pong | Packet::Ping => match beat {
                Some(beat) => on_heartbeat(socket, config, beat, timer)?,
                // A full channel means that the client is already known to be alive.
                None => socket.heartbeat.notify_one(),
            },
            Packet::Message(msg) => engine.handler.on_message(msg, socket.clone()),
            p => return Err(Error::BadPacket(p)),
        },
        Message::Binary(mut data) => {
            if socket.protocol == ProtocolVersion::V3 && !data.is_empty() {
                // The first byte is the message type, which we don't need.
                data = data.split_off(1);
            }
            engine.handler.on_binary(data, socket.clone());
        }
        Message::Close(_) => {
            #[cfg(feature = "tracing")]
            tracing::debug!("websocket closed, closing session");
            return Ok(false);
        }
        _ => {
            #[cfg(feature = "tracing")]
            tracing::debug!(sid = ?socket.id, "unexpected ws message");
        }
    }
    Ok(true)
}

/// A pong (v4) or a ping (v3) from the client.
fn on_heartbeat<D: Default + Send + Sync + 'static>(
    socket: &Socket<D>,
    config: &EngineIoConfig,
    beat: &mut Heartbeat,
    timer: Pin<&mut tokio::time::Sleep>,
) -> Result<(), Error> {
    match socket.protocol {
        ProtocolVersion::V4 => {
            // A pong that no ping asked for (some clients send one first) is ignored.
            if beat.waiting {
                beat.waiting = false;
                timer.reset(beat.next_ping);
            }
        }
        #[cfg(feature = "v3")]
        ProtocolVersion::V3 => {
            #[cfg(feature = "tracing")]
            tracing::trace!(sid = ?socket.id, "ping received, sending pong");
            socket
                .outbox
                .try_send(smallvec![Packet::Pong])
                .map_err(|_| Error::HeartbeatTimeout)?;
            timer.reset(tokio::time::Instant::now() + config.ping_interval + config.ping_timeout);
        }
        #[cfg(not(feature = "v3"))]
        ProtocolVersion::V3 => {}
    }
    let _ = config;
    Ok(())
}

/// The heartbeat's timer went off: time for a ping (v4), or a pong or ping that did not
/// come in time.
fn on_timer<D: Default + Send + Sync + 'static>(
    socket: &Socket<D>,
    config: &EngineIoConfig,
    beat: Option<&mut Heartbeat>,
    timer: Pin<&mut tokio::time::Sleep>,
) -> Result<(), Error> {
    let Some(beat) = beat else { return Ok(()) };
    match socket.protocol {
        ProtocolVersion::V4 if !beat.waiting => {
            #[cfg(feature = "tracing")]
            tracing::trace!(sid = ?socket.id, "emitting ping");
            socket
                .outbox
                .try_send(smallvec![Packet::Ping])
                .map_err(|_| Error::HeartbeatTimeout)?;
            beat.waiting = true;
            beat.next_ping += config.ping_interval;
            timer.reset(tokio::time::Instant::now() + config.ping_timeout);
            Ok(())
        }
        _ => Err(Error::HeartbeatTimeout),
    }
}

/// Writes one packet to the WebSocket's buffer (flushed by the caller).
fn write_packet<D: Default + Send + Sync + 'static, S>(
    socket: &Socket<D>,
    ws: &mut WebSocketStream<S>,
    packet: Packet,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let msg = match packet {
        Packet::Binary(bin) | Packet::BinaryV3(bin) => {
            if socket.protocol == ProtocolVersion::V3 {
                // v3 protocol requires packet type as the first byte.
                // This requires a new buffer. This is OK as it is only for the V3 protocol.
                let mut buff = Vec::with_capacity(bin.len() + 1);
                buff.push(0x04);
                buff.extend(bin);
                Message::Binary(buff.into())
            } else {
                Message::Binary(bin)
            }
        }
        // A Noop Packet maybe sent by the server to upgrade from a polling connection
        // In the case that the packet was not poll in time it will remain in the buffer and therefore
        // it should be discarded here
        Packet::Noop => return,
        packet => {
            let packet: String = packet.into();
            Message::Text(packet.into())
        }
    };
    if let Err(_e) = Pin::new(ws).start_send(msg) {
        #[cfg(feature = "tracing")]
        tracing::debug!("[sid={}] error sending packet: {}", socket.id, _e);
    }
}

/// Send a Engine.IO [`OpenPacket`] to initiate a websocket connection
async fn init_handshake<S>(
    sid: Sid,
    ws: &mut WebSocketStream<S>,
    config: &EngineIoConfig,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let packet = Packet::Open(make_open_packet(TransportType::Websocket, sid, config));
    let packet: String = packet.into();
    // authbridge patch: buffered, not flushed: the connection's loop flushes it with
    // the first ping (v4) or whatever else is queued first, in one write.
    ws.feed(Message::Text(packet.into())).await?;
    Ok(())
}

/// Upgrade a session from a polling request to a websocket request.
///
/// Before upgrading the session the server should send a NOOP packet to any pending polling request.
///
/// ## Handshake :
/// ```text
/// CLIENT                                                 SERVER
///│                                                      │
///│   GET /engine.io/?EIO=4&transport=websocket&sid=...  │
///│ ───────────────────────────────────────────────────► │
///│  ◄─────────────────────────────────────────────────┘ │
///│            HTTP 101 (WebSocket handshake)            │
///│                                                      │
///│            -----  WebSocket frames -----             │
///│  ─────────────────────────────────────────────────►  │
///│                         2probe                       │ (ping packet)
///│  ◄─────────────────────────────────────────────────  │
///│                         3probe                       │ (pong packet)
///│  ─────────────────────────────────────────────────►  │
///│                         5                            │ (upgrade packet)
///│                                                      │
///│            -----  WebSocket frames -----             │
/// ```
#[cfg_attr(
    feature = "tracing",
    tracing::instrument(level = "trace", skip(socket, ws))
)]
async fn upgrade_handshake<H: EngineIoHandler, S>(
    socket: &Arc<Socket<H::Data>>,
    ws: &mut WebSocketStream<S>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    #[cfg(feature = "tracing")]
    tracing::debug!("starting websocket connection upgrade");

    // The socket is upgrading, from now on all polling
    // request will return a `Packet::Noop`
    socket.start_upgrade();

    // We send a last Noop request to close a potential waiting polling request.
    socket
        .outbox
        .force_send(smallvec![Packet::Noop])
        .map_err(|_| Error::Upgrade)?;

    // wait for any current polling connection to finish by waiting for the socket to be unlocked
    // All other polling connection will be immediately closed with a NOOP packet.
    let _lock = socket.internal_rx.lock().await;

    // Fetch the next packet from the ws stream, it should be a PingUpgrade packet
    let msg = match ws.next().await {
        Some(Ok(Message::Text(d))) => d,
        _ => Err(Error::Upgrade)?,
    };
    match Packet::parse(socket.protocol, ws_bytes_to_str(msg))? {
        Packet::PingUpgrade => {
            #[cfg(feature = "tracing")]
            tracing::debug!("received first ping upgrade");
            // Respond with a PongUpgrade packet
            ws.send(Message::Text(String::from(Packet::PongUpgrade).into()))
                .await?;
        }
        p => Err(Error::BadPacket(p))?,
    };

    // Fetch the next packet from the ws stream, it should be an Upgrade packet
    let msg = match ws.next().await {
        Some(Ok(Message::Text(d))) => d,
        Some(Ok(Message::Close(_))) => {
            #[cfg(feature = "tracing")]
            tracing::debug!("ws stream closed before upgrade");
            Err(Error::Upgrade)?
        }
        _ => {
            #[cfg(feature = "tracing")]
            tracing::debug!("unexpected ws message before upgrade");
            Err(Error::Upgrade)?
        }
    };
    match Packet::parse(socket.protocol, ws_bytes_to_str(msg))? {
        Packet::Upgrade => {
            #[cfg(feature = "tracing")]
            tracing::debug!("ws upgraded successfully")
        }
        p => Err(Error::BadPacket(p))?,
    };

    socket.upgrade_to_websocket();
    Ok(())
}

fn ws_bytes_to_str(bytes: tungstenite::Utf8Bytes) -> Str {
    // SAFETY: the bytes are guaranteed to be valid UTF-8 by the tungstenite parser
    unsafe { Str::from_bytes_unchecked(bytes.into()) }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use futures_util::StreamExt;
    use http::Request;
    use tokio::io::DuplexStream;

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(1);

    #[derive(Debug)]
    struct StubHandler;
    impl EngineIoHandler for StubHandler {
        type Data = ();
        fn on_connect(self: Arc<Self>, _: Arc<Socket<()>>) {}
        fn on_disconnect(&self, _: Arc<Socket<()>>, _: DisconnectReason) {}
        fn on_message(self: &Arc<Self>, _: Str, _: Arc<Socket<()>>) {}
        fn on_binary(self: &Arc<Self>, _: Bytes, _: Arc<Socket<()>>) {}
    }

    fn socket() -> Arc<Socket<()>> {
        Arc::new(Socket::new(
            ProtocolVersion::V4,
            TransportType::Websocket,
            &EngineIoConfig::default(),
            Request::<()>::default().into_parts().0,
            Box::new(|_, _| ()),
            false,
        ))
    }

    async fn ws_pair() -> (WebSocketStream<DuplexStream>, WebSocketStream<DuplexStream>) {
        let (server, client) = tokio::io::duplex(1024);
        (
            WebSocketStream::from_raw_socket(server, Role::Server, None).await,
            WebSocketStream::from_raw_socket(client, Role::Client, None).await,
        )
    }

    fn engine(config: EngineIoConfig) -> Arc<EngineIo<StubHandler>> {
        Arc::new(EngineIo::new(Arc::new(StubHandler), config))
    }

    /// A polling request can still hold the lock at the end of an upgrade.
    #[tokio::test]
    async fn writer_waits_for_the_lock_of_a_polling_request() {
        let engine = engine(EngineIoConfig::default());
        let socket = socket();
        let (server, mut client) = ws_pair().await;

        let polling = socket.internal_rx.lock().await;
        let writer = tokio::spawn({
            let socket = socket.clone();
            async move {
                run(std::future::ready(Some(Connection::new(
                    engine, socket, server, false,
                ))))
                .await
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!writer.is_finished(), "the writer should wait for the lock");

        drop(polling);
        socket.emit(Str::from("hello")).unwrap();
        let msg = tokio::time::timeout(TIMEOUT, client.next())
            .await
            .expect("the writer should send the packet")
            .unwrap()
            .unwrap();
        assert_eq!(msg, Message::text("4hello"));
    }

    #[tokio::test]
    async fn writer_waiting_for_the_lock_stops_with_the_session() {
        let engine = engine(EngineIoConfig::default());
        let socket = socket();
        let (server, _client) = ws_pair().await;

        let _polling = socket.internal_rx.lock().await;
        let writer = tokio::spawn({
            let socket = socket.clone();
            async move {
                run(std::future::ready(Some(Connection::new(
                    engine, socket, server, false,
                ))))
                .await
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;

        socket.cancellation_token.cancel();
        tokio::time::timeout(TIMEOUT, writer)
            .await
            .expect("the writer should stop")
            .unwrap();
    }

    /// authbridge patch: the connection runs the heartbeat itself (v4: a ping at once
    /// and every interval; no pong within the timeout closes the session).
    #[tokio::test]
    async fn the_connection_pings_and_closes_a_client_that_does_not_answer() {
        let config = EngineIoConfig::builder()
            .ping_interval(Duration::from_millis(100))
            .ping_timeout(Duration::from_millis(50))
            .build();
        let engine = engine(config);
        let socket = engine.create_session(
            ProtocolVersion::V4,
            TransportType::Websocket,
            Request::<()>::default().into_parts().0,
            false,
        );
        let (server, mut client) = ws_pair().await;
        let conn = tokio::spawn({
            let (engine, socket) = (engine.clone(), socket.clone());
            async move {
                run(std::future::ready(Some(Connection::new(
                    engine, socket, server, true,
                ))))
                .await
            }
        });
        for _ in 0..3 {
            let msg = tokio::time::timeout(TIMEOUT, client.next()).await.unwrap();
            assert_eq!(msg.unwrap().unwrap(), Message::text("2"));
            client.send(Message::text("3")).await.unwrap();
        }
        // No pong: the session is closed within the timeout.
        let msg = tokio::time::timeout(TIMEOUT, client.next()).await.unwrap();
        assert_eq!(msg.unwrap().unwrap(), Message::text("2"));
        tokio::time::timeout(TIMEOUT, conn).await.unwrap().unwrap();
        assert!(engine.get_socket(socket.id).is_none());
    }

    /// authbridge patch, change 8: a WebSocket probe that fails before the client
    /// sends its upgrade packet — closed by the client, or answered with something
    /// else than the probe — leaves the polling session as it was: still there, no
    /// longer upgrading, its packets served to the next polling request. Fails
    /// with upstream's code: the session stays "upgrading", every poll answered
    /// with a noop (and `new_req` closed it).
    #[tokio::test]
    async fn a_failed_probe_leaves_the_polling_session() {
        let engine = engine(EngineIoConfig::default());
        for close_the_probe in [true, false] {
            let socket = engine.create_session(
                ProtocolVersion::V4,
                TransportType::Polling,
                Request::<()>::default().into_parts().0,
                true,
            );
            let (server, client) = tokio::io::duplex(1024);
            let probe = tokio::spawn({
                let (engine, sid) = (engine.clone(), socket.id);
                let parts = Request::<()>::default().into_parts().0;
                async move { on_init(engine, server, ProtocolVersion::V4, Some(sid), parts).await }
            });
            // The upgrade has begun (the noop that ends a waiting poll is queued).
            while !socket.is_upgrading() {
                tokio::task::yield_now().await;
            }
            let mut client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
            if close_the_probe {
                drop(client);
            } else {
                client.send(Message::text("4not a probe")).await.unwrap();
            }
            let result = tokio::time::timeout(TIMEOUT, probe).await.unwrap().unwrap();
            assert!(result.is_err(), "the upgrade failed");
            assert!(engine.get_socket(socket.id).is_some(), "the session is kept");
            assert!(socket.is_http() && !socket.is_upgrading(), "and polls again");
            socket.emit(Str::from("hello")).unwrap();
            let response = tokio::time::timeout(
                TIMEOUT,
                crate::transport::polling::polling_req::<String, _>(
                    engine.clone(),
                    ProtocolVersion::V4,
                    socket.id,
                ),
            )
            .await
            .unwrap()
            .unwrap();
            let body = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap()
                .to_bytes();
            // The noop queued for a waiting poll, then the message.
            assert_eq!(&body[..], b"6\x1e4hello");
        }
    }

    /// authbridge patch: a new v4 WebSocket session's open packet and first ping
    /// leave in one write, and the ping needs no timer (a deadline of `now` made
    /// tokio wake its driver through an eventfd on every connection, and the ping
    /// went out a tick later, in a write of its own). Fails with the ping sent
    /// from a timer: the client's first read finds the open packet alone.
    #[tokio::test(flavor = "current_thread")]
    async fn the_open_packet_and_the_first_ping_leave_together() {
        use tokio::io::AsyncReadExt;
        let engine = engine(EngineIoConfig::default());
        let (server, mut client) = tokio::io::duplex(4096);
        let conn = tokio::spawn({
            let engine = engine.clone();
            let parts = Request::<()>::default().into_parts().0;
            async move { on_init(engine, server, ProtocolVersion::V4, None, parts).await }
        });
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(TIMEOUT, client.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let read = &buf[..n];
        // Two unmasked text frames: `0{…}`, then `2`.
        assert_eq!(&read[..3], &[0x81, read[1], b'0'], "the open packet first");
        assert_eq!(n, 2 + read[1] as usize + 3, "and the ping in the same read");
        assert_eq!(&read[n - 3..], &[0x81, 0x01, b'2']);
        conn.abort();
    }

    /// authbridge patch: a WebSocket session is one task, whatever it does.
    #[tokio::test(flavor = "current_thread")]
    async fn a_websocket_session_is_one_task() {
        let engine = engine(EngineIoConfig::default());
        let tasks = tokio::runtime::Handle::current().metrics();
        let before = tasks.num_alive_tasks();
        let (server, client) = tokio::io::duplex(1024);
        let conn = tokio::spawn({
            let engine = engine.clone();
            let parts = Request::<()>::default().into_parts().0;
            async move { on_init(engine, server, ProtocolVersion::V4, None, parts).await }
        });
        let mut client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        let open = tokio::time::timeout(TIMEOUT, client.next()).await.unwrap();
        assert!(open.unwrap().unwrap().to_text().unwrap().starts_with("0{"));
        let ping = tokio::time::timeout(TIMEOUT, client.next()).await.unwrap();
        assert_eq!(ping.unwrap().unwrap(), Message::text("2"));
        client.send(Message::text("3")).await.unwrap();
        client.send(Message::text("4hello")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(tasks.num_alive_tasks() - before, 1);

        client.send(Message::text("1")).await.unwrap();
        tokio::time::timeout(TIMEOUT, conn)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

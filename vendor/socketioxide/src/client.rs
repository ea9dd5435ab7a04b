use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use bytes::Bytes;
use engineioxide::Str;
use engineioxide::handler::EngineIoHandler;
use engineioxide::socket::{DisconnectReason as EIoDisconnectReason, Socket as EIoSocket};
use futures_util::FutureExt;

use matchit::{Match, Router};
use socketioxide_core::packet::{Packet, PacketData};
use socketioxide_core::parser::{Parse, ParserState};
use socketioxide_core::{Sid, Value};

use crate::{
    ProtocolVersion, SocketIo, SocketIoConfig,
    adapter::Adapter,
    errors::Error,
    handler::ConnectHandler,
    ns::{Namespace, NamespaceCtr},
    parser::{ParseError, Parser},
    socket::DisconnectReason,
};

pub struct Client<A: Adapter> {
    pub(crate) config: SocketIoConfig,
    pub(crate) nsps: RwLock<HashMap<Str, Arc<Namespace<A>>>>,
    router: RwLock<Router<NamespaceCtr<A>>>,
    adapter_state: A::State,
    /// authbridge patch (vendor/README.md, change 6): the sessions waiting for a
    /// CONNECT, closed by one task after the connect timeout.
    connect_deadlines: Arc<ConnectDeadlines<A>>,

    #[cfg(feature = "state")]
    pub(crate) state: state::TypeMap![Send + Sync],
}

// ==== impl Client ====

impl<A: Adapter> Client<A> {
    pub fn new(
        config: SocketIoConfig,
        adapter_state: A::State,
        #[cfg(feature = "state")] mut state: state::TypeMap![Send + Sync],
    ) -> Self {
        #[cfg(feature = "state")]
        state.freeze();

        Self {
            config,
            nsps: RwLock::new(HashMap::new()),
            router: RwLock::new(Router::new()),
            adapter_state,
            connect_deadlines: Arc::new(ConnectDeadlines::default()),
            #[cfg(feature = "state")]
            state,
        }
    }

    /// Called when a socket connects to a new namespace
    fn sock_connect(
        self: &Arc<Self>,
        auth: Option<Value>,
        ns_path: &str,
        esocket: &Arc<engineioxide::Socket<SocketData<A>>>,
    ) {
        #[cfg(feature = "tracing")]
        tracing::debug!("auth: {:?}", auth);
        let protocol: ProtocolVersion = esocket.protocol.into();
        let deadlines = self.connect_deadlines.clone();
        let connect = async move |ns: Arc<Namespace<A>>, esocket: Arc<EIoSocket<SocketData<A>>>| {
            if ns.connect(esocket.id, esocket.clone(), auth).await.is_ok() {
                // cancel the connect timeout
                deadlines.remove(esocket.id);
            }
        };

        if let Some(ns) = self.get_ns(ns_path) {
            // authbridge patch (vendor/README.md, change 5): a CONNECT packet (v5)
            // is handled in the transport's task until it has to wait, so the
            // answer and what the connect handler emits leave in one write. The
            // v4 implicit connection stays a task: it is started before the
            // transport has sent the Engine.IO open packet.
            match protocol {
                ProtocolVersion::V5 => crate::run::run_or_spawn(connect(ns, esocket.clone())),
                ProtocolVersion::V4 => {
                    tokio::spawn(connect(ns, esocket.clone()));
                }
            }
        } else if let Ok(Match { value: ns_ctr, .. }) = self.router.read().unwrap().at(ns_path) {
            let path = Str::copy_from_slice(ns_path);
            let ns = ns_ctr.get_new_ns(path.clone(), &self.adapter_state, &self.config);
            let this = self.clone();
            let esocket = esocket.clone();
            let adapter = ns.adapter.clone();
            let on_success = move || {
                this.nsps.write().unwrap().insert(path, ns.clone());
                tokio::spawn(connect(ns, esocket));
            };
            // We "ask" the adapter implementation to manage the init response itself
            socketioxide_core::adapter::Spawnable::spawn(adapter.init(on_success));
        } else if protocol == ProtocolVersion::V4 && ns_path == "/" {
            #[cfg(feature = "tracing")]
            tracing::error!(
                "the root namespace \"/\" must be defined before any connection for protocol V4 (legacy)!"
            );
            esocket.close(EIoDisconnectReason::TransportClose);
        } else {
            let path = Str::copy_from_slice(ns_path);
            let packet = self
                .parser()
                .encode(Packet::connect_error(path, "Invalid namespace"));
            let _ = match packet {
                Value::Str(p, _) => esocket.emit(p).map_err(|_e| {
                    #[cfg(feature = "tracing")]
                    tracing::error!("error while sending invalid namespace packet: {}", _e);
                }),
                Value::Bytes(p) => esocket.emit_binary(p).map_err(|_e| {
                    #[cfg(feature = "tracing")]
                    tracing::error!("error while sending invalid namespace packet: {}", _e);
                }),
            };
        }
    }

    /// Propagate a packet to its target namespace
    fn sock_propagate_packet(&self, packet: Packet, sid: Sid) -> Result<(), Error> {
        if let Some(ns) = self.get_ns(&packet.ns) {
            ns.recv(sid, packet.inner)
        } else {
            #[cfg(feature = "tracing")]
            tracing::debug!(?sid, "invalid namespace requested: {}", packet.ns);
            Ok(())
        }
    }

    /// Close the socket if it is not connected to a namespace after the
    /// [`SocketIoConfig::connect_timeout`] duration
    fn spawn_connect_timeout_task(&self, socket: Arc<EIoSocket<SocketData<A>>>) {
        #[cfg(feature = "tracing")]
        tracing::debug!("starting the connect timeout");
        self.connect_deadlines
            .insert(socket, self.config.connect_timeout);
    }

    /// Adds a new namespace handler
    pub fn add_ns<C, T>(self: Arc<Self>, path: Cow<'static, str>, callback: C) -> A::InitRes
    where
        C: ConnectHandler<A, T>,
        T: Send + Sync + 'static,
    {
        #[cfg(feature = "tracing")]
        tracing::debug!("adding namespace {}", path);

        let ns_path = Str::from(&path);
        let ns = Namespace::new(ns_path.clone(), callback, &self.adapter_state, &self.config);
        let adapter = ns.adapter.clone();
        let on_success = move || {
            self.nsps.write().unwrap().insert(ns_path, ns);
        };
        adapter.init(on_success)
    }

    pub fn add_dyn_ns<C, T>(&self, path: String, callback: C) -> Result<(), matchit::InsertError>
    where
        C: ConnectHandler<A, T>,
        T: Send + Sync + 'static,
    {
        #[cfg(feature = "tracing")]
        tracing::debug!("adding dynamic namespace {}", &path);

        let ns = NamespaceCtr::new(callback);
        self.router.write().unwrap().insert(path, ns)
    }

    /// Deletes a namespace handler and closes all the connections to it
    pub fn delete_ns(&self, path: &str) {
        #[cfg(feature = "v4")]
        if path == "/" {
            panic!(
                "the root namespace \"/\" cannot be deleted for the socket.io v4 protocol. See https://socket.io/docs/v3/namespaces/#main-namespace for more info"
            );
        }

        #[cfg(feature = "tracing")]
        tracing::debug!("deleting namespace {}", path);
        if let Some(ns) = self.nsps.write().unwrap().remove(path) {
            ns.close(DisconnectReason::ServerNSDisconnect)
                .now_or_never();
        }
    }

    pub fn get_ns(&self, path: &str) -> Option<Arc<Namespace<A>>> {
        self.nsps.read().unwrap().get(path).cloned()
    }

    /// Closes all engine.io connections and all clients
    #[cfg_attr(feature = "tracing", tracing::instrument(skip(self)))]
    pub(crate) async fn close(&self) {
        #[cfg(feature = "tracing")]
        tracing::debug!("closing all namespaces");
        let ns = { std::mem::take(&mut *self.nsps.write().unwrap()) };
        futures_util::future::join_all(
            ns.values()
                .map(|ns| ns.close(DisconnectReason::ClosingServer)),
        )
        .await;
        #[cfg(feature = "tracing")]
        tracing::debug!("all namespaces closed");
    }

    pub(crate) fn parser(&self) -> Parser {
        self.config.parser
    }
}

/// authbridge patch (vendor/README.md, change 6): the connect timeout of every
/// session waiting for its CONNECT, kept by one task, instead of a task, a timer
/// and a oneshot channel per session.
///
/// A session is removed when it connects (or closes), so only the waiting ones
/// are kept. The task runs while some are waiting and ends when none are; it
/// closes a session at most `timeout / 10` after its deadline (it sleeps until
/// the earliest deadline, but not for less than that).
struct ConnectDeadlines<A: Adapter> {
    state: Mutex<Waiting<A>>,
}

struct Waiting<A: Adapter> {
    sockets: HashMap<Sid, (tokio::time::Instant, Arc<EIoSocket<SocketData<A>>>)>,
    sweeping: bool,
}

impl<A: Adapter> Default for ConnectDeadlines<A> {
    fn default() -> Self {
        Self {
            state: Mutex::new(Waiting {
                sockets: HashMap::new(),
                sweeping: false,
            }),
        }
    }
}

impl<A: Adapter> ConnectDeadlines<A> {
    fn insert(
        self: &Arc<Self>,
        socket: Arc<EIoSocket<SocketData<A>>>,
        timeout: std::time::Duration,
    ) {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut state = self.state.lock().unwrap();
        state.sockets.insert(socket.id, (deadline, socket));
        if !state.sweeping {
            state.sweeping = true;
            tokio::spawn(self.clone().sweep(timeout / 10));
        }
    }

    fn remove(&self, sid: Sid) {
        self.state.lock().unwrap().sockets.remove(&sid);
    }

    async fn sweep(self: Arc<Self>, grain: std::time::Duration) {
        let mut expired = Vec::new();
        loop {
            let now = tokio::time::Instant::now();
            let next = {
                let mut state = self.state.lock().unwrap();
                state.sockets.retain(|_, (deadline, socket)| {
                    let keep = *deadline > now;
                    if !keep {
                        expired.push(socket.clone());
                    }
                    keep
                });
                let next = state.sockets.values().map(|(deadline, _)| *deadline).min();
                if next.is_none() && expired.is_empty() {
                    state.sweeping = false;
                    return;
                }
                next
            };
            for socket in expired.drain(..) {
                #[cfg(feature = "tracing")]
                tracing::debug!("connect timeout for socket {}", socket.id);
                socket.close(EIoDisconnectReason::TransportClose);
            }
            if let Some(next) = next {
                tokio::time::sleep_until(next.max(now + grain)).await;
            }
        }
    }
}

pub struct SocketData<A: Adapter> {
    pub parser_state: ParserState,

    /// Used to store the [`SocketIo`] instance so it can be accessed by any sockets
    pub io: OnceLock<SocketIo<A>>,
}
impl<A: Adapter> Default for SocketData<A> {
    fn default() -> Self {
        Self {
            parser_state: ParserState::default(),
            io: OnceLock::new(),
        }
    }
}
impl<A: Adapter> fmt::Debug for SocketData<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketData")
            .field("parser_state", &self.parser_state)
            .finish()
    }
}

impl<A: Adapter> EngineIoHandler for Client<A> {
    type Data = SocketData<A>;

    #[cfg_attr(feature = "tracing", tracing::instrument(skip(self, socket), fields(sid = socket.id.to_string())))]
    fn on_connect(self: Arc<Self>, socket: Arc<EIoSocket<SocketData<A>>>) {
        socket.data.io.set(SocketIo::from(self.clone())).ok();

        #[cfg(feature = "tracing")]
        tracing::debug!("eio socket connect");

        let protocol: ProtocolVersion = socket.protocol.into();

        // Connecting the client to the default namespace is mandatory if the SocketIO protocol is v4.
        // Because we connect by default to the root namespace, we should ensure before that the root namespace is defined
        match protocol {
            ProtocolVersion::V4 => {
                #[cfg(feature = "tracing")]
                tracing::debug!("connecting to default namespace for v4");
                // authbridge patch: a v4 session whose implicit connection to "/"
                // is refused by a middleware has no namespace either; without the
                // timeout it would live for as long as the client answers pings.
                // A successful connection cancels it, as for v5.
                self.spawn_connect_timeout_task(socket.clone());
                self.sock_connect(None, "/", &socket);
            }
            ProtocolVersion::V5 => self.spawn_connect_timeout_task(socket),
        }
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(skip(self, socket), fields(sid = socket.id.to_string())))]
    fn on_disconnect(&self, socket: Arc<EIoSocket<SocketData<A>>>, reason: EIoDisconnectReason) {
        #[cfg(feature = "tracing")]
        tracing::debug!("eio socket disconnected");
        // authbridge patch (change 6): a session closed before its CONNECT is not
        // kept until its deadline.
        self.connect_deadlines.remove(socket.id);
        let socks: Vec<_> = self
            .nsps
            .read()
            .unwrap()
            .values()
            .filter_map(|ns| ns.get_socket(socket.id).ok())
            .collect();

        let _cnt = socks
            .into_iter()
            .map(|s| s.close(reason.clone().into()))
            .count();

        #[cfg(feature = "tracing")]
        tracing::debug!("disconnect handle spawned for {_cnt} namespaces");
    }

    fn on_message(self: &Arc<Self>, msg: Str, socket: Arc<EIoSocket<SocketData<A>>>) {
        #[cfg(feature = "tracing")]
        tracing::debug!("received message: {:?}", msg);
        let packet = match self.parser().decode_str(
            &self.config.parse_config,
            &socket.data.parser_state,
            msg,
        ) {
            Ok(packet) => packet,
            Err(ParseError::NeedsMoreBinaryData) => return,
            Err(_e) => {
                #[cfg(feature = "tracing")]
                tracing::debug!("socket deserialization error: {}", _e);
                socket.close(EIoDisconnectReason::PacketParsingError);
                return;
            }
        };
        #[cfg(feature = "tracing")]
        tracing::debug!("Packet: {:?}", packet);

        let res: Result<(), Error> = match packet.inner {
            PacketData::Connect(auth) => {
                self.sock_connect(auth, &packet.ns, &socket);
                Ok(())
            }
            _ => self.sock_propagate_packet(packet, socket.id),
        };
        if let Err(ref err) = res {
            #[cfg(feature = "tracing")]
            tracing::debug!(
                "error while processing packet to socket {}: {}",
                socket.id,
                err
            );
            if let Some(reason) = err.into() {
                socket.close(reason);
            }
        }
    }

    /// When a binary payload is received from a socket, it is applied to the partial binary packet
    ///
    /// If the packet is complete, it is propagated to the namespace
    fn on_binary(self: &Arc<Self>, data: Bytes, socket: Arc<EIoSocket<SocketData<A>>>) {
        #[cfg(feature = "tracing")]
        tracing::debug!("received binary: {:?}", &data);
        let packet = match self.parser().decode_bin(
            &self.config.parse_config,
            &socket.data.parser_state,
            data,
        ) {
            Ok(packet) => packet,
            Err(ParseError::NeedsMoreBinaryData) => return,
            Err(_e) => {
                #[cfg(feature = "tracing")]
                tracing::debug!("socket deserialization error: {}", _e);
                socket.close(EIoDisconnectReason::PacketParsingError);
                return;
            }
        };

        let res: Result<(), Error> = match packet.inner {
            PacketData::Connect(auth) => {
                self.sock_connect(auth, &packet.ns, &socket);
                Ok(())
            }
            _ => self.sock_propagate_packet(packet, socket.id),
        };
        if let Err(ref err) = res {
            #[cfg(feature = "tracing")]
            tracing::debug!(
                "error while propagating packet to socket {}: {}",
                socket.id,
                err
            );
            if let Some(reason) = err.into() {
                socket.close(reason);
            }
        }
    }
}
impl<A: Adapter> std::fmt::Debug for Client<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut f = f.debug_struct("Client");
        f.field("config", &self.config).field("nsps", &self.nsps);
        #[cfg(feature = "state")]
        let f = f.field("state", &self.state);
        f.finish()
    }
}

#[doc(hidden)]
#[cfg(feature = "__test_harness")]
impl<A: Adapter> Client<A> {
    pub async fn new_dummy_sock(
        self: Arc<Self>,
        ns: &'static str,
        auth: impl serde::Serialize,
    ) -> (
        tokio::sync::mpsc::Sender<engineioxide::Packet>,
        tokio::sync::mpsc::Receiver<engineioxide::Packet>,
    ) {
        let buffer_size = self.config.engine_config.max_buffer_size;
        let sid = Sid::new();
        let (esock, rx) =
            EIoSocket::<SocketData<A>>::new_dummy_piped(sid, Box::new(|_, _| {}), buffer_size);
        esock.data.io.set(SocketIo::from(self.clone())).ok();
        let (tx1, mut rx1) = tokio::sync::mpsc::channel(buffer_size);
        tokio::spawn({
            let esock = esock.clone();
            let client = self.clone();
            async move {
                while let Some(packet) = rx1.recv().await {
                    match packet {
                        engineioxide::Packet::Message(msg) => {
                            client.on_message(msg, esock.clone());
                        }
                        engineioxide::Packet::Close => {
                            client
                                .on_disconnect(esock.clone(), EIoDisconnectReason::TransportClose);
                        }
                        engineioxide::Packet::Binary(bin) => {
                            client.on_binary(bin, esock.clone());
                        }
                        _ => {}
                    }
                }
            }
        });
        let parser = crate::parser::Parser::default();
        let val = parser.encode(Packet {
            ns: ns.into(),
            inner: PacketData::Connect(Some(parser.encode_default(&auth).unwrap())),
        });
        if let Value::Str(s, _) = val {
            self.on_message(s, esock.clone());
        }

        // wait for the socket to be connected to the namespace
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;

        (tx1, rx)
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use tokio::sync::mpsc;

    use crate::adapter::LocalAdapter;
    const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(50);

    fn create_client() -> Arc<super::Client<LocalAdapter>> {
        let config = crate::SocketIoConfig {
            connect_timeout: CONNECT_TIMEOUT,
            ..Default::default()
        };
        let client = Client::new(
            config,
            (),
            #[cfg(feature = "state")]
            Default::default(),
        );
        let client = Arc::new(client);
        client.clone().add_ns("/".into(), async || ());
        client
    }

    #[tokio::test]
    async fn get_ns() {
        let client = create_client();
        let ns = Str::from("/");
        let ns = Namespace::new(ns, async || (), &client.adapter_state, &client.config);
        client.nsps.write().unwrap().insert(Str::from("/"), ns);
        assert!(client.get_ns("/").is_some());
    }

    #[tokio::test]
    async fn io_should_always_be_set() {
        let client = create_client();
        let close_fn = Box::new(move |_, _| {});
        let sock = EIoSocket::new_dummy(Sid::new(), close_fn);
        client.on_connect(sock.clone());
        assert!(sock.data.io.get().is_some());
    }

    #[tokio::test]
    async fn connect_timeout_fail() {
        let client = create_client();
        let (close_tx, mut close_rx) = mpsc::channel(1);
        let close_fn = Box::new(move |_, reason| close_tx.try_send(reason).unwrap());
        let sock = EIoSocket::new_dummy(Sid::new(), close_fn);
        client.on_connect(sock.clone());
        // The socket is closed
        let res = tokio::time::timeout(CONNECT_TIMEOUT * 2, close_rx.recv())
            .await
            .unwrap();
        // applied in case of ns timeout
        assert_eq!(res, Some(EIoDisconnectReason::TransportClose));
    }

    /// authbridge patch, change 5: a CONNECT whose middleware and handler do
    /// not wait is carried out before `on_message` returns — no task — and a
    /// transport that ends runs the disconnect handler before `on_disconnect`
    /// returns. Fails with the spawning code: on this one-thread runtime the
    /// spawned tasks cannot have run before the test yields.
    #[tokio::test(flavor = "current_thread")]
    async fn connect_and_disconnect_handlers_run_where_they_are_called() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let connected = Arc::new(AtomicBool::new(false));
        let disconnected = Arc::new(AtomicBool::new(false));
        let client = Arc::new(Client::new(
            crate::SocketIoConfig::default(),
            (),
            #[cfg(feature = "state")]
            Default::default(),
        ));
        let (on_connect, on_disconnect) = (connected.clone(), disconnected.clone());
        client
            .clone()
            .add_ns("/".into(), move |s: crate::extract::SocketRef| {
                let (connected, disconnected) = (on_connect.clone(), on_disconnect.clone());
                async move {
                    connected.store(true, Ordering::SeqCst);
                    s.on_disconnect(move || {
                        let disconnected = disconnected.clone();
                        async move { disconnected.store(true, Ordering::SeqCst) }
                    });
                }
            });
        let sock = EIoSocket::new_dummy(Sid::new(), Box::new(|_, _| {}));
        client.clone().on_connect(sock.clone());
        client.on_message("0".into(), sock.clone());
        assert!(connected.load(Ordering::SeqCst), "the connect handler ran");
        assert!(client.get_ns("/").unwrap().get_socket(sock.id).is_ok());
        client.on_disconnect(sock.clone(), EIoDisconnectReason::TransportClose);
        assert!(
            disconnected.load(Ordering::SeqCst),
            "the disconnect handler ran"
        );
        assert!(client.get_ns("/").unwrap().get_socket(sock.id).is_err());
    }

    /// A close the server asks for keeps its disconnect handler in a task of its
    /// own (the caller may hold locks the handler takes).
    #[tokio::test(flavor = "current_thread")]
    async fn a_server_side_disconnect_runs_its_handler_in_a_task() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let disconnected = Arc::new(AtomicBool::new(false));
        let client = create_client();
        let on_disconnect = disconnected.clone();
        client
            .clone()
            .add_ns("/".into(), move |s: crate::extract::SocketRef| {
                let disconnected = on_disconnect.clone();
                async move {
                    s.on_disconnect(move || {
                        let disconnected = disconnected.clone();
                        async move { disconnected.store(true, Ordering::SeqCst) }
                    });
                }
            });
        let sock = EIoSocket::new_dummy(Sid::new(), Box::new(|_, _| {}));
        client.clone().on_connect(sock.clone());
        client.on_message("0".into(), sock.clone());
        let socket = client.get_ns("/").unwrap().get_socket(sock.id).unwrap();
        socket.disconnect().unwrap();
        assert!(!disconnected.load(Ordering::SeqCst));
        tokio::task::yield_now().await;
        assert!(disconnected.load(Ordering::SeqCst));
    }

    /// authbridge patch, change 6: one task keeps every connect timeout; it
    /// closes the sessions that did not connect, forgets those that did or that
    /// closed, and ends when none is waiting.
    #[tokio::test]
    async fn one_task_keeps_the_connect_timeouts() {
        let client = create_client();
        let (close_tx, mut close_rx) = mpsc::channel(8);
        let socks: Vec<_> = (0..3)
            .map(|_| {
                let close_tx = close_tx.clone();
                let close_fn = Box::new(move |sid, _| close_tx.try_send(sid).unwrap());
                EIoSocket::new_dummy(Sid::new(), close_fn)
            })
            .collect();
        for sock in &socks {
            client.clone().on_connect(sock.clone());
        }
        assert_eq!(
            client.connect_deadlines.state.lock().unwrap().sockets.len(),
            3
        );
        client.on_message("0".into(), socks[0].clone());
        client.on_disconnect(socks[1].clone(), EIoDisconnectReason::TransportClose);
        // Only the session that neither connected nor closed is waiting.
        tokio::task::yield_now().await;
        assert_eq!(
            client.connect_deadlines.state.lock().unwrap().sockets.len(),
            1
        );
        let closed = tokio::time::timeout(CONNECT_TIMEOUT * 4, close_rx.recv())
            .await
            .unwrap();
        assert_eq!(closed, Some(socks[2].id));
        tokio::time::timeout(CONNECT_TIMEOUT * 2, close_rx.recv())
            .await
            .unwrap_err();
        let state = client.connect_deadlines.state.lock().unwrap();
        assert!(
            state.sockets.is_empty() && !state.sweeping,
            "the task ended"
        );
    }

    #[tokio::test]
    async fn connect_timeout() {
        let client = create_client();
        let (close_tx, mut close_rx) = mpsc::channel(1);
        let close_fn = Box::new(move |_, reason| close_tx.try_send(reason).unwrap());
        let sock = EIoSocket::new_dummy(Sid::new(), close_fn);
        client.clone().on_connect(sock.clone());
        client.on_message("0".into(), sock.clone());
        // The socket is not closed.
        tokio::time::timeout(CONNECT_TIMEOUT * 2, close_rx.recv())
            .await
            .unwrap_err();
    }

    /// The parser rejects a string packet during a binary packet: the socket must be closed.
    #[tokio::test]
    async fn string_packet_during_a_binary_packet_closes_the_socket() {
        let client = create_client();
        let (close_tx, mut close_rx) = mpsc::channel(4);
        let close_fn = Box::new(move |_, reason| close_tx.try_send(reason).unwrap());
        let sock = EIoSocket::new_dummy(Sid::new(), close_fn);
        client.clone().on_connect(sock.clone());
        client.on_message("0".into(), sock.clone());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;

        let header = "51-[\"event\",{\"_placeholder\":true,\"num\":0}]";
        client.on_message(header.into(), sock.clone());
        client.on_message("2[\"other\"]".into(), sock.clone());

        let res = tokio::time::timeout(CONNECT_TIMEOUT, close_rx.recv())
            .await
            .expect("the socket should be closed");
        assert_eq!(res, Some(EIoDisconnectReason::PacketParsingError));
    }
}

//! A bare Engine.IO v4 / Socket.IO v5 client over one WebSocket: the handshake,
//! pings, and the few packets a load test sends and reads.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Why one connection failed (counted, not fatal to a run).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("tcp connect: {0}")]
    Connect(std::io::Error),
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the server closed the connection")]
    Closed,
    #[error("unexpected packet {0:?}")]
    Protocol(String),
}

/// How a Socket.IO connect ended.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "made once per connection and moved at once into the task that keeps it"
)]
pub enum Handshake {
    /// `welcome` arrived; the socket is open.
    Welcomed(SocketIoClient),
    /// `44{"message": …}`: the server refused the token with this message.
    Refused(String),
}

/// One packet read from an open socket.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A Socket.IO event (`42[…]`): the JSON array, unparsed.
    Event(String),
    /// Any other packet (acks, noops, …): nothing for a load test to do.
    Other,
}

/// An open, authenticated Socket.IO socket. Server pings are answered while
/// reading ([`SocketIoClient::next`]).
#[derive(Debug)]
pub struct SocketIoClient {
    ws: WebSocketStream<TcpStream>,
}

/// Frames here are small: a large read buffer per socket would make the load
/// generator, not the server, the memory hog of a held-connections run.
fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// Opens a WebSocket to `server` (from `source`, when given: the kernel has
/// ~28k ephemeral ports per source address), presents `token` in the
/// handshake's `auth` payload and waits for `welcome` or the refusal, all
/// within `timeout`.
pub async fn connect(
    server: SocketAddr,
    source: Option<IpAddr>,
    token: &str,
    timeout: Duration,
) -> Result<Handshake, ClientError> {
    tokio::time::timeout(timeout, handshake(server, source, token))
        .await
        .unwrap_or(Err(ClientError::Timeout(timeout)))
}

async fn handshake(
    server: SocketAddr,
    source: Option<IpAddr>,
    token: &str,
) -> Result<Handshake, ClientError> {
    let socket = if server.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(ClientError::Connect)?;
    if let Some(source) = source {
        socket
            .bind(SocketAddr::new(source, 0))
            .map_err(ClientError::Connect)?;
    }
    let stream = socket.connect(server).await.map_err(ClientError::Connect)?;
    stream.set_nodelay(true).map_err(ClientError::Connect)?;
    let url = format!("ws://{server}/socket.io/?EIO=4&transport=websocket");
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(websocket_config())).await?;
    let mut client = SocketIoClient { ws };

    // Engine.IO open packet: `0{"sid":…,"pingInterval":…}`.
    let open = client.next_text().await?;
    if !open.starts_with('0') {
        return Err(ClientError::Protocol(open));
    }
    let connect = format!(
        "40{}",
        serde_json::json!({ "token": token }) // escapes whatever the token holds
    );
    client.ws.send(Message::text(connect)).await?;
    loop {
        let packet = client.next_text().await?;
        if let Some(event) = packet.strip_prefix("42") {
            if event.starts_with("[\"welcome\"") {
                return Ok(Handshake::Welcomed(client));
            }
        } else if let Some(error) = packet.strip_prefix("44") {
            return Ok(Handshake::Refused(refusal_message(error)));
        } else if !packet.starts_with("40") {
            // `40{"sid":…}` comes first, then `welcome`; anything else is wrong.
            return Err(ClientError::Protocol(packet));
        }
    }
}

/// The `message` of a `connect_error` payload (`{"message": …}`), else the raw payload.
fn refusal_message(payload: &str) -> String {
    serde_json::from_str::<serde_json::Value>(payload)
        .ok()
        .and_then(|value| value.get("message")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| payload.to_owned())
}

impl SocketIoClient {
    /// The next packet. Pings are answered and not returned; `Ok(None)` when
    /// the server closed the socket. Cancel-safe between packets.
    pub async fn next(&mut self) -> Result<Option<Incoming>, ClientError> {
        loop {
            let Some(frame) = self.ws.next().await else {
                return Ok(None);
            };
            let text = match frame? {
                Message::Text(text) => text,
                Message::Close(_) => return Ok(None),
                _ => continue,
            };
            match text.as_bytes().first() {
                Some(b'2') => self.ws.send(Message::text("3")).await?,
                Some(b'1') => return Ok(None),
                Some(b'4') => {
                    return Ok(Some(match text.strip_prefix("42") {
                        Some(event) => Incoming::Event(event.to_owned()),
                        None => Incoming::Other,
                    }));
                }
                _ => return Ok(Some(Incoming::Other)),
            }
        }
    }

    /// Emits the `message` event with a string argument.
    pub async fn emit_message(&mut self, text: &str) -> Result<(), ClientError> {
        let packet = format!("42{}", serde_json::json!(["message", text]));
        self.ws.send(Message::text(packet)).await?;
        Ok(())
    }

    /// Answers pings until `stop` changes or the server closes the socket.
    pub async fn hold_until(mut self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = stop.wait_for(|stop| *stop) => break,
                packet = self.next() => if !matches!(packet, Ok(Some(_))) { return },
            }
        }
        // A WebSocket close, without waiting for the server's answer.
        let _ = tokio::time::timeout(Duration::from_millis(100), self.ws.close(None)).await;
    }

    /// The next text frame, pings answered; during the handshake only.
    async fn next_text(&mut self) -> Result<String, ClientError> {
        loop {
            match self.ws.next().await {
                None => return Err(ClientError::Closed),
                Some(frame) => match frame? {
                    Message::Text(text) if text.as_str() == "2" => {
                        self.ws.send(Message::text("3")).await?;
                    }
                    Message::Text(text) => return Ok(text.as_str().to_owned()),
                    Message::Close(_) => return Err(ClientError::Closed),
                    _ => {}
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_reads_the_message_of_the_connect_error() {
        assert_eq!(
            refusal_message(r#"{"message":"not valid token"}"#),
            "not valid token"
        );
        assert_eq!(
            refusal_message(r#"{"message":"token expired","data":null}"#),
            "token expired"
        );
        assert_eq!(refusal_message("garbage"), "garbage");
    }
}

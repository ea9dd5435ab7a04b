//! A small HTTP/1.1 client over one keep-alive `TcpStream`: one request at a
//! time, the whole request in one write, the response read with
//! `Content-Length` or chunked framing. Just enough for the server API, and
//! cheap enough that the load client measures the server, not itself.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// A response head and body larger than this is refused (the API's answers
/// are a few dozen bytes).
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Why a request got no response (counted, not fatal to a run).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("tcp: {0}")]
    Io(#[from] std::io::Error),
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("the server closed the connection")]
    Closed,
    #[error("malformed response: {0}")]
    Malformed(&'static str),
}

/// One response: its status and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One keep-alive connection to `server`, opened on first use and again
/// after the server closes it or a request fails.
#[derive(Debug)]
pub struct Connection {
    server: SocketAddr,
    stream: Option<TcpStream>,
    /// Bytes read and not yet parsed (a response's head and body).
    buffer: Vec<u8>,
}

impl Connection {
    pub fn new(server: SocketAddr) -> Self {
        Self {
            server,
            stream: None,
            buffer: Vec::with_capacity(4096),
        }
    }

    /// The server this connection talks to.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// Sends `request` (a complete HTTP/1.1 request, head and body) and reads
    /// the response, all within `timeout`. A failed exchange drops the
    /// connection: the next request opens a fresh one.
    pub async fn exchange(
        &mut self,
        request: &[u8],
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        let outcome = tokio::time::timeout(timeout, self.exchange_unbounded(request))
            .await
            .unwrap_or(Err(HttpError::Timeout(timeout)));
        if outcome.is_err() {
            self.stream = None;
        }
        outcome
    }

    async fn exchange_unbounded(&mut self, request: &[u8]) -> Result<Response, HttpError> {
        let server = self.server;
        let stream = match &mut self.stream {
            Some(stream) => stream,
            slot @ None => {
                let stream = TcpStream::connect(server).await?;
                stream.set_nodelay(true)?;
                slot.insert(stream)
            }
        };
        stream.write_all(request).await?;
        self.buffer.clear();
        let (head, close) = read_response(stream, &mut self.buffer).await?;
        if close {
            self.stream = None;
        }
        Ok(head)
    }
}

/// Reads one response from `stream` into `buffer`; also says whether the
/// server will close the connection after it.
async fn read_response(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
) -> Result<(Response, bool), HttpError> {
    let head_end = loop {
        if let Some(end) = find(buffer, b"\r\n\r\n") {
            break end + 4;
        }
        fill(stream, buffer).await?;
    };
    let head = Head::parse(&buffer[..head_end])?;
    let body = match head.framing {
        Framing::Length(length) => {
            while buffer.len() < head_end + length {
                fill(stream, buffer).await?;
            }
            buffer[head_end..head_end + length].to_vec()
        }
        Framing::Chunked => read_chunked(stream, buffer, head_end).await?,
    };
    Ok((
        Response {
            status: head.status,
            body,
        },
        head.close,
    ))
}

/// A chunked body from `start` on: every chunk, to the last (empty) one and
/// the blank line after it (trailers are not expected and refused).
async fn read_chunked(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    start: usize,
) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    let mut at = start;
    loop {
        let line_end = loop {
            if let Some(end) = find(&buffer[at..], b"\r\n") {
                break at + end;
            }
            fill(stream, buffer).await?;
        };
        let size_text = std::str::from_utf8(&buffer[at..line_end])
            .map_err(|_| HttpError::Malformed("chunk size"))?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| HttpError::Malformed("chunk size"))?;
        let data_start = line_end + 2;
        // The chunk and its CRLF (for the last chunk: the final CRLF).
        while buffer.len() < data_start + size + 2 {
            fill(stream, buffer).await?;
        }
        if &buffer[data_start + size..data_start + size + 2] != b"\r\n" {
            return Err(HttpError::Malformed("chunk end"));
        }
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&buffer[data_start..data_start + size]);
        if body.len() > MAX_RESPONSE_BYTES {
            return Err(HttpError::Malformed("body too large"));
        }
        at = data_start + size + 2;
    }
}

/// Reads more bytes into `buffer`.
async fn fill(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Result<(), HttpError> {
    if buffer.len() > MAX_RESPONSE_BYTES {
        return Err(HttpError::Malformed("response too large"));
    }
    buffer.reserve(4096);
    if stream.read_buf(buffer).await? == 0 {
        return Err(HttpError::Closed);
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

enum Framing {
    Length(usize),
    Chunked,
}

/// What a response head says about the response.
struct Head {
    status: u16,
    framing: Framing,
    close: bool,
}

impl Head {
    fn parse(head: &[u8]) -> Result<Self, HttpError> {
        let head = std::str::from_utf8(head).map_err(|_| HttpError::Malformed("head"))?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if !version.starts_with("HTTP/1.") {
            return Err(HttpError::Malformed("status line"));
        }
        let status = parts
            .next()
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or(HttpError::Malformed("status code"))?;
        let mut length = None;
        let mut chunked = false;
        let mut close = version == "HTTP/1.0";
        for line in lines.filter(|line| !line.is_empty()) {
            let Some((name, value)) = line.split_once(':') else {
                return Err(HttpError::Malformed("header line"));
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| HttpError::Malformed("content-length"))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        let framing = match (chunked, length) {
            (true, _) => Framing::Chunked,
            (false, Some(length)) if length <= MAX_RESPONSE_BYTES => Framing::Length(length),
            (false, Some(_)) => return Err(HttpError::Malformed("body too large")),
            // No framing: the body runs to the close; the API never answers so.
            (false, None) => return Err(HttpError::Malformed("no content-length")),
        };
        Ok(Self {
            status,
            framing,
            close,
        })
    }
}

/// A `POST` of a JSON body, head and body in one buffer.
pub fn post_json(host: &str, path: &str, authorization: &str, body: &[u8]) -> Vec<u8> {
    let mut request = Vec::with_capacity(160 + authorization.len() + body.len());
    request.extend_from_slice(b"POST ");
    request.extend_from_slice(path.as_bytes());
    request.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    request.extend_from_slice(host.as_bytes());
    request.extend_from_slice(b"\r\nAuthorization: ");
    request.extend_from_slice(authorization.as_bytes());
    request.extend_from_slice(b"\r\nContent-Type: application/json\r\nContent-Length: ");
    request.extend_from_slice(body.len().to_string().as_bytes());
    request.extend_from_slice(b"\r\n\r\n");
    request.extend_from_slice(body);
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that answers each request it reads with the next canned response.
    async fn canned(responses: Vec<Vec<u8>>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut buffer = vec![0_u8; 4096];
            for response in responses {
                let _ = stream.read(&mut buffer).await.expect("read");
                // In two pieces: a response may arrive in several reads.
                let (first, rest) = response.split_at(response.len() / 2);
                stream.write_all(first).await.expect("write");
                tokio::time::sleep(Duration::from_millis(5)).await;
                stream.write_all(rest).await.expect("write");
            }
        });
        addr
    }

    #[tokio::test]
    async fn responses_with_a_length_or_chunks_are_read_on_one_connection() {
        let body = r#"{"id":"a","sockets":2}"#;
        let addr = canned(vec![
            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: application/json\r\n\r\n{body}", body.len()).into_bytes(),
            b"HTTP/1.1 401 Unauthorized\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{\"er\r\n3\r\nr\":\r\n0\r\n\r\n".to_vec(),
        ])
        .await;
        let mut connection = Connection::new(addr);
        let request = post_json("h", "/api/publish", "Bearer k", b"{}");
        let first = connection
            .exchange(&request, Duration::from_secs(5))
            .await
            .expect("first");
        assert_eq!(
            (first.status, first.body.as_slice()),
            (200, body.as_bytes())
        );
        let second = connection
            .exchange(&request, Duration::from_secs(5))
            .await
            .expect("second");
        assert_eq!(
            (second.status, second.body.as_slice()),
            (401, &b"{\"err\":"[..])
        );
    }

    #[test]
    fn a_request_is_one_buffer_with_its_length() {
        let request = post_json("127.0.0.1:1", "/api/publish", "Bearer k", b"{\"a\":1}");
        let text = String::from_utf8(request).expect("utf-8");
        assert!(text.starts_with("POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1:1\r\n"));
        assert!(text.ends_with("Content-Length: 7\r\n\r\n{\"a\":1}"));
    }
}

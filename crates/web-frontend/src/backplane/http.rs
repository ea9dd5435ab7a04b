//! The HTTP client to the socket-server's internal endpoints and its server
//! API (https too: rustls, web PKI roots): built once, cloned by whatever
//! talks to it.

use std::time::Duration;

use crate::error::BuildError;

/// Requests to one socket-server base URL, each bounded by the client's
/// timeout.
#[derive(Clone, Debug)]
pub(crate) struct SocketServerHttp {
    client: reqwest::Client,
    base_url: String,
}

impl SocketServerHttp {
    /// A client for `base_url` (`web.socket_internal_url`, else `web.socket_url`)
    /// whose every request gives up after `timeout`.
    pub(crate) fn new(base_url: &str, timeout: Duration) -> Result<Self, BuildError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(BuildError::HttpClient)?;
        Ok(Self {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }

    /// A POST to `path` (from the root, e.g. `/internal/revocations`).
    pub(crate) fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(format!("{}{path}", self.base_url))
    }
}

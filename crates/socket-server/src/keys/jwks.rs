//! The web-frontend's JWK Set as a key source: one fetch at a time, bounded
//! in time and size, never following a redirect, counted for `/metrics`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use claims::{Algorithm, PublicKey};
use settings::ConfigError;
use tokio::time::Instant;

/// One fetch may take this long (a handshake waiting for it, too).
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// A JWK Set is a few hundred bytes; this is generous.
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Where the JWK Set comes from, and what its fetches came to.
#[derive(Debug)]
pub(super) struct JwksSource {
    url: String,
    /// `scheme://host[:port]` of the URL, for logs.
    origin: String,
    client: reqwest::Client,
    refresh: Duration,
    /// When the last fetch for an unknown `kid` started; the lock also makes
    /// concurrent unknown-`kid` handshakes share one fetch.
    pub(super) last_unknown_kid_fetch: tokio::sync::Mutex<Option<Instant>>,
    loaded: AtomicBool,
    fetches_ok: AtomicU64,
    fetches_failed: AtomicU64,
}

impl JwksSource {
    pub(super) fn new(url: &str, refresh_secs: u64) -> Result<Self, ConfigError> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            // The keys come from where the operator said, not from elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| ConfigError::invalid("jwt.jwks_url", error.to_string()))?;
        let origin = url
            .split_once("://")
            .map(|(scheme, rest)| {
                let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
                let host = host.rsplit_once('@').map_or(host, |(_, host)| host);
                format!("{scheme}://{host}")
            })
            .unwrap_or_default();
        Ok(Self {
            url: url.to_owned(),
            origin,
            client,
            refresh: Duration::from_secs(refresh_secs),
            last_unknown_kid_fetch: tokio::sync::Mutex::new(None),
            loaded: AtomicBool::new(false),
            fetches_ok: AtomicU64::new(0),
            fetches_failed: AtomicU64::new(0),
        })
    }

    pub(super) fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Relaxed)
    }

    /// `scheme://host[:port]` of the URL, for logs.
    pub(super) fn origin(&self) -> &str {
        &self.origin
    }

    pub(super) fn refresh(&self) -> Duration {
        self.refresh
    }

    /// One fetch, counted and logged: the set's keys for `algorithm`, or
    /// `None` (the keys in use stay).
    pub(super) async fn fetch(&self, algorithm: Algorithm) -> Option<Vec<PublicKey>> {
        match self.get(algorithm).await {
            Ok(keys) => {
                self.fetches_ok.fetch_add(1, Ordering::Relaxed);
                if !self.loaded.swap(true, Ordering::Relaxed) {
                    tracing::info!("JWK Set fetched from {}", self.origin);
                }
                Some(keys)
            }
            Err(reason) => {
                self.fetches_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("fetching the JWK Set from {} failed: {reason}", self.origin);
                None
            }
        }
    }

    /// `authbridge_jwks_fetches_total{result}`.
    pub(super) fn render_metrics(&self, out: &mut String) {
        service::metrics::family(
            out,
            "authbridge_jwks_fetches_total",
            "counter",
            "Fetches of the web-frontend's JWK Set, by result.",
        );
        for (result, counter) in [("ok", &self.fetches_ok), ("failed", &self.fetches_failed)] {
            service::metrics::sample(
                out,
                "authbridge_jwks_fetches_total",
                &[("result", result)],
                counter.load(Ordering::Relaxed),
            );
        }
    }

    async fn get(&self, algorithm: Algorithm) -> Result<Vec<PublicKey>, FetchError> {
        let mut response = self
            .client
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(FetchError::from_reqwest)?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(FetchError::from_reqwest)? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let keys = claims::keys_from_jwks(algorithm, &body)?;
        if keys.is_empty() {
            // A set without one usable key is a mistake somewhere; the keys in
            // use are better than none.
            return Err(FetchError::NoUsableKey(algorithm));
        }
        Ok(keys)
    }
}

/// Why a fetch brought no keys. Never the URL: it may carry credentials.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("{0}")]
    Request(&'static str),
    #[error("HTTP {0}")]
    Status(reqwest::StatusCode),
    #[error("the document is over {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error(transparent)]
    NotAJwks(#[from] claims::KeyError),
    #[error("the JWK Set has no {0} signing key")]
    NoUsableKey(Algorithm),
}

impl FetchError {
    /// reqwest's error without the URL (its `Display` would print it).
    fn from_reqwest(error: reqwest::Error) -> Self {
        FetchError::Request(if error.is_timeout() {
            "timed out"
        } else if error.is_connect() {
            "cannot connect"
        } else if error.is_body() || error.is_decode() {
            "bad response body"
        } else {
            "request failed"
        })
    }
}

//! The keys tokens and revocation notices are checked with: the shared
//! secret (and the previous one during a rotation), or public keys — from
//! `jwt.public_key_files`, from the web-frontend's JWK Set (`jwt.jwks_url`), or
//! both. The verifiers are rebuilt and swapped whole whenever a source changes
//! (a reload on SIGHUP, a fetch), so a handshake never waits for a lock and no
//! connected socket notices a rotation.
//!
//! The JWK Set is fetched at start (retried with backoff until it answers),
//! every `jwt.jwks_refresh_secs`, and when a token names a `kid` no key has —
//! at most once per [`UNKNOWN_KID_REFETCH`], however many such tokens arrive,
//! so a flood of made-up `kid`s cannot turn into a flood of fetches.

mod jwks;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use claims::{
    Algorithm, Invalid, KeySet, MAX_KEYS, PublicKey, Revocation, RevocationVerifier, TokenSettings,
    TokenVerifier, VerifiedClaims, VerifyError,
};
use settings::{ConfigError, Settings};
use tokio::time::Instant;

use jwks::JwksSource;

/// The least time between two fetches for unknown `kid`s.
pub(crate) const UNKNOWN_KID_REFETCH: Duration = Duration::from_secs(10);
/// Retries of the first fetch back off up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Why a node cannot check tokens yet (`/readyz`'s reason).
#[derive(Debug, thiserror::Error)]
#[error("no keys yet: the JWK Set at {origin} has not been fetched")]
pub(crate) struct NoKeysYet {
    origin: String,
}

/// One generation of verifiers.
#[derive(Debug)]
pub(crate) struct Verifiers {
    pub(crate) token: TokenVerifier,
    pub(crate) revocation: RevocationVerifier,
}

/// The keys in use; cheap to clone, every clone sees a change.
#[derive(Clone, Debug)]
pub struct KeyRing(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    verifiers: ArcSwap<Verifiers>,
    sources: Mutex<Sources>,
    jwks: Option<JwksSource>,
}

#[derive(Debug)]
struct Sources {
    token_settings: TokenSettings,
    configured: KeySet,
    /// The last good JWK Set's keys for the configured algorithm.
    fetched: Vec<PublicKey>,
}

impl KeyRing {
    /// The configured keys (files are read here); nothing is fetched yet.
    pub(crate) fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let configured = configured_keys(settings)?;
        let jwks = match (
            &settings.jwt.jwks_url,
            settings.jwt.algorithm.is_asymmetric(),
        ) {
            (Some(url), true) => Some(JwksSource::new(url, settings.jwt.jwks_refresh_secs)?),
            _ => None,
        };
        if let KeySet::Public { keys, algorithm } = &configured
            && keys.is_empty()
            && jwks.is_none()
        {
            return Err(ConfigError::MissingPublicKeys(*algorithm));
        }
        let sources = Sources {
            token_settings: settings.token_settings(),
            configured,
            fetched: Vec::new(),
        };
        let verifiers = sources.verifiers();
        Ok(Self(Arc::new(Inner {
            verifiers: ArcSwap::from_pointee(verifiers),
            sources: Mutex::new(sources),
            jwks,
        })))
    }

    pub(crate) fn current(&self) -> arc_swap::Guard<Arc<Verifiers>> {
        self.0.verifiers.load()
    }

    /// Checks a connect token; a `kid` no key has triggers one fetch of the
    /// JWK Set (rate-limited, shared by concurrent handshakes) and a second
    /// check.
    pub(crate) async fn verify(&self, token: &str) -> Result<VerifiedClaims, VerifyError> {
        self.check(
            |verifiers, now| verifiers.token.verify(token, now),
            |error| matches!(error, VerifyError::Invalid(Invalid::UnknownKey)),
        )
        .await
    }

    /// Checks a revocation notice, as [`KeyRing::verify`] a token: a logout
    /// signed by a key switched to a moment ago is applied at once.
    pub(crate) async fn verify_notice(&self, notice: &str) -> Result<Vec<Revocation>, Invalid> {
        self.check(
            |verifiers, now| verifiers.revocation.verify(notice, now),
            |error| *error == Invalid::UnknownKey,
        )
        .await
    }

    async fn check<T, E>(
        &self,
        check: impl Fn(&Verifiers, i64) -> Result<T, E>,
        unknown_key: impl Fn(&E) -> bool,
    ) -> Result<T, E> {
        let result = check(&self.current(), claims::unix_now());
        match (&result, &self.0.jwks) {
            // Before the first set has arrived every kid is unknown: the
            // start's fetch (retried with backoff) is under way, and spending
            // the 10 s allowance now would hold back a key switched to soon
            // after (a logout signed with it, say).
            (Err(error), Some(jwks)) if unknown_key(error) && jwks.is_loaded() => {
                if self.fetch_for_unknown_kid(jwks).await {
                    check(&self.current(), claims::unix_now())
                } else {
                    result
                }
            }
            _ => result,
        }
    }

    /// Whether any key is there to check a token with (with a JWK Set only:
    /// once it has been fetched).
    pub(crate) fn ready(&self) -> Result<(), NoKeysYet> {
        match &self.0.jwks {
            Some(jwks) if !jwks.is_loaded() && !self.has_configured_keys() => Err(NoKeysYet {
                origin: jwks.origin().to_owned(),
            }),
            _ => Ok(()),
        }
    }

    fn has_configured_keys(&self) -> bool {
        match &self.sources().configured {
            KeySet::Shared { .. } => true,
            KeySet::Public { keys, .. } => !keys.is_empty(),
        }
    }

    /// Reads the configured keys again (secrets, public key files) and puts
    /// them in use beside the fetched ones; on any error the keys in use stay.
    /// The algorithm, the JWK Set's URL, issuer, audience and leeway are those
    /// of the start.
    pub fn reload(&self, settings: &Settings) -> Result<String, ConfigError> {
        let configured = configured_keys(settings)?;
        let mut sources = self.sources();
        if configured.algorithm() != sources.configured.algorithm() {
            return Err(ConfigError::invalid(
                "jwt.algorithm",
                "changed: a new algorithm needs a restart",
            ));
        }
        if let KeySet::Public { keys, algorithm } = &configured
            && keys.is_empty()
            && self.0.jwks.is_none()
        {
            return Err(ConfigError::MissingPublicKeys(*algorithm));
        }
        sources.configured = configured;
        self.0.verifiers.store(Arc::new(sources.verifiers()));
        Ok(sources.describe())
    }

    /// What is in use, for logs.
    pub(crate) fn describe(&self) -> String {
        self.sources().describe()
    }

    /// With a JWK Set: fetches it now and then every `jwt.jwks_refresh_secs`
    /// (retrying a failed fetch with backoff, up to 30 s). `None` without.
    pub(crate) fn spawn_refresher(&self) -> Option<tokio::task::JoinHandle<()>> {
        let jwks = self.0.jwks.as_ref()?;
        let ring = self.clone();
        let refresh = jwks.refresh();
        Some(tokio::spawn(async move {
            let mut backoff = Duration::from_millis(250);
            loop {
                let Some(jwks) = &ring.0.jwks else { return };
                if ring.fetch(jwks).await {
                    backoff = Duration::from_millis(250);
                    tokio::time::sleep(refresh).await;
                } else {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }))
    }

    /// `authbridge_jwks_fetches_total{result}` (with a JWK Set).
    pub(crate) fn render_metrics(&self, out: &mut String) {
        if let Some(jwks) = &self.0.jwks {
            jwks.render_metrics(out);
        }
    }

    /// For a token whose `kid` is unknown: fetches unless a fetch for that
    /// reason started less than [`UNKNOWN_KID_REFETCH`] ago. Handshakes that
    /// arrive during a fetch wait for it and share it. `true`: check the token
    /// again (the keys may have changed).
    async fn fetch_for_unknown_kid(&self, jwks: &JwksSource) -> bool {
        let mut last = jwks.last_unknown_kid_fetch.lock().await;
        if let Some(at) = *last
            && at.elapsed() < UNKNOWN_KID_REFETCH
        {
            // Fetched a moment ago (maybe for a handshake that waited with
            // this one): one more lookup is cheap, a fetch is not.
            return true;
        }
        *last = Some(Instant::now());
        self.fetch(jwks).await
    }

    /// One fetch; the keys it brings are put in use. `false` on failure (the
    /// keys in use stay).
    async fn fetch(&self, jwks: &JwksSource) -> bool {
        let algorithm = self.sources().configured.algorithm();
        match jwks.fetch(algorithm).await {
            Some(keys) => {
                self.store_fetched(keys);
                true
            }
            None => false,
        }
    }

    fn sources(&self) -> std::sync::MutexGuard<'_, Sources> {
        self.0
            .sources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn store_fetched(&self, keys: Vec<PublicKey>) {
        let mut sources = self.sources();
        if sources.fetched != keys {
            sources.fetched = keys;
            self.0.verifiers.store(Arc::new(sources.verifiers()));
            tracing::info!("keys in use: {}", sources.describe());
        }
    }
}

impl Sources {
    fn keys(&self) -> KeySet {
        match &self.configured {
            shared @ KeySet::Shared { .. } => shared.clone(),
            KeySet::Public { algorithm, keys } => {
                let mut all = keys.clone();
                for key in &self.fetched {
                    if !all.contains(key) {
                        all.push(key.clone());
                    }
                }
                all.truncate(MAX_KEYS);
                KeySet::Public {
                    algorithm: *algorithm,
                    keys: all,
                }
            }
        }
    }

    fn verifiers(&self) -> Verifiers {
        let keys = self.keys();
        Verifiers {
            revocation: RevocationVerifier::with_keys(&self.token_settings, &keys),
            token: TokenVerifier::with_keys(&self.token_settings, keys),
        }
    }

    fn describe(&self) -> String {
        let keys = self.keys();
        format!(
            "{} with kid(s) {}",
            keys.algorithm(),
            keys.kids().join(", ")
        )
    }
}

fn configured_keys(settings: &Settings) -> Result<KeySet, ConfigError> {
    match settings.jwt.algorithm {
        Algorithm::HS256 => service::keys::shared_key_set(settings),
        algorithm => {
            let keys = service::keys::public_keys(settings)?;
            KeySet::public(algorithm, keys)
                .map_err(|error| ConfigError::invalid("jwt.public_key_files", error.to_string()))
        }
    }
}

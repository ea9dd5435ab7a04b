//! What each side holds: the key the web-frontend signs with, and the set of
//! keys a verifier accepts.

use crate::algorithm::Algorithm;
use crate::keys::error::{KeyError, MAX_KEYS};
use crate::keys::private::PrivateKey;
use crate::keys::public::PublicKey;
use crate::keys::shared::SharedKey;

/// What the web-frontend signs with.
#[derive(Debug)]
pub enum SigningKey {
    /// The shared secret; `announce_kid`: write its id as `kid` (only while a
    /// previous secret is configured, so that the contract's header is
    /// unchanged otherwise).
    Shared { key: SharedKey, announce_kid: bool },
    /// A private key; tokens carry its public key's thumbprint as `kid`.
    Private(PrivateKey),
}

impl SigningKey {
    pub fn algorithm(&self) -> Algorithm {
        match self {
            SigningKey::Shared { .. } => Algorithm::HS256,
            SigningKey::Private(key) => key.algorithm(),
        }
    }
}

/// What a verifier accepts.
#[derive(Clone, Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one per verifier, built at start or on a key change, never in a hot path"
)]
pub enum KeySet {
    /// The shared secret, and during a rotation the previous one until
    /// `valid_until` (seconds since the Unix epoch).
    Shared {
        current: SharedKey,
        previous: Option<(SharedKey, i64)>,
    },
    /// Public keys, all for `algorithm` (others are not admitted); at most
    /// [`MAX_KEYS`].
    Public {
        algorithm: Algorithm,
        keys: Vec<PublicKey>,
    },
}

impl KeySet {
    pub fn shared(current: SharedKey) -> Self {
        KeySet::Shared {
            current,
            previous: None,
        }
    }

    /// Public keys for `algorithm`: keys for another algorithm are refused.
    pub fn public(algorithm: Algorithm, keys: Vec<PublicKey>) -> Result<Self, KeyError> {
        if !algorithm.is_asymmetric() {
            return Err(KeyError::NotAsymmetric);
        }
        if keys.iter().any(|key| key.algorithm() != algorithm) {
            return Err(KeyError::BadPublicKey(algorithm));
        }
        if keys.len() > MAX_KEYS {
            return Err(KeyError::TooManyKeys);
        }
        Ok(KeySet::Public { algorithm, keys })
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            KeySet::Shared { .. } => Algorithm::HS256,
            KeySet::Public { algorithm, .. } => *algorithm,
        }
    }

    /// The ids of the keys, current first (for logs and metrics).
    pub fn kids(&self) -> Vec<String> {
        match self {
            KeySet::Shared { current, previous } => std::iter::once(current.id().to_owned())
                .chain(previous.iter().map(|(key, _)| key.id().to_owned()))
                .collect(),
            KeySet::Public { keys, .. } => keys.iter().map(|key| key.kid().to_owned()).collect(),
        }
    }

    /// Whether a token naming `kid` has a key here (an unknown one is worth
    /// fetching the JWK Set again for).
    pub fn knows(&self, kid: &str) -> bool {
        match self {
            KeySet::Shared { .. } => true,
            KeySet::Public { keys, .. } => keys.iter().any(|key| key.kid() == kid),
        }
    }
}

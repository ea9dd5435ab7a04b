//! The revocation channel: the web-frontend tells the socket-server which login
//! sessions ended, in a message only the holders of the shared key can sign.
//!
//! Connect tokens and revocation notices can never stand in for each other: a
//! notice carries its own `typ` and its own audience, and with a shared secret
//! it is signed with a key *derived* from it for this one purpose (HMAC-SHA256
//! of a fixed label). With a key pair it is signed by the web-frontend's
//! private key, so that the socket servers, holding public keys only, cannot
//! make one either.

use serde::{Deserialize, Serialize};

use crate::error::{Invalid, IssueError};
use crate::jws::{self, REVOCATION_TYP, Signer};
use crate::keys::{KeySet, SigningKey};
use crate::payload::TokenSettings;

/// A notice is short-lived: long enough for a slow network, too short to be
/// worth replaying (and replaying one only repeats a revocation anyway).
const NOTICE_TTL_SECS: i64 = 60;

/// Scaled mode: the Redis channel every notice is published on, to every
/// socket-server node (the web-frontend publishes, the socket servers listen).
pub const REVOCATION_CHANNEL: &str = "authbridge:revocations";

/// Scaled mode: `{REVOKED_KEY_PREFIX}{sid}` holds `until` and expires then —
/// the list a socket-server node loads when it starts or Redis comes back.
pub const REVOKED_KEY_PREFIX: &str = "authbridge:revoked:";

/// Notices carry many sessions at once (a full resync); this bounds them.
pub const MAX_NOTICE_BYTES: usize = 8 * 1024 * 1024;

const KEY_LABEL: &[u8] = b"authbridge revocation channel v1";

/// One ended login session: tokens carrying `sid` are refused until `until`
/// (seconds since the Unix epoch), when the last of them has expired anyway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub sid: String,
    pub until: i64,
}

#[derive(Serialize, Deserialize)]
struct Notice {
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
    revoked: Vec<Revocation>,
}

/// The channel's keys: a shared secret's derived key, or the same key pair.
fn channel_signing_key(key: &SigningKey) -> SigningKey {
    match key {
        SigningKey::Shared { key, announce_kid } => SigningKey::Shared {
            key: key.derive(KEY_LABEL),
            announce_kid: *announce_kid,
        },
        SigningKey::Private(_) => unreachable!("handled by the caller"),
    }
}

fn channel_keys(keys: &KeySet) -> KeySet {
    match keys {
        KeySet::Shared { current, previous } => KeySet::Shared {
            current: current.derive(KEY_LABEL),
            previous: previous
                .as_ref()
                .map(|(key, until)| (key.derive(KEY_LABEL), *until)),
        },
        public @ KeySet::Public { .. } => public.clone(),
    }
}

fn channel_audience(settings: &TokenSettings) -> String {
    format!("{}#revocations", settings.audience)
}

/// Signs revocation notices (the web-frontend's side).
pub struct RevocationSigner {
    signer: Signer,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for RevocationSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationSigner")
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl RevocationSigner {
    /// Signs with the channel's key for `key` (the same key pair, or a key
    /// derived from the shared secret).
    pub fn with_key(settings: &TokenSettings, key: &SigningKey) -> Self {
        let derived;
        let key = match key {
            SigningKey::Private(_) => key,
            shared => {
                derived = channel_signing_key(shared);
                &derived
            }
        };
        Self {
            signer: Signer::new(key, REVOCATION_TYP),
            issuer: settings.issuer.clone(),
            audience: channel_audience(settings),
        }
    }

    /// A notice revoking `revoked`, issued at `now`.
    pub fn sign(&self, revoked: &[Revocation], now: i64) -> Result<String, IssueError> {
        let notice = Notice {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + NOTICE_TTL_SECS,
            revoked: revoked.to_vec(),
        };
        let payload = serde_json::to_vec(&notice).unwrap_or_default();
        Ok(self.signer.sign(&payload)?)
    }
}

/// Checks revocation notices (the socket-server's side).
pub struct RevocationVerifier {
    keys: KeySet,
    issuer: String,
    audience: String,
    leeway_secs: i64,
}

impl std::fmt::Debug for RevocationVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationVerifier")
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl RevocationVerifier {
    /// Checks with the channel's keys for `keys`.
    pub fn with_keys(settings: &TokenSettings, keys: &KeySet) -> Self {
        Self {
            keys: channel_keys(keys),
            issuer: settings.issuer.clone(),
            audience: channel_audience(settings),
            leeway_secs: i64::try_from(settings.leeway_secs).unwrap_or(i64::MAX),
        }
    }

    /// The sessions a valid notice revokes; anything not signed by a holder of
    /// the shared key, or not a current notice of this channel, is refused.
    pub fn verify(&self, notice: &str, now: i64) -> Result<Vec<Revocation>, Invalid> {
        let payload = jws::open(
            notice,
            MAX_NOTICE_BYTES,
            &self.keys,
            Some(REVOCATION_TYP),
            now,
        )?;
        let notice: Notice = jws::decode_json(payload).ok_or(Invalid::MalformedClaims)?;
        if notice.iss != self.issuer {
            return Err(Invalid::WrongIssuer);
        }
        if notice.aud != self.audience {
            return Err(Invalid::WrongAudience);
        }
        if notice.iat > now.saturating_add(self.leeway_secs) {
            return Err(Invalid::IssuedInFuture);
        }
        if now >= notice.exp.saturating_add(self.leeway_secs) {
            // Stale: a replay, or a message stuck for a minute. Its sessions are
            // resent by the next resync anyway.
            return Err(Invalid::Stale);
        }
        Ok(notice.revoked)
    }
}

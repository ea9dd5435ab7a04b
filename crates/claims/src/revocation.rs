//! The revocation channel: the web-frontend tells the socket-server which login
//! sessions ended, in a message only the holders of the shared key can sign.
//!
//! Connect tokens and revocation notices can never stand in for each other: a
//! notice is signed with a key *derived* from the shared secret for this one
//! purpose (HMAC-SHA256 of a fixed label), carries its own `typ`, and its own
//! audience.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde::{Deserialize, Serialize};

use crate::{Invalid, KeyError, KeySettings, jws};

/// The `typ` of a revocation notice.
pub const REVOCATION_TYP: &str = "authbridge-revocation+jwt";

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

/// `{"alg":"HS256","typ":"authbridge-revocation+jwt"}`, base64url-encoded.
fn header_b64() -> String {
    URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"HS256","typ":"{REVOCATION_TYP}"}}"#))
}

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

/// HMAC-SHA256(secret, label): a key for this channel alone.
fn derived_key(settings: &KeySettings) -> Result<Vec<u8>, KeyError> {
    let secret = settings.checked_secret()?;
    let key =
        EncodingKey::from_secret(secret).map_err(|_| KeyError::SecretTooShort(secret.len()))?;
    let mac = jsonwebtoken::crypto::sign(KEY_LABEL, &key, Algorithm::HS256)
        .map_err(|_| KeyError::NoCryptoBackend)?;
    URL_SAFE_NO_PAD
        .decode(mac)
        .map_err(|_| KeyError::NoCryptoBackend)
}

fn channel_audience(settings: &KeySettings) -> String {
    format!("{}#revocations", settings.audience)
}

/// Signs revocation notices (the web-frontend's side).
pub struct RevocationSigner {
    key: EncodingKey,
    issuer: String,
    audience: String,
    header_b64: String,
}

impl std::fmt::Debug for RevocationSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationSigner")
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl RevocationSigner {
    pub fn new(settings: &KeySettings) -> Result<Self, KeyError> {
        let key = derived_key(settings)?;
        Ok(Self {
            key: EncodingKey::from_secret(&key).map_err(|_| KeyError::NoCryptoBackend)?,
            issuer: settings.issuer.clone(),
            audience: channel_audience(settings),
            header_b64: header_b64(),
        })
    }

    /// A notice revoking `revoked`, issued at `now`.
    pub fn sign(&self, revoked: &[Revocation], now: i64) -> Result<String, crate::IssueError> {
        let notice = Notice {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + NOTICE_TTL_SECS,
            revoked: revoked.to_vec(),
        };
        let payload = serde_json::to_vec(&notice).unwrap_or_default();
        Ok(jws::sign(&self.header_b64, &payload, &self.key)?)
    }
}

/// Checks revocation notices (the socket-server's side).
pub struct RevocationVerifier {
    key: jws::MacKey,
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
    pub fn new(settings: &KeySettings) -> Result<Self, KeyError> {
        let key = derived_key(settings)?;
        Ok(Self {
            key: jws::MacKey::new(&key),
            issuer: settings.issuer.clone(),
            audience: channel_audience(settings),
            leeway_secs: i64::try_from(settings.leeway_secs).unwrap_or(i64::MAX),
        })
    }

    /// The sessions a valid notice revokes; anything not signed by a holder of
    /// the shared key, or not a current notice of this channel, is refused.
    pub fn verify(&self, notice: &str, now: i64) -> Result<Vec<Revocation>, Invalid> {
        let payload = jws::open(notice, MAX_NOTICE_BYTES, &self.key, Some(REVOCATION_TYP))?;
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

//! Checking: the socket-server's side. Every rule of the contract's "The token".

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny};

use crate::{Invalid, KeyError, KeySettings, MAX_TOKEN_BYTES, VerifiedClaims, VerifyError};

/// Checks connection tokens with the shared key alone.
pub struct TokenVerifier {
    key: DecodingKey,
    issuer: String,
    audience: String,
    leeway_secs: f64,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.leeway_secs)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    pub fn new(settings: &KeySettings) -> Result<Self, KeyError> {
        let secret = settings.checked_secret()?;
        Ok(Self {
            key: DecodingKey::from_secret(secret)
                .map_err(|_| KeyError::SecretTooShort(secret.len()))?,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            // Leeways are seconds of clock skew; any real value is exact in an f64.
            leeway_secs: settings.leeway_secs as f64,
        })
    }

    /// Checks `token` at time `now` (seconds since the Unix epoch).
    ///
    /// The signature is checked before anything in the payload is looked at, and
    /// `exp` last, so that [`VerifyError::Expired`] means the token's one fault is
    /// its age.
    pub fn verify(&self, token: &str, now: i64) -> Result<VerifiedClaims, VerifyError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Invalid::TooLong.into());
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Invalid::Malformed.into());
        };

        let header: RawHeader = decode_json(header).ok_or(Invalid::Malformed)?;
        // The algorithm is pinned: the header may only confirm it, never choose it.
        if header.alg.as_deref() != Some("HS256") {
            return Err(Invalid::WrongAlgorithm.into());
        }
        if header.crit {
            return Err(Invalid::CriticalHeader.into());
        }
        let signed_part = &token[..header_and_payload_len(token)];
        match jsonwebtoken::crypto::verify(
            signature,
            signed_part.as_bytes(),
            &self.key,
            Algorithm::HS256,
        ) {
            Ok(true) => {}
            Ok(false) => return Err(Invalid::BadSignature.into()),
            Err(_) => return Err(Invalid::Malformed.into()),
        }

        let claims: RawClaims = decode_json(payload).ok_or(Invalid::MalformedClaims)?;
        self.check_claims(claims, now as f64)
    }

    fn check_claims(&self, claims: RawClaims, now: f64) -> Result<VerifiedClaims, VerifyError> {
        let sub = claims
            .sub
            .filter(|sub| !sub.is_empty())
            .ok_or(Invalid::MissingClaim("sub"))?;
        let exp = claims.exp.ok_or(Invalid::MissingClaim("exp"))?;
        let iat = claims.iat.ok_or(Invalid::MissingClaim("iat"))?;
        let iss = claims.iss.ok_or(Invalid::MissingClaim("iss"))?;
        let aud = claims.aud.ok_or(Invalid::MissingClaim("aud"))?;

        if iss != self.issuer {
            return Err(Invalid::WrongIssuer.into());
        }
        if !aud.contains(&self.audience) {
            return Err(Invalid::WrongAudience.into());
        }
        if iat > now + self.leeway_secs {
            return Err(Invalid::IssuedInFuture.into());
        }
        if claims.nbf.is_some_and(|nbf| nbf > now + self.leeway_secs) {
            return Err(Invalid::NotYetValid.into());
        }
        if let Some(user) = claims.user {
            let matches = user
                .as_object()
                .and_then(|user| user.get("username"))
                .and_then(|name| name.as_str())
                .is_some_and(|name| name == sub);
            if !matches {
                return Err(Invalid::UserMismatch.into());
            }
        }
        // RFC 7519: the token must not be accepted on or after `exp`.
        if now >= exp + self.leeway_secs {
            return Err(VerifyError::Expired);
        }
        Ok(VerifiedClaims {
            username: sub,
            // Saturating: a float `exp` far past i64 still means "not expired yet".
            expires_at: exp.floor() as i64,
        })
    }
}

fn header_and_payload_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

/// Base64url (no padding) then a JSON object; `None` for anything else.
fn decode_json<T: for<'de> Deserialize<'de>>(segment: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    // serde would also read a struct from a JSON array; a JOSE header and a
    // claims set are objects, nothing else.
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    serde_json::from_slice(&bytes).ok()
}

#[derive(Deserialize)]
struct RawHeader {
    alg: Option<String>,
    /// Present at all (even `null`) means refused: we understand no extension.
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

#[derive(Deserialize)]
struct RawClaims {
    sub: Option<String>,
    exp: Option<f64>,
    iat: Option<f64>,
    nbf: Option<f64>,
    iss: Option<String>,
    aud: Option<Audience>,
    /// `Some` whenever the claim is present, `null` included, so that a present
    /// but wrong `user` is refused rather than ignored.
    #[serde(default, deserialize_with = "some_value")]
    user: Option<serde_json::Value>,
}

/// RFC 7519 §4.1.3: one audience, or an array of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(one) => one == audience,
            Audience::Many(many) => many.iter().any(|one| one == audience),
        }
    }
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer).map(|_| true)
}

fn some_value<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(deserializer).map(Some)
}

//! Checking: the socket-server's side. Every rule of the contract's "The token".

use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use serde::de::Deserializer;

use crate::{Invalid, KeyError, KeySettings, MAX_TOKEN_BYTES, VerifiedClaims, VerifyError, jws};

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
        let payload = jws::open(token, MAX_TOKEN_BYTES, &self.key, None)?;
        let claims: RawClaims = jws::decode_json(payload).ok_or(Invalid::MalformedClaims)?;
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
            session_id: claims.sid,
            issued_at: iat.floor() as i64,
            // Saturating: a float `exp` far past i64 still means "not expired yet".
            expires_at: exp.floor() as i64,
        })
    }
}

#[derive(Deserialize)]
struct RawClaims {
    sub: Option<String>,
    exp: Option<f64>,
    iat: Option<f64>,
    nbf: Option<f64>,
    iss: Option<String>,
    aud: Option<Audience>,
    /// The login session; optional, since tokens from elsewhere need not have one.
    sid: Option<String>,
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

fn some_value<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(deserializer).map(Some)
}

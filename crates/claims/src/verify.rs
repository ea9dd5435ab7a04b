//! Checking: the socket-server's side. Every rule of the contract's "The token".

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::error::{Invalid, VerifyError};
use crate::jws;
use crate::keys::KeySet;
use crate::payload::{MAX_ROOM_NAME_CHARS, MAX_ROOM_PATTERNS, TokenSettings, VerifiedClaims};

/// Tokens longer than this are refused before any parsing (a real one is ~400 bytes).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Checks connection tokens with the keys alone (the shared key, or public keys).
#[derive(Clone)]
pub struct TokenVerifier {
    keys: KeySet,
    issuer: String,
    audience: String,
    leeway_secs: f64,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("algorithm", &self.keys.algorithm())
            .field("kids", &self.keys.kids())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.leeway_secs)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// Checks with `keys`, and with their algorithm alone.
    pub fn with_keys(settings: &TokenSettings, keys: KeySet) -> Self {
        Self {
            keys,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            // Leeways are seconds of clock skew; any real value is exact in an f64.
            leeway_secs: settings.leeway_secs as f64,
        }
    }

    /// The keys it checks with.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Checks `token` at time `now` (seconds since the Unix epoch).
    ///
    /// The signature is checked before anything in the payload is looked at, and
    /// `exp` last, so that [`VerifyError::Expired`] means the token's one fault is
    /// its age.
    pub fn verify(&self, token: &str, now: i64) -> Result<VerifiedClaims, VerifyError> {
        let payload = jws::open(token, MAX_TOKEN_BYTES, &self.keys, None, now)?;
        let payload = jws::decode_object(payload).ok_or(Invalid::MalformedClaims)?;
        // Strings are borrowed from the decoded payload where they can be.
        let claims: RawClaims<'_> =
            serde_json::from_slice(&payload).map_err(|_| Invalid::MalformedClaims)?;
        self.check_claims(claims, now as f64)
    }

    fn check_claims(&self, claims: RawClaims<'_>, now: f64) -> Result<VerifiedClaims, VerifyError> {
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
        if let Some(user) = claims.user
            && user.username.as_deref() != Some(&*sub)
        {
            return Err(Invalid::UserMismatch.into());
        }
        let rooms = room_patterns(claims.rooms)?;
        // RFC 7519: the token must not be accepted on or after `exp`.
        if now >= exp + self.leeway_secs {
            return Err(VerifyError::Expired);
        }
        Ok(VerifiedClaims {
            username: sub.into_owned(),
            session_id: claims.sid.map(Cow::into_owned),
            issued_at: iat.floor() as i64,
            // Saturating: a float `exp` far past i64 still means "not expired yet".
            expires_at: exp.floor() as i64,
            rooms,
        })
    }
}

/// The `rooms` claim: absent (or `null`) is none; otherwise at most
/// [`MAX_ROOM_PATTERNS`] strings of 1 to [`MAX_ROOM_NAME_CHARS`] characters,
/// and one more for a trailing `*`.
fn room_patterns(rooms: Option<Vec<Cow<'_, str>>>) -> Result<Vec<String>, Invalid> {
    let rooms = rooms.unwrap_or_default();
    if rooms.len() > MAX_ROOM_PATTERNS {
        return Err(Invalid::BadRooms);
    }
    rooms
        .into_iter()
        .map(|pattern| {
            let name = pattern.strip_suffix('*').unwrap_or(&pattern);
            let chars = name.chars().count();
            if pattern.is_empty()
                || chars > MAX_ROOM_NAME_CHARS
                || pattern.chars().any(char::is_control)
            {
                Err(Invalid::BadRooms)
            } else {
                Ok(pattern.into_owned())
            }
        })
        .collect()
}

#[derive(Deserialize)]
struct RawClaims<'a> {
    #[serde(borrow)]
    sub: Option<Cow<'a, str>>,
    exp: Option<f64>,
    iat: Option<f64>,
    nbf: Option<f64>,
    #[serde(borrow)]
    iss: Option<Cow<'a, str>>,
    #[serde(borrow)]
    aud: Option<Audience<'a>>,
    /// The login session; optional, since tokens from elsewhere need not have one.
    #[serde(borrow)]
    sid: Option<Cow<'a, str>>,
    /// `Some` whenever the claim is present, `null` included, so that a present
    /// but wrong `user` is refused rather than ignored.
    #[serde(default, deserialize_with = "user_claim")]
    user: Option<UserClaim>,
    /// Room patterns; a wrong type makes the claims malformed.
    #[serde(borrow)]
    rooms: Option<Vec<Cow<'a, str>>>,
}

/// RFC 7519 §4.1.3: one audience, or an array of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience<'a> {
    One(#[serde(borrow)] Cow<'a, str>),
    Many(#[serde(borrow)] Vec<Cow<'a, str>>),
}

impl Audience<'_> {
    fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(one) => one == audience,
            Audience::Many(many) => many.iter().any(|one| one == audience),
        }
    }
}

/// The article's `user` claim: `username` when it is an object with a string
/// `username`; `None` inside for any other value (then refused, as present
/// but wrong).
struct UserClaim {
    username: Option<String>,
}

fn user_claim<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<UserClaim>, D::Error> {
    deserializer.deserialize_any(UserVisitor).map(Some)
}

struct UserVisitor;

impl<'de> Visitor<'de> for UserVisitor {
    type Value = UserClaim;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<UserClaim, M::Error> {
        let mut username = None;
        let mut valid = true;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "username" && username.is_none() && valid {
                // A string, or the whole claim is wrong.
                match map.next_value::<serde_json::Value>()? {
                    serde_json::Value::String(name) => username = Some(name),
                    _ => valid = false,
                }
            } else if key == "username" {
                // A duplicate `username`: ambiguous, refused.
                map.next_value::<IgnoredAny>()?;
                valid = false;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(UserClaim {
            username: username.filter(|_| valid),
        })
    }

    fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut seq: S) -> Result<UserClaim, S::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(UserClaim { username: None })
    }

    fn visit_unit<E>(self) -> Result<UserClaim, E> {
        Ok(UserClaim { username: None })
    }

    fn visit_none<E>(self) -> Result<UserClaim, E> {
        Ok(UserClaim { username: None })
    }

    fn visit_bool<E>(self, _: bool) -> Result<UserClaim, E> {
        Ok(UserClaim { username: None })
    }

    fn visit_i64<E>(self, _: i64) -> Result<UserClaim, E> {
        Ok(UserClaim { username: None })
    }

    fn visit_u64<E>(self, _: u64) -> Result<UserClaim, E> {
        Ok(UserClaim { username: None })
    }

    fn visit_f64<E>(self, _: f64) -> Result<UserClaim, E> {
        Ok(UserClaim { username: None })
    }

    fn visit_str<E>(self, _: &str) -> Result<UserClaim, E> {
        Ok(UserClaim { username: None })
    }
}

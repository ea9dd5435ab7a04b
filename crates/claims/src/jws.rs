//! Compact JWS with HS256, framed here so that the header is byte-exact when
//! signing and the order of checks is ours when verifying; the MAC itself is
//! jsonwebtoken's (constant-time comparison).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny};

use crate::Invalid;

/// `header_b64.base64url(payload).signature` with the given (encoded) header.
pub(crate) fn sign(
    header_b64: &str,
    payload: &[u8],
    key: &EncodingKey,
) -> jsonwebtoken::errors::Result<String> {
    let encoded_payload = URL_SAFE_NO_PAD.encode(payload);
    let mut token = String::with_capacity(header_b64.len() + encoded_payload.len() + 45);
    token.push_str(header_b64);
    token.push('.');
    token.push_str(&encoded_payload);
    let signature = jsonwebtoken::crypto::sign(token.as_bytes(), key, Algorithm::HS256)?;
    token.push('.');
    token.push_str(&signature);
    Ok(token)
}

/// Checks the framing, the header and the signature, and returns the payload's
/// JSON object, still unread. `typ`, when given, must be exactly that.
pub(crate) fn open<'t>(
    token: &'t str,
    max_len: usize,
    key: &DecodingKey,
    typ: Option<&str>,
) -> Result<&'t str, Invalid> {
    if token.len() > max_len {
        return Err(Invalid::TooLong);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Invalid::Malformed);
    };
    let header: RawHeader = decode_json(header).ok_or(Invalid::Malformed)?;
    // The algorithm is pinned: the header may only confirm it, never choose it.
    if header.alg.as_deref() != Some("HS256") {
        return Err(Invalid::WrongAlgorithm);
    }
    if header.crit {
        return Err(Invalid::CriticalHeader);
    }
    if typ.is_some_and(|typ| header.typ.as_deref() != Some(typ)) {
        return Err(Invalid::WrongType);
    }
    let signed_part = &token[..token.rfind('.').unwrap_or(token.len())];
    match jsonwebtoken::crypto::verify(signature, signed_part.as_bytes(), key, Algorithm::HS256) {
        Ok(true) => Ok(payload),
        Ok(false) => Err(Invalid::BadSignature),
        Err(_) => Err(Invalid::Malformed),
    }
}

/// Base64url (no padding) then a JSON object; `None` for anything else.
pub(crate) fn decode_json<T: for<'de> Deserialize<'de>>(segment: &str) -> Option<T> {
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
    typ: Option<String>,
    /// Present at all (even `null`) means refused: we understand no extension.
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer).map(|_| true)
}

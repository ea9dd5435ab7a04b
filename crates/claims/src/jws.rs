//! Compact JWS with HS256, framed here so that the header is byte-exact when
//! signing and the order of checks is ours when verifying. Signing uses
//! jsonwebtoken's HS256; verifying uses the same RustCrypto HMAC that
//! jsonwebtoken does, keyed once (the key's two padded blocks are hashed when
//! the verifier is built, not per token), with its constant-time comparison.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny};
use sha2::Sha256;

use crate::Invalid;
use crate::issue::HS256_HEADER_B64;

/// An HMAC-SHA256 key, ready: each check clones the keyed state.
#[derive(Clone)]
pub(crate) struct MacKey(Hmac<Sha256>);

impl MacKey {
    pub(crate) fn new(secret: &[u8]) -> Self {
        // HMAC takes a key of any length (longer ones are hashed first).
        Self(Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!()))
    }

    /// Whether `signature_b64` is the MAC of `signed`, compared in constant time.
    fn verifies(&self, signed: &[u8], signature_b64: &str) -> Result<bool, Invalid> {
        let mut signature = [0_u8; 32];
        match URL_SAFE_NO_PAD.decode_slice(signature_b64, &mut signature) {
            Ok(32) => {}
            // Another length is another algorithm's MAC, or garbage.
            Ok(_) | Err(base64::DecodeSliceError::OutputSliceTooSmall) => return Ok(false),
            Err(base64::DecodeSliceError::DecodeError(_)) => return Err(Invalid::Malformed),
        }
        let mut mac = self.0.clone();
        mac.update(signed);
        Ok(mac.verify_slice(&signature).is_ok())
    }
}

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
    key: &MacKey,
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
    // The header this project issues, byte for byte, needs no parsing.
    if !(typ.is_none() && header == HS256_HEADER_B64) {
        check_header(header, typ)?;
    }
    let signed_part = &token[..header.len() + 1 + payload.len()];
    if key.verifies(signed_part.as_bytes(), signature)? {
        Ok(payload)
    } else {
        Err(Invalid::BadSignature)
    }
}

fn check_header(header: &str, typ: Option<&str>) -> Result<(), Invalid> {
    let header: RawHeader = decode_json(header).ok_or(Invalid::Malformed)?;
    // The algorithm is pinned: the header may only confirm it, never choose it.
    if header.alg.as_deref() != Some("HS256") {
        return Err(Invalid::WrongAlgorithm);
    }
    if header.crit {
        return Err(Invalid::CriticalHeader);
    }
    match typ {
        Some(typ) if header.typ.as_deref() != Some(typ) => return Err(Invalid::WrongType),
        // A connect token may carry any `typ` or none, but never the internal
        // channel's (RFC 8725 §3.11: explicit typing keeps kinds apart).
        None if header.typ.as_deref() == Some(crate::revocation::REVOCATION_TYP) => {
            return Err(Invalid::WrongType);
        }
        _ => {}
    }
    Ok(())
}

/// Base64url (no padding) then a JSON object; `None` for anything else.
pub(crate) fn decode_json<T: for<'de> Deserialize<'de>>(segment: &str) -> Option<T> {
    serde_json::from_slice(&decode_object(segment)?).ok()
}

/// The bytes of a base64url (no padding) segment that holds a JSON object
/// (what it starts with, at least: the parser checks the rest).
pub(crate) fn decode_object(segment: &str) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    // JSON is UTF-8 (RFC 8259), all of it: serde_json checks only the strings
    // it decodes, not the members it skips (an unknown `kid`, a `jti`).
    std::str::from_utf8(&bytes).ok()?;
    // serde would also read a struct from a JSON array; a JOSE header and a
    // claims set are objects, nothing else.
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    Some(bytes)
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

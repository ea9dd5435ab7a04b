//! Compact JWS, framed here so that the header is byte-exact when signing and
//! the order of checks is ours when verifying. Signing uses jsonwebtoken; HS256
//! verification uses the same RustCrypto HMAC that jsonwebtoken does, keyed once
//! (`mac.rs`), with its constant-time comparison; EdDSA and ES256 verification
//! is jsonwebtoken's. The header constants live here, where headers are written
//! and read.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny};

use crate::algorithm::Algorithm;
use crate::error::Invalid;
use crate::keys::{KeySet, PublicKey, SharedKey, SigningKey};

/// `{"alg":"HS256","typ":"JWT"}`, byte for byte as the contract fixes it, base64url-encoded.
pub(crate) const HS256_HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// The `typ` of a connect token.
pub(crate) const TOKEN_TYP: &str = "JWT";

/// The `typ` of a revocation notice.
pub const REVOCATION_TYP: &str = "authbridge-revocation+jwt";

/// A key ready to sign one kind of JWS (`typ`): its header is encoded once.
pub(crate) struct Signer {
    key: EncodingKey,
    algorithm: Algorithm,
    header_b64: String,
    kid: Option<String>,
}

impl Signer {
    /// Signs with `key` under `typ`: a shared secret names itself by `kid`
    /// only when told to announce it, a private key always.
    pub(crate) fn new(key: &SigningKey, typ: &str) -> Self {
        let (encoding, kid) = match key {
            SigningKey::Shared { key, announce_kid } => (
                key.encoding().clone(),
                announce_kid.then(|| key.id().to_owned()),
            ),
            SigningKey::Private(private) => (
                private.encoding().clone(),
                Some(private.public().kid().to_owned()),
            ),
        };
        let algorithm = key.algorithm();
        Self {
            header_b64: header_b64(algorithm, typ, kid.as_deref()),
            key: encoding,
            algorithm,
            kid,
        }
    }

    pub(crate) fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub(crate) fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The compact JWS of `payload`.
    pub(crate) fn sign(&self, payload: &[u8]) -> jsonwebtoken::errors::Result<String> {
        sign(&self.header_b64, payload, &self.key, self.algorithm)
    }
}

/// `header_b64.base64url(payload).signature` with the given (encoded) header.
fn sign(
    header_b64: &str,
    payload: &[u8],
    key: &EncodingKey,
    algorithm: Algorithm,
) -> jsonwebtoken::errors::Result<String> {
    let encoded_payload = URL_SAFE_NO_PAD.encode(payload);
    let mut token = String::with_capacity(header_b64.len() + encoded_payload.len() + 90);
    token.push_str(header_b64);
    token.push('.');
    token.push_str(&encoded_payload);
    let signature = jsonwebtoken::crypto::sign(token.as_bytes(), key, algorithm.jsonwebtoken())?;
    token.push('.');
    token.push_str(&signature);
    Ok(token)
}

/// The encoded header `{"alg":…,"typ":…[,"kid":…]}`, members in that order;
/// the contract's exact one for HS256 connect tokens without `kid`.
fn header_b64(algorithm: Algorithm, typ: &str, kid: Option<&str>) -> String {
    if algorithm == Algorithm::HS256 && typ == TOKEN_TYP && kid.is_none() {
        return HS256_HEADER_B64.to_owned();
    }
    // JSON strings, escaped; written by hand so that the member order is fixed.
    let quoted = |text: &str| serde_json::Value::from(text).to_string();
    let mut json = format!(r#"{{"alg":"{}","typ":{}"#, algorithm.as_str(), quoted(typ));
    if let Some(kid) = kid {
        json.push_str(&format!(r#","kid":{}"#, quoted(kid)));
    }
    json.push('}');
    URL_SAFE_NO_PAD.encode(json)
}

/// Checks the framing, the header and the signature against `keys` at `now`,
/// and returns the payload's JSON object, still unread. `typ`, when given, must
/// be exactly that.
pub(crate) fn open<'t>(
    token: &'t str,
    max_len: usize,
    keys: &KeySet,
    typ: Option<&str>,
    now: i64,
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
    // The header this project issues in the contract's mode, byte for byte,
    // needs no parsing.
    let kid =
        if typ.is_none() && header == HS256_HEADER_B64 && matches!(keys, KeySet::Shared { .. }) {
            None
        } else {
            check_header(header, keys.algorithm(), typ)?
        };
    let signed = &token.as_bytes()[..header.len() + 1 + payload.len()];
    let verified = match keys {
        KeySet::Shared { current, previous } => verify_shared(
            current,
            previous.as_ref(),
            kid.as_deref(),
            signed,
            signature,
            now,
        )?,
        KeySet::Public { keys, .. } => verify_public(keys, kid.as_deref(), signed, signature)?,
    };
    if verified {
        Ok(payload)
    } else {
        Err(Invalid::BadSignature)
    }
}

/// The current secret, or the previous one until its end. A `kid` naming one
/// of them picks it; any other `kid`, or none (tokens from other libraries, or
/// from a web-frontend not yet given the new secret), tries both.
fn verify_shared(
    current: &SharedKey,
    previous: Option<&(SharedKey, i64)>,
    kid: Option<&str>,
    signed: &[u8],
    signature: &str,
    now: i64,
) -> Result<bool, Invalid> {
    let active = previous
        .filter(|(_, until)| now < *until)
        .map(|(key, _)| key);
    match (kid, previous) {
        (Some(kid), Some((old, _))) if kid == old.id() => match active {
            Some(old) => old.mac().verifies(signed, signature),
            None => Err(Invalid::RetiredKey),
        },
        (Some(kid), _) if kid == current.id() => current.mac().verifies(signed, signature),
        _ => Ok(current.mac().verifies(signed, signature)?
            || match active {
                Some(old) => old.mac().verifies(signed, signature)?,
                None => false,
            }),
    }
}

/// The key `kid` names, or every key (a handful at most) when there is none.
fn verify_public(
    keys: &[PublicKey],
    kid: Option<&str>,
    signed: &[u8],
    signature: &str,
) -> Result<bool, Invalid> {
    // Both algorithms sign with 64 bytes (ES256: r and s, 32 each).
    if signature.len() != 86 {
        return Ok(false);
    }
    let verifies = |key: &PublicKey| {
        jsonwebtoken::crypto::verify(
            signature,
            signed,
            key.decoding(),
            key.algorithm().jsonwebtoken(),
        )
        .unwrap_or(false)
    };
    match kid {
        Some(kid) => {
            let key = keys
                .iter()
                .find(|key| key.kid() == kid)
                .ok_or(Invalid::UnknownKey)?;
            Ok(verifies(key))
        }
        None => Ok(keys.iter().any(verifies)),
    }
}

/// The header's `kid`, once its `alg`, `crit` and `typ` pass.
fn check_header(
    header: &str,
    algorithm: Algorithm,
    typ: Option<&str>,
) -> Result<Option<String>, Invalid> {
    let header: RawHeader = decode_json(header).ok_or(Invalid::Malformed)?;
    // The algorithm is pinned by configuration: the header may only confirm
    // it, never choose it (no HS256 token checked with a public key's bytes).
    if header.alg.as_deref() != Some(algorithm.as_str()) {
        return Err(Invalid::WrongAlgorithm);
    }
    if header.crit {
        return Err(Invalid::CriticalHeader);
    }
    match typ {
        Some(typ) if header.typ.as_deref() != Some(typ) => return Err(Invalid::WrongType),
        // A connect token may carry any `typ` or none, but never the internal
        // channel's (RFC 8725 §3.11: explicit typing keeps kinds apart).
        None if header.typ.as_deref() == Some(REVOCATION_TYP) => {
            return Err(Invalid::WrongType);
        }
        _ => {}
    }
    Ok(header.kid)
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
    /// Which key: a hint, never a URL or a key itself (`jku`, `jwk`, `x5u` are
    /// ignored); not a string (the contract ignores `kid`): no hint.
    #[serde(default, deserialize_with = "string_or_nothing")]
    kid: Option<String>,
    /// Present at all (even `null`) means refused: we understand no extension.
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

fn string_or_nothing<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(kid) => Ok(Some(kid)),
        _ => Ok(None),
    }
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer).map(|_| true)
}

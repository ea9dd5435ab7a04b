//! HMAC-SHA256 keyed once: the key's two padded blocks are hashed when the key
//! is built, not per token, and each use clones the keyed state. Below the
//! keys (a shared key holds one) and the JWS framing (which checks with one).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

use crate::error::Invalid;

/// An HMAC-SHA256 key, ready: each check clones the keyed state.
#[derive(Clone)]
pub(crate) struct MacKey(Hmac<Sha256>);

impl MacKey {
    pub(crate) fn new(secret: &[u8]) -> Self {
        // HMAC takes a key of any length (longer ones are hashed first).
        Self(Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!()))
    }

    /// HMAC-SHA256(key, data).
    pub(crate) fn tag(&self, data: &[u8]) -> [u8; 32] {
        let mut mac = self.0.clone();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Whether `signature_b64` is the MAC of `signed`, compared in constant time.
    pub(crate) fn verifies(&self, signed: &[u8], signature_b64: &str) -> Result<bool, Invalid> {
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

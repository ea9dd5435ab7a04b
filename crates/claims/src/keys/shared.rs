//! The shared HS256 secret: checked once, named by an HMAC of a fixed label
//! (which, unlike a plain hash, says nothing about the secret).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;

use crate::keys::error::{KeyError, MIN_SECRET_BYTES};
use crate::mac::MacKey;

const KEY_ID_LABEL: &[u8] = b"authbridge key id v1";

/// A shared HS256 secret, checked and ready to sign and verify (the secret
/// itself lives only inside the keyed HMAC state and jsonwebtoken's key).
#[derive(Clone)]
pub struct SharedKey {
    encoding: EncodingKey,
    mac: MacKey,
    id: String,
}

impl fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl SharedKey {
    /// At least [`MIN_SECRET_BYTES`]; a weak or published key is the
    /// configuration's to refuse (it knows where the key came from).
    pub fn new(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(KeyError::SecretTooShort(secret.len()));
        }
        if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
            return Err(KeyError::NoCryptoBackend);
        }
        Ok(Self::build(secret))
    }

    fn build(secret: &[u8]) -> Self {
        let mac = MacKey::new(secret);
        let id = URL_SAFE_NO_PAD.encode(&mac.tag(KEY_ID_LABEL)[..12]);
        Self {
            // HS256 takes a key of any length; the length was checked above.
            encoding: EncodingKey::from_secret(secret).unwrap_or_else(|_| unreachable!()),
            mac,
            id,
        }
    }

    /// The key's id: what `kid` says when a previous secret is configured.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// HMAC-SHA256(secret, label): a key for one purpose alone (the
    /// revocation channel), which a token's key can never stand in for.
    pub(crate) fn derive(&self, label: &[u8]) -> Self {
        Self::build(&self.mac.tag(label))
    }

    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    pub(crate) fn mac(&self) -> &MacKey {
        &self.mac
    }
}

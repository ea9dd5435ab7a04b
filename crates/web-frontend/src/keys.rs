//! The keys the web-frontend signs with, and the JWK Set it publishes: built
//! from the configuration at start, and built again and swapped whole when the
//! configuration is reloaded (SIGHUP), so a rotation needs no restart.

use std::sync::Arc;

use actix_web::http::header::EntityTag;
use arc_swap::ArcSwap;
use claims::{PublicKey, RevocationSigner, SigningKey, TokenIssuer, TokenSettings};
use settings::{ConfigError, Settings};

/// One generation of keys.
#[derive(Debug)]
pub(crate) struct Keys {
    pub(crate) issuer: TokenIssuer,
    pub(crate) revocations: RevocationSigner,
    /// EdDSA/ES256 only: the signing key's public half and
    /// `jwt.public_key_files`, as a JWK Set document.
    jwks: Option<Jwks>,
}

/// The public keys, as `GET /.well-known/jwks.json` serves them.
#[derive(Debug)]
pub(crate) struct Jwks {
    pub(crate) body: String,
    pub(crate) etag: EntityTag,
    /// The published keys' ids, signing key first (for the log line).
    kids: Vec<String>,
}

impl Keys {
    /// The keys `settings` name, for tokens made by `token_settings` (those of
    /// the start: a reload changes keys, never the lifetime or audience that
    /// revocations were sized for).
    fn build(token_settings: &TokenSettings, settings: &Settings) -> Result<Self, ConfigError> {
        let signing = service::keys::signing_key(settings)?;
        let jwks = match &signing {
            SigningKey::Shared { .. } => None,
            SigningKey::Private(private) => {
                let mut keys: Vec<PublicKey> = vec![private.public().clone()];
                for key in service::keys::public_keys(settings)? {
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
                let body = claims::jwks_document(&keys);
                let kids: Vec<String> = keys.iter().map(|key| key.kid().to_owned()).collect();
                Some(Jwks {
                    // The kids name the keys: the same set, the same tag.
                    etag: EntityTag::new_strong(kids.join(".")),
                    body,
                    kids,
                })
            }
        };
        Ok(Self {
            issuer: TokenIssuer::with_key(token_settings, &signing),
            revocations: RevocationSigner::with_key(token_settings, &signing),
            jwks,
        })
    }

    /// The JWK Set to publish; `None` with a shared secret, which is never
    /// published.
    pub(crate) fn jwks(&self) -> Option<&Jwks> {
        self.jwks.as_ref()
    }

    /// For the log line of a (re)load: the algorithm and the kids.
    pub(crate) fn describe(&self) -> String {
        match (&self.jwks, self.issuer.kid()) {
            (Some(jwks), Some(kid)) => {
                format!(
                    "signing with kid {kid}; publishing {}",
                    jwks.kids.join(", ")
                )
            }
            (None, Some(kid)) => format!("signing with the shared secret, kid {kid}"),
            (_, None) => "signing with the shared secret".to_owned(),
        }
    }
}

/// The keys in use; cheap to clone, every clone sees a reload.
#[derive(Clone, Debug)]
pub struct KeyRing(Arc<Ring>);

#[derive(Debug)]
struct Ring {
    keys: ArcSwap<Keys>,
    token_settings: TokenSettings,
}

impl KeyRing {
    pub(crate) fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let token_settings = settings.token_settings();
        let keys = Keys::build(&token_settings, settings)?;
        Ok(Self(Arc::new(Ring {
            keys: ArcSwap::from_pointee(keys),
            token_settings,
        })))
    }

    pub(crate) fn current(&self) -> arc_swap::Guard<Arc<Keys>> {
        self.0.keys.load()
    }

    /// Builds the keys `settings` name and puts them in use; on any error the
    /// keys in use stay. Tokens and notices signed before keep verifying for
    /// as long as the socket servers accept their keys. Returns what is in use.
    pub fn reload(&self, settings: &Settings) -> Result<String, ConfigError> {
        let keys = Keys::build(&self.0.token_settings, settings)?;
        let described = keys.describe();
        self.0.keys.store(Arc::new(keys));
        Ok(described)
    }
}

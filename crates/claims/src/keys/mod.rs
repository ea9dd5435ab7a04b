//! Keys: the article's shared secret, and the asymmetric pairs (Ed25519, P-256)
//! with which the socket server holds public keys only.
//!
//! The algorithm always comes from configuration: a key is built for one
//! algorithm and used with that one alone, and a token's header may confirm the
//! algorithm, never choose it. Every key has an id (`kid`): for a key pair the
//! RFC 7638 thumbprint of its public key, for a shared secret an HMAC of a fixed
//! label (which, unlike a plain hash, says nothing about the secret).
//!
//! This module only names its parts; they reach each other by their own paths.

mod error;
mod jwk;
mod private;
mod public;
mod set;
mod shared;

pub use error::{KeyError, MAX_KEYS, MIN_SECRET_BYTES};
pub use jwk::{jwks_document, keys_from_jwks};
pub use private::PrivateKey;
pub use public::PublicKey;
pub use set::{KeySet, SigningKey};
pub use shared::SharedKey;

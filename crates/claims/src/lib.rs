//! The token both services agree on: its payload, the one issuer and the one verifier.
//!
//! The web-frontend signs with [`TokenIssuer`], the socket-server checks with
//! [`TokenVerifier`]; both are built from the same [`TokenSettings`] and the
//! same key (a [`SharedKey`], or the two halves of a key pair), so the two
//! services cannot disagree on the algorithm, the key, `iss` or `aud`. This
//! crate does no I/O: the caller passes the current time.
//!
//! The modules form layers, each using only those below it: `algorithm`,
//! `error` and `payload`; `mac`; `keys`; `jws` (the framing, and the header
//! constants); `issue`, `verify` and `revocation`. This root only names them
//! (`scripts/module-cycles` keeps it so).

mod algorithm;
mod error;
mod issue;
mod jws;
mod keys;
mod mac;
mod payload;
mod revocation;
mod verify;

pub use algorithm::Algorithm;
pub use error::{Invalid, IssueError, VerifyError};
pub use issue::TokenIssuer;
pub use jws::REVOCATION_TYP;
pub use keys::{
    KeyError, KeySet, MAX_KEYS, MIN_SECRET_BYTES, PrivateKey, PublicKey, SharedKey, SigningKey,
    jwks_document, keys_from_jwks,
};
pub use payload::{
    Claims, MAX_ROOM_NAME_CHARS, MAX_ROOM_PATTERNS, TokenSettings, User, VerifiedClaims, unix_now,
};
pub use revocation::{
    MAX_NOTICE_BYTES, REVOCATION_CHANNEL, REVOKED_KEY_PREFIX, Revocation, RevocationSigner,
    RevocationVerifier,
};
pub use verify::{MAX_TOKEN_BYTES, TokenVerifier};

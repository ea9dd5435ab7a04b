//! Test support: the HS256 fixture, key pairs, and tokens signed over any
//! payload, shared by claims' suites and bench, loadgen's tests, the fuzz
//! targets and the cross-service tests.
//!
//! Built on claims' public API, plus jsonwebtoken (claims' own signing
//! backend) for what claims never does: sign a payload the issuer would not
//! write (expired, another audience, a claim missing, duplicate keys). Key
//! builders return claims' `Result`s, so that tests can assert on a refusal;
//! raw signing panics with the reason, as a test would (it fails only when the
//! crypto backend is broken). Never a dependency of a service.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use claims::{
    Algorithm, KeyError, KeySet, PrivateKey, PublicKey, RevocationSigner, RevocationVerifier,
    SharedKey, SigningKey, TokenIssuer, TokenSettings, TokenVerifier,
};
use jsonwebtoken::EncodingKey;
use serde_json::Value;

/// `iss` of the contract's tokens.
pub const ISSUER: &str = "web-frontend";
/// `aud` of the contract's tokens.
pub const AUDIENCE: &str = "socket-server";
/// The contract's token lifetime, in seconds.
pub const TTL_SECS: u64 = 300;
/// The clock skew the tests allow, in seconds.
pub const LEEWAY_SECS: u64 = 5;
/// The header the contract fixes for issued HS256 tokens, byte for byte.
pub const HS256_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// The token rules of the contract's defaults: `iss` [`ISSUER`], `aud`
/// [`AUDIENCE`], [`TTL_SECS`], [`LEEWAY_SECS`].
pub fn token_settings() -> TokenSettings {
    TokenSettings {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        ttl_secs: TTL_SECS,
        leeway_secs: LEEWAY_SECS,
    }
}

/// The contract's default mode: one shared HS256 secret, and the token rules
/// both sides build from it.
#[derive(Clone, Debug)]
pub struct Hs256Fixture {
    /// The shared secret, unchecked: a short one is refused when a key is
    /// built from it, which is what some tests want to see.
    pub secret: Vec<u8>,
    pub settings: TokenSettings,
}

impl Hs256Fixture {
    /// `secret` with the contract's defaults ([`token_settings`]).
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Self {
            secret: secret.as_ref().to_vec(),
            settings: token_settings(),
        }
    }

    /// The same with another clock skew.
    pub fn with_leeway(mut self, leeway_secs: u64) -> Self {
        self.settings.leeway_secs = leeway_secs;
        self
    }

    /// The secret as claims checks it.
    pub fn shared_key(&self) -> Result<SharedKey, KeyError> {
        SharedKey::new(&self.secret)
    }

    /// The web-frontend's key: the secret, without `kid` (the contract's header).
    pub fn signing_key(&self) -> Result<SigningKey, KeyError> {
        Ok(SigningKey::Shared {
            key: self.shared_key()?,
            announce_kid: false,
        })
    }

    /// The issuer the web-frontend builds in this mode.
    pub fn issuer(&self) -> Result<TokenIssuer, KeyError> {
        Ok(TokenIssuer::with_key(&self.settings, &self.signing_key()?))
    }

    /// The verifier the socket-server builds in this mode.
    pub fn verifier(&self) -> Result<TokenVerifier, KeyError> {
        Ok(TokenVerifier::with_keys(
            &self.settings,
            KeySet::shared(self.shared_key()?),
        ))
    }

    /// Both sides at once.
    pub fn pair(&self) -> Result<(TokenIssuer, TokenVerifier), KeyError> {
        Ok((self.issuer()?, self.verifier()?))
    }

    /// The web-frontend's revocation signer (a key derived from the secret).
    pub fn revocation_signer(&self) -> Result<RevocationSigner, KeyError> {
        Ok(RevocationSigner::with_key(
            &self.settings,
            &self.signing_key()?,
        ))
    }

    /// The socket-server's revocation verifier.
    pub fn revocation_verifier(&self) -> Result<RevocationVerifier, KeyError> {
        Ok(RevocationVerifier::with_keys(
            &self.settings,
            &KeySet::shared(self.shared_key()?),
        ))
    }

    /// `payload` signed with the secret under the contract's header; see [`sign_hs256`].
    pub fn sign(&self, payload: &Value) -> String {
        sign_hs256(&self.secret, payload)
    }
}

/// A compact JWS of `payload` (its JSON text), HS256 with `secret` under the
/// contract's exact header: the token the issuer would make of these claims,
/// whatever they are.
pub fn sign_hs256(secret: &[u8], payload: &Value) -> String {
    sign_hs256_bytes(secret, payload.to_string().as_bytes())
}

/// As [`sign_hs256`], over exactly these payload bytes (JSON that
/// serde_json's map cannot hold, such as a duplicate key).
pub fn sign_hs256_bytes(secret: &[u8], payload: &[u8]) -> String {
    let key = EncodingKey::from_secret(secret)
        .unwrap_or_else(|error| panic!("an HS256 key of {} bytes: {error}", secret.len()));
    sign(
        HS256_HEADER.as_bytes(),
        payload,
        &key,
        jsonwebtoken::Algorithm::HS256,
    )
}

/// As [`sign_hs256`], under any header (members in `header`'s order).
pub fn sign_hs256_with_header(secret: &[u8], header: &Value, payload: &Value) -> String {
    let key = EncodingKey::from_secret(secret)
        .unwrap_or_else(|error| panic!("an HS256 key of {} bytes: {error}", secret.len()));
    sign(
        header.to_string().as_bytes(),
        payload.to_string().as_bytes(),
        &key,
        jsonwebtoken::Algorithm::HS256,
    )
}

/// A key pair (EdDSA or ES256), kept as its private PEM so that any payload
/// can be signed with it; claims reads the same PEM for its keys.
#[derive(Clone)]
pub struct KeyPair {
    algorithm: Algorithm,
    private_pem: String,
    public: PublicKey,
}

impl std::fmt::Debug for KeyPair {
    // As claims' own keys: a private key never reaches a log, not even a test's.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// A pair made from a fixed seed (deterministic: the same seed, the same pair).
    ///
    /// # Panics
    /// With HS256, or a seed that is no P-256 scalar (such as zero).
    pub fn generate(algorithm: Algorithm, seed: u8) -> Self {
        let (private_pem, _) = PrivateKey::generate_pem(algorithm, &[seed; 32])
            .unwrap_or_else(|| panic!("no {algorithm} pair from the seed {seed}"));
        Self::from_private_pem(algorithm, private_pem.as_bytes())
            .unwrap_or_else(|error| panic!("a generated {algorithm} key: {error}"))
    }

    /// The pair of a PEM private key, as claims reads it.
    pub fn from_private_pem(algorithm: Algorithm, pem: &[u8]) -> Result<Self, KeyError> {
        let public = PrivateKey::from_pem(algorithm, pem)?.public().clone();
        let private_pem =
            String::from_utf8(pem.to_vec()).map_err(|_| KeyError::BadPrivateKey(algorithm))?;
        Ok(Self {
            algorithm,
            private_pem,
            public,
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The private key as PEM (PKCS#8).
    pub fn private_pem(&self) -> &str {
        &self.private_pem
    }

    /// The private key, as claims reads it.
    pub fn private_key(&self) -> PrivateKey {
        PrivateKey::from_pem(self.algorithm, self.private_pem.as_bytes())
            .unwrap_or_else(|error| panic!("read once already: {error}"))
    }

    /// The public key; its `kid` is what tokens of this pair carry.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// What the web-frontend signs with.
    pub fn signing_key(&self) -> SigningKey {
        SigningKey::Private(self.private_key())
    }

    /// What a socket server holding the public key alone accepts.
    pub fn key_set(&self) -> KeySet {
        KeySet::public(self.algorithm, vec![self.public.clone()])
            .unwrap_or_else(|error| panic!("one key of its own algorithm: {error}"))
    }

    /// The issuer and the verifier of this pair, with the contract's defaults.
    pub fn pair(&self) -> (TokenIssuer, TokenVerifier) {
        let settings = token_settings();
        (
            TokenIssuer::with_key(&settings, &self.signing_key()),
            TokenVerifier::with_keys(&settings, self.key_set()),
        )
    }

    /// A compact JWS of `payload` under the header the issuer writes for this
    /// pair: `{"alg":…,"typ":"JWT","kid":…}`, members in that order.
    pub fn sign(&self, payload: &Value) -> String {
        let header = format!(
            r#"{{"alg":"{}","typ":"JWT","kid":{}}}"#,
            self.algorithm.as_str(),
            Value::from(self.public.kid())
        );
        let key = match self.algorithm {
            Algorithm::EdDSA => EncodingKey::from_ed_pem(self.private_pem.as_bytes()),
            _ => EncodingKey::from_ec_pem(self.private_pem.as_bytes()),
        }
        .unwrap_or_else(|error| panic!("jsonwebtoken reads the {} key: {error}", self.algorithm));
        let algorithm = match self.algorithm {
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            _ => jsonwebtoken::Algorithm::ES256,
        };
        sign(
            header.as_bytes(),
            payload.to_string().as_bytes(),
            &key,
            algorithm,
        )
    }
}

/// `base64url(header).base64url(payload).signature`.
fn sign(
    header: &[u8],
    payload: &[u8],
    key: &EncodingKey,
    algorithm: jsonwebtoken::Algorithm,
) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), key, algorithm)
        .unwrap_or_else(|error| panic!("signing a test token failed: {error}"));
    format!("{input}.{signature}")
}

#[cfg(test)]
mod tests;

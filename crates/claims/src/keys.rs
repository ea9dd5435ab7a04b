//! Keys: the article's shared secret, and the asymmetric pairs (Ed25519, P-256)
//! with which the socket server holds public keys only.
//!
//! The algorithm always comes from configuration: a key is built for one
//! algorithm and used with that one alone, and a token's header may confirm the
//! algorithm, never choose it. Every key has an id (`kid`): for a key pair the
//! RFC 7638 thumbprint of its public key, for a shared secret an HMAC of a fixed
//! label (which, unlike a plain hash, says nothing about the secret).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters, Jwk,
    KeyAlgorithm, KeyOperations, OctetKeyPairParameters, PublicKeyUse, ThumbprintHash,
};
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde::Deserialize;

use crate::{KeyError, MIN_SECRET_BYTES, jws};

/// The signing algorithms a deployment can choose (`jwt.algorithm`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum Algorithm {
    /// HMAC-SHA256 with a shared secret: the article's, and the default.
    #[default]
    HS256,
    /// Ed25519 (RFC 8037).
    EdDSA,
    /// ECDSA with P-256 and SHA-256.
    ES256,
}

impl Algorithm {
    /// The JOSE name, as in a header's `alg`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::ES256 => "ES256",
        }
    }

    /// Whether it signs with a private key and verifies with a public one.
    pub fn is_asymmetric(self) -> bool {
        self != Algorithm::HS256
    }

    pub(crate) fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const KEY_ID_LABEL: &[u8] = b"authbridge key id v1";

/// A shared HS256 secret, checked and ready to sign and verify (the secret
/// itself lives only inside the keyed HMAC state and jsonwebtoken's key).
#[derive(Clone)]
pub struct SharedKey {
    encoding: EncodingKey,
    mac: jws::MacKey,
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
        let mac = jws::MacKey::new(secret);
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

    pub(crate) fn mac(&self) -> &jws::MacKey {
        &self.mac
    }
}

/// A public key, for one asymmetric algorithm, with its `kid`.
#[derive(Clone)]
pub struct PublicKey {
    algorithm: Algorithm,
    kid: String,
    decoding: DecodingKey,
    jwk: Jwk,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm == other.algorithm && self.kid == other.kid && self.jwk == other.jwk
    }
}

impl PublicKey {
    /// A PEM public key (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo) for
    /// `algorithm`; its `kid` is its RFC 7638 thumbprint.
    pub fn from_pem(algorithm: Algorithm, pem: &[u8]) -> Result<Self, KeyError> {
        let decoding = match algorithm {
            Algorithm::HS256 => return Err(KeyError::NotAsymmetric),
            Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
            Algorithm::ES256 => DecodingKey::from_ec_pem(pem),
        }
        .map_err(|_| KeyError::BadPublicKey(algorithm))?;
        let jwk = Jwk::from_decoding_key(&decoding, Some(algorithm.jsonwebtoken()))
            .map_err(|_| KeyError::BadPublicKey(algorithm))?;
        Self::from_parts(algorithm, jwk, None)
    }

    /// A key of a JWK Set, for `algorithm`; `None` when the JWK is for another
    /// algorithm or use, or is not a key of `algorithm`'s type and curve.
    /// Its `kid` is the JWK's own, else its thumbprint.
    pub fn from_jwk(algorithm: Algorithm, jwk: &Jwk) -> Option<Self> {
        if jwk
            .common
            .key_algorithm
            .is_some_and(|alg| alg != key_algorithm(algorithm))
        {
            return None;
        }
        if jwk
            .common
            .public_key_use
            .as_ref()
            .is_some_and(|usage| *usage != PublicKeyUse::Signature)
        {
            return None;
        }
        // RFC 7517 §4.3: when `key_ops` is there, checking signatures must be one.
        if jwk
            .common
            .key_operations
            .as_ref()
            .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
        {
            return None;
        }
        let fits = match (algorithm, &jwk.algorithm) {
            (Algorithm::EdDSA, AlgorithmParameters::OctetKeyPair(okp)) => {
                okp.curve == EllipticCurve::Ed25519
            }
            (Algorithm::ES256, AlgorithmParameters::EllipticCurve(ec)) => {
                ec.curve == EllipticCurve::P256
            }
            _ => false,
        };
        if !fits {
            return None;
        }
        // Only the public parameters are kept (a JWK could carry `d`, which
        // jsonwebtoken's types do not even read).
        let public = Jwk {
            common: CommonParameters::default(),
            algorithm: jwk.algorithm.clone(),
        };
        Self::from_parts(algorithm, public, jwk.common.key_id.clone()).ok()
    }

    fn from_parts(algorithm: Algorithm, jwk: Jwk, kid: Option<String>) -> Result<Self, KeyError> {
        let thumbprint = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|_| KeyError::BadPublicKey(algorithm))?;
        // The key must be a point of the algorithm's curve, checked here once:
        // jsonwebtoken takes any bytes and fails (or panics) at the first
        // signature checked with them.
        let valid = match (algorithm, &jwk.algorithm) {
            (Algorithm::EdDSA, AlgorithmParameters::OctetKeyPair(okp)) => {
                okp.curve == EllipticCurve::Ed25519 && valid_ed25519(&okp.x)
            }
            (Algorithm::ES256, AlgorithmParameters::EllipticCurve(ec)) => {
                ec.curve == EllipticCurve::P256 && valid_p256(&ec.x, &ec.y)
            }
            _ => false,
        };
        if !valid {
            return Err(KeyError::BadPublicKey(algorithm));
        }
        let decoding = match &jwk.algorithm {
            AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters { x, .. }) => {
                DecodingKey::from_ed_components(x)
            }
            AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters { x, y, .. }) => {
                DecodingKey::from_ec_components(x, y)
            }
            _ => return Err(KeyError::BadPublicKey(algorithm)),
        }
        .map_err(|_| KeyError::BadPublicKey(algorithm))?;
        let kid = kid.unwrap_or(thumbprint);
        let mut jwk = jwk;
        jwk.common = CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(key_algorithm(algorithm)),
            key_id: Some(kid.clone()),
            ..CommonParameters::default()
        };
        Ok(Self {
            algorithm,
            kid,
            decoding,
            jwk,
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The key's id: tokens it verifies carry it as `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key as a JWK (`kty`, `crv`, `x`[, `y`], `kid`, `alg`, `use`).
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }
}

/// A base64url Ed25519 public key: 32 bytes that decompress to a curve point.
fn valid_ed25519(x: &str) -> bool {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(x) else {
        return false;
    };
    let Ok(bytes) = <[u8; 32]>::try_from(bytes.as_slice()) else {
        return false;
    };
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).is_ok()
}

/// Base64url P-256 coordinates: 32 bytes each, a point of the curve.
fn valid_p256(x: &str, y: &str) -> bool {
    let (Ok(x), Ok(y)) = (URL_SAFE_NO_PAD.decode(x), URL_SAFE_NO_PAD.decode(y)) else {
        return false;
    };
    if x.len() != 32 || y.len() != 32 {
        return false;
    }
    let sec1 = [&[0x04][..], &x, &y].concat();
    p256::PublicKey::from_sec1_bytes(&sec1).is_ok()
}

fn key_algorithm(algorithm: Algorithm) -> KeyAlgorithm {
    match algorithm {
        Algorithm::HS256 => KeyAlgorithm::HS256,
        Algorithm::EdDSA => KeyAlgorithm::EdDSA,
        Algorithm::ES256 => KeyAlgorithm::ES256,
    }
}

/// A JWK Set document (RFC 7517 §5) of `keys`, as the web-frontend publishes it.
pub fn jwks_document(keys: &[PublicKey]) -> String {
    let set = jsonwebtoken::jwk::JwkSet {
        keys: keys.iter().map(|key| key.jwk.clone()).collect(),
    };
    serde_json::to_string(&set).unwrap_or_default()
}

/// The keys of a JWK Set document usable with `algorithm`, at most
/// [`MAX_KEYS`]; the others (another algorithm, another use, unknown types)
/// are skipped. `Err` only when the document is not a JWK Set at all.
pub fn keys_from_jwks(algorithm: Algorithm, document: &[u8]) -> Result<Vec<PublicKey>, KeyError> {
    #[derive(Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document = serde_json::from_slice(document).map_err(|_| KeyError::BadJwks)?;
    Ok(document
        .keys
        .into_iter()
        // One key jsonwebtoken cannot read (RSA with odd members, a new
        // type) must not hide the others.
        .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
        .filter_map(|jwk| PublicKey::from_jwk(algorithm, &jwk))
        .take(MAX_KEYS)
        .collect())
}

/// A key set holds at most this many keys: a kid-less token is tried against
/// each, so the bound bounds its cost.
pub const MAX_KEYS: usize = 8;

/// A private key for one asymmetric algorithm; its public half names it.
pub struct PrivateKey {
    encoding: EncodingKey,
    public: PublicKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// A PEM private key (PKCS#8, `-----BEGIN PRIVATE KEY-----`; for ES256 also
    /// SEC1's `-----BEGIN EC PRIVATE KEY-----`) for `algorithm`.
    pub fn from_pem(algorithm: Algorithm, pem: &[u8]) -> Result<Self, KeyError> {
        let (encoding, jwk) = match algorithm {
            Algorithm::HS256 => return Err(KeyError::NotAsymmetric),
            Algorithm::EdDSA => {
                // PKCS#8 v1 (OpenSSL's) or v2 (with the public key, as
                // ed25519-dalek writes it): jsonwebtoken reads the public key
                // of v1 only, so the seed is taken out and re-framed.
                use ed25519_dalek::pkcs8::DecodePrivateKey as _;
                let pem =
                    std::str::from_utf8(pem).map_err(|_| KeyError::BadPrivateKey(algorithm))?;
                let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
                    .map_err(|_| KeyError::BadPrivateKey(algorithm))?;
                let encoding = EncodingKey::from_ed_der(&ed25519_pkcs8_v1(&key.to_bytes()));
                let x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
                let jwk = Jwk {
                    common: CommonParameters::default(),
                    algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                        key_type: jsonwebtoken::jwk::OctetKeyPairType::OctetKeyPair,
                        curve: EllipticCurve::Ed25519,
                        x,
                    }),
                };
                (encoding, jwk)
            }
            Algorithm::ES256 => {
                let encoding = EncodingKey::from_ec_pem(pem)
                    .map_err(|_| KeyError::BadPrivateKey(algorithm))?;
                let jwk = Jwk::from_encoding_key(&encoding, algorithm.jsonwebtoken())
                    .map_err(|_| KeyError::BadPrivateKey(algorithm))?;
                (encoding, jwk)
            }
        };
        let public = PublicKey::from_parts(algorithm, jwk, None)?;
        // A key that cannot sign (a malformed scalar) fails here, not at the
        // first login.
        jsonwebtoken::crypto::sign(b"probe", &encoding, algorithm.jsonwebtoken())
            .map_err(|_| KeyError::BadPrivateKey(algorithm))?;
        Ok(Self { encoding, public })
    }

    /// A new key pair from 32 random bytes, as PEM: (private PKCS#8, public
    /// SubjectPublicKeyInfo). `None` when the bytes are not a valid P-256
    /// scalar (zero, or not below the group order: take new bytes).
    pub fn generate_pem(algorithm: Algorithm, seed: &[u8; 32]) -> Option<(String, String)> {
        use p256::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
        match algorithm {
            Algorithm::HS256 => None,
            Algorithm::EdDSA => {
                let key = ed25519_dalek::SigningKey::from_bytes(seed);
                // PKCS#8 v1, as OpenSSL writes it: every library reads it.
                let private = pem_block("PRIVATE KEY", &ed25519_pkcs8_v1(seed));
                let public = key.verifying_key().to_public_key_pem(LineEnding::LF).ok()?;
                Some((private, public))
            }
            Algorithm::ES256 => {
                let key = p256::SecretKey::from_slice(seed).ok()?;
                let private = key.to_pkcs8_pem(LineEnding::LF).ok()?;
                let public = key.public_key().to_public_key_pem(LineEnding::LF).ok()?;
                Some((private.to_string(), public))
            }
        }
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    pub fn algorithm(&self) -> Algorithm {
        self.public.algorithm
    }

    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }
}

/// RFC 8410 §7: an Ed25519 private key as PKCS#8 v1 (the 32-byte seed in a
/// fixed 16-byte frame).
fn ed25519_pkcs8_v1(seed: &[u8; 32]) -> Vec<u8> {
    const FRAME: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    [&FRAME[..], seed].concat()
}

/// `-----BEGIN {label}-----`, base64 in 64-character lines, `-----END {label}-----`.
fn pem_block(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// What the web-frontend signs with.
#[derive(Debug)]
pub enum SigningKey {
    /// The shared secret; `announce_kid`: write its id as `kid` (only while a
    /// previous secret is configured, so that the contract's header is
    /// unchanged otherwise).
    Shared { key: SharedKey, announce_kid: bool },
    /// A private key; tokens carry its public key's thumbprint as `kid`.
    Private(PrivateKey),
}

impl SigningKey {
    pub fn algorithm(&self) -> Algorithm {
        match self {
            SigningKey::Shared { .. } => Algorithm::HS256,
            SigningKey::Private(key) => key.algorithm(),
        }
    }
}

/// What a verifier accepts.
#[derive(Clone, Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one per verifier, built at start or on a key change, never in a hot path"
)]
pub enum KeySet {
    /// The shared secret, and during a rotation the previous one until
    /// `valid_until` (seconds since the Unix epoch).
    Shared {
        current: SharedKey,
        previous: Option<(SharedKey, i64)>,
    },
    /// Public keys, all for `algorithm` (others are not admitted); at most
    /// [`MAX_KEYS`].
    Public {
        algorithm: Algorithm,
        keys: Vec<PublicKey>,
    },
}

impl KeySet {
    pub fn shared(current: SharedKey) -> Self {
        KeySet::Shared {
            current,
            previous: None,
        }
    }

    /// Public keys for `algorithm`: keys for another algorithm are refused.
    pub fn public(algorithm: Algorithm, keys: Vec<PublicKey>) -> Result<Self, KeyError> {
        if !algorithm.is_asymmetric() {
            return Err(KeyError::NotAsymmetric);
        }
        if keys.iter().any(|key| key.algorithm != algorithm) {
            return Err(KeyError::BadPublicKey(algorithm));
        }
        if keys.len() > MAX_KEYS {
            return Err(KeyError::TooManyKeys);
        }
        Ok(KeySet::Public { algorithm, keys })
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            KeySet::Shared { .. } => Algorithm::HS256,
            KeySet::Public { algorithm, .. } => *algorithm,
        }
    }

    /// The ids of the keys, current first (for logs and metrics).
    pub fn kids(&self) -> Vec<String> {
        match self {
            KeySet::Shared { current, previous } => std::iter::once(current.id().to_owned())
                .chain(previous.iter().map(|(key, _)| key.id().to_owned()))
                .collect(),
            KeySet::Public { keys, .. } => keys.iter().map(|key| key.kid.clone()).collect(),
        }
    }

    /// Whether a token naming `kid` has a key here (an unknown one is worth
    /// fetching the JWK Set again for).
    pub fn knows(&self, kid: &str) -> bool {
        match self {
            KeySet::Shared { .. } => true,
            KeySet::Public { keys, .. } => keys.iter().any(|key| key.kid == kid),
        }
    }
}

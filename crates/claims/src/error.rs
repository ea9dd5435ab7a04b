//! Why a token was refused (what the client is told, and the precise reason
//! for logs), or could not be signed.

/// A refused token. `Display` is the message the client sees, fixed by the contract.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// The token's one fault is its passed `exp`.
    #[error("token expired")]
    Expired,
    /// Anything else; the reason is for logs only.
    #[error("not valid token")]
    Invalid(Invalid),
}

impl VerifyError {
    /// A short, stable, secret-free reason for logs (`expired`, `bad signature`, …).
    pub fn reason(&self) -> &'static str {
        match self {
            VerifyError::Expired => "expired",
            VerifyError::Invalid(reason) => reason.as_str(),
        }
    }
}

impl From<Invalid> for VerifyError {
    fn from(reason: Invalid) -> Self {
        VerifyError::Invalid(reason)
    }
}

/// The precise reason a token is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    TooLong,
    Malformed,
    WrongAlgorithm,
    /// The header's `typ` is not the one this kind of token must carry.
    WrongType,
    CriticalHeader,
    BadSignature,
    MalformedClaims,
    /// Names the missing claim.
    MissingClaim(&'static str),
    WrongIssuer,
    WrongAudience,
    NotYetValid,
    IssuedInFuture,
    UserMismatch,
    /// `rooms` is not an array of room patterns within the bounds.
    BadRooms,
    /// A `kid` no key of the set has (with public keys: worth a new JWK Set).
    UnknownKey,
    /// A `kid` naming the previous shared secret after its end.
    RetiredKey,
    /// A revocation notice past its short lifetime.
    Stale,
}

impl Invalid {
    /// A stable label, fit for a metric; `Display` adds the claim's name where there is one.
    pub fn as_str(&self) -> &'static str {
        match self {
            Invalid::TooLong => "token too long",
            Invalid::Malformed => "malformed token",
            Invalid::WrongAlgorithm => "wrong algorithm",
            Invalid::WrongType => "wrong token type",
            Invalid::CriticalHeader => "unsupported critical header",
            Invalid::BadSignature => "bad signature",
            Invalid::MalformedClaims => "malformed claims",
            Invalid::MissingClaim(_) => "missing claim",
            Invalid::WrongIssuer => "wrong issuer",
            Invalid::WrongAudience => "wrong audience",
            Invalid::NotYetValid => "not yet valid",
            Invalid::IssuedInFuture => "issued in the future",
            Invalid::UserMismatch => "user does not match sub",
            Invalid::BadRooms => "bad rooms claim",
            Invalid::UnknownKey => "unknown key id",
            Invalid::RetiredKey => "retired key",
            Invalid::Stale => "stale notice",
        }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalid::MissingClaim(claim) => write!(f, "missing claim {claim}"),
            other => f.write_str(other.as_str()),
        }
    }
}

impl std::error::Error for Invalid {}

/// Why a token could not be signed (the backend failed; never the caller's input).
#[derive(Debug, thiserror::Error)]
#[error("signing the token failed: {0}")]
pub struct IssueError(#[from] jsonwebtoken::errors::Error);

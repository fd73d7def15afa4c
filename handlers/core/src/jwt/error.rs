//! Why a token was refused, one variant per reason.

/// Why a token was refused. Each variant is one reason, and its message says what is wrong.
///
/// Every variant but [`JwtError::JwksUnavailable`] is the client's fault (answer 401);
/// that one means the key set could not be loaded, which is ours (answer 503).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// The token is not three base64url segments holding a JSON header and JSON claims.
    #[error("the token is malformed: {0}")]
    Malformed(&'static str),

    /// The header names an algorithm other than RS256 (for example `none` or `HS256`).
    #[error("the token's algorithm {0:?} is refused: only RS256 is accepted")]
    UnsupportedAlgorithm(String),

    /// The header has no `kid`, so there is no way to choose the key to check it with.
    #[error("the token's header has no key id (kid)")]
    MissingKeyId,

    /// The header's `kid` is not in the issuer's key set, even after fetching the set again.
    #[error("the token's key id {0:?} is not in the issuer's key set")]
    UnknownKey(String),

    /// The signature does not match the token's contents and the key its `kid` names.
    #[error("the token's signature does not verify")]
    BadSignature,

    /// The token's `exp` has passed (beyond the allowed clock leeway).
    #[error("the token has expired")]
    Expired,

    /// The token's `nbf` is still in the future (beyond the allowed clock leeway).
    #[error("the token is not valid yet: its nbf is in the future")]
    NotYetValid,

    /// The token's `iss` is not the issuer this service trusts.
    #[error("the token was issued by an issuer this service does not trust")]
    WrongIssuer,

    /// The token's `aud` (or, without one, its `client_id`) names none of this service's
    /// audiences: it was issued to another app.
    #[error("the token's audience (aud, or client_id without aud) is none of this service's")]
    WrongAudience,

    /// The token's `iat` is in the future (beyond the allowed clock leeway).
    #[error("the token claims to be issued in the future: its iat is after now")]
    IssuedInFuture,

    /// A claim this service requires is absent (or empty).
    #[error("the token lacks the required {0} claim")]
    MissingClaim(&'static str),

    /// The key set could not be fetched, read or parsed. Not the client's fault.
    #[error("the issuer's key set is unavailable: {0}")]
    JwksUnavailable(String),
}

impl JwtError {
    /// Whether the token itself is to blame (answer 401) rather than our infrastructure
    /// (answer 503). Only [`JwtError::JwksUnavailable`] is not the client's fault.
    #[must_use]
    pub fn is_client_fault(&self) -> bool {
        !matches!(self, JwtError::JwksUnavailable(_))
    }
}

//! Verification of speaker tokens: RS256 JSON Web Tokens checked against the issuer's key set
//! (a JWKS), as issued by Cognito or, for local runs, by [`signing::LocalSigner`].
//!
//! A [`Verifier`] is built once from a [`JwtConfig`] and shared by every request. It loads the
//! key set lazily on first use and keeps it; when a token names a key id the set does not hold,
//! it fetches the set again (at most once a minute) so that a rotated key is picked up.
//!
//! The algorithm is pinned to RS256 before any key is touched: the JOSE header is parsed here,
//! and any other `alg` (`none`, `HS256`, ...) is refused. This is what refuses the classic
//! attack of an HMAC token "signed" with the issuer's public key. The time claims are checked
//! against a `now` the caller passes in, so tests control the clock.
//!
//! Every refusal is a distinct [`JwtError`] variant; [`JwtError::is_client_fault`] tells a
//! handler whether to answer 401 (a bad token) or 503 (the key set could not be loaded).
//!
//! Cognito note: its ID tokens carry `aud` (the app client id) and `token_use: "id"`; its
//! access tokens carry `client_id` instead of `aud`, so this verifier is meant for ID tokens.

mod claims;
mod config;
mod error;
mod keys;
pub mod signing;
mod token;
mod verifier;

pub use claims::Claims;
pub use config::{DEFAULT_LEEWAY_SECS, InvalidJwksSpec, JwksSource, JwtConfig};
pub use error::JwtError;
pub use verifier::{REFETCH_INTERVAL, Verifier};

/// The one signature algorithm this service accepts.
const ALGORITHM: &str = "RS256";

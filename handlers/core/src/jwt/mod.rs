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
//! A [`Verifier`] accepts exactly the tokens the HTTP API's JWT authorizer accepts for the same
//! issuer, audiences and keys (API Gateway developer guide, "Control access to HTTP APIs with
//! JWT authorizers"): `iss` equal to the issuer; `aud` naming one of the audiences, or, only
//! when there is no `aud`, `client_id` being one; `exp` after now, `nbf` and `iat` before it.
//! So the `$connect` authorizer and the `connection` function (`CONNECT_AUTH=self`) admit the
//! same speakers as `POST /sessions`. With Cognito both of a user's tokens pass: the ID token
//! (`aud` = the app client id, `token_use: id`) and the access token (`client_id` = the app
//! client id, no `aud`, `token_use: access`); `token_use` is not checked, because API Gateway
//! does not check it and a narrower check here would refuse on the WebSocket API a token the
//! HTTP API accepted. What this verifier adds: RS256 only (API Gateway takes any RSA algorithm;
//! Cognito signs with RS256), `exp` required, a 30 s clock leeway, and, in
//! [`Verifier::verify`], a `sub` (API Gateway passes a token without one on, and the `http`
//! function then refuses it with 401 as well).

mod claims;
pub mod cognito;
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

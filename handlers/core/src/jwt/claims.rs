//! A token's claims: as they arrive (every one optional) and as they are once checked.

use super::{JwtConfig, JwtError};
use serde::Deserialize;
use serde_json::Number;

/// The claims of a token that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The subject: the user's stable id (for Cognito, the user's `sub` UUID, the same in the
    /// user's ID and access tokens). Never empty.
    pub sub: String,
    /// The user's email address, if the token carries one (Cognito ID tokens do, access tokens
    /// do not).
    pub email: Option<String>,
    /// The kind of token (Cognito: `id` or `access`), if the token says. Informative only: the
    /// HTTP API's JWT authorizer does not look at it, so neither does this verifier.
    pub token_use: Option<String>,
    /// When the token expires, in seconds since the Unix epoch.
    pub exp: i64,
    /// When the token was issued, in seconds since the Unix epoch, if the token says.
    pub iat: Option<i64>,
    /// When the token starts to be valid, in seconds since the Unix epoch, if the token says.
    pub nbf: Option<i64>,
    /// The issuer (equal to the configured issuer).
    pub iss: String,
    /// The audiences (a single string in the token is a list of one here); empty when the token
    /// has no `aud`, and then its `client_id` is one of the configured audiences.
    pub aud: Vec<String>,
    /// The app client the token was issued to (Cognito access tokens), if the token says.
    pub client_id: Option<String>,
}

/// The claims as they arrive, before any check: every claim may be absent.
#[derive(Debug, Deserialize)]
pub(crate) struct RawClaims {
    sub: Option<String>,
    email: Option<String>,
    token_use: Option<String>,
    exp: Option<Number>,
    iat: Option<Number>,
    nbf: Option<Number>,
    iss: Option<String>,
    aud: Option<Audience>,
    client_id: Option<String>,
}

/// The `aud` claim, which RFC 7519 allows to be one string or an array of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn as_slice(&self) -> &[String] {
        match self {
            Audience::One(audience) => std::slice::from_ref(audience),
            Audience::Many(audiences) => audiences,
        }
    }
}

impl RawClaims {
    /// The checks of the HTTP API's JWT authorizer (API Gateway developer guide, "Control access
    /// to HTTP APIs with JWT authorizers"), on a token whose signature has been verified, at
    /// `now` (seconds since the Unix epoch):
    ///
    /// - `iss` is exactly the configured issuer;
    /// - `aud` names one of the configured audiences, or, only when the token has no `aud`,
    ///   `client_id` is one of them ("API Gateway validates `client_id` only if `aud` is not
    ///   present"): a Cognito ID token (`aud`) and access token (`client_id`) of the same app
    ///   client both pass, an access token whose `aud` names another client does not;
    /// - `exp` is after now, `nbf` and `iat` (when present) before it, give or take the leeway.
    ///
    /// `exp` is required (the guide lists it without saying whether it may be absent; every
    /// issuer sets it, and a token that never expires is not one to accept). `token_use` is not
    /// looked at, as API Gateway does not: both kinds of Cognito token pass.
    pub(crate) fn check_as_api_gateway(&self, config: &JwtConfig, now: i64) -> Result<(), JwtError> {
        let iss = self.iss.as_deref().ok_or(JwtError::MissingClaim("iss"))?;
        check_issuer(iss, config)?;
        check_audience(self.aud.as_ref().map(Audience::as_slice), self.client_id.as_deref(), config)?;
        let exp = self.exp.as_ref().map(seconds).ok_or(JwtError::MissingClaim("exp"))?;
        check_times(exp, self.nbf.as_ref().map(seconds), self.iat.as_ref().map(seconds), now, config.leeway_secs)
    }

    /// The claims of a token that passed [`RawClaims::check_as_api_gateway`], which must also
    /// name its subject: a speaker is its `sub`.
    pub(crate) fn into_claims(self) -> Result<Claims, JwtError> {
        let sub = self.sub.filter(|sub| !sub.is_empty()).ok_or(JwtError::MissingClaim("sub"))?;
        let exp = self.exp.as_ref().map(seconds).ok_or(JwtError::MissingClaim("exp"))?;
        Ok(Claims {
            sub,
            email: self.email,
            token_use: self.token_use,
            exp,
            iat: self.iat.as_ref().map(seconds),
            nbf: self.nbf.as_ref().map(seconds),
            iss: self.iss.ok_or(JwtError::MissingClaim("iss"))?,
            aud: self.aud.map(|aud| aud.as_slice().to_vec()).unwrap_or_default(),
            client_id: self.client_id,
        })
    }
}

/// A NumericDate as whole seconds. RFC 7519 allows fractions, which are dropped; values
/// beyond the range of `i64` saturate.
fn seconds(date: &Number) -> i64 {
    match date.as_i64() {
        Some(whole) => whole,
        // A float (or a u64 beyond i64): `as` truncates and saturates, which is what is wanted.
        None => date.as_f64().map_or(i64::MAX, |float| float.floor() as i64),
    }
}

fn check_issuer(iss: &str, config: &JwtConfig) -> Result<(), JwtError> {
    if iss == config.issuer { Ok(()) } else { Err(JwtError::WrongIssuer) }
}

/// `aud` when the token has one, whatever its `client_id` says; `client_id` only without `aud`.
fn check_audience(aud: Option<&[String]>, client_id: Option<&str>, config: &JwtConfig) -> Result<(), JwtError> {
    let named = match (aud, client_id) {
        (Some(aud), _) => aud.iter().any(|audience| config.audiences.contains(audience)),
        (None, Some(client_id)) => config.audiences.iter().any(|audience| audience == client_id),
        (None, None) => return Err(JwtError::MissingClaim("aud or client_id")),
    };
    if named { Ok(()) } else { Err(JwtError::WrongAudience) }
}

/// Refuses a token at or after its `exp`, or before its `nbf`, or issued (`iat`) after now,
/// each give or take the leeway.
fn check_times(exp: i64, nbf: Option<i64>, iat: Option<i64>, now: i64, leeway_secs: u64) -> Result<(), JwtError> {
    let leeway = i64::try_from(leeway_secs).unwrap_or(i64::MAX);
    if now >= exp.saturating_add(leeway) {
        return Err(JwtError::Expired);
    }
    if nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
        return Err(JwtError::NotYetValid);
    }
    if iat.is_some_and(|iat| iat > now.saturating_add(leeway)) {
        return Err(JwtError::IssuedInFuture);
    }
    Ok(())
}

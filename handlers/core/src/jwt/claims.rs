//! A token's claims: as they arrive (every one optional) and as they are once checked.

use super::{JwtConfig, JwtError};
use serde::Deserialize;
use serde_json::Number;

/// The claims of a token that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The subject: the user's stable id (for Cognito, the user's `sub` UUID). Never empty.
    pub sub: String,
    /// The user's email address, if the token carries one.
    pub email: Option<String>,
    /// The kind of token (Cognito: `id` or `access`), if the token says.
    pub token_use: Option<String>,
    /// When the token expires, in seconds since the Unix epoch.
    pub exp: i64,
    /// When the token was issued, in seconds since the Unix epoch, if the token says.
    pub iat: Option<i64>,
    /// When the token starts to be valid, in seconds since the Unix epoch, if the token says.
    pub nbf: Option<i64>,
    /// The issuer (equal to the configured issuer).
    pub iss: String,
    /// The audiences (one of which is the configured audience). A single string in the token
    /// is a list of one here.
    pub aud: Vec<String>,
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
}

/// The `aud` claim, which RFC 7519 allows to be one string or an array of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn into_vec(self) -> Vec<String> {
        match self {
            Audience::One(audience) => vec![audience],
            Audience::Many(audiences) => audiences,
        }
    }
}

impl RawClaims {
    /// Checks the claims of a token whose signature has been verified, at `now` (seconds since
    /// the Unix epoch), and returns them when they are all acceptable.
    pub(crate) fn check(self, config: &JwtConfig, now: i64) -> Result<Claims, JwtError> {
        let sub = self.sub.filter(|sub| !sub.is_empty()).ok_or(JwtError::MissingClaim("sub"))?;
        let exp = self.exp.as_ref().map(seconds).ok_or(JwtError::MissingClaim("exp"))?;
        let iss = self.iss.ok_or(JwtError::MissingClaim("iss"))?;
        let aud = self.aud.map(Audience::into_vec).ok_or(JwtError::MissingClaim("aud"))?;
        let nbf = self.nbf.as_ref().map(seconds);

        check_issuer(&iss, config)?;
        check_audience(&aud, config)?;
        check_token_use(self.token_use.as_deref(), config)?;
        check_times(exp, nbf, now, config.leeway_secs)?;

        Ok(Claims {
            sub,
            email: self.email,
            token_use: self.token_use,
            exp,
            iat: self.iat.as_ref().map(seconds),
            nbf,
            iss,
            aud,
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

fn check_audience(aud: &[String], config: &JwtConfig) -> Result<(), JwtError> {
    if aud.contains(&config.audience) { Ok(()) } else { Err(JwtError::WrongAudience) }
}

fn check_token_use(token_use: Option<&str>, config: &JwtConfig) -> Result<(), JwtError> {
    let Some(expected) = config.token_use.as_deref() else {
        return Ok(());
    };
    match token_use {
        None => Err(JwtError::MissingClaim("token_use")),
        Some(actual) if actual == expected => Ok(()),
        Some(_) => Err(JwtError::WrongTokenUse),
    }
}

/// Refuses a token at or after its `exp`, or before its `nbf`, each give or take the leeway.
fn check_times(exp: i64, nbf: Option<i64>, now: i64, leeway_secs: u64) -> Result<(), JwtError> {
    let leeway = i64::try_from(leeway_secs).unwrap_or(i64::MAX);
    if now >= exp.saturating_add(leeway) {
        return Err(JwtError::Expired);
    }
    match nbf {
        Some(nbf) if nbf > now.saturating_add(leeway) => Err(JwtError::NotYetValid),
        _ => Ok(()),
    }
}

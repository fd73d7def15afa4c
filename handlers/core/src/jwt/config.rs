//! What a verifier trusts: the issuer, the audiences, and where the keys are.

use std::path::PathBuf;

/// The clock leeway, in seconds, allowed on `exp` and `nbf` unless configured otherwise.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;

/// What a [`Verifier`](super::Verifier) accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    /// The exact `iss` a token must carry (for Cognito,
    /// `https://cognito-idp.<region>.amazonaws.com/<user pool id>`).
    pub issuer: String,
    /// A token's `aud` must name one of these, or, when it has no `aud`, its `client_id` must be
    /// one of them (for Cognito, the app client ids): the HTTP API's JWT authorizer's `Audience`.
    pub audiences: Vec<String>,
    /// Where the issuer's public keys are.
    pub jwks: JwksSource,
    /// How many seconds of clock difference to forgive on `exp` and `nbf`.
    pub leeway_secs: u64,
}

impl JwtConfig {
    /// A configuration with the default leeway.
    pub fn new(
        issuer: impl Into<String>,
        audiences: impl IntoIterator<Item = impl Into<String>>,
        jwks: JwksSource,
    ) -> Self {
        JwtConfig {
            issuer: issuer.into(),
            audiences: audiences.into_iter().map(Into::into).collect(),
            jwks,
            leeway_secs: DEFAULT_LEEWAY_SECS,
        }
    }

    /// The same configuration, with this clock leeway.
    #[must_use]
    pub fn with_leeway_secs(mut self, leeway_secs: u64) -> Self {
        self.leeway_secs = leeway_secs;
        self
    }
}

/// Where the issuer's key set (a JWKS document) comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// Fetched over HTTPS (or plain HTTP, for local runs) from this URL.
    Url(String),
    /// Read from this local file.
    File(PathBuf),
    /// This JWKS JSON text itself.
    Inline(String),
}

/// A JWKS source specification that is none of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "JWKS source {0:?} is not understood: give an http:// or https:// URL, a file: path \
     (file:/path/to/jwks.json), or the JWKS JSON itself (starting with '{{')"
)]
pub struct InvalidJwksSpec(pub String);

impl JwksSource {
    /// Reads a source from its textual form, as found in an environment variable:
    /// `http://...` or `https://...` is a URL, `file:<path>` (or `file://<path>`) is a file,
    /// and text starting with `{` is the JWKS JSON itself. Surrounding whitespace is ignored.
    pub fn from_spec(spec: &str) -> Result<Self, InvalidJwksSpec> {
        let spec = spec.trim();
        if spec.starts_with("http://") || spec.starts_with("https://") {
            return Ok(JwksSource::Url(spec.to_owned()));
        }
        if spec.starts_with('{') {
            return Ok(JwksSource::Inline(spec.to_owned()));
        }
        match file_path(spec) {
            Some(path) => Ok(JwksSource::File(PathBuf::from(path))),
            None => Err(InvalidJwksSpec(spec.to_owned())),
        }
    }
}

/// The path of a `file:` specification, if that is what `spec` is and the path is not empty.
fn file_path(spec: &str) -> Option<&str> {
    let rest = spec.strip_prefix("file:")?;
    let path = rest.strip_prefix("//").unwrap_or(rest);
    (!path.is_empty()).then_some(path)
}

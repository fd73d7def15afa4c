//! The issuer's key set: loading a JWKS document from its source and keeping the keys that can
//! check an RS256 signature.

use super::{ALGORITHM, JwksSource, JwtError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use std::collections::HashMap;
use std::error::Error;
use std::path::Path;
use std::time::Duration;

/// The largest key set accepted, in bytes; real ones hold a handful of keys in a few kilobytes.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// How long fetching the key set over HTTP may take in all.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// How long connecting to the key set's server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The smallest RSA modulus accepted, in bytes (2048 bits), as for RS256 verification.
const MIN_MODULUS_BYTES: usize = 256;

/// The usable keys of a key set, by key id.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    keys: HashMap<String, DecodingKey>,
}

/// A JWKS document: only its `keys` array matters.
#[derive(Debug, Deserialize)]
struct Jwks {
    keys: Vec<serde_json::Value>,
}

/// The fields of one JWK this service looks at. Any may be absent; keys without what is
/// needed are skipped, not errors, since a set may hold keys for other purposes.
#[derive(Debug, Deserialize)]
struct Jwk {
    kty: Option<String>,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

impl KeySet {
    /// The key with this id, if the set holds it.
    pub(crate) fn get(&self, kid: &str) -> Option<&DecodingKey> {
        self.keys.get(kid)
    }

    /// Loads the key set from its source.
    pub(crate) async fn load(source: &JwksSource) -> Result<KeySet, JwtError> {
        let text = match source {
            JwksSource::Url(url) => fetch(url).await?,
            JwksSource::File(path) => read(path)?,
            JwksSource::Inline(text) => text.clone(),
        };
        KeySet::parse(&text).map_err(JwtError::JwksUnavailable)
    }

    /// Parses a JWKS document, keeping its RSA signing keys usable with RS256. A document
    /// with no such key is refused, since no token could ever be accepted with it.
    pub(crate) fn parse(text: &str) -> Result<KeySet, String> {
        let jwks: Jwks =
            serde_json::from_str(text).map_err(|error| format!("the key set is not a JWKS document: {error}"))?;
        let mut keys = HashMap::new();
        for value in jwks.keys {
            let Some((kid, key)) = usable_key(value) else {
                continue;
            };
            if keys.contains_key(&kid) {
                tracing::warn!(kid, "the key set holds this key id twice; keeping the first");
                continue;
            }
            keys.insert(kid, key);
        }
        if keys.is_empty() {
            return Err("the key set holds no RSA signing key usable with RS256".to_owned());
        }
        Ok(KeySet { keys })
    }
}

/// The key id and key of one JWK, if it is an RSA key for RS256 signatures with a key id.
fn usable_key(value: serde_json::Value) -> Option<(String, DecodingKey)> {
    let jwk: Jwk = serde_json::from_value(value).ok()?;
    let kid = jwk.kid.filter(|kid| !kid.is_empty())?;
    if jwk.kty.as_deref() != Some("RSA")
        || jwk.alg.as_deref().is_some_and(|alg| alg != ALGORITHM)
        || jwk.use_.as_deref().is_some_and(|use_| use_ != "sig")
    {
        tracing::debug!(kid, "skipping a key that is not an RSA signing key for RS256");
        return None;
    }
    let n = big_endian(jwk.n.as_deref()?)?;
    let e = big_endian(jwk.e.as_deref()?)?;
    if n.len() < MIN_MODULUS_BYTES {
        tracing::warn!(kid, "skipping an RSA key shorter than 2048 bits");
        return None;
    }
    Some((kid, DecodingKey::from_rsa_raw_components(&n, &e)))
}

/// A base64url big-endian integer (a JWK's `n` or `e`) as bytes without leading zeros, which
/// is the form aws-lc-rs requires (some issuers pad `n` with a zero byte). None if it is not
/// base64url or is zero.
fn big_endian(encoded: &str) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    let first = bytes.iter().position(|byte| *byte != 0)?;
    Some(bytes.get(first..)?.to_vec())
}

/// Reads the key set from a local file. The file is small and read once, so the blocking read
/// is acceptable.
fn read(path: &Path) -> Result<String, JwtError> {
    std::fs::read_to_string(path)
        .map_err(|error| JwtError::JwksUnavailable(format!("could not read {}: {error}", path.display())))
}

/// Fetches the key set over HTTP(S), refusing an error status or an oversized document.
async fn fetch(url: &str) -> Result<String, JwtError> {
    let unavailable =
        |what: &str, error: &dyn Error| JwtError::JwksUnavailable(format!("{what} {url}: {}", chain(error)));
    let client = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .map_err(|error| unavailable("could not build an HTTP client for", &error))?;
    let mut response = client.get(url).send().await.map_err(|error| unavailable("could not fetch", &error))?;
    let status = response.status();
    if !status.is_success() {
        return Err(JwtError::JwksUnavailable(format!("fetching {url} answered {status}")));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| unavailable("could not read", &error))? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(JwtError::JwksUnavailable(format!("{url} is larger than any key set")));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| JwtError::JwksUnavailable(format!("{url} did not answer with UTF-8 text")))
}

/// An error and its sources, joined, since reqwest's own message omits the underlying cause.
fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

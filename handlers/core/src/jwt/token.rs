//! Taking a compact JWT apart: its three segments, its JOSE header, its claims, its signature.
//!
//! Everything here happens before any key is looked up, so a token that is malformed or names
//! a refused algorithm costs no key-set fetch.

use super::claims::RawClaims;
use super::{ALGORITHM, JwtError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The longest token accepted, in bytes; real ones are a few kilobytes at most.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A token taken apart, with its algorithm already known to be RS256.
#[derive(Debug)]
pub(crate) struct ParsedToken<'a> {
    /// The `kid` of the header: which of the issuer's keys signed the token.
    pub(crate) kid: String,
    /// The claims, not yet checked.
    pub(crate) claims: RawClaims,
    /// `header.payload`, the bytes the signature covers.
    signing_input: &'a str,
    /// The third segment, the base64url signature.
    signature: &'a str,
}

/// The JOSE header fields this service looks at.
#[derive(Debug, Deserialize)]
struct Header {
    alg: Option<String>,
    kid: Option<String>,
    /// Extensions the signer says a verifier must understand; this verifier understands none.
    crit: Option<Value>,
}

impl<'a> ParsedToken<'a> {
    /// Takes a compact JWT apart and refuses it if it is malformed, names an algorithm other
    /// than RS256, or has no key id.
    pub(crate) fn parse(token: &'a str) -> Result<Self, JwtError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JwtError::Malformed("the token is longer than any real token"));
        }
        let segments = Segments::split(token)?;
        let header: Header = decode_json(segments.header, "the header is not base64url-encoded JSON")?;
        let kid = check_header(header)?;
        let claims = decode_json(segments.payload, "the claims are not base64url-encoded JSON")?;
        if URL_SAFE_NO_PAD.decode(segments.signature).is_err() {
            return Err(JwtError::Malformed("the signature is not base64url-encoded"));
        }
        Ok(ParsedToken { kid, claims, signing_input: segments.signing_input, signature: segments.signature })
    }

    /// Checks the signature with the issuer's key, always as RS256 whatever the header says.
    pub(crate) fn check_signature(&self, key: &DecodingKey) -> Result<(), JwtError> {
        let verified =
            jsonwebtoken::crypto::verify(self.signature, self.signing_input.as_bytes(), key, Algorithm::RS256);
        match verified {
            Ok(true) => Ok(()),
            Ok(false) | Err(_) => Err(JwtError::BadSignature),
        }
    }
}

/// The three segments of a compact JWT, and the part the signature covers.
struct Segments<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
    /// `header.payload`.
    signing_input: &'a str,
}

impl<'a> Segments<'a> {
    /// Splits a token at its two dots, refusing it if it has any other number of dots.
    fn split(token: &'a str) -> Result<Self, JwtError> {
        let malformed = || JwtError::Malformed("a token is three base64url segments separated by dots");
        let (signing_input, signature) = token.rsplit_once('.').ok_or_else(malformed)?;
        let (header, payload) = signing_input.split_once('.').ok_or_else(malformed)?;
        if payload.contains('.') {
            return Err(malformed());
        }
        Ok(Segments { header, payload, signature, signing_input })
    }
}

/// Decodes one base64url segment holding a JSON object, refusing it with `problem` if it does
/// not. The object is required explicitly, since serde would also read a struct from an array.
fn decode_json<T: DeserializeOwned>(segment: &str, problem: &'static str) -> Result<T, JwtError> {
    let malformed = |_| JwtError::Malformed(problem);
    let bytes = URL_SAFE_NO_PAD.decode(segment).map_err(|_| JwtError::Malformed(problem))?;
    let object: Map<String, Value> = serde_json::from_slice(&bytes).map_err(malformed)?;
    serde_json::from_value(Value::Object(object)).map_err(malformed)
}

/// Refuses any algorithm but RS256 and any critical extension, and returns the key id.
fn check_header(header: Header) -> Result<String, JwtError> {
    let alg = header.alg.ok_or(JwtError::Malformed("the header has no alg"))?;
    if alg != ALGORITHM {
        return Err(JwtError::UnsupportedAlgorithm(alg));
    }
    if header.crit.is_some() {
        return Err(JwtError::Malformed("the header has critical extensions (crit); none is supported"));
    }
    header.kid.filter(|kid| !kid.is_empty()).ok_or(JwtError::MissingKeyId)
}

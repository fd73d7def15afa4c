//! A local token issuer, for tests and for local runs (`cargo xtask token`): an RSA key that
//! signs RS256 tokens and publishes its public half as a JWKS.
//!
//! Signing is done with aws-lc-rs directly. jsonwebtoken's RSA `EncodingKey` wants a PKCS#1
//! `RSAPrivateKey`, but aws-lc-rs generates and exports keys as PKCS#8 only.

use super::ALGORITHM;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// Why a local key could not be made, loaded, saved or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    /// aws-lc-rs could not generate an RSA key.
    #[error("could not generate an RSA 2048 key")]
    KeyGeneration,
    /// The bytes given are not an unencrypted PKCS#8 RSA private key.
    #[error("the key is not an unencrypted PKCS#8 DER RSA private key: {0}")]
    InvalidKey(String),
    /// The key could not be serialised as PKCS#8.
    #[error("could not serialise the key as PKCS#8 DER")]
    KeyExport,
    /// The header or the claims are not JSON objects.
    #[error("the token's {0} must be a JSON object")]
    NotAnObject(&'static str),
    /// aws-lc-rs could not sign.
    #[error("could not sign the token")]
    Signing,
}

/// An RSA key with a key id, signing RS256 tokens.
#[derive(Debug)]
pub struct LocalSigner {
    kid: String,
    key_pair: KeyPair,
}

impl LocalSigner {
    /// A fresh RSA 2048 key with this key id.
    pub fn generate(kid: &str) -> Result<Self, SigningError> {
        let key_pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| SigningError::KeyGeneration)?;
        Ok(LocalSigner { kid: kid.to_owned(), key_pair })
    }

    /// A key loaded from its unencrypted PKCS#8 DER form (as written by
    /// [`LocalSigner::to_pkcs8_der`]), with this key id.
    pub fn from_pkcs8_der(kid: &str, der: &[u8]) -> Result<Self, SigningError> {
        let key_pair = KeyPair::from_pkcs8(der).map_err(|error| SigningError::InvalidKey(error.to_string()))?;
        Ok(LocalSigner { kid: kid.to_owned(), key_pair })
    }

    /// The private key as unencrypted PKCS#8 DER, to be saved to a file and loaded again.
    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>, SigningError> {
        let der = self.key_pair.as_der().map_err(|_| SigningError::KeyExport)?;
        Ok(der.as_ref().to_vec())
    }

    /// The key id this signer puts in its tokens' headers and its JWK.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as one JWK: `kty` RSA, the key id, `alg` RS256, `use` sig, `n` and `e`.
    pub fn jwk(&self) -> Value {
        let public = PublicKeyComponents::<Vec<u8>>::from(self.key_pair.public_key());
        json!({
            "kty": "RSA",
            "kid": self.kid,
            "alg": ALGORITHM,
            "use": "sig",
            "n": URL_SAFE_NO_PAD.encode(&public.n),
            "e": URL_SAFE_NO_PAD.encode(&public.e),
        })
    }

    /// The public key as a JWKS document holding this one key.
    pub fn jwks_json(&self) -> String {
        json!({ "keys": [self.jwk()] }).to_string()
    }

    /// An RS256 token of these claims (a JSON object), with the header
    /// `{"alg": "RS256", "typ": "JWT", "kid": <kid>}`.
    pub fn sign(&self, claims: &Value) -> Result<String, SigningError> {
        let header = json!({ "alg": ALGORITHM, "typ": "JWT", "kid": self.kid });
        self.sign_with_header(&header, claims)
    }

    /// A token of this header and these claims (both JSON objects), signed with RS256 whatever
    /// the header says. For tests that need an unusual header; [`LocalSigner::sign`] is the
    /// one to use otherwise.
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> Result<String, SigningError> {
        if !header.is_object() {
            return Err(SigningError::NotAnObject("header"));
        }
        if !claims.is_object() {
            return Err(SigningError::NotAnObject("claims"));
        }
        let signing_input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = self.signature(signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    /// The RSASSA-PKCS1-v1_5 SHA-256 signature of `message`.
    fn signature(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        let mut signature = vec![0; self.key_pair.public_modulus_len()];
        self.key_pair
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut signature)
            .map_err(|_| SigningError::Signing)?;
        Ok(signature)
    }
}

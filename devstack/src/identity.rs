//! The local identity provider: one RS256 key kept under the build directory, its JWKS (served
//! by the local gateway at `/.well-known/jwks.json`), and speaker tokens signed with it.
//!
//! A stage runs locally with its JWT settings pointed here ([`local_stage`]): the issuer is
//! [`LOCAL_ISSUER`], the audiences (app client ids) stay the stage's, and the functions fetch
//! the key set from the local gateway. Everything else about the stage is unchanged.
//!
//! Tokens come in both of Cognito's shapes ([`TokenKind`]): an ID token names the stage's first
//! app client in `aud`, an access token in `client_id`; the local stack accepts both, as the
//! deployed one does.

use anyhow::{Context, Result};
use session_core::jwt::cognito::{TokenClaims, TokenKind};
use session_core::jwt::signing::LocalSigner;
use stacks::StageConfig;
use std::path::Path;

/// The issuer of local tokens. `.invalid` is reserved: no real issuer can ever have it.
pub const LOCAL_ISSUER: &str = "https://local-identity.invalid/session-service";
/// The key id of the local key.
const KEY_ID: &str = "session-service-local";

/// The local signing key.
#[derive(Debug)]
pub struct LocalIdentity {
    signer: LocalSigner,
}

/// Who a token is for, which of Cognito's two tokens it is, and for how long.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub kind: TokenKind,
    pub sub: String,
    /// Put in ID tokens only, as Cognito does.
    pub email: Option<String>,
    pub expires_in_seconds: u64,
}

impl TokenRequest {
    /// An ID token for `sub` with an email of `sub@example.com`, valid for `expires_in_seconds`.
    pub fn id(sub: &str, expires_in_seconds: u64) -> TokenRequest {
        TokenRequest {
            kind: TokenKind::Id,
            sub: sub.to_owned(),
            email: Some(format!("{sub}@example.com")),
            expires_in_seconds,
        }
    }

    /// The same request for an access token.
    #[must_use]
    pub fn access(self) -> TokenRequest {
        TokenRequest { kind: TokenKind::Access, ..self }
    }
}

impl LocalIdentity {
    /// A new key that lives as long as this value (tests).
    pub fn generate() -> Result<LocalIdentity> {
        Ok(LocalIdentity { signer: LocalSigner::generate(KEY_ID).context("generating the local signing key")? })
    }

    /// The key stored at `path` (PKCS#8 DER), created there on first use, so `cargo xtask token`
    /// and a running `cargo xtask dev` agree without talking to each other.
    pub fn load_or_create(path: &Path) -> Result<LocalIdentity> {
        if let Ok(der) = std::fs::read(path) {
            let signer = LocalSigner::from_pkcs8_der(KEY_ID, &der)
                .with_context(|| format!("{} is not a PKCS#8 RSA key; delete it to make a new one", path.display()))?;
            return Ok(LocalIdentity { signer });
        }
        let identity = LocalIdentity::generate()?;
        if let Some(directory) = path.parent() {
            std::fs::create_dir_all(directory).with_context(|| format!("creating {}", directory.display()))?;
        }
        let der = identity.signer.to_pkcs8_der().context("encoding the local signing key")?;
        // Written whole under another name, readable by its owner only, then moved into place:
        // a concurrent first use never reads half a key. If another process got there first,
        // its key wins and is the one used.
        let partial = path.with_extension(format!("{}.partial", std::process::id()));
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&partial)
                .with_context(|| format!("writing {}", partial.display()))?;
            file.write_all(&der).with_context(|| format!("writing {}", partial.display()))?;
        }
        if path.exists() {
            let _ = std::fs::remove_file(&partial);
            return LocalIdentity::load_or_create(path);
        }
        std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))?;
        Ok(identity)
    }

    /// The public key set.
    pub fn jwks_json(&self) -> String {
        self.signer.jwks_json()
    }

    /// A speaker token that `stage`, run locally ([`local_stage`]), accepts: issued by
    /// [`LOCAL_ISSUER`] to the stage's first app client (audience).
    pub fn token(&self, stage: &StageConfig, request: &TokenRequest) -> Result<String> {
        let now = i64::try_from(crate::events::epoch_ms() / 1000).context("the clock is past 2^63 s")?;
        let client_id = stage
            .jwt
            .audiences
            .first()
            .with_context(|| format!("stage {} lists no audience (app client id)", stage.name))?;
        let claims = TokenClaims {
            kind: request.kind,
            issuer: LOCAL_ISSUER,
            client_id,
            sub: &request.sub,
            email: request.email.as_deref().filter(|_| request.kind == TokenKind::Id),
            issued_at: now,
            expires_at: now.saturating_add(i64::try_from(request.expires_in_seconds).unwrap_or(i64::MAX)),
        };
        self.signer.sign(&claims.to_json()).context("signing the token")
    }
}

impl LocalIdentity {
    /// Any claims (a JSON object) signed with the local key: for tokens of shapes the local
    /// identity provider never issues, which tests need.
    pub fn sign(&self, claims: &serde_json::Value) -> Result<String> {
        self.signer.sign(claims).context("signing the token")
    }
}

/// `stage` with its JWT settings pointed at the local identity provider, whose key set is
/// served at `jwks_url`.
pub fn local_stage(stage: StageConfig, jwks_url: &str) -> StageConfig {
    let mut stage = stage;
    stage.jwt.issuer = LOCAL_ISSUER.to_owned();
    stage.jwt.jwks_url = jwks_url.to_owned();
    stage
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::jwt::{JwksSource, JwtConfig, Verifier};

    #[tokio::test]
    async fn local_tokens_of_both_shapes_verify_against_the_local_key_set_and_stage() {
        let identity = LocalIdentity::generate().expect("a key");
        let stage = local_stage(stacks::stages::dev(), "http://127.0.0.1:1/.well-known/jwks.json");
        let config =
            |jwks: String| JwtConfig::new(&stage.jwt.issuer, stage.jwt.audiences.clone(), JwksSource::Inline(jwks));
        let now = i64::try_from(crate::events::epoch_ms() / 1000).expect("now fits");
        let request = TokenRequest::id("speaker-1", 60);
        let id = identity.token(&stage, &request).expect("signed");
        let access = identity.token(&stage, &request.clone().access()).expect("signed");
        let verifier = Verifier::new(config(identity.jwks_json()));
        let id_claims = verifier.verify(&id, now).await.expect("the local stage accepts the ID token");
        let access_claims = verifier.verify(&access, now).await.expect("the local stage accepts the access token");
        assert_eq!((id_claims.sub.as_str(), id_claims.email.as_deref()), ("speaker-1", Some("speaker-1@example.com")));
        assert_eq!(id_claims.aud, [stage.jwt.audiences[0].clone()]);
        assert_eq!((access_claims.sub.as_str(), access_claims.email), ("speaker-1", None));
        assert!(access_claims.aud.is_empty());
        assert_eq!(access_claims.client_id.as_ref(), stage.jwt.audiences.first());
        assert_eq!(access_claims.token_use.as_deref(), Some("access"));
        let other = LocalIdentity::generate().expect("a key");
        assert!(
            Verifier::new(config(other.jwks_json())).verify(&id, now).await.is_err(),
            "another key must not verify it"
        );
    }

    #[test]
    fn the_key_is_kept_and_reused() {
        let directory = std::env::temp_dir().join(format!("devstack-identity-{}", rand::random::<u64>()));
        let path = directory.join("key.der");
        let first = LocalIdentity::load_or_create(&path).expect("created");
        let second = LocalIdentity::load_or_create(&path).expect("loaded");
        assert_eq!(first.jwks_json(), second.jwks_json());
        std::fs::write(&path, b"not a key").expect("written");
        let error = LocalIdentity::load_or_create(&path).expect_err("refused");
        assert!(error.to_string().contains("delete it"), "{error}");
        let _ = std::fs::remove_dir_all(directory);
    }
}

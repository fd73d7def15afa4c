//! The local identity provider: one RS256 key kept under the build directory, its JWKS (served
//! by the local gateway at `/.well-known/jwks.json`), and speaker tokens signed with it.
//!
//! A stage runs locally with its JWT settings pointed here ([`local_stage`]): the issuer is
//! [`LOCAL_ISSUER`], the audience stays the stage's, and the functions fetch the key set from the
//! local gateway. Everything else about the stage is unchanged.

use anyhow::{Context, Result};
use serde_json::json;
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

/// Who a token is for, and for how long.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub sub: String,
    pub email: Option<String>,
    pub expires_in_seconds: u64,
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
    /// [`LOCAL_ISSUER`] for the stage's audience.
    pub fn token(&self, stage: &StageConfig, request: &TokenRequest) -> Result<String> {
        let now = crate::events::epoch_ms() / 1000;
        let mut claims = json!({
            "sub": request.sub,
            "iss": LOCAL_ISSUER,
            "aud": stage.jwt.audience,
            "token_use": stage.jwt.token_use,
            "iat": now,
            "auth_time": now,
            "exp": now + request.expires_in_seconds,
        });
        if let (Some(email), Some(map)) = (&request.email, claims.as_object_mut()) {
            map.insert("email".into(), json!(email));
        }
        self.signer.sign(&claims).context("signing the token")
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
    async fn local_tokens_verify_against_the_local_key_set_and_stage() {
        let identity = LocalIdentity::generate().expect("a key");
        let stage = local_stage(stacks::stages::dev(), "http://127.0.0.1:1/.well-known/jwks.json");
        let request =
            TokenRequest { sub: "speaker-1".into(), email: Some("s@example.com".into()), expires_in_seconds: 60 };
        let token = identity.token(&stage, &request).expect("signed");
        let config = JwtConfig::new(&stage.jwt.issuer, &stage.jwt.audience, JwksSource::Inline(identity.jwks_json()))
            .with_token_use(&stage.jwt.token_use);
        let now = i64::try_from(crate::events::epoch_ms() / 1000).expect("now fits");
        let claims = Verifier::new(config).verify(&token, now).await.expect("the local stage accepts it");
        assert_eq!(claims.sub, "speaker-1");
        assert_eq!(claims.email.as_deref(), Some("s@example.com"));
        let other = LocalIdentity::generate().expect("a key");
        let config = JwtConfig::new(&stage.jwt.issuer, &stage.jwt.audience, JwksSource::Inline(other.jwks_json()));
        assert!(Verifier::new(config).verify(&token, now).await.is_err(), "another key must not verify it");
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

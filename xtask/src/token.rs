//! `cargo xtask token`: prints one speaker token the local stack (`cargo xtask dev`) accepts,
//! signed with the local key (made on first use, kept under the build directory), in either of
//! the shapes Cognito issues: an access token (`--kind access`, the default: what speakers
//! send, docs/protocol.md, "Speaker tokens") or an ID token (`--kind id`). The deployed stage accepts both shapes of its identity provider's tokens,
//! and so does the local one.

use anyhow::{Context, Result};
use clap::Args;
use devstack::{LocalIdentity, TokenKind, TokenRequest};

#[derive(Debug, Args)]
pub(crate) struct Token {
    /// The stage the local stack runs (its first app client id goes into the token).
    #[arg(long, default_value = "dev")]
    stage: String,
    /// Which of Cognito's tokens: `id` (the app client in `aud`, with the email) or `access`
    /// (the app client in `client_id`, no `aud`).
    #[arg(long, default_value = "access", value_name = "access|id")]
    kind: TokenKind,
    /// The user the token is for (its `sub`).
    #[arg(long, default_value = "local-speaker")]
    sub: String,
    /// The user's email (ID tokens only).
    #[arg(long, default_value = "speaker@example.com")]
    email: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    expires_in: u64,
}

impl Token {
    pub(crate) fn run(self) -> Result<()> {
        let stage = stacks::stages::by_name(&self.stage)
            .with_context(|| format!("no stage named {:?} (try dev or prod)", self.stage))?;
        let identity = LocalIdentity::load_or_create(&crate::dev::key_path())?;
        let request = TokenRequest {
            kind: self.kind,
            sub: self.sub,
            email: Some(self.email),
            expires_in_seconds: self.expires_in,
        };
        println!("{}", identity.token(&stage, &request)?);
        Ok(())
    }
}

//! The WebSocket API's `$connect` REQUEST authorizer.
//!
//! It runs for every connection: the stage configures it with no identity source, because a
//! listener has no token and a missing identity source is a 401 before any function runs
//! (AWS_FACTS 2, the incident this project exists for). It decides:
//!
//! - no token → allow, context `authenticated = "false"` (an anonymous listener);
//! - a valid speaker token → allow, context with the user's id and email (if the token has
//!   one). Valid means what the HTTP API's JWT authorizer accepts with the same settings
//!   (`session_core::jwt`): a Cognito ID token or access token of one of the stage's app
//!   clients, so a speaker who can create a session over HTTP can connect;
//! - an invalid or expired token → fail with exactly `Unauthorized`, which API Gateway turns
//!   into 401 (AWS_FACTS 15) — never a silent downgrade to listener;
//! - the key set cannot be loaded → fail with another message: API Gateway answers 500, and
//!   the client may retry.
//!
//! The policy allows exactly the `$connect` method ARN of the request (AWS_FACTS 1).

use session_core::auth::Caller;
use session_core::config::{ConfigError, FunctionEnv};
use session_core::events::{AuthorizerRequest, AuthorizerResponse, PolicyDocument};
use session_core::jwt::{JwtError, Verifier};
use session_core::store::{Clock, SystemClock};
use std::sync::Arc;

/// The principal id of anonymous connections.
pub const ANONYMOUS_PRINCIPAL: &str = "anonymous";

/// Why a connection is not authorized.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizerError {
    /// A token was presented and is not valid. The message is exactly what API Gateway
    /// maps to 401.
    #[error("Unauthorized")]
    Unauthorized(#[source] JwtError),
    /// The token could not be checked (the key set is unreachable); API Gateway answers 500.
    #[error("the speaker token could not be verified: {0}")]
    Unavailable(#[source] JwtError),
}

impl From<AuthorizerError> for lambda_runtime::Diagnostic {
    fn from(error: AuthorizerError) -> Self {
        let error_type = match &error {
            AuthorizerError::Unauthorized(_) => "Unauthorized",
            AuthorizerError::Unavailable(_) => "Unavailable",
        };
        lambda_runtime::Diagnostic { error_type: error_type.to_owned(), error_message: error.to_string() }
    }
}

/// The authorizer, built once per cold start.
#[derive(Debug, Clone)]
pub struct Authorizer {
    verifier: Verifier,
    clock: Arc<dyn Clock>,
}

impl Authorizer {
    pub fn new(verifier: Verifier, clock: Arc<dyn Clock>) -> Authorizer {
        Authorizer { verifier, clock }
    }

    /// The authorizer configured by its environment (`JWT_*`, `JWKS_SOURCE`).
    pub fn from_env(env: &FunctionEnv) -> Result<Authorizer, ConfigError> {
        Ok(Authorizer::new(Verifier::new(env.jwt()?), Arc::new(SystemClock)))
    }

    /// Decides one `$connect`.
    pub async fn handle(&self, request: &AuthorizerRequest) -> Result<AuthorizerResponse, AuthorizerError> {
        let caller = match request.token() {
            None => Caller::Anonymous,
            Some(token) => {
                let claims = self.verifier.verify(token, self.clock.now_seconds()).await.map_err(|error| {
                    if error.is_client_fault() {
                        tracing::info!(%error, "refused a speaker token");
                        AuthorizerError::Unauthorized(error)
                    } else {
                        tracing::error!(%error, "could not verify a speaker token");
                        AuthorizerError::Unavailable(error)
                    }
                })?;
                Caller::User { user_id: claims.sub, email: claims.email }
            }
        };
        let principal_id = match &caller {
            Caller::Anonymous => ANONYMOUS_PRINCIPAL.to_owned(),
            Caller::User { user_id, .. } => user_id.clone(),
        };
        Ok(AuthorizerResponse {
            principal_id,
            policy_document: PolicyDocument::allow(&request.method_arn),
            context: caller.to_context(),
        })
    }
}

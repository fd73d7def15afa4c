//! The world a function test runs in: a store over fresh tables on the local DynamoDB
//! endpoint, a manual clock, a recording `@connections` API reached through the real SDK
//! client, a local signing key with a verifier that trusts it, and a recorder of every AWS
//! call (to check calls against the contract's permissions); and the speaker tokens every
//! path that checks tokens must accept or refuse alike ([`tokens`]).

pub mod tokens;

use session_core::config::Limits;
use session_core::fanout::Notifier;
use session_core::ids::SessionId;
use session_core::jwt::cognito::{TokenClaims, TokenKind};
use session_core::jwt::signing::LocalSigner;
use session_core::jwt::{JwksSource, JwtConfig, Verifier};
use session_core::model::Session;
use session_core::store::{ManualClock, NewSession, Store, TableNames};
use session_core::validation::{LanguageCode, QualityTier};
use std::collections::BTreeSet;
use std::sync::Arc;
use testkit::{ConnectionsApi, OperationRecorder};

/// The test clock's start: 2026-11-25T19:01:21Z, in milliseconds.
pub const NOW_MS: i64 = 1_795_633_281_000;
pub const ISSUER: &str = "https://issuer.example.com";
/// The app client speakers' tokens are issued to: the verifier's one audience.
pub const AUDIENCE: &str = "session-service";

/// Everything a function under test talks to.
#[derive(Debug, Clone)]
pub struct World {
    pub store: Store,
    pub clock: Arc<ManualClock>,
    pub connections_api: ConnectionsApi,
    pub notifier: Notifier,
    pub recorder: OperationRecorder,
    pub signer: Arc<LocalSigner>,
    pub verifier: Verifier,
    pub limits: Limits,
}

impl World {
    /// A fresh world: new tables, an empty `@connections` record, a new key.
    pub async fn new() -> World {
        let recorder = OperationRecorder::new();
        let client = testkit::dynamodb_client_recording(&recorder);
        let tables = testkit::create_tables(&client).await;
        let names = TableNames::from_lookup(tables.env_lookup()).expect("every table has a name");
        let clock = ManualClock::starting_at(NOW_MS);
        let store = Store::new(client, names).with_clock(clock.clone());
        let connections_api = ConnectionsApi::start().await;
        let base = connections_api.client(Some(recorder.clone())).config().clone();
        let notifier = Notifier::new(base, Some(connections_api.endpoint()));
        let signer = Arc::new(LocalSigner::generate("harness-key").expect("a signing key"));
        let verifier = Verifier::new(JwtConfig::new(ISSUER, [AUDIENCE], JwksSource::Inline(signer.jwks_json())));
        recorder.clear();
        World { store, clock, connections_api, notifier, recorder, signer, verifier, limits: Limits::default() }
    }

    /// A valid speaker token (a Cognito ID token) for `user`, expiring in an hour.
    pub fn token(&self, user: &str) -> String {
        self.token_expiring(user, NOW_MS / 1000 + 3600)
    }

    /// A valid speaker access token (Cognito's other shape: `client_id`, no `aud`) for `user`.
    pub fn access_token(&self, user: &str) -> String {
        self.token_of(TokenKind::Access, user, NOW_MS / 1000 + 3600)
    }

    /// A speaker ID token for `user` expiring at `exp` (epoch seconds).
    pub fn token_expiring(&self, user: &str, exp: i64) -> String {
        self.token_of(TokenKind::Id, user, exp)
    }

    /// A speaker token of `kind` for `user`, issued 10 s ago, expiring at `exp` (epoch seconds).
    pub fn token_of(&self, kind: TokenKind, user: &str, exp: i64) -> String {
        let email = format!("{user}@example.com");
        let claims = TokenClaims {
            kind,
            issuer: ISSUER,
            client_id: AUDIENCE,
            sub: user,
            email: Some(&email),
            issued_at: NOW_MS / 1000 - 10,
            expires_at: exp,
        };
        self.sign(&claims.to_json())
    }

    /// `claims` (a JSON object) signed with the world's key: for tokens of any other shape.
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        self.signer.sign(claims).expect("signed")
    }

    /// A live session owned by `user`.
    pub async fn session_owned_by(&self, user: &str) -> Session {
        self.store
            .create_session(NewSession {
                speaker_user_id: user.to_owned(),
                source_language: language("en"),
                quality_tier: QualityTier::Standard,
                lifetime_seconds: self.limits.session_lifetime_seconds,
            })
            .await
            .expect("session created")
    }

    /// The IAM actions of every AWS call made since the world was built.
    pub fn iam_actions(&self) -> BTreeSet<String> {
        self.recorder.iam_actions()
    }

    /// Asserts that every AWS call made so far is permitted to `function` by the contract.
    pub fn assert_calls_permitted(&self, function: &contract::Function) {
        let permitted: BTreeSet<&str> =
            function.permissions.iter().flat_map(|permission| permission.actions.iter().copied()).collect();
        for action in self.iam_actions() {
            assert!(
                permitted.contains(action.as_str()),
                "function `{}` called {action}, which the contract does not grant it",
                function.name
            );
        }
    }
}

/// A language code known to be valid.
pub fn language(code: &str) -> LanguageCode {
    LanguageCode::parse(code).expect("a valid language")
}

/// A session id known to be valid.
pub fn session_id(text: &str) -> SessionId {
    SessionId::parse(text).expect("a valid session id")
}

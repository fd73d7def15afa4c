//! The authorizer against REQUEST events shaped like API Gateway's, with keys made here.

use authorizer_function::{ANONYMOUS_PRINCIPAL, Authorizer, AuthorizerError};
use harness::tokens::token_cases;
use serde_json::{Value, json};
use session_core::events::AuthorizerRequest;
use session_core::jwt::cognito::{TokenClaims, TokenKind};
use session_core::jwt::signing::LocalSigner;
use session_core::jwt::{JwksSource, JwtConfig, Verifier};
use session_core::store::ManualClock;

const NOW: i64 = 1_795_633_281;
const ISSUER: &str = "https://issuer.example.com";
const AUDIENCE: &str = "session-service";

fn listener_request() -> AuthorizerRequest {
    serde_json::from_str(include_str!("data/request_listener.json")).expect("fixture")
}

fn speaker_request(token: &str) -> AuthorizerRequest {
    let text = include_str!("data/request_speaker.json").replace("\"TOKEN\"", &format!("\"{token}\""));
    serde_json::from_str(&text).expect("fixture")
}

fn authorizer_with(jwks: JwksSource) -> Authorizer {
    let config = JwtConfig::new(ISSUER, [AUDIENCE], jwks);
    Authorizer::new(Verifier::new(config), ManualClock::starting_at(NOW * 1000))
}

fn signer() -> LocalSigner {
    LocalSigner::generate("test-key").expect("key")
}

fn token(signer: &LocalSigner, exp: i64) -> String {
    signer
        .sign(&json!({
            "sub": "user-42", "email": "speaker@example.com", "iss": ISSUER, "aud": AUDIENCE,
            "token_use": "id", "iat": NOW - 10, "exp": exp,
        }))
        .expect("signed")
}

fn context(response: &session_core::events::AuthorizerResponse) -> Value {
    Value::Object(response.context.clone())
}

#[tokio::test]
async fn a_tokenless_listener_is_allowed_as_anonymous() {
    let authorizer = authorizer_with(JwksSource::Inline(signer().jwks_json()));
    let request = listener_request();
    let response = authorizer.handle(&request).await.expect("allowed");
    assert_eq!(response.principal_id, ANONYMOUS_PRINCIPAL);
    assert_eq!(context(&response), json!({"authenticated": "false", "userId": "", "email": ""}));
    let policy = serde_json::to_value(&response.policy_document).expect("json");
    assert_eq!(policy["Statement"][0]["Effect"], "Allow");
    assert_eq!(policy["Statement"][0]["Resource"], request.method_arn);
}

#[tokio::test]
async fn a_tokenless_listener_is_allowed_even_when_the_key_set_is_unreachable() {
    // Listeners never depend on the speaker-token machinery.
    let authorizer = authorizer_with(JwksSource::Url("http://127.0.0.1:9/jwks.json".into()));
    assert!(authorizer.handle(&listener_request()).await.is_ok());
}

#[tokio::test]
async fn a_valid_speaker_token_is_allowed_with_the_users_identity() {
    let signer = signer();
    let authorizer = authorizer_with(JwksSource::Inline(signer.jwks_json()));
    let response = authorizer.handle(&speaker_request(&token(&signer, NOW + 3600))).await.expect("allowed");
    assert_eq!(response.principal_id, "user-42");
    assert_eq!(
        context(&response),
        json!({"authenticated": "true", "userId": "user-42", "email": "speaker@example.com"})
    );
    assert!(response.context.values().all(Value::is_string), "context values are flat strings");
}

/// The same tokens as the HTTP API's JWT authorizer: ID and access tokens of the app client
/// pass, with the caller's `sub`; every other shape is a 401, never a listener.
#[tokio::test]
async fn it_accepts_exactly_the_tokens_the_http_apis_jwt_authorizer_accepts() {
    let signer = signer();
    let authorizer = authorizer_with(JwksSource::Inline(signer.jwks_json()));
    for case in token_cases(ISSUER, AUDIENCE, "user-42", NOW) {
        let token = signer.sign(&case.claims).expect("signed");
        match authorizer.handle(&speaker_request(&token)).await {
            Ok(response) => {
                assert!(case.accepted, "{} was accepted", case.name);
                assert_eq!(response.principal_id, "user-42", "{}", case.name);
                assert_eq!(context(&response)["authenticated"], "true", "{}", case.name);
            }
            Err(error) => {
                assert!(!case.accepted, "{} was refused: {error:?}", case.name);
                assert_eq!(lambda_runtime::Diagnostic::from(error).error_message, "Unauthorized", "{}", case.name);
            }
        }
    }
}

#[tokio::test]
async fn an_access_token_speaker_has_no_email_in_the_context() {
    let signer = signer();
    let authorizer = authorizer_with(JwksSource::Inline(signer.jwks_json()));
    let access = TokenClaims {
        kind: TokenKind::Access,
        issuer: ISSUER,
        client_id: AUDIENCE,
        sub: "user-42",
        email: Some("ignored@example.com"),
        issued_at: NOW - 10,
        expires_at: NOW + 60,
    };
    let token = signer.sign(&access.to_json()).expect("signed");
    let response = authorizer.handle(&speaker_request(&token)).await.expect("allowed");
    assert_eq!(context(&response), json!({"authenticated": "true", "userId": "user-42", "email": ""}));
}

#[tokio::test]
async fn a_bearer_header_works_like_the_query_parameter() {
    let signer = signer();
    let authorizer = authorizer_with(JwksSource::Inline(signer.jwks_json()));
    let mut request = listener_request();
    request
        .headers
        .get_or_insert_default()
        .insert("Authorization".into(), format!("Bearer {}", token(&signer, NOW + 60)));
    let response = authorizer.handle(&request).await.expect("allowed");
    assert_eq!(response.principal_id, "user-42");
}

#[tokio::test]
async fn an_expired_token_is_unauthorized_not_a_listener() {
    let signer = signer();
    let authorizer = authorizer_with(JwksSource::Inline(signer.jwks_json()));
    let error = authorizer.handle(&speaker_request(&token(&signer, NOW - 3600))).await.expect_err("refused");
    assert!(matches!(error, AuthorizerError::Unauthorized(_)), "{error}");
    let diagnostic = lambda_runtime::Diagnostic::from(error);
    assert_eq!(diagnostic.error_message, "Unauthorized", "API Gateway maps exactly this message to 401");
}

#[tokio::test]
async fn a_token_from_another_key_or_garbage_is_unauthorized() {
    let authorizer = authorizer_with(JwksSource::Inline(signer().jwks_json()));
    for bad in [token(&signer(), NOW + 60), "garbage".to_owned(), "a.b.c".to_owned()] {
        let error = authorizer.handle(&speaker_request(&bad)).await.expect_err("refused");
        assert!(matches!(error, AuthorizerError::Unauthorized(_)), "{bad}: {error}");
    }
}

#[tokio::test]
async fn an_unreachable_key_set_is_an_error_not_a_401() {
    let authorizer = authorizer_with(JwksSource::Url("http://127.0.0.1:9/jwks.json".into()));
    let error = authorizer.handle(&speaker_request(&token(&signer(), NOW + 60))).await.expect_err("cannot verify");
    assert!(matches!(error, AuthorizerError::Unavailable(_)), "{error}");
    assert_ne!(lambda_runtime::Diagnostic::from(error).error_message, "Unauthorized");
}

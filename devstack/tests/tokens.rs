//! Speaker tokens through every path of the local stack that checks them, each held to the
//! same answers (`harness::tokens`, API Gateway's JWT authorizer rules): the HTTP API's JWT
//! authorizer (`POST /sessions`), the `$connect` authorizer, and `$connect` verifying tokens
//! itself on a stage without the authorizer. A Cognito ID token and access token of the stage's
//! app client pass everywhere; every other shape is refused everywhere with 401.

mod support;

use devstack::{DevStack, GatewayLimits};
use harness::tokens::{TokenCase, token_cases};
use serde_json::json;
use support::{connect, start, start_stage};

/// Every case, signed with the stack's local key, for the stage's first app client.
fn signed_cases(stack: &DevStack) -> Vec<(TokenCase, String)> {
    let stage = stack.stage();
    let now = i64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs(),
    )
    .expect("now fits");
    token_cases(&stage.jwt.issuer, &stage.jwt.audiences[0], "token-speaker", now)
        .into_iter()
        .map(|case| {
            let token = stack.sign(&case.claims).expect("signed");
            (case, token)
        })
        .collect()
}

/// A speaker connecting with `token` and no session (to create one later): 101, or the refusal.
async fn speaker_connects(stack: &DevStack, token: &str) -> Result<(), u16> {
    connect(stack, &format!("token={token}")).await.map(drop)
}

#[tokio::test]
async fn the_http_api_and_the_connect_authorizer_accept_the_same_tokens() {
    let stack = start("tokens-authorizer", GatewayLimits::default(), None).await;
    let client = reqwest::Client::new();
    for (case, token) in signed_cases(&stack) {
        let created = client
            .post(format!("{}/sessions", stack.http_url()))
            .bearer_auth(&token)
            .json(&json!({"sourceLanguage": "en"}))
            .send()
            .await
            .expect("POST /sessions answered");
        let expected = if case.accepted { 201 } else { 401 };
        assert_eq!(created.status().as_u16(), expected, "POST /sessions with {}", case.name);
        let connected = speaker_connects(&stack, &token).await;
        let expected = if case.accepted { Ok(()) } else { Err(401) };
        assert_eq!(connected, expected, "$connect through the authorizer with {}", case.name);
    }
    stack.stop().await;
}

#[tokio::test]
async fn connect_without_the_authorizer_accepts_the_same_tokens() {
    let stage = stacks::stages::without_authorizer(stacks::stages::dev());
    let stack = start_stage("tokens-self", stage, GatewayLimits::default(), None).await;
    assert!(!stack.function_stats().contains_key("AuthorizerFunction"), "the stage has no authorizer");
    for (case, token) in signed_cases(&stack) {
        let connected = speaker_connects(&stack, &token).await;
        let expected = if case.accepted { Ok(()) } else { Err(401) };
        assert_eq!(connected, expected, "$connect verifying the token itself with {}", case.name);
    }
    stack.stop().await;
}

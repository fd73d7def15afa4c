//! CORS on the local HTTP API, as the `dev` template configures it (`stacks/stages/dev.yaml`:
//! the local console's origins): a preflight is answered by the gateway before any route,
//! authorizer or function; responses carry `Access-Control-Allow-Origin` for an allowed origin
//! and no CORS header for another. What a browser does with them is then what it does against
//! the deployed stage.

mod support;

use devstack::{DevStack, GatewayLimits};
use reqwest::{Method, Response};
use serde_json::json;
use support::{start, token};

const REFUSED_ORIGIN: &str = "https://elsewhere.example";

fn allowed_origin(stack: &DevStack) -> String {
    stack.stage().cors.allowed_origins[0].clone()
}

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|value| value.to_str().ok())
}

fn cors_headers(response: &Response) -> Vec<String> {
    response
        .headers()
        .keys()
        .map(|name| name.as_str().to_owned())
        .filter(|name| name.starts_with("access-control-"))
        .collect()
}

/// A browser's preflight for `POST /sessions` with a token and a JSON body, from `origin`.
async fn preflight(stack: &DevStack, origin: &str) -> Response {
    reqwest::Client::new()
        .request(Method::OPTIONS, format!("{}/sessions", stack.http_url()))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "authorization,content-type")
        .send()
        .await
        .expect("the preflight is answered")
}

/// `POST /sessions` from `origin`, with `token` when given.
async fn create(stack: &DevStack, origin: &str, token: Option<&str>) -> Response {
    let mut request = reqwest::Client::new()
        .post(format!("{}/sessions", stack.http_url()))
        .header("Origin", origin)
        .json(&json!({"sourceLanguage": "en"}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("POST /sessions answered")
}

#[tokio::test]
async fn preflights_are_answered_by_the_gateway_for_allowed_origins_only() {
    let stack = start("cors-preflight", GatewayLimits::default(), None).await;
    let allowed = allowed_origin(&stack);

    let answered = preflight(&stack, &allowed).await;
    assert_eq!(answered.status(), 204);
    assert_eq!(header(&answered, "access-control-allow-origin"), Some(allowed.as_str()));
    let methods = header(&answered, "access-control-allow-methods").unwrap_or_default();
    assert!(methods.split(',').any(|method| method == "POST"), "{methods}");
    let headers = header(&answered, "access-control-allow-headers").unwrap_or_default().to_ascii_lowercase();
    assert!(headers.contains("authorization") && headers.contains("content-type"), "{headers}");
    assert_eq!(header(&answered, "access-control-max-age"), Some("7200"));

    let refused = preflight(&stack, REFUSED_ORIGIN).await;
    assert_eq!(refused.status(), 204);
    assert_eq!(cors_headers(&refused), Vec::<String>::new(), "nothing for another origin");

    // A preflight carries no token, and neither the JWT authorizer nor a function saw it.
    assert_eq!(stack.function_stats()["HttpFunction"].invocations, 0);
    stack.stop().await;
}

#[tokio::test]
async fn responses_name_an_allowed_origin_and_nothing_for_another() {
    let stack = start("cors-requests", GatewayLimits::default(), None).await;
    let allowed = allowed_origin(&stack);
    let speaker = token(&stack, "cors-speaker");

    let created = create(&stack, &allowed, Some(&speaker)).await;
    assert_eq!(created.status(), 201);
    assert_eq!(header(&created, "access-control-allow-origin"), Some(allowed.as_str()));

    let elsewhere = create(&stack, REFUSED_ORIGIN, Some(&speaker)).await;
    assert_eq!(elsewhere.status(), 201, "CORS is the browser's to enforce: the request itself runs");
    assert_eq!(cors_headers(&elsewhere), Vec::<String>::new());

    // The JWT authorizer's refusal is readable by the allowed page (it can ask to sign in again).
    let unauthorized = create(&stack, &allowed, None).await;
    assert_eq!(unauthorized.status(), 401);
    assert_eq!(header(&unauthorized, "access-control-allow-origin"), Some(allowed.as_str()));

    let health = reqwest::Client::new()
        .get(format!("{}/health", stack.http_url()))
        .header("Origin", &allowed)
        .send()
        .await
        .expect("GET /health answered");
    assert_eq!(health.status(), 200);
    assert_eq!(header(&health, "access-control-allow-origin"), Some(allowed.as_str()));

    // Without Origin (not a browser's cross-origin request) there is nothing to say.
    let direct = reqwest::get(format!("{}/health", stack.http_url())).await.expect("answered");
    assert_eq!(cors_headers(&direct), Vec::<String>::new());
    stack.stop().await;
}

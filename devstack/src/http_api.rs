//! The local HTTP API, as the template configures it: route keys (`GET /sessions/{id}`,
//! `ANY /x/{proxy+}`, `$default`) matched most-specific first, the JWT authorizer on the routes
//! that name it (issuer and audiences from the template, checked as API Gateway checks them:
//! `session_core::jwt::Verifier::accept`, so a Cognito ID token and access token both pass; a
//! missing or invalid token is 401 `{"message":"Unauthorized"}` before the function runs),
//! payload format 2.0 events, CORS as configured ([`crate::cors`]: preflights answered by the
//! gateway before any route), and the function's answer returned as API Gateway returns it (a
//! failed function is 500 `{"message":"Internal Server Error"}`).

use crate::cors::Cors;
use crate::events::HttpRequest;
use crate::runtime::Function;
use crate::template::{HttpApi, HttpAuthorization, HttpRoute};
use crate::websocket::refusal;
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Map, Value};
use session_core::jwt::{JwksSource, JwtConfig, Verifier};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// A JWT authorizer's issuer and audiences.
type JwtAuthorizerConfig = (String, Vec<String>);

/// The HTTP API: its routes, their functions, and one verifier per JWT authorizer configuration.
#[derive(Debug)]
pub struct HttpGateway {
    api: HttpApi,
    api_id: String,
    functions: BTreeMap<String, Function>,
    jwks: JwksSource,
    /// One per JWT authorizer configuration, built on first use.
    verifiers: std::sync::Mutex<BTreeMap<JwtAuthorizerConfig, Arc<Verifier>>>,
}

impl HttpGateway {
    /// A gateway for `api`; tokens are checked against the keys of `jwks`.
    pub fn new(api: HttpApi, api_id: String, functions: BTreeMap<String, Function>, jwks: JwksSource) -> Arc<Self> {
        Arc::new(HttpGateway { api, api_id, functions, jwks, verifiers: std::sync::Mutex::default() })
    }

    /// Every request goes through [`HttpGateway::handle`].
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().fallback(handle).with_state(Arc::clone(self))
    }

    fn verifier(&self, issuer: &str, audiences: &[String]) -> Arc<Verifier> {
        let mut verifiers = self.verifiers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (issuer.to_owned(), audiences.to_vec());
        Arc::clone(
            verifiers.entry(key).or_insert_with(|| {
                Arc::new(Verifier::new(JwtConfig::new(issuer, audiences.to_vec(), self.jwks.clone())))
            }),
        )
    }

    /// The token's claims (as payload 2.0 gives them: every value a string), or `None` when
    /// the request does not carry a token the authorizer accepts.
    async fn check_jwt(
        &self,
        issuer: &str,
        audiences: &[String],
        identity_sources: &[String],
        headers: &BTreeMap<String, String>,
    ) -> Option<Map<String, Value>> {
        let source = identity_sources.first().map(String::as_str).unwrap_or("$request.header.Authorization");
        let name = source.strip_prefix("$request.header.")?.to_ascii_lowercase();
        let value = headers.get(&name)?.trim();
        let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).unwrap_or(value).trim();
        if token.is_empty() {
            return None;
        }
        let now = i64::try_from(crate::events::epoch_ms() / 1000).unwrap_or(i64::MAX);
        match self.verifier(issuer, audiences).accept(token, now).await {
            Ok(()) => claims_as_strings(token),
            Err(_) => None,
        }
    }
}

/// The claims of a (verified) compact JWT, each value written as a string.
fn claims_as_strings(token: &str) -> Option<Map<String, Value>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    Some(
        claims
            .into_iter()
            .map(|(name, value)| {
                let text = match value {
                    Value::String(text) => text,
                    Value::Array(items) => format!(
                        "[{}]",
                        items
                            .iter()
                            .map(|item| item.as_str().map_or_else(|| item.to_string(), str::to_owned))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                    other => other.to_string(),
                };
                (name, Value::String(text))
            })
            .collect(),
    )
}

/// How specific a match is: no greedy variable, literal segments, an exact method.
type Specificity = (bool, usize, bool);

/// The path parameters and specificity of `route` for a request, if it matches: the method
/// (`ANY` matches all), then the path segment by segment.
fn matches(route: &HttpRoute, method: &str, path: &str) -> Option<(BTreeMap<String, String>, Specificity)> {
    let (route_method, route_path) = route.key.split_once(' ')?;
    if route_method != "ANY" && route_method != method {
        return None;
    }
    let pattern: Vec<&str> = route_path.trim_start_matches('/').split('/').collect();
    let actual: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut parameters = BTreeMap::new();
    let mut literals = 0;
    let mut greedy = false;
    for (index, segment) in pattern.iter().enumerate() {
        if let Some(name) = segment.strip_prefix('{').and_then(|rest| rest.strip_suffix("+}")) {
            let rest = actual.get(index..).filter(|rest| !rest.is_empty() && !rest[0].is_empty())?;
            parameters.insert(name.to_owned(), percent_decode(&rest.join("/")));
            greedy = true;
            break;
        }
        let value = actual.get(index)?;
        if let Some(name) = segment.strip_prefix('{').and_then(|rest| rest.strip_suffix('}')) {
            if value.is_empty() {
                return None;
            }
            parameters.insert(name.to_owned(), percent_decode(value));
        } else if segment != value {
            return None;
        } else {
            literals += 1;
        }
    }
    if !greedy && pattern.len() != actual.len() {
        return None;
    }
    // Most specific first: no greedy variable, more literal segments, an exact method.
    Some((parameters, (!greedy, literals, route_method != "ANY")))
}

/// The route for a request: the most specific match, else `$default`.
fn select<'a>(api: &'a HttpApi, method: &str, path: &str) -> Option<(&'a HttpRoute, BTreeMap<String, String>)> {
    api.routes
        .iter()
        .filter_map(|route| matches(route, method, path).map(|(parameters, rank)| (route, parameters, rank)))
        .max_by_key(|(_, _, rank)| *rank)
        .map(|(route, parameters, _)| (route, parameters))
        .or_else(|| api.routes.iter().find(|route| route.key == "$default").map(|route| (route, BTreeMap::new())))
}

async fn handle(
    State(gateway): State<Arc<HttpGateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let Some(cors) = gateway.api.cors.clone() else {
        return route(&gateway, peer, request).await;
    };
    let origin = request.headers().get(header::ORIGIN).and_then(|origin| origin.to_str().ok()).map(str::to_owned);
    if Cors::is_preflight(request.method(), request.headers()) {
        return cors.preflight(origin.as_deref());
    }
    let mut response = route(&gateway, peer, request).await;
    cors.apply(origin.as_deref(), &mut response);
    response
}

/// A request routed: the JWT authorizer where the route has it, then the route's function.
async fn route(gateway: &HttpGateway, peer: SocketAddr, request: Request) -> Response {
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let raw_query = request.uri().query().unwrap_or_default().to_owned();
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in request.headers() {
        let Ok(value) = value.to_str() else { continue };
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|joined| *joined = format!("{joined},{value}"))
            .or_insert_with(|| value.to_owned());
    }
    let Some((route, path_parameters)) = select(&gateway.api, &method, &path) else {
        return refusal(StatusCode::NOT_FOUND, "Not Found");
    };
    let claims = match &route.authorization {
        HttpAuthorization::None => None,
        HttpAuthorization::Jwt { issuer, audience, identity_sources } => {
            match gateway.check_jwt(issuer, audience, identity_sources, &headers).await {
                Some(claims) => Some(claims),
                None => {
                    let mut refused = refusal(StatusCode::UNAUTHORIZED, "Unauthorized");
                    refused.headers_mut().insert("www-authenticate", HeaderValue::from_static("Bearer"));
                    return refused;
                }
            }
        }
    };
    let Ok(body) = axum::body::to_bytes(request.into_body(), 10 * 1024 * 1024).await else {
        return refusal(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    };
    let host = headers.get("host").cloned().unwrap_or_default();
    let source_ip = peer.ip().to_string();
    let event = HttpRequest {
        api_id: &gateway.api_id,
        domain_name: &host,
        route_key: &route.key,
        method: &method,
        path: &path,
        raw_query: &raw_query,
        headers,
        path_parameters,
        source_ip: &source_ip,
        body: &body,
        claims,
    }
    .event_v2();
    let Some(function) = gateway.functions.get(&route.function) else {
        return refusal(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    match function.invoke(&event).await {
        Ok(answer) => lambda_response(answer),
        Err(_) => refusal(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    }
}

/// A payload 2.0 answer as the client gets it: with `statusCode`, its status, headers and
/// body; without, the JSON itself with 200.
fn lambda_response(answer: Value) -> Response {
    let Some(status) = answer.get("statusCode").and_then(Value::as_u64) else {
        return ([("content-type", "application/json")], answer.to_string()).into_response();
    };
    let Some(status) = u16::try_from(status).ok().and_then(|code| StatusCode::from_u16(code).ok()) else {
        return refusal(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let body = answer.get("body").and_then(Value::as_str).unwrap_or_default();
    let body = if answer.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        match base64::engine::general_purpose::STANDARD.decode(body) {
            Ok(bytes) => bytes,
            Err(_) => return refusal(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        }
    } else {
        body.as_bytes().to_vec()
    };
    let mut response = (status, body).into_response();
    if let Some(headers) = answer.get("headers").and_then(Value::as_object) {
        for (name, value) in headers {
            let text = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
            if let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), HeaderValue::from_str(&text)) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response
}

/// Decodes `%XX` escapes and `+` (as a space) in a query string part.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            b'+' => out.push(b' '),
            b'%' => {
                // Exactly two hex digits: `u8::from_str_radix` alone would also take a sign (`%+1`).
                let hex = bytes
                    .get(index + 1..index + 3)
                    .filter(|pair| pair.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|pair| std::str::from_utf8(pair).ok());
                match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(decoded) => {
                        out.push(decoded);
                        index += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A query string's pairs, decoded, in order.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(key: &str) -> HttpRoute {
        HttpRoute {
            key: key.into(),
            function: "F".into(),
            payload_format: "2.0".into(),
            authorization: HttpAuthorization::None,
        }
    }

    fn api(keys: &[&str]) -> HttpApi {
        HttpApi { logical_id: "HttpApi".into(), routes: keys.iter().map(|key| route(key)).collect(), cors: None }
    }

    #[test]
    fn the_most_specific_route_wins() {
        let api = api(&["GET /sessions/{id}", "GET /sessions/mine", "ANY /sessions/{proxy+}", "$default"]);
        let key = |method: &str, path: &str| select(&api, method, path).map(|(route, _)| route.key.clone());
        assert_eq!(key("GET", "/sessions/mine").as_deref(), Some("GET /sessions/mine"));
        assert_eq!(key("GET", "/sessions/quiet-harbor-417").as_deref(), Some("GET /sessions/{id}"));
        assert_eq!(key("POST", "/sessions/a/b").as_deref(), Some("ANY /sessions/{proxy+}"));
        assert_eq!(key("GET", "/elsewhere").as_deref(), Some("$default"));
        let (_, parameters) = select(&api, "GET", "/sessions/a%20b").expect("routed");
        assert_eq!(parameters.get("id").map(String::as_str), Some("a b"));
    }

    #[test]
    fn without_default_unmatched_requests_have_no_route() {
        let api = api(&["POST /sessions", "GET /health"]);
        assert!(select(&api, "GET", "/sessions").is_none());
        assert!(select(&api, "GET", "/health/x").is_none());
        assert!(select(&api, "GET", "/sessions/").is_none());
        assert!(select(&api, "GET", "/health").is_some());
    }

    #[test]
    fn claims_reach_the_function_as_strings() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"sub":"u-1","exp":1795636871,"aud":["a","b"],"email_verified":true}"#);
        let claims = claims_as_strings(&format!("h.{payload}.s")).expect("decodes");
        assert_eq!(claims.get("exp"), Some(&Value::String("1795636871".into())));
        assert_eq!(claims.get("aud"), Some(&Value::String("[a b]".into())));
        assert_eq!(claims.get("email_verified"), Some(&Value::String("true".into())));
    }

    #[test]
    fn answers_become_responses() {
        let response = lambda_response(serde_json::json!({"statusCode": 201, "headers": {"x-a": "1"}, "body": "{}"}));
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers().get("x-a").map(|value| value.as_bytes()), Some(&b"1"[..]));
        assert_eq!(lambda_response(serde_json::json!({"ok": true})).status(), StatusCode::OK);
        assert_eq!(lambda_response(serde_json::json!({"statusCode": 99})).status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn query_strings_decode() {
        assert_eq!(
            query_pairs("sessionId=quiet-harbor-417&token=a%2Bb&x"),
            vec![
                ("sessionId".into(), "quiet-harbor-417".into()),
                ("token".into(), "a+b".into()),
                ("x".into(), String::new())
            ]
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%+1"), "% 1", "an escape is two hex digits, without a sign");
    }
}

//! The events API Gateway sends to the WebSocket functions and the authorizer, and what they
//! answer, modelled as documented rather than as a generic proxy event.
//!
//! Every field API Gateway may leave out is optional here, so an event without, say, an
//! `authorizer` key (a stage without the `$connect` authorizer) is read, not refused.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// An event for a WebSocket route (`$connect`, `$disconnect`, `$default`, an action).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebSocketEvent {
    #[serde(default)]
    pub request_context: RequestContext,
    /// Headers (`$connect` only, AWS_FACTS 5).
    #[serde(default)]
    pub headers: Option<HashMap<String, String>>,
    /// Query string (`$connect` only, AWS_FACTS 5).
    #[serde(default)]
    pub query_string_parameters: Option<HashMap<String, String>>,
    /// The frame (messages only).
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub is_base64_encoded: bool,
}

/// `requestContext` of a WebSocket event or an authorizer request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    #[serde(default)]
    pub route_key: String,
    /// `CONNECT`, `MESSAGE` or `DISCONNECT`.
    #[serde(default)]
    pub event_type: String,
    #[serde(default)]
    pub connection_id: String,
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub connected_at: i64,
    #[serde(default)]
    pub domain_name: String,
    #[serde(default)]
    pub stage: String,
    #[serde(default)]
    pub api_id: String,
    #[serde(default)]
    pub request_id: String,
    #[serde(default)]
    pub identity: Identity,
    /// The `$connect` authorizer's context (plus `principalId`), on every route of the
    /// connection when the stage has an authorizer (AWS_FACTS 4); absent otherwise.
    #[serde(default)]
    pub authorizer: Option<Map<String, Value>>,
}

/// `requestContext.identity`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    #[serde(default)]
    pub source_ip: String,
    #[serde(default)]
    pub user_agent: Option<String>,
}

impl WebSocketEvent {
    /// A query-string parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query_string_parameters.as_ref()?.get(name).map(String::as_str)
    }

    /// The speaker token: `?token=` or `Authorization: Bearer`.
    pub fn token(&self) -> Option<&str> {
        bearer_token(self.headers.as_ref(), self.query_string_parameters.as_ref())
    }
}

/// A header, by case-insensitive name.
pub fn header<'a>(headers: Option<&'a HashMap<String, String>>, name: &str) -> Option<&'a str> {
    headers?.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
}

/// The token a client presents: the `token` query parameter (browsers cannot set headers on a
/// WebSocket), else an `Authorization: Bearer` header. Empty values count as absent.
pub fn bearer_token<'a>(
    headers: Option<&'a HashMap<String, String>>,
    query: Option<&'a HashMap<String, String>>,
) -> Option<&'a str> {
    let present = |token: &&str| !token.is_empty();
    let from_query = query.and_then(|query| query.get("token")).map(String::as_str).filter(present);
    let from_header = header(headers, "authorization").and_then(|value| {
        let (scheme, token) = value.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
    });
    from_query.or(from_header.filter(present))
}

/// What a WebSocket function answers. On `$connect` the status decides the handshake
/// (AWS_FACTS 3); on other routes it is dropped (AWS_FACTS 7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebSocketResponse {
    pub status_code: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl WebSocketResponse {
    pub fn ok() -> WebSocketResponse {
        WebSocketResponse { status_code: 200, body: None }
    }

    /// A refusal with the protocol's `{code, message}` body.
    pub fn refusal(error: &crate::protocol::ProtocolError) -> WebSocketResponse {
        WebSocketResponse { status_code: error.code.http_status(), body: Some(error_body(error).to_string()) }
    }
}

/// The JSON body of an HTTP or handshake refusal: `{code, message, details?, retryAfter?}`.
pub fn error_body(error: &crate::protocol::ProtocolError) -> Value {
    let mut body = serde_json::json!({ "code": error.code, "message": error.message });
    if let Some(field) = &error.field {
        body["details"] = serde_json::json!({ "field": field });
    }
    if let Some(retry_after) = error.retry_after {
        body["retryAfter"] = Value::from(retry_after);
    }
    body
}

/// The event a WebSocket API's REQUEST authorizer receives on `$connect`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerRequest {
    /// `REQUEST`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The `$connect` method ARN; the policy must allow exactly it (AWS_FACTS 1).
    #[serde(default)]
    pub method_arn: String,
    #[serde(default)]
    pub headers: Option<HashMap<String, String>>,
    #[serde(default)]
    pub query_string_parameters: Option<HashMap<String, String>>,
    #[serde(default)]
    pub request_context: RequestContext,
}

impl AuthorizerRequest {
    pub fn token(&self) -> Option<&str> {
        bearer_token(self.headers.as_ref(), self.query_string_parameters.as_ref())
    }
}

/// An authorizer's answer: an IAM policy for the `$connect` method and a flat context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerResponse {
    pub principal_id: String,
    pub policy_document: PolicyDocument,
    pub context: Map<String, Value>,
}

/// An IAM policy document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    pub version: String,
    pub statement: Vec<PolicyStatement>,
}

/// One statement of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyStatement {
    pub action: String,
    pub effect: String,
    pub resource: String,
}

impl PolicyDocument {
    /// A policy that allows invoking exactly `method_arn`.
    pub fn allow(method_arn: &str) -> PolicyDocument {
        PolicyDocument {
            version: "2012-10-17".to_owned(),
            statement: vec![PolicyStatement {
                action: "execute-api:Invoke".to_owned(),
                effect: "Allow".to_owned(),
                resource: method_arn.to_owned(),
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect()
    }

    #[test]
    fn the_token_comes_from_the_query_or_a_bearer_header() {
        assert_eq!(bearer_token(None, Some(&map(&[("token", "abc")]))), Some("abc"));
        assert_eq!(bearer_token(Some(&map(&[("Authorization", "Bearer xyz")])), None), Some("xyz"));
        assert_eq!(bearer_token(Some(&map(&[("authorization", "bearer  xyz ")])), None), Some("xyz"));
        assert_eq!(bearer_token(Some(&map(&[("Authorization", "Basic xyz")])), None), None);
        assert_eq!(bearer_token(None, Some(&map(&[("token", "")]))), None);
        assert_eq!(bearer_token(None, None), None);
    }

    #[test]
    fn an_event_without_optional_parts_is_read() {
        let event: WebSocketEvent =
            serde_json::from_str(r#"{"requestContext":{"routeKey":"$connect"}}"#).expect("minimal event");
        assert_eq!(event.request_context.authorizer, None);
        assert_eq!(event.query("sessionId"), None);
        let event: WebSocketEvent = serde_json::from_str("{}").expect("empty event");
        assert_eq!(event.request_context.route_key, "");
    }

    #[test]
    fn a_refusal_carries_the_status_and_the_code() {
        let response = WebSocketResponse::refusal(&crate::protocol::ProtocolError::missing("sessionId"));
        assert_eq!(response.status_code, 400);
        let body: Value = serde_json::from_str(response.body.as_deref().unwrap_or("")).expect("json");
        assert_eq!(body["code"], "MISSING_PARAMETER");
        assert_eq!(body["details"]["field"], "sessionId");
    }

    #[test]
    fn the_policy_allows_exactly_the_method_arn() {
        let policy =
            serde_json::to_value(PolicyDocument::allow("arn:aws:execute-api:r:1:api/dev/$connect")).expect("json");
        assert_eq!(policy["Version"], "2012-10-17");
        assert_eq!(policy["Statement"][0]["Resource"], "arn:aws:execute-api:r:1:api/dev/$connect");
        assert_eq!(policy["Statement"][0]["Effect"], "Allow");
        assert_eq!(policy["Statement"][0]["Action"], "execute-api:Invoke");
    }
}

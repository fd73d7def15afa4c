//! What the function answers: a status, a JSON body and headers, as an HTTP API payload 2.0
//! response.
//!
//! Every response is `application/json`, with the bodies of `session_core::protocol::http`
//! (the types the published OpenAPI document is generated from). A refusal's body is
//! [`ErrorBody`] (`{code, message, details?, retryAfter?}`) and its status is the code's
//! [`ErrorCode::http_status`] unless a route documents an override; a rate-limit refusal also
//! carries `Retry-After`. A session is shown by its public fields only ([`SessionView`]), with
//! times in milliseconds since the epoch.

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::header::{CONTENT_TYPE, HeaderName, LOCATION, RETRY_AFTER};
use aws_lambda_events::http::{HeaderMap, HeaderValue};
use serde_json::Value;
use session_core::model::Session;
use session_core::protocol::http::{ErrorBody, SessionView};
use session_core::protocol::{ErrorCode, ProtocolError};
use session_core::store::StoreError;

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    status: u16,
    body: Value,
    location: Option<String>,
}

impl Reply {
    /// `200` with a JSON body.
    pub(crate) fn ok(body: Value) -> Reply {
        Reply { status: 200, body, location: None }
    }

    /// `200` with the session's public fields.
    pub(crate) fn session(session: &Session) -> Reply {
        Reply::ok(public_session(session))
    }

    /// `201` with the session's public fields, and where to find it.
    pub(crate) fn created(session: &Session, location: String) -> Reply {
        Reply { status: 201, body: public_session(session), location: Some(location) }
    }

    pub(crate) fn status(&self) -> u16 {
        self.status
    }

    pub(crate) fn into_response(self) -> ApiGatewayV2httpResponse {
        let mut headers = HeaderMap::new();
        if let Some(location) = &self.location {
            insert(&mut headers, LOCATION, location);
        }
        response(self.status, &self.body, headers)
    }
}

/// A refused request: the protocol's error and the HTTP status it is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) error: ProtocolError,
    pub(crate) status: u16,
}

impl Refusal {
    /// The same refusal answered with another status than its code's.
    pub(crate) fn with_status(self, status: u16) -> Refusal {
        Refusal { status, ..self }
    }

    /// `SESSION_INACTIVE` answered as `409 Conflict`: the request conflicts with the
    /// session's state (it has ended).
    pub(crate) fn conflict_if_inactive(self) -> Refusal {
        if self.error.code == ErrorCode::SessionInactive { self.with_status(409) } else { self }
    }

    pub(crate) fn into_response(self) -> ApiGatewayV2httpResponse {
        let mut headers = HeaderMap::new();
        if let Some(retry_after) = self.error.retry_after {
            insert(&mut headers, RETRY_AFTER, &retry_after.to_string());
        }
        response(self.status, &body_of(ErrorBody::from(&self.error)), headers)
    }
}

impl From<ProtocolError> for Refusal {
    fn from(error: ProtocolError) -> Refusal {
        let status = error.code.http_status();
        Refusal { error, status }
    }
}

impl From<StoreError> for Refusal {
    fn from(error: StoreError) -> Refusal {
        Refusal::from(ProtocolError::from(error))
    }
}

fn insert(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    match HeaderValue::from_str(value) {
        Ok(value) => {
            headers.insert(name, value);
        }
        Err(error) => tracing::error!(%error, header = %name, value, "a header value is not valid; it is left out"),
    }
}

/// `body` as JSON (a body that cannot be serialized, which these types cannot be, is `null`).
pub(crate) fn body_of(body: impl serde::Serialize) -> Value {
    serde_json::to_value(body).unwrap_or_else(|error| {
        tracing::error!(%error, "a body could not be serialized");
        Value::Null
    })
}

fn response(status: u16, body: &Value, mut headers: HeaderMap) -> ApiGatewayV2httpResponse {
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(status);
    response.headers = headers;
    response.body = Some(Body::Text(body.to_string()));
    response
}

/// The session's public JSON: [`SessionView`], the body the published OpenAPI document
/// describes (times in milliseconds; the store keeps seconds).
pub(crate) fn public_session(session: &Session) -> Value {
    body_of(SessionView::from(session))
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::ids::SessionId;
    use session_core::model::{BroadcastState, SessionStatus};
    use session_core::validation::{LanguageCode, QualityTier};

    fn session() -> Session {
        Session {
            session_id: SessionId::parse("quiet-harbor-417").expect("id"),
            speaker_user_id: "user-42".into(),
            speaker_connection_id: Some("secret-connection".into()),
            source_language: LanguageCode::parse("en").expect("language"),
            quality_tier: QualityTier::Premium,
            status: SessionStatus::Paused,
            listener_count: 3,
            language_counts: Some([(LanguageCode::parse("de").expect("language"), 3)].into()),
            broadcast_state: BroadcastState { is_paused: true, ..BroadcastState::default() },
            created_at: 1_795_633_281,
            expires_at: 1_795_676_481,
            speaker_gone_at: Some(1_795_633_300),
            end_reason: None,
            end_notified_at: None,
            recounted_at: None,
        }
    }

    #[test]
    fn the_public_json_has_exactly_the_public_fields_in_milliseconds() {
        let json = public_session(&session());
        let keys: Vec<&str> = json.as_object().expect("object").keys().map(String::as_str).collect();
        let mut expected = vec![
            "sessionId",
            "status",
            "sourceLanguage",
            "qualityTier",
            "listenerCount",
            "broadcastState",
            "createdAt",
            "expiresAt",
        ];
        expected.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(json["createdAt"], 1_795_633_281_000_i64);
        assert_eq!(json["expiresAt"], 1_795_676_481_000_i64);
        assert_eq!(json["status"], "paused");
        assert_eq!(json["qualityTier"], "premium");
        assert_eq!(json["broadcastState"], serde_json::json!({"isPaused": true, "isMuted": false, "volume": 1.0}));
        assert!(!json.to_string().contains("secret-connection"));
        assert!(!json.to_string().contains("user-42"));
    }

    #[test]
    fn a_rate_limit_refusal_says_when_to_retry_in_the_body_and_a_header() {
        let response = Refusal::from(ProtocolError::rate_limited(42)).into_response();
        assert_eq!(response.status_code, 429);
        assert_eq!(response.headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()), Some("42"));
        assert_eq!(response.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()), Some("application/json"));
        let Some(Body::Text(text)) = response.body else { panic!("a text body") };
        let body: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(body["retryAfter"], 42);
        assert_eq!(body["code"], "RATE_LIMIT_EXCEEDED");
    }

    #[test]
    fn only_an_inactive_session_becomes_a_conflict() {
        let inactive = Refusal::from(ProtocolError::new(ErrorCode::SessionInactive, "ended"));
        assert_eq!(inactive.conflict_if_inactive().status, 409);
        let forbidden = Refusal::from(ProtocolError::new(ErrorCode::Forbidden, "not yours"));
        assert_eq!(forbidden.conflict_if_inactive().status, 403);
    }
}

//! The bodies of the HTTP API's requests and answers (PROTOCOL.md "HTTP API"), as the published
//! OpenAPI document describes them.
//!
//! Every answer is JSON. A session is shown by its public fields ([`SessionView`]), times in
//! milliseconds since the epoch; the speaker's user id and connection ids are never shown. A
//! refusal's body is [`ErrorBody`], except when API Gateway itself refuses before the function
//! runs (the JWT authorizer's 401), which answers [`GatewayRefusal`].

use super::{ErrorCode, ErrorDetails, ProtocolError};
use crate::ids::SessionId;
use crate::model::{BroadcastState, EpochMillis, Session, SessionStatus};
use crate::validation::{LanguageCode, QualityTier};
use serde::{Deserialize, Serialize};

/// `POST /sessions`: the session to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct CreateSessionRequest {
    /// The language the speaker speaks.
    pub source_language: LanguageCode,
    /// `standard` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality_tier: Option<QualityTier>,
}

/// `PATCH /sessions/{id}`: pause or resume the session. Ending is `DELETE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct UpdateSessionRequest {
    pub status: RequestedStatus,
}

/// The statuses a speaker may set: a [`SessionStatus`] other than `ended`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum RequestedStatus {
    /// Resume the broadcast.
    Active,
    /// Pause the broadcast.
    Paused,
}

impl From<RequestedStatus> for SessionStatus {
    fn from(status: RequestedStatus) -> SessionStatus {
        match status {
            RequestedStatus::Active => SessionStatus::Active,
            RequestedStatus::Paused => SessionStatus::Paused,
        }
    }
}

/// A session as anyone may see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub session_id: SessionId,
    pub status: SessionStatus,
    pub source_language: LanguageCode,
    pub quality_tier: QualityTier,
    pub listener_count: u32,
    pub broadcast_state: BroadcastState,
    /// When the session was created, in milliseconds since the epoch.
    pub created_at: EpochMillis,
    /// When the session expires, in milliseconds since the epoch.
    pub expires_at: EpochMillis,
}

impl From<&Session> for SessionView {
    fn from(session: &Session) -> SessionView {
        SessionView {
            session_id: session.session_id.clone(),
            status: session.status,
            source_language: session.source_language,
            quality_tier: session.quality_tier,
            listener_count: session.listener_count,
            broadcast_state: session.broadcast_state,
            created_at: session.created_at.saturating_mul(1000),
            expires_at: session.expires_at.saturating_mul(1000),
        }
    }
}

/// `GET /health`'s answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Health {
    pub status: HealthStatus,
}

/// The only health there is to report: the function answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum HealthStatus {
    Ok,
}

/// A refusal: `{code, message, details?, retryAfter?}`, with the code's HTTP status unless the
/// route documents another. The same body refuses a WebSocket handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// A sentence saying what is wrong.
    pub message: String,
    /// The field at fault, when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<ErrorDetails>,
    /// Seconds until a retry may succeed (rate limits, unavailable dependencies); also sent as
    /// the `Retry-After` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl From<&ProtocolError> for ErrorBody {
    fn from(error: &ProtocolError) -> ErrorBody {
        ErrorBody {
            code: error.code,
            message: error.message.clone(),
            details: error.field.clone().map(|field| ErrorDetails { field }),
            retry_after: error.retry_after,
        }
    }
}

/// API Gateway's own refusal, before any function runs (for example the JWT authorizer's
/// `{"message":"Unauthorized"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GatewayRefusal {
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::error_body;

    #[test]
    fn the_error_body_is_what_refusals_send() {
        for error in [
            ProtocolError::missing("sessionId"),
            ProtocolError::invalid("state.volume", "must be a number"),
            ProtocolError::rate_limited(42),
            ProtocolError::unavailable("slow"),
            ProtocolError::new(ErrorCode::Forbidden, "not yours"),
        ] {
            let typed = serde_json::to_value(ErrorBody::from(&error)).expect("serializes");
            assert_eq!(typed, error_body(&error), "{error}");
        }
    }

    #[test]
    fn a_requested_status_is_a_session_status_other_than_ended() {
        for status in [RequestedStatus::Active, RequestedStatus::Paused] {
            let wire = serde_json::to_value(status).expect("serializes");
            assert_eq!(wire, SessionStatus::from(status).as_str());
        }
        assert!(serde_json::from_value::<RequestedStatus>(serde_json::json!("ended")).is_err());
    }

    #[test]
    fn health_is_ok() {
        let body = serde_json::to_value(Health { status: HealthStatus::Ok }).expect("serializes");
        assert_eq!(body, serde_json::json!({"status": "ok"}));
    }
}

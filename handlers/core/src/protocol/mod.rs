//! What clients and the service say to each other (PROTOCOL.md).
//!
//! - [`client`]: client-to-server messages, selected by `action`, and [`parse_client_frame`],
//!   which turns any raw frame into a message or a precise [`ProtocolError`].
//! - [`server`]: server-to-client messages, tagged by `type`, each sent with a `timestamp`.
//! - [`handshake`]: what a client puts in the `$connect` request (query parameters, header).
//! - [`http`]: the bodies of the HTTP API's requests and answers.
//!
//! With the `schema` feature every wire type also implements `schemars::JsonSchema`; the crate
//! `protocol-docs` builds the published AsyncAPI and OpenAPI documents (`docs/`) from those
//! schemas and the contract. The functions are built without the feature.
//!
//! Times in messages are milliseconds since the epoch (`timestamp`, `createdAt`,
//! `expiresAt`); durations say their unit in their name or docs (`sessionDuration` is in
//! seconds, `retryAfter` in seconds).
//!
//! Where PROTOCOL.md is silent: `connectionRefreshRequired` also carries `connectionId` (the
//! connection being told to refresh), and a listener's new connection passes it to `$connect`
//! as `previousConnectionId` (besides `sessionId` and `targetLanguage`), so that it takes over
//! the old connection's place in the session, even a full one, instead of taking a new one.

pub mod client;
pub mod fields;
pub mod handshake;
pub mod http;
#[cfg(feature = "schema")]
mod schema;
pub mod server;

pub use client::{ChunkId, ClientMessage, parse_client_frame};
pub use fields::Fields;
pub use server::{ServerFrame, ServerMessage};

use serde::{Deserialize, Serialize};
use std::fmt;

/// Every error code of PROTOCOL.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// A required field or parameter is absent (or `null`); `details.field` names it.
    MissingParameter,
    /// A field or parameter breaks its rule (type, format, range); `details.field` names it
    /// and the message says the rule.
    InvalidParameter,
    /// The message or body is not a JSON object.
    InvalidMessage,
    /// The `action` names no action of the API (on the HTTP API: no such route).
    UnknownAction,
    /// A speaker token is required and missing, invalid or expired.
    Unauthorized,
    /// The caller may not do this: not the session's owner, or not the role the action is for.
    Forbidden,
    /// No session has this id (or it has expired).
    SessionNotFound,
    /// The session has ended.
    SessionInactive,
    /// The session has as many listeners as it admits.
    SessionFull,
    /// Too many requests; `retryAfter` says after how many seconds to retry.
    RateLimitExceeded,
    /// The message is over the size limit.
    MessageTooLarge,
    /// The service failed; the request may be retried later.
    InternalError,
    /// A dependency is slow or throttled; retry after `retryAfter` seconds.
    ServiceUnavailable,
}

impl ErrorCode {
    /// Every code, in the order of PROTOCOL.md.
    pub const ALL: [ErrorCode; 13] = [
        ErrorCode::MissingParameter,
        ErrorCode::InvalidParameter,
        ErrorCode::InvalidMessage,
        ErrorCode::UnknownAction,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::SessionNotFound,
        ErrorCode::SessionInactive,
        ErrorCode::SessionFull,
        ErrorCode::RateLimitExceeded,
        ErrorCode::MessageTooLarge,
        ErrorCode::InternalError,
        ErrorCode::ServiceUnavailable,
    ];

    /// The HTTP status for this code on a handshake or an HTTP API response.
    ///
    /// A full session is 403 like an inactive one: the request is well-formed and
    /// authenticated, and the session's state refuses it.
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorCode::MissingParameter
            | ErrorCode::InvalidParameter
            | ErrorCode::InvalidMessage
            | ErrorCode::UnknownAction => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden | ErrorCode::SessionInactive | ErrorCode::SessionFull => 403,
            ErrorCode::SessionNotFound => 404,
            ErrorCode::MessageTooLarge => 413,
            ErrorCode::RateLimitExceeded => 429,
            ErrorCode::InternalError => 500,
            ErrorCode::ServiceUnavailable => 503,
        }
    }

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MissingParameter => "MISSING_PARAMETER",
            ErrorCode::InvalidParameter => "INVALID_PARAMETER",
            ErrorCode::InvalidMessage => "INVALID_MESSAGE",
            ErrorCode::UnknownAction => "UNKNOWN_ACTION",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::SessionNotFound => "SESSION_NOT_FOUND",
            ErrorCode::SessionInactive => "SESSION_INACTIVE",
            ErrorCode::SessionFull => "SESSION_FULL",
            ErrorCode::RateLimitExceeded => "RATE_LIMIT_EXCEEDED",
            ErrorCode::MessageTooLarge => "MESSAGE_TOO_LARGE",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long a client is asked to wait before retrying after `SERVICE_UNAVAILABLE`: long
/// enough for a throttled table to recover its burst, short enough that a listener hardly
/// notices.
pub const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 2;

/// The `details` of a refusal: the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ErrorDetails {
    /// The offending field or parameter, as a dotted path (`state.volume`).
    pub field: String,
}

/// A refusal the client can act on: a code, a sentence, and the field at fault if any.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
    /// The offending field, as a dotted path (`state.volume`).
    pub field: Option<String>,
    /// Seconds until the client may retry (rate limits, unavailable dependencies).
    pub retry_after: Option<u64>,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ProtocolError { code, message: message.into(), field: None, retry_after: None }
    }

    /// A required field is absent (or `null`).
    pub fn missing(field: &str) -> Self {
        ProtocolError {
            field: Some(field.to_owned()),
            ..ProtocolError::new(ErrorCode::MissingParameter, format!("`{field}` is required"))
        }
    }

    /// A field is present but breaks a rule; `rule` says which, for example "must be a string".
    pub fn invalid(field: &str, rule: impl fmt::Display) -> Self {
        ProtocolError {
            field: Some(field.to_owned()),
            ..ProtocolError::new(ErrorCode::InvalidParameter, format!("`{field}` {rule}"))
        }
    }

    /// The client is rate limited for `retry_after` seconds.
    pub fn rate_limited(retry_after: u64) -> Self {
        ProtocolError {
            retry_after: Some(retry_after),
            ..ProtocolError::new(ErrorCode::RateLimitExceeded, format!("too many requests; retry in {retry_after} s"))
        }
    }

    /// A dependency (DynamoDB, Kinesis, the key set) is slow, throttling or down: the client
    /// may retry after [`UNAVAILABLE_RETRY_AFTER_SECONDS`].
    pub fn unavailable(message: impl Into<String>) -> Self {
        ProtocolError {
            retry_after: Some(UNAVAILABLE_RETRY_AFTER_SECONDS),
            ..ProtocolError::new(ErrorCode::ServiceUnavailable, message)
        }
    }

    /// The `error` message that reports this refusal to the client.
    pub fn to_message(&self) -> ServerMessage {
        ServerMessage::Error {
            code: self.code,
            message: self.message.clone(),
            details: self.field.as_ref().map(|field| serde_json::json!({ "field": field })),
            retry_after: self.retry_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_documented() {
        for code in ErrorCode::ALL {
            let wire = serde_json::to_value(code).expect("serializes");
            assert_eq!(wire, code.as_str());
            assert_eq!(serde_json::from_value::<ErrorCode>(wire).ok(), Some(code));
        }
    }

    #[test]
    fn handshake_statuses_follow_protocol_md() {
        assert_eq!(ErrorCode::MissingParameter.http_status(), 400);
        assert_eq!(ErrorCode::InvalidParameter.http_status(), 400);
        assert_eq!(ErrorCode::Unauthorized.http_status(), 401);
        assert_eq!(ErrorCode::Forbidden.http_status(), 403);
        assert_eq!(ErrorCode::SessionInactive.http_status(), 403);
        assert_eq!(ErrorCode::SessionNotFound.http_status(), 404);
        assert_eq!(ErrorCode::RateLimitExceeded.http_status(), 429);
        assert_eq!(ErrorCode::InternalError.http_status(), 500);
        assert_eq!(ErrorCode::ServiceUnavailable.http_status(), 503);
    }

    #[test]
    fn an_error_message_names_the_field_and_the_retry_delay() {
        let message = serde_json::to_value(ProtocolError::invalid("volumeLevel", "must be a number").to_message())
            .expect("serializes");
        assert_eq!(message["type"], "error");
        assert_eq!(message["code"], "INVALID_PARAMETER");
        assert_eq!(message["details"]["field"], "volumeLevel");
        assert!(message.get("retryAfter").is_none());
        let limited = serde_json::to_value(ProtocolError::rate_limited(42).to_message()).expect("serializes");
        assert_eq!(limited["retryAfter"], 42);
        assert_eq!(limited["code"], "RATE_LIMIT_EXCEEDED");
    }
}

//! What a client puts in its WebSocket handshake (the `$connect` request), PROTOCOL.md
//! "Connecting".
//!
//! - A listener: `?sessionId=<id>&targetLanguage=<lang>`, no token. A listener's new connection
//!   that replaces one API Gateway is about to close adds `previousConnectionId`.
//! - A speaker: `?sessionId=<id>&token=<jwt>`, or the token in `Authorization: Bearer <jwt>`
//!   for clients that can set headers (browsers cannot). A speaker may connect without
//!   `sessionId` and then send `createSession`.
//!
//! `targetLanguage` makes the connection a listener's; without it a connection with a valid
//! token is the speaker's. A refused handshake is answered with the HTTP status of its error
//! code ([`super::ErrorCode::http_status`]) and the error body; a browser sees only close
//! code 1006, so the status is for the tools that can see it.

use crate::ids::SessionId;
use crate::validation::LanguageCode;
use serde::{Deserialize, Serialize};

/// The query parameters of the handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct HandshakeQuery {
    /// The session to join (listeners) or broadcast (speakers, who must own it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    /// A listener's language; its presence makes the connection a listener's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_language: Option<LanguageCode>,
    /// A speaker's token (a JWT). An invalid or expired token is refused with 401, never taken
    /// for a listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub token: Option<String>,
    /// A listener's new connection: the `connectionId` of the connection it replaces (from
    /// `sessionJoined` or `connectionRefreshRequired`), whose place in the session it takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_connection_id: Option<String>,
}

/// The headers of the handshake the service reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HandshakeHeaders {
    /// `Bearer <jwt>`: a speaker's token, for clients that can set headers. The `token` query
    /// parameter wins when both are present.
    #[serde(rename = "Authorization", default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = "^[Bb][Ee][Aa][Rr][Ee][Rr] +[^ ]+")))]
    pub authorization: Option<String>,
}

//! Server-to-client messages. Each is sent as a [`ServerFrame`]: the message's fields, its
//! `type`, and the `timestamp` (milliseconds since the epoch) at which it was sent.

use super::ErrorCode;
use crate::ids::SessionId;
use crate::model::{BroadcastState, EpochMillis, Role, SessionStatus};
use crate::validation::{LanguageCode, QualityTier, Volume};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Listeners per target language.
pub type LanguageDistribution = BTreeMap<LanguageCode, u32>;

/// One message from the service.
///
/// The doc comment of each variant is its description in the published AsyncAPI document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum ServerMessage {
    /// To the speaker: the session it asked for with `createSession` exists.
    SessionCreated {
        session_id: SessionId,
        source_language: LanguageCode,
        quality_tier: QualityTier,
        /// This connection's id.
        connection_id: String,
        /// When the session expires, in milliseconds since the epoch.
        expires_at: EpochMillis,
    },
    /// To a listener: it joined the session (`joinSession`; joining again is answered alike).
    SessionJoined {
        session_id: SessionId,
        target_language: LanguageCode,
        source_language: LanguageCode,
        /// This connection's id.
        connection_id: String,
        listener_count: u32,
        quality_tier: QualityTier,
    },
    /// The answer to `heartbeat`.
    HeartbeatAck,
    /// Open a new connection and send `refreshConnection` on it. `connectionId` is this
    /// connection's id: a listener's new connection names it in `previousConnectionId` to take
    /// over this connection's place in the session (so a full session is no obstacle).
    ConnectionRefreshRequired {
        session_id: SessionId,
        role: Role,
        /// A listener's language, to reconnect with.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_language: Option<LanguageCode>,
        /// This connection's id.
        connection_id: String,
    },
    /// API Gateway will close this connection soon (it closes every connection after 2 h):
    /// refresh it now.
    ConnectionWarning {
        /// Minutes until the connection is closed.
        remaining_minutes: u32,
    },
    /// This new connection has taken over the old one's place (`refreshConnection`).
    ConnectionRefreshComplete,
    /// To the speaker: the answer to `getSessionStatus`.
    SessionStatus {
        session_id: SessionId,
        status: SessionStatus,
        listener_count: u32,
        language_distribution: LanguageDistribution,
        /// Seconds since the session was created.
        session_duration: u64,
        broadcast_state: BroadcastState,
        /// When the session was created, in milliseconds since the epoch.
        created_at: EpochMillis,
        /// When the session expires, in milliseconds since the epoch.
        expires_at: EpochMillis,
    },
    /// To every connection of the session: the speaker paused the broadcast.
    BroadcastPaused,
    /// To every connection of the session: the speaker resumed the broadcast.
    BroadcastResumed,
    /// To every connection of the session: the speaker muted the broadcast.
    BroadcastMuted,
    /// To every connection of the session: the speaker unmuted the broadcast.
    BroadcastUnmuted,
    /// To every connection of the session: the speaker set the volume (`setVolume`).
    VolumeChanged { volume_level: Volume },
    /// To every connection of the session: the speaker's state changed (`speakerStateChange`).
    SpeakerStateChanged { state: BroadcastState },
    /// To a listener: it now listens in this language (`changeLanguage`).
    LanguageChanged { target_language: LanguageCode },
    /// To every connection of the session: the session ended; the service then closes the
    /// connection.
    SessionEnded {
        session_id: SessionId,
        /// Why the session ended.
        reason: String,
    },
    /// To the speaker: a listener joined or left.
    ListenerCountChanged { listener_count: u32, language_distribution: LanguageDistribution },
    /// A refusal: what was wrong, and what the client can do about it.
    Error {
        code: ErrorCode,
        /// A sentence saying what is wrong.
        message: String,
        /// The field at fault, when one is.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "schema", schemars(with = "Option<super::ErrorDetails>"))]
        details: Option<serde_json::Value>,
        /// Seconds until a retry may succeed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
}

impl ServerMessage {
    /// The message with its send time, ready to post to a connection.
    pub fn at(self, timestamp: EpochMillis) -> ServerFrame {
        ServerFrame { timestamp, message: self }
    }
}

/// A message as it travels: its fields, `type`, and `timestamp`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ServerFrame {
    /// When the service sent the message, in milliseconds since the epoch.
    pub timestamp: EpochMillis,
    #[serde(flatten)]
    pub message: ServerMessage,
}

impl ServerFrame {
    /// The message's `type`, as clients see it (for logs).
    pub fn kind(&self) -> String {
        serde_json::to_value(&self.message)
            .ok()
            .and_then(|value| value.get("type").and_then(serde_json::Value::as_str).map(str::to_owned))
            .unwrap_or_default()
    }

    /// The frame as JSON text.
    pub fn to_json_string(&self) -> String {
        // Serializing these types cannot fail: every map key is a string.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

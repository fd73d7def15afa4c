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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum ServerMessage {
    SessionCreated {
        session_id: SessionId,
        source_language: LanguageCode,
        quality_tier: QualityTier,
        connection_id: String,
        expires_at: EpochMillis,
    },
    SessionJoined {
        session_id: SessionId,
        target_language: LanguageCode,
        source_language: LanguageCode,
        connection_id: String,
        listener_count: u32,
        quality_tier: QualityTier,
    },
    HeartbeatAck,
    /// Open a new connection and send `refreshConnection` on it. `connectionId` is this
    /// connection's id: a listener's new connection names it in `previousConnectionId` to take
    /// over this connection's place in the session (so a full session is no obstacle).
    ConnectionRefreshRequired {
        session_id: SessionId,
        role: Role,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_language: Option<LanguageCode>,
        connection_id: String,
    },
    ConnectionWarning {
        remaining_minutes: u32,
    },
    ConnectionRefreshComplete,
    SessionStatus {
        session_id: SessionId,
        status: SessionStatus,
        listener_count: u32,
        language_distribution: LanguageDistribution,
        /// Seconds since the session was created.
        session_duration: u64,
        broadcast_state: BroadcastState,
        created_at: EpochMillis,
        expires_at: EpochMillis,
    },
    BroadcastPaused,
    BroadcastResumed,
    BroadcastMuted,
    BroadcastUnmuted,
    VolumeChanged {
        volume_level: Volume,
    },
    SpeakerStateChanged {
        state: BroadcastState,
    },
    LanguageChanged {
        target_language: LanguageCode,
    },
    SessionEnded {
        session_id: SessionId,
        reason: String,
    },
    ListenerCountChanged {
        listener_count: u32,
        language_distribution: LanguageDistribution,
    },
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
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
pub struct ServerFrame {
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

//! Client-to-server messages and the one parser every frame goes through.
//!
//! The parser is written by hand rather than derived so that each refusal is exact:
//! a frame over the size limit is `MESSAGE_TOO_LARGE`; a frame that is not a JSON object is
//! `INVALID_MESSAGE`; an object without `action` is `MISSING_PARAMETER` (field `action`); an
//! action no route serves is `UNKNOWN_ACTION`; a missing or `null` required field is
//! `MISSING_PARAMETER` naming it; a field of the wrong type or breaking a rule is
//! `INVALID_PARAMETER` naming it and the rule. Unknown extra fields are ignored, so clients
//! can add fields without breaking older services.
//!
//! A refusal that quotes what the client sent (the name of an unknown action) quotes at most
//! [`MAX_ECHO_CHARS`] characters of it, cut on a character boundary and marked with `…`, so a
//! client cannot make the service echo an arbitrarily long string back.

use super::fields::Fields;
use super::{ErrorCode, ProtocolError};
use crate::ids::SessionId;
use crate::model::{BroadcastState, Role};
use crate::validation::{LanguageCode, QualityTier, Volume, check_message_size};
use base64::Engine as _;
use contract::{ACTION_FIELD, Action};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The longest `reason` an `endSession` may carry, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// The longest textual `chunkId`, in characters.
pub const MAX_CHUNK_ID_CHARS: usize = 128;
/// The most characters of a client's value a refusal quotes back.
pub const MAX_ECHO_CHARS: usize = 64;

/// One message from a client.
///
/// The message is read by [`parse_client_frame`] and written by [`ClientMessage::to_json`],
/// not by serde. With the `schema` feature its JSON Schema is derived from the same shape
/// (`action` as the tag, fields in camelCase); the doc comment of each variant is its
/// description in the published AsyncAPI document, and `protocol-docs` tests that the schema
/// and the parser agree on every field.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(tag = "action", rename_all = "camelCase", rename_all_fields = "camelCase")
)]
pub enum ClientMessage {
    /// Speaker, connected without a session: create one; answered with `sessionCreated`.
    CreateSession {
        source_language: LanguageCode,
        /// `standard` when absent.
        quality_tier: Option<QualityTier>,
    },
    /// Listener: join a session; answered with `sessionJoined` (joining again is answered alike).
    JoinSession { session_id: SessionId, target_language: LanguageCode },
    /// Anyone, every 30 s: keeps the connection open; answered with `heartbeatAck`, and near the
    /// connection's 2-hour limit also with `connectionRefreshRequired` or `connectionWarning`.
    Heartbeat {
        /// The client's clock, in milliseconds since the epoch.
        timestamp: Option<u64>,
    },
    /// Anyone, on a new connection: take over the old connection's place in the session;
    /// answered with `connectionRefreshComplete`, and the old connection closes.
    RefreshConnection { session_id: SessionId, role: Role },
    /// Speaker: answered with `sessionStatus`.
    GetSessionStatus,
    /// Speaker: every connection of the session is told `broadcastPaused`.
    PauseBroadcast,
    /// Speaker: every connection of the session is told `broadcastResumed`.
    ResumeBroadcast,
    /// Speaker: every connection of the session is told `broadcastMuted`.
    MuteBroadcast,
    /// Speaker: every connection of the session is told `broadcastUnmuted`.
    UnmuteBroadcast,
    /// Speaker: every connection of the session is told `volumeChanged`.
    SetVolume { volume_level: Volume },
    /// Speaker: every connection of the session is told `speakerStateChanged`.
    SpeakerStateChange { state: BroadcastState },
    /// Listener: listen in another language; answered with `languageChanged`. `switchLanguage`
    /// is an alias.
    ChangeLanguage { target_language: LanguageCode },
    /// Speaker: end the session; every connection is told `sessionEnded` and closed.
    EndSession {
        /// Why, as the listeners are told.
        #[cfg_attr(feature = "schema", schemars(length(max = MAX_REASON_CHARS)))]
        reason: Option<String>,
    },
    /// Speaker: a chunk of audio for the session's audio stream; answered only with an `error`.
    SendAudio {
        /// 16 kHz mono 16-bit little-endian PCM, base64-encoded (standard alphabet, padded):
        /// whole samples, not empty.
        #[cfg_attr(
            feature = "schema",
            schemars(with = "String", length(min = 4), extend("contentEncoding" = "base64"))
        )]
        audio_data: Vec<u8>,
        chunk_id: ChunkId,
        /// When the chunk was recorded, in milliseconds since the epoch.
        timestamp: u64,
    },
}

/// A client's label for an audio chunk: a sequence number or a short string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum ChunkId {
    Number(u64),
    Text(#[cfg_attr(feature = "schema", schemars(length(min = 1, max = MAX_CHUNK_ID_CHARS)))] String),
}

impl ClientMessage {
    /// The action this message is.
    pub fn action(&self) -> Action {
        match self {
            ClientMessage::CreateSession { .. } => Action::CreateSession,
            ClientMessage::JoinSession { .. } => Action::JoinSession,
            ClientMessage::Heartbeat { .. } => Action::Heartbeat,
            ClientMessage::RefreshConnection { .. } => Action::RefreshConnection,
            ClientMessage::GetSessionStatus => Action::GetSessionStatus,
            ClientMessage::PauseBroadcast => Action::PauseBroadcast,
            ClientMessage::ResumeBroadcast => Action::ResumeBroadcast,
            ClientMessage::MuteBroadcast => Action::MuteBroadcast,
            ClientMessage::UnmuteBroadcast => Action::UnmuteBroadcast,
            ClientMessage::SetVolume { .. } => Action::SetVolume,
            ClientMessage::SpeakerStateChange { .. } => Action::SpeakerStateChange,
            ClientMessage::ChangeLanguage { .. } => Action::ChangeLanguage,
            ClientMessage::EndSession { .. } => Action::EndSession,
            ClientMessage::SendAudio { .. } => Action::SendAudio,
        }
    }

    /// The message as a client would send it (canonical action names, optional fields
    /// omitted when absent).
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert(ACTION_FIELD.to_owned(), Value::from(self.action().name()));
        let mut put = |key: &str, value: Value| {
            object.insert(key.to_owned(), value);
        };
        match self {
            ClientMessage::CreateSession { source_language, quality_tier } => {
                put("sourceLanguage", json(source_language));
                if let Some(tier) = quality_tier {
                    put("qualityTier", json(tier));
                }
            }
            ClientMessage::JoinSession { session_id, target_language } => {
                put("sessionId", json(session_id));
                put("targetLanguage", json(target_language));
            }
            ClientMessage::Heartbeat { timestamp } => {
                if let Some(timestamp) = timestamp {
                    put("timestamp", Value::from(*timestamp));
                }
            }
            ClientMessage::RefreshConnection { session_id, role } => {
                put("sessionId", json(session_id));
                put("role", json(role));
            }
            ClientMessage::GetSessionStatus
            | ClientMessage::PauseBroadcast
            | ClientMessage::ResumeBroadcast
            | ClientMessage::MuteBroadcast
            | ClientMessage::UnmuteBroadcast => {}
            ClientMessage::SetVolume { volume_level } => put("volumeLevel", json(volume_level)),
            ClientMessage::SpeakerStateChange { state } => put("state", json(state)),
            ClientMessage::ChangeLanguage { target_language } => {
                put("targetLanguage", json(target_language));
            }
            ClientMessage::EndSession { reason } => {
                if let Some(reason) = reason {
                    put("reason", Value::from(reason.as_str()));
                }
            }
            ClientMessage::SendAudio { audio_data, chunk_id, timestamp } => {
                put("audioData", Value::from(base64::engine::general_purpose::STANDARD.encode(audio_data)));
                put("chunkId", json(chunk_id));
                put("timestamp", Value::from(*timestamp));
            }
        }
        Value::Object(object)
    }
}

fn json(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Parses one raw WebSocket frame into a message, or says exactly what is wrong with it.
pub fn parse_client_frame(frame: &str, size_limit: usize) -> Result<ClientMessage, ProtocolError> {
    check_message_size(frame, size_limit)
        .map_err(|too_large| ProtocolError::new(ErrorCode::MessageTooLarge, too_large.to_string()))?;
    let value: Value = serde_json::from_str(frame).map_err(|error| {
        ProtocolError::new(ErrorCode::InvalidMessage, format!("the message is not valid JSON ({error})"))
    })?;
    let Value::Object(object) = value else {
        return Err(ProtocolError::new(
            ErrorCode::InvalidMessage,
            format!("the message must be a JSON object with an `{ACTION_FIELD}` field"),
        ));
    };
    let fields = Fields::new(&object);
    let action_name = fields.required_str(ACTION_FIELD)?;
    let action = Action::from_route_key(action_name).ok_or_else(|| {
        let known: Vec<&str> = Action::all_route_keys().collect();
        ProtocolError::new(
            ErrorCode::UnknownAction,
            format!("unknown action \"{}\"; known actions: {}", echo(action_name), known.join(", ")),
        )
    })?;
    parse_action(action, &fields)
}

/// `value` as a refusal may quote it: whole if it has at most [`MAX_ECHO_CHARS`] characters,
/// else its first [`MAX_ECHO_CHARS`] characters followed by `…`.
pub fn echo(value: &str) -> String {
    match value.char_indices().nth(MAX_ECHO_CHARS) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_owned(),
    }
}

fn parse_action(action: Action, fields: &Fields<'_>) -> Result<ClientMessage, ProtocolError> {
    Ok(match action {
        Action::CreateSession => ClientMessage::CreateSession {
            source_language: fields.required("sourceLanguage", LanguageCode::parse)?,
            quality_tier: fields.optional("qualityTier", QualityTier::parse)?,
        },
        Action::JoinSession => ClientMessage::JoinSession {
            session_id: fields.required("sessionId", SessionId::parse)?,
            target_language: fields.required("targetLanguage", LanguageCode::parse)?,
        },
        Action::Heartbeat => ClientMessage::Heartbeat { timestamp: fields.optional_u64("timestamp")? },
        Action::RefreshConnection => ClientMessage::RefreshConnection {
            session_id: fields.required("sessionId", SessionId::parse)?,
            role: fields.required("role", |value| Role::parse(value).ok_or("must be \"speaker\" or \"listener\""))?,
        },
        Action::GetSessionStatus => ClientMessage::GetSessionStatus,
        Action::PauseBroadcast => ClientMessage::PauseBroadcast,
        Action::ResumeBroadcast => ClientMessage::ResumeBroadcast,
        Action::MuteBroadcast => ClientMessage::MuteBroadcast,
        Action::UnmuteBroadcast => ClientMessage::UnmuteBroadcast,
        Action::SetVolume => ClientMessage::SetVolume { volume_level: fields.required_volume("volumeLevel")? },
        Action::SpeakerStateChange => {
            let state = fields.required_object("state")?;
            ClientMessage::SpeakerStateChange {
                state: BroadcastState {
                    is_paused: state.required_bool("isPaused")?,
                    is_muted: state.required_bool("isMuted")?,
                    volume: state.required_volume("volume")?,
                },
            }
        }
        Action::ChangeLanguage => {
            ClientMessage::ChangeLanguage { target_language: fields.required("targetLanguage", LanguageCode::parse)? }
        }
        Action::EndSession => ClientMessage::EndSession {
            reason: fields.optional("reason", |reason| {
                if reason.chars().count() > MAX_REASON_CHARS {
                    Err(format!("must be at most {MAX_REASON_CHARS} characters"))
                } else {
                    Ok(reason.to_owned())
                }
            })?,
        },
        Action::SendAudio => ClientMessage::SendAudio {
            audio_data: fields.required("audioData", decode_pcm)?,
            chunk_id: fields.required_chunk_id("chunkId")?,
            timestamp: fields.required_u64("timestamp")?,
        },
    })
}

fn decode_pcm(data: &str) -> Result<Vec<u8>, &'static str> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(data).map_err(|_| "must be standard base64")?;
    if bytes.is_empty() {
        return Err("must not be empty");
    }
    if bytes.len() % 2 != 0 {
        return Err("must hold whole 16-bit samples (an even number of bytes)");
    }
    Ok(bytes)
}

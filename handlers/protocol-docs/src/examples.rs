//! One example of every message, shown in the AsyncAPI document (each message's `examples`,
//! which the AsyncAPI parser checks against the message's schema) and used by the tests.
//!
//! The lists are complete by construction: each comes from a `match` over its enum's
//! variants, so a new variant does not compile until it has an example.

use session_core::ids::SessionId;
use session_core::model::{BroadcastState, Role, SessionStatus};
use session_core::protocol::{ChunkId, ClientMessage, ErrorCode, ProtocolError, ServerFrame, ServerMessage};
use session_core::validation::{LanguageCode, QualityTier, Volume};

/// The time every example is sent at (milliseconds since the epoch), so the documents are the
/// same on every run.
pub const EXAMPLE_TIME: i64 = 1_795_633_281_000;

fn session_id() -> SessionId {
    SessionId::parse("quiet-harbor-417").unwrap_or_else(|_| unreachable!("a valid example id"))
}

fn language(code: &str) -> LanguageCode {
    LanguageCode::parse(code).unwrap_or_else(|_| unreachable!("a valid example language"))
}

fn half() -> Volume {
    Volume::new(0.5).unwrap_or_else(|_| unreachable!("a valid example volume"))
}

/// A message of each variant, in declaration order.
pub fn client_messages() -> Vec<ClientMessage> {
    let variants = [
        ClientMessage::CreateSession { source_language: language("en"), quality_tier: Some(QualityTier::Premium) },
        ClientMessage::JoinSession { session_id: session_id(), target_language: language("de") },
        ClientMessage::Heartbeat { timestamp: Some(EXAMPLE_TIME as u64) },
        ClientMessage::RefreshConnection { session_id: session_id(), role: Role::Listener },
        ClientMessage::GetSessionStatus,
        ClientMessage::PauseBroadcast,
        ClientMessage::ResumeBroadcast,
        ClientMessage::MuteBroadcast,
        ClientMessage::UnmuteBroadcast,
        ClientMessage::SetVolume { volume_level: half() },
        ClientMessage::SpeakerStateChange {
            state: BroadcastState { is_paused: false, is_muted: true, volume: half() },
        },
        ClientMessage::ChangeLanguage { target_language: language("fr") },
        ClientMessage::EndSession { reason: Some("the talk is over".into()) },
        ClientMessage::SendAudio {
            audio_data: vec![0, 0, 255, 127],
            chunk_id: ChunkId::Number(42),
            timestamp: EXAMPLE_TIME as u64,
        },
    ];
    // A new variant must be added above: this match does not compile until it is listed.
    for message in &variants {
        match message {
            ClientMessage::CreateSession { .. }
            | ClientMessage::JoinSession { .. }
            | ClientMessage::Heartbeat { .. }
            | ClientMessage::RefreshConnection { .. }
            | ClientMessage::GetSessionStatus
            | ClientMessage::PauseBroadcast
            | ClientMessage::ResumeBroadcast
            | ClientMessage::MuteBroadcast
            | ClientMessage::UnmuteBroadcast
            | ClientMessage::SetVolume { .. }
            | ClientMessage::SpeakerStateChange { .. }
            | ClientMessage::ChangeLanguage { .. }
            | ClientMessage::EndSession { .. }
            | ClientMessage::SendAudio { .. } => {}
        }
    }
    variants.into()
}

/// A frame of each message variant, in declaration order, sent at [`EXAMPLE_TIME`].
pub fn server_frames() -> Vec<ServerFrame> {
    let distribution = [(language("de"), 2), (language("fr"), 1)].into();
    let state = BroadcastState { is_paused: false, is_muted: false, volume: half() };
    let variants = [
        ServerMessage::SessionCreated {
            session_id: session_id(),
            source_language: language("en"),
            quality_tier: QualityTier::Standard,
            connection_id: "L0SM9cOFvHcCIhw=".into(),
            expires_at: EXAMPLE_TIME + 12 * 3_600_000,
        },
        ServerMessage::SessionJoined {
            session_id: session_id(),
            target_language: language("de"),
            source_language: language("en"),
            connection_id: "L0SNbdXAvHcCF2g=".into(),
            listener_count: 3,
            quality_tier: QualityTier::Standard,
        },
        ServerMessage::HeartbeatAck,
        ServerMessage::ConnectionRefreshRequired {
            session_id: session_id(),
            role: Role::Listener,
            target_language: Some(language("de")),
            connection_id: "L0SNbdXAvHcCF2g=".into(),
        },
        ServerMessage::ConnectionWarning { remaining_minutes: 15 },
        ServerMessage::ConnectionRefreshComplete,
        ServerMessage::SessionStatus {
            session_id: session_id(),
            status: SessionStatus::Active,
            listener_count: 3,
            language_distribution: distribution,
            session_duration: 1_800,
            broadcast_state: state,
            created_at: EXAMPLE_TIME - 1_800_000,
            expires_at: EXAMPLE_TIME + 12 * 3_600_000,
        },
        ServerMessage::BroadcastPaused,
        ServerMessage::BroadcastResumed,
        ServerMessage::BroadcastMuted,
        ServerMessage::BroadcastUnmuted,
        ServerMessage::VolumeChanged { volume_level: half() },
        ServerMessage::SpeakerStateChanged { state },
        ServerMessage::LanguageChanged { target_language: language("fr") },
        ServerMessage::SessionEnded { session_id: session_id(), reason: "the talk is over".into() },
        ServerMessage::ListenerCountChanged {
            listener_count: 3,
            language_distribution: [(language("de"), 2), (language("fr"), 1)].into(),
        },
        ProtocolError::invalid("volumeLevel", "must be a number from 0.0 to 1.0").to_message(),
    ];
    // A new variant must be added above: this match does not compile until it is listed.
    for message in &variants {
        match message {
            ServerMessage::SessionCreated { .. }
            | ServerMessage::SessionJoined { .. }
            | ServerMessage::HeartbeatAck
            | ServerMessage::ConnectionRefreshRequired { .. }
            | ServerMessage::ConnectionWarning { .. }
            | ServerMessage::ConnectionRefreshComplete
            | ServerMessage::SessionStatus { .. }
            | ServerMessage::BroadcastPaused
            | ServerMessage::BroadcastResumed
            | ServerMessage::BroadcastMuted
            | ServerMessage::BroadcastUnmuted
            | ServerMessage::VolumeChanged { .. }
            | ServerMessage::SpeakerStateChanged { .. }
            | ServerMessage::LanguageChanged { .. }
            | ServerMessage::SessionEnded { .. }
            | ServerMessage::ListenerCountChanged { .. }
            | ServerMessage::Error { .. } => {}
        }
    }
    variants.into_iter().map(|message| message.at(EXAMPLE_TIME)).collect()
}

/// An error refusal, as the HTTP API and a refused handshake send it.
pub fn refusal() -> ProtocolError {
    ProtocolError::new(ErrorCode::SessionNotFound, "no session quiet-harbor-417")
}

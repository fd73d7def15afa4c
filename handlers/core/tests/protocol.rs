//! The protocol's parser and messages: every action round-trips, every server message
//! round-trips, and bad frames are refused with their exact code and field.

use contract::Action;
use serde_json::json;
use session_core::ids::SessionId;
use session_core::model::{BroadcastState, Role, SessionStatus};
use session_core::protocol::{ChunkId, ClientMessage, ErrorCode, ServerFrame, ServerMessage, parse_client_frame};
use session_core::validation::{LanguageCode, MAX_MESSAGE_BYTES, QualityTier, Volume};
use std::collections::BTreeSet;

fn lang(code: &str) -> LanguageCode {
    LanguageCode::parse(code).expect("test language")
}

fn session() -> SessionId {
    SessionId::parse("quiet-harbor-417").expect("test id")
}

fn volume(level: f64) -> Volume {
    Volume::new(level).expect("test volume")
}

fn one_of_each_client_message() -> Vec<ClientMessage> {
    vec![
        ClientMessage::CreateSession { source_language: lang("en"), quality_tier: None },
        ClientMessage::CreateSession { source_language: lang("en"), quality_tier: Some(QualityTier::Premium) },
        ClientMessage::JoinSession { session_id: session(), target_language: lang("de") },
        ClientMessage::Heartbeat { timestamp: None },
        ClientMessage::Heartbeat { timestamp: Some(1_764_000_000_000) },
        ClientMessage::RefreshConnection { session_id: session(), role: Role::Speaker },
        ClientMessage::RefreshConnection { session_id: session(), role: Role::Listener },
        ClientMessage::GetSessionStatus,
        ClientMessage::PauseBroadcast,
        ClientMessage::ResumeBroadcast,
        ClientMessage::MuteBroadcast,
        ClientMessage::UnmuteBroadcast,
        ClientMessage::SetVolume { volume_level: volume(0.25) },
        ClientMessage::SpeakerStateChange {
            state: BroadcastState { is_paused: true, is_muted: false, volume: volume(0.5) },
        },
        ClientMessage::ChangeLanguage { target_language: lang("fr") },
        ClientMessage::EndSession { reason: None },
        ClientMessage::EndSession { reason: Some("thanks for listening".into()) },
        ClientMessage::SendAudio { audio_data: vec![0, 1, 2, 3], chunk_id: ChunkId::Number(7), timestamp: 5 },
        ClientMessage::SendAudio { audio_data: vec![9, 9], chunk_id: ChunkId::Text("c-8".into()), timestamp: 6 },
    ]
}

#[test]
fn every_action_round_trips_through_the_parser() {
    let messages = one_of_each_client_message();
    let covered: BTreeSet<Action> = messages.iter().map(ClientMessage::action).collect();
    assert_eq!(covered, Action::ALL.into_iter().collect(), "an action has no round-trip case");
    for message in messages {
        let frame = message.to_json().to_string();
        assert_eq!(parse_client_frame(&frame, MAX_MESSAGE_BYTES), Ok(message), "{frame}");
    }
}

#[test]
fn switch_language_is_parsed_as_change_language() {
    let parsed = parse_client_frame(r#"{"action":"switchLanguage","targetLanguage":"es"}"#, MAX_MESSAGE_BYTES);
    assert_eq!(parsed, Ok(ClientMessage::ChangeLanguage { target_language: lang("es") }));
}

#[test]
fn unknown_fields_and_null_optionals_are_accepted() {
    let parsed = parse_client_frame(
        r#"{"action":"createSession","sourceLanguage":"en","qualityTier":null,"client":"web/1.2"}"#,
        MAX_MESSAGE_BYTES,
    );
    assert_eq!(parsed, Ok(ClientMessage::CreateSession { source_language: lang("en"), quality_tier: None }));
}

fn one_of_each_server_message() -> Vec<ServerMessage> {
    let distribution = [(lang("de"), 3), (lang("fr"), 1)].into_iter().collect();
    vec![
        ServerMessage::SessionCreated {
            session_id: session(),
            source_language: lang("en"),
            quality_tier: QualityTier::Standard,
            connection_id: "abc=".into(),
            expires_at: 1_764_000_000_000,
        },
        ServerMessage::SessionJoined {
            session_id: session(),
            target_language: lang("de"),
            source_language: lang("en"),
            connection_id: "def=".into(),
            listener_count: 4,
            quality_tier: QualityTier::Premium,
        },
        ServerMessage::HeartbeatAck,
        ServerMessage::ConnectionRefreshRequired {
            session_id: session(),
            role: Role::Listener,
            target_language: Some(lang("de")),
            connection_id: "ghi=".into(),
        },
        ServerMessage::ConnectionRefreshRequired {
            session_id: session(),
            role: Role::Speaker,
            target_language: None,
            connection_id: "jkl=".into(),
        },
        ServerMessage::ConnectionWarning { remaining_minutes: 15 },
        ServerMessage::ConnectionRefreshComplete,
        ServerMessage::SessionStatus {
            session_id: session(),
            status: SessionStatus::Paused,
            listener_count: 4,
            language_distribution: distribution,
            session_duration: 600,
            broadcast_state: BroadcastState::default(),
            created_at: 1_763_999_400_000,
            expires_at: 1_764_000_000_000,
        },
        ServerMessage::BroadcastPaused,
        ServerMessage::BroadcastResumed,
        ServerMessage::BroadcastMuted,
        ServerMessage::BroadcastUnmuted,
        ServerMessage::VolumeChanged { volume_level: volume(0.75) },
        ServerMessage::SpeakerStateChanged {
            state: BroadcastState { is_paused: false, is_muted: true, volume: volume(0.0) },
        },
        ServerMessage::LanguageChanged { target_language: lang("it") },
        ServerMessage::SessionEnded { session_id: session(), reason: "speakerEnded".into() },
        ServerMessage::ListenerCountChanged { listener_count: 0, language_distribution: Default::default() },
        ServerMessage::Error {
            code: ErrorCode::RateLimitExceeded,
            message: "slow down".into(),
            details: Some(json!({"field": "x"})),
            retry_after: Some(30),
        },
    ]
}

#[test]
fn every_server_message_round_trips_with_type_and_timestamp() {
    for message in one_of_each_server_message() {
        let frame = message.clone().at(1_764_000_000_123);
        let text = frame.to_json_string();
        let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(value["timestamp"], 1_764_000_000_123_i64, "{text}");
        assert!(value["type"].is_string(), "{text}");
        let back: ServerFrame = serde_json::from_str(&text).expect("parses back");
        assert_eq!(back.message, message);
    }
}

#[test]
fn server_messages_use_the_documented_wire_names() {
    let text = one_of_each_server_message()[7].clone().at(1).to_json_string();
    let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(value["type"], "sessionStatus");
    assert_eq!(value["sessionId"], "quiet-harbor-417");
    assert_eq!(value["status"], "paused");
    assert_eq!(value["languageDistribution"], json!({"de": 3, "fr": 1}));
    assert_eq!(value["broadcastState"], json!({"isPaused": false, "isMuted": false, "volume": 1.0}));
    assert_eq!(value["sessionDuration"], 600);
    let joined = one_of_each_server_message()[1].clone().at(1).to_json_string();
    let value: serde_json::Value = serde_json::from_str(&joined).expect("valid JSON");
    assert_eq!(value["type"], "sessionJoined");
    assert_eq!(value["qualityTier"], "premium");
    assert_eq!(value["listenerCount"], 4);
}

/// One bad frame, the code it must produce, and the field it must name (if any).
struct Bad {
    frame: String,
    code: ErrorCode,
    field: Option<&'static str>,
}

fn bad(frame: impl Into<String>, code: ErrorCode, field: Option<&'static str>) -> Bad {
    Bad { frame: frame.into(), code, field }
}

fn bad_frames() -> Vec<Bad> {
    use ErrorCode::*;
    let audio = |data: &str| format!(r#"{{"action":"sendAudio","audioData":"{data}","chunkId":1,"timestamp":1}}"#);
    vec![
        // Not a JSON object.
        bad("", InvalidMessage, None),
        bad("hello", InvalidMessage, None),
        bad("{", InvalidMessage, None),
        bad(r#"{"action":"heartbeat",}"#, InvalidMessage, None),
        bad("[]", InvalidMessage, None),
        bad(r#"["heartbeat"]"#, InvalidMessage, None),
        bad("42", InvalidMessage, None),
        bad("null", InvalidMessage, None),
        bad(r#""heartbeat""#, InvalidMessage, None),
        // The action itself.
        bad("{}", MissingParameter, Some("action")),
        bad(r#"{"action":null}"#, MissingParameter, Some("action")),
        bad(r#"{"action":5}"#, InvalidParameter, Some("action")),
        bad(r#"{"action":["heartbeat"]}"#, InvalidParameter, Some("action")),
        bad(r#"{"action":"dance"}"#, UnknownAction, None),
        bad(r#"{"action":""}"#, UnknownAction, None),
        bad(r#"{"action":"Heartbeat"}"#, UnknownAction, None),
        bad(r#"{"action":"$default"}"#, UnknownAction, None),
        bad(r#"{"action":"$connect"}"#, UnknownAction, None),
        // createSession.
        bad(r#"{"action":"createSession"}"#, MissingParameter, Some("sourceLanguage")),
        bad(r#"{"action":"createSession","sourceLanguage":"english"}"#, InvalidParameter, Some("sourceLanguage")),
        bad(r#"{"action":"createSession","sourceLanguage":"xx"}"#, InvalidParameter, Some("sourceLanguage")),
        bad(r#"{"action":"createSession","sourceLanguage":"EN"}"#, InvalidParameter, Some("sourceLanguage")),
        bad(r#"{"action":"createSession","sourceLanguage":7}"#, InvalidParameter, Some("sourceLanguage")),
        bad(
            r#"{"action":"createSession","sourceLanguage":"en","qualityTier":"gold"}"#,
            InvalidParameter,
            Some("qualityTier"),
        ),
        bad(
            r#"{"action":"createSession","sourceLanguage":"en","qualityTier":1}"#,
            InvalidParameter,
            Some("qualityTier"),
        ),
        // joinSession.
        bad(r#"{"action":"joinSession","targetLanguage":"de"}"#, MissingParameter, Some("sessionId")),
        bad(r#"{"action":"joinSession","sessionId":"quiet-harbor-417"}"#, MissingParameter, Some("targetLanguage")),
        bad(
            r#"{"action":"joinSession","sessionId":"quiet-harbor","targetLanguage":"de"}"#,
            InvalidParameter,
            Some("sessionId"),
        ),
        bad(
            r#"{"action":"joinSession","sessionId":"quiet-harbor-017","targetLanguage":"de"}"#,
            InvalidParameter,
            Some("sessionId"),
        ),
        bad(
            r#"{"action":"joinSession","sessionId":"quiet-harbor-417","targetLanguage":"d"}"#,
            InvalidParameter,
            Some("targetLanguage"),
        ),
        // heartbeat.
        bad(r#"{"action":"heartbeat","timestamp":"now"}"#, InvalidParameter, Some("timestamp")),
        bad(r#"{"action":"heartbeat","timestamp":-1}"#, InvalidParameter, Some("timestamp")),
        bad(r#"{"action":"heartbeat","timestamp":1.5}"#, InvalidParameter, Some("timestamp")),
        // refreshConnection.
        bad(r#"{"action":"refreshConnection","role":"speaker"}"#, MissingParameter, Some("sessionId")),
        bad(r#"{"action":"refreshConnection","sessionId":"quiet-harbor-417"}"#, MissingParameter, Some("role")),
        bad(
            r#"{"action":"refreshConnection","sessionId":"quiet-harbor-417","role":"admin"}"#,
            InvalidParameter,
            Some("role"),
        ),
        // setVolume.
        bad(r#"{"action":"setVolume"}"#, MissingParameter, Some("volumeLevel")),
        bad(r#"{"action":"setVolume","volumeLevel":1.5}"#, InvalidParameter, Some("volumeLevel")),
        bad(r#"{"action":"setVolume","volumeLevel":-0.1}"#, InvalidParameter, Some("volumeLevel")),
        bad(r#"{"action":"setVolume","volumeLevel":"0.5"}"#, InvalidParameter, Some("volumeLevel")),
        // speakerStateChange.
        bad(r#"{"action":"speakerStateChange"}"#, MissingParameter, Some("state")),
        bad(r#"{"action":"speakerStateChange","state":true}"#, InvalidParameter, Some("state")),
        bad(
            r#"{"action":"speakerStateChange","state":{"isMuted":false,"volume":1}}"#,
            MissingParameter,
            Some("state.isPaused"),
        ),
        bad(
            r#"{"action":"speakerStateChange","state":{"isPaused":"no","isMuted":false,"volume":1}}"#,
            InvalidParameter,
            Some("state.isPaused"),
        ),
        bad(
            r#"{"action":"speakerStateChange","state":{"isPaused":false,"isMuted":false,"volume":2}}"#,
            InvalidParameter,
            Some("state.volume"),
        ),
        // changeLanguage and its alias.
        bad(r#"{"action":"changeLanguage"}"#, MissingParameter, Some("targetLanguage")),
        bad(r#"{"action":"switchLanguage","targetLanguage":"zz"}"#, InvalidParameter, Some("targetLanguage")),
        // endSession.
        bad(r#"{"action":"endSession","reason":5}"#, InvalidParameter, Some("reason")),
        bad(format!(r#"{{"action":"endSession","reason":"{}"}}"#, "x".repeat(501)), InvalidParameter, Some("reason")),
        // sendAudio.
        bad(r#"{"action":"sendAudio","chunkId":1,"timestamp":1}"#, MissingParameter, Some("audioData")),
        bad(r#"{"action":"sendAudio","audioData":"AAAAAA==","timestamp":1}"#, MissingParameter, Some("chunkId")),
        bad(r#"{"action":"sendAudio","audioData":"AAAAAA==","chunkId":1}"#, MissingParameter, Some("timestamp")),
        bad(audio("not base64!"), InvalidParameter, Some("audioData")),
        bad(audio(""), InvalidParameter, Some("audioData")),
        bad(audio("AAAA"), InvalidParameter, Some("audioData")),
        bad(
            r#"{"action":"sendAudio","audioData":"AAAAAA==","chunkId":-3,"timestamp":1}"#,
            InvalidParameter,
            Some("chunkId"),
        ),
        bad(
            r#"{"action":"sendAudio","audioData":"AAAAAA==","chunkId":"","timestamp":1}"#,
            InvalidParameter,
            Some("chunkId"),
        ),
        bad(
            r#"{"action":"sendAudio","audioData":"AAAAAA==","chunkId":{},"timestamp":1}"#,
            InvalidParameter,
            Some("chunkId"),
        ),
        // Size.
        bad(format!(r#"{{"action":"heartbeat","pad":"{}"}}"#, "x".repeat(MAX_MESSAGE_BYTES)), MessageTooLarge, None),
    ]
}

#[test]
fn bad_frames_are_refused_with_their_exact_code_and_field() {
    let cases = bad_frames();
    assert!(cases.len() >= 30);
    for case in &cases {
        let error = parse_client_frame(&case.frame, MAX_MESSAGE_BYTES)
            .expect_err(&format!("accepted a bad frame: {}", &case.frame[..case.frame.len().min(120)]));
        assert_eq!(error.code, case.code, "{}: {}", case.frame, error.message);
        assert_eq!(error.field.as_deref(), case.field, "{}: {}", case.frame, error.message);
        if let Some(field) = case.field {
            assert!(error.message.contains(field), "the message names the field: {}", error.message);
        }
    }
}

#[test]
fn every_parser_error_code_is_produced_by_a_bad_frame() {
    let produced: BTreeSet<String> = bad_frames().iter().map(|case| case.code.as_str().to_owned()).collect();
    for code in [
        ErrorCode::InvalidMessage,
        ErrorCode::UnknownAction,
        ErrorCode::MissingParameter,
        ErrorCode::InvalidParameter,
        ErrorCode::MessageTooLarge,
    ] {
        assert!(produced.contains(code.as_str()), "{code} is never produced");
    }
}

#[test]
fn refusals_say_what_is_expected() {
    let error =
        parse_client_frame(r#"{"action":"setVolume","volumeLevel":3}"#, MAX_MESSAGE_BYTES).expect_err("refused");
    assert_eq!(error.message, "`volumeLevel` must be a number from 0.0 to 1.0");
    let error = parse_client_frame(r#"{"action":"dance"}"#, MAX_MESSAGE_BYTES).expect_err("refused");
    assert!(error.message.contains("joinSession") && error.message.contains("switchLanguage"), "{}", error.message);
    let error = parse_client_frame("{}", 1).expect_err("refused");
    assert_eq!(error.code, ErrorCode::MessageTooLarge);
    assert_eq!(error.message, "message is 2 bytes; the limit is 1 bytes");
}

#[test]
fn an_unknown_action_is_quoted_back_at_most_64_characters_long() {
    let refusal = |action: &str| {
        let frame = json!({ "action": action }).to_string();
        let error = parse_client_frame(&frame, MAX_MESSAGE_BYTES).expect_err("an unknown action is refused");
        assert_eq!(error.code, ErrorCode::UnknownAction, "{}", error.message);
        error.message
    };
    let quoted = |message: &str| -> String {
        let start = message.find('"').expect("the action is quoted") + 1;
        let end = start + message[start..].find('"').expect("the quote is closed");
        message[start..end].to_owned()
    };

    // A short name is quoted whole.
    assert_eq!(quoted(&refusal("dance")), "dance");
    let exactly_64 = "a".repeat(64);
    assert_eq!(quoted(&refusal(&exactly_64)), exactly_64);

    // A long name is cut to its first 64 characters and marked as cut.
    let long = format!("{}{}", "b".repeat(64), "c".repeat(10_000));
    let message = refusal(&long);
    assert_eq!(quoted(&message), format!("{}…", "b".repeat(64)));
    assert!(!message.contains("cc"), "nothing past the cut is echoed: {message}");
    assert!(message.len() < 1_000, "the refusal stays short: {} bytes", message.len());

    // Multi-byte characters are counted as characters and never split.
    let crabs = "🦀".repeat(100);
    assert_eq!(quoted(&refusal(&crabs)), format!("{}…", "🦀".repeat(64)));
    let mixed = format!("x{}", "é".repeat(200));
    assert_eq!(quoted(&refusal(&mixed)), format!("x{}…", "é".repeat(63)));
}

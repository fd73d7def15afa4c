//! Every action driven by MESSAGE events shaped like API Gateway's, against the local
//! DynamoDB and Kinesis endpoint and a recording `@connections` API (the real SDK clients).

use futures::StreamExt;
use harness::{NOW_MS, World, language};
use messages_function::{AudioSink, MessagesFunction};
use serde_json::{Value, json};
use session_core::deadline::{ANSWER_RESERVE, Deadline};
use session_core::events::{WebSocketEvent, WebSocketResponse};
use session_core::ids::SessionId;
use session_core::model::{Connection, Role, Session, SessionStatus};
use session_core::store::Clock;
use std::time::{Duration, Instant};

const LISTENER: &str = "L0SM9cOFvHcCIhw=";
const SPEAKER: &str = "M1TN0dPGwIdDJix=";

struct Test {
    world: World,
    function: MessagesFunction,
    kinesis: aws_sdk_kinesis::Client,
    stream: String,
}

impl Test {
    async fn new() -> Test {
        Test::with(|_| {}).await
    }

    async fn with(configure: impl FnOnce(&mut World)) -> Test {
        let mut world = World::new().await;
        configure(&mut world);
        // The function's client is recorded; the test's own reads are not.
        let kinesis = testkit::kinesis_client(None);
        let stream = testkit::create_stream(&kinesis).await;
        let function = MessagesFunction {
            store: world.store.clone(),
            notifier: world.notifier.clone(),
            limits: world.limits,
            audio: AudioSink::new(testkit::kinesis_client(Some(&world.recorder)), stream.clone()),
            recent: messages_function::RecentSessions::default(),
        };
        Test { world, function, kinesis, stream }
    }

    /// A live session owned by `user-42`, with its speaker connected as [`SPEAKER`].
    async fn session(&self) -> Session {
        let session = self.world.session_owned_by("user-42").await;
        self.connect(SPEAKER, Some(&session.session_id), Role::Speaker, None).await;
        self.world.store.set_speaker_connection(&session.session_id, SPEAKER).await.expect("speaker set");
        session
    }

    /// Stores a connection as `$connect` would (counting listeners).
    async fn connect(&self, id: &str, session: Option<&SessionId>, role: Role, lang: Option<&str>) -> Connection {
        let connection = Connection {
            connection_id: id.to_owned(),
            session_id: session.cloned(),
            role,
            target_language: lang.map(language),
            user_id: (role == Role::Speaker).then(|| "user-42".to_owned()),
            connected_at: NOW_MS,
            source_ip: "198.51.100.7".into(),
            ttl: self.world.clock.now_seconds() + 3 * 3600,
            session_expires_at: None,
            counted: false,
        };
        self.world.store.put_connection(&connection).await.expect("stored");
        if let (Role::Listener, Some(session), Some(lang)) = (role, session, lang) {
            self.world.store.add_listener(session, language(lang), 1000).await.expect("counted");
            assert!(self.world.store.mark_counted(id).await.expect("marked"), "the row is there");
        }
        Connection { counted: role == Role::Listener, ..connection }
    }

    async fn send(&self, connection: &str, body: Value) -> Vec<Value> {
        self.send_text(connection, &body.to_string()).await
    }

    /// Sends one frame; returns what the sender received in reply.
    async fn send_text(&self, connection: &str, body: &str) -> Vec<Value> {
        self.send_by(connection, body, Deadline::NONE).await
    }

    /// Sends one frame in an invocation that must answer by `deadline`.
    async fn send_by(&self, connection: &str, body: &str, deadline: Deadline) -> Vec<Value> {
        let before = self.world.connections_api.messages_to(connection).len();
        let mut event: WebSocketEvent = serde_json::from_str(include_str!("data/message.json")).expect("fixture");
        event.request_context.connection_id = connection.to_owned();
        event.request_context.route_key = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|value| value["action"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "$default".to_owned());
        event.body = Some(body.to_owned());
        assert_eq!(self.function.handle_by(&event, deadline).await, WebSocketResponse::ok());
        self.world.connections_api.messages_to(connection).split_off(before)
    }

    fn received(&self, connection: &str) -> Vec<Value> {
        self.world.connections_api.messages_to(connection)
    }

    async fn stored(&self, session: &Session) -> Session {
        self.world.store.get_session(&session.session_id).await.expect("read").expect("present")
    }
}

fn types(messages: &[Value]) -> Vec<&str> {
    messages.iter().map(|message| message["type"].as_str().unwrap_or("?")).collect()
}

fn error_code(messages: &[Value]) -> &str {
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["type"], "error", "{messages:?}");
    messages[0]["code"].as_str().unwrap_or("?")
}

#[tokio::test]
async fn a_listener_joins_idempotently_and_sees_the_session() {
    let test = Test::new().await;
    let session = test.session().await;
    test.connect(LISTENER, Some(&session.session_id), Role::Listener, Some("de")).await;
    for _ in 0..2 {
        let replies = test
            .send(LISTENER, json!({"action": "joinSession", "sessionId": session.session_id, "targetLanguage": "de"}))
            .await;
        assert_eq!(types(&replies), ["sessionJoined"]);
        let joined = &replies[0];
        assert_eq!(
            (joined["sessionId"].as_str(), joined["targetLanguage"].as_str()),
            (Some(session.session_id.as_str()), Some("de"))
        );
        assert_eq!((joined["sourceLanguage"].as_str(), joined["listenerCount"].as_u64()), (Some("en"), Some(1)));
        assert_eq!(
            (joined["connectionId"].as_str(), joined["qualityTier"].as_str()),
            (Some(LISTENER), Some("standard"))
        );
        assert!(joined["timestamp"].as_i64().is_some());
    }
    assert_eq!(test.stored(&session).await.listener_count, 1, "joining twice counts once");
    test.world.assert_calls_permitted(&contract::functions::MESSAGES);
}

#[tokio::test]
async fn joining_with_another_language_moves_the_listener() {
    let test = Test::new().await;
    let session = test.session().await;
    test.connect(LISTENER, Some(&session.session_id), Role::Listener, Some("de")).await;
    let replies = test
        .send(LISTENER, json!({"action": "joinSession", "sessionId": session.session_id, "targetLanguage": "fr"}))
        .await;
    assert_eq!(replies[0]["targetLanguage"], "fr");
    let row = test.world.store.get_connection(LISTENER).await.expect("read").expect("present");
    assert_eq!(row.target_language, Some(language("fr")));
    let speaker_heard = test.received(SPEAKER);
    assert_eq!(speaker_heard.last().map(|m| m["languageDistribution"].clone()), Some(json!({"fr": 1})));
}

#[tokio::test]
async fn heartbeats_follow_the_refresh_schedule() {
    let test = Test::new().await;
    let session = test.session().await;
    test.connect(LISTENER, Some(&session.session_id), Role::Listener, Some("de")).await;
    assert_eq!(types(&test.send(LISTENER, json!({"action": "heartbeat"})).await), ["heartbeatAck"]);
    test.world.clock.advance_seconds(99 * 60);
    assert_eq!(types(&test.send(LISTENER, json!({"action": "heartbeat", "timestamp": 5})).await), ["heartbeatAck"]);
    test.world.clock.advance_seconds(60);
    let replies = test.send(LISTENER, json!({"action": "heartbeat"})).await;
    assert_eq!(types(&replies), ["heartbeatAck", "connectionRefreshRequired"]);
    assert_eq!(replies[1]["role"], "listener");
    assert_eq!(replies[1]["targetLanguage"], "de");
    assert_eq!(replies[1]["sessionId"], session.session_id.as_str());
    assert_eq!(replies[1]["connectionId"], LISTENER, "what the new connection names as previousConnectionId");
    test.world.clock.advance_seconds(6 * 60);
    let replies = test.send(LISTENER, json!({"action": "heartbeat"})).await;
    assert_eq!(types(&replies), ["heartbeatAck", "connectionRefreshRequired", "connectionWarning"]);
    assert_eq!(replies[2]["remainingMinutes"], 14);
}

#[tokio::test]
async fn a_speaker_creates_a_session_on_a_connection_without_one() {
    let test = Test::new().await;
    test.connect(SPEAKER, None, Role::Speaker, None).await;
    let replies =
        test.send(SPEAKER, json!({"action": "createSession", "sourceLanguage": "en", "qualityTier": "premium"})).await;
    assert_eq!(types(&replies), ["sessionCreated"]);
    let created = &replies[0];
    let id = SessionId::parse(created["sessionId"].as_str().unwrap_or("")).expect("a session id");
    assert_eq!((created["qualityTier"].as_str(), created["connectionId"].as_str()), (Some("premium"), Some(SPEAKER)));
    assert_eq!(created["expiresAt"], (NOW_MS / 1000 + test.world.limits.session_lifetime_seconds) * 1000);
    let session = test.world.store.get_session(&id).await.expect("read").expect("created");
    assert_eq!(
        (session.speaker_user_id.as_str(), session.speaker_connection_id.as_deref()),
        ("user-42", Some(SPEAKER))
    );
    let row = test.world.store.get_connection(SPEAKER).await.expect("read").expect("present");
    assert_eq!(row.session_id, Some(id));
    // One session per connection.
    let again = test.send(SPEAKER, json!({"action": "createSession", "sourceLanguage": "en"})).await;
    assert_eq!(error_code(&again), "FORBIDDEN");
    test.world.assert_calls_permitted(&contract::functions::MESSAGES);
}

#[tokio::test]
async fn session_creation_is_rate_limited_per_user() {
    let test = Test::with(|world| world.limits.sessions_per_hour_per_user = 1).await;
    test.connect("first", None, Role::Speaker, None).await;
    test.connect("second", None, Role::Speaker, None).await;
    assert_eq!(
        types(&test.send("first", json!({"action": "createSession", "sourceLanguage": "en"})).await),
        ["sessionCreated"]
    );
    let replies = test.send("second", json!({"action": "createSession", "sourceLanguage": "en"})).await;
    assert_eq!(error_code(&replies), "RATE_LIMIT_EXCEEDED");
    assert!(replies[0]["retryAfter"].as_u64().is_some_and(|seconds| seconds > 0 && seconds <= 3600));
}

#[tokio::test]
async fn speaker_controls_reach_every_listener() {
    let test = Test::new().await;
    let session = test.session().await;
    for (id, lang) in [("l-de", "de"), ("l-fr", "fr")] {
        test.connect(id, Some(&session.session_id), Role::Listener, Some(lang)).await;
    }
    let controls = [
        (json!({"action": "pauseBroadcast"}), "broadcastPaused"),
        (json!({"action": "resumeBroadcast"}), "broadcastResumed"),
        (json!({"action": "muteBroadcast"}), "broadcastMuted"),
        (json!({"action": "unmuteBroadcast"}), "broadcastUnmuted"),
        (json!({"action": "setVolume", "volumeLevel": 0.4}), "volumeChanged"),
        (
            json!({"action": "speakerStateChange", "state": {"isPaused": true, "isMuted": true, "volume": 0.2}}),
            "speakerStateChanged",
        ),
    ];
    for (control, fanned_out) in controls {
        assert!(test.send(SPEAKER, control).await.is_empty(), "no reply to the speaker");
        for listener in ["l-de", "l-fr"] {
            assert_eq!(
                test.received(listener).last().map(|m| m["type"].clone()),
                Some(fanned_out.into()),
                "{listener}"
            );
        }
    }
    let last = test.received("l-de").last().cloned().unwrap_or_default();
    assert_eq!(last["state"], json!({"isPaused": true, "isMuted": true, "volume": 0.2}));
    let stored = test.stored(&session).await;
    assert_eq!(stored.status, SessionStatus::Paused, "isPaused and status move together");
    assert!(stored.broadcast_state.is_muted);
    assert_eq!(test.received("l-de")[4]["volumeLevel"], 0.4);
    test.world.assert_calls_permitted(&contract::functions::MESSAGES);
}

#[tokio::test]
async fn a_listener_cannot_control_the_broadcast_and_a_speaker_only_their_own() {
    let test = Test::new().await;
    let session = test.session().await;
    test.connect(LISTENER, Some(&session.session_id), Role::Listener, Some("de")).await;
    let other = test.world.session_owned_by("someone-else").await;
    test.connect("intruder", Some(&other.session_id), Role::Speaker, None).await; // user-42, not the owner
    for control in ["pauseBroadcast", "muteBroadcast", "endSession", "getSessionStatus"] {
        assert_eq!(error_code(&test.send(LISTENER, json!({"action": control})).await), "FORBIDDEN", "{control}");
        assert_eq!(error_code(&test.send("intruder", json!({"action": control})).await), "FORBIDDEN", "{control}");
    }
    assert_eq!(test.stored(&session).await.status, SessionStatus::Active);
    assert_eq!(test.stored(&other).await.status, SessionStatus::Active);
    // The listener received only its error replies.
    assert!(test.received(LISTENER).iter().all(|m| m["type"] == "error"));
}

#[tokio::test]
async fn a_listener_changes_language_by_either_name() {
    let test = Test::new().await;
    let session = test.session().await;
    test.connect(LISTENER, Some(&session.session_id), Role::Listener, Some("de")).await;
    let replies = test.send(LISTENER, json!({"action": "changeLanguage", "targetLanguage": "es"})).await;
    assert_eq!(
        replies[0],
        json!({"type": "languageChanged", "targetLanguage": "es", "timestamp": replies[0]["timestamp"]})
    );
    let replies = test.send(LISTENER, json!({"action": "switchLanguage", "targetLanguage": "it"})).await;
    assert_eq!(replies[0]["targetLanguage"], "it");
    assert_eq!(test.received(SPEAKER).last().map(|m| m["languageDistribution"].clone()), Some(json!({"it": 1})));
    assert_eq!(test.stored(&session).await.language_counts, Some([(language("it"), 1)].into()));
    // The language it already has: answered, but no count changes and the speaker hears nothing.
    let heard = test.received(SPEAKER).len();
    let replies = test.send(LISTENER, json!({"action": "changeLanguage", "targetLanguage": "it"})).await;
    assert_eq!(types(&replies), ["languageChanged"]);
    assert_eq!(test.received(SPEAKER).len(), heard);
    assert_eq!(test.stored(&session).await.language_counts, Some([(language("it"), 1)].into()));
    let speaker_tries = test.send(SPEAKER, json!({"action": "changeLanguage", "targetLanguage": "es"})).await;
    assert_eq!(error_code(&speaker_tries), "FORBIDDEN");
}

#[tokio::test]
async fn the_speaker_reads_counts_and_distribution() {
    let test = Test::new().await;
    let session = test.session().await;
    for (id, lang) in [("a", "de"), ("b", "de"), ("c", "fr")] {
        test.connect(id, Some(&session.session_id), Role::Listener, Some(lang)).await;
    }
    test.world.clock.advance_seconds(90);
    test.world.recorder.clear();
    let replies = test.send(SPEAKER, json!({"action": "getSessionStatus"})).await;
    assert_eq!(types(&replies), ["sessionStatus"]);
    // The distribution comes with the session item; no listener row is read.
    let calls = test.world.recorder.calls();
    assert!(calls.iter().all(|(_, operation)| operation != "Query"), "{calls:?}");
    let status = &replies[0];
    assert_eq!((status["listenerCount"].as_u64(), status["status"].as_str()), (Some(3), Some("active")));
    assert_eq!(status["languageDistribution"], json!({"de": 2, "fr": 1}));
    assert_eq!(status["sessionDuration"], 90);
    assert_eq!(status["createdAt"], NOW_MS);
    assert_eq!(status["broadcastState"], json!({"isPaused": false, "isMuted": false, "volume": 1.0}));
}

#[tokio::test]
async fn ending_the_session_tells_and_closes_everyone() {
    let test = Test::new().await;
    let session = test.session().await;
    for (id, lang) in [("a", "de"), ("b", "fr")] {
        test.connect(id, Some(&session.session_id), Role::Listener, Some(lang)).await;
    }
    test.send(SPEAKER, json!({"action": "endSession", "reason": "thanks"})).await;
    for id in ["a", "b", SPEAKER] {
        let last = test.received(id).last().cloned().unwrap_or_default();
        assert_eq!((last["type"].as_str(), last["reason"].as_str()), (Some("sessionEnded"), Some("thanks")), "{id}");
        assert!(test.world.connections_api.deleted().contains(&id.to_owned()), "{id} closed");
    }
    assert_eq!(test.stored(&session).await.status, SessionStatus::Ended);
    // A control from another connection of the same speaker finds the session ended.
    test.connect("late", Some(&session.session_id), Role::Speaker, None).await;
    let late = test.send("late", json!({"action": "pauseBroadcast"})).await;
    assert_eq!(error_code(&late), "SESSION_INACTIVE");
}

#[tokio::test]
async fn audio_goes_to_the_sessions_partition_of_the_stream() {
    let test = Test::new().await;
    let session = test.session().await;
    let replies = test
        .send(SPEAKER, json!({"action": "sendAudio", "audioData": "AAEC/w==", "chunkId": 7, "timestamp": 1234}))
        .await;
    assert!(replies.is_empty(), "sendAudio answers only errors: {replies:?}");
    test.world.assert_calls_permitted(&contract::functions::MESSAGES);
    let records = testkit::read_all_records(&test.kinesis, &test.stream).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].0, session.session_id.as_str(), "partition key is the session id");
    let record: Value = serde_json::from_slice(&records[0].1).expect("a JSON record");
    assert_eq!(record["audioData"], "AAEC/w==");
    assert_eq!((record["chunkId"].as_u64(), record["timestamp"].as_u64()), (Some(7), Some(1234)));
    assert_eq!(
        (record["sourceLanguage"].as_str(), record["sessionId"].as_str()),
        (Some("en"), Some(session.session_id.as_str()))
    );

    test.send(SPEAKER, json!({"action": "pauseBroadcast"})).await;
    let paused =
        test.send(SPEAKER, json!({"action": "sendAudio", "audioData": "AAECAw==", "chunkId": 8, "timestamp": 1})).await;
    assert_eq!(error_code(&paused), "SESSION_INACTIVE");
    let from_listener = {
        test.connect(LISTENER, Some(&session.session_id), Role::Listener, Some("de")).await;
        test.send(LISTENER, json!({"action": "sendAudio", "audioData": "AAECAw==", "chunkId": 9, "timestamp": 1})).await
    };
    assert_eq!(error_code(&from_listener), "FORBIDDEN");
    assert_eq!(testkit::read_all_records(&test.kinesis, &test.stream).await.len(), 1);
}

#[tokio::test]
async fn a_speaker_refresh_hands_over_without_ending_the_session() {
    let test = Test::new().await;
    let session = test.session().await;
    test.connect(LISTENER, Some(&session.session_id), Role::Listener, Some("de")).await;
    test.connect("new-speaker", Some(&session.session_id), Role::Speaker, None).await;
    let replies = test
        .send("new-speaker", json!({"action": "refreshConnection", "sessionId": session.session_id, "role": "speaker"}))
        .await;
    assert_eq!(types(&replies), ["connectionRefreshComplete"]);
    let stored = test.stored(&session).await;
    assert_eq!((stored.status, stored.speaker_connection_id.as_deref()), (SessionStatus::Active, Some("new-speaker")));
    assert!(test.world.connections_api.deleted().contains(&SPEAKER.to_owned()), "the old connection is closed");
    assert!(!test.world.connections_api.deleted().contains(&LISTENER.to_owned()), "listeners stay");
    assert_eq!(stored.listener_count, 1);
    // The listener's refresh is acknowledged too; a wrong role or session is refused.
    let replies = test
        .send(LISTENER, json!({"action": "refreshConnection", "sessionId": session.session_id, "role": "listener"}))
        .await;
    assert_eq!(types(&replies), ["connectionRefreshComplete"]);
    let wrong_role = test
        .send(LISTENER, json!({"action": "refreshConnection", "sessionId": session.session_id, "role": "speaker"}))
        .await;
    assert_eq!(error_code(&wrong_role), "INVALID_PARAMETER");
    assert_eq!(wrong_role[0]["details"]["field"], "role");
}

#[tokio::test]
async fn fan_out_reaches_every_live_listener_and_forgets_the_gone() {
    let test = Test::new().await;
    let session = test.session().await;
    let mut ids = Vec::new();
    for lang in ["de", "fr", "es"] {
        for index in 0..100 {
            ids.push((format!("{lang}-{index:03}"), lang));
        }
    }
    // As many handshakes in flight as a busy stage has, not 300 at once against the serial
    // local endpoint (a count's write is sent once, and would time out waiting in its queue).
    futures::stream::iter(ids.iter())
        .map(|(id, lang)| test.connect(id, Some(&session.session_id), Role::Listener, Some(lang)))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(test.stored(&session).await.listener_count, 300);
    let gone: Vec<&str> = ids.iter().step_by(10).map(|(id, _)| id.as_str()).collect();
    assert_eq!(gone.len(), 30);
    for id in &gone {
        test.world.connections_api.mark_gone(id);
    }
    past_the_handshake(&test);
    test.send(SPEAKER, json!({"action": "pauseBroadcast"})).await;
    for (id, _) in &ids {
        let received = types(&test.received(id)).iter().filter(|kind| **kind == "broadcastPaused").count();
        let expected = usize::from(!gone.contains(&id.as_str()));
        assert_eq!(received, expected, "{id}");
    }
    for id in &gone {
        assert!(test.world.store.get_connection(id).await.expect("read").is_none(), "{id} forgotten");
    }
    assert_eq!(test.stored(&session).await.listener_count, 270);
    assert_eq!(test.world.store.listeners(&session.session_id, None).await.expect("query").len(), 270);
}

#[tokio::test]
async fn a_listeners_heartbeat_ends_a_session_whose_speaker_did_not_return() {
    let test = Test::new().await;
    let session = test.session().await;
    test.connect(LISTENER, Some(&session.session_id), Role::Listener, Some("de")).await;
    assert!(test.world.store.clear_speaker_connection(&session.session_id, SPEAKER).await.expect("left"));
    test.world.clock.advance_seconds(test.world.limits.speaker_grace_seconds);
    let replies = test.send(LISTENER, json!({"action": "heartbeat"})).await;
    // Told, then closed: the refusal that follows finds the connection gone.
    assert_eq!(types(&replies), ["sessionEnded"]);
    assert_eq!(replies[0]["reason"], "speakerDisconnected");
    assert!(test.world.connections_api.deleted().contains(&LISTENER.to_owned()));
    assert_eq!(test.stored(&session).await.status, SessionStatus::Ended);
}

#[tokio::test]
async fn an_unregistered_connection_is_told_to_reconnect() {
    let test = Test::new().await;
    let replies = test.send("stranger", json!({"action": "heartbeat"})).await;
    assert_eq!(error_code(&replies), "FORBIDDEN");
}

#[tokio::test]
async fn a_frame_without_an_authorizer_context_is_handled() {
    let test = Test::new().await;
    let session = test.session().await;
    test.connect(LISTENER, Some(&session.session_id), Role::Listener, Some("de")).await;
    let mut event: WebSocketEvent =
        serde_json::from_str(include_str!("data/message_without_authorizer.json")).expect("fixture");
    event.body = Some(json!({"action": "heartbeat"}).to_string());
    assert_eq!(test.function.handle(&event).await, WebSocketResponse::ok());
    assert_eq!(types(&test.received(LISTENER)), ["heartbeatAck"]);
}

#[tokio::test]
async fn binary_frames_must_be_utf8_json() {
    let test = Test::new().await;
    let session = test.session().await;
    test.connect(LISTENER, Some(&session.session_id), Role::Listener, Some("de")).await;
    let mut event: WebSocketEvent = serde_json::from_str(include_str!("data/message.json")).expect("fixture");
    event.is_base64_encoded = true;
    event.body = Some("eyJhY3Rpb24iOiJoZWFydGJlYXQifQ==".into()); // {"action":"heartbeat"}
    test.function.handle(&event).await;
    event.body = Some("//79".into()); // not UTF-8
    test.function.handle(&event).await;
    assert_eq!(types(&test.received(LISTENER)), ["heartbeatAck", "error"]);
    assert_eq!(test.received(LISTENER)[1]["code"], "INVALID_MESSAGE");
}

#[tokio::test]
async fn bad_frames_get_their_codes_and_the_connection_stays_usable() {
    let test = Test::new().await;
    let session = test.session().await;
    test.connect(LISTENER, Some(&session.session_id), Role::Listener, Some("de")).await;
    let id = session.session_id.as_str();
    let cases: Vec<(String, &str, Option<&str>)> = vec![
        ("not json".into(), "INVALID_MESSAGE", None),
        ("[1,2]".into(), "INVALID_MESSAGE", None),
        ("{}".into(), "MISSING_PARAMETER", Some("action")),
        (r#"{"action":"fly"}"#.into(), "UNKNOWN_ACTION", None),
        (r#"{"action":"joinSession","targetLanguage":"de"}"#.into(), "MISSING_PARAMETER", Some("sessionId")),
        (
            format!(r#"{{"action":"joinSession","sessionId":"{id}","targetLanguage":"zz"}}"#),
            "INVALID_PARAMETER",
            Some("targetLanguage"),
        ),
        (
            r#"{"action":"joinSession","sessionId":"brave-otter-123","targetLanguage":"de"}"#.into(),
            "INVALID_PARAMETER",
            Some("sessionId"),
        ),
        (r#"{"action":"changeLanguage","targetLanguage":5}"#.into(), "INVALID_PARAMETER", Some("targetLanguage")),
        (r#"{"action":"setVolume","volumeLevel":2}"#.into(), "INVALID_PARAMETER", Some("volumeLevel")),
        (r#"{"action":"createSession","sourceLanguage":"en"}"#.into(), "FORBIDDEN", None),
        (r#"{"action":"pauseBroadcast"}"#.into(), "FORBIDDEN", None),
        (
            format!(r#"{{"action":"refreshConnection","sessionId":"{id}","role":"admin"}}"#),
            "INVALID_PARAMETER",
            Some("role"),
        ),
        (
            r#"{"action":"refreshConnection","sessionId":"brave-otter-123","role":"listener"}"#.into(),
            "INVALID_PARAMETER",
            Some("sessionId"),
        ),
        (format!(r#"{{"action":"heartbeat","pad":"{}"}}"#, "x".repeat(128 * 1024)), "MESSAGE_TOO_LARGE", None),
    ];
    for (frame, code, field) in &cases {
        let replies = test.send_text(LISTENER, frame).await;
        assert_eq!(error_code(&replies), *code, "{}", &frame[..frame.len().min(80)]);
        assert_eq!(replies[0]["details"]["field"].as_str(), *field, "{}", &frame[..frame.len().min(80)]);
        // Still usable.
        assert_eq!(types(&test.send(LISTENER, json!({"action": "heartbeat"})).await), ["heartbeatAck"]);
    }
    assert_eq!(test.stored(&session).await.listener_count, 1);
}

#[test]
fn settings_come_from_the_declared_environment() {
    let variables = contract::functions::MESSAGES
        .environment
        .iter()
        .map(|var| (var.name.to_owned(), if var.name == "AUDIO_STREAM" { "audio".to_owned() } else { "9".to_owned() }))
        .collect();
    let env = session_core::config::FunctionEnv::from_map(&contract::functions::MESSAGES, variables);
    let (limits, stream) = MessagesFunction::settings(&env).expect("valid");
    assert_eq!((limits.max_message_bytes, stream.as_str()), (9, "audio"));
}

#[tokio::test]
async fn a_frame_whose_work_outlasts_the_invocation_is_answered_service_unavailable_in_time() {
    let test = Test::new().await;
    let session = test.session().await;
    test.connect(LISTENER, Some(&session.session_id), Role::Listener, Some("de")).await;
    // The listener's posts are never answered: each attempt times out, and the fan-out's
    // retries would run past the invocation's end.
    test.world.connections_api.stall(LISTENER);
    let left = ANSWER_RESERVE + Duration::from_millis(1500);
    let started = Instant::now();
    let replies = test.send_by(SPEAKER, &json!({"action": "pauseBroadcast"}).to_string(), Deadline::after(left)).await;
    assert!(started.elapsed() < left, "answered before the deadline, not killed by Lambda");
    assert_eq!(error_code(&replies), "SERVICE_UNAVAILABLE");
    assert_eq!(replies[0]["retryAfter"], 2, "{replies:?}");
    // What was written stays written, so resending the control is safe.
    assert!(test.stored(&session).await.broadcast_state.is_paused);
}

/// Connections older than the handshake window: a 410 for them means closed.
fn past_the_handshake(test: &Test) {
    test.world.clock.advance_seconds(session_core::lifecycle::HANDSHAKE_WINDOW_MS / 1000);
}

#[tokio::test]
async fn a_connection_still_in_its_handshake_keeps_its_row_when_a_fan_out_finds_it_gone() {
    let test = Test::new().await;
    let session = test.session().await;
    test.connect(LISTENER, Some(&session.session_id), Role::Listener, Some("de")).await;
    // `$connect` wrote the row; API Gateway has not finished the upgrade, so posts answer 410.
    test.world.connections_api.mark_gone(LISTENER);
    test.send(SPEAKER, json!({"action": "pauseBroadcast"})).await;
    assert!(test.world.store.get_connection(LISTENER).await.expect("read").is_some(), "the row stays");
    assert_eq!(test.stored(&session).await.listener_count, 1);
    // Once the handshake window is over, a 410 means the connection closed.
    past_the_handshake(&test);
    test.send(SPEAKER, json!({"action": "resumeBroadcast"})).await;
    assert!(test.world.store.get_connection(LISTENER).await.expect("read").is_none(), "the row is gone");
    assert_eq!(test.stored(&session).await.listener_count, 0);
}

#[tokio::test]
async fn a_speaker_found_gone_by_a_fan_out_starts_the_grace_period() {
    let test = Test::new().await;
    let session = test.session().await;
    test.connect(LISTENER, Some(&session.session_id), Role::Listener, Some("de")).await;
    past_the_handshake(&test);
    // The speaker's tab closed and its $disconnect is lost; a listener's move tells the speaker.
    test.world.connections_api.mark_gone(SPEAKER);
    test.send(LISTENER, json!({"action": "changeLanguage", "targetLanguage": "fr"})).await;
    let stored = test.stored(&session).await;
    assert_eq!(stored.speaker_connection_id, None);
    assert_eq!(stored.speaker_gone_at, Some(test.world.clock.now_seconds()), "the grace period started");
    assert!(test.world.store.get_connection(SPEAKER).await.expect("read").is_none());
    // And it ends the session once the grace period is over, as a $disconnect would have.
    test.world.clock.advance_seconds(test.world.limits.speaker_grace_seconds);
    let replies = test.send(LISTENER, json!({"action": "heartbeat"})).await;
    assert_eq!(types(&replies), ["sessionEnded"]);
}

#[tokio::test]
async fn a_speaker_found_gone_hands_the_session_to_its_other_open_connection() {
    let test = Test::new().await;
    let session = test.session().await;
    test.connect("second-tab", Some(&session.session_id), Role::Speaker, None).await;
    test.connect(LISTENER, Some(&session.session_id), Role::Listener, Some("de")).await;
    past_the_handshake(&test);
    test.world.connections_api.mark_gone(SPEAKER);
    test.send(LISTENER, json!({"action": "changeLanguage", "targetLanguage": "fr"})).await;
    let stored = test.stored(&session).await;
    assert_eq!((stored.speaker_connection_id.as_deref(), stored.speaker_gone_at), (Some("second-tab"), None));
}

#[tokio::test]
async fn an_end_interrupted_half_way_is_finished_by_the_next_use_of_the_session() {
    let test = Test::new().await;
    let session = test.session().await;
    for (id, lang) in [("a", "de"), ("b", "fr")] {
        test.connect(id, Some(&session.session_id), Role::Listener, Some(lang)).await;
    }
    // DynamoDB fails the listener query after the status was written.
    test.world.recorder.make_unreachable("Query");
    let refused = test.send(SPEAKER, json!({"action": "endSession", "reason": "thanks"})).await;
    assert_eq!(error_code(&refused), "SERVICE_UNAVAILABLE");
    assert!(refused[0]["retryAfter"].as_u64().is_some(), "{refused:?}");
    let stored = test.stored(&session).await;
    assert_eq!((stored.status, stored.end_notified_at), (SessionStatus::Ended, None));
    assert!(test.received("a").is_empty() && test.received("b").is_empty(), "nobody was told yet");

    // DynamoDB is back; the next use of the session (a listener's heartbeat) finishes the end.
    test.world.recorder.reachable_again();
    test.send("a", json!({"action": "heartbeat"})).await;
    for id in ["a", "b", SPEAKER] {
        let ended: Vec<Value> =
            test.received(id).into_iter().filter(|message| message["type"] == "sessionEnded").collect();
        assert_eq!(ended.len(), 1, "{id}");
        assert_eq!(ended[0]["reason"], "thanks", "{id}: the first end's reason");
        assert!(test.world.connections_api.deleted().contains(&id.to_owned()), "{id} closed");
    }
    assert!(test.stored(&session).await.end_notified_at.is_some());
    // Finished ends are final: ending again tells nobody.
    test.world.connections_api.clear();
    test.send(SPEAKER, json!({"action": "endSession"})).await;
    assert!(test.world.connections_api.posts().iter().all(|(_, body)| !body.contains("sessionEnded")));
}

#[tokio::test]
async fn the_grace_end_needs_the_speaker_to_be_still_gone() {
    let test = Test::new().await;
    let session = test.session().await;
    assert!(test.world.store.clear_speaker_connection(&session.session_id, SPEAKER).await.expect("left"));
    test.world.clock.advance_seconds(test.world.limits.speaker_grace_seconds);
    // A reader saw the speaker gone for the whole grace period...
    let seen = test.stored(&session).await;
    // ...but the speaker came back before the end was written.
    test.world.store.set_speaker_connection(&session.session_id, SPEAKER).await.expect("back");
    let connections = test.world.notifier.configured().expect("an endpoint");
    let lifecycle = session_core::lifecycle::Lifecycle::new(&test.world.store, &connections, &test.world.limits);
    assert_eq!(lifecycle.settle(&seen).await.expect("settled"), None);
    assert_eq!(test.stored(&session).await.status, SessionStatus::Active);
}

#[tokio::test]
async fn throttled_posts_are_retried_and_what_still_fails_is_reported() {
    let test = Test::new().await;
    let session = test.session().await;
    let listeners: Vec<String> = (0..20).map(|index| format!("listener-{index}")).collect();
    for id in &listeners {
        test.connect(id, Some(&session.session_id), Role::Listener, Some("de")).await;
    }
    let connections = test.world.notifier.configured().expect("an endpoint");
    let lifecycle = session_core::lifecycle::Lifecycle::new(&test.world.store, &connections, &test.world.limits);
    // 429 for the first 15 posts, then a few 500s: every listener still gets the message.
    test.world.connections_api.throttle_posts(15);
    test.world.connections_api.fail_posts(3);
    let report = lifecycle.tell_listeners(&session.session_id, ServerMessageKind::paused()).await.expect("told");
    assert_eq!((report.delivered, report.gone.len(), report.failed.len()), (20, 0, 0));
    assert_eq!(report.retried, 18);
    for id in &listeners {
        assert_eq!(types(&test.received(id)), ["broadcastPaused"], "{id}");
    }
    // A management API that keeps refusing: each post gives up after its attempts, and the
    // report (and the log line) says how many failed.
    test.world.connections_api.throttle_posts(usize::MAX);
    let report = lifecycle.tell_listeners(&session.session_id, ServerMessageKind::paused()).await.expect("told");
    assert_eq!((report.delivered, report.failed.len()), (0, 20));
    let attempts = session_core::fanout::POST_ATTEMPTS as usize;
    assert_eq!(report.retried, 20 * (attempts - 1));
}

#[tokio::test]
async fn a_fan_out_keeps_enough_posts_in_flight_for_the_session_cap() {
    let test = Test::new().await;
    let session = test.session().await;
    for index in 0..200 {
        test.connect(&format!("listener-{index}"), Some(&session.session_id), Role::Listener, Some("de")).await;
    }
    test.world.connections_api.set_delay(std::time::Duration::from_millis(20));
    test.send(SPEAKER, json!({"action": "pauseBroadcast"})).await;
    assert_eq!(test.world.connections_api.max_in_flight(), session_core::fanout::DEFAULT_CONCURRENCY);
}

/// Builds the messages these tests fan out.
struct ServerMessageKind;

impl ServerMessageKind {
    fn paused() -> session_core::protocol::ServerMessage {
        session_core::protocol::ServerMessage::BroadcastPaused
    }
}

/// The AWS calls each action makes, for a session with a speaker and three listeners (two in
/// `de`, one in `fr`), none gone: docs/audiences.md's table of AWS calls. A change in any row fails here and
/// is reviewed like a snapshot.
#[tokio::test]
async fn aws_calls_per_action() {
    let actions: Vec<(&str, &str, Value)> = vec![
        ("heartbeat (listener, session read by this process < 10 s ago)", LISTENER, json!({"action": "heartbeat"})),
        ("joinSession", LISTENER, json!({"action": "joinSession", "sessionId": "SESSION", "targetLanguage": "de"})),
        ("changeLanguage", LISTENER, json!({"action": "changeLanguage", "targetLanguage": "it"})),
        ("getSessionStatus", SPEAKER, json!({"action": "getSessionStatus"})),
        ("pauseBroadcast", SPEAKER, json!({"action": "pauseBroadcast"})),
        ("muteBroadcast", SPEAKER, json!({"action": "muteBroadcast"})),
        ("setVolume", SPEAKER, json!({"action": "setVolume", "volumeLevel": 0.5})),
        ("sendAudio", SPEAKER, json!({"action": "sendAudio", "audioData": "AAEC/w==", "chunkId": 1, "timestamp": 1})),
        ("endSession", SPEAKER, json!({"action": "endSession"})),
        ("unknown action (refused)", LISTENER, json!({"action": "dance"})),
    ];
    let mut table = Vec::new();
    for (name, caller, frame) in actions {
        let test = Test::new().await;
        let session = test.session().await;
        for (id, lang) in [(LISTENER, "de"), ("l2", "de"), ("l3", "fr")] {
            test.connect(id, Some(&session.session_id), Role::Listener, Some(lang)).await;
        }
        past_the_handshake(&test);
        // A heartbeat a moment before, so the process has read the session recently.
        test.send(LISTENER, json!({"action": "heartbeat"})).await;
        test.world.recorder.clear();
        let frame = frame.to_string().replace("SESSION", session.session_id.as_str());
        test.send_text(caller, &frame).await;
        let mut calls: Vec<String> = test
            .world
            .recorder
            .calls()
            .into_iter()
            .map(|(service, operation)| format!("{service}.{operation}"))
            .collect();
        calls.sort();
        table.push((name, calls.join(" ")));
    }
    for (name, calls) in &table {
        eprintln!("| {name} | {calls} |");
    }
    let expected = [
        (
            "heartbeat (listener, session read by this process < 10 s ago)",
            "ApiGatewayManagementApi.PostToConnection DynamoDB.GetItem",
        ),
        // The connection's first join opens its rate-limit window: two writes (one after).
        (
            "joinSession",
            "ApiGatewayManagementApi.PostToConnection DynamoDB.GetItem DynamoDB.GetItem DynamoDB.UpdateItem DynamoDB.UpdateItem",
        ),
        (
            "changeLanguage",
            "ApiGatewayManagementApi.PostToConnection ApiGatewayManagementApi.PostToConnection DynamoDB.GetItem DynamoDB.GetItem DynamoDB.GetItem DynamoDB.UpdateItem DynamoDB.UpdateItem",
        ),
        ("getSessionStatus", "ApiGatewayManagementApi.PostToConnection DynamoDB.GetItem DynamoDB.GetItem"),
        (
            "pauseBroadcast",
            "ApiGatewayManagementApi.PostToConnection ApiGatewayManagementApi.PostToConnection ApiGatewayManagementApi.PostToConnection DynamoDB.GetItem DynamoDB.GetItem DynamoDB.Query DynamoDB.UpdateItem",
        ),
        (
            "muteBroadcast",
            "ApiGatewayManagementApi.PostToConnection ApiGatewayManagementApi.PostToConnection ApiGatewayManagementApi.PostToConnection DynamoDB.GetItem DynamoDB.GetItem DynamoDB.Query DynamoDB.UpdateItem",
        ),
        (
            "setVolume",
            "ApiGatewayManagementApi.PostToConnection ApiGatewayManagementApi.PostToConnection ApiGatewayManagementApi.PostToConnection DynamoDB.GetItem DynamoDB.GetItem DynamoDB.Query DynamoDB.UpdateItem",
        ),
        ("sendAudio", "DynamoDB.GetItem DynamoDB.GetItem Kinesis.PutRecord"),
        (
            "endSession",
            "ApiGatewayManagementApi.DeleteConnection ApiGatewayManagementApi.DeleteConnection ApiGatewayManagementApi.DeleteConnection ApiGatewayManagementApi.DeleteConnection ApiGatewayManagementApi.PostToConnection ApiGatewayManagementApi.PostToConnection ApiGatewayManagementApi.PostToConnection ApiGatewayManagementApi.PostToConnection DynamoDB.GetItem DynamoDB.GetItem DynamoDB.Query DynamoDB.Query DynamoDB.UpdateItem DynamoDB.UpdateItem",
        ),
        ("unknown action (refused)", "ApiGatewayManagementApi.PostToConnection"),
    ];
    for ((name, calls), (expected_name, expected_calls)) in table.iter().zip(expected) {
        assert_eq!((*name, calls.as_str()), (expected_name, expected_calls));
    }
}

#[tokio::test]
async fn a_drifted_count_converges_through_heartbeats_though_nobody_is_refused() {
    let test = Test::new().await;
    let session = test.session().await;
    for (id, lang) in [(LISTENER, "de"), ("closed-tab", "de"), ("l3", "fr")] {
        test.connect(id, Some(&session.session_id), Role::Listener, Some(lang)).await;
    }
    // A count written twice (a retry after a timeout the table had already applied), and a
    // listener whose $disconnect was lost.
    test.world.store.add_listener(&session.session_id, language("fr"), 1000).await.expect("counted twice");
    test.world.connections_api.mark_gone("closed-tab");
    assert_eq!(test.stored(&session).await.listener_count, 4);

    // Before the recount period, heartbeats leave the count alone.
    test.world.clock.advance_seconds(60);
    test.send(LISTENER, json!({"action": "heartbeat"})).await;
    assert_eq!(test.stored(&session).await.listener_count, 4);
    // After it, the next heartbeat that reads the session recounts: two listeners are open.
    test.world.clock.advance_seconds(session_core::store::sessions::RECOUNT_PERIOD_SECONDS);
    test.send(LISTENER, json!({"action": "heartbeat"})).await;
    let stored = test.stored(&session).await;
    assert_eq!(stored.listener_count, 2);
    assert_eq!(stored.language_counts, Some([(language("de"), 1), (language("fr"), 1)].into()));
    assert!(test.world.store.get_connection("closed-tab").await.expect("read").is_none());
}

//! A venue's audience behind one address, on the stages' own settings: 500 listeners from one
//! source address connect and join one session within a minute, all are admitted, and every
//! one of them receives every control the speaker sends. Beside it, what still stops abuse from
//! one address: a stream of handshakes for sessions that do not exist is cut off after a few,
//! and from then on each costs one DynamoDB write and reads nothing.

use connection_function::{ConnectAuth, ConnectionFunction};
use futures::stream::{self, StreamExt};
use harness::World;
use messages_function::{AudioSink, MessagesFunction};
use serde_json::{Value, json};
use session_core::config::{FunctionEnv, Limits};
use session_core::events::{WebSocketEvent, WebSocketResponse};
use stacks::stages::StageConfig;
use std::collections::HashMap;

/// One address for the whole audience (TEST-NET-2).
const VENUE_ADDRESS: &str = "198.51.100.7";

/// The limits a function reads on `stage`: its declared settings, as the template sets them.
fn limits_on(stage: &StageConfig, function: &'static contract::Function) -> Limits {
    let settings: HashMap<String, String> = function
        .environment
        .iter()
        .filter_map(|var| stage.setting(var.name).map(|value| (var.name.to_owned(), value)))
        .collect();
    Limits::from_env(&FunctionEnv::from_map(function, settings)).expect("the stage sets every limit")
}

fn connect_event(session: &str, connection: &str, source_ip: &str) -> WebSocketEvent {
    let mut event: WebSocketEvent = serde_json::from_str(
        &include_str!("data/connect_listener.json").replace("SESSION", session).replace("TOKEN", ""),
    )
    .expect("fixture");
    event.request_context.connection_id = connection.to_owned();
    event.request_context.identity.source_ip = source_ip.to_owned();
    event
}

fn message_event(connection: &str, body: &Value) -> WebSocketEvent {
    let mut event: WebSocketEvent = serde_json::from_value(json!({
        "requestContext": {
            "routeKey": body["action"], "eventType": "MESSAGE", "stage": "dev",
            "connectedAt": harness::NOW_MS, "requestTimeEpoch": harness::NOW_MS,
            "identity": {"sourceIp": VENUE_ADDRESS}, "requestId": "r",
            "domainName": "abc123defg.execute-api.eu-west-1.amazonaws.com",
            "connectionId": connection, "apiId": "abc123defg",
        },
        "isBase64Encoded": false,
    }))
    .expect("a message event");
    event.body = Some(body.to_string());
    event
}

#[tokio::test]
async fn a_venue_of_500_behind_one_address_is_admitted_and_hears_every_control() {
    let (dev, prod) = (stacks::stages::dev(), stacks::stages::prod());
    let connect_limits = limits_on(&dev, &contract::functions::CONNECTION);
    let message_limits = limits_on(&dev, &contract::functions::MESSAGES);
    // prod's limits are dev's; were they not, this test would run for each.
    assert_eq!(connect_limits, limits_on(&prod, &contract::functions::CONNECTION));
    assert_eq!(message_limits, limits_on(&prod, &contract::functions::MESSAGES));
    let audience = connect_limits.max_listeners_per_session as usize;
    assert_eq!(audience, 500);

    let world = World::new().await;
    let session = world.session_owned_by("user-42").await;
    let id = session.session_id.as_str();
    let connection = ConnectionFunction {
        store: world.store.clone(),
        notifier: world.notifier.clone(),
        limits: connect_limits,
        auth: ConnectAuth::Authorizer,
        verifier: world.verifier.clone(),
    };
    let messages = MessagesFunction {
        store: world.store.clone(),
        notifier: world.notifier.clone(),
        limits: message_limits,
        audio: AudioSink::new(testkit::kinesis_client(None), "unused"),
        recent: messages_function::RecentSessions::default(),
    };
    // The speaker, from the same building.
    let mut speaker = connect_event(id, "speaker", VENUE_ADDRESS);
    speaker.query_string_parameters = Some(HashMap::from([("sessionId".to_owned(), id.to_owned())]));
    let context = json!({"principalId": "user-42", "authenticated": "true", "userId": "user-42", "email": ""});
    speaker.request_context.authorizer = context.as_object().cloned();
    assert_eq!(connection.handle(&speaker).await, WebSocketResponse::ok());

    // All within one rate-limit window (the test clock does not move).
    let listeners: Vec<String> = (0..audience).map(|index| format!("listener-{index:03}")).collect();
    let outcomes: Vec<(WebSocketResponse, WebSocketResponse)> = stream::iter(&listeners)
        .map(|listener| {
            let (connection, messages) = (&connection, &messages);
            async move {
                let connected = connection.handle(&connect_event(id, listener, VENUE_ADDRESS)).await;
                let join = json!({"action": "joinSession", "sessionId": id, "targetLanguage": "de"});
                let joined = messages.handle(&message_event(listener, &join)).await;
                (connected, joined)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(outcomes.iter().all(|(connected, _)| *connected == WebSocketResponse::ok()), "a listener was refused");
    for listener in &listeners {
        let replies = world.connections_api.messages_to(listener);
        assert_eq!(replies.len(), 1, "{listener}: {replies:?}");
        assert_eq!(replies[0]["type"], "sessionJoined", "{listener}: {replies:?}");
    }
    let stored = world.store.get_session(&session.session_id).await.expect("read").expect("live");
    assert_eq!(stored.listener_count as usize, audience);

    let controls = [
        (json!({"action": "pauseBroadcast"}), "broadcastPaused"),
        (json!({"action": "muteBroadcast"}), "broadcastMuted"),
        (json!({"action": "setVolume", "volumeLevel": 0.5}), "volumeChanged"),
        (json!({"action": "resumeBroadcast"}), "broadcastResumed"),
    ];
    for (control, _) in &controls {
        assert_eq!(messages.handle(&message_event("speaker", control)).await, WebSocketResponse::ok());
    }
    let expected: Vec<&str> = std::iter::once("sessionJoined").chain(controls.iter().map(|(_, kind)| *kind)).collect();
    for listener in &listeners {
        let received = world.connections_api.messages_to(listener);
        let kinds: Vec<&str> = received.iter().filter_map(|message| message["type"].as_str()).collect();
        assert_eq!(kinds, expected, "{listener}");
    }
}

#[tokio::test]
async fn a_flood_of_handshakes_for_unknown_sessions_is_cut_off_cheaply() {
    let world = World::new().await;
    let limits = limits_on(&stacks::stages::prod(), &contract::functions::CONNECTION);
    let connection = ConnectionFunction {
        store: world.store.clone(),
        notifier: world.notifier.clone(),
        limits,
        auth: ConnectAuth::Authorizer,
        verifier: world.verifier.clone(),
    };
    let misses = limits.unknown_session_connects_per_minute_per_ip;
    for attempt in 0..misses {
        let event = connect_event("nope-nope-123", &format!("probe-{attempt}"), VENUE_ADDRESS);
        assert_eq!(connection.handle(&event).await.status_code, 404, "attempt {attempt}");
    }
    for attempt in 0..5 {
        world.recorder.clear();
        let event = connect_event("nope-nope-123", &format!("late-probe-{attempt}"), VENUE_ADDRESS);
        let refused = connection.handle(&event).await;
        assert_eq!(refused.status_code, 429, "{refused:?}");
        // The counter's refused write is the whole cost: no session is read, nothing written.
        assert_eq!(world.recorder.calls(), [("DynamoDB".to_owned(), "UpdateItem".to_owned())]);
    }
    // The address is cut off for real sessions too, until the minute is over; others are not.
    let session = world.session_owned_by("user-42").await;
    let id = session.session_id.as_str();
    assert_eq!(connection.handle(&connect_event(id, "venue-listener", VENUE_ADDRESS)).await.status_code, 429);
    assert_eq!(connection.handle(&connect_event(id, "elsewhere", "203.0.113.50")).await, WebSocketResponse::ok());
    world.clock.advance_seconds(60);
    assert_eq!(connection.handle(&connect_event(id, "next-minute", VENUE_ADDRESS)).await, WebSocketResponse::ok());
}

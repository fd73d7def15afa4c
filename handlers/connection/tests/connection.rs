//! `$connect` and `$disconnect` driven by events shaped like API Gateway's, against the local
//! DynamoDB endpoint and a recording `@connections` API reached by the real SDK client.

use connection_function::{ConnectAuth, ConnectionFunction};
use harness::tokens::token_cases;
use harness::{AUDIENCE, ISSUER, NOW_MS, World, language};
use serde_json::Value;
use session_core::deadline::{ANSWER_RESERVE, Deadline};
use session_core::events::{WebSocketEvent, WebSocketResponse};
use session_core::jwt::{JwksSource, JwtConfig, Verifier};
use session_core::model::{Role, SessionStatus};
use session_core::store::Clock;
use std::time::{Duration, Instant};

fn function(world: &World, auth: ConnectAuth) -> ConnectionFunction {
    ConnectionFunction {
        store: world.store.clone(),
        notifier: world.notifier.clone(),
        limits: world.limits,
        auth,
        verifier: world.verifier.clone(),
    }
}

fn fixture(text: &str, session: &str, token: &str) -> WebSocketEvent {
    serde_json::from_str(&text.replace("SESSION", session).replace("TOKEN", token)).expect("fixture")
}

fn listener_event(session: &str) -> WebSocketEvent {
    fixture(include_str!("data/connect_listener.json"), session, "")
}

fn listener_event_without_authorizer(session: &str) -> WebSocketEvent {
    fixture(include_str!("data/connect_listener_without_authorizer.json"), session, "")
}

fn speaker_event(session: &str, token: &str) -> WebSocketEvent {
    fixture(include_str!("data/connect_speaker.json"), session, token)
}

fn disconnect_event(connection_id: &str) -> WebSocketEvent {
    let mut event: WebSocketEvent = serde_json::from_str(include_str!("data/disconnect.json")).expect("fixture");
    event.request_context.connection_id = connection_id.to_owned();
    event
}

fn with_connection_id(mut event: WebSocketEvent, id: &str) -> WebSocketEvent {
    event.request_context.connection_id = id.to_owned();
    event
}

fn with_query(mut event: WebSocketEvent, pairs: &[(&str, &str)]) -> WebSocketEvent {
    event.query_string_parameters = Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    event
}

/// Asserts a refusal's status and code; returns its body.
fn assert_refused(response: &WebSocketResponse, status: u16, code: &str) -> Value {
    assert_eq!(response.status_code, status, "{response:?}");
    let body: Value = serde_json::from_str(response.body.as_deref().unwrap_or("")).expect("a JSON body");
    assert_eq!(body["code"], code, "{body}");
    body
}

#[tokio::test]
async fn a_tokenless_listener_connects_through_the_authorizer() {
    let world = World::new().await;
    let session = world.session_owned_by("user-42").await;
    world.store.set_speaker_connection(&session.session_id, "speaker-conn").await.expect("speaker");
    speaker_connected(&world, &session.session_id).await;

    let response = function(&world, ConnectAuth::Authorizer).handle(&listener_event(session.session_id.as_str())).await;
    assert_eq!(response, WebSocketResponse::ok());

    let row = world.store.get_connection("L0SM9cOFvHcCIhw=").await.expect("read").expect("stored");
    assert_eq!((row.role, row.target_language), (Role::Listener, Some(language("de"))));
    assert_eq!(row.source_ip, "198.51.100.7");
    assert_eq!(row.connected_at, 1_795_633_281_000);
    assert_eq!(world.store.get_session(&session.session_id).await.expect("read").expect("live").listener_count, 1);
    // $connect never posts to the connecting client; the speaker hears about the listener.
    assert!(world.connections_api.posts_to("L0SM9cOFvHcCIhw=").is_empty());
    let told = world.connections_api.messages_to("speaker-conn");
    assert_eq!(told.len(), 1);
    assert_eq!(told[0]["type"], "listenerCountChanged");
    assert_eq!(told[0]["listenerCount"], 1);
    assert_eq!(told[0]["languageDistribution"]["de"], 1);
    world.assert_calls_permitted(&contract::functions::CONNECTION);
}

/// The session's speaker, connected as `speaker-conn` (its row, and the session naming it).
async fn speaker_connected(world: &World, session: &session_core::ids::SessionId) {
    world.store.put_connection(&speaker_row(world, session)).await.expect("speaker row");
    world.store.set_speaker_connection(session, "speaker-conn").await.expect("the session names it");
}

fn speaker_row(world: &World, session: &session_core::ids::SessionId) -> session_core::model::Connection {
    session_core::model::Connection {
        connection_id: "speaker-conn".into(),
        session_id: Some(session.clone()),
        role: Role::Speaker,
        target_language: None,
        user_id: Some("user-42".into()),
        connected_at: NOW_MS,
        source_ip: "203.0.113.1".into(),
        ttl: world.clock.now_seconds() + 3600,
        session_expires_at: None,
        counted: false,
    }
}

#[tokio::test]
async fn a_tokenless_listener_connects_when_the_event_has_no_authorizer_key_at_all() {
    // The seed incident's other half: a stage without the authorizer must not break listeners,
    // whichever mode the function is configured for.
    for auth in [ConnectAuth::Authorizer, ConnectAuth::SelfVerify] {
        let world = World::new().await;
        let session = world.session_owned_by("user-42").await;
        let event = listener_event_without_authorizer(session.session_id.as_str());
        assert!(event.request_context.authorizer.is_none());
        let response = function(&world, auth).handle(&event).await;
        assert_eq!(response, WebSocketResponse::ok(), "{auth:?}");
        assert!(world.store.get_connection("L0SM9cOFvHcCIhw=").await.expect("read").is_some());
    }
}

#[tokio::test]
async fn a_speaker_connects_to_their_own_session_through_the_authorizer() {
    let world = World::new().await;
    let session = world.session_owned_by("user-42").await;
    let response = function(&world, ConnectAuth::Authorizer)
        .handle(&speaker_event(session.session_id.as_str(), "ignored-when-the-context-is-present"))
        .await;
    assert_eq!(response, WebSocketResponse::ok());
    let stored = world.store.get_session(&session.session_id).await.expect("read").expect("live");
    assert_eq!(stored.speaker_connection_id.as_deref(), Some("M1TN0dPGwIdDJix="));
    let row = world.store.get_connection("M1TN0dPGwIdDJix=").await.expect("read").expect("stored");
    assert_eq!((row.role, row.user_id.as_deref()), (Role::Speaker, Some("user-42")));
}

#[tokio::test]
async fn without_the_authorizer_the_function_verifies_the_token_itself() {
    let world = World::new().await;
    let session = world.session_owned_by("user-42").await;
    let mut event = speaker_event(session.session_id.as_str(), &world.token("user-42"));
    event.request_context.authorizer = None;
    let response = function(&world, ConnectAuth::SelfVerify).handle(&event).await;
    assert_eq!(response, WebSocketResponse::ok());
    let stored = world.store.get_session(&session.session_id).await.expect("read").expect("live");
    assert_eq!(stored.speaker_connection_id.as_deref(), Some("M1TN0dPGwIdDJix="));
}

/// Without the authorizer, `$connect` admits exactly the speakers the HTTP API's JWT authorizer
/// admits: a Cognito ID token and access token of the app client both connect the user as the
/// speaker of their own session; every other token is a 401, never a listener.
#[tokio::test]
async fn without_the_authorizer_it_accepts_exactly_the_tokens_the_http_apis_jwt_authorizer_accepts() {
    let world = World::new().await;
    let function = function(&world, ConnectAuth::SelfVerify);
    for (index, case) in token_cases(ISSUER, AUDIENCE, "user-42", NOW_MS / 1000).into_iter().enumerate() {
        let session = world.session_owned_by("user-42").await;
        let mut event = speaker_event(session.session_id.as_str(), &world.sign(&case.claims));
        event.request_context.authorizer = None;
        event.request_context.connection_id = format!("case{index:02}connection=");
        let response = function.handle(&event).await;
        if case.accepted {
            assert_eq!(response, WebSocketResponse::ok(), "{} was refused", case.name);
            let row = world.store.get_connection(&event.request_context.connection_id).await.expect("read");
            let row = row.expect("stored");
            assert_eq!((row.role, row.user_id.as_deref()), (Role::Speaker, Some("user-42")), "{}", case.name);
        } else {
            assert_eq!(response.status_code, 401, "{} was let through: {response:?}", case.name);
        }
    }
}

#[tokio::test]
async fn a_speaker_may_connect_without_a_session_and_create_one_later() {
    let world = World::new().await;
    let event = with_query(speaker_event("unused", ""), &[("token", &world.token("user-7"))]);
    let mut event = event;
    event.request_context.authorizer = None;
    let response = function(&world, ConnectAuth::SelfVerify).handle(&event).await;
    assert_eq!(response, WebSocketResponse::ok());
    let row = world.store.get_connection("M1TN0dPGwIdDJix=").await.expect("read").expect("stored");
    assert_eq!((row.role, row.session_id, row.user_id.as_deref()), (Role::Speaker, None, Some("user-7")));
}

#[tokio::test]
async fn an_invalid_speaker_token_is_401_never_a_listener() {
    let world = World::new().await;
    let session = world.session_owned_by("user-42").await;
    let id = session.session_id.as_str();
    let expired = world.token_expiring("user-42", NOW_MS / 1000 - 3600);
    let cases = [
        // Self-verifying stage, bad token with listener parameters: still 401.
        (
            ConnectAuth::SelfVerify,
            with_query(listener_event(id), &[("sessionId", id), ("targetLanguage", "de"), ("token", "garbage")]),
        ),
        (ConnectAuth::SelfVerify, with_query(listener_event(id), &[("sessionId", id), ("token", expired.as_str())])),
        // Authorizer stage whose event lost its context: the function verifies, and refuses.
        (
            ConnectAuth::Authorizer,
            with_query(listener_event_without_authorizer(id), &[("sessionId", id), ("token", "a.b.c")]),
        ),
    ];
    for (auth, mut event) in cases {
        if auth == ConnectAuth::SelfVerify {
            event.request_context.authorizer = None;
        }
        let response = function(&world, auth).handle(&event).await;
        assert_refused(&response, 401, "UNAUTHORIZED");
    }
    assert!(world.store.get_connection("L0SM9cOFvHcCIhw=").await.expect("read").is_none(), "nothing written");
    assert_eq!(world.store.get_session(&session.session_id).await.expect("read").expect("live").listener_count, 0);
}

#[tokio::test]
async fn an_unreachable_key_set_is_503_for_speakers_and_irrelevant_to_listeners() {
    let world = World::new().await;
    let session = world.session_owned_by("user-42").await;
    let mut function = function(&world, ConnectAuth::SelfVerify);
    function.verifier = Verifier::new(JwtConfig::new("i", ["a"], JwksSource::Url("http://127.0.0.1:9/jwks".into())));
    let mut speaker = speaker_event(session.session_id.as_str(), &world.token("user-42"));
    speaker.request_context.authorizer = None;
    assert_refused(&function.handle(&speaker).await, 503, "SERVICE_UNAVAILABLE");
    let listener = listener_event_without_authorizer(session.session_id.as_str());
    assert_eq!(function.handle(&listener).await, WebSocketResponse::ok());
}

#[tokio::test]
async fn handshake_refusals_have_the_documented_statuses() {
    let world = World::new().await;
    let session = world.session_owned_by("user-42").await;
    let id = session.session_id.as_str();
    let ended = world.session_owned_by("user-42").await;
    world.store.set_session_status(&ended.session_id, SessionStatus::Ended).await.expect("ended");
    let f = function(&world, ConnectAuth::Authorizer);
    let cases: Vec<(WebSocketEvent, u16, &str, Option<&str>)> = vec![
        (with_query(listener_event(id), &[]), 400, "MISSING_PARAMETER", Some("sessionId")),
        (with_query(listener_event(id), &[("targetLanguage", "de")]), 400, "MISSING_PARAMETER", Some("sessionId")),
        (with_query(listener_event(id), &[("sessionId", id)]), 400, "MISSING_PARAMETER", Some("targetLanguage")),
        (
            with_query(listener_event(id), &[("sessionId", ""), ("targetLanguage", "de")]),
            400,
            "MISSING_PARAMETER",
            Some("sessionId"),
        ),
        (
            with_query(listener_event(id), &[("sessionId", id), ("targetLanguage", "")]),
            400,
            "MISSING_PARAMETER",
            Some("targetLanguage"),
        ),
        (
            with_query(listener_event(id), &[("sessionId", "not-an-id"), ("targetLanguage", "de")]),
            400,
            "INVALID_PARAMETER",
            Some("sessionId"),
        ),
        (
            with_query(listener_event(id), &[("sessionId", "QUIET-HARBOR-417"), ("targetLanguage", "de")]),
            400,
            "INVALID_PARAMETER",
            Some("sessionId"),
        ),
        (
            with_query(listener_event(id), &[("sessionId", id), ("targetLanguage", "xx")]),
            400,
            "INVALID_PARAMETER",
            Some("targetLanguage"),
        ),
        (
            with_query(listener_event(id), &[("sessionId", id), ("targetLanguage", "DE")]),
            400,
            "INVALID_PARAMETER",
            Some("targetLanguage"),
        ),
        (
            with_query(listener_event(id), &[("sessionId", id), ("targetLanguage", "deu")]),
            400,
            "INVALID_PARAMETER",
            Some("targetLanguage"),
        ),
        (
            with_query(listener_event(id), &[("sessionId", "never-seen-999"), ("targetLanguage", "de")]),
            404,
            "SESSION_NOT_FOUND",
            None,
        ),
        (
            with_query(listener_event(id), &[("sessionId", ended.session_id.as_str()), ("targetLanguage", "de")]),
            403,
            "SESSION_INACTIVE",
            None,
        ),
        (speaker_event("never-seen-999", "t"), 404, "SESSION_NOT_FOUND", None),
        (speaker_event("not an id", "t"), 400, "INVALID_PARAMETER", Some("sessionId")),
        (speaker_event(ended.session_id.as_str(), "t"), 403, "SESSION_INACTIVE", None),
    ];
    for (event, status, code, field) in cases {
        let body = assert_refused(&f.handle(&event).await, status, code);
        assert_eq!(body["details"]["field"].as_str(), field, "{body}");
    }
    assert!(world.store.get_connection("L0SM9cOFvHcCIhw=").await.expect("read").is_none(), "nothing written");
}

#[tokio::test]
async fn a_speaker_who_does_not_own_the_session_is_forbidden() {
    let world = World::new().await;
    let session = world.session_owned_by("someone-else").await;
    let response =
        function(&world, ConnectAuth::Authorizer).handle(&speaker_event(session.session_id.as_str(), "t")).await;
    assert_refused(&response, 403, "FORBIDDEN");
    assert_eq!(
        world.store.get_session(&session.session_id).await.expect("read").expect("live").speaker_connection_id,
        None
    );
}

#[tokio::test]
async fn a_full_session_refuses_the_next_listener_and_keeps_its_count() {
    let mut world = World::new().await;
    world.limits.max_listeners_per_session = 2;
    let session = world.session_owned_by("user-42").await;
    let f = function(&world, ConnectAuth::Authorizer);
    for connection in ["one", "two"] {
        let event = with_connection_id(listener_event(session.session_id.as_str()), connection);
        assert_eq!(f.handle(&event).await, WebSocketResponse::ok());
    }
    let third = with_connection_id(listener_event(session.session_id.as_str()), "three");
    assert_refused(&f.handle(&third).await, 403, "SESSION_FULL");
    assert!(world.store.get_connection("three").await.expect("read").is_none());
    assert_eq!(world.store.get_session(&session.session_id).await.expect("read").expect("live").listener_count, 2);
}

#[tokio::test]
async fn a_count_drifted_by_lost_disconnects_is_corrected_when_it_says_full() {
    let mut world = World::new().await;
    world.limits.max_listeners_per_session = 2;
    let session = world.session_owned_by("user-42").await;
    let id = session.session_id.as_str();
    let f = function(&world, ConnectAuth::Authorizer);
    for connection in ["one", "two"] {
        assert_eq!(f.handle(&with_connection_id(listener_event(id), connection)).await, WebSocketResponse::ok());
    }
    // Both connections closed, and neither $disconnect arrived: the count still says 2, and the
    // rows are past their TTL (or already deleted by DynamoDB's TTL sweep).
    world.clock.advance_seconds(world.limits.connection_ttl_seconds + 1);
    world.store.delete_connection("two").await.expect("swept");
    let count = |world: &World| {
        let store = world.store.clone();
        let session = session.session_id.clone();
        async move { store.get_session(&session).await.expect("read").expect("live").listener_count }
    };
    assert_eq!(count(&world).await, 2);

    // The session is not full: the next listeners get in, and the count is exact again.
    for connection in ["three", "four"] {
        assert_eq!(f.handle(&with_connection_id(listener_event(id), connection)).await, WebSocketResponse::ok());
    }
    assert_eq!(count(&world).await, 2);
    // Now it is full, and the recount agrees.
    assert_refused(&f.handle(&with_connection_id(listener_event(id), "five")).await, 403, "SESSION_FULL");
    assert_eq!(count(&world).await, 2);
    assert!(world.store.get_connection("five").await.expect("read").is_none(), "a refused listener has no row");
    world.assert_calls_permitted(&contract::functions::CONNECTION);
}

fn refreshing(event: WebSocketEvent, new_id: &str, previous: &str) -> WebSocketEvent {
    let mut event = with_connection_id(event, new_id);
    let query = event.query_string_parameters.get_or_insert_with(Default::default);
    query.insert("previousConnectionId".into(), previous.into());
    event
}

#[tokio::test]
async fn a_listener_refresh_in_a_full_session_moves_its_place() {
    let mut world = World::new().await;
    world.limits.max_listeners_per_session = 2;
    let session = world.session_owned_by("user-42").await;
    world.store.set_speaker_connection(&session.session_id, "speaker-conn").await.expect("speaker");
    speaker_connected(&world, &session.session_id).await;
    let id = session.session_id.as_str();
    let f = function(&world, ConnectAuth::Authorizer);
    for connection in ["one", "two"] {
        assert_eq!(f.handle(&with_connection_id(listener_event(id), connection)).await, WebSocketResponse::ok());
    }
    let count =
        || async { world.store.get_session(&session.session_id).await.expect("read").expect("live").listener_count };
    assert_eq!(count().await, 2, "full");

    // "one" refreshes: the new connection gets in, in the old one's place.
    let refresh = refreshing(listener_event(id), "one-new", "one");
    assert_eq!(f.handle(&refresh).await, WebSocketResponse::ok());
    assert_eq!(count().await, 2);
    assert!(world.store.get_connection("one").await.expect("read").is_none(), "the old row is gone");
    let row = world.store.get_connection("one-new").await.expect("read").expect("stored");
    assert_eq!((row.role, row.session_id.as_ref()), (Role::Listener, Some(&session.session_id)));
    let heard = world.connections_api.messages_to("speaker-conn");
    assert_eq!(
        heard.last().map(|m| (m["type"].clone(), m["listenerCount"].clone())),
        Some(("listenerCountChanged".into(), 2.into()))
    );

    // The old connection closes; its $disconnect has nothing left to uncount.
    assert_eq!(f.handle(&disconnect_event("one")).await, WebSocketResponse::ok());
    assert_eq!(count().await, 2);
    // The count is exact: the session is still full for a newcomer...
    assert_refused(&f.handle(&with_connection_id(listener_event(id), "three")).await, 403, "SESSION_FULL");
    // ...and for a "refresh" of a connection that holds no place (it already left).
    assert_refused(&f.handle(&refreshing(listener_event(id), "one-again", "one")).await, 403, "SESSION_FULL");
    assert!(world.store.get_connection("one-again").await.expect("read").is_none());
    assert_eq!(count().await, 2);
    assert_eq!(world.store.listeners(&session.session_id, None).await.expect("rows").len(), 2);
    world.assert_calls_permitted(&contract::functions::CONNECTION);
}

#[tokio::test]
async fn a_refresh_in_another_language_moves_the_place_and_the_speaker_hears_the_distribution() {
    let world = World::new().await;
    let session = world.session_owned_by("user-42").await;
    world.store.set_speaker_connection(&session.session_id, "speaker-conn").await.expect("speaker");
    speaker_connected(&world, &session.session_id).await;
    let id = session.session_id.as_str();
    let f = function(&world, ConnectAuth::Authorizer);
    let in_language =
        |language: &str| with_query(listener_event(id), &[("sessionId", id), ("targetLanguage", language)]);
    for connection in ["one", "two"] {
        assert_eq!(f.handle(&with_connection_id(in_language("de"), connection)).await, WebSocketResponse::ok());
    }
    let last_told = || {
        let told = world.connections_api.messages_to("speaker-conn");
        let last = told.last().cloned().unwrap_or_default();
        (told.len(), last["listenerCount"].clone(), last["languageDistribution"].clone())
    };
    assert_eq!(last_told(), (2, 2.into(), serde_json::json!({"de": 2})));

    // "one" refreshes in French: same count, one place moved to fr.
    assert_eq!(f.handle(&refreshing(in_language("fr"), "one-fr", "one")).await, WebSocketResponse::ok());
    assert_eq!(last_told(), (3, 2.into(), serde_json::json!({"de": 1, "fr": 1})));
    // "two" refreshes in its own language: no count changes, and the speaker hears nothing.
    assert_eq!(f.handle(&refreshing(in_language("de"), "two-de", "two")).await, WebSocketResponse::ok());
    assert_eq!(last_told(), (3, 2.into(), serde_json::json!({"de": 1, "fr": 1})));

    // The old connections' late $disconnects uncount nothing; the new ones' do.
    for old in ["one", "two"] {
        assert_eq!(f.handle(&disconnect_event(old)).await, WebSocketResponse::ok());
    }
    assert_eq!(last_told(), (3, 2.into(), serde_json::json!({"de": 1, "fr": 1})));
    assert_eq!(f.handle(&disconnect_event("two-de")).await, WebSocketResponse::ok());
    assert_eq!(last_told(), (4, 1.into(), serde_json::json!({"fr": 1})), "a language at zero is left out");
    let stored = world.store.get_session(&session.session_id).await.expect("read").expect("live");
    assert_eq!(stored.language_counts, Some([(language("fr"), 1)].into()));
    world.assert_calls_permitted(&contract::functions::CONNECTION);
}

#[tokio::test]
async fn only_a_listener_of_the_same_session_can_be_refreshed() {
    let world = World::new().await;
    let session = world.session_owned_by("user-42").await;
    let other = world.session_owned_by("user-42").await;
    let f = function(&world, ConnectAuth::Authorizer);
    let (id, other_id) = (session.session_id.as_str(), other.session_id.as_str());
    assert_eq!(f.handle(&with_connection_id(listener_event(other_id), "elsewhere")).await, WebSocketResponse::ok());
    assert_eq!(f.handle(&with_connection_id(speaker_event(id, "t"), "the-speaker")).await, WebSocketResponse::ok());
    let count = |session: &session_core::model::Session| {
        let (store, id) = (world.store.clone(), session.session_id.clone());
        async move { store.get_session(&id).await.expect("read").expect("live").listener_count }
    };

    // Naming another session's listener, or the speaker, takes nothing: counted as new.
    for (new, previous) in [("new-1", "elsewhere"), ("new-2", "the-speaker")] {
        assert_eq!(f.handle(&refreshing(listener_event(id), new, previous)).await, WebSocketResponse::ok());
        assert!(world.store.get_connection(previous).await.expect("read").is_some(), "{previous} keeps its row");
    }
    assert_eq!((count(&session).await, count(&other).await), (2, 1));
    let stored = world.store.get_session(&session.session_id).await.expect("read").expect("live");
    assert_eq!(stored.speaker_connection_id.as_deref(), Some("the-speaker"));

    // A connection naming itself is an ordinary connect.
    assert_eq!(f.handle(&refreshing(listener_event(id), "new-3", "new-3")).await, WebSocketResponse::ok());
    assert!(world.store.get_connection("new-3").await.expect("read").is_some());
    assert_eq!(count(&session).await, 3);

    // A malformed id is refused like any other bad parameter.
    for bad in ["has space", &"x".repeat(129), "tab\there"] {
        let body =
            assert_refused(&f.handle(&refreshing(listener_event(id), "bad", bad)).await, 400, "INVALID_PARAMETER");
        assert_eq!(body["details"]["field"], "previousConnectionId", "{body}");
    }
}

#[tokio::test]
async fn connects_are_rate_limited_per_ip() {
    let mut world = World::new().await;
    world.limits.connects_per_minute_per_ip = 2;
    let session = world.session_owned_by("user-42").await;
    let f = function(&world, ConnectAuth::Authorizer);
    for connection in ["one", "two"] {
        let event = with_connection_id(listener_event(session.session_id.as_str()), connection);
        assert_eq!(f.handle(&event).await, WebSocketResponse::ok());
    }
    let third = with_connection_id(listener_event(session.session_id.as_str()), "three");
    world.recorder.clear();
    let body = assert_refused(&f.handle(&third).await, 429, "RATE_LIMIT_EXCEEDED");
    assert!(body["retryAfter"].as_u64().is_some_and(|seconds| (1..=60).contains(&seconds)), "{body}");
    // A refusal is cheap: one conditional write, whose refusal shows the full window.
    assert_eq!(world.recorder.calls(), [("DynamoDB".to_owned(), "UpdateItem".to_owned())]);
    // Another address is not limited.
    let mut other = with_connection_id(listener_event(session.session_id.as_str()), "four");
    other.request_context.identity.source_ip = "198.51.100.8".into();
    assert_eq!(f.handle(&other).await, WebSocketResponse::ok());
}

#[tokio::test]
async fn a_listener_leaving_is_uncounted_once_and_the_speaker_is_told() {
    let world = World::new().await;
    let session = world.session_owned_by("user-42").await;
    speaker_connected(&world, &session.session_id).await;
    let f = function(&world, ConnectAuth::Authorizer);
    assert_eq!(f.handle(&listener_event(session.session_id.as_str())).await, WebSocketResponse::ok());
    world.connections_api.clear();

    for _ in 0..2 {
        // AWS may deliver $disconnect twice or never; twice must count once.
        assert_eq!(f.handle(&disconnect_event("L0SM9cOFvHcCIhw=")).await, WebSocketResponse::ok());
    }
    assert!(world.store.get_connection("L0SM9cOFvHcCIhw=").await.expect("read").is_none());
    assert_eq!(world.store.get_session(&session.session_id).await.expect("read").expect("live").listener_count, 0);
    let told = world.connections_api.messages_to("speaker-conn");
    assert_eq!(told.len(), 1);
    assert_eq!((told[0]["type"].as_str(), told[0]["listenerCount"].as_u64()), (Some("listenerCountChanged"), Some(0)));
    world.assert_calls_permitted(&contract::functions::CONNECTION);
}

#[tokio::test]
async fn an_unknown_connection_disconnecting_is_fine() {
    let world = World::new().await;
    let response = function(&world, ConnectAuth::Authorizer).handle(&disconnect_event("never-connected")).await;
    assert_eq!(response, WebSocketResponse::ok());
}

#[tokio::test]
async fn a_speaker_leaving_starts_the_grace_period_and_its_end_ends_the_session() {
    let world = World::new().await;
    let session = world.session_owned_by("user-42").await;
    let id = session.session_id.as_str();
    let f = function(&world, ConnectAuth::Authorizer);
    assert_eq!(f.handle(&speaker_event(id, "t")).await, WebSocketResponse::ok());
    assert_eq!(f.handle(&with_connection_id(listener_event(id), "listener-1")).await, WebSocketResponse::ok());
    assert_eq!(f.handle(&disconnect_event("M1TN0dPGwIdDJix=")).await, WebSocketResponse::ok());
    let stored = world.store.get_session(&session.session_id).await.expect("read").expect("live");
    assert_eq!(stored.speaker_gone_at, Some(NOW_MS / 1000));
    assert_eq!(stored.status, SessionStatus::Active, "the session waits for the speaker");

    // Within the grace period a listener may still join.
    world.clock.advance_seconds(30);
    assert_eq!(f.handle(&with_connection_id(listener_event(id), "listener-2")).await, WebSocketResponse::ok());
    // After it, the next use of the session ends it for everyone.
    world.clock.advance_seconds(31);
    assert_refused(&f.handle(&with_connection_id(listener_event(id), "listener-3")).await, 403, "SESSION_INACTIVE");
    let stored = world.store.get_session(&session.session_id).await.expect("read").expect("present");
    assert_eq!(stored.status, SessionStatus::Ended);
    for listener in ["listener-1", "listener-2"] {
        let told = world.connections_api.messages_to(listener);
        assert_eq!(told.last().map(|m| m["type"].clone()), Some("sessionEnded".into()), "{listener}: {told:?}");
        assert_eq!(told.last().map(|m| m["reason"].clone()), Some("speakerDisconnected".into()));
        assert!(world.connections_api.deleted().contains(&listener.to_owned()), "{listener} closed");
    }
}

#[tokio::test]
async fn a_refreshed_speakers_old_connection_leaving_does_not_start_the_grace_period() {
    let world = World::new().await;
    let session = world.session_owned_by("user-42").await;
    let id = session.session_id.as_str();
    let f = function(&world, ConnectAuth::Authorizer);
    assert_eq!(f.handle(&with_connection_id(speaker_event(id, "t"), "old")).await, WebSocketResponse::ok());
    assert_eq!(f.handle(&with_connection_id(speaker_event(id, "t"), "new")).await, WebSocketResponse::ok());
    assert_eq!(f.handle(&disconnect_event("old")).await, WebSocketResponse::ok());
    let stored = world.store.get_session(&session.session_id).await.expect("read").expect("live");
    assert_eq!((stored.speaker_connection_id.as_deref(), stored.speaker_gone_at), (Some("new"), None));
}

#[tokio::test]
async fn a_speaker_connection_closing_hands_the_session_to_the_speakers_other_open_connection() {
    // No grace period, so a speaker wrongly taken for gone would end the session at once.
    let mut world = World::new().await;
    world.limits.speaker_grace_seconds = 0;
    let session = world.session_owned_by("user-42").await;
    let id = session.session_id.as_str();
    let f = function(&world, ConnectAuth::Authorizer);
    assert_eq!(f.handle(&with_connection_id(speaker_event(id, "t"), "tab-1")).await, WebSocketResponse::ok());
    world.clock.advance_seconds(1);
    assert_eq!(f.handle(&with_connection_id(speaker_event(id, "t"), "tab-2")).await, WebSocketResponse::ok());
    assert_eq!(f.handle(&with_connection_id(listener_event(id), "listener-1")).await, WebSocketResponse::ok());
    let stored = world.store.get_session(&session.session_id).await.expect("read").expect("live");
    assert_eq!(stored.speaker_connection_id.as_deref(), Some("tab-2"), "the newest connection speaks");

    // The session's speaker connection closes; the speaker's other one is still open.
    assert_eq!(f.handle(&disconnect_event("tab-2")).await, WebSocketResponse::ok());
    let stored = world.store.get_session(&session.session_id).await.expect("read").expect("live");
    assert_eq!(stored.status, SessionStatus::Active);
    assert_eq!((stored.speaker_connection_id.as_deref(), stored.speaker_gone_at), (Some("tab-1"), None));
    assert!(world.connections_api.messages_to("listener-1").iter().all(|m| m["type"] != "sessionEnded"));
    world.assert_calls_permitted(&contract::functions::CONNECTION);

    // When the last one closes, the speaker is gone.
    assert_eq!(f.handle(&disconnect_event("tab-1")).await, WebSocketResponse::ok());
    let stored = world.store.get_session(&session.session_id).await.expect("read").expect("present");
    assert_eq!((stored.status, stored.speaker_connection_id), (SessionStatus::Ended, None));
}

#[tokio::test]
async fn a_speaker_row_whose_connection_is_closed_does_not_take_the_session_over() {
    let world = World::new().await;
    let session = world.session_owned_by("user-42").await;
    let id = session.session_id.as_str();
    let f = function(&world, ConnectAuth::Authorizer);
    assert_eq!(f.handle(&with_connection_id(speaker_event(id, "t"), "lost")).await, WebSocketResponse::ok());
    // Past the handshake window: a 410 for "lost" now means closed, not "still connecting".
    let later = session_core::lifecycle::HANDSHAKE_WINDOW_MS / 1000 + 1;
    world.clock.advance_seconds(later);
    assert_eq!(f.handle(&with_connection_id(speaker_event(id, "t"), "current")).await, WebSocketResponse::ok());
    // "lost" closed long ago, but its $disconnect never arrived: its row is still there.
    world.connections_api.mark_gone("lost");

    assert_eq!(f.handle(&disconnect_event("current")).await, WebSocketResponse::ok());
    let stored = world.store.get_session(&session.session_id).await.expect("read").expect("live");
    assert_eq!(stored.speaker_connection_id, None);
    assert_eq!(stored.speaker_gone_at, Some(NOW_MS / 1000 + later), "the grace period starts");
    assert!(world.store.get_connection("lost").await.expect("read").is_none(), "the stale row is forgotten");
}

#[tokio::test]
async fn with_no_grace_period_a_speaker_leaving_ends_the_session_at_once() {
    let mut world = World::new().await;
    world.limits.speaker_grace_seconds = 0;
    let session = world.session_owned_by("user-42").await;
    let id = session.session_id.as_str();
    let f = function(&world, ConnectAuth::Authorizer);
    assert_eq!(f.handle(&speaker_event(id, "t")).await, WebSocketResponse::ok());
    assert_eq!(f.handle(&with_connection_id(listener_event(id), "listener-1")).await, WebSocketResponse::ok());
    assert_eq!(f.handle(&disconnect_event("M1TN0dPGwIdDJix=")).await, WebSocketResponse::ok());
    let stored = world.store.get_session(&session.session_id).await.expect("read").expect("present");
    assert_eq!(stored.status, SessionStatus::Ended);
    assert_eq!(world.connections_api.messages_to("listener-1")[0]["type"], "sessionEnded");
}

#[tokio::test]
async fn an_event_for_another_route_is_a_500_not_a_crash() {
    let world = World::new().await;
    let mut event = listener_event("quiet-harbor-417");
    event.request_context.event_type = "MESSAGE".into();
    event.request_context.route_key = "heartbeat".into();
    assert_refused(&function(&world, ConnectAuth::Authorizer).handle(&event).await, 500, "INTERNAL_ERROR");
}

#[test]
fn settings_come_from_the_declared_environment() {
    let declared = |overrides: &[(&str, &str)]| {
        let mut variables: std::collections::HashMap<String, String> = contract::functions::CONNECTION
            .environment
            .iter()
            .map(|var| (var.name.to_owned(), "60".to_owned()))
            .collect();
        variables.insert("CONNECT_AUTH".into(), "self".into());
        variables.insert("JWKS_SOURCE".into(), "{\"keys\":[]}".into());
        for (name, value) in overrides {
            variables.insert(name.to_string(), value.to_string());
        }
        session_core::config::FunctionEnv::from_map(&contract::functions::CONNECTION, variables)
    };
    let (limits, auth, _) = ConnectionFunction::settings(&declared(&[])).expect("valid");
    assert_eq!(
        (auth, limits.speaker_grace_seconds, limits.max_listeners_per_session),
        (ConnectAuth::SelfVerify, 60, 60)
    );
    let error = ConnectionFunction::settings(&declared(&[("CONNECT_AUTH", "maybe")])).expect_err("invalid");
    assert!(error.to_string().contains("CONNECT_AUTH"), "{error}");
}

/// The DynamoDB operations one listener's `$connect` makes, in order, when it joins a session
/// that already has `audience` listeners (half `de`, half `fr`) and a connected speaker.
async fn dynamodb_calls_of_a_join(world: &World, audience: usize) -> Vec<String> {
    let session = world.session_owned_by("user-42").await;
    let id = session.session_id.as_str();
    let f = function(world, ConnectAuth::Authorizer);
    let speaker = format!("speaker-{audience}");
    assert_eq!(f.handle(&with_connection_id(speaker_event(id, "t"), &speaker)).await, WebSocketResponse::ok());
    for index in 0..audience {
        let language = if index % 2 == 0 { "de" } else { "fr" };
        let event = with_query(listener_event(id), &[("sessionId", id), ("targetLanguage", language)]);
        let event = with_connection_id(event, &format!("listener-{audience}-{index}"));
        assert_eq!(f.handle(&event).await, WebSocketResponse::ok());
    }
    world.recorder.clear();
    let event = with_query(listener_event(id), &[("sessionId", id), ("targetLanguage", "es")]);
    assert_eq!(f.handle(&with_connection_id(event, &format!("newcomer-{audience}"))).await, WebSocketResponse::ok());
    let calls = world.recorder.calls();
    let told = world.connections_api.messages_to(&speaker);
    let last = told.last().expect("the speaker was told");
    assert_eq!(last["listenerCount"], audience + 1);
    let (de, fr) = (audience.div_ceil(2), audience / 2);
    assert_eq!(last["languageDistribution"], serde_json::json!({"de": de, "fr": fr, "es": 1}));
    calls.into_iter().filter(|(service, _)| service == "DynamoDB").map(|(_, operation)| operation).collect()
}

#[tokio::test]
async fn a_joins_dynamodb_calls_do_not_grow_with_the_audience() {
    let mut world = World::new().await;
    world.limits.connects_per_minute_per_ip = 1000;
    // Pages of 10 rows: anything that read every listener row would take more pages for 50.
    world.store = world.store.clone().with_page_size(10);
    let small = dynamodb_calls_of_a_join(&world, 5).await;
    let large = dynamodb_calls_of_a_join(&world, 50).await;
    eprintln!("a join's DynamoDB calls: 5 listeners {small:?}, 50 listeners {large:?}");
    assert_eq!(small, large);
    // No query: the speaker's row is read by the id the session names, and the counts come
    // back from the count's own write.
    assert!(!small.iter().any(|operation| operation == "Query"), "{small:?}");
    world.assert_calls_permitted(&contract::functions::CONNECTION);
}

/// A session of `cap` listeners, full, whose listeners connected `age` seconds before now.
async fn full_session(world: &mut World, cap: u32, age: i64) -> session_core::model::Session {
    world.limits.max_listeners_per_session = cap;
    let session = world.session_owned_by("user-42").await;
    let f = function(world, ConnectAuth::Authorizer);
    for index in 0..cap {
        let event = with_connection_id(listener_event(session.session_id.as_str()), &format!("early-{index}"));
        assert_eq!(f.handle(&event).await, WebSocketResponse::ok());
    }
    world.clock.advance_seconds(age);
    session
}

#[tokio::test]
async fn a_full_count_drifted_by_lost_disconnects_admits_at_once_once_connections_are_asked() {
    let mut world = World::new().await;
    let session = full_session(&mut world, 3, 120).await;
    // Two listeners closed their tabs; API Gateway never delivered their $disconnect. Their rows
    // are within their TTL (3 h), so only asking `@connections` tells.
    world.connections_api.mark_gone("early-0");
    world.connections_api.mark_gone("early-2");
    let f = function(&world, ConnectAuth::Authorizer);
    let id = session.session_id.as_str();
    assert_eq!(f.handle(&with_connection_id(listener_event(id), "newcomer")).await, WebSocketResponse::ok());
    let stored = world.store.get_session(&session.session_id).await.expect("read").expect("live");
    assert_eq!(stored.listener_count, 2, "early-1 and the newcomer");
    assert!(world.store.get_connection("early-0").await.expect("read").is_none());
    assert!(world.store.get_connection("early-1").await.expect("read").is_some());
    world.assert_calls_permitted(&contract::functions::CONNECTION);
}

#[tokio::test]
async fn a_recount_never_lowers_the_count_below_a_join_the_index_does_not_show_yet() {
    let mut world = World::new().await;
    let session = full_session(&mut world, 3, 120).await;
    // One listener is counted but its row is not in the fan-out index yet (the index lags its
    // table): as if its row were missing from the query, while its count was written just now.
    world.store.delete_connection("early-1").await.expect("hidden from the index");
    world.store.remove_listener(&session.session_id, Some(language("de"))).await.expect("uncounted");
    world.store.add_listener(&session.session_id, language("de"), 3).await.expect("counted again, now");
    let f = function(&world, ConnectAuth::Authorizer);
    let id = session.session_id.as_str();
    assert_refused(&f.handle(&with_connection_id(listener_event(id), "newcomer")).await, 403, "SESSION_FULL");
    let stored = world.store.get_session(&session.session_id).await.expect("read").expect("live");
    assert_eq!(stored.listener_count, 3, "the count was not lowered to the two rows the index shows");
}

#[tokio::test]
async fn a_full_session_is_recounted_at_most_twice_a_minute() {
    let mut world = World::new().await;
    let session = full_session(&mut world, 2, 120).await;
    let f = function(&world, ConnectAuth::Authorizer);
    let id = session.session_id.as_str();
    assert_refused(&f.handle(&with_connection_id(listener_event(id), "first")).await, 403, "SESSION_FULL");
    // Within the recount interval, a refusal reads no listener rows and asks no connection.
    world.recorder.clear();
    world.connections_api.clear();
    assert_refused(&f.handle(&with_connection_id(listener_event(id), "second")).await, 403, "SESSION_FULL");
    assert!(world.recorder.calls().iter().all(|(_, operation)| operation != "Query"), "{:?}", world.recorder.calls());
    assert!(world.connections_api.requests().is_empty());
    assert!(world.store.get_connection("second").await.expect("read").is_none(), "nothing half-written");
}

#[tokio::test]
async fn a_reused_session_id_never_sees_or_counts_the_old_sessions_connections() {
    let mut world = World::new().await;
    world.limits.session_lifetime_seconds = 600;
    let old = world.session_owned_by("user-42").await;
    let id = old.session_id.clone();
    let f = function(&world, ConnectAuth::Authorizer);
    // A listener of the old session, whose $disconnect will come late (API Gateway keeps the
    // connection up to 2 h, past the session's end); its row's TTL runs for hours.
    assert_eq!(
        f.handle(&with_connection_id(listener_event(id.as_str()), "old-listener")).await,
        WebSocketResponse::ok()
    );
    world.clock.advance_seconds(601);

    // The id is free again: a new session takes it.
    let new = world
        .store
        .create_session_with_ids(
            session_core::store::NewSession {
                speaker_user_id: "user-7".into(),
                source_language: language("en"),
                quality_tier: session_core::validation::QualityTier::Standard,
                lifetime_seconds: 3600,
            },
            [id.clone()],
        )
        .await
        .expect("the expired id is taken again");
    assert_eq!((new.session_id.clone(), new.listener_count), (id.clone(), 0));
    assert_eq!(
        f.handle(&with_connection_id(listener_event(id.as_str()), "new-listener")).await,
        WebSocketResponse::ok()
    );

    // The new session's fan-out, counts and distribution know only its own listener.
    let listeners: Vec<String> =
        world.store.listeners(&id, None).await.expect("query").into_iter().map(|row| row.connection_id).collect();
    assert_eq!(listeners, ["new-listener"]);
    assert!(world.store.get_connection("old-listener").await.expect("read").is_none(), "the old row is not live");
    // The old listener's late $disconnect uncounts nothing of the new session.
    assert_eq!(f.handle(&disconnect_event("old-listener")).await, WebSocketResponse::ok());
    let stored = world.store.get_session(&id).await.expect("read").expect("live");
    assert_eq!(stored.listener_count, 1);
    assert_eq!(stored.language_counts, Some([(language("de"), 1)].into()));
}

#[tokio::test]
async fn a_handshake_whose_work_outlasts_the_invocation_is_refused_with_503_in_time() {
    let world = World::new().await;
    let session = world.session_owned_by("user-42").await;
    speaker_connected(&world, &session.session_id).await;
    // Telling the speaker about the new listener never finishes.
    world.connections_api.stall("speaker-conn");
    let left = ANSWER_RESERVE + Duration::from_millis(1500);
    let started = Instant::now();
    let event = listener_event(session.session_id.as_str());
    let response = function(&world, ConnectAuth::Authorizer).handle_by(&event, Deadline::after(left)).await;
    assert!(started.elapsed() < left, "answered before the deadline, not killed by Lambda");
    let body = assert_refused(&response, 503, "SERVICE_UNAVAILABLE");
    assert_eq!(body["retryAfter"], 2, "{body}");
}

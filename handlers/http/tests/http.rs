//! The HTTP session API driven by events shaped like API Gateway's (HTTP API, payload format
//! 2.0, JWT authorizer), against the local DynamoDB endpoint and a recording `@connections`
//! API reached by the real SDK client.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::HeaderMap;
use base64::Engine as _;
use harness::{NOW_MS, World, language, session_id};
use http_function::HttpFunction;
use serde_json::{Value, json};
use session_core::ids::SessionId;
use session_core::model::{Connection, Role, Session, SessionStatus};
use session_core::store::Clock;
use session_core::validation::QualityTier;

const OWNER: &str = "user-42";

fn function(world: &World) -> HttpFunction {
    let connections = world.notifier.configured().expect("the world configures the management endpoint");
    HttpFunction { store: world.store.clone(), connections, limits: world.limits }
}

fn fixture(text: &str, session: &str) -> ApiGatewayV2httpRequest {
    serde_json::from_str(&text.replace("SESSION", session)).expect("fixture")
}

fn post(body: &str) -> ApiGatewayV2httpRequest {
    with_body(fixture(include_str!("data/post_sessions.json"), ""), Some(body))
}

fn get(id: &str) -> ApiGatewayV2httpRequest {
    fixture(include_str!("data/get_session.json"), id)
}

fn patch(id: &str, body: &str) -> ApiGatewayV2httpRequest {
    with_body(fixture(include_str!("data/patch_session.json"), id), Some(body))
}

fn delete(id: &str) -> ApiGatewayV2httpRequest {
    fixture(include_str!("data/delete_session.json"), id)
}

fn health() -> ApiGatewayV2httpRequest {
    fixture(include_str!("data/health.json"), "")
}

fn with_body(mut event: ApiGatewayV2httpRequest, body: Option<&str>) -> ApiGatewayV2httpRequest {
    event.body = body.map(str::to_owned);
    event
}

fn as_user(mut event: ApiGatewayV2httpRequest, user: &str) -> ApiGatewayV2httpRequest {
    let jwt = event.request_context.authorizer.as_mut().and_then(|authorizer| authorizer.jwt.as_mut());
    jwt.expect("a JWT route's fixture has claims").claims.insert("sub".into(), user.into());
    event
}

fn with_route_key(mut event: ApiGatewayV2httpRequest, key: &str) -> ApiGatewayV2httpRequest {
    event.route_key = Some(key.to_owned());
    event.request_context.route_key = Some(key.to_owned());
    event
}

/// A response, read: every response is JSON.
#[derive(Debug)]
struct Answer {
    status: i64,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Asserts a refusal's status, code and field (`details.field`).
    fn assert_refused(&self, status: i64, code: &str, field: Option<&str>) {
        assert_eq!((self.status, self.body["code"].as_str()), (status, Some(code)), "{self:?}");
        assert_eq!(self.body["details"]["field"].as_str(), field, "{self:?}");
        assert!(self.body["message"].as_str().is_some_and(|message| !message.is_empty()), "{self:?}");
    }
}

fn read(response: ApiGatewayV2httpResponse) -> Answer {
    let content_type = response.headers.get("content-type").and_then(|value| value.to_str().ok());
    assert_eq!(content_type, Some("application/json"), "{response:?}");
    let Some(Body::Text(text)) = &response.body else { panic!("a text body: {response:?}") };
    let body = serde_json::from_str(text).unwrap_or_else(|error| panic!("a JSON body ({error}): {text}"));
    Answer { status: response.status_code, headers: response.headers, body }
}

async fn call(function: &HttpFunction, event: &ApiGatewayV2httpRequest) -> Answer {
    read(function.handle(event).await)
}

async fn stored(world: &World, id: &SessionId) -> Session {
    world.store.get_session(id).await.expect("read").expect("stored")
}

/// A listener of `session` in `language`, with its row and its place counted.
async fn listener(world: &World, session: &SessionId, connection_id: &str, code: &str) {
    world.store.put_connection(&row(world, session, connection_id, Role::Listener, Some(code))).await.expect("row");
    world.store.add_listener(session, language(code), world.limits.max_listeners_per_session).await.expect("counted");
    assert!(world.store.mark_counted(connection_id).await.expect("marked"), "the row is there");
}

/// The owner's speaker connection on `session`.
async fn speaker(world: &World, session: &SessionId, connection_id: &str) {
    world.store.put_connection(&row(world, session, connection_id, Role::Speaker, None)).await.expect("row");
    world.store.set_speaker_connection(session, connection_id).await.expect("speaker");
}

fn row(world: &World, session: &SessionId, connection_id: &str, role: Role, code: Option<&str>) -> Connection {
    Connection {
        connection_id: connection_id.to_owned(),
        session_id: Some(session.clone()),
        role,
        target_language: code.map(language),
        user_id: (role == Role::Speaker).then(|| OWNER.to_owned()),
        connected_at: NOW_MS,
        source_ip: "198.51.100.7".into(),
        ttl: world.clock.now_seconds() + 3600,
        session_expires_at: None,
        counted: false,
    }
}

fn types(messages: &[Value]) -> Vec<&str> {
    messages.iter().filter_map(|message| message["type"].as_str()).collect()
}

#[tokio::test]
async fn a_speaker_creates_a_session() {
    let world = World::new().await;
    let answer = call(&function(&world), &post(r#"{"sourceLanguage":"en","qualityTier":"standard"}"#)).await;

    assert_eq!(answer.status, 201, "{answer:?}");
    let id = session_id(answer.body["sessionId"].as_str().expect("an id"));
    assert_eq!(answer.header("location"), Some(format!("/sessions/{}", id.as_str()).as_str()));
    let lifetime_ms = world.limits.session_lifetime_seconds * 1000;
    assert_eq!(
        answer.body,
        json!({
            "sessionId": id.as_str(),
            "status": "active",
            "sourceLanguage": "en",
            "qualityTier": "standard",
            "listenerCount": 0,
            "broadcastState": { "isPaused": false, "isMuted": false, "volume": 1.0 },
            "createdAt": NOW_MS,
            "expiresAt": NOW_MS + lifetime_ms,
        })
    );
    let session = stored(&world, &id).await;
    assert_eq!(session.speaker_user_id, OWNER);
    assert_eq!((session.source_language, session.quality_tier), (language("en"), QualityTier::Standard));
    assert_eq!(session.expires_at - session.created_at, world.limits.session_lifetime_seconds);
    world.assert_calls_permitted(&contract::functions::HTTP);
}

#[tokio::test]
async fn a_session_may_be_premium_and_standard_is_the_default() {
    let world = World::new().await;
    let f = function(&world);
    let premium = call(&f, &post(r#"{"sourceLanguage":"de","qualityTier":"premium"}"#)).await;
    assert_eq!((premium.status, premium.body["qualityTier"].as_str()), (201, Some("premium")));
    assert_eq!(
        stored(&world, &session_id(premium.body["sessionId"].as_str().expect("id"))).await.quality_tier,
        QualityTier::Premium
    );
    for body in [r#"{"sourceLanguage":"fr"}"#, r#"{"sourceLanguage":"fr","qualityTier":null,"extra":true}"#] {
        let standard = call(&f, &post(body)).await;
        assert_eq!((standard.status, standard.body["qualityTier"].as_str()), (201, Some("standard")), "{body}");
    }
}

#[tokio::test]
async fn a_base64_encoded_body_is_decoded() {
    let world = World::new().await;
    let mut event = post(&base64::engine::general_purpose::STANDARD.encode(r#"{"sourceLanguage":"ja"}"#));
    event.is_base64_encoded = true;
    let answer = call(&function(&world), &event).await;
    assert_eq!((answer.status, answer.body["sourceLanguage"].as_str()), (201, Some("ja")), "{answer:?}");
}

#[tokio::test]
async fn anyone_reads_a_session_without_its_private_fields() {
    let world = World::new().await;
    let session = world.session_owned_by(OWNER).await;
    let id = &session.session_id;
    speaker(&world, id, "speaker-conn").await;
    listener(&world, id, "listener-de", "de").await;

    let answer = call(&function(&world), &get(id.as_str())).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(get(id.as_str()).request_context.authorizer.is_none(), "GET has no authorizer");
    assert_eq!(answer.body["sessionId"], id.as_str());
    assert_eq!(answer.body["status"], "active");
    assert_eq!(answer.body["listenerCount"], 1);
    assert_eq!(answer.body["createdAt"], session.created_at * 1000);
    assert_eq!(answer.body["expiresAt"], session.expires_at * 1000);
    let text = answer.body.to_string();
    for private in ["speakerUserId", "speakerConnectionId", OWNER, "speaker-conn"] {
        assert!(!text.contains(private), "{private} in {text}");
    }
    assert!(answer.headers.get("location").is_none());
}

#[tokio::test]
async fn reading_an_unknown_or_malformed_session_is_refused() {
    let world = World::new().await;
    let f = function(&world);
    call(&f, &get("never-seen-999")).await.assert_refused(404, "SESSION_NOT_FOUND", None);
    call(&f, &get("nope")).await.assert_refused(400, "INVALID_PARAMETER", Some("id"));
}

#[tokio::test]
async fn pausing_and_resuming_tell_the_listeners() {
    let world = World::new().await;
    let session = world.session_owned_by(OWNER).await;
    let id = &session.session_id;
    listener(&world, id, "listener-de", "de").await;
    listener(&world, id, "listener-fr", "fr").await;
    speaker(&world, id, "speaker-conn").await;
    let f = function(&world);

    let paused = call(&f, &patch(id.as_str(), r#"{"status":"paused"}"#)).await;
    assert_eq!(paused.status, 200, "{paused:?}");
    assert_eq!(paused.body["status"], "paused");
    assert_eq!(paused.body["broadcastState"]["isPaused"], true);
    assert_eq!(paused.body["listenerCount"], 2);
    let now = stored(&world, id).await;
    assert_eq!((now.status, now.broadcast_state.is_paused), (SessionStatus::Paused, true));
    for connection in ["listener-de", "listener-fr"] {
        assert_eq!(types(&world.connections_api.messages_to(connection)), ["broadcastPaused"], "{connection}");
    }

    let resumed = call(&f, &patch(id.as_str(), r#"{"status":"active"}"#)).await;
    assert_eq!((resumed.status, resumed.body["status"].as_str()), (200, Some("active")), "{resumed:?}");
    assert_eq!(resumed.body["broadcastState"]["isPaused"], false);
    let now = stored(&world, id).await;
    assert_eq!((now.status, now.broadcast_state.is_paused), (SessionStatus::Active, false));
    for connection in ["listener-de", "listener-fr"] {
        let told = world.connections_api.messages_to(connection);
        assert_eq!(types(&told), ["broadcastPaused", "broadcastResumed"], "{connection}");
    }
    assert!(world.connections_api.messages_to("speaker-conn").is_empty(), "listeners only");
    assert!(world.connections_api.deleted().is_empty());
    world.assert_calls_permitted(&contract::functions::HTTP);
}

#[tokio::test]
async fn pausing_twice_is_fine() {
    let world = World::new().await;
    let session = world.session_owned_by(OWNER).await;
    let f = function(&world);
    for _ in 0..2 {
        let answer = call(&f, &patch(session.session_id.as_str(), r#"{"status":"paused"}"#)).await;
        assert_eq!((answer.status, answer.body["status"].as_str()), (200, Some("paused")), "{answer:?}");
    }
}

#[tokio::test]
async fn only_the_owner_may_pause_or_end_a_session() {
    let world = World::new().await;
    let session = world.session_owned_by(OWNER).await;
    let id = session.session_id.as_str();
    listener(&world, &session.session_id, "listener-de", "de").await;
    let f = function(&world);

    let pause = as_user(patch(id, r#"{"status":"paused"}"#), "someone-else");
    call(&f, &pause).await.assert_refused(403, "FORBIDDEN", None);
    call(&f, &as_user(delete(id), "someone-else")).await.assert_refused(403, "FORBIDDEN", None);

    let now = stored(&world, &session.session_id).await;
    assert_eq!((now.status, now.broadcast_state.is_paused), (SessionStatus::Active, false));
    assert!(world.connections_api.posts().is_empty());
    assert!(world.connections_api.deleted().is_empty());
}

#[tokio::test]
async fn an_ended_session_cannot_be_paused_or_resumed() {
    let world = World::new().await;
    let session = world.session_owned_by(OWNER).await;
    let id = &session.session_id;
    world.store.set_session_status(id, SessionStatus::Ended).await.expect("ended");
    let f = function(&world);
    for status in ["paused", "active"] {
        let answer = call(&f, &patch(id.as_str(), &format!(r#"{{"status":"{status}"}}"#))).await;
        answer.assert_refused(409, "SESSION_INACTIVE", None);
    }
    assert_eq!(stored(&world, id).await.status, SessionStatus::Ended);
}

#[tokio::test]
async fn ending_a_session_tells_and_closes_every_connection() {
    let world = World::new().await;
    let session = world.session_owned_by(OWNER).await;
    let id = &session.session_id;
    listener(&world, id, "listener-de", "de").await;
    listener(&world, id, "listener-es", "es").await;
    speaker(&world, id, "speaker-conn").await;
    let f = function(&world);

    let answer = call(&f, &delete(id.as_str())).await;
    assert_eq!((answer.status, answer.body["status"].as_str()), (200, Some("ended")), "{answer:?}");
    assert_eq!(stored(&world, id).await.status, SessionStatus::Ended);
    let everyone = ["listener-de", "listener-es", "speaker-conn"];
    for connection in everyone {
        let told = world.connections_api.messages_to(connection);
        assert_eq!(types(&told), ["sessionEnded"], "{connection}");
        assert_eq!(told[0]["sessionId"], id.as_str());
        assert_eq!(told[0]["reason"], "endedBySpeaker");
    }
    let mut closed = world.connections_api.deleted();
    closed.sort_unstable();
    assert_eq!(closed, everyone);
    world.assert_calls_permitted(&contract::functions::HTTP);

    // Idempotent: ending it again is a success that makes no @connections request at all
    // (not even posts to the connections the first end closed).
    world.connections_api.clear();
    let again = call(&f, &delete(id.as_str())).await;
    assert_eq!((again.status, again.body["status"].as_str()), (200, Some("ended")), "{again:?}");
    let requests = world.connections_api.requests();
    assert!(requests.is_empty(), "the second end touched connections: {requests:?}");
    // And reading it shows it ended.
    let read = call(&f, &get(id.as_str())).await;
    assert_eq!((read.status, read.body["status"].as_str()), (200, Some("ended")));
}

#[tokio::test]
async fn health_is_ok() {
    let world = World::new().await;
    let answer = call(&function(&world), &health()).await;
    assert_eq!((answer.status, answer.body.clone()), (200, json!({ "status": "ok" })));
    assert!(world.iam_actions().is_empty(), "health touches nothing");
}

#[tokio::test]
async fn session_creation_is_rate_limited_per_user() {
    let mut world = World::new().await;
    world.limits.sessions_per_hour_per_user = 2;
    let f = function(&world);
    let body = r#"{"sourceLanguage":"en"}"#;
    for _ in 0..2 {
        assert_eq!(call(&f, &post(body)).await.status, 201);
    }
    let limited = call(&f, &post(body)).await;
    limited.assert_refused(429, "RATE_LIMIT_EXCEEDED", None);
    // The window is the clock hour: 19:01:21 leaves 58 min 39 s.
    assert_eq!(limited.body["retryAfter"], 3519);
    assert_eq!(limited.header("retry-after"), Some("3519"));
    // Another user is not limited.
    assert_eq!(call(&f, &as_user(post(body), "user-7")).await.status, 201);
    // The next window admits the first user again.
    world.clock.advance_seconds(3519);
    assert_eq!(call(&f, &post(body)).await.status, 201);
}

#[tokio::test]
async fn a_jwt_route_without_a_subject_is_unauthorized() {
    let world = World::new().await;
    let session = world.session_owned_by(OWNER).await;
    let id = session.session_id.as_str();
    let f = function(&world);
    let events = [post(r#"{"sourceLanguage":"en"}"#), patch(id, r#"{"status":"paused"}"#), delete(id)];
    for event in events {
        let mut no_authorizer = event.clone();
        no_authorizer.request_context.authorizer = None;
        call(&f, &no_authorizer).await.assert_refused(401, "UNAUTHORIZED", None);
        let mut no_sub = event.clone();
        if let Some(jwt) = no_sub.request_context.authorizer.as_mut().and_then(|a| a.jwt.as_mut()) {
            jwt.claims.remove("sub");
        }
        call(&f, &no_sub).await.assert_refused(401, "UNAUTHORIZED", None);
        call(&f, &as_user(event, "")).await.assert_refused(401, "UNAUTHORIZED", None);
    }
    assert_eq!(stored(&world, &session.session_id).await.status, SessionStatus::Active);
    assert!(world.connections_api.requests().is_empty());
}

#[tokio::test]
async fn reading_a_session_whose_speaker_left_ends_it_after_the_grace_period() {
    let world = World::new().await;
    let session = world.session_owned_by(OWNER).await;
    let id = &session.session_id;
    listener(&world, id, "listener-de", "de").await;
    world.store.set_speaker_connection(id, "speaker-conn").await.expect("speaker");
    assert!(world.store.clear_speaker_connection(id, "speaker-conn").await.expect("left"));
    let f = function(&world);

    world.clock.advance_seconds(world.limits.speaker_grace_seconds - 1);
    let within = call(&f, &get(id.as_str())).await;
    assert_eq!((within.status, within.body["status"].as_str()), (200, Some("active")));
    assert!(world.connections_api.posts().is_empty());

    world.clock.advance_seconds(2);
    let after = call(&f, &get(id.as_str())).await;
    assert_eq!((after.status, after.body["status"].as_str()), (200, Some("ended")), "{after:?}");
    assert_eq!(stored(&world, id).await.status, SessionStatus::Ended);
    let told = world.connections_api.messages_to("listener-de");
    assert_eq!(types(&told), ["sessionEnded"]);
    assert_eq!(told[0]["reason"], "speakerDisconnected");
    assert_eq!(world.connections_api.deleted(), ["listener-de"]);
    world.assert_calls_permitted(&contract::functions::HTTP);
}

#[tokio::test]
async fn an_unknown_route_is_404_not_a_crash() {
    let world = World::new().await;
    let f = function(&world);
    for key in ["GET /sessions", "PUT /sessions/{id}", "$default", ""] {
        let answer = call(&f, &with_route_key(health(), key)).await;
        answer.assert_refused(404, "UNKNOWN_ACTION", None);
        assert!(answer.body["message"].as_str().is_some_and(|m| m.contains("POST /sessions")), "{answer:?}");
    }
}

#[tokio::test]
async fn raw_payloads_are_read_and_a_payload_that_is_not_an_http_event_is_500() {
    let world = World::new().await;
    let f = function(&world);
    let raw: Value = serde_json::from_str(include_str!("data/health.json")).expect("fixture");
    let answer = read(f.handle_payload(raw).await);
    assert_eq!((answer.status, answer.body["status"].as_str()), (200, Some("ok")));
    let raw: Value = serde_json::from_str(include_str!("data/post_sessions.json")).expect("fixture");
    assert_eq!(read(f.handle_payload(raw).await).status, 201);
    for garbage in [json!(null), json!([1, 2]), json!({ "requestContext": "nope" })] {
        read(f.handle_payload(garbage).await).assert_refused(500, "INTERNAL_ERROR", None);
    }
}

#[tokio::test]
async fn bad_requests_are_refused_with_exact_codes() {
    let world = World::new().await;
    let session = world.session_owned_by(OWNER).await;
    let id = session.session_id.as_str();
    let f = function(&world);
    let mut not_base64 = post("%%% not base64 %%%");
    not_base64.is_base64_encoded = true;
    let paused = r#"{"status":"paused"}"#;

    let cases: Vec<(&str, ApiGatewayV2httpRequest, i64, &str, Option<&str>)> = vec![
        ("POST without a body", with_body(post(""), None), 400, "INVALID_MESSAGE", None),
        ("POST with an empty body", post(""), 400, "INVALID_MESSAGE", None),
        ("POST with a blank body", post("  \n"), 400, "INVALID_MESSAGE", None),
        ("POST null", post("null"), 400, "INVALID_MESSAGE", None),
        ("POST an array", post("[]"), 400, "INVALID_MESSAGE", None),
        ("POST a string", post(r#""en""#), 400, "INVALID_MESSAGE", None),
        ("POST not JSON", post("not json"), 400, "INVALID_MESSAGE", None),
        ("POST bad base64", not_base64, 400, "INVALID_MESSAGE", None),
        ("POST {}", post("{}"), 400, "MISSING_PARAMETER", Some("sourceLanguage")),
        (
            "POST sourceLanguage null",
            post(r#"{"sourceLanguage":null}"#),
            400,
            "MISSING_PARAMETER",
            Some("sourceLanguage"),
        ),
        ("POST sourceLanguage 5", post(r#"{"sourceLanguage":5}"#), 400, "INVALID_PARAMETER", Some("sourceLanguage")),
        (
            "POST sourceLanguage xx",
            post(r#"{"sourceLanguage":"xx"}"#),
            400,
            "INVALID_PARAMETER",
            Some("sourceLanguage"),
        ),
        (
            "POST sourceLanguage EN",
            post(r#"{"sourceLanguage":"EN"}"#),
            400,
            "INVALID_PARAMETER",
            Some("sourceLanguage"),
        ),
        (
            "POST sourceLanguage eng",
            post(r#"{"sourceLanguage":"eng"}"#),
            400,
            "INVALID_PARAMETER",
            Some("sourceLanguage"),
        ),
        (
            "POST qualityTier gold",
            post(r#"{"sourceLanguage":"en","qualityTier":"gold"}"#),
            400,
            "INVALID_PARAMETER",
            Some("qualityTier"),
        ),
        (
            "POST qualityTier 1",
            post(r#"{"sourceLanguage":"en","qualityTier":1}"#),
            400,
            "INVALID_PARAMETER",
            Some("qualityTier"),
        ),
        ("PATCH status ended", patch(id, r#"{"status":"ended"}"#), 400, "INVALID_PARAMETER", Some("status")),
        ("PATCH status closed", patch(id, r#"{"status":"closed"}"#), 400, "INVALID_PARAMETER", Some("status")),
        ("PATCH status Paused", patch(id, r#"{"status":"Paused"}"#), 400, "INVALID_PARAMETER", Some("status")),
        ("PATCH status 7", patch(id, r#"{"status":7}"#), 400, "INVALID_PARAMETER", Some("status")),
        ("PATCH without status", patch(id, r#"{"paused":true}"#), 400, "MISSING_PARAMETER", Some("status")),
        ("PATCH status null", patch(id, r#"{"status":null}"#), 400, "MISSING_PARAMETER", Some("status")),
        ("PATCH without a body", with_body(patch(id, ""), None), 400, "INVALID_MESSAGE", None),
        ("PATCH not JSON", patch(id, "status=paused"), 400, "INVALID_MESSAGE", None),
        ("GET id nope", get("nope"), 400, "INVALID_PARAMETER", Some("id")),
        ("GET id quiet-harbor-41", get("quiet-harbor-41"), 400, "INVALID_PARAMETER", Some("id")),
        ("GET id in capitals", get("QUIET-HARBOR-417"), 400, "INVALID_PARAMETER", Some("id")),
        ("PATCH id nope", patch("nope", paused), 400, "INVALID_PARAMETER", Some("id")),
        ("DELETE id quiet-harbor-41", delete("quiet-harbor-41"), 400, "INVALID_PARAMETER", Some("id")),
        ("DELETE id 1000", delete("quiet-harbor-1000"), 400, "INVALID_PARAMETER", Some("id")),
        ("GET unknown session", get("never-seen-999"), 404, "SESSION_NOT_FOUND", None),
        ("PATCH unknown session", patch("never-seen-999", paused), 404, "SESSION_NOT_FOUND", None),
        ("DELETE unknown session", delete("never-seen-999"), 404, "SESSION_NOT_FOUND", None),
        ("unknown route", with_route_key(get(id), "GET /sessions"), 404, "UNKNOWN_ACTION", None),
    ];
    assert!(cases.len() >= 15);
    world.recorder.clear();
    for (name, event, status, code, field) in cases {
        let answer = call(&f, &event).await;
        assert_eq!((answer.status, answer.body["code"].as_str()), (status, Some(code)), "{name}: {answer:?}");
        assert_eq!(answer.body["details"]["field"].as_str(), field, "{name}: {answer:?}");
    }
    // Nothing was written, changed or told.
    let written: Vec<String> = world.iam_actions().into_iter().filter(|action| action != "dynamodb:GetItem").collect();
    assert!(written.is_empty(), "{written:?}");
    let now = stored(&world, &session.session_id).await;
    assert_eq!((now.status, now.broadcast_state.is_paused), (SessionStatus::Active, false));
    assert!(world.connections_api.requests().is_empty());
}

#[tokio::test]
async fn a_missing_path_parameter_is_a_missing_id() {
    let world = World::new().await;
    let mut event = get("quiet-harbor-417");
    event.path_parameters.clear();
    call(&function(&world), &event).await.assert_refused(400, "MISSING_PARAMETER", Some("id"));
}

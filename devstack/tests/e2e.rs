//! End to end: the local stack (`cargo xtask dev`'s library) driven by a real WebSocket client
//! and a real HTTP client. Every test starts its own stack from the synthesized `dev` template
//! (its own tables and function processes), so tests run in parallel without sharing state.
//! The functions' output goes to `target/devstack-tests/<test>.log`.

mod support;

use devstack::GatewayLimits;
use devstack::stack::TemplateEdit;
use futures::SinkExt;
use serde_json::{Value, json};
use std::time::Duration;
use support::{
    Socket, WAIT, closed, connect, create_session, join, joined, management_endpoint, next_of, next_unchecked, send,
    send_refused, start, token,
};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_runs_end_to_end() {
    let stack = start("session", GatewayLimits::default(), None).await;
    let speaker_token = token(&stack, "speaker-1");
    let session = create_session(&stack, &speaker_token).await;

    let mut speaker = connect(&stack, &format!("sessionId={session}&token={speaker_token}"))
        .await
        .expect("the owner connects with a token");
    let mut german = join(&stack, &session, "de").await;
    let mut french = join(&stack, &session, "fr").await;

    send(&mut speaker, json!({"action": "pauseBroadcast"})).await;
    assert_eq!(next_of(&mut german, "broadcastPaused").await["type"], "broadcastPaused");
    assert_eq!(next_of(&mut french, "broadcastPaused").await["type"], "broadcastPaused");
    send(&mut speaker, json!({"action": "setVolume", "volumeLevel": 0.5})).await;
    assert_eq!(next_of(&mut german, "volumeChanged").await["volumeLevel"], 0.5);

    send(&mut speaker, json!({"action": "getSessionStatus"})).await;
    let status = next_of(&mut speaker, "sessionStatus").await;
    assert_eq!(status["listenerCount"], 2);
    assert_eq!(status["languageDistribution"], json!({"de": 1, "fr": 1}));

    send(&mut german, json!({"action": "changeLanguage", "targetLanguage": "es"})).await;
    assert_eq!(next_of(&mut german, "languageChanged").await["targetLanguage"], "es");
    send(&mut speaker, json!({"action": "getSessionStatus"})).await;
    let status = next_of(&mut speaker, "sessionStatus").await;
    assert_eq!(status["languageDistribution"], json!({"es": 1, "fr": 1}));

    let messages = stack.function_stats()["MessagesFunction"];
    assert!(messages.cold_starts < messages.invocations, "warm processes are reused: {messages:?}");

    let public = reqwest::get(format!("{}/sessions/{session}", stack.http_url())).await.expect("GET answered");
    assert_eq!(public.status(), 200, "anyone reads a session");

    send(&mut speaker, json!({"action": "endSession", "reason": "done"})).await;
    for listener in [&mut german, &mut french] {
        assert_eq!(next_of(listener, "sessionEnded").await["sessionId"], session);
        assert!(closed(listener).await.is_some(), "listeners are closed after they are told");
    }
    tokio::time::timeout(WAIT, async {
        while stack.open_connections() > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("every connection closes when the session ends");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_are_refused_with_protocol_statuses() {
    let stack = start("handshakes", GatewayLimits::default(), None).await;
    let owner = token(&stack, "owner");
    let session = create_session(&stack, &owner).await;
    let stranger = token(&stack, "stranger");

    assert_eq!(connect(&stack, "targetLanguage=de").await.err(), Some(400), "a listener needs a session id");
    assert_eq!(connect(&stack, &format!("sessionId={session}&targetLanguage=german")).await.err(), Some(400));
    assert_eq!(connect(&stack, "sessionId=quiet-harbor-999&targetLanguage=de").await.err(), Some(404));
    assert_eq!(connect(&stack, &format!("sessionId={session}&token=not-a-jwt")).await.err(), Some(401));
    assert_eq!(connect(&stack, &format!("sessionId={session}&token={stranger}")).await.err(), Some(403));
    let other_stage = stack.websocket_url().replace("/dev", "/prod");
    match connect_async(format!("{other_stage}?sessionId={session}&targetLanguage=de")).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 403, "an unknown stage is API Gateway's 403"),
        other => panic!("an unknown stage must be refused: {:?}", other.map(|_| ())),
    }
    let unauthenticated = reqwest::Client::new()
        .post(format!("{}/sessions", stack.http_url()))
        .json(&json!({"sourceLanguage": "en"}))
        .send()
        .await
        .expect("answered");
    assert_eq!(unauthenticated.status(), 401, "the HTTP API's JWT authorizer refuses a missing token");
    let body: Value = unauthenticated.json().await.expect("JSON");
    assert_eq!(body, json!({"message": "Unauthorized"}));
    assert!(connect(&stack, &format!("sessionId={session}&targetLanguage=de")).await.is_ok());
    // A venue's audience shares one address, so handshakes per address are limited only
    // loosely; an address that keeps naming sessions that do not exist is refused (429) for the
    // rest of the minute, even for one that does.
    let misses = stack.stage().limits.unknown_session_connects_per_minute_per_ip;
    let mut statuses = Vec::new();
    for number in 100..=101 + misses {
        statuses.push(connect(&stack, &format!("sessionId=quiet-harbor-{number}&targetLanguage=de")).await.err());
    }
    assert!(statuses.iter().all(|status| matches!(status, Some(404 | 429))), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&Some(429)), "a flood of unknown sessions is cut off: {statuses:?}");
    assert_eq!(connect(&stack, &format!("sessionId={session}&targetLanguage=de")).await.err(), Some(429));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_their_codes_and_oversized_messages_close_with_1009() {
    let stack = start("frames", GatewayLimits::default(), None).await;
    let session = create_session(&stack, &token(&stack, "speaker-2")).await;
    let mut listener = join(&stack, &session, "de").await;

    listener.send(Message::text("not json")).await.expect("sent");
    assert_eq!(next_of(&mut listener, "error").await["code"], "INVALID_MESSAGE");
    send_refused(&mut listener, json!({"action": "dance"})).await;
    assert_eq!(next_of(&mut listener, "error").await["code"], "UNKNOWN_ACTION");
    send(&mut listener, json!({"action": "pauseBroadcast"})).await;
    assert_eq!(next_of(&mut listener, "error").await["code"], "FORBIDDEN");
    send_refused(&mut listener, json!({"action": "setVolume"})).await;
    let refused = next_of(&mut listener, "error").await;
    assert!(refused["code"] == "FORBIDDEN" || refused["code"] == "MISSING_PARAMETER", "{refused}");
    send(&mut listener, json!({"action": "heartbeat"})).await;
    assert_eq!(next_of(&mut listener, "heartbeatAck").await["type"], "heartbeatAck", "the connection stays usable");

    // 100 KB in frames of 25 KB is within both limits.
    send_fragmented(&mut listener, 100 * 1024, 25 * 1024).await;
    assert_eq!(next_of(&mut listener, "heartbeatAck").await["type"], "heartbeatAck");
    // 129 KB in frames of 25 KB: each frame is fine, the message is over 128 KB.
    send_fragmented(&mut listener, 129 * 1024, 25 * 1024).await;
    assert_eq!(closed(&mut listener).await, Some(CloseCode::Size), "a message over 128 KB closes with 1009");

    // One 40 KB frame: the message is small enough, the frame is over 32 KB.
    let mut other = join(&stack, &session, "fr").await;
    send_fragmented(&mut other, 40 * 1024, 40 * 1024).await;
    assert_eq!(closed(&mut other).await, Some(CloseCode::Size), "a frame over 32 KB closes with 1009");
    stack.stop().await;
}

/// Sends a heartbeat padded to `total` bytes of JSON text, in frames of at most `fragment`.
async fn send_fragmented(socket: &mut Socket, total: usize, fragment: usize) {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let skeleton = json!({"action": "heartbeat", "padding": ""}).to_string();
    let text = json!({"action": "heartbeat", "padding": "x".repeat(total - skeleton.len())}).to_string();
    let chunks: Vec<&[u8]> = text.as_bytes().chunks(fragment).collect();
    for (index, chunk) in chunks.iter().enumerate() {
        let opcode = if index == 0 { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
        let frame = Frame::message(chunk.to_vec(), opcode, index + 1 == chunks.len());
        socket.send(Message::Frame(frame)).await.expect("sent");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_incident_is_refused_by_the_gateway_before_any_code_runs() {
    // The configuration that shipped: the `$connect` authorizer demands a token as its identity
    // source, which listeners never send. Built here only, by editing the synthesized template.
    let edit: TemplateEdit = Box::new(|template: &mut Value| {
        template["Resources"]["ConnectAuthorizer"]["Properties"]["IdentitySource"] =
            json!(["route.request.querystring.token"]);
    });
    let stack = start("seed-incident", GatewayLimits::default(), Some(edit)).await;
    let speaker_token = token(&stack, "speaker-3");
    let session = create_session(&stack, &speaker_token).await;

    assert_eq!(
        connect(&stack, &format!("sessionId={session}&targetLanguage=de")).await.err(),
        Some(401),
        "a tokenless listener is refused by the gateway itself"
    );
    let stats = stack.function_stats();
    assert_eq!(stats["AuthorizerFunction"].invocations, 0, "the authorizer never ran");
    assert_eq!(stats["ConnectionFunction"].invocations, 0, "nor did $connect");
    assert!(connect(&stack, &format!("sessionId={session}&token={speaker_token}")).await.is_ok());
    assert_eq!(stack.function_stats()["AuthorizerFunction"].invocations, 1, "a speaker's token reaches it");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_function_is_a_502_and_the_gateway_stays_up() {
    // `connection` without its table variable cannot start: Lambda reports Runtime.InitError
    // and API Gateway refuses the handshake.
    let edit: TemplateEdit = Box::new(|template: &mut Value| {
        if let Some(variables) =
            template["Resources"]["ConnectionFunction"]["Properties"]["Environment"]["Variables"].as_object_mut()
        {
            variables.remove("SESSIONS_TABLE");
        }
    });
    let stack = start("crash", GatewayLimits::default(), Some(edit)).await;
    let session = create_session(&stack, &token(&stack, "speaker-4")).await;
    assert_eq!(connect(&stack, &format!("sessionId={session}&targetLanguage=de")).await.err(), Some(502));
    // Several at once: each is refused promptly, and the broken binary is not restarted forever.
    let started = std::time::Instant::now();
    let refusals = futures::future::join_all(["fr", "es", "it", "ja"].map(|language| {
        let query = format!("sessionId={session}&targetLanguage={language}");
        let stack = &stack;
        async move { connect(stack, &query).await }
    }))
    .await;
    assert!(
        refusals.iter().all(|refusal| refusal.as_ref().err() == Some(&502)),
        "{:?}",
        refusals.iter().map(|r| r.as_ref().err()).collect::<Vec<_>>()
    );
    assert!(started.elapsed() < Duration::from_secs(5), "refused in {:?}", started.elapsed());
    let connection = stack.function_stats()["ConnectionFunction"];
    assert!(connection.cold_starts <= connection.invocations, "one start per invocation at most: {connection:?}");
    let health = reqwest::get(format!("{}/health", stack.http_url())).await.expect("the gateway still answers");
    assert_eq!(health.status(), 200);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_close_and_disconnect_runs() {
    let limits = GatewayLimits { idle_timeout: Duration::from_secs(2), ..GatewayLimits::default() };
    let stack = start("idle", limits, None).await;
    let speaker_token = token(&stack, "speaker-5");
    let session = create_session(&stack, &speaker_token).await;
    let mut speaker = connect(&stack, &format!("sessionId={session}&token={speaker_token}")).await.expect("connects");
    let mut listener = join(&stack, &session, "de").await;
    assert_eq!(next_of(&mut speaker, "listenerCountChanged").await["listenerCount"], 1);
    // The listener stays silent; the speaker keeps its own connection alive.
    let keep_alive = async {
        for _ in 0..4 {
            send(&mut speaker, json!({"action": "heartbeat"})).await;
            tokio::time::sleep(Duration::from_millis(900)).await;
        }
    };
    let (_, code) = tokio::join!(keep_alive, closed(&mut listener));
    assert_eq!(code, Some(CloseCode::Away), "an idle connection closes with 1001");
    assert_eq!(next_of(&mut speaker, "listenerCountChanged").await["listenerCount"], 0, "$disconnect ran");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_posted_through_connections_keep_a_silent_connection_open() {
    // API Gateway's idle timer counts traffic in either direction (AWS_FACTS 16): a client that
    // never sends but keeps receiving is not idle.
    let idle = Duration::from_secs(2);
    let stack = start("idle-outbound", GatewayLimits { idle_timeout: idle, ..GatewayLimits::default() }, None).await;
    let session = create_session(&stack, &token(&stack, "speaker-6")).await;
    let (mut fed, fed_id) = joined(&stack, &session, "de").await;
    let mut starved = join(&stack, &session, "fr").await;
    let management = management_endpoint(&stack);
    let client = reqwest::Client::new();

    // For three idle periods both listeners stay silent; only `fed` receives, through
    // `@connections` as the functions post.
    let feed = async {
        let started = tokio::time::Instant::now();
        let mut posted = 0_u32;
        while started.elapsed() < idle * 3 {
            let response = client
                .post(format!("{management}/@connections/{fed_id}"))
                .body(json!({"type": "feed", "n": posted}).to_string())
                .send()
                .await
                .expect("@connections answered");
            assert_eq!(
                response.status(),
                200,
                "post {posted}, {:?} after the listener's last frame: the connection was closed",
                started.elapsed()
            );
            posted += 1;
            tokio::time::sleep(idle / 4).await;
        }
        posted
    };
    let (posted, starved_code) = tokio::join!(feed, closed(&mut starved));
    assert_eq!(starved_code, Some(CloseCode::Away), "a connection with no traffic either way closes with 1001");
    for n in 0..posted {
        assert_eq!(next_unchecked(&mut fed).await["n"], n, "every post reached the silent listener");
    }
    send(&mut fed, json!({"action": "heartbeat"})).await;
    assert_eq!(next_of(&mut fed, "heartbeatAck").await["type"], "heartbeatAck", "it is still open");
    // Once nothing flows either way, the same connection is idle like any other.
    assert_eq!(closed(&mut fed).await, Some(CloseCode::Away));
    stack.stop().await;
}

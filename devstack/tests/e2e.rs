//! End to end: the local stack (`cargo xtask dev`'s library) driven by a real WebSocket client
//! and a real HTTP client. Every test starts its own stack from the synthesized `dev` template
//! (its own tables and function processes), so tests run in parallel without sharing state.
//! The functions' output goes to `target/devstack-tests/<test>.log`.

use devstack::stack::TemplateEdit;
use devstack::{DevConfig, DevStack, GatewayLimits, LocalIdentity, LogSink, TokenRequest};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(20);

/// The functions' binaries, built once per test process.
fn binaries() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            devstack::binaries::build(&testkit::workspace_root(), false)
                .unwrap_or_else(|error| panic!("the functions should build: {error:#}"))
        })
        .clone()
}

async fn start(test: &str, limits: GatewayLimits, edit: Option<TemplateEdit>) -> DevStack {
    let binaries = tokio::task::spawn_blocking(binaries).await.expect("the build finished");
    let endpoint = tokio::task::spawn_blocking(testkit::local_endpoint).await.expect("moto is up");
    let log =
        devstack::binaries::target_directory(&testkit::workspace_root()).join(format!("devstack-tests/{test}.log"));
    let _ = std::fs::remove_file(&log);
    let config = DevConfig {
        stage: stacks::stages::dev(),
        edit_template: edit,
        binaries,
        websocket_port: 0,
        http_port: 0,
        limits,
        identity: LocalIdentity::generate().expect("a local key"),
        aws_endpoint: Some(endpoint),
        python: testkit::venv_python(),
        logs: LogSink::file(&log).expect("a log file"),
        max_concurrency: 8,
    };
    DevStack::start(config).await.expect("the local stack starts")
}

fn token(stack: &DevStack, sub: &str) -> String {
    let request = TokenRequest { sub: sub.into(), email: Some(format!("{sub}@example.com")), expires_in_seconds: 600 };
    stack.token(&request).expect("a token")
}

async fn connect(stack: &DevStack, query: &str) -> Result<Socket, u16> {
    match connect_async(format!("{}?{query}", stack.websocket_url())).await {
        Ok((socket, _)) => Ok(socket),
        Err(WsError::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("the handshake failed without an HTTP status: {other}"),
    }
}

async fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::text(message.to_string())).await.expect("sent");
}

/// The next JSON text message.
async fn next(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(WAIT, socket.next()).await.expect("a message in time");
        match frame {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).expect("JSON from the service"),
            Some(Ok(Message::Close(frame))) => panic!("closed while waiting for a message: {frame:?}"),
            Some(Ok(_)) => continue,
            other => panic!("the connection ended while waiting for a message: {other:?}"),
        }
    }
}

/// The next message of `kind`, skipping others (such as count updates).
async fn next_of(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let message = next(socket).await;
        if message["type"] == kind {
            return message;
        }
    }
}

/// Reads until the server closes; answers the close code.
async fn closed(socket: &mut Socket) -> Option<CloseCode> {
    loop {
        match tokio::time::timeout(WAIT, socket.next()).await.expect("a close in time") {
            Some(Ok(Message::Close(frame))) => return frame.map(|frame| frame.code),
            Some(Ok(_)) => continue,
            _ => return None,
        }
    }
}

async fn create_session(stack: &DevStack, speaker_token: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/sessions", stack.http_url()))
        .bearer_auth(speaker_token)
        .json(&json!({"sourceLanguage": "en"}))
        .send()
        .await
        .expect("POST /sessions answered");
    assert_eq!(response.status(), 201, "creating a session");
    let session: Value = response.json().await.expect("JSON");
    session["sessionId"].as_str().expect("a session id").to_owned()
}

async fn join(stack: &DevStack, session: &str, language: &str) -> Socket {
    let mut listener = connect(stack, &format!("sessionId={session}&targetLanguage={language}"))
        .await
        .expect("a tokenless listener connects");
    send(&mut listener, json!({"action": "joinSession", "sessionId": session, "targetLanguage": language})).await;
    let joined = next_of(&mut listener, "sessionJoined").await;
    assert_eq!(joined["sessionId"], session);
    listener
}

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
    // Connects per minute per IP are limited (20 in dev): the next ones are 429.
    let mut statuses = Vec::new();
    for _ in 0..25 {
        statuses.push(connect(&stack, &format!("sessionId={session}&targetLanguage=de")).await.err());
    }
    assert!(statuses.contains(&Some(429)), "a crowd from one address is rate limited: {statuses:?}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_their_codes_and_oversized_messages_close_with_1009() {
    let stack = start("frames", GatewayLimits::default(), None).await;
    let session = create_session(&stack, &token(&stack, "speaker-2")).await;
    let mut listener = join(&stack, &session, "de").await;

    listener.send(Message::text("not json")).await.expect("sent");
    assert_eq!(next_of(&mut listener, "error").await["code"], "INVALID_MESSAGE");
    send(&mut listener, json!({"action": "dance"})).await;
    assert_eq!(next_of(&mut listener, "error").await["code"], "UNKNOWN_ACTION");
    send(&mut listener, json!({"action": "pauseBroadcast"})).await;
    assert_eq!(next_of(&mut listener, "error").await["code"], "FORBIDDEN");
    send(&mut listener, json!({"action": "setVolume"})).await;
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

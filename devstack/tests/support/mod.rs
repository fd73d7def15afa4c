//! What the end-to-end tests share: a local stack per test, a real WebSocket client and a
//! real HTTP client against it, and the steps every scenario takes (a session, a speaker, a
//! listener that joins). Each test binary uses a part of it.
//!
//! The client holds the service to the published documents: every frame it receives ([`next`])
//! must match the server message of `docs/asyncapi.yaml` its `type` names, every frame it sends
//! ([`send`]) the client action its `action` names, the query of every accepted handshake the
//! handshake's, and a created session `docs/openapi.yaml`'s `SessionView`. A frame a test sends
//! to be refused goes through [`send_refused`], which requires the document to refuse it too.
//! Frames that are not the service's (posted by a test through `@connections`, or API
//! Gateway's own answer to a failed function) are read with [`next_unchecked`]. The validators
//! are compiled once per test process.
#![allow(dead_code, reason = "each test binary uses a part of these helpers")]

use devstack::stack::TemplateEdit;
use devstack::{DevConfig, DevStack, GatewayLimits, LogSink, TokenRequest};
use futures::{SinkExt, StreamExt};
use protocol_docs::check::{Bodies, Frames};
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::sync::{LazyLock, OnceLock};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// The functions' binaries, built once per test process.
pub(crate) fn binaries() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            devstack::binaries::build(&testkit::workspace_root(), false)
                .unwrap_or_else(|error| panic!("the functions should build: {error:#}"))
        })
        .clone()
}

pub(crate) async fn start(test: &str, limits: GatewayLimits, edit: Option<TemplateEdit>) -> DevStack {
    start_stage(test, stacks::stages::dev(), limits, edit).await
}

/// [`start`] of another stage than `dev`.
pub(crate) async fn start_stage(
    test: &str,
    stage: stacks::StageConfig,
    limits: GatewayLimits,
    edit: Option<TemplateEdit>,
) -> DevStack {
    let binaries = tokio::task::spawn_blocking(binaries).await.expect("the build finished");
    let endpoint = tokio::task::spawn_blocking(testkit::local_endpoint).await.expect("moto is up");
    let log =
        devstack::binaries::target_directory(&testkit::workspace_root()).join(format!("devstack-tests/{test}.log"));
    let _ = std::fs::remove_file(&log);
    let logs = LogSink::file(&log).expect("a log file");
    let config = DevConfig {
        edit_template: edit,
        limits,
        aws_endpoint: Some(endpoint),
        max_concurrency: 8,
        ..DevConfig::local(stage, binaries, logs).expect("a local key")
    };
    DevStack::start(config).await.expect("the local stack starts")
}

pub(crate) fn token(stack: &DevStack, sub: &str) -> String {
    let request = TokenRequest::id(sub, 600);
    stack.token(&request).expect("a token")
}

/// The validators of the committed `docs/asyncapi.yaml`.
static FRAMES: LazyLock<Frames> =
    LazyLock::new(|| Frames::load(&testkit::workspace_root()).unwrap_or_else(|problem| panic!("{problem}")));

/// The validators of the committed `docs/openapi.yaml`.
static BODIES: LazyLock<Bodies> =
    LazyLock::new(|| Bodies::load(&testkit::workspace_root()).unwrap_or_else(|problem| panic!("{problem}")));

/// Opens a connection; answers the handshake's refusal status. An accepted handshake's query
/// must be one the AsyncAPI document describes.
pub(crate) async fn connect(stack: &DevStack, query: &str) -> Result<Socket, u16> {
    match connect_async(format!("{}?{query}", stack.websocket_url())).await {
        Ok((socket, _)) => {
            FRAMES.check_handshake_query(&query_object(query)).unwrap_or_else(|problem| panic!("{problem}"));
            Ok(socket)
        }
        Err(WsError::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("the handshake failed without an HTTP status: {other}"),
    }
}

/// `a=1&b=2` as `{"a": "1", "b": "2"}` (the tests write their queries unencoded).
fn query_object(query: &str) -> Value {
    let pairs = query.split('&').filter(|pair| !pair.is_empty()).map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (name.to_owned(), Value::from(value))
    });
    Value::Object(pairs.collect::<Map<String, Value>>())
}

/// Sends a client frame, which must match the client action of the AsyncAPI document that its
/// `action` names.
pub(crate) async fn send(socket: &mut Socket, message: Value) {
    FRAMES.check_client_frame(&message).unwrap_or_else(|problem| panic!("the test sends a frame {problem}"));
    socket.send(Message::text(message.to_string())).await.expect("sent");
}

/// Sends a frame the service is to refuse, which the AsyncAPI document must refuse too.
pub(crate) async fn send_refused(socket: &mut Socket, message: Value) {
    assert!(
        FRAMES.check_client_frame(&message).is_err(),
        "{message} is sent to be refused, but docs/asyncapi.yaml accepts it: the document and the service disagree"
    );
    socket.send(Message::text(message.to_string())).await.expect("sent");
}

/// The next JSON text message, which must match the server message of the AsyncAPI document
/// that its `type` names.
pub(crate) async fn next(socket: &mut Socket) -> Value {
    let message = next_unchecked(socket).await;
    FRAMES.check_server_frame(&message).unwrap_or_else(|problem| panic!("the service sent a {problem}"));
    message
}

/// The next JSON text message, whatever it is: for frames that are not the service's.
pub(crate) async fn next_unchecked(socket: &mut Socket) -> Value {
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
pub(crate) async fn next_of(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let message = next(socket).await;
        if message["type"] == kind {
            return message;
        }
    }
}

/// Reads until the server closes; answers the close code.
pub(crate) async fn closed(socket: &mut Socket) -> Option<CloseCode> {
    loop {
        match tokio::time::timeout(WAIT, socket.next()).await.expect("a close in time") {
            Some(Ok(Message::Close(frame))) => return frame.map(|frame| frame.code),
            Some(Ok(_)) => continue,
            _ => return None,
        }
    }
}

pub(crate) async fn create_session(stack: &DevStack, speaker_token: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/sessions", stack.http_url()))
        .bearer_auth(speaker_token)
        .json(&json!({"sourceLanguage": "en"}))
        .send()
        .await
        .expect("POST /sessions answered");
    assert_eq!(response.status(), 201, "creating a session");
    let session: Value = response.json().await.expect("JSON");
    BODIES.check("SessionView", &session).unwrap_or_else(|problem| panic!("POST /sessions answered a {problem}"));
    session["sessionId"].as_str().expect("a session id").to_owned()
}

/// A tokenless listener that connected and joined `session` in `language`.
pub(crate) async fn join(stack: &DevStack, session: &str, language: &str) -> Socket {
    joined(stack, session, language).await.0
}

/// [`join`], and the connection id the service told the listener.
pub(crate) async fn joined(stack: &DevStack, session: &str, language: &str) -> (Socket, String) {
    let mut listener = connect(stack, &format!("sessionId={session}&targetLanguage={language}"))
        .await
        .expect("a tokenless listener connects");
    send(&mut listener, json!({"action": "joinSession", "sessionId": session, "targetLanguage": language})).await;
    let joined = next_of(&mut listener, "sessionJoined").await;
    assert_eq!(joined["sessionId"], session);
    let connection_id = joined["connectionId"].as_str().expect("sessionJoined names the connection").to_owned();
    (listener, connection_id)
}

/// The stack's `@connections` endpoint, as the functions reach it.
pub(crate) fn management_endpoint(stack: &DevStack) -> String {
    stack.ready_json()["management_endpoint"].as_str().expect("the ready file names it").to_owned()
}

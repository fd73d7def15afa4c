//! The local WebSocket API, as the template configures it.
//!
//! - The upgrade is served at `/{stage}`. The `$connect` authorizer runs first, with API
//!   Gateway's identity-source semantics: a missing or empty source is a 401 without invoking
//!   it; `Unauthorized` → 401; a policy that does not allow the `$connect` ARN → 403; a crash,
//!   timeout or malformed answer → 500 (AWS_FACTS 2, 15). Its context then rides on every event
//!   of the connection (AWS_FACTS 4).
//! - `$connect`'s integration answers the handshake: 2xx accepts; any other status refuses the
//!   upgrade with that status; a crash is a 502.
//! - Messages pick their route by the template's selection expression, falling back to
//!   `$default`; without a match the client gets API Gateway's `Forbidden` message, and a
//!   function that fails gets `Internal server error` (AWS_FACTS 6). Return bodies are dropped
//!   (AWS_FACTS 7).
//! - Frames over the frame limit and messages over the message limit close with 1009; idle and
//!   maximum-duration limits close with 1001; every close runs `$disconnect` (AWS_FACTS 11).
//!   The idle timer counts traffic in both directions: a message sent to the client (through
//!   `@connections` or from the gateway itself) resets it as a client's frame does (AWS_FACTS 16).
//! - `@connections` (`POST`, `GET`, `DELETE` at `/{stage}/@connections/{id}`) posts to, reads and
//!   closes live connections; unknown ones are 410 `GoneException` (AWS_FACTS 9). While the
//!   [`Faults`] switch throttles it, it answers 429 `LimitExceededException` first (AWS_FACTS 18).
//! - The switch itself is served at `/_local/faults` (see [`crate::faults`]).

use crate::events::{Body, ConnectionContext, Handshake, epoch_ms};
use crate::faults::Faults;
use crate::runtime::{Function, InvokeError};
use crate::template::{IdentitySource, RequestAuthorizer, WebSocketApi};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// API Gateway's WebSocket quotas (AWS_FACTS 11); all configurable for local use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayLimits {
    pub max_frame_bytes: usize,
    pub max_message_bytes: usize,
    pub idle_timeout: Duration,
    pub max_duration: Duration,
}

impl Default for GatewayLimits {
    fn default() -> Self {
        GatewayLimits {
            max_frame_bytes: 32 * 1024,
            max_message_bytes: 128 * 1024,
            idle_timeout: Duration::from_secs(10 * 60),
            max_duration: Duration::from_secs(2 * 60 * 60),
        }
    }
}

/// How long one frame may take to reach a client before the connection is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// What the gateway sends down a connection.
#[derive(Debug)]
enum Outbound {
    Message(Message),
    Close(u16, String),
}

/// A connection that completed its handshake.
#[derive(Debug)]
struct Live {
    context: ConnectionContext,
    outbound: mpsc::UnboundedSender<Outbound>,
    last_active_ms: AtomicU64,
}

/// The WebSocket API: its template, its functions, its live connections.
#[derive(Debug)]
pub struct WebSocketGateway {
    api: WebSocketApi,
    api_id: String,
    functions: BTreeMap<String, Function>,
    limits: GatewayLimits,
    connections: Mutex<HashMap<String, Arc<Live>>>,
    /// Served at `/.well-known/jwks.json`: the local identity provider's keys.
    jwks: String,
    /// Read by `@connections`, and served at `/_local/faults`.
    faults: Faults,
}

impl WebSocketGateway {
    /// A gateway for `api`; `functions` by logical id must hold every function it routes to.
    pub fn new(
        api: WebSocketApi,
        api_id: String,
        functions: BTreeMap<String, Function>,
        limits: GatewayLimits,
        jwks: String,
        faults: Faults,
    ) -> Arc<WebSocketGateway> {
        Arc::new(WebSocketGateway { api, api_id, functions, limits, connections: Mutex::default(), jwks, faults })
    }

    /// The routes: the upgrade, `@connections`, the local JWKS, and the fault switch.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/.well-known/jwks.json", get(jwks))
            .route("/{stage}", any(handshake))
            .route("/{stage}/@connections/{id}", any(manage))
            .with_state(Arc::clone(self))
            .merge(self.faults.router())
    }

    /// How many connections are open.
    pub fn open_connections(&self) -> usize {
        self.live().len()
    }

    /// Closes every connection with 1001 (`Going away`), as a stage being torn down would.
    pub fn close_all(&self) {
        for live in self.live().values() {
            let _ = live.outbound.send(Outbound::Close(1001, "Going away".to_owned()));
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Live>>> {
        self.connections.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn connection(&self, id: &str) -> Option<Arc<Live>> {
        self.live().get(id).cloned()
    }

    async fn invoke(&self, function: &str, event: &Value) -> Result<Value, InvokeError> {
        match self.functions.get(function) {
            Some(function) => function.invoke(event).await,
            None => Err(InvokeError {
                error_type: "ResourceNotFoundException".into(),
                error_message: format!("function {function} is not running"),
            }),
        }
    }

    /// Runs the `$connect` authorizer; answers the context for later events, or the refusal.
    async fn authorize(
        &self,
        authorizer: &RequestAuthorizer,
        handshake: &Handshake,
        context: &ConnectionContext,
    ) -> Result<Map<String, Value>, Response> {
        let present = |source: &IdentitySource| match source {
            IdentitySource::Header(name) => handshake.header(name).is_some_and(|value| !value.is_empty()),
            IdentitySource::QueryString(name) => handshake.query(name).is_some_and(|value| !value.is_empty()),
        };
        if !authorizer.identity_sources.iter().all(present) {
            return Err(refusal(StatusCode::UNAUTHORIZED, "Unauthorized"));
        }
        let started = epoch_ms();
        let answer = match self.invoke(&authorizer.function, &context.authorizer_event(handshake)).await {
            Ok(answer) => answer,
            Err(error) if error.error_message == "Unauthorized" => {
                return Err(refusal(StatusCode::UNAUTHORIZED, "Unauthorized"));
            }
            Err(_) => return Err(refusal(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")),
        };
        match policy_decision(&answer, &context.connect_method_arn()) {
            Decision::Allow(mut authorizer_context) => {
                authorizer_context.insert("integrationLatency".into(), json!(epoch_ms().saturating_sub(started)));
                Ok(authorizer_context)
            }
            Decision::Deny => Err(refusal(StatusCode::FORBIDDEN, "Forbidden")),
            Decision::Malformed => Err(refusal(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")),
        }
    }

    /// Routes one message and tells the client when API Gateway would.
    async fn route_message(self: Arc<Self>, live: Arc<Live>, body: Body) {
        let selected = match &body {
            Body::Text(text) => self.api.route_selection.select(text),
            Body::Binary(_) => None,
        };
        let route = selected.filter(|key| self.api.routes.contains_key(key)).or_else(|| {
            self.api.routes.contains_key(contract::DEFAULT_ROUTE).then(|| contract::DEFAULT_ROUTE.to_owned())
        });
        let request_id = crate::ids::request_id();
        let Some(route) = route else {
            live.tell(
                json!({"message": "Forbidden", "connectionId": live.context.connection_id, "requestId": request_id}),
            );
            return;
        };
        let Some(function) = self.api.routes.get(&route) else { return };
        if self.invoke(function, &live.context.message_event(&route, &body)).await.is_err() {
            live.tell(json!({
                "message": "Internal server error",
                "connectionId": live.context.connection_id,
                "requestId": request_id,
            }));
        }
    }

    async fn serve(
        self: Arc<Self>,
        socket: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
        context: ConnectionContext,
    ) {
        let (outbound, mut outbox) = mpsc::unbounded_channel();
        let id = context.connection_id.clone();
        let live = Arc::new(Live { context, outbound, last_active_ms: AtomicU64::new(epoch_ms()) });
        self.live().insert(id.clone(), Arc::clone(&live));
        let (mut sink, mut stream) = socket.split();
        let idle = tokio::time::sleep(self.limits.idle_timeout);
        let lifetime = tokio::time::sleep(self.limits.max_duration);
        tokio::pin!(idle, lifetime);
        let (code, reason): (u16, String) = loop {
            tokio::select! {
                frame = stream.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        live.touch();
                        idle.as_mut().reset(tokio::time::Instant::now() + self.limits.idle_timeout);
                        tokio::spawn(Arc::clone(&self).route_message(Arc::clone(&live), Body::Text(text.to_string())));
                    }
                    Some(Ok(Message::Binary(bytes))) => {
                        live.touch();
                        idle.as_mut().reset(tokio::time::Instant::now() + self.limits.idle_timeout);
                        tokio::spawn(Arc::clone(&self).route_message(Arc::clone(&live), Body::Binary(bytes.to_vec())));
                    }
                    Some(Ok(Message::Close(frame))) => {
                        break match frame {
                            Some(frame) => (u16::from(frame.code), frame.reason.to_string()),
                            None => (1005, String::new()),
                        };
                    }
                    Some(Ok(_)) => {}
                    Some(Err(WsError::Capacity(_))) => {
                        let _ = sink.send(close(1009, "Message too big")).await;
                        break (1009, "Message too big".to_owned());
                    }
                    Some(Err(_)) | None => break (1006, "Connection closed abnormally".to_owned()),
                },
                message = outbox.recv() => match message {
                    Some(Outbound::Message(message)) => {
                        // A client that stops reading must not stall its timers and closes.
                        match tokio::time::timeout(SEND_TIMEOUT, sink.send(message)).await {
                            // Traffic either way keeps a connection from being idle (AWS_FACTS 16).
                            Ok(Ok(())) => idle.as_mut().reset(tokio::time::Instant::now() + self.limits.idle_timeout),
                            _ => break (1006, "Connection closed abnormally".to_owned()),
                        }
                    }
                    Some(Outbound::Close(code, reason)) => {
                        let _ = sink.send(close(code, &reason)).await;
                        break (code, reason);
                    }
                    None => break (1001, "Going away".to_owned()),
                },
                () = &mut idle => {
                    let _ = sink.send(close(1001, "Going away")).await;
                    break (1001, "Idle timeout".to_owned());
                }
                () = &mut lifetime => {
                    let _ = sink.send(close(1001, "Going away")).await;
                    break (1001, "Maximum connection duration".to_owned());
                }
            }
        };
        self.live().remove(&id);
        let _ = sink.close().await;
        self.disconnected(&live.context, code, &reason).await;
    }

    /// Runs `$disconnect`, best effort as on AWS: a failing one changes nothing for anybody.
    async fn disconnected(&self, context: &ConnectionContext, code: u16, reason: &str) {
        if let Some(function) = self.api.routes.get(contract::DISCONNECT_ROUTE) {
            let _ = self.invoke(function, &context.disconnect_event(code, reason)).await;
        }
    }
}

impl Live {
    fn touch(&self) {
        self.last_active_ms.store(epoch_ms(), Ordering::Relaxed);
    }

    fn tell(&self, message: Value) {
        let _ = self.outbound.send(Outbound::Message(Message::text(message.to_string())));
    }
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame { code: CloseCode::from(code), reason: reason.to_owned().into() }))
}

/// API Gateway's answer for a refused handshake or request: the status and `{"message"}`.
pub(crate) fn refusal(status: StatusCode, message: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], json!({ "message": message }).to_string()).into_response()
}

/// What an authorizer's answer decides.
#[derive(Debug, PartialEq)]
enum Decision {
    /// The context for later events (`principalId` and the authorizer's `context`).
    Allow(Map<String, Value>),
    Deny,
    Malformed,
}

/// Reads an authorizer's answer as API Gateway does: `principalId`, a policy whose statements
/// allow `execute-api:Invoke` on the `$connect` ARN with no matching `Deny`, and a flat context.
fn policy_decision(answer: &Value, method_arn: &str) -> Decision {
    let Some(principal) = answer.get("principalId").and_then(Value::as_str) else {
        return Decision::Malformed;
    };
    let Some(statements) = answer.pointer("/policyDocument/Statement").and_then(Value::as_array) else {
        return Decision::Malformed;
    };
    let listed = |value: Option<&Value>| -> Vec<String> {
        match value {
            Some(Value::String(text)) => vec![text.clone()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        }
    };
    let mut allowed = false;
    for statement in statements {
        let actions = listed(statement.get("Action"));
        let resources = listed(statement.get("Resource"));
        let applies = actions.iter().any(|action| stacks::template::glob_ignore_case(action, "execute-api:Invoke"))
            && resources.iter().any(|resource| stacks::template::glob(resource, method_arn));
        match statement.get("Effect").and_then(Value::as_str) {
            Some("Deny") if applies => return Decision::Deny,
            Some("Allow") if applies => allowed = true,
            Some("Allow" | "Deny") => {}
            _ => return Decision::Malformed,
        }
    }
    if !allowed {
        return Decision::Deny;
    }
    let mut context = Map::new();
    match answer.get("context") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                // API Gateway hands numbers and booleans on as strings.
                let value = match value {
                    Value::Object(_) | Value::Array(_) => return Decision::Malformed,
                    Value::Number(number) => Value::String(number.to_string()),
                    Value::Bool(flag) => Value::String(flag.to_string()),
                    other => other.clone(),
                };
                context.insert(key.clone(), value);
            }
        }
        Some(_) => return Decision::Malformed,
    }
    context.insert("principalId".into(), Value::String(principal.to_owned()));
    Decision::Allow(context)
}

async fn jwks(State(gateway): State<Arc<WebSocketGateway>>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], gateway.jwks.clone()).into_response()
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    let has = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .any(|value| value.split(',').any(|part| part.trim().eq_ignore_ascii_case(token)))
    };
    has(header::CONNECTION, "upgrade")
        && has(header::UPGRADE, "websocket")
        && headers.get(header::SEC_WEBSOCKET_VERSION).is_some_and(|version| version == "13")
        && headers.contains_key(header::SEC_WEBSOCKET_KEY)
}

async fn handshake(
    State(gateway): State<Arc<WebSocketGateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(stage): Path<String>,
    mut request: Request,
) -> Response {
    if stage != gateway.api.stage {
        return refusal(StatusCode::FORBIDDEN, "Forbidden");
    }
    if !is_upgrade(request.headers()) {
        return (StatusCode::UPGRADE_REQUIRED, [(header::UPGRADE, "websocket")], "this endpoint speaks WebSocket\n")
            .into_response();
    }
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((title_case(name.as_str()), value.to_str().ok()?.to_owned())))
        .collect();
    let query = request.uri().query().map(crate::http_api::query_pairs).unwrap_or_default();
    let handshake = Handshake { headers, query };
    let mut context = ConnectionContext {
        connection_id: crate::ids::connection_id(),
        connected_at_ms: epoch_ms(),
        api_id: gateway.api_id.clone(),
        stage: gateway.api.stage.clone(),
        domain_name: handshake.header("host").unwrap_or("127.0.0.1").to_owned(),
        source_ip: peer.ip().to_string(),
        user_agent: handshake.header("user-agent").map(str::to_owned),
        authorizer: None,
    };
    if let Some(authorizer) = &gateway.api.connect_authorizer {
        match gateway.authorize(authorizer, &handshake, &context).await {
            Ok(authorizer_context) => context.authorizer = Some(authorizer_context),
            Err(refused) => return refused,
        }
    }
    if let Some(function) = gateway.api.routes.get(contract::CONNECT_ROUTE) {
        match gateway.invoke(function, &context.connect_event(&handshake)).await {
            Ok(answer) => {
                let status = answer.get("statusCode").and_then(Value::as_u64).unwrap_or(200);
                let status = u16::try_from(status).ok().and_then(|code| StatusCode::from_u16(code).ok());
                match status {
                    Some(status) if status.is_success() => {}
                    Some(status) => {
                        let body = answer.get("body").and_then(Value::as_str).unwrap_or_default().to_owned();
                        return (status, body).into_response();
                    }
                    None => return refusal(StatusCode::BAD_GATEWAY, "Internal server error"),
                }
            }
            Err(_) => return refusal(StatusCode::BAD_GATEWAY, "Internal server error"),
        }
    }
    let Some(key) = request.headers().get(header::SEC_WEBSOCKET_KEY).map(|key| derive_accept_key(key.as_bytes()))
    else {
        return refusal(StatusCode::BAD_REQUEST, "Bad Request");
    };
    let upgrade = hyper::upgrade::on(&mut request);
    let config = WebSocketConfig::default()
        .max_frame_size(Some(gateway.limits.max_frame_bytes))
        .max_message_size(Some(gateway.limits.max_message_bytes));
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            // `$connect` accepted it, so it gets its `$disconnect` like every other connection.
            gateway.disconnected(&context, 1006, "Connection closed abnormally").await;
            return;
        };
        let socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
        gateway.serve(socket, context).await;
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&key) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// `sec-websocket-key` → `Sec-WebSocket-Key`: header names as browsers send them (the HTTP
/// layer lower-cases them; the functions read them case-insensitively either way).
fn title_case(name: &str) -> String {
    name.split('-')
        .map(|part| match part {
            "websocket" => "WebSocket".to_owned(),
            _ => {
                let mut characters = part.chars();
                characters
                    .next()
                    .map(|first| first.to_ascii_uppercase().to_string() + characters.as_str())
                    .unwrap_or_default()
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn gone() -> Response {
    (
        StatusCode::GONE,
        [("x-amzn-errortype", "GoneException"), ("content-type", "application/json")],
        json!({"message": null}).to_string(),
    )
        .into_response()
}

/// `@connections/{id}`: POST sends, GET describes, DELETE closes.
async fn manage(
    State(gateway): State<Arc<WebSocketGateway>>,
    Path((stage, id)): Path<(String, String)>,
    request: Request,
) -> Response {
    if stage != gateway.api.stage {
        return refusal(StatusCode::FORBIDDEN, "Forbidden");
    }
    // API Gateway's rate limit comes before anything about the connection.
    if gateway.faults.connections_throttled() {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("x-amzn-errortype", "LimitExceededException"), ("content-type", "application/json")],
            json!({"message": "Too Many Requests"}).to_string(),
        )
            .into_response();
    }
    let method = request.method().clone();
    let Some(live) = gateway.connection(&id) else {
        return gone();
    };
    match method.as_str() {
        "POST" => {
            let Ok(body) = axum::body::to_bytes(request.into_body(), usize::MAX).await else {
                return refusal(StatusCode::BAD_REQUEST, "Bad Request");
            };
            if body.len() > gateway.limits.max_message_bytes {
                return (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    [("x-amzn-errortype", "PayloadTooLargeException"), ("content-type", "application/json")],
                    json!({"message": "Message too long"}).to_string(),
                )
                    .into_response();
            }
            let message = match String::from_utf8(body.to_vec()) {
                Ok(text) => Message::text(text),
                Err(_) => Message::Binary(Bytes::clone(&body)),
            };
            match live.outbound.send(Outbound::Message(message)) {
                Ok(()) => StatusCode::OK.into_response(),
                Err(_) => gone(),
            }
        }
        "GET" => {
            let identity = match &live.context.user_agent {
                Some(agent) => json!({"SourceIp": live.context.source_ip, "UserAgent": agent}),
                None => json!({"SourceIp": live.context.source_ip}),
            };
            let details = json!({
                "ConnectedAt": iso8601(live.context.connected_at_ms),
                "Identity": identity,
                "LastActiveAt": iso8601(live.last_active_ms.load(Ordering::Relaxed)),
            });
            ([(header::CONTENT_TYPE, "application/json")], details.to_string()).into_response()
        }
        "DELETE" => match live.outbound.send(Outbound::Close(1000, String::new())) {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(_) => gone(),
        },
        _ => refusal(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
    }
}

/// `2026-11-25T19:01:21.000Z`.
fn iso8601(epoch_ms: u64) -> String {
    let seconds = epoch_ms / 1000;
    let (year, month, day) = crate::events::civil_from_days((seconds / 86_400) as i64);
    let time = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        time / 3600,
        time % 3600 / 60,
        time % 60,
        epoch_ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:api/dev/$connect";

    fn answer(effect: &str, resource: &str, context: Value) -> Value {
        json!({
            "principalId": "user-1",
            "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}
            ]},
            "context": context,
        })
    }

    #[test]
    fn an_allowing_policy_passes_its_context_and_principal() {
        let Decision::Allow(context) = policy_decision(&answer("Allow", ARN, json!({"userId": "u", "n": 1})), ARN)
        else {
            panic!("allowed");
        };
        assert_eq!(context.get("principalId"), Some(&json!("user-1")));
        assert_eq!(context.get("userId"), Some(&json!("u")));
        assert_eq!(context.get("n"), Some(&json!("1")), "numbers arrive as strings, as on AWS");
        assert!(matches!(
            policy_decision(&answer("Allow", "arn:aws:execute-api:*:*:api/*", Value::Null), ARN),
            Decision::Allow(_)
        ));
    }

    #[test]
    fn deny_or_no_matching_allow_is_forbidden() {
        assert_eq!(policy_decision(&answer("Deny", ARN, json!({})), ARN), Decision::Deny);
        assert_eq!(
            policy_decision(&answer("Allow", "arn:aws:execute-api:us-east-1:1:other/dev/$connect", json!({})), ARN),
            Decision::Deny
        );
        let mut both = answer("Allow", "*", json!({}));
        if let Some(statements) = both.pointer_mut("/policyDocument/Statement").and_then(Value::as_array_mut) {
            statements.push(json!({"Action": "execute-api:*", "Effect": "Deny", "Resource": ARN}));
        }
        assert_eq!(policy_decision(&both, ARN), Decision::Deny);
    }

    #[test]
    fn malformed_answers_are_errors() {
        assert_eq!(policy_decision(&json!({"policyDocument": {"Statement": []}}), ARN), Decision::Malformed);
        assert_eq!(policy_decision(&json!({"principalId": "p"}), ARN), Decision::Malformed);
        assert_eq!(policy_decision(&answer("Allow", ARN, json!({"nested": {"a": 1}})), ARN), Decision::Malformed);
        assert_eq!(policy_decision(&answer("Maybe", ARN, json!({})), ARN), Decision::Malformed);
        assert_eq!(policy_decision(&answer("Allow", ARN, json!("text")), ARN), Decision::Malformed);
    }

    #[test]
    fn header_names_and_times_read_like_aws() {
        assert_eq!(title_case("sec-websocket-key"), "Sec-WebSocket-Key");
        assert_eq!(title_case("x-forwarded-for"), "X-Forwarded-For");
        assert_eq!(iso8601(1_795_633_281_123), "2026-11-25T19:01:21.123Z");
    }
}

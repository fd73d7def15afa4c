//! `probe.speaker`: a speaker connects with `--token` as browsers do (the `token` query
//! parameter, PROTOCOL.md "Connecting"), naming no session, sends `{"action":"heartbeat"}`,
//! must get `heartbeatAck`, and then closes; the close frame must be answered.
//!
//! Why no session: PROTOCOL.md lets a speaker connect with a token and no `sessionId` and
//! send `createSession` later. `$connect` then stores the connection's row (a speaker, no
//! session), `heartbeat` is answered for any registered connection without reading a
//! session (`messages`), and `$disconnect` deletes the row. So the probe runs the
//! authorizer with a real token, `$connect`, the heartbeat route, the messages function's
//! read of the connections table and its reply through `@connections`, and leaves nothing
//! behind: no session is created, none to end. (Like every handshake, it counts once in
//! its address's per-minute connect limit, which expires by itself.)
//!
//! The token never appears in the report: the URL is shown with `token=…`, and any error
//! text is scrubbed of it. A refused token is judged against the stage's JWT settings
//! ([`claims`]).

mod claims;

use super::{Check, GROUP, deploy, function_logs, seconds};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use stacks::StageConfig;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};

/// This probe's check id.
pub(super) const ID: &str = "probe.speaker";

/// What a client sends to keep its connection (PROTOCOL.md: `heartbeat`, `timestamp?`).
const HEARTBEAT: &str = r#"{"action":"heartbeat"}"#;

/// How long each step may take.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    /// The WebSocket handshake (the authorizer and `$connect` run in it).
    handshake: Duration,
    /// From sending the heartbeat to its `heartbeatAck` (a cold messages function included).
    reply: Duration,
    /// From sending the close frame to the server's.
    close: Duration,
}

impl Timeouts {
    pub(super) const DEFAULT: Timeouts =
        Timeouts { handshake: Duration::from_secs(10), reply: Duration::from_secs(10), close: Duration::from_secs(5) };
}

/// How the speaker's conversation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The handshake was refused with this HTTP status.
    Refused(u16),
    /// No answer to the handshake in time.
    HandshakeTimeout,
    /// The connection failed before any HTTP answer (DNS, TCP, TLS).
    Unreachable(String),
    /// Connected, but the heartbeat could not be sent.
    SendFailed(String),
    /// `heartbeatAck` came; then the close went as this says.
    Acknowledged(Closing),
    /// The service answered the heartbeat with an `error` message.
    ErrorMessage { code: String, message: String },
    /// API Gateway answered itself, with `{"message": ...}` (`Forbidden`: no route;
    /// `Internal server error`: the function failed).
    GatewayMessage(String),
    /// No `heartbeatAck` in time; what came instead, if anything.
    NoAck { received: Vec<String> },
    /// The connection was closed before any `heartbeatAck`, as this says.
    ClosedBeforeAck(String),
}

/// How closing the connection went.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Closing {
    /// The server answered the close frame.
    Answered,
    /// It did not, as this says.
    Unanswered(String),
}

/// The URL the speaker opens: `base` with the token in the `token` query parameter.
fn url(base: &str, token: &str) -> String {
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}token={}", percent_encode(token))
}

/// The URL as the report shows it: the token left out.
fn shown_url(base: &str) -> String {
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}token=…")
}

/// Connects as a speaker with `token`, heartbeats, closes, and judges how it went.
pub(super) async fn probe(stage: &StageConfig, base: &str, token: &str, timeouts: Timeouts) -> Check {
    let token = bare_token(token);
    let shown = shown_url(base);
    if token.is_empty() {
        return Check::fail(
            GROUP,
            ID,
            "--token is empty: no speaker to probe",
            "pass a speaker token from the stage's identity provider (for the local stack: cargo xtask token)",
        );
    }
    let outcome = scrub(converse(&url(base, token), timeouts).await, token);
    let findings = claims::findings(stage, token, claims::now_seconds());
    diagnose(stage, &shown, &findings, timeouts, &outcome)
}

/// The token without surrounding blanks or a `Bearer ` prefix (as it is often copied).
fn bare_token(token: &str) -> &str {
    let token = token.trim();
    match token.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => token,
    }
}

/// Every character but the URL-unreserved ones as `%XX` (a JWT has none, but a pasted
/// token may).
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// `outcome` with the token cut out of every text it carries.
fn scrub(outcome: Outcome, token: &str) -> Outcome {
    let encoded = percent_encode(token);
    let clean = |text: String| text.replace(token, "…").replace(&encoded, "…");
    match outcome {
        Outcome::Unreachable(text) => Outcome::Unreachable(clean(text)),
        Outcome::SendFailed(text) => Outcome::SendFailed(clean(text)),
        Outcome::Acknowledged(Closing::Unanswered(text)) => Outcome::Acknowledged(Closing::Unanswered(clean(text))),
        Outcome::ClosedBeforeAck(text) => Outcome::ClosedBeforeAck(clean(text)),
        other => other,
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The conversation: handshake, heartbeat, close.
async fn converse(url: &str, timeouts: Timeouts) -> Outcome {
    let mut socket = match tokio::time::timeout(timeouts.handshake, tokio_tungstenite::connect_async(url)).await {
        Err(_) => return Outcome::HandshakeTimeout,
        Ok(Err(tungstenite::Error::Http(response))) => return Outcome::Refused(response.status().as_u16()),
        Ok(Err(error)) => return Outcome::Unreachable(error.to_string()),
        Ok(Ok((socket, _))) => socket,
    };
    match heartbeat(&mut socket, timeouts.reply).await {
        Ok(()) => Outcome::Acknowledged(close(&mut socket, timeouts.close).await),
        Err(outcome) => {
            // Best effort: the verdict is already known.
            let _ = tokio::time::timeout(timeouts.close, socket.close(None)).await;
            outcome
        }
    }
}

/// Sends the heartbeat and reads until its `heartbeatAck` (`Ok`), or what came instead.
async fn heartbeat(socket: &mut Socket, wait: Duration) -> Result<(), Outcome> {
    let deadline = Instant::now() + wait;
    match tokio::time::timeout_at(deadline, socket.send(Message::text(HEARTBEAT))).await {
        Err(_) => return Err(Outcome::SendFailed(format!("not sent within {}", seconds(wait)))),
        Ok(Err(error)) => return Err(Outcome::SendFailed(error.to_string())),
        Ok(Ok(())) => {}
    }
    let mut received = Vec::new();
    loop {
        let frame = match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => return Err(Outcome::NoAck { received }),
            Ok(None) => return Err(Outcome::ClosedBeforeAck("the connection ended".to_owned())),
            Ok(Some(Err(error))) => {
                return Err(Outcome::ClosedBeforeAck(format!("the connection failed: {error}")));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        match frame {
            Message::Text(text) => match Reply::read(text.as_str()) {
                Reply::Ack => return Ok(()),
                Reply::Error { code, message } => return Err(Outcome::ErrorMessage { code, message }),
                Reply::Gateway(message) => return Err(Outcome::GatewayMessage(message)),
                Reply::Other(what) => received.push(what),
            },
            Message::Binary(bytes) => received.push(format!("a binary frame of {} bytes", bytes.len())),
            Message::Close(frame) => {
                let how = match frame {
                    Some(frame) => format!("close {} {:?}", u16::from(frame.code), frame.reason.as_str()),
                    None => "a close frame without a code".to_owned(),
                };
                return Err(Outcome::ClosedBeforeAck(how));
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }
}

/// Sends a close frame and waits for the server's.
async fn close(socket: &mut Socket, wait: Duration) -> Closing {
    let deadline = Instant::now() + wait;
    match tokio::time::timeout_at(deadline, socket.close(None)).await {
        Err(_) => {
            return Closing::Unanswered(format!("the close frame was not sent within {}", seconds(wait)));
        }
        Ok(Err(error)) => return Closing::Unanswered(format!("the close frame was not sent: {error}")),
        Ok(Ok(())) => {}
    }
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => {
                return Closing::Unanswered(format!("no close frame came back within {}", seconds(wait)));
            }
            // `None` only follows a completed closing handshake.
            Ok(None | Some(Ok(Message::Close(_)))) => return Closing::Answered,
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(error))) => {
                return Closing::Unanswered(format!("the connection failed while closing: {error}"));
            }
        }
    }
}

/// One text frame from the service, as the probe reads it.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Ack,
    Error {
        code: String,
        message: String,
    },
    Gateway(String),
    /// Anything else, described (its `type`, or the start of its text).
    Other(String),
}

impl Reply {
    /// What a text frame is: a `heartbeatAck`, an `error`, API Gateway's own `{"message"}`,
    /// or something else.
    fn read(text: &str) -> Reply {
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            return Reply::Other(format!("not JSON: {}", excerpt(text)));
        };
        let field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
        match field("type").as_deref() {
            Some("heartbeatAck") => Reply::Ack,
            Some("error") => Reply::Error {
                code: field("code").unwrap_or_else(|| "(no code)".to_owned()),
                message: field("message").unwrap_or_default(),
            },
            Some(other) => Reply::Other(other.to_owned()),
            None => match field("message") {
                Some(message) => Reply::Gateway(message),
                None => Reply::Other(excerpt(text)),
            },
        }
    }
}

/// At most 120 characters of `text`.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(120) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// What `outcome` means for clients, and the fix. `findings` says what the token's
/// claims show against the stage's settings (for a refused token).
fn diagnose(stage: &StageConfig, url: &str, findings: &str, timeouts: Timeouts, outcome: &Outcome) -> Check {
    let fail = |message: String, fix: String| Check::fail(GROUP, ID, message, fix);
    let authorizer_logs = function_logs(stage, "authorizer");
    let connection_logs = function_logs(stage, "connection");
    let messages_logs = function_logs(stage, "messages");
    let deploy = deploy(stage);
    let refused_by = if stage.connect_authorizer {
        "the $connect authorizer"
    } else {
        "the connection function (this stage verifies tokens in $connect)"
    };
    let jwt = &stage.jwt;
    match outcome {
        Outcome::Acknowledged(Closing::Answered) => Check::pass(
            GROUP,
            ID,
            format!("a speaker with the token connected, got heartbeatAck and closed cleanly ({url})"),
        ),
        Outcome::Acknowledged(Closing::Unanswered(how)) => Check::warn(
            GROUP,
            ID,
            format!(
                "a speaker connected and got heartbeatAck, but its close was not answered ({how}; {url}): \
                 clients that leave see 1006 instead of a clean close"
            ),
            "run doctor again; API Gateway answers close frames itself, so if it persists look at what stands \
             between this machine and the stage (a proxy)",
        ),
        Outcome::Refused(401) => fail(
            format!(
                "the speaker's token was refused with 401 ({url}): {refused_by} found it invalid or expired; \
                 speakers with such tokens cannot connect (browsers see close 1006). The token: {findings}"
            ),
            format!(
                "use a fresh ID or access token from the stage's identity provider (issuer {}, app client {}); \
                 if fresh tokens are refused too, the deployed JWT settings differ from the stage's: compare \
                 {} (identity: issuer, audiences, jwks_url) with the functions' JWT_ISSUER, JWT_AUDIENCE and \
                 JWKS_SOURCE, then `{deploy}`; `{authorizer_logs}` says why each token was refused",
                jwt.issuer,
                jwt.audiences.join(" or "),
                stage.settings_file
            ),
        ),
        Outcome::Refused(403) => fail(
            format!(
                "the speaker was refused with 403 ({url}): the authorizer answered with a policy that does not \
                 allow this $connect (or $connect requires IAM signatures); the token: {findings}"
            ),
            format!(
                "the policy must allow the request's $connect method ARN (AWS_FACTS 1): `{authorizer_logs}`; \
                 see websocket.connect-authorizer, and `{deploy}` deploys the synthesized authorizer"
            ),
        ),
        Outcome::Refused(500) => fail(
            format!(
                "the speaker got 500 ({url}): {refused_by} failed: it could not load the key set ({}) or \
                 crashed, timed out or answered malformed; every speaker is refused (browsers see close 1006)",
                jwt.jwks_url
            ),
            format!(
                "`{authorizer_logs}`; the function must reach JWKS_SOURCE ({}) and API Gateway must be allowed \
                 to invoke it",
                jwt.jwks_url
            ),
        ),
        Outcome::Refused(502) => fail(
            format!(
                "the speaker got 502 ({url}): the $connect function failed or could not be invoked; every \
                 connection is refused (browsers see close 1006)"
            ),
            format!("`{connection_logs}`; check its environment, role and invoke permission"),
        ),
        Outcome::Refused(503) => fail(
            format!(
                "the speaker got 503 ({url}): the $connect function could not finish in time (its tables slow \
                 or unavailable?); connections are refused until it can"
            ),
            format!("`{connection_logs}`; see the tables checks"),
        ),
        Outcome::Refused(400) => fail(
            format!(
                "the speaker got 400 ({url}): $connect saw no token (a tokenless connection naming no session \
                 is refused 400), so the token did not reach it, or refused a parameter"
            ),
            format!("`{connection_logs}` names the parameter; $connect must get the query string unchanged"),
        ),
        Outcome::Refused(429) => Check::warn(
            GROUP,
            ID,
            format!("the speaker got 429 ({url}): this address is rate limited (too many probes?)"),
            "wait a minute and run doctor again",
        ),
        Outcome::Refused(status) => fail(
            format!(
                "a speaker naming no session got {status} ({url}): $connect did not answer as the code does \
                 (a speaker with a valid token and no session is accepted)"
            ),
            format!("`{connection_logs}`; see the websocket.route.$connect check"),
        ),
        Outcome::HandshakeTimeout => fail(
            format!(
                "no answer to the speaker's WebSocket handshake within {} ({url}): clients hang, then see \
                 close 1006",
                seconds(timeouts.handshake)
            ),
            "check the URL (--websocket-url), the network path and the stage's throttling".to_owned(),
        ),
        Outcome::Unreachable(error) => fail(
            format!("the speaker's WebSocket handshake failed before any HTTP answer ({url}): {error}"),
            "check the URL (--websocket-url, else the stack's WebSocketUrl output), DNS and TLS".to_owned(),
        ),
        Outcome::SendFailed(error) => fail(
            format!("the speaker connected but its heartbeat could not be sent ({url}): {error}"),
            "run doctor again; if it persists, check the network path to the stage".to_owned(),
        ),
        Outcome::ErrorMessage { code, message } => {
            let answered = format!("the speaker's heartbeat was answered with error {code}: {message:?} ({url})");
            match code.as_str() {
                "RATE_LIMIT_EXCEEDED" => Check::warn(
                    GROUP,
                    ID,
                    format!("{answered}: this connection or address is rate limited"),
                    "wait a minute and run doctor again",
                ),
                "UNKNOWN_ACTION" | "INVALID_MESSAGE" => fail(
                    format!(
                        "{answered}: the deployed messages function does not understand {HEARTBEAT}, so it is \
                         not this build; clients' heartbeats are refused"
                    ),
                    format!("see the functions checks of the messages function's code; `{deploy}`"),
                ),
                "FORBIDDEN" => fail(
                    format!(
                        "{answered}: the messages function did not find the connection $connect accepted \
                         (its row is missing: $connect and messages use different tables, or the write \
                         failed), so every client's messages are refused"
                    ),
                    format!("`{connection_logs}` and `{messages_logs}`; see the tables and functions checks"),
                ),
                "INTERNAL_ERROR" | "SERVICE_UNAVAILABLE" => fail(
                    format!(
                        "{answered}: the messages function could not read its tables in time; clients' \
                         messages fail"
                    ),
                    format!("`{messages_logs}`; see the tables and permissions checks"),
                ),
                _ => fail(answered, format!("`{messages_logs}`")),
            }
        }
        Outcome::GatewayMessage(message) if message.eq_ignore_ascii_case("forbidden") => fail(
            format!(
                "API Gateway answered the heartbeat with {message:?} ({url}): no route matches `heartbeat` and \
                 there is no $default, so clients' heartbeats (and any action without its route) go unanswered"
            ),
            format!(
                "see the websocket.route.heartbeat check; `{deploy}` deploys every route (a route reaches \
                 clients only in a new deployment of the stage, AWS_FACTS 12)"
            ),
        ),
        Outcome::GatewayMessage(message) => fail(
            format!(
                "API Gateway answered the heartbeat with {message:?} ({url}): the messages function failed \
                 (crashed, timed out) or API Gateway could not invoke it; clients' messages fail"
            ),
            format!("`{messages_logs}`; check its invoke permission (see the functions checks)"),
        ),
        Outcome::NoAck { received } => {
            let instead =
                if received.is_empty() { "nothing came".to_owned() } else { format!("only {}", received.join(", ")) };
            fail(
                format!(
                    "the speaker was accepted but no heartbeatAck came within {} ({instead}; {url}): the \
                     heartbeat route or the messages function is broken, or its replies through @connections \
                     fail; clients' heartbeats go unanswered",
                    seconds(timeouts.reply)
                ),
                format!(
                    "see the websocket.route.heartbeat check and `{messages_logs}` (MANAGEMENT_ENDPOINT, \
                     execute-api:ManageConnections)"
                ),
            )
        }
        Outcome::ClosedBeforeAck(how) => fail(
            format!(
                "the speaker was accepted, then the connection was closed before any heartbeatAck ({how}; \
                 {url}): clients are dropped after connecting"
            ),
            format!("`{messages_logs}` and `{connection_logs}`"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;
    use crate::doctor::probe::test_support::{self, assert_each_fails};
    use tokio::net::TcpListener;

    const QUICK: Timeouts = Timeouts {
        handshake: Duration::from_secs(2),
        reply: Duration::from_millis(500),
        close: Duration::from_millis(500),
    };

    fn judged(outcome: Outcome) -> Check {
        diagnose(&stacks::stages::dev(), "wss://x/dev?token=…", "it expired 2h ago", QUICK, &outcome)
    }

    #[test]
    fn each_answer_names_where_the_speaker_stopped() {
        let pass = judged(Outcome::Acknowledged(Closing::Answered));
        assert_eq!(pass.status, Status::Pass, "{pass:?}");
        let cases = [
            (Outcome::Refused(401), "token was refused with 401"),
            (Outcome::Refused(403), "does not allow this $connect"),
            (Outcome::Refused(500), "could not load the key set"),
            (Outcome::Refused(502), "the $connect function failed"),
            (Outcome::Refused(503), "could not finish in time"),
            (Outcome::Refused(400), "the token did not reach it"),
            (Outcome::Refused(418), "got 418"),
            (Outcome::HandshakeTimeout, "within 2s"),
            (Outcome::Unreachable("dns error".into()), "dns error"),
            (Outcome::SendFailed("broken pipe".into()), "could not be sent"),
            (Outcome::NoAck { received: vec![] }, "no heartbeatAck came within 0.5s (nothing came"),
            (Outcome::NoAck { received: vec!["sessionEnded".into()] }, "only sessionEnded"),
            (Outcome::ClosedBeforeAck("close 1011 \"x\"".into()), "closed before any heartbeatAck"),
            (Outcome::GatewayMessage("Forbidden".into()), "no route matches `heartbeat`"),
            (Outcome::GatewayMessage("Internal server error".into()), "the messages function failed"),
            (
                Outcome::ErrorMessage { code: "INTERNAL_ERROR".into(), message: "boom".into() },
                "error INTERNAL_ERROR: \"boom\"",
            ),
            (Outcome::ErrorMessage { code: "UNKNOWN_ACTION".into(), message: "x".into() }, "not this build"),
            (Outcome::ErrorMessage { code: "FORBIDDEN".into(), message: "x".into() }, "its row is missing"),
            (Outcome::ErrorMessage { code: "ODD".into(), message: "odd".into() }, "error ODD"),
        ];
        assert_each_fails("probe.speaker", &cases, judged);
        let refused = judged(Outcome::Refused(401));
        assert!(refused.message.contains("it expired 2h ago"), "{}", refused.message);
        assert!(refused.fix.contains("JWT_ISSUER"), "{}", refused.fix);
        assert!(refused.fix.contains("JWT_AUDIENCE"), "{}", refused.fix);
        assert!(refused.fix.contains("cargo xtask logs --stage dev --function authorizer"), "{}", refused.fix);
        let no_ack = judged(Outcome::NoAck { received: vec![] });
        assert!(no_ack.fix.contains("websocket.route.heartbeat"), "{}", no_ack.fix);
        assert!(no_ack.fix.contains("--function messages"), "{}", no_ack.fix);
        assert_eq!(judged(Outcome::Refused(429)).status, Status::Warn);
        assert_eq!(
            judged(Outcome::ErrorMessage { code: "RATE_LIMIT_EXCEEDED".into(), message: "x".into() }).status,
            Status::Warn
        );
        assert_eq!(judged(Outcome::Acknowledged(Closing::Unanswered("no close".into()))).status, Status::Warn);
    }

    #[test]
    fn a_stage_without_the_authorizer_names_the_connection_function() {
        let stage = StageConfig { connect_authorizer: false, ..stacks::stages::dev() };
        let check = diagnose(&stage, "u", "f", QUICK, &Outcome::Refused(401));
        assert!(check.message.contains("the connection function"), "{}", check.message);
    }

    #[test]
    fn the_token_travels_in_the_query_and_never_into_the_report() {
        assert_eq!(url("wss://a/dev", "h.p.s"), "wss://a/dev?token=h.p.s");
        assert_eq!(url("ws://a/dev?x=1", "a b+"), "ws://a/dev?x=1&token=a%20b%2B");
        assert_eq!(shown_url("wss://a/dev"), "wss://a/dev?token=…");
        assert_eq!(bare_token("  Bearer h.p.s\n"), "h.p.s");
        assert_eq!(bare_token("h.p.s"), "h.p.s");
        let scrubbed = scrub(Outcome::Unreachable("bad url wss://a/?token=h.p.s".into()), "h.p.s");
        assert_eq!(scrubbed, Outcome::Unreachable("bad url wss://a/?token=…".into()));
    }

    #[test]
    fn replies_are_read_as_the_protocol_and_api_gateway_send_them() {
        assert_eq!(Reply::read(r#"{"type":"heartbeatAck","timestamp":1}"#), Reply::Ack);
        assert_eq!(
            Reply::read(r#"{"type":"error","code":"FORBIDDEN","message":"no","timestamp":1}"#),
            Reply::Error { code: "FORBIDDEN".into(), message: "no".into() }
        );
        assert_eq!(
            Reply::read(r#"{"message":"Forbidden","connectionId":"c","requestId":"r"}"#),
            Reply::Gateway("Forbidden".into())
        );
        assert_eq!(Reply::read(r#"{"type":"sessionEnded"}"#), Reply::Other("sessionEnded".into()));
        assert_eq!(Reply::read("hello"), Reply::Other("not JSON: hello".into()));
    }

    /// What the scripted server does once the speaker is connected.
    #[derive(Debug, Clone, Copy)]
    enum Script {
        /// Another message, then `heartbeatAck`, then answers the close.
        Ack,
        /// `heartbeatAck`, then never reads again (the close goes unanswered).
        AckThenDeaf,
        /// An `error` message.
        Error,
        /// API Gateway's `Forbidden` (no route).
        NoRoute,
        /// Nothing.
        Silent,
        /// Closes with 1011.
        Close,
    }

    /// A WebSocket server that plays `script` to each connection; its `ws://` URL.
    async fn scripted(script: Script) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else { return };
                    // The heartbeat.
                    let _ = socket.next().await;
                    let send = |text: &str| Message::text(text.to_owned());
                    match script {
                        Script::Ack => {
                            let _ = socket.send(send(r#"{"type":"listenerCountChanged","timestamp":1}"#)).await;
                            let _ = socket.send(send(r#"{"type":"heartbeatAck","timestamp":1}"#)).await;
                            while let Some(Ok(_)) = socket.next().await {}
                        }
                        Script::AckThenDeaf => {
                            let _ = socket.send(send(r#"{"type":"heartbeatAck","timestamp":1}"#)).await;
                            tokio::time::sleep(Duration::from_secs(30)).await;
                        }
                        Script::Error => {
                            let error =
                                r#"{"type":"error","code":"SERVICE_UNAVAILABLE","message":"later","timestamp":1}"#;
                            let _ = socket.send(send(error)).await;
                            while let Some(Ok(_)) = socket.next().await {}
                        }
                        Script::NoRoute => {
                            let _ = socket
                                .send(send(r#"{"message":"Forbidden","connectionId":"c","requestId":"r"}"#))
                                .await;
                            while let Some(Ok(_)) = socket.next().await {}
                        }
                        Script::Silent => tokio::time::sleep(Duration::from_secs(30)).await,
                        Script::Close => {
                            let frame = tungstenite::protocol::CloseFrame {
                                code: tungstenite::protocol::frame::coding::CloseCode::Error,
                                reason: "boom".into(),
                            };
                            let _ = socket.close(Some(frame)).await;
                        }
                    }
                });
            }
        });
        format!("ws://{address}/dev")
    }

    /// The `ws://` URL of a server that refuses every handshake with `status`, or never
    /// answers when `None`.
    async fn answering(status: Option<u16>) -> String {
        format!("ws://{}/dev", test_support::answering(status).await)
    }

    #[tokio::test]
    async fn the_conversation_reports_each_way_it_can_end() {
        let cases = [
            (Script::Ack, Outcome::Acknowledged(Closing::Answered)),
            (Script::Error, Outcome::ErrorMessage { code: "SERVICE_UNAVAILABLE".into(), message: "later".into() }),
            (Script::NoRoute, Outcome::GatewayMessage("Forbidden".into())),
            (Script::Silent, Outcome::NoAck { received: vec![] }),
        ];
        for (script, expected) in cases {
            let url = scripted(script).await;
            assert_eq!(converse(&url, QUICK).await, expected, "{script:?}");
        }
        let deaf = converse(&scripted(Script::AckThenDeaf).await, QUICK).await;
        assert!(matches!(deaf, Outcome::Acknowledged(Closing::Unanswered(_))), "{deaf:?}");
        let closed = converse(&scripted(Script::Close).await, QUICK).await;
        assert_eq!(closed, Outcome::ClosedBeforeAck("close 1011 \"boom\"".into()));
        assert_eq!(converse(&answering(Some(401)).await, QUICK).await, Outcome::Refused(401));
    }

    #[tokio::test]
    async fn a_handshake_nobody_answers_times_out_and_a_closed_port_is_unreachable() {
        let quick = Timeouts { handshake: Duration::from_millis(300), ..QUICK };
        assert_eq!(converse(&answering(None).await, quick).await, Outcome::HandshakeTimeout);
        let closed = format!("ws://{}/dev", test_support::closed_port().await);
        let outcome = converse(&closed, quick).await;
        assert!(matches!(outcome, Outcome::Unreachable(_)), "{outcome:?}");
    }

    #[tokio::test]
    async fn the_probe_passes_a_healthy_speaker_and_keeps_the_token_out_of_the_report() {
        let url = scripted(Script::Ack).await;
        let check = probe(&stacks::stages::dev(), &url, "Bearer h.p.s", QUICK).await;
        assert_eq!(check.status, Status::Pass, "{check:?}");
        assert!(check.message.contains("token=…"), "{}", check.message);
        assert!(!check.message.contains("h.p.s"), "{}", check.message);
        let empty = probe(&stacks::stages::dev(), &url, "  ", QUICK).await;
        assert_eq!(empty.status, Status::Fail);
        assert!(empty.message.contains("--token is empty"), "{}", empty.message);
    }
}

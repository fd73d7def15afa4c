//! Check group `probe`: what a real client gets from the live stage, over the network. The
//! three probes run at the same time, every network step under a timeout, so no stage can
//! make doctor hang; `--no-probe` skips them all.
//!
//! - `probe.listener` ([`listener`]): a tokenless listener opens a WebSocket to the stage for a
//!   session id that cannot exist; a healthy stage lets the `$connect` function run, which
//!   refuses it with 404. Any other answer says where the handshake stopped ([`diagnose`],
//!   AWS_FACTS 2, 3 and 15): 401 the identity source refused it before any function ran, 403
//!   the authorizer denied it, 500 the authorizer failed, 502 `$connect` failed; an accepted
//!   handshake means `$connect` did not run or did not look the session up.
//! - `probe.speaker` ([`speaker`], only with `--token`): a speaker connects with the token in
//!   the `token` query parameter, naming no session, heartbeats, must get `heartbeatAck`, and
//!   closes cleanly; it creates nothing, so it leaves nothing behind. A refused token is
//!   judged against the stage's JWT settings ([`claims`]); the token is never printed.
//! - `probe.http` ([`health`]): the HTTP API's `GET /health` answers 200, with no token.
//!
//! The WebSocket URL is `--websocket-url`, else the stack's `WebSocketUrl` output; the HTTP
//! API's base URL is `--http-url`, else its `HttpUrl` output.

use super::{Check, Context};
use stacks::StageConfig;
use std::time::Duration;
use tokio_tungstenite::tungstenite;

pub(super) const GROUP: &str = "probe";
const LISTENER_ID: &str = "probe.listener";
const SPEAKER_ID: &str = "probe.speaker";
const HTTP_ID: &str = "probe.http";

/// The stack output naming the HTTP API's base URL.
const HTTP_URL_OUTPUT: &str = "HttpUrl";

/// A session id in the valid format that no session is ever given (the id words never include
/// these two).
pub(super) const MISSING_SESSION: &str = "doctor-probe-999";

/// How long the handshake may take before it is reported as a timeout.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What the probes reach, and with what: doctor's flags.
#[derive(Clone, Copy)]
pub(super) struct Targets<'a> {
    /// `--websocket-url` (else the stack's `WebSocketUrl` output).
    pub(super) websocket_url: Option<&'a str>,
    /// `--http-url` (else the stack's `HttpUrl` output).
    pub(super) http_url: Option<&'a str>,
    /// `--token`: a speaker token. Without it the speaker probe is skipped.
    pub(super) token: Option<&'a str>,
    /// `--no-probe`: every probe skipped.
    pub(super) skip: bool,
}

impl std::fmt::Debug for Targets<'_> {
    /// As derived, but never showing the token.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Targets")
            .field("websocket_url", &self.websocket_url)
            .field("http_url", &self.http_url)
            .field("token", &self.token.map(|_| "…"))
            .field("skip", &self.skip)
            .finish()
    }
}

/// The group's checks: listener, speaker, HTTP, in that order.
pub(super) async fn checks(context: &Context, targets: &Targets<'_>) -> Vec<Check> {
    let stage = &context.stage;
    if targets.skip {
        return [LISTENER_ID, SPEAKER_ID, HTTP_ID]
            .into_iter()
            .map(|id| Check::skip(GROUP, id, "skipped (--no-probe)"))
            .collect();
    }
    let websocket_url = targets.websocket_url.or_else(|| context.output(super::stack::WEBSOCKET_URL));
    let http_url = targets.http_url.or_else(|| context.output(HTTP_URL_OUTPUT));
    let listener = async {
        match websocket_url {
            Some(url) => listener(stage, url).await,
            None => no_websocket_url(stage, LISTENER_ID),
        }
    };
    let speaker = async {
        match (targets.token, websocket_url) {
            (None, _) => Check::skip(GROUP, SPEAKER_ID, "skipped: pass --token to probe a speaker"),
            (Some(_), None) => no_websocket_url(stage, SPEAKER_ID),
            (Some(token), Some(url)) => speaker::probe(stage, url, token, speaker::Timeouts::DEFAULT).await,
        }
    };
    let http = async {
        match http_url {
            Some(url) => health::probe(stage, url, health::TIMEOUT).await,
            None => Check::fail(
                GROUP,
                HTTP_ID,
                "no HTTP URL to probe: the stack has no HttpUrl output",
                format!("pass --http-url, or deploy the stage: {}", deploy(stage)),
            ),
        }
    };
    let (listener, speaker, http) = tokio::join!(listener, speaker, http);
    vec![listener, speaker, http]
}

fn no_websocket_url(stage: &StageConfig, id: &str) -> Check {
    Check::fail(
        GROUP,
        id,
        "no WebSocket URL to probe: the stack has no WebSocketUrl output",
        format!("pass --websocket-url, or deploy the stage: {}", deploy(stage)),
    )
}

/// The command that deploys `stage` from the synthesized template.
fn deploy(stage: &StageConfig) -> String {
    format!("cargo xtask deploy --stage {}", stage.name)
}

/// The command that shows a contract function's recent log lines.
fn function_logs(stage: &StageConfig, function: &str) -> String {
    format!("cargo xtask logs --stage {} --function {function}", stage.name)
}

/// `10s`, `0.5s`: a timeout as the report states it.
fn seconds(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

/// An error with its causes, as one line (library errors often keep the useful part, such as
/// "dns error" or "invalid peer certificate", in a source).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// How the probe's handshake ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The server answered the upgrade with this HTTP status.
    Status(u16),
    /// The upgrade was accepted (101).
    Accepted,
    /// No answer within [`TIMEOUT`].
    Timeout,
    /// The connection failed before any HTTP answer (DNS, TCP, TLS), with the error.
    Unreachable(String),
}

/// The URL a listener of [`MISSING_SESSION`] opens.
pub(super) fn listener_url(base: &str) -> String {
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}sessionId={MISSING_SESSION}&targetLanguage=de")
}

/// Opens a tokenless listener handshake to `base` and judges the answer.
pub(super) async fn listener(stage: &StageConfig, base: &str) -> Check {
    let url = listener_url(base);
    let outcome = match tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(url.as_str())).await {
        Err(_) => Outcome::Timeout,
        Ok(Ok((mut stream, _))) => {
            // Best effort: the verdict is already known.
            let _ = tokio::time::timeout(TIMEOUT, stream.close(None)).await;
            Outcome::Accepted
        }
        Ok(Err(tungstenite::Error::Http(response))) => Outcome::Status(response.status().as_u16()),
        Ok(Err(error)) => Outcome::Unreachable(error.to_string()),
    };
    diagnose(stage, &url, &outcome)
}

/// What `outcome` means for clients, and the fix.
pub(super) fn diagnose(stage: &StageConfig, url: &str, outcome: &Outcome) -> Check {
    let logs = format!("read the function's recent logs (CloudWatch Logs, stack {})", stage.stack_name);
    let deploy = deploy(stage);
    match outcome {
        Outcome::Status(404) => Check::pass(
            GROUP,
            LISTENER_ID,
            format!("a tokenless listener of a missing session got 404 from $connect ({url})"),
        ),
        Outcome::Status(401) => Check::fail(
            GROUP,
            LISTENER_ID,
            format!(
                "a tokenless listener got 401 ({url}): the $connect authorizer's identity source refused it before \
                 any function ran; every listener without a token is refused (browsers see close 1006)"
            ),
            format!(
                "remove the IdentitySource from the $connect authorizer (websocket.connect-authorizer names it): \
                 `{deploy}` deploys the synthesized template, which has none"
            ),
        ),
        Outcome::Status(403) => Check::fail(
            GROUP,
            LISTENER_ID,
            format!(
                "a tokenless listener got 403 ({url}): the authorizer denied it (or $connect requires IAM \
                 signatures); listeners are refused (browsers see close 1006)"
            ),
            format!("the authorizer must allow anonymous listeners: check its deployed code and {logs}"),
        ),
        Outcome::Status(500) => Check::fail(
            GROUP,
            LISTENER_ID,
            format!(
                "a tokenless listener got 500 ({url}): the authorizer failed (crashed, timed out or answered \
                 malformed); every connection is refused (browsers see close 1006)"
            ),
            format!("{logs} for the authorizer; check its environment and its invoke permission"),
        ),
        Outcome::Status(502) => Check::fail(
            GROUP,
            LISTENER_ID,
            format!(
                "a tokenless listener got 502 ({url}): the $connect function failed or could not be invoked; \
                 every connection is refused (browsers see close 1006)"
            ),
            format!("{logs} for the connection function; check its environment, role and invoke permission"),
        ),
        Outcome::Status(429) => Check::warn(
            GROUP,
            LISTENER_ID,
            format!("a tokenless listener got 429 ({url}): this address is rate limited (too many probes?)"),
            "wait a minute and run doctor again",
        ),
        Outcome::Status(status) => Check::fail(
            GROUP,
            LISTENER_ID,
            format!(
                "a tokenless listener of a missing session got {status} instead of 404 ({url}): $connect did not \
                 answer as the code does"
            ),
            logs,
        ),
        Outcome::Accepted => Check::fail(
            GROUP,
            LISTENER_ID,
            format!(
                "a listener of a session that does not exist was accepted ({url}): $connect does not run the \
                 connection function (route or integration missing), so listeners are connected to nothing"
            ),
            format!("see the websocket.route.$connect check; `{deploy}` restores the route"),
        ),
        Outcome::Timeout => Check::fail(
            GROUP,
            LISTENER_ID,
            format!(
                "no answer to the WebSocket handshake within {}s ({url}): clients hang, then see close 1006",
                TIMEOUT.as_secs()
            ),
            "check the URL (--websocket-url), the network path and the stage's throttling",
        ),
        Outcome::Unreachable(error) => Check::fail(
            GROUP,
            LISTENER_ID,
            format!("the WebSocket handshake failed before any HTTP answer ({url}): {error}"),
            "check the URL (--websocket-url, else the stack's WebSocketUrl output), DNS and TLS",
        ),
    }
}

mod speaker {
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
    //! text is scrubbed of it.

    use super::{Check, GROUP, SPEAKER_ID, deploy, function_logs};
    use futures::{SinkExt, StreamExt};
    use serde_json::Value;
    use stacks::StageConfig;
    use std::time::Duration;
    use tokio::time::Instant;
    use tokio_tungstenite::tungstenite::{self, Message};

    /// What a client sends to keep its connection (PROTOCOL.md: `heartbeat`, `timestamp?`).
    pub(super) const HEARTBEAT: &str = r#"{"action":"heartbeat"}"#;

    /// How long each step may take.
    #[derive(Debug, Clone, Copy)]
    pub(super) struct Timeouts {
        /// The WebSocket handshake (the authorizer and `$connect` run in it).
        pub(super) handshake: Duration,
        /// From sending the heartbeat to its `heartbeatAck` (a cold messages function included).
        pub(super) reply: Duration,
        /// From sending the close frame to the server's.
        pub(super) close: Duration,
    }

    impl Timeouts {
        pub(super) const DEFAULT: Timeouts = Timeouts {
            handshake: Duration::from_secs(10),
            reply: Duration::from_secs(10),
            close: Duration::from_secs(5),
        };
    }

    /// How the speaker's conversation ended.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(super) enum Outcome {
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
    pub(super) enum Closing {
        /// The server answered the close frame.
        Answered,
        /// It did not, as this says.
        Unanswered(String),
    }

    /// The URL the speaker opens: `base` with the token in the `token` query parameter.
    pub(super) fn url(base: &str, token: &str) -> String {
        let separator = if base.contains('?') { '&' } else { '?' };
        format!("{base}{separator}token={}", percent_encode(token))
    }

    /// The URL as the report shows it: the token left out.
    pub(super) fn shown_url(base: &str) -> String {
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
                SPEAKER_ID,
                "--token is empty: no speaker to probe",
                "pass a speaker token from the stage's identity provider (for the local stack: cargo xtask token)",
            );
        }
        let outcome = scrub(converse(&url(base, token), timeouts).await, token);
        let findings = super::claims::findings(stage, token, super::claims::now_seconds());
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
    pub(super) async fn converse(url: &str, timeouts: Timeouts) -> Outcome {
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
            Err(_) => return Err(Outcome::SendFailed(format!("not sent within {}", super::seconds(wait)))),
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
                return Closing::Unanswered(format!("the close frame was not sent within {}", super::seconds(wait)));
            }
            Ok(Err(error)) => return Closing::Unanswered(format!("the close frame was not sent: {error}")),
            Ok(Ok(())) => {}
        }
        loop {
            match tokio::time::timeout_at(deadline, socket.next()).await {
                Err(_) => {
                    return Closing::Unanswered(format!("no close frame came back within {}", super::seconds(wait)));
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
    pub(super) fn diagnose(
        stage: &StageConfig,
        url: &str,
        findings: &str,
        timeouts: Timeouts,
        outcome: &Outcome,
    ) -> Check {
        let fail = |message: String, fix: String| Check::fail(GROUP, SPEAKER_ID, message, fix);
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
                SPEAKER_ID,
                format!("a speaker with the token connected, got heartbeatAck and closed cleanly ({url})"),
            ),
            Outcome::Acknowledged(Closing::Unanswered(how)) => Check::warn(
                GROUP,
                SPEAKER_ID,
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
                    "use a fresh token from the stage's identity provider (issuer {}, audience {}); if fresh tokens \
                     are refused too, the deployed JWT settings differ from the stage's: compare stacks::stages \
                     (`{}`: jwt issuer, audience, token_use, jwks_url) with the functions' JWT_ISSUER, \
                     JWT_AUDIENCE, JWT_TOKEN_USE and JWKS_SOURCE, then `{deploy}`; `{authorizer_logs}` says why \
                     each token was refused",
                    jwt.issuer, jwt.audience, stage.name
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
                SPEAKER_ID,
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
                    super::seconds(timeouts.handshake)
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
                        SPEAKER_ID,
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
                let instead = if received.is_empty() {
                    "nothing came".to_owned()
                } else {
                    format!("only {}", received.join(", "))
                };
                fail(
                    format!(
                        "the speaker was accepted but no heartbeatAck came within {} ({instead}; {url}): the \
                         heartbeat route or the messages function is broken, or its replies through @connections \
                         fail; clients' heartbeats go unanswered",
                        super::seconds(timeouts.reply)
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
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
            for (outcome, expected) in cases {
                let check = judged(outcome.clone());
                assert_eq!(check.status, Status::Fail, "{outcome:?}");
                assert_eq!(check.id, "probe.speaker");
                assert!(check.message.contains(expected), "{outcome:?}: {}", check.message);
                assert!(!check.fix.is_empty(), "{outcome:?}");
            }
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

        /// A server that answers every HTTP request with `status` (a refused handshake); its URL.
        async fn answering(status: u16) -> String {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
            let address = listener.local_addr().expect("address");
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let mut buffer = [0_u8; 4096];
                    let _ = stream.read(&mut buffer).await;
                    let answer = format!(
                        "HTTP/1.1 {status} Refused\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\
                         connection: close\r\n\r\n{{}}"
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                    let _ = stream.shutdown().await;
                }
            });
            format!("ws://{address}/dev")
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
            assert_eq!(converse(&answering(401).await, QUICK).await, Outcome::Refused(401));
        }

        #[tokio::test]
        async fn a_handshake_nobody_answers_times_out_and_a_closed_port_is_unreachable() {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
            let silent = format!("ws://{}/dev", listener.local_addr().expect("address"));
            let quick = Timeouts { handshake: Duration::from_millis(300), ..QUICK };
            assert_eq!(converse(&silent, quick).await, Outcome::HandshakeTimeout);
            drop(listener);
            let outcome = converse(&silent, quick).await;
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
}

mod claims {
    //! What a speaker token says about itself, read without checking its signature: when a
    //! stage refuses the token, its claims against the stage's JWT settings (stacks::stages)
    //! say which to look at: expired, another issuer (a local token on a real stage), another
    //! audience or `token_use`, or none of these (then its signature, or the deployed
    //! settings).

    use base64::Engine as _;
    use serde_json::{Map, Value};
    use stacks::StageConfig;

    /// Seconds since the epoch, now.
    pub(super) fn now_seconds() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or_default()
    }

    /// The token's claims (its middle part), if it is a JWT.
    fn payload(token: &str) -> Option<Map<String, Value>> {
        let mut parts = token.split('.');
        let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
        match serde_json::from_slice(&bytes).ok()? {
            Value::Object(claims) => Some(claims),
            _ => None,
        }
    }

    /// `seconds` as a person says it: `45s`, `12min`, `3h`, `2d`.
    fn span(seconds: i64) -> String {
        match seconds {
            ..120 => format!("{seconds}s"),
            120..7_200 => format!("{}min", seconds / 60),
            7_200..172_800 => format!("{}h", seconds / 3600),
            _ => format!("{}d", seconds / 86_400),
        }
    }

    /// What the token's claims show against `stage`'s JWT settings, at `now`.
    pub(super) fn findings(stage: &StageConfig, token: &str, now: i64) -> String {
        let Some(claims) = payload(token) else {
            return "it is not a JWT: three base64url parts, the middle one JSON".to_owned();
        };
        let jwt = &stage.jwt;
        let number = |name: &str| claims.get(name).and_then(Value::as_f64).map(|value| value as i64);
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        let mut findings = Vec::new();
        match number("exp") {
            Some(exp) if exp <= now => findings.push(format!("it expired {} ago", span(now - exp))),
            Some(_) => {}
            None => findings.push("it has no exp".to_owned()),
        }
        if let Some(nbf) = number("nbf").filter(|nbf| *nbf > now) {
            findings.push(format!("it is not valid for another {}", span(nbf - now)));
        }
        match text("iss") {
            Some(issuer) if issuer == jwt.issuer => {}
            Some(devstack::identity::LOCAL_ISSUER) => findings.push(format!(
                "it is a local token, from `cargo xtask token` (issuer {}): only the local stack accepts it, \
                 signed with that stack's key",
                devstack::identity::LOCAL_ISSUER
            )),
            Some(issuer) => findings.push(format!("its issuer is {issuer}, the stage's is {}", jwt.issuer)),
            None => findings.push("it has no iss".to_owned()),
        }
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(audience)) => vec![audience.as_str()],
            Some(Value::Array(audiences)) => audiences.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !audiences.contains(&jwt.audience.as_str()) {
            let has = if audiences.is_empty() { "no aud".to_owned() } else { format!("aud {}", audiences.join(", ")) };
            findings.push(format!("it has {has}, the stage's audience is {}", jwt.audience));
        }
        if !jwt.token_use.is_empty() && text("token_use") != Some(jwt.token_use.as_str()) {
            let has = text("token_use").map_or_else(|| "no token_use".to_owned(), |used| format!("token_use {used}"));
            findings.push(format!("it has {has}, the stage's is {}", jwt.token_use));
        }
        if findings.is_empty() {
            format!(
                "its claims match the stage's settings (issuer, audience, token_use, not expired): so its \
                 signature is not from the issuer's keys ({}), or the deployed settings differ from the stage's",
                jwt.jwks_url
            )
        } else {
            findings.join("; ")
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use serde_json::json;

        fn token(claims: &Value) -> String {
            let encode = |value: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
            format!("{}.{}.c2ln", encode(&json!({"alg": "RS256"})), encode(claims))
        }

        const NOW: i64 = 1_700_000_000;

        #[test]
        fn a_refused_token_says_which_setting_it_misses() {
            let stage = stacks::stages::dev();
            let good = json!({
                "iss": stage.jwt.issuer, "aud": stage.jwt.audience, "token_use": "id", "exp": NOW + 60, "sub": "s",
            });
            assert!(findings(&stage, &token(&good), NOW).starts_with("its claims match"));

            let mut expired = good.clone();
            expired["exp"] = json!(NOW - 3 * 3600);
            assert_eq!(findings(&stage, &token(&expired), NOW), "it expired 3h ago");

            let mut other = good.clone();
            other["iss"] = json!("https://elsewhere");
            other["aud"] = json!(["a", "b"]);
            other["token_use"] = json!("access");
            let text = findings(&stage, &token(&other), NOW);
            assert!(text.contains("its issuer is https://elsewhere"), "{text}");
            assert!(text.contains("it has aud a, b, the stage's audience is session-service-dev"), "{text}");
            assert!(text.contains("token_use access, the stage's is id"), "{text}");

            let mut local = good;
            local["iss"] = json!(devstack::identity::LOCAL_ISSUER);
            assert!(findings(&stage, &token(&local), NOW).starts_with("it is a local token"));

            assert!(findings(&stage, "not-a-token", NOW).contains("not a JWT"));
            assert!(findings(&stage, &token(&json!({})), NOW).contains("it has no exp"));
        }

        #[test]
        fn spans_read_as_people_say_them() {
            assert_eq!(span(45), "45s");
            assert_eq!(span(600), "10min");
            assert_eq!(span(3 * 3600), "3h");
            assert_eq!(span(3 * 86_400), "3d");
        }
    }
}

mod health {
    //! `probe.http`: the HTTP API's `GET {base}/health` must answer 200 within [`TIMEOUT`],
    //! with no token (PROTOCOL.md: anyone). Redirects are not followed: a 3xx is reported as
    //! it is.

    use super::{Check, GROUP, HTTP_ID, deploy, error_chain, function_logs};
    use stacks::StageConfig;
    use std::time::Duration;

    /// How long the request may take, connection and TLS included.
    pub(super) const TIMEOUT: Duration = Duration::from_secs(10);

    /// How the request ended.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(super) enum Outcome {
        /// The HTTP status it was answered with.
        Status(u16),
        /// No answer in time.
        Timeout,
        /// No HTTP answer at all (DNS, TCP, TLS), with the error.
        Unreachable(String),
    }

    /// `{base}/health` (the `HttpUrl` output has no trailing slash; a typed one may).
    pub(super) fn url(base: &str) -> String {
        format!("{}/health", base.trim_end_matches('/'))
    }

    /// Requests `GET {base}/health` and judges the answer.
    pub(super) async fn probe(stage: &StageConfig, base: &str, timeout: Duration) -> Check {
        let url = url(base);
        let outcome = request(&url, timeout).await;
        diagnose(stage, &url, timeout, &outcome)
    }

    async fn request(url: &str, timeout: Duration) -> Outcome {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build();
        let client = match client {
            Ok(client) => client,
            Err(error) => return Outcome::Unreachable(error_chain(&error)),
        };
        // The client's own timeouts end the request; this one is the guarantee.
        match tokio::time::timeout(timeout + Duration::from_secs(1), client.get(url).send()).await {
            Err(_) => Outcome::Timeout,
            Ok(Ok(response)) => Outcome::Status(response.status().as_u16()),
            Ok(Err(error)) if error.is_timeout() => Outcome::Timeout,
            Ok(Err(error)) => Outcome::Unreachable(error_chain(&error)),
        }
    }

    /// What `outcome` means for clients, and the fix.
    pub(super) fn diagnose(stage: &StageConfig, url: &str, timeout: Duration, outcome: &Outcome) -> Check {
        let fail = |message: String, fix: String| Check::fail(GROUP, HTTP_ID, message, fix);
        let deploy = deploy(stage);
        let logs = function_logs(stage, "http");
        match outcome {
            Outcome::Status(200) => Check::pass(GROUP, HTTP_ID, format!("GET /health answered 200 ({url})")),
            Outcome::Status(status @ (401 | 403)) => fail(
                format!(
                    "GET /health answered {status} ({url}): the health route asks for authorization (its \
                     authorization is no longer NONE: a console edit?); health checks and uptime monitors see the \
                     service as down"
                ),
                format!("the route `GET /health` must have authorization NONE: `{deploy}` restores it"),
            ),
            Outcome::Status(404) => fail(
                format!(
                    "GET /health answered 404 ({url}): the HTTP API has no route `GET /health`, or the URL is not \
                     the stage's HTTP API (its base is the HttpUrl output, with no stage path)"
                ),
                format!("check the URL (--http-url, else the stack's HttpUrl output); `{deploy}` restores the route"),
            ),
            Outcome::Status(429) => Check::warn(
                GROUP,
                HTTP_ID,
                format!("GET /health answered 429 ({url}): the HTTP API is throttling this address or the stage"),
                "wait a minute and run doctor again; if it persists, see the stage's throttling limits",
            ),
            Outcome::Status(status @ 500..=599) => fail(
                format!(
                    "GET /health answered {status} ({url}): the http function failed, timed out or could not be \
                     invoked; the whole HTTP API (sessions) is likely failing too"
                ),
                format!("`{logs}`; check its environment and invoke permission (see the functions checks)"),
            ),
            Outcome::Status(status) => fail(
                format!("GET /health answered {status} instead of 200 ({url})"),
                format!("check the URL (--http-url, else the stack's HttpUrl output) and `{logs}`"),
            ),
            Outcome::Timeout => fail(
                format!("GET /health got no answer within {} ({url}): HTTP clients hang", super::seconds(timeout)),
                "check the URL (--http-url), the network path and the stage's throttling".to_owned(),
            ),
            Outcome::Unreachable(error) => fail(
                format!("GET /health failed before any HTTP answer ({url}): {error}"),
                "check the URL (--http-url, else the stack's HttpUrl output), DNS and TLS".to_owned(),
            ),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::doctor::Status;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio::net::TcpListener;

        fn judged(outcome: Outcome) -> Check {
            diagnose(&stacks::stages::dev(), "https://x/health", TIMEOUT, &outcome)
        }

        #[test]
        fn each_answer_says_what_broke() {
            assert_eq!(judged(Outcome::Status(200)).status, Status::Pass);
            let cases = [
                (Outcome::Status(401), "asks for authorization"),
                (Outcome::Status(403), "asks for authorization"),
                (Outcome::Status(404), "no route `GET /health`"),
                (Outcome::Status(500), "the http function failed"),
                (Outcome::Status(503), "answered 503"),
                (Outcome::Status(301), "301 instead of 200"),
                (Outcome::Timeout, "no answer within 10s"),
                (Outcome::Unreachable("dns error".into()), "dns error"),
            ];
            for (outcome, expected) in cases {
                let check = judged(outcome.clone());
                assert_eq!(check.status, Status::Fail, "{outcome:?}");
                assert_eq!(check.id, "probe.http");
                assert!(check.message.contains(expected), "{outcome:?}: {}", check.message);
                assert!(!check.fix.is_empty(), "{outcome:?}");
            }
            assert!(judged(Outcome::Status(401)).fix.contains("authorization NONE"));
            assert!(judged(Outcome::Status(500)).fix.contains("cargo xtask logs --stage dev --function http"));
            assert_eq!(judged(Outcome::Status(429)).status, Status::Warn);
        }

        #[test]
        fn the_health_url_is_the_base_and_health() {
            assert_eq!(
                url("https://a.execute-api.eu-west-1.amazonaws.com"),
                "https://a.execute-api.eu-west-1.amazonaws.com/health"
            );
            assert_eq!(url("http://127.0.0.1:1/"), "http://127.0.0.1:1/health");
        }

        /// A server that answers every request with `status`, or never when `None`; its URL.
        async fn answering(status: Option<u16>) -> String {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
            let address = listener.local_addr().expect("address");
            tokio::spawn(async move {
                let mut held = Vec::new();
                while let Ok((mut stream, _)) = listener.accept().await {
                    let Some(status) = status else {
                        held.push(stream);
                        continue;
                    };
                    let mut buffer = [0_u8; 4096];
                    let _ = stream.read(&mut buffer).await;
                    let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                    let _ = stream.write_all(answer.as_bytes()).await;
                    let _ = stream.shutdown().await;
                }
            });
            format!("http://{address}")
        }

        #[tokio::test]
        async fn the_request_reports_the_status_a_timeout_or_no_answer() {
            for status in [200, 401, 404, 500] {
                let health = url(&answering(Some(status)).await);
                assert_eq!(request(&health, TIMEOUT).await, Outcome::Status(status));
            }
            let silent = url(&answering(None).await);
            assert_eq!(request(&silent, Duration::from_millis(300)).await, Outcome::Timeout);
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
            let closed = format!("http://{}/health", listener.local_addr().expect("address"));
            drop(listener);
            let outcome = request(&closed, TIMEOUT).await;
            assert!(matches!(outcome, Outcome::Unreachable(_)), "{outcome:?}");
            let check = probe(&stacks::stages::dev(), &answering(Some(200)).await, TIMEOUT).await;
            assert_eq!(check.status, Status::Pass, "{check:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;
    use crate::doctor::stack::LiveStack;

    fn judged(outcome: Outcome) -> Check {
        diagnose(&stacks::stages::dev(), "wss://x/dev", &outcome)
    }

    #[test]
    fn each_answer_names_where_the_handshake_stopped() {
        assert_eq!(judged(Outcome::Status(404)).status, Status::Pass);
        let cases = [
            (Outcome::Status(401), "identity source refused it before any function ran"),
            (Outcome::Status(403), "the authorizer denied it"),
            (Outcome::Status(500), "the authorizer failed"),
            (Outcome::Status(502), "the $connect function failed"),
            (Outcome::Status(418), "got 418 instead of 404"),
            (Outcome::Accepted, "was accepted"),
            (Outcome::Timeout, "no answer to the WebSocket handshake within 10s"),
            (Outcome::Unreachable("tls: bad certificate".into()), "tls: bad certificate"),
        ];
        for (outcome, expected) in cases {
            let check = judged(outcome.clone());
            assert_eq!(check.status, Status::Fail, "{outcome:?}");
            assert!(check.message.contains(expected), "{outcome:?}: {}", check.message);
            assert!(!check.fix.is_empty(), "{outcome:?}");
        }
        assert!(judged(Outcome::Status(401)).fix.contains("remove the IdentitySource"));
        assert_eq!(judged(Outcome::Status(429)).status, Status::Warn);
    }

    #[test]
    fn the_listener_url_names_a_missing_session_and_a_language() {
        assert_eq!(listener_url("wss://a/dev"), "wss://a/dev?sessionId=doctor-probe-999&targetLanguage=de");
        assert_eq!(listener_url("ws://a/?x=1"), "ws://a/?x=1&sessionId=doctor-probe-999&targetLanguage=de");
    }

    fn context(outputs: &[(&str, &str)]) -> Context {
        let stack = LiveStack {
            status: "UPDATE_COMPLETE".into(),
            status_reason: None,
            outputs: outputs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect(),
            resources: Default::default(),
        };
        Context {
            stage: stacks::stages::dev(),
            synthesized: serde_json::Value::Null,
            sdk: aws_config::SdkConfig::builder().build(),
            stack: Some(stack),
            since: Duration::from_secs(3600),
            artifacts: std::path::PathBuf::new(),
        }
    }

    fn ids_and_statuses(checks: &[Check]) -> Vec<(&str, Status)> {
        checks.iter().map(|check| (check.id.as_str(), check.status)).collect()
    }

    #[tokio::test]
    async fn no_probe_skips_all_three() {
        let targets = Targets { websocket_url: None, http_url: None, token: Some("secret.jwt"), skip: true };
        assert!(!format!("{targets:?}").contains("secret"), "{targets:?}");
        let probed = checks(&context(&[]), &targets).await;
        assert_eq!(
            ids_and_statuses(&probed),
            [("probe.listener", Status::Skip), ("probe.speaker", Status::Skip), ("probe.http", Status::Skip)]
        );
        assert!(probed.iter().all(|check| check.message == "skipped (--no-probe)"));
    }

    #[tokio::test]
    async fn without_urls_or_a_token_each_probe_says_what_it_needs() {
        let targets = Targets { websocket_url: None, http_url: None, token: None, skip: false };
        let probed = checks(&context(&[]), &targets).await;
        assert_eq!(
            ids_and_statuses(&probed),
            [("probe.listener", Status::Fail), ("probe.speaker", Status::Skip), ("probe.http", Status::Fail)]
        );
        assert!(probed[0].message.contains("no WebSocketUrl output"), "{}", probed[0].message);
        assert!(probed[1].message.contains("pass --token to probe a speaker"), "{}", probed[1].message);
        assert!(probed[2].message.contains("no HttpUrl output"), "{}", probed[2].message);
        assert!(probed[2].fix.contains("--http-url"), "{}", probed[2].fix);

        let targets = Targets { token: Some("t"), ..targets };
        let probed = checks(&context(&[]), &targets).await;
        assert_eq!(probed[1].status, Status::Fail);
        assert!(probed[1].message.contains("no WebSocketUrl output"), "{}", probed[1].message);
    }

    #[tokio::test]
    async fn the_stack_outputs_are_the_default_urls() {
        // Closed ports: each probe fails at once, naming the URL it took from the outputs.
        let websocket = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bound");
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bound");
        let websocket_url = format!("ws://{}/dev", websocket.local_addr().expect("address"));
        let http_url = format!("http://{}", http.local_addr().expect("address"));
        drop((websocket, http));
        let context = context(&[("WebSocketUrl", &websocket_url), ("HttpUrl", &http_url)]);
        let targets = Targets { websocket_url: None, http_url: None, token: None, skip: false };
        let probed = checks(&context, &targets).await;
        assert!(probed[0].message.contains(&websocket_url), "{}", probed[0].message);
        assert!(probed[2].message.contains(&format!("{http_url}/health")), "{}", probed[2].message);
    }
}

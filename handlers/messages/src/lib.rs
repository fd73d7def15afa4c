//! `$default` and every action route of the WebSocket API.
//!
//! Each frame goes through the one parser (`parse_client_frame`); every refusal is posted
//! back as an `error` message with its PROTOCOL.md code, and the connection stays usable.
//! Replies and fan-out go through `@connections` (routes are one-way, AWS_FACTS 7). The
//! caller's role and session come from the row `$connect` stored (AWS_FACTS 5), never from
//! the frame: a listener cannot control a broadcast, and a speaker controls only their own
//! session.
//!
//! Heartbeats carry the connection-lifetime schedule: from 100 minutes a heartbeat is also
//! answered with `connectionRefreshRequired`, from 105 minutes with `connectionWarning` too
//! (API Gateway closes connections at 2 hours). A listener's heartbeat is also when a session
//! whose speaker left and did not return within the grace period is ended; it costs one read
//! (its connection's row), and the session as this process read it a moment ago (`recent`).
//!
//! A listener's `changeLanguage` (or a `joinSession` with another language) moves its row and
//! its session's per-language counts, and the speaker is told the new `listenerCountChanged`
//! from the session item that move returned; choosing the language it already has changes
//! nothing and tells the speaker nothing. `getSessionStatus` reads its `languageDistribution`
//! from the session item too, never from the listener rows.

mod actions;
mod audio;
pub mod recent;

pub use actions::{MAX_CONNECTION_MINUTES, REFRESH_AFTER_MINUTES, WARN_AFTER_MINUTES};
pub use audio::{AudioRecord, AudioSink};
pub use recent::RecentSessions;

use base64::Engine as _;
use session_core::config::{ConfigError, FunctionEnv, Limits};
use session_core::deadline::{Deadline, OutOfTime};
use session_core::events::{WebSocketEvent, WebSocketResponse};
use session_core::fanout::{Connections, Notifier};
use session_core::lifecycle::Lifecycle;
use session_core::model::Connection;
use session_core::protocol::{ErrorCode, ProtocolError, ServerMessage, parse_client_frame};
use session_core::store::Store;

/// The function, built once per cold start.
#[derive(Debug, Clone)]
pub struct MessagesFunction {
    pub store: Store,
    pub notifier: Notifier,
    pub limits: Limits,
    pub audio: AudioSink,
    /// Sessions this process read a moment ago, for heartbeats (`recent`).
    pub recent: RecentSessions,
}

impl MessagesFunction {
    /// The limits and the audio stream's name, as the contract declares them for `messages`.
    pub fn settings(env: &FunctionEnv) -> Result<(Limits, String), ConfigError> {
        Ok((Limits::from_env(env)?, env.get(contract::env::AUDIO_STREAM)?))
    }

    /// Handles one frame. Always 200: replies, including refusals, are posted.
    pub async fn handle(&self, event: &WebSocketEvent) -> WebSocketResponse {
        self.handle_by(event, Deadline::NONE).await
    }

    /// As [`MessagesFunction::handle`], answering `SERVICE_UNAVAILABLE` if the work is not
    /// done by the reserve before `deadline` (`session_core::deadline`).
    pub async fn handle_by(&self, event: &WebSocketEvent, deadline: Deadline) -> WebSocketResponse {
        let context = &event.request_context;
        let connections = self.notifier.for_event(&context.domain_name, &context.stage);
        let answered = match deadline.run(self.replies(event, &connections)).await {
            Ok(answered) => answered,
            Err(OutOfTime) => {
                let late = ProtocolError::unavailable("the service could not finish in time; resend the frame shortly");
                Err((None, late))
            }
        };
        let (caller, replies) = match answered {
            Ok(answered) => answered,
            Err((caller, refusal)) => {
                tracing::info!(code = %refusal.code, message = %refusal.message, route = %context.route_key, "frame refused");
                (caller, vec![refusal.to_message()])
            }
        };
        for reply in replies {
            self.reply(&connections, &context.connection_id, caller.as_ref(), reply).await;
        }
        WebSocketResponse::ok()
    }

    /// The caller's row (once read, it serves the replies too) and the replies, or the refusal.
    async fn replies(
        &self,
        event: &WebSocketEvent,
        connections: &Connections,
    ) -> Result<(Option<Connection>, Vec<ServerMessage>), (Option<Connection>, ProtocolError)> {
        let frame = frame_text(event).map_err(|refusal| (None, refusal))?;
        let message = parse_client_frame(&frame, self.limits.max_message_bytes).map_err(|refusal| (None, refusal))?;
        let connection = match self.store.get_connection(&event.request_context.connection_id).await {
            Ok(Some(connection)) => connection,
            Ok(None) => {
                let refusal = ProtocolError::new(
                    ErrorCode::Forbidden,
                    "this connection is not registered (it may have expired); reconnect",
                );
                return Err((None, refusal));
            }
            Err(error) => return Err((None, error.into())),
        };
        let request = actions::Request { function: self, connections, connection: &connection };
        match request.dispatch(message).await {
            Ok(replies) => Ok((Some(connection), replies)),
            Err(refusal) => Err((Some(connection), refusal)),
        }
    }

    /// Session operations over this function's store, with its limits.
    fn lifecycle<'a>(&'a self, connections: &'a Connections) -> Lifecycle<'a> {
        Lifecycle::new(&self.store, connections, &self.limits)
    }

    /// Posts one message to the caller. A registered caller that is gone is forgotten as any
    /// gone connection is; an unregistered one is posted to anyway (the client should see its
    /// refusal), with nothing to clean up.
    async fn reply(
        &self,
        connections: &Connections,
        connection_id: &str,
        caller: Option<&Connection>,
        message: ServerMessage,
    ) {
        let frame = message.at(self.store.clock().now_millis());
        let Some(caller) = caller else {
            if let Err(error) = connections.post(connection_id, &frame).await {
                tracing::warn!(%error, "could not reply");
            }
            return;
        };
        let lifecycle = self.lifecycle(connections);
        let report = lifecycle.deliver(std::slice::from_ref(caller), &frame).await;
        if !report.failed.is_empty() {
            tracing::warn!(failed = ?report.failed, "could not reply");
        }
    }
}

/// The frame's text; binary frames arrive base64-encoded and must still be UTF-8 JSON.
fn frame_text(event: &WebSocketEvent) -> Result<String, ProtocolError> {
    let body = event.body.clone().unwrap_or_default();
    if !event.is_base64_encoded {
        return Ok(body);
    }
    base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| ProtocolError::new(ErrorCode::InvalidMessage, "binary frames must be UTF-8 JSON text"))
}

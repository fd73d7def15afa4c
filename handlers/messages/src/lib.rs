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
//! whose speaker left and did not return within the grace period is ended.
//!
//! A listener's `changeLanguage` (or a `joinSession` with another language) moves its row and
//! its session's per-language counts, and the speaker is told the new `listenerCountChanged`
//! from the session item that move returned; choosing the language it already has changes
//! nothing and tells the speaker nothing. `getSessionStatus` reads its `languageDistribution`
//! from the session item too, never from the listener rows.

mod actions;
mod audio;

pub use actions::{MAX_CONNECTION_MINUTES, REFRESH_AFTER_MINUTES, WARN_AFTER_MINUTES};
pub use audio::{AudioRecord, AudioSink};

use base64::Engine as _;
use session_core::config::{ConfigError, FunctionEnv, Limits};
use session_core::events::{WebSocketEvent, WebSocketResponse};
use session_core::fanout::{Connections, Notifier};
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
}

impl MessagesFunction {
    /// The limits and the audio stream's name, as the contract declares them for `messages`.
    pub fn settings(env: &FunctionEnv) -> Result<(Limits, String), ConfigError> {
        Ok((Limits::from_env(env)?, env.get(contract::env::AUDIO_STREAM)?))
    }

    /// Handles one frame. Always 200: replies, including refusals, are posted.
    pub async fn handle(&self, event: &WebSocketEvent) -> WebSocketResponse {
        let context = &event.request_context;
        let connections = self.notifier.for_event(&context.domain_name, &context.stage);
        let replies = match self.replies(event, &connections).await {
            Ok(replies) => replies,
            Err(refusal) => {
                tracing::info!(code = %refusal.code, message = %refusal.message, route = %context.route_key, "frame refused");
                vec![refusal.to_message()]
            }
        };
        for reply in replies {
            self.reply(&connections, &context.connection_id, reply).await;
        }
        WebSocketResponse::ok()
    }

    async fn replies(
        &self,
        event: &WebSocketEvent,
        connections: &Connections,
    ) -> Result<Vec<ServerMessage>, ProtocolError> {
        let frame = frame_text(event)?;
        let message = parse_client_frame(&frame, self.limits.max_message_bytes)?;
        let connection = self.store.get_connection(&event.request_context.connection_id).await?.ok_or_else(|| {
            ProtocolError::new(
                ErrorCode::Forbidden,
                "this connection is not registered (it may have expired); reconnect",
            )
        })?;
        let request = actions::Request { function: self, connections, connection: &connection };
        request.dispatch(message).await
    }

    /// Posts one message to one connection; a gone connection's row is cleaned up.
    async fn reply(&self, connections: &Connections, connection_id: &str, message: ServerMessage) {
        let frame = message.at(self.store.clock().now_millis());
        let recipient = match self.store.get_connection(connection_id).await {
            Ok(Some(connection)) => connection,
            // Not registered: post anyway (the client should see its refusal), nothing to clean.
            _ => {
                if let Err(error) = connections.post(connection_id, &frame).await {
                    tracing::warn!(%error, "could not reply");
                }
                return;
            }
        };
        let report = connections.broadcast(&self.store, std::slice::from_ref::<Connection>(&recipient), &frame).await;
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

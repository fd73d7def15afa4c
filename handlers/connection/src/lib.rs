//! `$connect` and `$disconnect` of the WebSocket API.
//!
//! `$connect` decides who is connecting and refuses with the right HTTP status (PROTOCOL.md):
//! the caller comes from the authorizer's context, or, on a stage without the authorizer
//! (`CONNECT_AUTH=self`) or when the context is absent, from verifying the token here, by the
//! HTTP API JWT authorizer's rules (`session_core::jwt`: ID and access tokens alike). A
//! connection with `targetLanguage` is a listener (a signed-in user may listen too); one with a
//! verified token and no `targetLanguage` is a speaker, who must own the session if one is
//! named. Listeners are counted against the session's cap; nothing is half-written (a
//! listener's row is written, then counted, and deleted again if the session is full). A count
//! that says full is checked against the listener rows first, asking `@connections` which are
//! still open, since lost `$disconnect`s make it drift upward (`Store::admit_listener`).
//! `$connect` never posts to its own connection (AWS_FACTS 9); it tells the speaker about the
//! new listener, from the session item the count's write returns (the per-language counts live
//! there, `session_core::store::sessions`), so a join costs the same few DynamoDB calls however
//! many listeners the session has.
//!
//! Abuse from one address is bounded by its rate limit (`contract::limits`): a venue's audience
//! per minute, and once the address has named too many sessions that do not exist (or have
//! ended), nothing more for the rest of the minute, at the cost of the counter alone.
//!
//! A listener's refresh (PROTOCOL.md "Connection lifetime") opens the new connection with the
//! same query string plus `previousConnectionId=<the old connection's id>` (the `connectionId`
//! of `sessionJoined` or `connectionRefreshRequired`). The new connection then takes the old
//! one's place in the listener count rather than a new one, so a refresh succeeds in a full
//! session and the count stays exact: the old row is deleted (its late `$disconnect` finds
//! nothing to uncount) and the client closes the old connection after `refreshConnection`.
//! Only a listener row of the same session can be taken over; a `previousConnectionId` that
//! names none (already disconnected, another session's, a speaker's) is ignored and the
//! listener is counted as new. A refresh that keeps the language changes no count and tells the
//! speaker nothing; one with another language moves the place between languages, and the speaker
//! hears the new distribution. The id works as the place's credential: the service tells a
//! connection's id only to that connection. Speakers need no such parameter (their refresh
//! hands over with `refreshConnection` and takes no place in the count).
//!
//! `$disconnect` (best effort, AWS_FACTS 10) removes the row, corrects the count and tells the
//! speaker. When a speaker's connection closes and the speaker has another open connection
//! (a refresh whose `refreshConnection` has not arrived yet, or a second tab), the session's
//! speaker connection is handed to the newest one; a speaker leaving with no other connection
//! starts the grace period after which the session ends (at once when the grace period is
//! zero).

use session_core::auth::Caller;
use session_core::config::{ConfigError, FunctionEnv, Limits};
use session_core::deadline::{Deadline, OutOfTime};
use session_core::events::{WebSocketEvent, WebSocketResponse};
use session_core::fanout::{Connections, Notifier};
use session_core::ids::SessionId;
use session_core::jwt::Verifier;
use session_core::lifecycle::Lifecycle;
use session_core::model::{Connection, Role, Session};
use session_core::protocol::handshake::HandshakeQuery;
use session_core::protocol::{ErrorCode, ProtocolError};
use session_core::store::{RateDecision, RateLimitKey, RateRule, Store, StoreError};
use session_core::validation::LanguageCode;

/// The `$connect` query parameter by which a listener's new connection names the connection
/// it refreshes (the `connectionId` of its `sessionJoined` or `connectionRefreshRequired`), and
/// the longest value it may have.
pub use session_core::protocol::handshake::{MAX_CONNECTION_ID_CHARS, PREVIOUS_CONNECTION_PARAM};

/// Who verifies speaker tokens on `$connect` (the `CONNECT_AUTH` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectAuth {
    /// The stage has the `$connect` authorizer; its context says who the caller is.
    Authorizer,
    /// The stage has no authorizer; this function verifies tokens itself.
    SelfVerify,
}

impl std::str::FromStr for ConnectAuth {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "authorizer" => Ok(ConnectAuth::Authorizer),
            "self" => Ok(ConnectAuth::SelfVerify),
            _ => Err("must be \"authorizer\" or \"self\"".to_owned()),
        }
    }
}

/// The function, built once per cold start.
#[derive(Debug, Clone)]
pub struct ConnectionFunction {
    pub store: Store,
    pub notifier: Notifier,
    pub limits: Limits,
    pub auth: ConnectAuth,
    pub verifier: Verifier,
}

impl ConnectionFunction {
    /// Reads the settings the contract declares for `connection`.
    pub fn settings(env: &FunctionEnv) -> Result<(Limits, ConnectAuth, Verifier), ConfigError> {
        Ok((Limits::from_env(env)?, env.parse(contract::env::CONNECT_AUTH)?, Verifier::new(env.jwt()?)))
    }

    /// Answers one `$connect` or `$disconnect`. Never fails: a refusal is a status.
    pub async fn handle(&self, event: &WebSocketEvent) -> WebSocketResponse {
        self.handle_by(event, Deadline::NONE).await
    }

    /// As [`ConnectionFunction::handle`], refusing a handshake with 503 if it is not done by
    /// the reserve before `deadline` (`session_core::deadline`).
    pub async fn handle_by(&self, event: &WebSocketEvent, deadline: Deadline) -> WebSocketResponse {
        let context = &event.request_context;
        let connections = self.notifier.for_event(&context.domain_name, &context.stage);
        match context.event_type.as_str() {
            "CONNECT" => {
                let connected =
                    deadline.run(Box::pin(self.connect(event, &connections))).await.unwrap_or_else(|OutOfTime| {
                        Err(ProtocolError::unavailable("the service could not finish in time; connect again shortly"))
                    });
                match connected {
                    Ok(()) => WebSocketResponse::ok(),
                    Err(refusal) => {
                        tracing::info!(code = %refusal.code, message = %refusal.message, "connection refused");
                        WebSocketResponse::refusal(&refusal)
                    }
                }
            }
            "DISCONNECT" => {
                let cleanup =
                    deadline.run(Box::pin(self.lifecycle(&connections).disconnected(&context.connection_id))).await;
                match cleanup {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        tracing::error!(%error, connection = %context.connection_id, "disconnect cleanup failed");
                    }
                    Err(OutOfTime) => {
                        tracing::error!(connection = %context.connection_id, "disconnect cleanup stopped at the deadline");
                    }
                }
                WebSocketResponse::ok()
            }
            other => {
                tracing::error!(event_type = other, route = %context.route_key, "connection received an event it does not serve");
                WebSocketResponse::refusal(&ProtocolError::new(
                    ErrorCode::InternalError,
                    format!("route {} is not served by this function", context.route_key),
                ))
            }
        }
    }

    async fn caller(&self, event: &WebSocketEvent) -> Result<Caller, ProtocolError> {
        if self.auth == ConnectAuth::Authorizer {
            if let Some(caller) = Caller::from_context(event.request_context.authorizer.as_ref()) {
                return Ok(caller);
            }
            tracing::warn!("CONNECT_AUTH=authorizer but the event carries no authorizer context; verifying here");
        }
        match event.token() {
            None => Ok(Caller::Anonymous),
            Some(token) => {
                let claims = self.verifier.verify(token, self.store.clock().now_seconds()).await?;
                Ok(Caller::User { user_id: claims.sub, email: claims.email })
            }
        }
    }

    async fn connect(&self, event: &WebSocketEvent, connections: &Connections) -> Result<(), ProtocolError> {
        let caller = self.caller(event).await?;
        let query = HandshakeQuery::read(|name| event.query(name))?;
        let (session_id, language) = (query.session_id, query.target_language);
        let previous = query
            .previous_connection_id
            // Its own id names no other connection: an ordinary connect.
            .filter(|previous| *previous != event.request_context.connection_id);
        let user_id = match &caller {
            Caller::User { user_id, .. } => Some(user_id.clone()),
            Caller::Anonymous => None,
        };
        let role = match (&language, &caller) {
            (Some(_), _) => Role::Listener,
            (None, Caller::User { .. }) => Role::Speaker,
            (None, Caller::Anonymous) if session_id.is_none() => return Err(ProtocolError::missing("sessionId")),
            (None, Caller::Anonymous) => return Err(ProtocolError::missing("targetLanguage")),
        };
        if role == Role::Listener && session_id.is_none() {
            return Err(ProtocolError::missing("sessionId"));
        }
        let source_ip = &event.request_context.identity.source_ip;
        self.rate_limit(source_ip).await?;

        let now = self.store.clock();
        let connection = Connection {
            connection_id: event.request_context.connection_id.clone(),
            session_id: session_id.clone(),
            role,
            target_language: language,
            user_id: user_id.clone(),
            connected_at: match event.request_context.connected_at {
                0 => now.now_millis(),
                at => at,
            },
            source_ip: source_ip.clone(),
            ttl: now.now_seconds() + self.limits.connection_ttl_seconds,
            session_expires_at: None,
            counted: false,
        };
        let Some(session_id) = session_id else {
            // A speaker who will send `createSession` on this connection.
            return self.store.put_connection(&connection).await.map_err(ProtocolError::from);
        };
        let session = match self.live_session(&session_id, connections).await {
            Ok(session) => session,
            Err(refusal) => {
                if matches!(refusal.code, ErrorCode::SessionNotFound | ErrorCode::SessionInactive) {
                    self.record_miss(source_ip).await;
                }
                return Err(refusal);
            }
        };
        // The row belongs to this session, not to an earlier one that had the same id.
        let connection = Connection { session_expires_at: Some(session.expires_at), ..connection };
        // A connection is a listener exactly when it names a language.
        match language {
            Some(language) => {
                self.admit_listener(&session, &connection, language, previous.as_deref(), connections).await
            }
            None => {
                if Some(&session.speaker_user_id) != user_id.as_ref() {
                    return Err(ProtocolError::new(
                        ErrorCode::Forbidden,
                        format!("you do not own session {session_id}"),
                    ));
                }
                self.store.put_connection(&connection).await?;
                self.store.set_speaker_connection(&session_id, &connection.connection_id).await?;
                Ok(())
            }
        }
    }

    /// The session, if it exists and has not ended (ending it first if its speaker's grace
    /// period is over).
    async fn live_session(&self, id: &SessionId, connections: &Connections) -> Result<Session, ProtocolError> {
        let session =
            self.store.get_session(id).await?.ok_or_else(|| {
                ProtocolError::new(ErrorCode::SessionNotFound, format!("session {id} does not exist"))
            })?;
        let ended = self.lifecycle(connections).settle(&session).await?;
        if !session.is_live() || ended.is_some() {
            return Err(ProtocolError::new(ErrorCode::SessionInactive, format!("session {id} has ended")));
        }
        Ok(session)
    }

    /// Admits a listener in `language`: its row, and its place in the session's count, which
    /// is the place of the listener connection `previous` when this connection refreshes that
    /// one.
    async fn admit_listener(
        &self,
        session: &Session,
        connection: &Connection,
        language: LanguageCode,
        previous: Option<&str>,
        connections: &Connections,
    ) -> Result<(), ProtocolError> {
        let id = &session.session_id;
        // The row first, then the count: when the count says the session is full, it is
        // checked against the rows, and this order means no admitted listener is missing.
        self.store.put_connection(connection).await?;
        let counted = match self.count_listener(id, &connection.connection_id, language, previous, connections).await {
            Ok(counted) => counted,
            Err(error) => {
                // Not admitted: no row without its place, and the place back if it was taken
                // (a refresh that took its predecessor's place, then failed).
                self.undo_admission(&connection.connection_id).await;
                return Err(error.into());
            }
        };
        if let Some(counted) = counted
            && let Err(error) = self.lifecycle(connections).tell_speaker_audience(&counted).await
        {
            tracing::warn!(%error, "could not tell the speaker about a new listener");
        }
        Ok(())
    }

    /// Deletes a refused listener's row, giving back its place if the row was marked counted.
    /// A failure is logged: the row then stays until its TTL or a recount finds it closed.
    async fn undo_admission(&self, connection_id: &str) {
        let undone = match self.store.delete_connection(connection_id).await {
            Ok(Some(row)) => self.store.give_back_place(&row).await.map(drop),
            Ok(None) => Ok(()),
            Err(error) => Err(error),
        };
        if let Err(error) = undone {
            tracing::error!(%error, connection = connection_id, "could not undo a refused listener's admission");
        }
    }

    /// Counts a listener whose row is written, and returns the session as counting it left it
    /// (`None` if no count changed). A refresh moves the previous connection's place (its row
    /// is deleted, so its late `$disconnect` uncounts nothing): the count does not change, and
    /// a full session is no obstacle; the per-language counts change only if the new
    /// connection listens in another language. If the previous connection has no row (its
    /// `$disconnect` came first and gave its place back), the listener is counted as new.
    async fn count_listener(
        &self,
        id: &SessionId,
        connection_id: &str,
        language: LanguageCode,
        previous: Option<&str>,
        connections: &Connections,
    ) -> Result<Option<Session>, StoreError> {
        if let Some(previous) = previous
            && let Some(taken) = self.store.take_listener_place(previous, id, connection_id, language).await?
        {
            tracing::info!(session = %id, from = previous, to = connection_id, "listener place moved");
            return Ok(taken.session);
        }
        let cap = self.limits.max_listeners_per_session;
        // A recount asks `@connections` which of the rows it doubts are still open.
        let lifecycle = self.lifecycle(connections);
        let closed = |candidates| lifecycle.closed_among(candidates);
        self.store.admit_listener(id, connection_id, language, cap, closed).await.map(Some)
    }

    /// The per-address rule: a venue's audience per minute, and no more handshakes once the
    /// address has named too many sessions that do not exist.
    fn connect_rule(&self) -> RateRule {
        RateRule::new(self.limits.connects_per_minute_per_ip, 60)
            .with_miss_limit(self.limits.unknown_session_connects_per_minute_per_ip)
    }

    async fn rate_limit(&self, source_ip: &str) -> Result<(), ProtocolError> {
        let key = RateLimitKey::new("connect", "ip", source_ip);
        match self.store.hit_rate_limit(&key, self.connect_rule()).await? {
            RateDecision::Allowed { .. } => Ok(()),
            RateDecision::Limited { retry_after } => Err(ProtocolError::rate_limited(retry_after)),
        }
    }

    /// Counts a handshake that named no live session against its address.
    async fn record_miss(&self, source_ip: &str) {
        let key = RateLimitKey::new("connect", "ip", source_ip);
        if let Err(error) = self.store.record_rate_limit_miss(&key, self.connect_rule()).await {
            tracing::warn!(%error, "could not count a handshake for an unknown session");
        }
    }

    fn lifecycle<'a>(&'a self, connections: &'a Connections) -> Lifecycle<'a> {
        Lifecycle::new(&self.store, connections, &self.limits)
    }
}

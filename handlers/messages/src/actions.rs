//! One handler per action. Each returns the messages to send back to the caller (possibly
//! none) or the refusal to send instead; fan-out to others happens inside.

use crate::MessagesFunction;
use crate::audio::{AudioRecord, encode};
use session_core::fanout::Connections;
use session_core::ids::SessionId;
use session_core::lifecycle::{Lifecycle, reasons};
use session_core::model::{BroadcastState, Connection, Role, Session, SessionStatus};
use session_core::protocol::{ChunkId, ClientMessage, ErrorCode, ProtocolError, ServerMessage};
use session_core::store::{BroadcastPatch, NewSession, RateDecision, RateLimitKey, RateRule};
use session_core::validation::{LanguageCode, QualityTier, Volume};

/// From this connection age on, heartbeats ask the client to refresh its connection.
pub const REFRESH_AFTER_MINUTES: i64 = 100;
/// From this connection age on, heartbeats also warn that the connection will close.
pub const WARN_AFTER_MINUTES: i64 = 105;
/// API Gateway's maximum connection duration (AWS_FACTS 11).
pub const MAX_CONNECTION_MINUTES: i64 = 120;

type Replies = Result<Vec<ServerMessage>, ProtocolError>;

/// One frame from one registered connection.
pub(crate) struct Request<'a> {
    pub(crate) function: &'a MessagesFunction,
    pub(crate) connections: &'a Connections,
    pub(crate) connection: &'a Connection,
}

impl Request<'_> {
    fn lifecycle(&self) -> Lifecycle<'_> {
        self.function.lifecycle(self.connections)
    }

    fn now_millis(&self) -> i64 {
        self.function.store.clock().now_millis()
    }

    pub(crate) async fn dispatch(&self, message: ClientMessage) -> Replies {
        match message {
            ClientMessage::CreateSession { source_language, quality_tier } => {
                self.create_session(source_language, quality_tier.unwrap_or_default()).await
            }
            ClientMessage::JoinSession { session_id, target_language } => self.join(&session_id, target_language).await,
            ClientMessage::Heartbeat { .. } => self.heartbeat().await,
            ClientMessage::RefreshConnection { session_id, role } => self.refresh(&session_id, role).await,
            ClientMessage::GetSessionStatus => self.status().await,
            ClientMessage::PauseBroadcast => self.pause(true).await,
            ClientMessage::ResumeBroadcast => self.pause(false).await,
            ClientMessage::MuteBroadcast => {
                self.control(
                    BroadcastPatch { is_muted: Some(true), ..Default::default() },
                    ServerMessage::BroadcastMuted,
                )
                .await
            }
            ClientMessage::UnmuteBroadcast => {
                self.control(
                    BroadcastPatch { is_muted: Some(false), ..Default::default() },
                    ServerMessage::BroadcastUnmuted,
                )
                .await
            }
            ClientMessage::SetVolume { volume_level } => self.set_volume(volume_level).await,
            ClientMessage::SpeakerStateChange { state } => self.speaker_state(state).await,
            ClientMessage::ChangeLanguage { target_language } => self.change_language(target_language).await,
            ClientMessage::EndSession { reason } => self.end(reason).await,
            ClientMessage::SendAudio { audio_data, chunk_id, timestamp } => {
                self.send_audio(&audio_data, &chunk_id, timestamp).await
            }
        }
    }

    /// The caller's live session, which the caller must speak in and own.
    async fn own_session(&self) -> Result<Session, ProtocolError> {
        if self.connection.role != Role::Speaker {
            return Err(ProtocolError::new(ErrorCode::Forbidden, "only the session's speaker can do this"));
        }
        let session = self.live_session().await?;
        if Some(&session.speaker_user_id) != self.connection.user_id.as_ref() {
            return Err(ProtocolError::new(ErrorCode::Forbidden, "you do not own this session"));
        }
        Ok(session)
    }

    /// The caller's session, if it exists and has not ended.
    async fn live_session(&self) -> Result<Session, ProtocolError> {
        let id = self.connection.session_id.as_ref().ok_or_else(|| {
            ProtocolError::new(ErrorCode::Forbidden, "this connection has no session yet; send createSession first")
        })?;
        let session =
            self.function.store.get_session(id).await?.ok_or_else(|| {
                ProtocolError::new(ErrorCode::SessionNotFound, format!("session {id} does not exist"))
            })?;
        let ended = self.lifecycle().settle(&session).await?;
        if !session.is_live() || ended.is_some() {
            return Err(ProtocolError::new(ErrorCode::SessionInactive, format!("session {id} has ended")));
        }
        Ok(session)
    }

    async fn rate_limit(&self, key: RateLimitKey, rule: RateRule) -> Result<(), ProtocolError> {
        match self.function.store.hit_rate_limit(&key, rule).await? {
            RateDecision::Allowed { .. } => Ok(()),
            RateDecision::Limited { retry_after } => Err(ProtocolError::rate_limited(retry_after)),
        }
    }

    async fn create_session(&self, source_language: LanguageCode, quality_tier: QualityTier) -> Replies {
        let user = match (self.connection.role, &self.connection.user_id) {
            (Role::Speaker, Some(user)) => user,
            _ => return Err(ProtocolError::new(ErrorCode::Forbidden, "only a signed-in speaker can create a session")),
        };
        if let Some(existing) = &self.connection.session_id {
            return Err(ProtocolError::new(
                ErrorCode::Forbidden,
                format!("this connection already speaks in session {existing}; open a new connection for another"),
            ));
        }
        let limits = &self.function.limits;
        let rule = RateRule::new(limits.sessions_per_hour_per_user, 3600);
        self.rate_limit(RateLimitKey::new("createSession", "user", user), rule).await?;
        let store = &self.function.store;
        let session = store
            .create_session(NewSession {
                speaker_user_id: user.clone(),
                source_language,
                quality_tier,
                lifetime_seconds: limits.session_lifetime_seconds,
            })
            .await?;
        let connection = Connection {
            session_id: Some(session.session_id.clone()),
            session_expires_at: Some(session.expires_at),
            ..self.connection.clone()
        };
        store.put_connection(&connection).await?;
        store.set_speaker_connection(&session.session_id, &connection.connection_id).await?;
        Ok(vec![ServerMessage::SessionCreated {
            session_id: session.session_id,
            source_language,
            quality_tier,
            connection_id: connection.connection_id,
            expires_at: session.expires_at * 1000,
        }])
    }

    async fn join(&self, session_id: &SessionId, target_language: LanguageCode) -> Replies {
        if self.connection.role != Role::Listener {
            return Err(ProtocolError::new(ErrorCode::Forbidden, "speakers do not join sessions; they create them"));
        }
        if self.connection.session_id.as_ref() != Some(session_id) {
            return Err(ProtocolError::invalid(
                "sessionId",
                "must be the session this connection opened with; open a new connection to join another",
            ));
        }
        // Per connection, not per address: a venue's whole audience shares one address, and
        // its handshakes were already counted per address on `$connect`.
        let rule = RateRule::new(self.function.limits.joins_per_minute_per_connection, 60);
        self.rate_limit(RateLimitKey::new("join", "connection", &self.connection.connection_id), rule).await?;
        let session = self.live_session().await?;
        if self.connection.target_language != Some(target_language) {
            self.change_target_language(target_language).await?;
        }
        Ok(vec![ServerMessage::SessionJoined {
            session_id: session.session_id,
            target_language,
            source_language: session.source_language,
            connection_id: self.connection.connection_id.clone(),
            listener_count: session.listener_count,
            quality_tier: session.quality_tier,
        }])
    }

    async fn heartbeat(&self) -> Replies {
        if let Some(id) = &self.connection.session_id {
            // Also where a session whose speaker left for good is ended: a copy read a moment
            // ago answers, unless it says the session is due to end by now.
            let now = self.now_millis();
            let recent = self.function.recent.get(id, now);
            let due = |session: &Session| {
                !session.is_live()
                    || session.ending_unfinished()
                    || session.grace_expired(now / 1000, self.function.limits.speaker_grace_seconds)
            };
            if recent.as_ref().is_none_or(due) {
                let session = self.live_session().await?;
                self.function.recent.put(&session, now);
                // Every few minutes, a heartbeat is also when the count is checked.
                if let Err(error) = self.lifecycle().recount_if_due(&session).await {
                    tracing::warn!(%error, "could not recount the session's listeners");
                }
            }
        }
        let mut replies = vec![ServerMessage::HeartbeatAck];
        let age_minutes = (self.now_millis() - self.connection.connected_at).max(0) / 60_000;
        if let (Some(session_id), true) = (&self.connection.session_id, age_minutes >= REFRESH_AFTER_MINUTES) {
            replies.push(ServerMessage::ConnectionRefreshRequired {
                session_id: session_id.clone(),
                role: self.connection.role,
                target_language: self.connection.target_language,
                connection_id: self.connection.connection_id.clone(),
            });
        }
        if age_minutes >= WARN_AFTER_MINUTES {
            let remaining = (MAX_CONNECTION_MINUTES - age_minutes).max(0);
            replies.push(ServerMessage::ConnectionWarning { remaining_minutes: remaining as u32 });
        }
        Ok(replies)
    }

    async fn refresh(&self, session_id: &SessionId, role: Role) -> Replies {
        if self.connection.session_id.as_ref() != Some(session_id) {
            return Err(ProtocolError::invalid("sessionId", "must be the session this new connection opened with"));
        }
        if self.connection.role != role {
            return Err(ProtocolError::invalid(
                "role",
                format!("must be this connection's role, {}", self.connection.role.as_str()),
            ));
        }
        if role == Role::Speaker {
            let session = self.own_session().await?;
            let store = &self.function.store;
            store.set_speaker_connection(session_id, &self.connection.connection_id).await?;
            // The old connection closes; its $disconnect no longer matches the session's
            // speaker connection, so it ends nothing.
            let old: Vec<String> = store
                .speaker_connections(&session.session_id)
                .await?
                .into_iter()
                .map(|connection| connection.connection_id)
                .filter(|id| *id != self.connection.connection_id)
                .collect();
            let old: Vec<&str> = old.iter().map(String::as_str).collect();
            self.connections.close_all(&old).await;
        } else {
            self.live_session().await?;
        }
        Ok(vec![ServerMessage::ConnectionRefreshComplete])
    }

    async fn status(&self) -> Replies {
        let session = self.own_session().await?;
        // From the session item just read (its per-language counts), not from the listener rows.
        let distribution = self.function.store.language_distribution(&session).await?;
        let now = self.function.store.clock().now_seconds();
        Ok(vec![ServerMessage::SessionStatus {
            session_id: session.session_id,
            status: session.status,
            listener_count: session.listener_count,
            language_distribution: distribution,
            session_duration: (now - session.created_at).max(0) as u64,
            broadcast_state: session.broadcast_state,
            created_at: session.created_at * 1000,
            expires_at: session.expires_at * 1000,
        }])
    }

    async fn pause(&self, paused: bool) -> Replies {
        let session = self.own_session().await?;
        self.lifecycle().set_paused(&session.session_id, paused).await?;
        Ok(vec![])
    }

    async fn control(&self, patch: BroadcastPatch, fan_out: ServerMessage) -> Replies {
        let session = self.own_session().await?;
        self.function.store.update_broadcast_state(&session.session_id, patch).await?;
        self.lifecycle().tell_listeners(&session.session_id, fan_out).await?;
        Ok(vec![])
    }

    async fn set_volume(&self, volume_level: Volume) -> Replies {
        let patch = BroadcastPatch { volume: Some(volume_level), ..Default::default() };
        self.control(patch, ServerMessage::VolumeChanged { volume_level }).await
    }

    async fn speaker_state(&self, state: BroadcastState) -> Replies {
        let session = self.own_session().await?;
        let store = &self.function.store;
        if state.is_paused != session.broadcast_state.is_paused {
            // Status and `isPaused` change together, in one write.
            let status = if state.is_paused { SessionStatus::Paused } else { SessionStatus::Active };
            store.set_session_status(&session.session_id, status).await?;
        }
        let patch = BroadcastPatch { is_muted: Some(state.is_muted), volume: Some(state.volume) };
        let state = store.update_broadcast_state(&session.session_id, patch).await?;
        self.lifecycle().tell_listeners(&session.session_id, ServerMessage::SpeakerStateChanged { state }).await?;
        Ok(vec![])
    }

    async fn change_language(&self, target_language: LanguageCode) -> Replies {
        if self.connection.role != Role::Listener {
            return Err(ProtocolError::new(ErrorCode::Forbidden, "only listeners choose a target language"));
        }
        self.live_session().await?;
        self.change_target_language(target_language).await?;
        Ok(vec![ServerMessage::LanguageChanged { target_language }])
    }

    async fn end(&self, reason: Option<String>) -> Replies {
        let session = self.own_session().await?;
        let reason = reason.unwrap_or_else(|| reasons::ENDED_BY_SPEAKER.to_owned());
        // Everyone, the speaker included, is told `sessionEnded` and closed.
        self.lifecycle().end(&session.session_id, &reason).await?;
        Ok(vec![])
    }

    async fn send_audio(&self, audio_data: &[u8], chunk_id: &ChunkId, timestamp: u64) -> Replies {
        let session = self.own_session().await?;
        if session.status != SessionStatus::Active {
            return Err(ProtocolError::new(
                ErrorCode::SessionInactive,
                "the broadcast is paused; resume it to send audio",
            ));
        }
        let record = AudioRecord {
            session_id: &session.session_id,
            chunk_id,
            timestamp,
            source_language: session.source_language,
            quality_tier: session.quality_tier,
            audio_data: encode(audio_data),
        };
        self.function.audio.append(&record).await?;
        Ok(vec![])
    }

    /// Moves the caller (a listener) to `target_language` and, if that changed its session's
    /// per-language counts, tells the speaker the new distribution.
    async fn change_target_language(&self, target_language: LanguageCode) -> Result<(), ProtocolError> {
        let change = self.function.store.change_language(&self.connection.connection_id, target_language).await?;
        if let Some(session) = change.session
            && let Err(error) = self.lifecycle().tell_speaker_audience(&session).await
        {
            tracing::warn!(%error, "could not tell the speaker about its audience");
        }
        Ok(())
    }
}

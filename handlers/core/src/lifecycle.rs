//! Session operations shared by the WebSocket functions and the HTTP API: pausing and
//! resuming (status and broadcast state move together), ending (everyone told, every
//! connection closed), telling the speaker its audience, and ending a session whose speaker
//! left and did not come back within the grace period.

use crate::fanout::{BroadcastReport, Connections};
use crate::ids::SessionId;
use crate::model::{Connection, Session, SessionStatus};
use crate::protocol::ServerMessage;
use crate::store::{BroadcastPatch, Store, StoreError};

/// Why a session ended, as told to its clients in `sessionEnded.reason`.
pub mod reasons {
    pub const ENDED_BY_SPEAKER: &str = "endedBySpeaker";
    pub const SPEAKER_DISCONNECTED: &str = "speakerDisconnected";
}

/// Session operations over one store and one `@connections` API.
#[derive(Debug, Clone, Copy)]
pub struct Lifecycle<'a> {
    pub store: &'a Store,
    pub connections: &'a Connections,
}

impl Lifecycle<'_> {
    /// Sends `message` to every live listener of the session.
    pub async fn tell_listeners(
        &self,
        session: &SessionId,
        message: ServerMessage,
    ) -> Result<BroadcastReport, StoreError> {
        let listeners = self.store.listeners(session, None).await?;
        let frame = message.at(self.store.clock().now_millis());
        Ok(self.connections.broadcast(self.store, &listeners, &frame).await)
    }

    /// Pauses or resumes the broadcast: `status` becomes `paused` or `active`,
    /// `broadcastState.isPaused` follows, and listeners are told.
    pub async fn set_paused(&self, session: &SessionId, paused: bool) -> Result<Session, StoreError> {
        let status = if paused { SessionStatus::Paused } else { SessionStatus::Active };
        let mut updated = self.store.set_session_status(session, status).await?;
        updated.broadcast_state = self
            .store
            .update_broadcast_state(session, BroadcastPatch { is_paused: Some(paused), ..BroadcastPatch::default() })
            .await?;
        let message = if paused { ServerMessage::BroadcastPaused } else { ServerMessage::BroadcastResumed };
        self.tell_listeners(session, message).await?;
        Ok(updated)
    }

    /// Ends the session: status `ended`, `sessionEnded` to every connection (listeners and
    /// speaker), then every connection closed. The status changes only from `active` or
    /// `paused` (a condition of the write), so of two concurrent or repeated ends exactly one
    /// tells and closes the connections; ending an ended session returns it as it is and
    /// makes no `@connections` request.
    pub async fn end(&self, session: &SessionId, reason: &str) -> Result<Session, StoreError> {
        let ended = match self.store.set_session_status(session, SessionStatus::Ended).await {
            Ok(ended) => ended,
            Err(StoreError::InvalidTransition { from: SessionStatus::Ended, .. }) => {
                return self
                    .store
                    .get_session(session)
                    .await?
                    .ok_or_else(|| StoreError::SessionNotFound(session.clone()));
            }
            Err(error) => return Err(error),
        };
        let mut everyone: Vec<Connection> = self.store.listeners(session, None).await?;
        everyone.extend(self.store.speaker_connections(session).await?);
        let frame = ServerMessage::SessionEnded { session_id: session.clone(), reason: reason.to_owned() }
            .at(self.store.clock().now_millis());
        self.connections.broadcast(self.store, &everyone, &frame).await;
        let ids: Vec<&str> = everyone.iter().map(|connection| connection.connection_id.as_str()).collect();
        self.connections.close_all(&ids).await;
        Ok(ended)
    }

    /// Tells the speaker (if connected) how many listeners there are, per language.
    ///
    /// `session` is the session as the write that changed its counts left it (the store's
    /// count updates return it), so the counts cost no further read: one query finds the
    /// speaker's connection, whatever the size of the audience.
    pub async fn tell_speaker_audience(&self, session: &Session) -> Result<(), StoreError> {
        let Some(speaker) = self.store.speaker_connection(&session.session_id).await? else {
            return Ok(());
        };
        let language_distribution = self.store.language_distribution(session).await?;
        let frame =
            ServerMessage::ListenerCountChanged { listener_count: session.listener_count, language_distribution }
                .at(self.store.clock().now_millis());
        self.connections.broadcast(self.store, std::slice::from_ref(&speaker), &frame).await;
        Ok(())
    }

    /// Ends the session if its speaker left more than `grace_seconds` ago and did not come
    /// back. `$disconnect` cannot wait, so this runs whenever the session is next used
    /// (listeners' heartbeats every 30 s, joins, status reads); it returns the ended session.
    pub async fn end_if_speaker_gone(
        &self,
        session: &Session,
        grace_seconds: i64,
    ) -> Result<Option<Session>, StoreError> {
        if !session.grace_expired(self.store.clock().now_seconds(), grace_seconds) {
            return Ok(None);
        }
        self.end(&session.session_id, reasons::SPEAKER_DISCONNECTED).await.map(Some)
    }
}

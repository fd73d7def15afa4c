//! Session operations shared by the WebSocket functions and the HTTP API: pausing and
//! resuming, ending (everyone told, every connection closed), telling the speaker its audience,
//! what a closed connection means for its session, and ending a session whose speaker left and
//! did not come back within the grace period.
//!
//! # Connections that are gone
//!
//! A connection closes either with a `$disconnect` ([`Lifecycle::disconnected`]) or, when that
//! event is late or never comes (AWS_FACTS 10), with a 410 to a post of a fan-out. Both mean
//! the same: the row goes, a listener's place in the count goes, and a speaker's leaving hands
//! the session to the speaker's other open connection or starts the grace period.
//!
//! Except in the handshake: API Gateway answers 410 to a connection whose `$connect` has not
//! finished (AWS_FACTS 9), and `$connect` writes the row before it returns. So a 410 for a
//! row younger than [`HANDSHAKE_WINDOW_MS`] is not taken as a close: the row stays, and the
//! connection's `$disconnect`, or a later fan-out, settles it. The window is 30 s, the longest a
//! `$connect` integration can run (API Gateway's integration timeout is 29 s, AWS_FACTS 11),
//! whatever the function's own timeout.
//!
//! # Ending
//!
//! Ending is three steps: the status becomes `ended` (with its reason), everyone is told and
//! closed, and then the session records that it was (`endNotifiedAt`). A failure in between
//! (DynamoDB unavailable for the Query, `@connections` refusing posts after their retries) leaves
//! an end that is not finished, and the next use of the session finishes it
//! ([`Lifecycle::settle`]): a retried `endSession` or `DELETE`, a listener's heartbeat, a
//! handshake. A session therefore always ends for everyone, at the price of a `sessionEnded`
//! told twice to some when two ends race.

use crate::config::Limits;
use crate::fanout::{BroadcastReport, Connections};
use crate::ids::SessionId;
use crate::model::{Connection, Role, Session, SessionStatus};
use crate::protocol::{ServerFrame, ServerMessage};
use crate::store::sessions::RECOUNT_PERIOD_SECONDS;
use crate::store::{EndStart, Store, StoreError};
use futures::stream::{self, StreamExt};
use std::time::Instant;

/// Why a session ended, as told to its clients in `sessionEnded.reason`.
pub mod reasons {
    pub const ENDED_BY_SPEAKER: &str = "endedBySpeaker";
    pub const SPEAKER_DISCONNECTED: &str = "speakerDisconnected";
}

pub use crate::model::HANDSHAKE_WINDOW_MS;

/// How many gone connections one fan-out forgets at once (each is two DynamoDB writes).
const FORGET_CONCURRENCY: usize = 16;

/// How many times a speaker's leaving hands the session over to another connection that turns
/// out to have closed as well, before it leaves the session as it is.
const HAND_OVER_ATTEMPTS: usize = 3;

/// Session operations over one store and one `@connections` API.
#[derive(Debug, Clone, Copy)]
pub struct Lifecycle<'a> {
    pub store: &'a Store,
    pub connections: &'a Connections,
    /// How long a session waits for a speaker who left without refreshing.
    pub speaker_grace_seconds: i64,
}

impl<'a> Lifecycle<'a> {
    /// Session operations with a function's limits (its grace period).
    pub fn new(store: &'a Store, connections: &'a Connections, limits: &Limits) -> Lifecycle<'a> {
        Lifecycle { store, connections, speaker_grace_seconds: limits.speaker_grace_seconds }
    }
}

impl Lifecycle<'_> {
    /// Posts `frame` to `recipients`; those that are gone are forgotten (their rows, their
    /// places, a speaker's session handed over or its grace period started).
    pub async fn deliver(&self, recipients: &[Connection], frame: &ServerFrame) -> BroadcastReport {
        let report = self.connections.broadcast(recipients, frame).await;
        stream::iter(&report.gone)
            .for_each_concurrent(FORGET_CONCURRENCY, |connection| async move {
                if self.in_handshake(connection) {
                    tracing::info!(connection = %connection.connection_id, "410 during the handshake; the row stays");
                } else if let Err(error) = self.forget(connection).await {
                    tracing::warn!(%error, connection = %connection.connection_id, "could not forget a gone connection");
                }
            })
            .await;
        report
    }

    /// Sends `message` to every live listener of the session.
    pub async fn tell_listeners(
        &self,
        session: &SessionId,
        message: ServerMessage,
    ) -> Result<BroadcastReport, StoreError> {
        let started = Instant::now();
        let listeners = self.store.listeners(session, None).await?;
        let query = started.elapsed();
        let frame = message.at(self.store.clock().now_millis());
        let report = self.deliver(&listeners, &frame).await;
        report.log(&frame.kind(), query);
        Ok(report)
    }

    /// Pauses or resumes the broadcast: `status` becomes `paused` or `active` and
    /// `broadcastState.isPaused` follows, in one conditional write; listeners are told.
    pub async fn set_paused(&self, session: &SessionId, paused: bool) -> Result<Session, StoreError> {
        let status = if paused { SessionStatus::Paused } else { SessionStatus::Active };
        let updated = self.store.set_session_status(session, status).await?;
        let message = if paused { ServerMessage::BroadcastPaused } else { ServerMessage::BroadcastResumed };
        self.tell_listeners(session, message).await?;
        Ok(updated)
    }

    /// Ends the session: status `ended`, `sessionEnded` to every connection (listeners and
    /// speaker), every connection closed, and the end recorded as finished. Ending a session
    /// whose end finished tells and closes nobody and returns it as it is; ending one whose end
    /// was interrupted finishes it, with the first end's reason.
    pub async fn end(&self, session: &SessionId, reason: &str) -> Result<Session, StoreError> {
        match self.store.begin_end(session, reason, None).await? {
            EndStart::Ending(ending) => self.finish_ending(ending).await,
            EndStart::Ended(session) | EndStart::NotDue(session) => Ok(session),
        }
    }

    /// Ends the session if it is due: its end was interrupted, or its speaker left more than
    /// the grace period ago and did not come back (and is still gone since then: the end is
    /// conditional on it). `$disconnect` cannot wait, so this runs whenever the session is next
    /// used (listeners' heartbeats every 30 s, joins, status reads, handshakes). Returns the
    /// ended session, if it ended.
    pub async fn settle(&self, session: &Session) -> Result<Option<Session>, StoreError> {
        if session.ending_unfinished() {
            return self.end(&session.session_id, reasons::SPEAKER_DISCONNECTED).await.map(Some);
        }
        if !session.grace_expired(self.store.clock().now_seconds(), self.speaker_grace_seconds) {
            return Ok(None);
        }
        let start = self.store.begin_end(&session.session_id, reasons::SPEAKER_DISCONNECTED, session.speaker_gone_at);
        match start.await? {
            EndStart::Ending(ending) => self.finish_ending(ending).await.map(Some),
            EndStart::Ended(ended) => Ok(Some(ended)),
            EndStart::NotDue(_) => Ok(None),
        }
    }

    /// Tells everyone of an ended session and closes them; records the end as finished once
    /// every post was delivered or found gone.
    async fn finish_ending(&self, ending: Session) -> Result<Session, StoreError> {
        let id = &ending.session_id;
        let started = Instant::now();
        let mut everyone: Vec<Connection> = self.store.listeners(id, None).await?;
        everyone.extend(self.store.speaker_connections(id).await?);
        let query = started.elapsed();
        let reason = ending.end_reason.clone().unwrap_or_else(|| reasons::ENDED_BY_SPEAKER.to_owned());
        let frame = ServerMessage::SessionEnded { session_id: id.clone(), reason }.at(self.store.clock().now_millis());
        // Gone connections' rows go with the session; no count or hand-over matters any more.
        let report = self.connections.broadcast(&everyone, &frame).await;
        report.log(&frame.kind(), query);
        for gone in report.gone.iter().filter(|gone| !self.in_handshake(gone)) {
            if let Err(error) = self.store.delete_connection(&gone.connection_id).await {
                tracing::warn!(%error, connection = %gone.connection_id, "could not delete a gone connection");
            }
        }
        let ids: Vec<&str> = everyone.iter().map(|connection| connection.connection_id.as_str()).collect();
        self.connections.close_all(&ids).await;
        if report.failed.is_empty() {
            self.store.finish_end(id).await?;
        } else {
            tracing::warn!(session = %id, failed = report.failed.len(), "not everyone was told; the next use of the session tells them");
        }
        Ok(ending)
    }

    /// Tells the speaker (if connected) how many listeners there are, per language.
    ///
    /// `session` is the session as the write that changed its counts left it (the store's
    /// count updates return it), so the counts cost no further read, and it names the
    /// speaker's current connection: one `GetItem` of that row finds it, whatever the size of
    /// the audience (not a query of the fan-out index, which lags its table and costs more).
    pub async fn tell_speaker_audience(&self, session: &Session) -> Result<(), StoreError> {
        let Some(speaker_id) = &session.speaker_connection_id else {
            return Ok(());
        };
        let Some(speaker) = self.store.get_connection(speaker_id).await? else {
            return Ok(());
        };
        let language_distribution = self.store.language_distribution(session).await?;
        let frame =
            ServerMessage::ListenerCountChanged { listener_count: session.listener_count, language_distribution }
                .at(self.store.clock().now_millis());
        self.deliver(std::slice::from_ref(&speaker), &frame).await;
        Ok(())
    }

    /// A connection closed (`$disconnect`): its row goes; a listener's place goes and the
    /// speaker is told; a speaker's leaving hands the session over or starts the grace period.
    pub async fn disconnected(&self, connection_id: &str) -> Result<(), StoreError> {
        let Some(connection) = self.store.delete_connection(connection_id).await? else {
            return Ok(());
        };
        let Some(session) = &connection.session_id else {
            return Ok(());
        };
        match connection.role {
            Role::Listener => match self.store.give_back_place(&connection).await? {
                Some(counted) => self.tell_speaker_audience(&counted).await,
                None => Ok(()),
            },
            Role::Speaker => self.speaker_left(session, connection_id).await,
        }
    }

    /// A connection found gone by a post: as [`Lifecycle::disconnected`], but the speaker is
    /// not told about a listener leaving (the fan-out that found it may be telling the
    /// speaker already; the next join or leave tells the count).
    async fn forget(&self, gone: &Connection) -> Result<(), StoreError> {
        let Some(connection) = self.store.delete_connection(&gone.connection_id).await? else {
            return Ok(());
        };
        let Some(session) = &connection.session_id else {
            return Ok(());
        };
        match connection.role {
            Role::Listener => self.store.give_back_place(&connection).await.map(drop),
            Role::Speaker => self.speaker_left(session, &connection.connection_id).await,
        }
    }

    /// Which of `candidates` `@connections` says are closed (a recount's question). One that
    /// cannot be asked counts as open.
    pub async fn closed_among(&self, candidates: Vec<Connection>) -> Vec<String> {
        let answers = self.connections.open_among(&candidates).await;
        answers.into_iter().filter(|(_, open)| !open).map(|(row, _)| row.connection_id.clone()).collect()
    }

    /// Checks the session's listener count against its rows if no recount ran in the last
    /// [`RECOUNT_PERIOD_SECONDS`] (listeners' heartbeats call this): a count that drifted —
    /// a `$disconnect` lost or failed half-way, a count written twice by a retry after a
    /// timeout — converges within that period, whether or not the session is full.
    pub async fn recount_if_due(&self, session: &Session) -> Result<(), StoreError> {
        let last = session.recounted_at.unwrap_or(session.created_at);
        if self.store.clock().now_seconds() - last < RECOUNT_PERIOD_SECONDS {
            return Ok(());
        }
        let closed = |candidates| self.closed_among(candidates);
        self.store.recount_listeners(&session.session_id, None, RECOUNT_PERIOD_SECONDS, closed).await.map(drop)
    }

    fn in_handshake(&self, connection: &Connection) -> bool {
        self.store.clock().now_millis() - connection.connected_at < HANDSHAKE_WINDOW_MS
    }

    /// The speaker's connection `leaving` closed (its row is deleted). A speaker may have two
    /// open connections (a refresh, before its `refreshConnection`; a second tab): if another
    /// is open, the session's speaker connection is handed to the newest, and the speaker is
    /// not gone. Otherwise, if `leaving` was the session's speaker connection, the grace
    /// period starts (or, without one, the session ends).
    async fn speaker_left(&self, session: &SessionId, leaving: &str) -> Result<(), StoreError> {
        let mut leaving = leaving.to_owned();
        for _ in 0..HAND_OVER_ATTEMPTS {
            let Some(next) = self.open_speaker_connection(session).await? else {
                let left = self.store.clear_speaker_connection(session, &leaving).await?;
                if left && self.speaker_grace_seconds <= 0 {
                    self.end(session, reasons::SPEAKER_DISCONNECTED).await?;
                }
                return Ok(());
            };
            if !self.store.hand_over_speaker_connection(session, &leaving, &next).await? {
                // `leaving` was not (or no longer) the session's speaker connection.
                return Ok(());
            }
            tracing::info!(session = %session, from = %leaving, to = %next, "speaker connection handed over");
            // If `next` closed meanwhile, its $disconnect found the session's speaker connection
            // still `leaving` and cleared nothing: what it would have done is ours to do.
            if self.store.get_connection(&next).await?.is_some() {
                return Ok(());
            }
            leaving = next;
        }
        tracing::warn!(session = %session, "speaker connections kept closing during the hand-over; leaving it");
        Ok(())
    }

    /// The session's newest speaker connection that is still open. Rows of connections that
    /// closed without a `$disconnect` are deleted on the way.
    async fn open_speaker_connection(&self, session: &SessionId) -> Result<Option<String>, StoreError> {
        for candidate in self.store.speaker_connections(session).await? {
            match self.connections.is_open(&candidate.connection_id).await {
                Ok(true) => return Ok(Some(candidate.connection_id)),
                Ok(false) if self.in_handshake(&candidate) => return Ok(Some(candidate.connection_id)),
                Ok(false) => {
                    self.store.delete_connection(&candidate.connection_id).await?;
                }
                Err(error) => {
                    // Cannot tell: the live row is the best evidence there is.
                    tracing::warn!(%error, "could not check a speaker connection; taking its row's word");
                    return Ok(Some(candidate.connection_id));
                }
            }
        }
        Ok(None)
    }
}

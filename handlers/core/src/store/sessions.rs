//! Sessions: creation, reads, status transitions, listener counts and broadcast state.
//!
//! # Listener counts
//!
//! The session item holds `listenerCount` and, next to it, `languageCounts`: a map from target
//! language to how many listeners listen in it. Sessions are created with an empty map, and
//! every write that changes the count changes the map in the same `UpdateItem`: a listener
//! admitted (+1 in its language), leaving (−1 in the language its deleted row had), the
//! recount of a count that says full (both reset to the live rows). A listener changing
//! language, or a refresh taking a place with another language, moves one between languages
//! (`move_listener`; the total does not change). Each of these writes returns the item as it
//! left it, so the speaker's `listenerCountChanged` (and `sessionStatus`, from the item it
//! reads anyway) cost no read of the listener rows, whatever the size of the audience: only
//! the fan-out and the recount read those.
//!
//! No count goes below zero (the writes' conditions). A language whose count is back to zero
//! keeps its entry, at 0, and is left out when read ([`Session::language_counts`]).
//!
//! The rows and the counts are two items, written one after the other (the row first), so a
//! recount between the two writes of a leave or a language change can be off by one for that
//! listener (its language's count then stays one too high or low until the next recount); the
//! zero floor keeps it from going negative, and the total is exact as before.
//!
//! A session stored before `languageCounts` existed has no map. Its listeners are counted in
//! the total alone (each write's condition tells the two kinds apart; the first attempt of a
//! join or a leave on such a session is refused and costs one more call), and its distribution is
//! read from its live listener rows as before ([`Store::language_distribution`]), until a
//! recount gives it the map or it expires. Guessing the map of such a session from its rows
//! while joins are in flight could count a listener twice for good; reading the rows costs as
//! much as it always did, for a kind of session that stops existing one session lifetime after
//! the release.

use super::item::{Item, Reader, key_of, n, s};
use super::{Store, StoreError, is_condition_failed, item_failing_update, write_if};
use crate::aws_errors::{is_throttling, was_not_sent};
use crate::ids::SessionId;
use crate::model::{BroadcastState, Connection, EpochSeconds, HANDSHAKE_WINDOW_MS, Role, Session, SessionStatus};
use crate::protocol::server::LanguageDistribution;
use crate::setup;
use crate::validation::{LanguageCode, QualityTier, Volume};
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use contract::tables::sessions::{EXPIRES_AT, SESSION_ID};
use std::collections::{HashMap, HashSet};

const SPEAKER_USER_ID: &str = "speakerUserId";
const SPEAKER_CONNECTION_ID: &str = "speakerConnectionId";
const SOURCE_LANGUAGE: &str = "sourceLanguage";
const QUALITY_TIER: &str = "qualityTier";
const STATUS: &str = "status";
const LISTENER_COUNT: &str = "listenerCount";
const LANGUAGE_COUNTS: &str = "languageCounts";
const BROADCAST_STATE: &str = "broadcastState";
const CREATED_AT: &str = "createdAt";
const IS_PAUSED: &str = "isPaused";
const IS_MUTED: &str = "isMuted";
const VOLUME: &str = "volume";
const SPEAKER_GONE_AT: &str = "speakerGoneAt";
const END_REASON: &str = "endReason";
const END_NOTIFIED_AT: &str = "endNotifiedAt";
const LAST_JOIN_AT: &str = "lastJoinAt";
const RECOUNTED_AT: &str = "recountedAt";

/// A full session's listener count is checked against its rows at most this often (a
/// handshake refused because the session is full costs one write until then, however many
/// arrive).
pub const RECOUNT_INTERVAL_SECONDS: i64 = 30;
/// Any session's listener count is checked against its rows this often, by its listeners'
/// heartbeats (`lifecycle`): a count that drifted converges within this, full or not.
pub const RECOUNT_PERIOD_SECONDS: i64 = 300;
/// How long the count must have seen no join before a recount may lower it to the rows the
/// fan-out index shows: DynamoDB propagates a write to a global secondary index within a
/// second or so (AWS_FACTS 13 is about which items are in it, not when), and the index may not
/// yet show a listener counted just before. 10 s leaves a wide margin.
pub const INDEX_LAG_SECONDS: i64 = 10;

/// How many fresh ids [`Store::create_session`] tries before giving up.
pub const CREATE_ATTEMPTS: u32 = 5;

/// What a speaker asks for when creating a session.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSession {
    pub speaker_user_id: String,
    pub source_language: LanguageCode,
    pub quality_tier: QualityTier,
    /// How long the session lives before its row expires.
    pub lifetime_seconds: i64,
}

/// A change to some fields of the broadcast state; `None` leaves a field as it is. Pausing is
/// not among them: `isPaused` changes only with the status ([`Store::set_session_status`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BroadcastPatch {
    pub is_muted: Option<bool>,
    pub volume: Option<Volume>,
}

/// What [`Store::begin_end`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum EndStart {
    /// The session is ended now (or was, and its end is unfinished): its connections are to
    /// be told and closed, then [`Store::finish_end`].
    Ending(Session),
    /// The session had ended, and everyone was told.
    Ended(Session),
    /// The session is live and its speaker is not gone since the given time: nothing ended.
    NotDue(Session),
}

impl Store {
    /// Creates a session under a fresh random id, retrying with another id on collision.
    pub async fn create_session(&self, new: NewSession) -> Result<Session, StoreError> {
        let mut rng = rand::rng();
        let ids = std::iter::repeat_with(|| self.ids.generate(&mut rng));
        self.create_session_with_ids(new, ids).await
    }

    /// Creates a session under the first id of `ids` that is free (or whose session expired),
    /// trying at most [`CREATE_ATTEMPTS`] ids. The write is conditional, so two speakers can
    /// never get the same live id.
    pub async fn create_session_with_ids(
        &self,
        new: NewSession,
        ids: impl IntoIterator<Item = SessionId>,
    ) -> Result<Session, StoreError> {
        let now = self.clock.now_seconds();
        for session_id in ids.into_iter().take(CREATE_ATTEMPTS as usize) {
            let session = Session {
                session_id,
                speaker_user_id: new.speaker_user_id.clone(),
                speaker_connection_id: None,
                source_language: new.source_language,
                quality_tier: new.quality_tier,
                status: SessionStatus::Active,
                listener_count: 0,
                language_counts: Some(LanguageDistribution::new()),
                broadcast_state: BroadcastState::default(),
                created_at: now,
                expires_at: now + new.lifetime_seconds,
                speaker_gone_at: None,
                end_reason: None,
                end_notified_at: None,
                recounted_at: None,
            };
            let result = self
                .client
                .put_item()
                .table_name(&self.tables.sessions)
                .set_item(Some(session_item(&session)))
                .condition_expression("attribute_not_exists(#id) OR #expires <= :now")
                .expression_attribute_names("#id", SESSION_ID)
                .expression_attribute_names("#expires", EXPIRES_AT)
                .expression_attribute_values(":now", n(now))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(session),
                Err(error) if is_condition_failed(&error) => {
                    tracing::info!(session_id = %session.session_id, "session id taken; trying another");
                }
                Err(error) => return Err(StoreError::aws("PutItem", &self.tables.sessions, error)),
            }
        }
        Err(StoreError::IdsExhausted { attempts: CREATE_ATTEMPTS })
    }

    /// The session, or `None` if it does not exist or has expired. Ended sessions are returned
    /// (with status `ended`) until they expire.
    pub async fn get_session(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.sessions)
            .key(SESSION_ID, s(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| StoreError::aws("GetItem", &self.tables.sessions, error))?;
        match output.item {
            Some(item) => self.live_session(&item),
            None => Ok(None),
        }
    }

    fn live_session(&self, item: &Item) -> Result<Option<Session>, StoreError> {
        let session = read_session(item, &self.tables.sessions)?;
        Ok((session.expires_at > self.clock.now_seconds()).then_some(session))
    }

    /// Moves a session to `status` if [`SessionStatus::can_become`] allows it. Pausing and
    /// resuming set `broadcastState.isPaused` in the same conditional write, so the two never
    /// disagree. (Ending a session that has connections is [`Store::begin_end`]'s.)
    pub async fn set_session_status(&self, id: &SessionId, status: SessionStatus) -> Result<Session, StoreError> {
        let allowed: Vec<SessionStatus> = [SessionStatus::Active, SessionStatus::Paused, SessionStatus::Ended]
            .into_iter()
            .filter(|from| from.can_become(status))
            .collect();
        let placeholders: Vec<String> = (0..allowed.len()).map(|index| format!(":from{index}")).collect();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.tables.sessions)
            .key(SESSION_ID, s(id.as_str()))
            .update_expression(match status {
                SessionStatus::Ended => "SET #status = :to",
                SessionStatus::Active | SessionStatus::Paused => "SET #status = :to, #state.#paused = :paused",
            })
            .condition_expression(format!(
                "attribute_exists(#id) AND #expires > :now AND #status IN ({})",
                placeholders.join(", ")
            ))
            .expression_attribute_names("#id", SESSION_ID)
            .expression_attribute_names("#expires", EXPIRES_AT)
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_values(":to", s(status.as_str()))
            .expression_attribute_values(":now", n(self.clock.now_seconds()))
            .return_values(ReturnValue::AllNew);
        for (placeholder, from) in placeholders.iter().zip(&allowed) {
            request = request.expression_attribute_values(placeholder, s(from.as_str()));
        }
        if status != SessionStatus::Ended {
            request = request
                .expression_attribute_names("#state", BROADCAST_STATE)
                .expression_attribute_names("#paused", IS_PAUSED)
                .expression_attribute_values(":paused", AttributeValue::Bool(status == SessionStatus::Paused));
        }
        match request.send().await {
            Ok(output) => read_session(&output.attributes.unwrap_or_default(), &self.tables.sessions),
            Err(error) if is_condition_failed(&error) => match self.get_session(id).await? {
                None => Err(StoreError::SessionNotFound(id.clone())),
                Some(current) => {
                    Err(StoreError::InvalidTransition { id: id.clone(), from: current.status, to: status })
                }
            },
            Err(error) => Err(StoreError::aws("UpdateItem", &self.tables.sessions, error)),
        }
    }

    /// Starts ending a session, or resumes an end that was interrupted: status `ended` and the
    /// reason (an interrupted end keeps its first reason), in one conditional write that
    /// succeeds when the session is active or paused, or ended without
    /// [`Store::finish_end`] having recorded that everyone was told. With `speaker_gone_at`,
    /// a live session is ended only if its speaker is still gone since exactly then (a speaker
    /// who came back, or left again later, keeps it).
    ///
    /// Two ends racing both get [`EndStart::Ending`] until one of them finishes: a client may
    /// then be told `sessionEnded` twice, which is harmless, where an end that stopped half-way
    /// must never leave clients untold.
    pub async fn begin_end(
        &self,
        id: &SessionId,
        reason: &str,
        speaker_gone_at: Option<EpochSeconds>,
    ) -> Result<EndStart, StoreError> {
        let live = match speaker_gone_at {
            Some(_) => "#status IN (:active, :paused) AND #gone = :gone",
            None => "#status IN (:active, :paused)",
        };
        let mut request = self
            .client
            .update_item()
            .table_name(&self.tables.sessions)
            .key(SESSION_ID, s(id.as_str()))
            .update_expression("SET #status = :ended, #reason = if_not_exists(#reason, :reason)")
            .condition_expression(format!(
                "attribute_exists(#id) AND #expires > :now AND (({live}) OR \
                 (#status = :ended AND attribute_not_exists(#notified)))"
            ))
            .expression_attribute_names("#id", SESSION_ID)
            .expression_attribute_names("#expires", EXPIRES_AT)
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_names("#reason", END_REASON)
            .expression_attribute_names("#notified", END_NOTIFIED_AT)
            .expression_attribute_values(":now", n(self.clock.now_seconds()))
            .expression_attribute_values(":active", s(SessionStatus::Active.as_str()))
            .expression_attribute_values(":paused", s(SessionStatus::Paused.as_str()))
            .expression_attribute_values(":ended", s(SessionStatus::Ended.as_str()))
            .expression_attribute_values(":reason", s(reason));
        if let Some(gone) = speaker_gone_at {
            request = request
                .expression_attribute_names("#gone", SPEAKER_GONE_AT)
                .expression_attribute_values(":gone", n(gone));
        }
        match self.update_session(request, id).await? {
            Ok(session) => Ok(EndStart::Ending(session)),
            Err(Some(current)) if current.expires_at > self.clock.now_seconds() => Ok(match current.status {
                SessionStatus::Ended => EndStart::Ended(current),
                SessionStatus::Active | SessionStatus::Paused => EndStart::NotDue(current),
            }),
            Err(_) => Err(StoreError::SessionNotFound(id.clone())),
        }
    }

    /// Records that every connection of an ended session was told and closed: from now on,
    /// ending it again does nothing.
    pub async fn finish_end(&self, id: &SessionId) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.tables.sessions)
            .key(SESSION_ID, s(id.as_str()))
            .update_expression("SET #notified = :now")
            .condition_expression("#status = :ended")
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_names("#notified", END_NOTIFIED_AT)
            .expression_attribute_values(":ended", s(SessionStatus::Ended.as_str()))
            .expression_attribute_values(":now", n(self.clock.now_seconds()))
            .send()
            .await
            .map(|_| ())
            .map_err(|error| StoreError::aws("UpdateItem", &self.tables.sessions, error))
    }

    /// Counts one more listener, in `language`, unless the session is missing, ended, or has
    /// `cap` listeners. Returns the session as the write left it. Atomic: concurrent joins
    /// never exceed the cap or lose a count.
    pub async fn add_listener(&self, id: &SessionId, language: LanguageCode, cap: u32) -> Result<Session, StoreError> {
        self.try_add_listener(id, language, cap).await?.map_err(|_| StoreError::SessionFull { id: id.clone(), cap })
    }

    /// Counts listener `joining`, whose row (in `language`) is already written, as
    /// [`Store::add_listener`] does; but a count that says the session is full is first
    /// checked against the rows, since it drifts upward when `$disconnect` events are lost
    /// (AWS delivers them on a best-effort basis) and a drifted count would refuse listeners
    /// until the session ends.
    ///
    /// The recount, at most once per [`RECOUNT_INTERVAL_SECONDS`] per session (a write claims
    /// it, so a flood of handshakes for a full session costs no more than that write each):
    ///
    /// 1. reads the session's listener rows from the fan-out index, expired ones included;
    /// 2. forgets the rows that are certainly closed: those past their TTL, and those older
    ///    than the handshake window that `closed` says are no longer open (the caller asks
    ///    `@connections`, so rows whose `$disconnect` was lost are found at once, not after
    ///    their 3-hour TTL). Each is deleted, and only the delete that removed it lowers the
    ///    count, in its language, exactly as a `$disconnect` would: the count never goes below
    ///    what the table holds;
    /// 3. if the count still says more than the remaining rows, lowers it to them, but only
    ///    if it has not changed since it was read and no listener was counted in the last
    ///    [`INDEX_LAG_SECONDS`] (the index is eventually consistent: a listener counted a
    ///    moment ago may not be in it yet). This catches rows that DynamoDB's TTL deleted
    ///    before anyone uncounted them;
    /// 4. counts this listener once more.
    ///
    /// Because every admitted listener's row is written before it is counted, a recount never
    /// finds fewer rows than counted listeners because of a join in flight, so concurrent
    /// joins still never exceed the cap. (A leave is the other way round, row deleted before
    /// the count: a reset in that instant lowers the count by that one leave early.)
    pub async fn admit_listener<F, Fut>(
        &self,
        id: &SessionId,
        joining: &str,
        language: LanguageCode,
        cap: u32,
        closed: F,
    ) -> Result<Session, StoreError>
    where
        F: FnOnce(Vec<Connection>) -> Fut,
        Fut: std::future::Future<Output = Vec<String>>,
    {
        let counted = match self.try_add_listener(id, language, cap).await? {
            Ok(session) => session,
            Err(_) => {
                let full = StoreError::SessionFull { id: id.clone(), cap };
                if !self.recount_listeners(id, Some(joining), RECOUNT_INTERVAL_SECONDS, closed).await? {
                    return Err(full);
                }
                self.try_add_listener(id, language, cap).await?.map_err(|_| full)?
            }
        };
        self.mark_place_taken(joining).await;
        Ok(counted)
    }

    /// Marks `connection_id`'s row as holding a place in its session's count, once the count
    /// is written. A mark that fails leaves a place counted that no removal gives back: the
    /// count is then one too high (never too low) until a recount.
    pub(super) async fn mark_place_taken(&self, connection_id: &str) {
        match self.mark_counted(connection_id).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(connection = connection_id, "a counted listener's row was gone"),
            Err(error) => tracing::warn!(%error, connection = connection_id, "could not mark a listener as counted"),
        }
    }

    /// Checks a session's listener count against its rows (steps 1 to 3 of
    /// [`Store::admit_listener`], leaving out `except`'s row), unless a recount ran in the last
    /// `every` seconds. Returns whether it ran. Besides a count that says full, listeners'
    /// heartbeats run it every few minutes (`lifecycle`), so a count that drifted (a
    /// `$disconnect` lost or failed half-way, a count written twice by a retry after a
    /// timeout) converges even while nobody is refused.
    pub async fn recount_listeners<F, Fut>(
        &self,
        id: &SessionId,
        except: Option<&str>,
        every: i64,
        closed: F,
    ) -> Result<bool, StoreError>
    where
        F: FnOnce(Vec<Connection>) -> Fut,
        Fut: std::future::Future<Output = Vec<String>>,
    {
        if !self.claim_recount(id, every).await? {
            return Ok(false);
        }
        let now = self.clock.now_millis();
        let now_seconds = self.clock.now_seconds();
        let rows = self.listener_rows(id, except.unwrap_or_default()).await?;
        let (live, expired): (Vec<Connection>, Vec<Connection>) =
            rows.into_iter().partition(|row| row.is_live(now_seconds));
        let settled: Vec<Connection> =
            live.iter().filter(|row| now - row.connected_at >= HANDSHAKE_WINDOW_MS).cloned().collect();
        let closed: HashSet<String> = closed(settled).await.into_iter().collect();
        for row in expired.iter().chain(live.iter().filter(|row| closed.contains(&row.connection_id))) {
            if let Some(forgotten) = self.delete_connection_any(&row.connection_id).await? {
                self.give_back_place(&forgotten).await?;
            }
        }
        let mut remaining = LanguageDistribution::new();
        for row in live.iter().filter(|row| !closed.contains(&row.connection_id)) {
            if let Some(language) = row.target_language {
                *remaining.entry(language).or_default() += 1;
            }
        }
        self.lower_listener_count(id, &remaining).await?;
        Ok(true)
    }

    /// Claims this session's recount if none ran in the last `every` seconds.
    async fn claim_recount(&self, id: &SessionId, every: i64) -> Result<bool, StoreError> {
        let now = self.clock.now_seconds();
        let request = self
            .client
            .update_item()
            .table_name(&self.tables.sessions)
            .key(SESSION_ID, s(id.as_str()))
            .update_expression("SET #recounted = :now")
            .condition_expression("attribute_exists(#id) AND (attribute_not_exists(#recounted) OR #recounted <= :due)")
            .expression_attribute_names("#id", SESSION_ID)
            .expression_attribute_names("#recounted", RECOUNTED_AT)
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":due", n(now - every));
        write_if(request, &self.tables.sessions).await
    }

    /// One conditional increment of the count and of `language`'s count: the session as the
    /// write left it, or `Err(count)` when the session is full with `count` listeners counted.
    /// Refused at once, in the same call, when the session is missing, expired or ended.
    ///
    /// A session without per-language counts (stored before they existed) gets the count
    /// alone; the write's condition tells the two kinds apart, so a session whose counts
    /// appear meanwhile (a recount writes them) is never counted without its language.
    async fn try_add_listener(
        &self,
        id: &SessionId,
        language: LanguageCode,
        cap: u32,
    ) -> Result<Result<Session, u32>, StoreError> {
        let mut with_languages = true;
        // The kind can change once (a recount gives a session its per-language counts, and
        // nothing takes them away), so the third attempt is never refused for the kind.
        for _ in 0..3 {
            let now = self.clock.now_seconds();
            let live = "attribute_exists(#id) AND #expires > :now AND #status <> :ended AND #count < :cap";
            let request = self
                .client
                .update_item()
                .table_name(&self.tables.sessions)
                .key(SESSION_ID, s(id.as_str()))
                .expression_attribute_names("#id", SESSION_ID)
                .expression_attribute_names("#expires", EXPIRES_AT)
                .expression_attribute_names("#status", STATUS)
                .expression_attribute_names("#count", LISTENER_COUNT)
                .expression_attribute_names("#languages", LANGUAGE_COUNTS)
                .expression_attribute_names("#last_join", LAST_JOIN_AT)
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":cap", n(cap))
                .expression_attribute_values(":ended", s(SessionStatus::Ended.as_str()))
                .expression_attribute_values(":now", n(now));
            let request = if with_languages {
                request
                    .update_expression(
                        "ADD #count :one SET #languages.#language = if_not_exists(#languages.#language, :zero) + :one, \
                         #last_join = :now",
                    )
                    .condition_expression(format!("{live} AND attribute_exists(#languages)"))
                    .expression_attribute_names("#language", language.as_str())
                    .expression_attribute_values(":zero", n(0))
            } else {
                request
                    .update_expression("ADD #count :one SET #last_join = :now")
                    .condition_expression(format!("{live} AND attribute_not_exists(#languages)"))
            };
            let session = match self.update_count(request, id).await? {
                Ok(session) => return Ok(Ok(session)),
                Err(current) => current,
            };
            let session = match session {
                Some(session) if session.expires_at > now => session,
                _ => return Err(StoreError::SessionNotFound(id.clone())),
            };
            if session.status == SessionStatus::Ended {
                return Err(StoreError::SessionEnded { id: id.clone() });
            }
            if session.listener_count >= cap {
                return Ok(Err(session.listener_count));
            }
            with_languages = session.language_counts.is_some();
        }
        Err(StoreError::Corrupt {
            table: self.tables.sessions.clone(),
            key: id.as_str().to_owned(),
            problem: format!("`{LANGUAGE_COUNTS}` keeps appearing and disappearing"),
        })
    }

    /// Lowers the listener count to the rows `rows` describes (a count per language), with the
    /// per-language counts, if there are fewer rows than the count, no listener was counted in
    /// the last [`INDEX_LAG_SECONDS`], and the count is still what it was when read. Returns
    /// whether it did (so a place may be free). A session stored before per-language counts
    /// existed gets them here.
    async fn lower_listener_count(&self, id: &SessionId, rows: &LanguageDistribution) -> Result<bool, StoreError> {
        let Some(current) = self.get_session(id).await? else {
            return Ok(false);
        };
        let live: u32 = rows.values().sum();
        if live >= current.listener_count {
            return Ok(false);
        }
        let now = self.clock.now_seconds();
        let request = self
            .client
            .update_item()
            .table_name(&self.tables.sessions)
            .key(SESSION_ID, s(id.as_str()))
            .update_expression("SET #count = :live, #languages = :languages")
            .condition_expression(
                "attribute_exists(#id) AND #count = :counted AND \
                 (attribute_not_exists(#last_join) OR #last_join <= :quiet)",
            )
            .expression_attribute_names("#id", SESSION_ID)
            .expression_attribute_names("#count", LISTENER_COUNT)
            .expression_attribute_names("#languages", LANGUAGE_COUNTS)
            .expression_attribute_names("#last_join", LAST_JOIN_AT)
            .expression_attribute_values(":live", n(live))
            .expression_attribute_values(":languages", language_counts_value(rows))
            .expression_attribute_values(":counted", n(current.listener_count))
            .expression_attribute_values(":quiet", n(now - INDEX_LAG_SECONDS));
        // Refused when someone joined or left since the count was read, or joined too recently
        // for the index to be trusted; the count stays theirs.
        let lowered = write_if(request, &self.tables.sessions).await?;
        if lowered {
            let counted = current.listener_count;
            tracing::warn!(session = %id, counted, live, "listener counts reset to the live listener rows");
        }
        Ok(lowered)
    }

    /// Gives back the place a deleted listener row held in its session's count: `Some` with
    /// the session as the write left it, or `None` if there was no place to give back (a
    /// speaker's row, a row never marked counted, a row of an earlier session under the same
    /// id, or a session that is gone). Only the caller whose delete removed the row may call
    /// this, so each place is given back at most once.
    pub async fn give_back_place(&self, deleted: &Connection) -> Result<Option<Session>, StoreError> {
        let now = self.clock.now_seconds();
        match &deleted.session_id {
            Some(session)
                if deleted.role == Role::Listener
                    && deleted.counted
                    && deleted.session_expires_at.is_none_or(|expires| expires > now) =>
            {
                self.remove_listener(session, deleted.target_language).await
            }
            _ => Ok(None),
        }
    }

    /// Counts one listener fewer, in `language` (the leaving row's), never going below zero.
    /// Returns the session as the write left it, or `None` if the session no longer exists
    /// (a late `$disconnect` is normal).
    ///
    /// When `language`'s count is already zero (a recount got there first) or the session has
    /// no per-language counts (stored before they existed), only the total goes down.
    pub async fn remove_listener(
        &self,
        id: &SessionId,
        language: Option<LanguageCode>,
    ) -> Result<Option<Session>, StoreError> {
        let mut language = language;
        loop {
            let request = self
                .client
                .update_item()
                .table_name(&self.tables.sessions)
                .key(SESSION_ID, s(id.as_str()))
                .expression_attribute_names("#id", SESSION_ID)
                .expression_attribute_names("#count", LISTENER_COUNT)
                .expression_attribute_values(":minus_one", n(-1))
                .expression_attribute_values(":zero", n(0));
            let request = match language {
                Some(language) => request
                    .update_expression("ADD #count :minus_one SET #languages.#language = #languages.#language - :one")
                    .condition_expression("attribute_exists(#id) AND #count > :zero AND #languages.#language > :zero")
                    .expression_attribute_names("#languages", LANGUAGE_COUNTS)
                    .expression_attribute_names("#language", language.as_str())
                    .expression_attribute_values(":one", n(1)),
                None => request
                    .update_expression("ADD #count :minus_one")
                    .condition_expression("attribute_exists(#id) AND #count > :zero"),
            };
            let session = match self.update_count(request, id).await? {
                Ok(session) => return Ok(self.if_live(session)),
                Err(None) => return Ok(None),
                Err(Some(current)) => current,
            };
            if session.listener_count == 0 || language.is_none() {
                return Ok(self.if_live(session));
            }
            language = None;
        }
    }

    /// Moves one listener's place from language `from` to language `to` (a language change,
    /// or a refresh that takes a place with another language). Returns the session as the
    /// write left it, or `None` if it no longer exists.
    ///
    /// When `from`'s count is already zero (a recount got there first), only `to`'s goes up;
    /// a session without per-language counts (stored before they existed) is left as it is.
    pub(super) async fn move_listener(
        &self,
        id: &SessionId,
        from: LanguageCode,
        to: LanguageCode,
    ) -> Result<Option<Session>, StoreError> {
        if from == to {
            return self.get_session(id).await;
        }
        let mut from = Some(from);
        loop {
            let request = self
                .client
                .update_item()
                .table_name(&self.tables.sessions)
                .key(SESSION_ID, s(id.as_str()))
                .expression_attribute_names("#id", SESSION_ID)
                .expression_attribute_names("#languages", LANGUAGE_COUNTS)
                .expression_attribute_names("#to", to.as_str())
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":zero", n(0));
            let request = match from {
                Some(from) => request
                    .update_expression(
                        "SET #languages.#to = if_not_exists(#languages.#to, :zero) + :one, \
                         #languages.#from = #languages.#from - :one",
                    )
                    .condition_expression("attribute_exists(#id) AND #languages.#from > :zero")
                    .expression_attribute_names("#from", from.as_str()),
                None => request
                    .update_expression("SET #languages.#to = if_not_exists(#languages.#to, :zero) + :one")
                    .condition_expression("attribute_exists(#id) AND attribute_exists(#languages)"),
            };
            let session = match self.update_count(request, id).await? {
                Ok(session) => return Ok(self.if_live(session)),
                Err(None) => return Ok(None),
                Err(Some(current)) => current,
            };
            if session.language_counts.is_none() || from.is_none() {
                return Ok(self.if_live(session));
            }
            from = None;
        }
    }

    /// How many listeners each target language has, as clients are told (languages with
    /// none left out): the session item's per-language counts, so no further read. A session
    /// stored before those counts existed has none, and its live listener rows are read
    /// instead (until a recount gives it counts, or it ends).
    pub async fn language_distribution(&self, session: &Session) -> Result<LanguageDistribution, StoreError> {
        match &session.language_counts {
            Some(counts) => Ok(counts.clone()),
            None => self.live_listener_languages(&session.session_id, None).await,
        }
    }

    /// Sends a conditional update of a session: `Ok` with the session as written, or `Err` with
    /// the session as it was (`None` when there was none) when the condition was false.
    async fn update_session(
        &self,
        request: UpdateItemFluentBuilder,
        id: &SessionId,
    ) -> Result<Result<Session, Option<Session>>, StoreError> {
        let request = with_sessions_back(request);
        let answer = request.send().await;
        self.session_updated(answer, id)
    }

    /// As [`Store::update_session`], for a write that changes a count, which must not be
    /// applied twice: it is sent again only when it certainly was not applied (DynamoDB
    /// throttled it, or the connection could not be made). The SDK's own retries are off for
    /// it, because an attempt that timed out or met a 5xx may have been applied, and its
    /// retry would count the listener again.
    ///
    /// So every count write is applied at most once, and the rows decide what is given back
    /// (a row is marked counted only after its count's write is known to be applied): a
    /// write whose outcome is unknown can only leave a count too high, never too low, and a
    /// count too high is what the recount lowers. Counts never let a session exceed its cap.
    async fn update_count(
        &self,
        request: UpdateItemFluentBuilder,
        id: &SessionId,
    ) -> Result<Result<Session, Option<Session>>, StoreError> {
        let request = with_sessions_back(request);
        let mut resent = 0;
        loop {
            let answer = request.clone().customize().config_override(setup::sent_once()).send().await;
            match answer {
                Err(error) if (is_throttling(&error) || was_not_sent(&error)) && resent + 1 < setup::MAX_ATTEMPTS => {
                    resent += 1;
                    tokio::time::sleep(crate::fanout::backoff(resent)).await;
                }
                answer => return self.session_updated(answer, id),
            }
        }
    }

    /// The outcome of a session update sent by [`Store::update_session`] or
    /// [`Store::update_count`].
    fn session_updated(
        &self,
        answer: Result<UpdateItemOutput, SdkError<UpdateItemError, HttpResponse>>,
        id: &SessionId,
    ) -> Result<Result<Session, Option<Session>>, StoreError> {
        let error = match answer {
            Ok(output) => return self.updated_session(output.attributes, id).map(Ok),
            Err(error) => error,
        };
        let Some(current) = item_failing_update(&error) else {
            return Err(StoreError::aws("UpdateItem", &self.tables.sessions, error));
        };
        Ok(Err(current.map(|item| read_session(item, &self.tables.sessions)).transpose()?))
    }

    /// The session in the attributes an update returned (`ReturnValue::AllNew`).
    fn updated_session(&self, attributes: Option<Item>, id: &SessionId) -> Result<Session, StoreError> {
        match attributes {
            Some(item) => read_session(&item, &self.tables.sessions),
            None => Err(StoreError::Corrupt {
                table: self.tables.sessions.clone(),
                key: id.as_str().to_owned(),
                problem: "the update returned no item".to_owned(),
            }),
        }
    }

    fn if_live(&self, session: Session) -> Option<Session> {
        (session.expires_at > self.clock.now_seconds()).then_some(session)
    }

    /// Changes the given fields of the broadcast state and returns the whole new state.
    pub async fn update_broadcast_state(
        &self,
        id: &SessionId,
        patch: BroadcastPatch,
    ) -> Result<BroadcastState, StoreError> {
        let mut sets = Vec::new();
        let mut values: HashMap<String, AttributeValue> = HashMap::new();
        if let Some(muted) = patch.is_muted {
            sets.push(format!("#state.{IS_MUTED} = :muted"));
            values.insert(":muted".into(), AttributeValue::Bool(muted));
        }
        if let Some(volume) = patch.volume {
            sets.push(format!("#state.{VOLUME} = :volume"));
            values.insert(":volume".into(), n(volume.get()));
        }
        if sets.is_empty() {
            return self
                .get_session(id)
                .await?
                .map(|session| session.broadcast_state)
                .ok_or_else(|| StoreError::SessionNotFound(id.clone()));
        }
        values.insert(":now".into(), n(self.clock.now_seconds()));
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.sessions)
            .key(SESSION_ID, s(id.as_str()))
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression("attribute_exists(#id) AND #expires > :now")
            .expression_attribute_names("#id", SESSION_ID)
            .expression_attribute_names("#expires", EXPIRES_AT)
            .expression_attribute_names("#state", BROADCAST_STATE)
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => read_session(&output.attributes.unwrap_or_default(), &self.tables.sessions)
                .map(|session| session.broadcast_state),
            Err(error) if is_condition_failed(&error) => Err(StoreError::SessionNotFound(id.clone())),
            Err(error) => Err(StoreError::aws("UpdateItem", &self.tables.sessions, error)),
        }
    }

    /// Records the speaker's current connection (and that the speaker is back, if it was gone).
    pub async fn set_speaker_connection(&self, id: &SessionId, connection_id: &str) -> Result<(), StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.tables.sessions)
            .key(SESSION_ID, s(id.as_str()))
            .update_expression("SET #speaker = :connection REMOVE #gone")
            .condition_expression("attribute_exists(#id)")
            .expression_attribute_names("#id", SESSION_ID)
            .expression_attribute_names("#speaker", SPEAKER_CONNECTION_ID)
            .expression_attribute_names("#gone", SPEAKER_GONE_AT)
            .expression_attribute_values(":connection", s(connection_id));
        match write_if(request, &self.tables.sessions).await? {
            true => Ok(()),
            false => Err(StoreError::SessionNotFound(id.clone())),
        }
    }

    /// Forgets the speaker's connection and records when the speaker left, but only if the
    /// session's speaker connection is still `connection_id`: after a refresh, the old
    /// connection's late `$disconnect` must not clear the new one. Returns whether it was
    /// cleared (and so whether the grace period started).
    pub async fn clear_speaker_connection(&self, id: &SessionId, connection_id: &str) -> Result<bool, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.tables.sessions)
            .key(SESSION_ID, s(id.as_str()))
            .update_expression("REMOVE #speaker SET #gone = :now")
            .condition_expression("#speaker = :connection")
            .expression_attribute_names("#speaker", SPEAKER_CONNECTION_ID)
            .expression_attribute_names("#gone", SPEAKER_GONE_AT)
            .expression_attribute_values(":connection", s(connection_id))
            .expression_attribute_values(":now", n(self.clock.now_seconds()));
        write_if(request, &self.tables.sessions).await
    }

    /// Hands the session's speaker connection from `from` to `to` (the speaker's other live
    /// connection, when `from` closed), but only if it is still `from`. Returns whether it
    /// was handed over. The speaker is not gone at any moment, so no grace period starts.
    pub async fn hand_over_speaker_connection(&self, id: &SessionId, from: &str, to: &str) -> Result<bool, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.tables.sessions)
            .key(SESSION_ID, s(id.as_str()))
            .update_expression("SET #speaker = :to REMOVE #gone")
            .condition_expression("#speaker = :from")
            .expression_attribute_names("#speaker", SPEAKER_CONNECTION_ID)
            .expression_attribute_names("#gone", SPEAKER_GONE_AT)
            .expression_attribute_values(":from", s(from))
            .expression_attribute_values(":to", s(to));
        write_if(request, &self.tables.sessions).await
    }
}

/// `request`, asking for the session as written, or as it was when the condition was false.
fn with_sessions_back(request: UpdateItemFluentBuilder) -> UpdateItemFluentBuilder {
    request
        .return_values(ReturnValue::AllNew)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
}

fn session_item(session: &Session) -> Item {
    let state = &session.broadcast_state;
    let broadcast = HashMap::from([
        (IS_PAUSED.to_owned(), AttributeValue::Bool(state.is_paused)),
        (IS_MUTED.to_owned(), AttributeValue::Bool(state.is_muted)),
        (VOLUME.to_owned(), n(state.volume.get())),
    ]);
    let mut item = HashMap::from([
        (SESSION_ID.to_owned(), s(session.session_id.as_str())),
        (SPEAKER_USER_ID.to_owned(), s(&session.speaker_user_id)),
        (SOURCE_LANGUAGE.to_owned(), s(session.source_language.as_str())),
        (QUALITY_TIER.to_owned(), s(session.quality_tier.as_str())),
        (STATUS.to_owned(), s(session.status.as_str())),
        (LISTENER_COUNT.to_owned(), n(session.listener_count)),
        (BROADCAST_STATE.to_owned(), AttributeValue::M(broadcast)),
        (CREATED_AT.to_owned(), n(session.created_at)),
        (EXPIRES_AT.to_owned(), n(session.expires_at)),
    ]);
    if let Some(counts) = &session.language_counts {
        item.insert(LANGUAGE_COUNTS.to_owned(), language_counts_value(counts));
    }
    if let Some(connection) = &session.speaker_connection_id {
        item.insert(SPEAKER_CONNECTION_ID.to_owned(), s(connection));
    }
    if let Some(gone) = session.speaker_gone_at {
        item.insert(SPEAKER_GONE_AT.to_owned(), n(gone));
    }
    if let Some(reason) = &session.end_reason {
        item.insert(END_REASON.to_owned(), s(reason));
    }
    if let Some(notified) = session.end_notified_at {
        item.insert(END_NOTIFIED_AT.to_owned(), n(notified));
    }
    if let Some(recounted) = session.recounted_at {
        item.insert(RECOUNTED_AT.to_owned(), n(recounted));
    }
    item
}

fn read_session(item: &Item, table: &str) -> Result<Session, StoreError> {
    let reader = Reader { item, table, key: key_of(item, SESSION_ID) };
    let state = reader.map(BROADCAST_STATE)?;
    let volume: f64 = match state.get(VOLUME) {
        Some(AttributeValue::N(text)) => text.parse().map_err(|_| reader.corrupt("`volume` is not a number"))?,
        _ => return Err(reader.corrupt("`broadcastState.volume` is missing")),
    };
    Ok(Session {
        session_id: reader.parsed(SESSION_ID, SessionId::parse)?,
        speaker_user_id: reader.string(SPEAKER_USER_ID)?.to_owned(),
        speaker_connection_id: reader.opt_string(SPEAKER_CONNECTION_ID)?.map(str::to_owned),
        source_language: reader.parsed(SOURCE_LANGUAGE, LanguageCode::parse)?,
        quality_tier: reader.parsed(QUALITY_TIER, QualityTier::parse)?,
        status: reader.parsed(STATUS, |text| SessionStatus::parse(text).ok_or("unknown status"))?,
        listener_count: reader.number(LISTENER_COUNT)?,
        language_counts: read_language_counts(&reader)?,
        broadcast_state: BroadcastState {
            is_paused: reader.bool(state, IS_PAUSED)?,
            is_muted: reader.bool(state, IS_MUTED)?,
            volume: Volume::new(volume).map_err(|rule| reader.corrupt(format!("`volume` {rule}")))?,
        },
        created_at: reader.number::<EpochSeconds>(CREATED_AT)?,
        expires_at: reader.number::<EpochSeconds>(EXPIRES_AT)?,
        speaker_gone_at: reader.opt_number::<EpochSeconds>(SPEAKER_GONE_AT)?,
        end_reason: reader.opt_string(END_REASON)?.map(str::to_owned),
        end_notified_at: reader.opt_number::<EpochSeconds>(END_NOTIFIED_AT)?,
        recounted_at: reader.opt_number::<EpochSeconds>(RECOUNTED_AT)?,
    })
}

/// Per-language counts as the item's map.
fn language_counts_value(counts: &LanguageDistribution) -> AttributeValue {
    AttributeValue::M(counts.iter().map(|(language, count)| (language.as_str().to_owned(), n(count))).collect())
}

/// The item's per-language counts without the languages at zero, or `None` if it has none.
fn read_language_counts(reader: &Reader<'_>) -> Result<Option<LanguageDistribution>, StoreError> {
    let map = match reader.item.get(LANGUAGE_COUNTS) {
        None | Some(AttributeValue::Null(_)) => return Ok(None),
        Some(AttributeValue::M(map)) => map,
        Some(_) => return Err(reader.corrupt(format!("`{LANGUAGE_COUNTS}` is not a map"))),
    };
    let mut counts = LanguageDistribution::new();
    for (code, value) in map {
        let language = LanguageCode::parse(code)
            .map_err(|problem| reader.corrupt(format!("`{LANGUAGE_COUNTS}` has key {code:?}: {problem}")))?;
        let count: u32 = match value {
            AttributeValue::N(text) => text
                .parse()
                .map_err(|_| reader.corrupt(format!("`{LANGUAGE_COUNTS}.{code}` = {text} is out of range")))?,
            _ => return Err(reader.corrupt(format!("`{LANGUAGE_COUNTS}.{code}` is not a number"))),
        };
        if count > 0 {
            counts.insert(language, count);
        }
    }
    Ok(Some(counts))
}

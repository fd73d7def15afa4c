//! The service's domain records: sessions, connections, roles and broadcast state.
//!
//! These are what the store reads and writes and what the protocol reports; they carry only
//! validated values.

use crate::ids::SessionId;
use crate::protocol::server::LanguageDistribution;
use crate::validation::{LanguageCode, QualityTier, Volume};
use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, the protocol's unit of time.
pub type EpochMillis = i64;

/// Seconds since the Unix epoch, DynamoDB's TTL unit.
pub type EpochSeconds = i64;

/// How young a connection's row may be for a 410 from `@connections` to mean "still in its
/// handshake" rather than "closed": API Gateway answers 410 until `$connect` has returned
/// (AWS_FACTS 9), and `$connect` writes the row before it returns. 30 s is the longest a
/// `$connect` integration can run (API Gateway's integration timeout is 29 s, AWS_FACTS 11),
/// whatever the function's own timeout. See `lifecycle`.
pub const HANDSHAKE_WINDOW_MS: EpochMillis = 30_000;

/// Who is on the other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum Role {
    Speaker,
    Listener,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Speaker => "speaker",
            Role::Listener => "listener",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        match value {
            "speaker" => Some(Role::Speaker),
            "listener" => Some(Role::Listener),
            _ => None,
        }
    }
}

/// A session's status: one field with one meaning for HTTP and WebSocket alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum SessionStatus {
    Active,
    Paused,
    Ended,
}

impl SessionStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Active => "active",
            SessionStatus::Paused => "paused",
            SessionStatus::Ended => "ended",
        }
    }

    pub fn parse(value: &str) -> Option<SessionStatus> {
        match value {
            "active" => Some(SessionStatus::Active),
            "paused" => Some(SessionStatus::Paused),
            "ended" => Some(SessionStatus::Ended),
            _ => None,
        }
    }

    /// Whether a session may move from `self` to `next`. Ended is final, and a session ends
    /// once: ending an ended session is not a transition, so that exactly one ending tells
    /// the session's connections. Pausing a paused or resuming an active session is allowed
    /// (idempotent requests succeed).
    pub fn can_become(self, next: SessionStatus) -> bool {
        match (self, next) {
            (SessionStatus::Ended, _) => false,
            (SessionStatus::Active | SessionStatus::Paused, _) => true,
        }
    }
}

/// What the speaker's listeners hear.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct BroadcastState {
    pub is_paused: bool,
    pub is_muted: bool,
    pub volume: Volume,
}

impl Default for BroadcastState {
    fn default() -> Self {
        BroadcastState { is_paused: false, is_muted: false, volume: Volume::FULL }
    }
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub session_id: SessionId,
    pub speaker_user_id: String,
    pub speaker_connection_id: Option<String>,
    pub source_language: LanguageCode,
    pub quality_tier: QualityTier,
    pub status: SessionStatus,
    pub listener_count: u32,
    /// How many of the listeners listen in each target language; languages with none are
    /// left out. Kept on the session item next to `listener_count` and changed by the same
    /// writes (see `store::sessions`), so reading it costs nothing more than the item.
    /// `None` for a session stored before these counts existed: the distribution of such a
    /// session comes from its listener rows (`Store::language_distribution`).
    pub language_counts: Option<LanguageDistribution>,
    pub broadcast_state: BroadcastState,
    pub created_at: EpochSeconds,
    pub expires_at: EpochSeconds,
    /// When the speaker's connection closed without a refresh; the session ends once the
    /// grace period after it has passed (unless the speaker reconnects).
    pub speaker_gone_at: Option<EpochSeconds>,
    /// Why the session ended, as its clients are told (set with status `ended`).
    pub end_reason: Option<String>,
    /// When every connection of the ended session had been told and closed. An ended session
    /// without it was interrupted while ending, and the next use of it finishes the job
    /// (`lifecycle`).
    pub end_notified_at: Option<EpochSeconds>,
    /// When the listener count was last checked against the rows (`Store::recount_listeners`).
    pub recounted_at: Option<EpochSeconds>,
}

impl Session {
    /// Whether the session is still live (not ended).
    pub fn is_live(&self) -> bool {
        self.status != SessionStatus::Ended
    }

    /// Whether the session ended but its connections may not all have been told and closed.
    pub fn ending_unfinished(&self) -> bool {
        self.status == SessionStatus::Ended && self.end_notified_at.is_none()
    }

    /// Whether the speaker has been gone longer than `grace_seconds` at `now`.
    pub fn grace_expired(&self, now: EpochSeconds, grace_seconds: i64) -> bool {
        self.is_live() && self.speaker_gone_at.is_some_and(|gone| now >= gone + grace_seconds)
    }
}

/// A WebSocket connection as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub connection_id: String,
    /// The session; absent for a speaker who connected without one and has not yet sent
    /// `createSession`.
    pub session_id: Option<SessionId>,
    pub role: Role,
    /// Set for listeners, absent for speakers.
    pub target_language: Option<LanguageCode>,
    /// Set for speakers (the token's subject).
    pub user_id: Option<String>,
    pub connected_at: EpochMillis,
    pub source_ip: String,
    /// Expiry in epoch seconds; the row is ignored after it.
    pub ttl: EpochSeconds,
    /// When the row's session expires (its `expiresAt`), for a row attached to a session. A
    /// session id can be taken again once its session expired, while rows of the old session
    /// may still be there (their TTL runs past the session's end, and `$disconnect` may never
    /// come): this tells them apart, and the row is ignored after it, so a new session with
    /// the same id never sees, counts or uncounts the old one's connections.
    pub session_expires_at: Option<EpochSeconds>,
    /// Whether this listener's place is in its session's count: set only once the count's
    /// write is known to have been applied, so that removing the row gives back exactly the
    /// places that were taken (`store::sessions` explains why counts then drift one way only).
    pub counted: bool,
}

impl Connection {
    /// Whether the row still stands for a connection at `now`: within its TTL, and its
    /// session (if it has one) not expired.
    pub fn is_live(&self, now: EpochSeconds) -> bool {
        self.ttl > now && self.session_expires_at.is_none_or(|expires| expires > now)
    }

    /// The value of the fan-out index's sort key for this connection.
    pub fn audience(&self) -> String {
        audience(self.role, self.target_language)
    }
}

/// The fan-out index's sort key: `speaker`, or `listener#<language>`.
pub fn audience(role: Role, target_language: Option<LanguageCode>) -> String {
    match (role, target_language) {
        (Role::Listener, Some(language)) => format!("{LISTENER_AUDIENCE_PREFIX}{language}"),
        (Role::Listener, None) => LISTENER_AUDIENCE_PREFIX.to_owned(),
        (Role::Speaker, _) => SPEAKER_AUDIENCE.to_owned(),
    }
}

/// The audience value of a speaker's row.
pub const SPEAKER_AUDIENCE: &str = "speaker";
/// The prefix of every listener row's audience value.
pub const LISTENER_AUDIENCE_PREFIX: &str = "listener#";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ended_is_final() {
        use SessionStatus::*;
        assert!(Active.can_become(Paused));
        assert!(Paused.can_become(Active));
        assert!(Active.can_become(Ended));
        assert!(Paused.can_become(Ended));
        assert!(!Ended.can_become(Ended), "a session ends once");
        assert!(!Ended.can_become(Active));
        assert!(!Ended.can_become(Paused));
    }

    #[test]
    fn audiences_separate_speakers_and_languages() {
        let de = LanguageCode::parse("de").ok();
        assert_eq!(audience(Role::Listener, de), "listener#de");
        assert_eq!(audience(Role::Speaker, de), "speaker");
        assert_eq!(audience(Role::Speaker, None), "speaker");
    }

    #[test]
    fn roles_and_statuses_parse_their_own_names() {
        for role in [Role::Speaker, Role::Listener] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        for status in [SessionStatus::Active, SessionStatus::Paused, SessionStatus::Ended] {
            assert_eq!(SessionStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(Role::parse("Speaker"), None);
        assert_eq!(SessionStatus::parse("closed"), None);
    }
}

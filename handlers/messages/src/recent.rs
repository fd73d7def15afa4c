//! Sessions a warm process read a moment ago, for heartbeats.
//!
//! A heartbeat reads its connection's row (who is this, how old is the connection) and must
//! also notice a session that is due to end (its speaker's grace period is over, or an end was
//! interrupted). Reading the session item for that on every heartbeat would double the cost of
//! the commonest frame: every listener sends one every 30 s. So a heartbeat takes the session
//! as this process last read it, if that was less than [`FRESH_FOR_MS`] ago and the copy says
//! nothing is due by now; otherwise it reads the item. An audience of hundreds, served by a few
//! warm processes, then costs one read per heartbeat plus one session read per process every
//! few seconds, and a session due to end is noticed at most that much later.
//!
//! Only heartbeats use it: every other action reads the session it acts on.

use session_core::ids::SessionId;
use session_core::model::{EpochMillis, Session};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// How long a session read stays good enough for a heartbeat.
pub const FRESH_FOR_MS: EpochMillis = 10_000;
/// How many sessions one process remembers; past it, it forgets them all (a process serves
/// a handful of sessions at a time).
const CAPACITY: usize = 1_024;

/// Sessions read recently by this process, shared by its invocations.
#[derive(Debug, Clone, Default)]
pub struct RecentSessions {
    read: Arc<Mutex<HashMap<SessionId, (EpochMillis, Session)>>>,
}

impl RecentSessions {
    /// The session as read less than [`FRESH_FOR_MS`] before `now`, if any.
    pub fn get(&self, id: &SessionId, now: EpochMillis) -> Option<Session> {
        let read = self.read.lock().unwrap_or_else(PoisonError::into_inner);
        read.get(id).filter(|(at, _)| now - at < FRESH_FOR_MS).map(|(_, session)| session.clone())
    }

    /// Remembers `session` as read at `now`.
    pub fn put(&self, session: &Session, now: EpochMillis) {
        let mut read = self.read.lock().unwrap_or_else(PoisonError::into_inner);
        if read.len() >= CAPACITY {
            read.clear();
        }
        read.insert(session.session_id.clone(), (now, session.clone()));
    }
}

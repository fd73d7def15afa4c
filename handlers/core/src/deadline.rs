//! The invocation's deadline: every function answers before Lambda stops it.
//!
//! Lambda gives each invocation a deadline (the runtime API's `Lambda-Runtime-Deadline-Ms`,
//! the function's timeout after the invocation started) and kills an invocation still running
//! then. A client sees that as `Internal server error` on a WebSocket frame, a 500 on a
//! handshake or a 503 from an HTTP API, with no code it can act on. The timeout budget
//! (`setup`) bounds each AWS call, but not a request that makes many slow calls in a row (a
//! fan-out whose store is slow, then slow posts, then the deletes of gone connections).
//!
//! So each function runs its work until [`ANSWER_RESERVE`] before the deadline, then stops it
//! and answers `SERVICE_UNAVAILABLE` with `retryAfter` in the time left. What the stopped work
//! had written stays written, and every request a client may resend is safe to repeat:
//! controls set a state, `joinSession` sets a language, ending resumes where it stopped, and a
//! listener count left too high by a stopped handshake is what the recount lowers.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// The time kept back from the deadline to answer in: one `@connections` post or one
/// response, each well under a second.
pub const ANSWER_RESERVE: Duration = Duration::from_millis(1000);

/// When an invocation must have answered; [`Deadline::NONE`] for work with no deadline
/// (tests, tools).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(Option<Instant>);

/// The work did not finish before the deadline, less the reserve, and was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the work did not finish before the invocation's deadline")]
pub struct OutOfTime;

impl Deadline {
    /// No deadline: the work runs to its end.
    pub const NONE: Deadline = Deadline(None);

    /// The deadline Lambda gave, in epoch milliseconds.
    pub fn at_epoch_millis(deadline_ms: u64) -> Deadline {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis());
        let left = u128::from(deadline_ms).saturating_sub(now_ms);
        Deadline::after(Duration::from_millis(u64::try_from(left).unwrap_or(u64::MAX)))
    }

    /// A deadline `left` from now.
    pub fn after(left: Duration) -> Deadline {
        Deadline(Instant::now().checked_add(left))
    }

    /// Runs `work` until the reserve before the deadline: its output, or [`OutOfTime`] if it
    /// was stopped.
    pub async fn run<T>(self, work: impl Future<Output = T>) -> Result<T, OutOfTime> {
        match self.0 {
            None => Ok(work.await),
            Some(deadline) => {
                let stop = deadline.checked_sub(ANSWER_RESERVE).unwrap_or(deadline);
                tokio::time::timeout_at(stop, work).await.map_err(|_| OutOfTime)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_is_stopped_at_the_reserve_before_the_deadline() {
        let started = Instant::now();
        let outcome = Deadline::after(ANSWER_RESERVE + Duration::from_millis(50))
            .run(tokio::time::sleep(Duration::from_secs(60)))
            .await;
        assert_eq!(outcome, Err(OutOfTime));
        assert!(started.elapsed() < ANSWER_RESERVE, "stopped with the reserve left to answer in");
    }

    #[tokio::test]
    async fn work_that_finishes_in_time_gives_its_output() {
        assert_eq!(Deadline::after(Duration::from_secs(30)).run(async { 7 }).await, Ok(7));
        assert_eq!(Deadline::NONE.run(async { 7 }).await, Ok(7));
    }

    #[tokio::test]
    async fn a_deadline_already_past_stops_the_work_at_once() {
        let past = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis() - 5_000;
        let deadline = Deadline::at_epoch_millis(u64::try_from(past).expect("fits"));
        assert_eq!(deadline.run(std::future::pending::<()>()).await, Err(OutOfTime));
    }
}

//! Listener counts when DynamoDB's answers are lost: a write applied whose answer never came
//! back, a row that was never counted, a place given back twice. The local endpoint applies
//! every request; the recorder turns chosen answers into 500s after the fact, as a lost
//! response would look to the SDK.
//!
//! What must hold: a count's write is applied at most once, so a count is never below the
//! rows that hold places (a session never exceeds its cap), and a count above them is brought
//! back to them by the next recount.

use session_core::ids::SessionId;
use session_core::model::Connection;
use session_core::store::sessions::INDEX_LAG_SECONDS;
use session_core::store::{ManualClock, Store, StoreError};
use session_core::validation::LanguageCode;
use std::sync::Arc;
use testkit::OperationRecorder;

mod support;

use support::{lang, session, store_with};

async fn store() -> (Store, Arc<ManualClock>, OperationRecorder) {
    let recorder = OperationRecorder::new();
    let (store, clock) = store_with(testkit::dynamodb_client_recording(&recorder)).await;
    (store, clock, recorder)
}

fn de() -> LanguageCode {
    lang("de")
}

fn listener(connection_id: &str, session: &SessionId, store: &Store) -> Connection {
    support::listener(connection_id, session, "de", store)
}

/// Admits a listener as `$connect` does: its row, then its place.
async fn admit(store: &Store, session: &SessionId, connection_id: &str, cap: u32) -> Result<u32, StoreError> {
    store.put_connection(&listener(connection_id, session, store)).await.expect("row");
    let admitted = store.admit_listener(session, connection_id, de(), cap, |_| async { Vec::new() }).await?;
    Ok(admitted.listener_count)
}

/// A listener leaves as `$disconnect` makes it: the row, then its place.
async fn leave(store: &Store, connection_id: &str) -> Result<(), StoreError> {
    let row = store.delete_connection(connection_id).await?.expect("a row");
    store.give_back_place(&row).await.map(drop)
}

async fn count(store: &Store, session: &SessionId) -> u32 {
    store.get_session(session).await.expect("read").expect("present").listener_count
}

async fn rows(store: &Store, session: &SessionId) -> u32 {
    store.listeners(session, None).await.expect("rows").len().try_into().expect("few")
}

/// A recount, as a heartbeat makes it once due, after the index has had time to catch up.
async fn recount(store: &Store, clock: &ManualClock, session: &SessionId, closed: Vec<String>) {
    clock.advance_seconds(INDEX_LAG_SECONDS + 1);
    let ran = store.recount_listeners(session, None, 0, |_| async move { closed }).await.expect("recounted");
    assert!(ran, "a recount due every 0 s runs");
}

#[tokio::test]
async fn a_join_whose_answer_is_lost_is_counted_once_and_the_recount_settles_it() {
    let (store, clock, recorder) = store().await;
    let session = session(&store).await;
    admit(&store, &session, "first", 500).await.expect("admitted");

    // The count's write is applied, and its answer lost: the join cannot know it was counted.
    recorder.lose_answers("UpdateItem", 1);
    let error = admit(&store, &session, "second", 500).await.expect_err("the answer was lost");
    assert!(error.is_unavailable(), "{error}");
    // Sent once, so applied once: a retry would have counted it twice.
    assert_eq!(count(&store, &session).await, 2);
    // `$connect` refuses the handshake and deletes the row; it was never marked counted, so
    // no place is given back for it: the count is one too high, never too low.
    leave(&store, "second").await.expect("deleted");
    assert_eq!((count(&store, &session).await, rows(&store, &session).await), (2, 1));

    recount(&store, &clock, &session, Vec::new()).await;
    assert_eq!((count(&store, &session).await, rows(&store, &session).await), (1, 1));
}

#[tokio::test]
async fn a_leave_whose_answer_is_lost_gives_its_place_back_once() {
    let (store, _, recorder) = store().await;
    let session = session(&store).await;
    for connection in ["stays", "leaves"] {
        admit(&store, &session, connection, 500).await.expect("admitted");
    }
    recorder.lose_answers("UpdateItem", 1);
    let error = leave(&store, "leaves").await.expect_err("the answer was lost");
    assert!(error.is_unavailable(), "{error}");
    // Given back once: a retry would have taken the staying listener's place too.
    assert_eq!((count(&store, &session).await, rows(&store, &session).await), (1, 1));
}

#[tokio::test]
async fn a_row_that_was_never_counted_gives_no_place_back() {
    let (store, clock, _) = store().await;
    let session = session(&store).await;
    admit(&store, &session, "counted", 2).await.expect("admitted");
    // A handshake that failed after writing its row, and whose row could not be deleted: the
    // connection is closed, and the row holds no place.
    store.put_connection(&listener("orphan", &session, &store)).await.expect("row");
    assert_eq!(count(&store, &session).await, 1);

    // Its `$disconnect` (if one comes) gives nothing back...
    let row = store.get_connection("orphan").await.expect("read").expect("the row");
    assert!(!row.counted);
    assert_eq!(store.give_back_place(&row).await.expect("nothing to give"), None);
    assert_eq!(count(&store, &session).await, 1);
    // ...and neither does a recount that finds it closed: it deletes the row only.
    recount(&store, &clock, &session, vec!["orphan".to_owned()]).await;
    assert!(store.get_connection("orphan").await.expect("read").is_none(), "the orphan row is gone");
    assert_eq!((count(&store, &session).await, rows(&store, &session).await), (1, 1));
    // So the cap still holds: one more place, then full.
    admit(&store, &session, "next", 2).await.expect("admitted");
    let error = admit(&store, &session, "over", 2).await.expect_err("full");
    assert!(matches!(error, StoreError::SessionFull { cap: 2, .. }), "{error}");
}

#[tokio::test]
async fn a_place_taken_by_a_refresh_is_given_back_by_the_new_connection_only() {
    let (store, _, _) = store().await;
    let session = session(&store).await;
    admit(&store, &session, "before", 500).await.expect("admitted");
    store.put_connection(&listener("after", &session, &store)).await.expect("row");
    let taken = store.take_listener_place("before", &session, "after", de()).await.expect("taken");
    assert!(taken.is_some(), "the place moves");
    assert!(store.get_connection("after").await.expect("read").expect("row").counted, "and is marked");
    assert_eq!(count(&store, &session).await, 1);
    leave(&store, "after").await.expect("left");
    assert_eq!((count(&store, &session).await, rows(&store, &session).await), (0, 0));

    // A predecessor that held no place hands none over: the new connection is counted anew.
    store.put_connection(&listener("uncounted", &session, &store)).await.expect("row");
    store.put_connection(&listener("refresh", &session, &store)).await.expect("row");
    let taken = store.take_listener_place("uncounted", &session, "refresh", de()).await.expect("deleted");
    assert_eq!(taken, None);
    assert!(!store.get_connection("refresh").await.expect("read").expect("row").counted);
}

//! The store against a real DynamoDB API (moto's server, started by `testkit`), with tables
//! created from the contract's schemas.

use futures::future::join_all;
use session_core::ids::SessionId;
use session_core::model::{Connection, Role, SessionStatus};
use session_core::store::{
    BroadcastPatch, Clock, ManualClock, NewSession, RateDecision, RateLimitKey, RateRule, Store, StoreError, TableNames,
};
use session_core::validation::{LanguageCode, Volume};
use std::collections::BTreeSet;

mod support;

use support::{START, id, lang, listener, new_session, session, store};

fn speaker(connection_id: &str, session: &SessionId, connected_at: i64, store: &Store) -> Connection {
    Connection {
        role: Role::Speaker,
        target_language: None,
        user_id: Some("user-1".into()),
        connected_at,
        ..listener(connection_id, session, "en", store)
    }
}

#[tokio::test]
async fn a_created_session_reads_back_with_every_field() {
    let (store, _) = store().await;
    let created = store.create_session(new_session()).await.expect("created");
    assert_eq!(created.status, SessionStatus::Active);
    assert_eq!(created.listener_count, 0);
    assert_eq!(created.expires_at, START / 1000 + 3600);
    let read = store.get_session(&created.session_id).await.expect("read").expect("present");
    assert_eq!(read, created);
}

#[tokio::test]
async fn creation_retries_with_a_fresh_id_when_the_id_is_taken() {
    let (store, _) = store().await;
    let taken = id("quiet-harbor-417");
    store.create_session_with_ids(new_session(), [taken.clone()]).await.expect("first");
    let second =
        store.create_session_with_ids(new_session(), [taken.clone(), id("brave-otter-123")]).await.expect("second");
    assert_eq!(second.session_id, id("brave-otter-123"));
    // The first session was not overwritten.
    assert_eq!(store.get_session(&taken).await.expect("read").expect("present").speaker_user_id, "user-1");
}

#[tokio::test]
async fn creation_gives_up_after_a_bounded_number_of_collisions() {
    let (store, _) = store().await;
    let taken = id("quiet-harbor-417");
    store.create_session_with_ids(new_session(), [taken.clone()]).await.expect("first");
    let error =
        store.create_session_with_ids(new_session(), std::iter::repeat(taken)).await.expect_err("every id is taken");
    assert!(matches!(error, StoreError::IdsExhausted { attempts: 5 }), "{error}");
}

#[tokio::test]
async fn an_expired_session_is_absent_and_its_id_can_be_reused() {
    let (store, clock) = store().await;
    let old = store.create_session_with_ids(new_session(), [id("quiet-harbor-417")]).await.expect("created");
    clock.advance_seconds(3600);
    assert_eq!(store.get_session(&old.session_id).await.expect("read"), None);
    let again = NewSession { speaker_user_id: "user-2".into(), ..new_session() };
    let reused = store.create_session_with_ids(again, [old.session_id.clone()]).await.expect("reused");
    assert_eq!(reused.speaker_user_id, "user-2");
}

#[tokio::test]
async fn an_unknown_session_is_none_not_an_error() {
    let (store, _) = store().await;
    assert_eq!(store.get_session(&id("never-seen-999")).await.expect("read"), None);
}

#[tokio::test]
async fn status_transitions_follow_the_rules() {
    let (store, _) = store().await;
    let session = session(&store).await;
    // Status and `broadcastState.isPaused` move in the same write.
    let paused = store.set_session_status(&session, SessionStatus::Paused).await.expect("pause");
    assert_eq!((paused.status, paused.broadcast_state.is_paused), (SessionStatus::Paused, true));
    let again = store.set_session_status(&session, SessionStatus::Paused).await.expect("idempotent");
    assert_eq!((again.status, again.broadcast_state.is_paused), (SessionStatus::Paused, true));
    let resumed = store.set_session_status(&session, SessionStatus::Active).await.expect("resume");
    assert_eq!((resumed.status, resumed.broadcast_state.is_paused), (SessionStatus::Active, false));
    assert_eq!(
        store.set_session_status(&session, SessionStatus::Ended).await.expect("end").status,
        SessionStatus::Ended
    );
    let error = store.set_session_status(&session, SessionStatus::Active).await.expect_err("ended is final");
    assert!(
        matches!(error, StoreError::InvalidTransition { from: SessionStatus::Ended, to: SessionStatus::Active, .. }),
        "{error}"
    );
    // A session ends once: ending it again is refused by the write's condition.
    let error = store.set_session_status(&session, SessionStatus::Ended).await.expect_err("ends once");
    assert!(
        matches!(error, StoreError::InvalidTransition { from: SessionStatus::Ended, to: SessionStatus::Ended, .. }),
        "{error}"
    );
    let error = store.set_session_status(&id("never-seen-999"), SessionStatus::Paused).await.expect_err("missing");
    assert!(matches!(error, StoreError::SessionNotFound(_)), "{error}");
}

/// The language of the `index`th listener of the concurrency tests: `de`, `fr` and `es` in turn.
fn language_of(index: usize) -> LanguageCode {
    lang(["de", "fr", "es"][index % 3])
}

/// The per-language counts of the stored session.
async fn language_counts(store: &Store, session: &SessionId) -> Vec<(LanguageCode, u32)> {
    let stored = store.get_session(session).await.expect("read").expect("present");
    stored.language_counts.expect("a new session has per-language counts").into_iter().collect()
}

#[tokio::test]
async fn fifty_concurrent_joins_and_fifty_concurrent_leaves_count_exactly() {
    let (store, _) = store().await;
    let session = session(&store).await;
    let joins = join_all((0..50).map(|index| store.add_listener(&session, language_of(index), 500))).await;
    let counts: BTreeSet<u32> = joins.into_iter().map(|joined| joined.expect("joined").listener_count).collect();
    assert_eq!(counts, (1..=50).collect(), "every join saw a distinct count");
    assert_eq!(store.get_session(&session).await.expect("read").expect("present").listener_count, 50);
    assert_eq!(language_counts(&store, &session).await, [(lang("de"), 17), (lang("es"), 16), (lang("fr"), 17)]);

    let leaves = join_all((0..50).map(|index| store.remove_listener(&session, Some(language_of(index))))).await;
    let counts: BTreeSet<u32> =
        leaves.into_iter().map(|left| left.expect("left").expect("session exists").listener_count).collect();
    assert_eq!(counts, (0..50).collect());
    assert_eq!(store.get_session(&session).await.expect("read").expect("present").listener_count, 0);
    // Languages back at zero are not reported.
    assert_eq!(language_counts(&store, &session).await, []);

    // Leaves beyond zero (late or repeated $disconnects) never make a count negative.
    let extra = join_all((0..10).map(|index| store.remove_listener(&session, Some(language_of(index))))).await;
    for left in extra {
        let left = left.expect("no error").expect("session exists");
        assert_eq!((left.listener_count, left.language_counts), (0, Some(Default::default())));
    }
    let joined = store.add_listener(&session, lang("de"), 500).await.expect("joined");
    assert_eq!(joined.language_counts, Some([(lang("de"), 1)].into()), "no count went below zero");
}

#[tokio::test]
async fn interleaved_joins_and_leaves_count_exactly() {
    let (store, _) = store().await;
    let session = session(&store).await;
    for index in 0..25 {
        store.add_listener(&session, language_of(index), 500).await.expect("joined");
    }
    // 25 more join in the same languages while the first 25 leave.
    let joins = join_all((0..25).map(|index| store.add_listener(&session, language_of(index), 500)));
    let leaves = join_all((0..25).map(|index| store.remove_listener(&session, Some(language_of(index)))));
    let (joins, leaves) = tokio::join!(joins, leaves);
    assert!(joins.iter().all(Result::is_ok) && leaves.iter().all(Result::is_ok));
    assert_eq!(store.get_session(&session).await.expect("read").expect("present").listener_count, 25);
    assert_eq!(language_counts(&store, &session).await, [(lang("de"), 9), (lang("es"), 8), (lang("fr"), 8)]);
}

#[tokio::test]
async fn the_listener_cap_holds_under_concurrency() {
    let (store, _) = store().await;
    let session = session(&store).await;
    let results = join_all((0..30).map(|index| store.add_listener(&session, language_of(index), 20))).await;
    let full = results.iter().filter(|result| matches!(result, Err(StoreError::SessionFull { cap: 20, .. }))).count();
    assert_eq!(results.iter().filter(|result| result.is_ok()).count(), 20);
    assert_eq!(full, 10);
    let stored = store.get_session(&session).await.expect("read").expect("present");
    assert_eq!(stored.listener_count, 20);
    // A refused join counted nothing in its language either.
    let admitted: u32 = stored.language_counts.expect("counts").values().sum();
    assert_eq!(admitted, 20);
}

/// A recount's question to `@connections`, for tests of the store alone: every row it asks
/// about is open.
async fn no_live_check(_: Vec<Connection>) -> Vec<String> {
    Vec::new()
}

#[tokio::test]
async fn admitting_at_the_cap_concurrently_admits_exactly_the_cap() {
    let (store, _) = store().await;
    let session = session(&store).await;
    let ids: Vec<String> = (0..30).map(|index| format!("joiner-{index:02}")).collect();
    let results = join_all(ids.iter().map(|connection| {
        let (store, session) = (&store, &session);
        async move {
            // As `$connect` does: the row, then the count; a refused listener's row goes again.
            store.put_connection(&listener(connection, session, "de", store)).await.expect("row");
            let admitted = store.admit_listener(session, connection, lang("de"), 20, no_live_check).await;
            if admitted.is_err() {
                store.delete_connection(connection).await.expect("row deleted");
            }
            admitted
        }
    }))
    .await;
    assert_eq!(results.iter().filter(|result| result.is_ok()).count(), 20);
    assert!(results.iter().all(|result| result.is_ok() || matches!(result, Err(StoreError::SessionFull { .. }))));
    assert_eq!(store.get_session(&session).await.expect("read").expect("present").listener_count, 20);
    assert_eq!(store.listeners(&session, None).await.expect("rows").len(), 20);
    assert_eq!(language_counts(&store, &session).await, [(lang("de"), 20)]);
}

#[tokio::test]
async fn a_drifted_count_is_lowered_to_the_live_rows_only_when_it_says_full() {
    let (store, clock) = store().await;
    let session = session(&store).await;
    // Three listeners counted; two of them left without a $disconnect. One row expired, the
    // other was swept by DynamoDB's TTL.
    for connection in ["stays", "expires", "swept"] {
        let mut row = listener(connection, &session, "de", &store);
        if connection != "stays" {
            row.ttl = store.clock().now_seconds() + 60;
        }
        store.put_connection(&row).await.expect("row");
        store.add_listener(&session, lang("de"), 3).await.expect("counted");
    }
    clock.advance_seconds(61);
    store.delete_connection("swept").await.expect("swept");
    assert_eq!(store.live_listener_languages(&session, None).await.expect("rows"), [(lang("de"), 1)].into());
    assert_eq!(language_counts(&store, &session).await, [(lang("de"), 3)]);

    // The plain counter goes by the count alone.
    store.put_connection(&listener("late", &session, "fr", &store)).await.expect("row");
    let error = store.add_listener(&session, lang("fr"), 3).await.expect_err("the plain count says full");
    assert!(matches!(error, StoreError::SessionFull { cap: 3, .. }), "{error}");
    // Admitting checks the full count against the rows (other than the joiner's own): 1 live
    // listener, so the counts become those of the rows, and then 2 with the joiner.
    let admitted = store.admit_listener(&session, "late", lang("fr"), 3, no_live_check).await.expect("admitted");
    assert_eq!(admitted.listener_count, 2);
    assert_eq!(admitted.language_counts, Some([(lang("de"), 1), (lang("fr"), 1)].into()), "reset with the count");
    assert_eq!(store.get_session(&session).await.expect("read").expect("present"), admitted);
    store.put_connection(&listener("next", &session, "fr", &store)).await.expect("row");
    assert_eq!(
        store.admit_listener(&session, "next", lang("fr"), 3, no_live_check).await.expect("admitted").listener_count,
        3
    );
    // Now the rows agree that it is full.
    store.put_connection(&listener("over", &session, "fr", &store)).await.expect("row");
    let error = store.admit_listener(&session, "over", lang("fr"), 3, no_live_check).await.expect_err("full");
    assert!(matches!(error, StoreError::SessionFull { cap: 3, .. }), "{error}");
    assert_eq!(store.get_session(&session).await.expect("read").expect("present").listener_count, 3);
    assert_eq!(language_counts(&store, &session).await, [(lang("de"), 1), (lang("fr"), 2)]);
}

#[tokio::test]
async fn joining_an_ended_or_unknown_session_is_refused() {
    let (store, _) = store().await;
    let session = session(&store).await;
    store.set_session_status(&session, SessionStatus::Ended).await.expect("ended");
    let error = store.add_listener(&session, lang("de"), 500).await.expect_err("ended");
    assert!(matches!(error, StoreError::SessionEnded { .. }), "{error}");
    let error = store.add_listener(&id("never-seen-999"), lang("de"), 500).await.expect_err("unknown");
    assert!(matches!(error, StoreError::SessionNotFound(_)), "{error}");
    assert_eq!(store.remove_listener(&id("never-seen-999"), Some(lang("de"))).await.expect("no error"), None);
    assert_eq!(language_counts(&store, &session).await, [], "a refused join counts no language");
}

#[tokio::test]
async fn broadcast_state_changes_field_by_field() {
    let (store, _) = store().await;
    let session = session(&store).await;
    let state = store
        .update_broadcast_state(&session, BroadcastPatch { is_muted: Some(true), ..Default::default() })
        .await
        .expect("muted");
    assert!(state.is_muted && !state.is_paused);
    assert_eq!(state.volume, Volume::FULL);
    let volume = Volume::new(0.3).expect("volume");
    let state = store
        .update_broadcast_state(&session, BroadcastPatch { volume: Some(volume), ..Default::default() })
        .await
        .expect("changed");
    assert!(state.is_muted && !state.is_paused);
    assert_eq!(state.volume, volume);
    assert_eq!(store.get_session(&session).await.expect("read").expect("present").broadcast_state, state);
    let error = store
        .update_broadcast_state(&id("never-seen-999"), BroadcastPatch { is_muted: Some(true), ..Default::default() })
        .await
        .expect_err("unknown");
    assert!(matches!(error, StoreError::SessionNotFound(_)), "{error}");
}

#[tokio::test]
async fn the_speaker_connection_is_cleared_only_by_its_own_connection() {
    let (store, _) = store().await;
    let session = session(&store).await;
    store.set_speaker_connection(&session, "old").await.expect("set");
    store.set_speaker_connection(&session, "new").await.expect("refreshed");
    assert!(!store.clear_speaker_connection(&session, "old").await.expect("no error"));
    let current = store.get_session(&session).await.expect("read").expect("present");
    assert_eq!(current.speaker_connection_id.as_deref(), Some("new"));
    assert_eq!(current.speaker_gone_at, None, "a refreshed speaker is not gone");
    assert!(store.clear_speaker_connection(&session, "new").await.expect("cleared"));
    let current = store.get_session(&session).await.expect("read").expect("present");
    assert_eq!(current.speaker_connection_id, None);
    assert_eq!(current.speaker_gone_at, Some(START / 1000), "the grace period starts");
    assert!(current.grace_expired(START / 1000 + 60, 60));
    assert!(!current.grace_expired(START / 1000 + 59, 60));
    // The speaker comes back: no longer gone.
    store.set_speaker_connection(&session, "back").await.expect("set");
    let current = store.get_session(&session).await.expect("read").expect("present");
    assert_eq!(current.speaker_gone_at, None);
}

#[tokio::test]
async fn a_speaker_without_a_session_is_stored_but_not_indexed() {
    let (store, _) = store().await;
    let session = session(&store).await;
    let mut pending = speaker("pending", &session, START, &store);
    pending.session_id = None;
    store.put_connection(&pending).await.expect("stored");
    assert_eq!(store.get_connection("pending").await.expect("read"), Some(pending));
    assert_eq!(store.speaker_connections(&session).await.expect("query").into_iter().next(), None);
}

#[tokio::test]
async fn connections_are_stored_read_and_deleted() {
    let (store, _) = store().await;
    let session = session(&store).await;
    let connection = listener("conn-1=", &session, "de", &store);
    store.put_connection(&connection).await.expect("stored");
    assert_eq!(store.get_connection("conn-1=").await.expect("read"), Some(connection.clone()));
    assert_eq!(store.delete_connection("conn-1=").await.expect("deleted"), Some(connection));
    assert_eq!(store.delete_connection("conn-1=").await.expect("absent is fine"), None);
    assert_eq!(store.get_connection("conn-1=").await.expect("read"), None);
}

#[tokio::test]
async fn fan_out_returns_every_listener_of_a_language_across_pages() {
    let (store, _) = store().await;
    let store = store.with_page_size(7);
    let session = session(&store).await;
    let other = session_other(&store).await;
    let mut expected_de = BTreeSet::new();
    for index in 0..30 {
        let connection_id = format!("de-{index:02}");
        store.put_connection(&listener(&connection_id, &session, "de", &store)).await.expect("stored");
        expected_de.insert(connection_id);
    }
    for index in 0..12 {
        store.put_connection(&listener(&format!("fr-{index:02}"), &session, "fr", &store)).await.expect("stored");
    }
    store.put_connection(&listener("other-de", &other, "de", &store)).await.expect("stored");
    store.put_connection(&speaker("speaker", &session, START, &store)).await.expect("stored");

    let first = store.listeners_page(&session, Some(lang("de")), None).await.expect("page");
    assert_eq!(first.connections.len(), 7);
    assert!(first.next.is_some(), "30 listeners do not fit in a page of 7");

    let de: BTreeSet<String> = store
        .listeners(&session, Some(lang("de")))
        .await
        .expect("all pages")
        .into_iter()
        .map(|c| c.connection_id)
        .collect();
    assert_eq!(de, expected_de);
    assert_eq!(store.listeners(&session, None).await.expect("all").len(), 42);
    let rows = store.live_listener_languages(&session, None).await.expect("rows");
    assert_eq!(rows.into_iter().collect::<Vec<_>>(), vec![(lang("de"), 30), (lang("fr"), 12)]);
    let rows = store.live_listener_languages(&session, Some("de-00")).await.expect("rows");
    assert_eq!(rows.into_iter().collect::<Vec<_>>(), vec![(lang("de"), 29), (lang("fr"), 12)]);
}

async fn session_other(store: &Store) -> SessionId {
    session(store).await
}

#[tokio::test]
async fn the_speakers_row_is_found_newest_first() {
    let (store, _) = store().await;
    let session = session(&store).await;
    assert_eq!(store.speaker_connections(&session).await.expect("query").into_iter().next(), None);
    store.put_connection(&listener("l-1", &session, "de", &store)).await.expect("stored");
    store.put_connection(&speaker("speaker-old", &session, START, &store)).await.expect("stored");
    store.put_connection(&speaker("speaker-new", &session, START + 5_000, &store)).await.expect("stored");
    let found = store.speaker_connections(&session).await.expect("query").into_iter().next().expect("present");
    assert_eq!(found.connection_id, "speaker-new");
    assert_eq!(found.role, Role::Speaker);
    let all = store.speaker_connections(&session).await.expect("query");
    assert_eq!(all.iter().map(|c| c.connection_id.as_str()).collect::<Vec<_>>(), ["speaker-new", "speaker-old"]);
    // The speaker is not a listener.
    assert_eq!(store.listeners(&session, None).await.expect("query").len(), 1);
}

#[tokio::test]
async fn expired_connections_are_ignored_everywhere() {
    let (store, clock) = store().await;
    let session = session(&store).await;
    let mut stale = listener("stale", &session, "de", &store);
    stale.ttl = clock.now_seconds() - 1;
    store.put_connection(&stale).await.expect("stored");
    let mut stale_speaker = speaker("stale-speaker", &session, START, &store);
    stale_speaker.ttl = clock.now_seconds() - 1;
    store.put_connection(&stale_speaker).await.expect("stored");
    store.put_connection(&listener("fresh", &session, "de", &store)).await.expect("stored");

    assert_eq!(store.get_connection("stale").await.expect("read"), None);
    let listeners = store.listeners(&session, Some(lang("de"))).await.expect("query");
    assert_eq!(listeners.iter().map(|c| c.connection_id.as_str()).collect::<Vec<_>>(), ["fresh"]);
    assert_eq!(store.speaker_connections(&session).await.expect("query").into_iter().next(), None);
    assert_eq!(store.delete_connection("stale").await.expect("deleted"), None);

    // Time passes: the fresh row expires too.
    clock.advance_seconds(7200);
    assert!(store.listeners(&session, None).await.expect("query").is_empty());
}

#[tokio::test]
async fn a_listener_changes_language_and_a_speaker_cannot() {
    let (store, _) = store().await;
    let session = session(&store).await;
    store.put_connection(&listener("l-1", &session, "de", &store)).await.expect("stored");
    store.put_connection(&speaker("s-1", &session, START, &store)).await.expect("stored");
    let moved = store.change_language("l-1", lang("fr")).await.expect("changed");
    assert_eq!(moved.connection.target_language, Some(lang("fr")));
    assert_eq!(moved.connection, store.get_connection("l-1").await.expect("read").expect("present"));
    assert!(store.listeners(&session, Some(lang("de"))).await.expect("query").is_empty());
    assert_eq!(store.listeners(&session, Some(lang("fr"))).await.expect("query").len(), 1);
    let error = store.change_language("s-1", lang("fr")).await.expect_err("speaker");
    assert!(matches!(error, StoreError::NotAListener(_)), "{error}");
    let error = store.change_language("nobody", lang("fr")).await.expect_err("missing");
    assert!(matches!(error, StoreError::ConnectionNotFound(_)), "{error}");
}

#[tokio::test]
async fn rate_limit_windows_count_and_reset() {
    let (store, clock) = store().await;
    let key = RateLimitKey::new("join", "ip", "203.0.113.9");
    let rule = RateRule::new(3, 60);
    for remaining in [2, 1, 0] {
        assert_eq!(store.hit_rate_limit(&key, rule).await.expect("hit"), RateDecision::Allowed { remaining });
    }
    let window_end = (START / 1000 / 60 + 1) * 60;
    let expected_retry = (window_end - START / 1000) as u64;
    assert_eq!(
        store.hit_rate_limit(&key, rule).await.expect("hit"),
        RateDecision::Limited { retry_after: expected_retry }
    );
    // Another key is counted separately.
    let other = RateLimitKey::new("join", "ip", "203.0.113.10");
    assert_eq!(store.hit_rate_limit(&other, rule).await.expect("hit"), RateDecision::Allowed { remaining: 2 });
    // The next window starts afresh.
    clock.advance_seconds(60);
    assert_eq!(store.hit_rate_limit(&key, rule).await.expect("hit"), RateDecision::Allowed { remaining: 2 });
}

#[tokio::test]
async fn a_hit_over_the_limit_costs_one_dynamodb_call() {
    let recorder = testkit::OperationRecorder::new();
    let client = testkit::dynamodb_client_recording(&recorder);
    let tables = testkit::create_tables(&client).await;
    let names = TableNames::from_lookup(tables.env_lookup()).expect("every table has a name");
    let clock = ManualClock::starting_at(START);
    let store = Store::new(client, names).with_clock(clock.clone());
    let key = RateLimitKey::new("connect", "ip", "203.0.113.9");
    let rule = RateRule::new(2, 60);
    let calls_of = |hit: RateDecision, recorder: &testkit::OperationRecorder| {
        let calls = recorder.calls();
        recorder.clear();
        assert!(calls.iter().all(|(service, _)| service == "DynamoDB"), "{calls:?}");
        (hit, calls.into_iter().map(|(_, operation)| operation).collect::<Vec<_>>())
    };
    recorder.clear();

    // The first hit finds no row and starts the window: two writes.
    let first = store.hit_rate_limit(&key, rule).await.expect("hit");
    assert_eq!(calls_of(first, &recorder), (RateDecision::Allowed { remaining: 1 }, vec!["UpdateItem".into(); 2]));
    // A hit within the window and the limit: one write.
    let second = store.hit_rate_limit(&key, rule).await.expect("hit");
    assert_eq!(calls_of(second, &recorder), (RateDecision::Allowed { remaining: 0 }, vec!["UpdateItem".into()]));
    // Refused hits: one write each, whose refusal shows the full window.
    for _ in 0..3 {
        let refused = store.hit_rate_limit(&key, rule).await.expect("hit");
        let (decision, calls) = calls_of(refused, &recorder);
        assert!(matches!(decision, RateDecision::Limited { .. }), "{decision:?}");
        assert_eq!(calls, ["UpdateItem"]);
    }
    // The next window: the refused increment shows an old window, and a new one starts.
    clock.advance_seconds(60);
    let next = store.hit_rate_limit(&key, rule).await.expect("hit");
    assert_eq!(calls_of(next, &recorder), (RateDecision::Allowed { remaining: 1 }, vec!["UpdateItem".into(); 2]));
}

#[tokio::test]
async fn concurrent_hits_never_exceed_the_limit() {
    let (store, _) = store().await;
    let key = RateLimitKey::new("connect", "ip", "198.51.100.1");
    let rule = RateRule::new(10, 60);
    let results = join_all((0..25).map(|_| store.hit_rate_limit(&key, rule))).await;
    let allowed = results.iter().filter(|result| matches!(result, Ok(RateDecision::Allowed { .. }))).count();
    let limited = results.iter().filter(|result| matches!(result, Ok(RateDecision::Limited { .. }))).count();
    assert_eq!((allowed, limited), (10, 15), "{results:?}");
}

#[tokio::test]
async fn a_malformed_row_is_reported_not_trusted() {
    let (store, _) = store().await;
    let client = testkit::dynamodb_client();
    client
        .put_item()
        .table_name(&store.tables().sessions)
        .item("sessionId", aws_sdk_dynamodb::types::AttributeValue::S("quiet-harbor-417".into()))
        .item("expiresAt", aws_sdk_dynamodb::types::AttributeValue::N("99999999999".into()))
        .send()
        .await
        .expect("written");
    let error = store.get_session(&id("quiet-harbor-417")).await.expect_err("malformed");
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
    assert!(error.to_string().contains("quiet-harbor-417"), "{error}");
}

#[test]
fn table_names_come_from_the_contracts_variables() {
    let error = TableNames::from_lookup(|_| None).expect_err("nothing set");
    assert_eq!(error.0, "SESSIONS_TABLE");
    let names = TableNames::from_lookup(|variable| Some(format!("{variable}-x"))).expect("all set");
    assert_eq!(names.connections, "CONNECTIONS_TABLE-x");
}

/// Asserts that the session's counts, as the speaker would be told them, are those of its
/// live listener rows; returns the distribution.
async fn assert_counts_match_rows(store: &Store, session: &SessionId) -> Vec<(LanguageCode, u32)> {
    let stored = store.get_session(session).await.expect("read").expect("present");
    assert!(stored.language_counts.is_some(), "read from the session item");
    let told = store.language_distribution(&stored).await.expect("distribution");
    let rows = store.live_listener_languages(session, None).await.expect("rows");
    assert_eq!(told, rows, "the counts are the rows'");
    assert_eq!(stored.listener_count, rows.values().sum::<u32>(), "the total is the rows'");
    told.into_iter().collect()
}

#[tokio::test]
async fn the_distribution_follows_joins_language_changes_refreshes_and_leaves() {
    let (store, _) = store().await;
    let session = session(&store).await;
    // Joins, as `$connect` makes them: the row, then the count.
    for (connection, language) in [("a", "de"), ("b", "de"), ("c", "fr")] {
        store.put_connection(&listener(connection, &session, language, &store)).await.expect("row");
        store.admit_listener(&session, connection, lang(language), 500, no_live_check).await.expect("admitted");
    }
    assert_eq!(assert_counts_match_rows(&store, &session).await, [(lang("de"), 2), (lang("fr"), 1)]);

    // A language change moves one listener, and returns the session as it left it.
    let change = store.change_language("b", lang("es")).await.expect("changed");
    let after = change.session.expect("the counts changed");
    assert_eq!(after.language_counts, Some([(lang("de"), 1), (lang("es"), 1), (lang("fr"), 1)].into()));
    assert_eq!(assert_counts_match_rows(&store, &session).await, [(lang("de"), 1), (lang("es"), 1), (lang("fr"), 1)]);
    // Choosing the language it has changes nothing.
    assert_eq!(store.change_language("b", lang("es")).await.expect("unchanged").session, None);

    // A refresh in the same language takes the place and changes no count...
    store.put_connection(&listener("a2", &session, "de", &store)).await.expect("row");
    let taken = store.take_listener_place("a", &session, "a2", lang("de")).await.expect("taken").expect("a place");
    assert_eq!((taken.previous.connection_id.as_str(), taken.session), ("a", None));
    assert_eq!(assert_counts_match_rows(&store, &session).await, [(lang("de"), 1), (lang("es"), 1), (lang("fr"), 1)]);
    // ...and one in another language moves the place to it.
    store.put_connection(&listener("c2", &session, "es", &store)).await.expect("row");
    let taken = store.take_listener_place("c", &session, "c2", lang("es")).await.expect("taken").expect("a place");
    let after = taken.session.expect("the counts changed");
    assert_eq!((after.listener_count, after.language_counts), (3, Some([(lang("de"), 1), (lang("es"), 2)].into())));
    assert_eq!(assert_counts_match_rows(&store, &session).await, [(lang("de"), 1), (lang("es"), 2)]);

    // Leaves, as `$disconnect` makes them: the row, then the count in the row's language.
    for connection in ["a2", "b"] {
        let left = store.delete_connection(connection).await.expect("deleted").expect("a row");
        let after = store.remove_listener(&session, left.target_language).await.expect("left").expect("present");
        assert_eq!(
            store.language_distribution(&after).await.expect("distribution"),
            after.language_counts.expect("counts")
        );
    }
    assert_eq!(assert_counts_match_rows(&store, &session).await, [(lang("es"), 1)]);
}

#[tokio::test]
async fn concurrent_joins_language_changes_and_leaves_keep_the_distribution_exact() {
    let (store, _) = store().await;
    let session = session(&store).await;
    for index in 0..30 {
        let connection = format!("first-{index:02}");
        store.put_connection(&listener(&connection, &session, "de", &store)).await.expect("row");
        store.admit_listener(&session, &connection, lang("de"), 500, no_live_check).await.expect("admitted");
    }
    // At once: 20 of them move to fr, 10 leave, and 30 newcomers join in es and it.
    let changes = join_all((0..20).map(|index| {
        let store = &store;
        async move { store.change_language(&format!("first-{index:02}"), lang("fr")).await }
    }));
    let leaves = join_all((20..30).map(|index| {
        let store = &store;
        async move {
            let left = store.delete_connection(&format!("first-{index:02}")).await.expect("deleted").expect("row");
            store.remove_listener(left.session_id.as_ref().expect("a session"), left.target_language).await
        }
    }));
    let joins = join_all((0..30).map(|index| {
        let (store, session) = (&store, &session);
        async move {
            let connection = format!("new-{index:02}");
            let language = if index % 2 == 0 { "es" } else { "it" };
            store.put_connection(&listener(&connection, session, language, store)).await.expect("row");
            store.admit_listener(session, &connection, lang(language), 500, no_live_check).await
        }
    }));
    let (changes, leaves, joins) = tokio::join!(changes, leaves, joins);
    assert!(changes.iter().all(Result::is_ok), "{changes:?}");
    assert!(leaves.iter().all(Result::is_ok), "{leaves:?}");
    assert!(joins.iter().all(Result::is_ok), "{joins:?}");
    assert_eq!(
        assert_counts_match_rows(&store, &session).await,
        [(lang("es"), 15), (lang("fr"), 20), (lang("it"), 15)]
    );
}

#[tokio::test]
async fn a_session_stored_without_language_counts_is_counted_and_read_from_its_rows() {
    let (store, clock) = store().await;
    let session = session(&store).await;
    // As sessions were stored before the per-language counts existed.
    testkit::dynamodb_client()
        .update_item()
        .table_name(&store.tables().sessions)
        .key("sessionId", aws_sdk_dynamodb::types::AttributeValue::S(session.as_str().to_owned()))
        .update_expression("REMOVE languageCounts")
        .send()
        .await
        .expect("written");
    for (connection, language) in [("a", "de"), ("b", "de"), ("c", "fr")] {
        store.put_connection(&listener(connection, &session, language, &store)).await.expect("row");
        let admitted =
            store.admit_listener(&session, connection, lang(language), 3, no_live_check).await.expect("admitted");
        assert_eq!(admitted.language_counts, None, "counted in the total alone");
    }
    let stored = store.get_session(&session).await.expect("read").expect("present");
    assert_eq!((stored.listener_count, stored.language_counts.as_ref()), (3, None));
    let distribution = store.language_distribution(&stored).await.expect("from the rows");
    assert_eq!(distribution, [(lang("de"), 2), (lang("fr"), 1)].into());

    // Language changes and leaves work as ever.
    let change = store.change_language("b", lang("fr")).await.expect("changed");
    let after = change.session.expect("present");
    assert_eq!(store.language_distribution(&after).await.expect("rows"), [(lang("de"), 1), (lang("fr"), 2)].into());
    store.delete_connection("a").await.expect("deleted");
    let after = store.remove_listener(&session, Some(lang("de"))).await.expect("left").expect("present");
    assert_eq!((after.listener_count, after.language_counts.as_ref()), (2, None));

    // A recount (the count says full) gives the session its per-language counts.
    store.put_connection(&listener("gone", &session, "it", &store)).await.expect("row");
    store.add_listener(&session, lang("it"), 3).await.expect("counted");
    store.delete_connection("gone").await.expect("its $disconnect never came");
    // The index is trusted once no join was counted for a while.
    clock.advance_seconds(session_core::store::sessions::INDEX_LAG_SECONDS);
    store.put_connection(&listener("d", &session, "es", &store)).await.expect("row");
    let admitted =
        store.admit_listener(&session, "d", lang("es"), 3, no_live_check).await.expect("admitted after a recount");
    assert_eq!(admitted.listener_count, 3);
    assert_eq!(admitted.language_counts, Some([(lang("es"), 1), (lang("fr"), 2)].into()));
    assert_eq!(assert_counts_match_rows(&store, &session).await, [(lang("es"), 1), (lang("fr"), 2)]);
}

//! What the store's test files share: a store over fresh tables on the local endpoint, a
//! session, and listener rows as `$connect` writes them.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use session_core::ids::SessionId;
use session_core::model::{Connection, Role};
use session_core::store::{ManualClock, NewSession, Store, TableNames};
use session_core::validation::{LanguageCode, QualityTier};
use std::sync::Arc;

/// The test clock's start.
pub(crate) const START: i64 = 1_764_000_000_000;

/// A store over fresh tables, reached through `client`, on a manual clock.
pub(crate) async fn store_with(client: aws_sdk_dynamodb::Client) -> (Store, Arc<ManualClock>) {
    let tables = testkit::create_tables(&client).await;
    let names = TableNames::from_lookup(tables.env_lookup()).expect("every table has a name");
    let clock = ManualClock::starting_at(START);
    (Store::new(client, names).with_clock(clock.clone()), clock)
}

/// A store over fresh tables on the local endpoint.
pub(crate) async fn store() -> (Store, Arc<ManualClock>) {
    store_with(testkit::dynamodb_client()).await
}

pub(crate) fn id(text: &str) -> SessionId {
    SessionId::parse(text).expect("test id")
}

pub(crate) fn lang(code: &str) -> LanguageCode {
    LanguageCode::parse(code).expect("test language")
}

pub(crate) fn new_session() -> NewSession {
    NewSession {
        speaker_user_id: "user-1".into(),
        source_language: lang("en"),
        quality_tier: QualityTier::Premium,
        lifetime_seconds: 3600,
    }
}

/// A new live session's id.
pub(crate) async fn session(store: &Store) -> SessionId {
    store.create_session(new_session()).await.expect("created").session_id
}

/// A listener row of `session` in `language`, connected now, not yet counted.
pub(crate) fn listener(connection_id: &str, session: &SessionId, language: &str, store: &Store) -> Connection {
    Connection {
        connection_id: connection_id.into(),
        session_id: Some(session.clone()),
        role: Role::Listener,
        target_language: Some(lang(language)),
        user_id: None,
        connected_at: store.clock().now_millis(),
        source_ip: "198.51.100.7".into(),
        ttl: store.clock().now_seconds() + 7200,
        session_expires_at: None,
        counted: false,
    }
}

//! DynamoDB persistence of sessions, connections and rate limits.
//!
//! One [`Store`] holds a client, the physical table names and a clock. Every operation
//! returns a [`StoreError`] that says what failed; a missing item is `Ok(None)` wherever
//! absence is a normal answer. Rows whose TTL attribute is in the past are treated as absent
//! everywhere: DynamoDB deletes expired items only eventually (and moto never does).
//!
//! - [`sessions`]: creation with a conditional write and id retry, status transitions,
//!   atomic listener counts, in total and per target language, that never go below zero
//!   (and are corrected against the live listener rows when they say a session is full),
//!   broadcast state;
//! - [`connections`]: rows per connection and the fan-out index (by session and audience);
//! - [`rate_limits`]: fixed windows with atomic counters.

pub mod connections;
mod item;
pub mod rate_limits;
pub mod sessions;

pub use connections::{LanguageChange, ListenerPage, PageToken, TakenPlace};
pub use rate_limits::{RateDecision, RateLimitKey, RateRule};
pub use sessions::{BroadcastPatch, EndStart, NewSession};

use crate::ids::{IdGenerator, SessionId};
use crate::model::{EpochMillis, EpochSeconds, SessionStatus};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use contract::TableId;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Physical names of the service's tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    pub sessions: String,
    pub connections: String,
    pub rate_limits: String,
}

impl TableNames {
    /// Resolves each table's name through `lookup`, by the variable the contract declares for
    /// it (functions use `config::FunctionEnv::table_names`, which also checks declarations).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<TableNames, MissingEnv> {
        let name = |id: TableId| {
            let variable = contract::CONTRACT.table(id).name_env;
            lookup(variable).filter(|value| !value.is_empty()).ok_or(MissingEnv(variable))
        };
        Ok(TableNames {
            sessions: name(TableId::Sessions)?,
            connections: name(TableId::Connections)?,
            rate_limits: name(TableId::RateLimits)?,
        })
    }

    /// The physical name of a table.
    pub fn get(&self, id: TableId) -> &str {
        match id {
            TableId::Sessions => &self.sessions,
            TableId::Connections => &self.connections,
            TableId::RateLimits => &self.rate_limits,
        }
    }
}

/// A table's name variable has no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no name for the table in {0}")]
pub struct MissingEnv(pub &'static str);

/// The time source of the store (expiry checks, rate-limit windows, timestamps).
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_millis(&self) -> EpochMillis;

    fn now_seconds(&self) -> EpochSeconds {
        self.now_millis().div_euclid(1000)
    }
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> EpochMillis {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to, for tests.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn starting_at(millis: EpochMillis) -> Arc<ManualClock> {
        Arc::new(ManualClock(AtomicI64::new(millis)))
    }

    pub fn advance_seconds(&self, seconds: i64) {
        self.0.fetch_add(seconds * 1000, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> EpochMillis {
        self.0.load(Ordering::SeqCst)
    }
}

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// DynamoDB refused or could not be reached; `unavailable` when it was throttling,
    /// failing (5xx), timing out or unreachable (`aws_errors::is_unavailable`).
    #[error("DynamoDB {operation} on {table} failed: {message}")]
    Aws { operation: &'static str, table: String, message: String, unavailable: bool },
    /// An item does not have the shape the store writes.
    #[error("item {key} in {table} is malformed: {problem}")]
    Corrupt { table: String, key: String, problem: String },
    #[error("session {0} does not exist")]
    SessionNotFound(SessionId),
    #[error("session {id} cannot go from {from} to {to}", from = from.as_str(), to = to.as_str())]
    InvalidTransition { id: SessionId, from: SessionStatus, to: SessionStatus },
    #[error("session {id} has ended")]
    SessionEnded { id: SessionId },
    #[error("session {id} is full ({cap} listeners)")]
    SessionFull { id: SessionId, cap: u32 },
    #[error("no free session id after {attempts} attempts")]
    IdsExhausted { attempts: u32 },
    #[error("connection {0} does not exist")]
    ConnectionNotFound(String),
    #[error("connection {0} is not a listener")]
    NotAListener(String),
}

impl StoreError {
    /// Whether the failure is DynamoDB's capacity or availability rather than the request
    /// (a handler answers 503 `SERVICE_UNAVAILABLE` rather than 500).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Aws { unavailable: true, .. })
    }

    fn aws<E>(operation: &'static str, table: &str, error: SdkError<E, HttpResponse>) -> StoreError
    where
        E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + Send + Sync + 'static,
    {
        StoreError::Aws {
            operation,
            table: table.to_owned(),
            unavailable: crate::aws_errors::is_unavailable(&error),
            message: DisplayErrorContext(&error).to_string(),
        }
    }
}

/// Whether an SDK error is DynamoDB's "the condition of this write was false".
fn is_condition_failed<E, R>(error: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    error
        .as_service_error()
        .and_then(|service| service.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

/// Sends a conditional `UpdateItem` to `table`: whether its condition held (and so it wrote).
async fn write_if(request: UpdateItemFluentBuilder, table: &str) -> Result<bool, StoreError> {
    match request.send().await {
        Ok(_) => Ok(true),
        Err(error) if is_condition_failed(&error) => Ok(false),
        Err(error) => Err(StoreError::aws("UpdateItem", table, error)),
    }
}

/// When an `UpdateItem` failed because its condition was false, the item as it was: `Some`
/// of the item (`None` if there was none), provided the request asked for it with
/// `ReturnValuesOnConditionCheckFailure::AllOld`. `None` for any other failure.
fn item_failing_update<R>(error: &SdkError<UpdateItemError, R>) -> Option<Option<&item::Item>> {
    match error.as_service_error()? {
        UpdateItemError::ConditionalCheckFailedException(failed) => {
            Some(failed.item.as_ref().filter(|item| !item.is_empty()))
        }
        _ => None,
    }
}

/// Sessions, connections and rate limits in DynamoDB.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    tables: TableNames,
    clock: Arc<dyn Clock>,
    ids: IdGenerator,
    page_size: i32,
}

/// How many rows one fan-out query page returns by default.
pub const DEFAULT_PAGE_SIZE: i32 = 500;

impl Store {
    pub fn new(client: Client, tables: TableNames) -> Store {
        Store {
            client,
            tables,
            clock: Arc::new(SystemClock),
            ids: IdGenerator::default(),
            page_size: DEFAULT_PAGE_SIZE,
        }
    }

    /// The same store reading time from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Store {
        self.clock = clock;
        self
    }

    /// The same store querying the fan-out index `page_size` rows at a time.
    pub fn with_page_size(mut self, page_size: i32) -> Store {
        self.page_size = page_size.max(1);
        self
    }

    pub fn tables(&self) -> &TableNames {
        &self.tables
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }
}

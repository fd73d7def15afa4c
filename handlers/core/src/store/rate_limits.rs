//! Rate limits: fixed windows with atomic counters, one row per `{operation}:{kind}:{value}`.
//!
//! A row holds the start of its current window and the hits counted in it. A hit in the
//! current window increments the counter if it is below the limit; a hit after the window
//! resets the row to a new window with one hit. Both are conditional writes, so concurrent
//! hits are counted exactly and never exceed the limit. Rows expire (TTL) one window after
//! their window ends.

use super::item::{Reader, n, s};
use super::{Store, StoreError, is_condition_failed};
use crate::model::EpochSeconds;
use aws_sdk_dynamodb::types::ReturnValue;
use contract::tables::rate_limits::{IDENTIFIER, TTL};

const WINDOW_START: &str = "windowStart";
const HITS: &str = "hits";

/// How many write attempts one hit may take when racing with other hits.
const ATTEMPTS: usize = 4;

/// What is being limited, and for whom: `{operation}:{kind}:{value}`, for example
/// `connect:ip:203.0.113.9` or `createSession:user:abc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitKey(String);

impl RateLimitKey {
    pub fn new(operation: &str, kind: &str, value: &str) -> RateLimitKey {
        RateLimitKey(format!("{operation}:{kind}:{value}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// At most `limit` hits per `window_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateRule {
    pub limit: u32,
    pub window_seconds: u32,
}

/// The answer to one hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Counted; `remaining` more hits fit in this window.
    Allowed { remaining: u32 },
    /// Refused; the window ends in `retry_after` seconds.
    Limited { retry_after: u64 },
}

impl Store {
    /// Counts one hit against `key` and says whether it is within `rule`.
    pub async fn hit_rate_limit(&self, key: &RateLimitKey, rule: RateRule) -> Result<RateDecision, StoreError> {
        let now = self.clock.now_seconds();
        let window_length = EpochSeconds::from(rule.window_seconds.max(1));
        let window = now - now.rem_euclid(window_length);
        let window_end = window + window_length;
        if rule.limit == 0 {
            return Ok(RateDecision::Limited { retry_after: (window_end - now) as u64 });
        }
        for _ in 0..ATTEMPTS {
            if let Some(hits) = self.count_in_window(key, window, rule.limit).await? {
                return Ok(RateDecision::Allowed { remaining: rule.limit.saturating_sub(hits) });
            }
            if self.start_window(key, window, window_end + window_length).await? {
                return Ok(RateDecision::Allowed { remaining: rule.limit - 1 });
            }
            // Another hit started this window between our two writes; count again.
        }
        match self.current_window(key).await? {
            Some(current) if current >= window => {
                Ok(RateDecision::Limited { retry_after: (window_end - now).max(1) as u64 })
            }
            _ => Err(StoreError::Aws {
                operation: "UpdateItem",
                table: self.tables.rate_limits.clone(),
                message: format!("could not count a hit on {} after {ATTEMPTS} attempts", key.as_str()),
                throttled: true,
            }),
        }
    }

    /// Increments the counter if the row is in `window` and below `limit`; the new count, or
    /// `None` if the condition did not hold.
    async fn count_in_window(
        &self,
        key: &RateLimitKey,
        window: EpochSeconds,
        limit: u32,
    ) -> Result<Option<u32>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.rate_limits)
            .key(IDENTIFIER, s(key.as_str()))
            .update_expression("ADD #hits :one")
            .condition_expression("#window = :window AND #hits < :limit")
            .expression_attribute_names("#window", WINDOW_START)
            .expression_attribute_names("#hits", HITS)
            .expression_attribute_values(":window", n(window))
            .expression_attribute_values(":limit", n(limit))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(output) => {
                let attributes = output.attributes.unwrap_or_default();
                let reader = Reader { item: &attributes, table: &self.tables.rate_limits, key: key.as_str() };
                reader.number(HITS).map(Some)
            }
            Err(error) if is_condition_failed(&error) => Ok(None),
            Err(error) => Err(StoreError::aws("UpdateItem", &self.tables.rate_limits, error)),
        }
    }

    /// Starts `window` with one hit if the row is absent or in an older window; whether it did.
    async fn start_window(
        &self,
        key: &RateLimitKey,
        window: EpochSeconds,
        expires: EpochSeconds,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.rate_limits)
            .key(IDENTIFIER, s(key.as_str()))
            .update_expression("SET #window = :window, #hits = :one, #ttl = :ttl")
            .condition_expression("attribute_not_exists(#id) OR #window < :window")
            .expression_attribute_names("#id", IDENTIFIER)
            .expression_attribute_names("#window", WINDOW_START)
            .expression_attribute_names("#hits", HITS)
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":window", n(window))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":ttl", n(expires))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if is_condition_failed(&error) => Ok(false),
            Err(error) => Err(StoreError::aws("UpdateItem", &self.tables.rate_limits, error)),
        }
    }

    async fn current_window(&self, key: &RateLimitKey) -> Result<Option<EpochSeconds>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.rate_limits)
            .key(IDENTIFIER, s(key.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| StoreError::aws("GetItem", &self.tables.rate_limits, error))?;
        let item = output.item.unwrap_or_default();
        Reader { item: &item, table: &self.tables.rate_limits, key: key.as_str() }.opt_number(WINDOW_START)
    }
}

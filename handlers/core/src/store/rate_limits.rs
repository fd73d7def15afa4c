//! Rate limits: fixed windows with atomic counters, one row per `{operation}:{kind}:{value}`.
//!
//! A row holds the start of its current window and the hits counted in it. A hit in the
//! current window increments the counter if it is below the limit; a hit after the window
//! resets the row to a new window with one hit. Both are conditional writes, so concurrent
//! hits are counted exactly and never exceed the limit. Rows expire (TTL) one window after
//! their window ends.
//!
//! A rule may also limit **misses**: hits that turned out to be for nothing (a handshake for a
//! session that does not exist). They are counted in the same row and window
//! ([`Store::record_rate_limit_miss`]), and a row with too many misses refuses every further hit
//! in its window, in the same conditional write that counts hits: so once an address is cut
//! off, each of its attempts costs that one write and nothing else.
//!
//! A refused increment returns the row as it was (`ReturnValuesOnConditionCheckFailure`), so
//! a hit over the limit costs one call: the row shows the window is full, and that is the
//! answer. Only a row that is absent or from an older window takes a second write.

use super::item::{Reader, n, s};
use super::{Store, StoreError, item_failing_update, write_if};
use crate::model::EpochSeconds;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use contract::tables::rate_limits::{IDENTIFIER, TTL};

const WINDOW_START: &str = "windowStart";
const HITS: &str = "hits";
const MISSES: &str = "misses";

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

/// At most `limit` hits per `window_seconds`, and, when `miss_limit` is set, no further hit
/// once that many misses were recorded in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateRule {
    pub limit: u32,
    pub window_seconds: u32,
    pub miss_limit: Option<u32>,
}

impl RateRule {
    /// At most `limit` hits per `window_seconds`.
    pub const fn new(limit: u32, window_seconds: u32) -> RateRule {
        RateRule { limit, window_seconds, miss_limit: None }
    }

    /// The same rule, refusing every hit once `miss_limit` misses were recorded in a window.
    pub const fn with_miss_limit(self, miss_limit: u32) -> RateRule {
        RateRule { miss_limit: Some(miss_limit), ..self }
    }

    /// The start of the window `now` is in, and its end.
    fn window_at(self, now: EpochSeconds) -> (EpochSeconds, EpochSeconds) {
        let length = EpochSeconds::from(self.window_seconds.max(1));
        let start = now - now.rem_euclid(length);
        (start, start + length)
    }
}

/// What one conditional increment found.
enum Count {
    /// Counted; the hits in the window now.
    Counted(u32),
    /// Not counted: the row's window is `window` and full (or is a later one).
    Full,
    /// Not counted: there is no row, or its window is older; a new window must start.
    Stale,
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
        let (window, window_end) = rule.window_at(now);
        let window_length = window_end - window;
        if rule.limit == 0 || rule.miss_limit == Some(0) {
            return Ok(RateDecision::Limited { retry_after: (window_end - now) as u64 });
        }
        let limited = RateDecision::Limited { retry_after: (window_end - now).max(1) as u64 };
        for _ in 0..ATTEMPTS {
            match self.count_in_window(key, window, rule).await? {
                Count::Counted(hits) => {
                    return Ok(RateDecision::Allowed { remaining: rule.limit.saturating_sub(hits) });
                }
                // The window is full (or a clock ahead of ours already started the next one).
                Count::Full => return Ok(limited),
                Count::Stale => {}
            }
            if self.start_window(key, window, window_end + window_length).await? {
                return Ok(RateDecision::Allowed { remaining: rule.limit - 1 });
            }
            // Another hit started this window between our two writes; count again.
        }
        match self.current_window(key).await? {
            Some(current) if current >= window => Ok(limited),
            _ => Err(StoreError::Aws {
                operation: "UpdateItem",
                table: self.tables.rate_limits.clone(),
                message: format!("could not count a hit on {} after {ATTEMPTS} attempts", key.as_str()),
                unavailable: true,
            }),
        }
    }

    /// Records a miss against `key` in the current window of `rule` (one write). A miss in a
    /// window that has ended meanwhile, or that no hit opened, is not recorded: it would count
    /// against nobody.
    pub async fn record_rate_limit_miss(&self, key: &RateLimitKey, rule: RateRule) -> Result<(), StoreError> {
        let (window, _) = rule.window_at(self.clock.now_seconds());
        let request = self
            .client
            .update_item()
            .table_name(&self.tables.rate_limits)
            .key(IDENTIFIER, s(key.as_str()))
            .update_expression("ADD #misses :one")
            .condition_expression("#window = :window")
            .expression_attribute_names("#window", WINDOW_START)
            .expression_attribute_names("#misses", MISSES)
            .expression_attribute_values(":window", n(window))
            .expression_attribute_values(":one", n(1));
        write_if(request, &self.tables.rate_limits).await.map(drop)
    }

    /// Increments the counter if the row is in `window`, below the rule's limit and below its
    /// miss limit. When the condition does not hold, the row as it was (returned with the
    /// refusal) says why.
    async fn count_in_window(
        &self,
        key: &RateLimitKey,
        window: EpochSeconds,
        rule: RateRule,
    ) -> Result<Count, StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.tables.rate_limits)
            .key(IDENTIFIER, s(key.as_str()))
            .update_expression("ADD #hits :one")
            .condition_expression("#window = :window AND #hits < :limit")
            .expression_attribute_names("#window", WINDOW_START)
            .expression_attribute_names("#hits", HITS)
            .expression_attribute_values(":window", n(window))
            .expression_attribute_values(":limit", n(rule.limit))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(miss_limit) = rule.miss_limit {
            request = request
                .condition_expression(
                    "#window = :window AND #hits < :limit AND (attribute_not_exists(#misses) OR #misses < :misses)",
                )
                .expression_attribute_names("#misses", MISSES)
                .expression_attribute_values(":misses", n(miss_limit));
        }
        let result = request.send().await;
        let error = match result {
            Ok(output) => {
                let attributes = output.attributes.unwrap_or_default();
                let reader = Reader { item: &attributes, table: &self.tables.rate_limits, key: key.as_str() };
                return reader.number(HITS).map(Count::Counted);
            }
            Err(error) => error,
        };
        let Some(current) = item_failing_update(&error) else {
            return Err(StoreError::aws("UpdateItem", &self.tables.rate_limits, error));
        };
        let Some(current) = current else {
            return Ok(Count::Stale);
        };
        let reader = Reader { item: current, table: &self.tables.rate_limits, key: key.as_str() };
        match reader.opt_number::<EpochSeconds>(WINDOW_START)? {
            Some(current_window) if current_window >= window => Ok(Count::Full),
            _ => Ok(Count::Stale),
        }
    }

    /// Starts `window` with one hit if the row is absent or in an older window; whether it did.
    async fn start_window(
        &self,
        key: &RateLimitKey,
        window: EpochSeconds,
        expires: EpochSeconds,
    ) -> Result<bool, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.tables.rate_limits)
            .key(IDENTIFIER, s(key.as_str()))
            .update_expression("SET #window = :window, #hits = :one, #ttl = :ttl REMOVE #misses")
            .condition_expression("attribute_not_exists(#id) OR #window < :window")
            .expression_attribute_names("#id", IDENTIFIER)
            .expression_attribute_names("#window", WINDOW_START)
            .expression_attribute_names("#hits", HITS)
            .expression_attribute_names("#misses", MISSES)
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":window", n(window))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":ttl", n(expires));
        write_if(request, &self.tables.rate_limits).await
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

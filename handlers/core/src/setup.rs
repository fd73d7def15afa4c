//! What every function builds once per cold start: AWS configuration from the standard
//! credential chain, with the service's timeout budget, the store over its tables, and the
//! `@connections` notifier.
//!
//! # The timeout budget
//!
//! Both stages give every function 10 s. No AWS call may use that up: a DynamoDB or Kinesis
//! call that hangs must fail in time for the function to answer 503 `SERVICE_UNAVAILABLE`
//! (a handshake refused with 503, a frame answered with an `error` frame and `retryAfter`)
//! rather than be killed by Lambda, which clients would see as 502 or `Internal server error`.
//!
//! - connecting: [`CONNECT_TIMEOUT`] (1 s; a connection inside a region takes milliseconds);
//! - one attempt: [`ATTEMPT_TIMEOUT`] (1 s; DynamoDB answers in single-digit milliseconds);
//! - one operation, retries included: [`OPERATION_TIMEOUT`] (3 s), with the SDK's standard
//!   retries ([`MAX_ATTEMPTS`] attempts, jittered backoff) for throttling, 5xx and timeouts.
//!
//! So the first call of a request that meets an outage fails within 3 s, and the request is
//! answered within 3 s plus the calls that went before it. A request that meets a slow but
//! working table (each call under 1 s) finishes: the longest path, a listener's handshake that
//! finds its session full, makes about eight calls in sequence.
//!
//! The writes that change a listener count are the exception: a retry of an attempt that
//! timed out could count a listener twice, so they are sent once ([`sent_once`], one attempt
//! with the whole 3 s) and resent only when throttled (`store::sessions`).
//!
//! `@connections` posts get the same connect and attempt timeouts but no SDK retries: the
//! fan-out retries them itself, with a budget of its own (`fanout`), so that a throttled
//! fan-out is counted and logged.

use crate::config::{ConfigError, FunctionEnv};
use crate::fanout::Notifier;
use crate::store::Store;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use std::time::Duration;

/// How long connecting to an AWS endpoint may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one attempt of an AWS call may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one AWS call may take, its retries included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(3);
/// How many attempts one AWS call makes at most.
pub const MAX_ATTEMPTS: u32 = 3;

/// The shared AWS configuration (credentials, region) from the standard chain, with the
/// timeout budget.
pub async fn aws_config() -> aws_config::SdkConfig {
    with_budget(aws_config::defaults(aws_config::BehaviorVersion::latest())).load().await
}

/// `loader` with the service's timeouts and retries.
pub fn with_budget(loader: aws_config::ConfigLoader) -> aws_config::ConfigLoader {
    loader.timeout_config(timeouts()).retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
}

/// The configuration of a call that must not be applied twice (a count's write): no SDK
/// retries, and so one attempt may use the whole operation budget.
pub fn sent_once() -> aws_sdk_dynamodb::config::Builder {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(OPERATION_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    aws_sdk_dynamodb::config::Builder::default().retry_config(RetryConfig::disabled()).timeout_config(timeouts)
}

fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The store over the tables the function's environment names.
pub fn store(env: &FunctionEnv, sdk: &aws_config::SdkConfig) -> Result<Store, ConfigError> {
    Ok(Store::new(aws_sdk_dynamodb::Client::new(sdk), env.table_names()?))
}

/// The `@connections` notifier, with the configured endpoint override if any. Its clients do
/// not retry: the fan-out does (`fanout`).
pub fn notifier(env: &FunctionEnv, sdk: &aws_config::SdkConfig) -> Result<Notifier, ConfigError> {
    let base = aws_sdk_apigatewaymanagement::config::Builder::from(sdk).build();
    Ok(Notifier::new(base, env.management_endpoint()?))
}

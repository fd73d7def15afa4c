//! Replies and fan-out through API Gateway's `@connections` management API.
//!
//! Routes are one-way (AWS_FACTS 7): every reply is a `PostToConnection`. The endpoint is
//! `https://{domainName}/{stage}` from the event (AWS_FACTS 8), or the configured override
//! (custom domains, the local stack).
//!
//! This module only posts, reads and closes connections; what a gone connection means for the
//! store (its row, its session's count, a speaker's grace period) is `lifecycle`'s.
//!
//! - **Concurrency.** A fan-out keeps [`DEFAULT_CONCURRENCY`] posts in flight. At AWS's
//!   typical 20 ms per post, a session at its cap of 500 listeners is told in
//!   8 rounds, about 160 ms, within the 250 ms this service allows itself; the SDK's HTTP
//!   client keeps as many connections open to the endpoint.
//! - **Retries.** A post answered with 429 `LimitExceededException` (the account's management
//!   API rate, AWS_FACTS 18), a 5xx, or a timeout is retried up to [`POST_ATTEMPTS`] times in
//!   all, after a full-jitter backoff from [`BACKOFF_BASE`] doubling up to [`BACKOFF_CAP`]
//!   (about 0.7 s at most for one post). The SDK client itself does not retry (`setup`), so
//!   every retry is counted here. What still fails is in the report, and logged.
//! - **410 Gone** means the connection is closed, or not yet open (AWS_FACTS 9): it is reported
//!   as gone, never retried.

use crate::model::Connection;
use crate::protocol::ServerFrame;
use aws_sdk_apigatewaymanagement::config::http::HttpResponse;
use aws_sdk_apigatewaymanagement::config::retry::RetryConfig;
use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_sdk_apigatewaymanagement::{Client, Config};
use futures::stream::{self, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many posts one fan-out has in flight at once.
pub const DEFAULT_CONCURRENCY: usize = 64;
/// How many times one post is tried at most when `@connections` throttles or fails.
pub const POST_ATTEMPTS: u32 = 4;
/// The first retry waits up to this long (full jitter); each later one up to twice as long.
pub const BACKOFF_BASE: Duration = Duration::from_millis(50);
/// No single wait is longer than this.
pub const BACKOFF_CAP: Duration = Duration::from_millis(400);

/// What happened to one post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// The connection is closed, or still in its handshake (410).
    Gone,
}

/// A post that failed for another reason than Gone, after its retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("posting to connection {connection_id} failed: {message}")]
pub struct NotifyError {
    pub connection_id: String,
    pub message: String,
}

/// What a fan-out did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BroadcastReport {
    pub delivered: usize,
    /// Recipients that answered 410, as they were given.
    pub gone: Vec<Connection>,
    /// Recipients a post failed for after its retries; they were left as they are.
    pub failed: Vec<NotifyError>,
    /// Retries made (posts throttled or failed, then tried again).
    pub retried: usize,
    /// How long the posting took.
    pub elapsed: Duration,
}

impl BroadcastReport {
    /// Logs the fan-out as one structured line: `recipients`, `delivered`, `gone`, `failed`,
    /// `retried`, the store's `query_ms` that found the recipients, the posting's own
    /// `post_ms`, and `elapsed_ms` for both. Failures are a warning, with the first error.
    pub fn log(&self, what: &str, query: Duration) {
        let recipients = self.delivered + self.gone.len() + self.failed.len();
        let (query_ms, post_ms) = (query.as_secs_f64() * 1e3, self.elapsed.as_secs_f64() * 1e3);
        let elapsed_ms = query_ms + post_ms;
        let (delivered, gone, failed, retried) = (self.delivered, self.gone.len(), self.failed.len(), self.retried);
        match self.failed.first() {
            None => tracing::info!(
                what,
                recipients,
                delivered,
                gone,
                failed,
                retried,
                query_ms,
                post_ms,
                elapsed_ms,
                "fan-out done"
            ),
            Some(first) => tracing::warn!(
                what, recipients, delivered, gone, failed, retried, query_ms, post_ms, elapsed_ms, error = %first,
                "fan-out done"
            ),
        }
    }
}

/// Builds `@connections` clients per endpoint from one base configuration, once each.
#[derive(Debug, Clone)]
pub struct Notifier {
    base: Config,
    endpoint_override: Option<String>,
    concurrency: usize,
    clients: Arc<Mutex<HashMap<String, Client>>>,
}

impl Notifier {
    /// `base` carries region, credentials, timeouts and interceptors; `endpoint_override`,
    /// when set, replaces the endpoint derived from events. The clients made from it never
    /// retry on their own: the fan-out retries, and counts it.
    pub fn new(base: Config, endpoint_override: Option<String>) -> Notifier {
        let base = base.to_builder().retry_config(RetryConfig::disabled()).build();
        Notifier { base, endpoint_override, concurrency: DEFAULT_CONCURRENCY, clients: Arc::default() }
    }

    /// The same notifier with at most `concurrency` posts in flight per fan-out.
    pub fn with_concurrency(mut self, concurrency: usize) -> Notifier {
        self.concurrency = concurrency.max(1);
        self
    }

    /// The management endpoint for an event's domain and stage: the override if configured,
    /// else `https://{domain}/{stage}`.
    pub fn endpoint(&self, domain_name: &str, stage: &str) -> String {
        match &self.endpoint_override {
            Some(endpoint) => endpoint.clone(),
            None => format!("https://{domain_name}/{stage}"),
        }
    }

    /// The connections of the API an event came from.
    pub fn for_event(&self, domain_name: &str, stage: &str) -> Connections {
        self.at(&self.endpoint(domain_name, stage))
    }

    /// The connections behind the configured endpoint (functions that get no WebSocket
    /// event, such as the HTTP API, must have one configured).
    pub fn configured(&self) -> Option<Connections> {
        self.endpoint_override.as_deref().map(|endpoint| self.at(endpoint))
    }

    fn at(&self, endpoint: &str) -> Connections {
        let mut clients = self.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let client = clients
            .entry(endpoint.to_owned())
            .or_insert_with(|| Client::from_conf(self.base.to_builder().endpoint_url(endpoint).build()))
            .clone();
        Connections { client, concurrency: self.concurrency }
    }
}

/// The `@connections` API of one WebSocket API stage.
#[derive(Debug, Clone)]
pub struct Connections {
    client: Client,
    concurrency: usize,
}

/// Whether a failed `@connections` call may succeed if tried again.
fn is_retryable<E: aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata>(
    error: &SdkError<E, HttpResponse>,
) -> bool {
    crate::aws_errors::is_unavailable(error)
}

fn is_gone(error: &SdkError<impl aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata, HttpResponse>) -> bool {
    error.as_service_error().and_then(|service| service.code()) == Some("GoneException")
}

fn notify_error<E>(connection_id: &str, error: &SdkError<E, HttpResponse>) -> NotifyError
where
    E: std::error::Error + Send + Sync + 'static,
{
    NotifyError {
        connection_id: connection_id.to_owned(),
        message: aws_sdk_apigatewaymanagement::error::DisplayErrorContext(error).to_string(),
    }
}

/// The wait before retry `retry` (1 for the first): full jitter, up to `BACKOFF_BASE`
/// doubled `retry - 1` times, never more than `BACKOFF_CAP`.
pub fn backoff(retry: u32) -> Duration {
    let ceiling = BACKOFF_BASE.saturating_mul(1 << retry.saturating_sub(1).min(16)).min(BACKOFF_CAP);
    ceiling.mul_f64(rand::random::<f64>())
}

impl Connections {
    /// Posts one frame to one connection, retrying throttling and failures.
    pub async fn post(&self, connection_id: &str, frame: &ServerFrame) -> Result<Delivery, NotifyError> {
        self.post_counting(connection_id, &frame.to_json_string(), &AtomicUsize::new(0)).await
    }

    /// Posts `body`, adding each retry to `retried`.
    async fn post_counting(
        &self,
        connection_id: &str,
        body: &str,
        retried: &AtomicUsize,
    ) -> Result<Delivery, NotifyError> {
        let mut attempt = 1;
        loop {
            let result = self
                .client
                .post_to_connection()
                .connection_id(connection_id)
                .data(Blob::new(body.as_bytes()))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(Delivery::Delivered),
                Err(error) if is_gone(&error) => return Ok(Delivery::Gone),
                Err(error) if attempt < POST_ATTEMPTS && is_retryable(&error) => {
                    retried.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Err(error) => return Err(notify_error(connection_id, &error)),
            }
        }
    }

    /// Whether a connection is still open (`GetConnection`; 410 Gone means closed). A row in
    /// the Connections table does not prove it: `$disconnect` may never have arrived.
    pub async fn is_open(&self, connection_id: &str) -> Result<bool, NotifyError> {
        match self.client.get_connection().connection_id(connection_id).send().await {
            Ok(_) => Ok(true),
            Err(error) if is_gone(&error) => Ok(false),
            Err(error) => Err(notify_error(connection_id, &error)),
        }
    }

    /// Asks for many connections at once whether they are open, at most `concurrency` at a
    /// time. A connection that cannot be asked counts as open: its row is the best evidence.
    pub async fn open_among<'c>(&self, candidates: &'c [Connection]) -> Vec<(&'c Connection, bool)> {
        stream::iter(candidates)
            .map(|candidate| async move {
                let open = match self.is_open(&candidate.connection_id).await {
                    Ok(open) => open,
                    Err(error) => {
                        tracing::warn!(%error, "could not ask whether a connection is open; taking its row's word");
                        true
                    }
                };
                (candidate, open)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await
    }

    /// Closes a connection; one already closed is not an error.
    pub async fn close(&self, connection_id: &str) -> Result<(), NotifyError> {
        match self.client.delete_connection().connection_id(connection_id).send().await {
            Ok(_) => Ok(()),
            Err(error) if is_gone(&error) => Ok(()),
            Err(error) => Err(notify_error(connection_id, &error)),
        }
    }

    /// Closes every connection, at most `concurrency` at a time; failures are logged.
    pub async fn close_all(&self, connection_ids: &[&str]) {
        let failures: Vec<NotifyError> = stream::iter(connection_ids)
            .map(|id| self.close(id))
            .buffer_unordered(self.concurrency)
            .filter_map(|outcome| async move { outcome.err() })
            .collect()
            .await;
        for error in failures {
            tracing::warn!(%error, "could not close a connection");
        }
    }

    /// Posts `frame` to every recipient, at most `concurrency` at a time, retrying throttled
    /// and failed posts. One failed recipient never stops the others.
    pub async fn broadcast(&self, recipients: &[Connection], frame: &ServerFrame) -> BroadcastReport {
        let started = Instant::now();
        let body = frame.to_json_string();
        let retried = AtomicUsize::new(0);
        let outcomes: Vec<(&Connection, Result<Delivery, NotifyError>)> = stream::iter(recipients)
            .map(|recipient| {
                let (body, retried) = (&body, &retried);
                async move { (recipient, self.post_counting(&recipient.connection_id, body, retried).await) }
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut report = BroadcastReport::default();
        for (recipient, outcome) in outcomes {
            match outcome {
                Ok(Delivery::Delivered) => report.delivered += 1,
                Ok(Delivery::Gone) => report.gone.push(recipient.clone()),
                Err(error) => report.failed.push(error),
            }
        }
        report.retried = retried.into_inner();
        report.elapsed = started.elapsed();
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notifier(endpoint_override: Option<&str>) -> Notifier {
        let base = Config::builder()
            .behavior_version(aws_sdk_apigatewaymanagement::config::BehaviorVersion::latest())
            .region(aws_sdk_apigatewaymanagement::config::Region::new("us-east-1"))
            .build();
        Notifier::new(base, endpoint_override.map(str::to_owned))
    }

    #[test]
    fn the_endpoint_is_https_domain_and_stage() {
        let endpoint = notifier(None).endpoint("abc123.execute-api.eu-west-1.amazonaws.com", "prod");
        assert_eq!(endpoint, "https://abc123.execute-api.eu-west-1.amazonaws.com/prod");
    }

    #[test]
    fn a_configured_endpoint_wins() {
        let notifier = notifier(Some("https://ws.example.com/live"));
        assert_eq!(notifier.endpoint("abc.execute-api.eu-west-1.amazonaws.com", "prod"), "https://ws.example.com/live");
        assert!(notifier.configured().is_some());
    }

    #[test]
    fn the_session_cap_is_told_within_250_ms_at_20_ms_per_post() {
        let cap = contract::limits::MAX_LISTENERS_PER_SESSION as usize;
        let rounds = cap.div_ceil(DEFAULT_CONCURRENCY);
        assert!(rounds * 20 <= 250, "{cap} listeners take {rounds} rounds of 20 ms");
    }

    #[test]
    fn backoff_is_jittered_and_capped() {
        for retry in 1..10 {
            let wait = backoff(retry);
            assert!(wait <= BACKOFF_CAP, "retry {retry}: {wait:?}");
            assert!(wait <= BACKOFF_BASE * (1 << (retry - 1)), "retry {retry}: {wait:?}");
        }
        let waits: std::collections::BTreeSet<Duration> = (0..20).map(|_| backoff(3)).collect();
        assert!(waits.len() > 1, "the same wait every time is no jitter");
    }

    #[test]
    fn without_configuration_only_events_give_an_endpoint() {
        assert!(notifier(None).configured().is_none());
    }
}

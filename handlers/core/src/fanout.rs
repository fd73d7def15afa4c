//! Replies and fan-out through API Gateway's `@connections` management API.
//!
//! Routes are one-way (AWS_FACTS 7): every reply is a `PostToConnection`. The endpoint is
//! `https://{domainName}/{stage}` from the event (AWS_FACTS 8), or the configured override
//! (custom domains, the local stack). A connection that answers 410 Gone is closed
//! (AWS_FACTS 9): its row is deleted and, for a listener, the session's count corrected.
//! Fan-out runs with bounded concurrency, and one failed recipient never stops the others.

use crate::model::{Connection, Role};
use crate::protocol::ServerFrame;
use crate::store::Store;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_sdk_apigatewaymanagement::{Client, Config};
use futures::stream::{self, StreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How many posts one fan-out has in flight at once.
pub const DEFAULT_CONCURRENCY: usize = 32;

/// What happened to one post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// The connection is closed (410).
    Gone,
}

/// A post that failed for another reason than Gone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("posting to connection {connection_id} failed: {message}")]
pub struct NotifyError {
    pub connection_id: String,
    pub message: String,
}

/// What a fan-out did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BroadcastReport {
    pub delivered: usize,
    /// Connections that were gone; their rows were deleted.
    pub gone: Vec<String>,
    /// Connections a post failed for; they were left as they are.
    pub failed: Vec<NotifyError>,
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
    /// `base` carries region, credentials and interceptors; `endpoint_override`, when set,
    /// replaces the endpoint derived from events.
    pub fn new(base: Config, endpoint_override: Option<String>) -> Notifier {
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

impl Connections {
    /// Posts one frame to one connection.
    pub async fn post(&self, connection_id: &str, frame: &ServerFrame) -> Result<Delivery, NotifyError> {
        let result = self
            .client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(frame.to_json_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Delivery::Delivered),
            Err(error) if error.as_service_error().is_some_and(|service| service.is_gone_exception()) => {
                Ok(Delivery::Gone)
            }
            Err(error) => Err(NotifyError {
                connection_id: connection_id.to_owned(),
                message: aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&error).to_string(),
            }),
        }
    }

    /// Whether a connection is still open (`GetConnection`; 410 Gone means closed). A row in
    /// the Connections table does not prove it: `$disconnect` may never have arrived.
    pub async fn is_open(&self, connection_id: &str) -> Result<bool, NotifyError> {
        match self.client.get_connection().connection_id(connection_id).send().await {
            Ok(_) => Ok(true),
            Err(error) if error.as_service_error().is_some_and(|service| service.is_gone_exception()) => Ok(false),
            Err(error) => Err(NotifyError {
                connection_id: connection_id.to_owned(),
                message: aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&error).to_string(),
            }),
        }
    }

    /// Closes a connection; one already closed is not an error.
    pub async fn close(&self, connection_id: &str) -> Result<(), NotifyError> {
        match self.client.delete_connection().connection_id(connection_id).send().await {
            Ok(_) => Ok(()),
            Err(error) if error.as_service_error().is_some_and(|service| service.is_gone_exception()) => Ok(()),
            Err(error) => Err(NotifyError {
                connection_id: connection_id.to_owned(),
                message: aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&error).to_string(),
            }),
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

    /// Posts `frame` to every recipient, at most `concurrency` at a time. Gone recipients
    /// are forgotten: their rows are deleted and listener counts corrected.
    pub async fn broadcast(&self, store: &Store, recipients: &[Connection], frame: &ServerFrame) -> BroadcastReport {
        let outcomes: Vec<(&Connection, Result<Delivery, NotifyError>)> = stream::iter(recipients)
            .map(|recipient| async move { (recipient, self.post(&recipient.connection_id, frame).await) })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut report = BroadcastReport::default();
        let mut gone = Vec::new();
        for (recipient, outcome) in outcomes {
            match outcome {
                Ok(Delivery::Delivered) => report.delivered += 1,
                Ok(Delivery::Gone) => gone.push(recipient),
                Err(error) => {
                    tracing::warn!(%error, "fan-out post failed");
                    report.failed.push(error);
                }
            }
        }
        for recipient in gone {
            forget_gone(store, recipient).await;
            report.gone.push(recipient.connection_id.clone());
        }
        report
    }
}

/// Deletes a gone connection's row and, for a listener, corrects its session's count. Only
/// the call that actually deleted the row decrements, so a row is never counted out twice.
async fn forget_gone(store: &Store, connection: &Connection) {
    match store.delete_connection(&connection.connection_id).await {
        Ok(Some(Connection { role: Role::Listener, session_id: Some(session), target_language, .. })) => {
            if let Err(error) = store.remove_listener(&session, target_language).await {
                tracing::warn!(%error, connection = %connection.connection_id, "could not correct the listener count");
            }
        }
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(%error, connection = %connection.connection_id, "could not delete a gone connection")
        }
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
    fn without_configuration_only_events_give_an_endpoint() {
        assert!(notifier(None).configured().is_none());
    }
}

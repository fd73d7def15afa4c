//! Faults switched on at run time: the local DynamoDB endpoint made slow, unreachable or
//! throttling, and the `@connections` API answering 429, so end-to-end tests (and anyone running
//! `cargo xtask dev`) can watch the service meet an outage and recover from it.
//!
//! The functions reach DynamoDB through a proxy in front of the local endpoint
//! ([`crate::proxy`]); it reads the switch on every request. The gateway's `@connections`
//! handler reads it on every request too. Nothing else changes: Kinesis, the stack's own calls
//! (creating tables) and the ready file's `dynamodb_endpoint` go to the local endpoint directly,
//! so a test can always read the state behind the fault.
//!
//! DynamoDB faults ([`DynamoFault`]):
//!
//! - `Slow(latency)`: every request waits `latency` before it is forwarded.
//! - `Down(Outage::Refuse)`: the proxy's port stops listening (connections are refused, as from
//!   a host that is up with nothing on the port) and the connections already open are closed.
//! - `Down(Outage::Hang)`: connections are accepted and requests read, but never answered, as
//!   behind a network black hole; the caller's own timeouts are all that end them. A hung request
//!   is never forwarded, even after the fault clears (its connection is then closed), so what a
//!   caller gave up on never happens behind its back.
//! - `Throttle(rate)`: HTTP 400 with DynamoDB's `ThrottlingException` body.
//!
//! `@connections` faults ([`ConnectionsFault`]): `Throttle(rate)` answers every method (POST,
//! GET, DELETE) with 429 `LimitExceededException` (AWS_FACTS 18), before the connection id is
//! even looked at, as API Gateway's rate limit does.
//!
//! A [`Rate`] says which requests a throttle hits: all of them, the next `n` (counted per HTTP
//! request, so an SDK's retries count; the fault clears itself after the last), or a random
//! share in percent.
//!
//! Over HTTP, on the WebSocket port (`cargo xtask dev`'s `http://127.0.0.1:4510`):
//!
//! ```text
//! GET    /_local/faults    the switch and what it has done so far
//! POST   /_local/faults    {"dynamodb": FAULT, "connections": FAULT}  (either may be left out)
//! DELETE /_local/faults    everything healthy again
//!
//! FAULT: {"fault": "healthy"}
//!        {"fault": "slow", "latencyMs": 800}                       (DynamoDB only)
//!        {"fault": "refuse"} | {"fault": "hang"}                   (DynamoDB only: down)
//!        {"fault": "throttle"}                                     (every request)
//!        {"fault": "throttle", "next": 5} | {"fault": "throttle", "percent": 30}
//! ```
//!
//! Every answer is the state after the change, `{"dynamodb": FAULT, "connections": FAULT,
//! "stats": {...}}`; a change that cannot be read is 400 `{"message"}` and changes nothing.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;

/// Which requests a throttle hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// Every request.
    Always,
    /// The next `n` requests; then the fault clears itself.
    Next(u32),
    /// Each request with this probability, in percent (0 to 100).
    Percent(u8),
}

impl Rate {
    /// Whether this request is hit; counts it down for `Next`.
    fn hit(&mut self) -> bool {
        match self {
            Rate::Always => true,
            Rate::Next(0) => false,
            Rate::Next(remaining) => {
                *remaining -= 1;
                true
            }
            Rate::Percent(percent) => rand::random_range(0..100_u8) < *percent,
        }
    }

    /// Whether the rate will never hit again (`Next` ran out).
    fn spent(self) -> bool {
        self == Rate::Next(0)
    }
}

/// How the local DynamoDB endpoint misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DynamoFault {
    /// Requests are forwarded as they come.
    #[default]
    Healthy,
    /// Every request waits this long before it is forwarded.
    Slow(Duration),
    /// The endpoint cannot be reached.
    Down(Outage),
    /// HTTP 400 `ThrottlingException`, as DynamoDB answers when throughput is exceeded.
    Throttle(Rate),
}

/// How an endpoint that is down looks to its callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// Connections are refused, and open ones are closed.
    Refuse,
    /// Requests are read and never answered.
    Hang,
}

/// How the `@connections` API misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnectionsFault {
    /// Requests are served as they come.
    #[default]
    Healthy,
    /// 429 `LimitExceededException`.
    Throttle(Rate),
}

/// What the faults have done since the stack started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultStats {
    /// DynamoDB requests forwarded to the endpoint (delayed or not).
    pub dynamodb_forwarded: u64,
    /// DynamoDB requests delayed by `Slow`.
    pub dynamodb_delayed: u64,
    /// DynamoDB requests answered with `ThrottlingException`.
    pub dynamodb_throttled: u64,
    /// DynamoDB requests left unanswered by `Down(Hang)`.
    pub dynamodb_hung: u64,
    /// `@connections` requests answered with 429.
    pub connections_throttled: u64,
}

/// What the proxy does with one DynamoDB request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DynamoAction {
    Forward { delay: Option<Duration> },
    Throttle,
    Hang,
    Refuse,
}

/// The switch, shared by the proxy, the gateway and whoever flips it. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    dynamodb: watch::Sender<DynamoFault>,
    connections: Mutex<ConnectionsFault>,
    forwarded: AtomicU64,
    delayed: AtomicU64,
    throttled: AtomicU64,
    hung: AtomicU64,
    connections_throttled: AtomicU64,
}

impl Faults {
    /// Makes the local DynamoDB endpoint misbehave (or, with `Healthy`, stop misbehaving).
    pub fn set_dynamodb(&self, fault: DynamoFault) {
        self.inner.dynamodb.send_replace(fault);
    }

    /// Makes `@connections` misbehave (or, with `Healthy`, stop misbehaving).
    pub fn set_connections(&self, fault: ConnectionsFault) {
        *self.connections_fault() = fault;
    }

    /// Everything healthy again.
    pub fn clear(&self) {
        self.set_dynamodb(DynamoFault::Healthy);
        self.set_connections(ConnectionsFault::Healthy);
    }

    /// The DynamoDB fault now (a spent `Next` has become `Healthy`).
    pub fn dynamodb(&self) -> DynamoFault {
        *self.inner.dynamodb.borrow()
    }

    /// The `@connections` fault now (a spent `Next` has become `Healthy`).
    pub fn connections(&self) -> ConnectionsFault {
        *self.connections_fault()
    }

    /// What the faults have done so far.
    pub fn stats(&self) -> FaultStats {
        let inner = &self.inner;
        FaultStats {
            dynamodb_forwarded: inner.forwarded.load(Ordering::Relaxed),
            dynamodb_delayed: inner.delayed.load(Ordering::Relaxed),
            dynamodb_throttled: inner.throttled.load(Ordering::Relaxed),
            dynamodb_hung: inner.hung.load(Ordering::Relaxed),
            connections_throttled: inner.connections_throttled.load(Ordering::Relaxed),
        }
    }

    /// Changes of the DynamoDB fault, for the proxy.
    pub(crate) fn watch_dynamodb(&self) -> watch::Receiver<DynamoFault> {
        self.inner.dynamodb.subscribe()
    }

    /// Decides what happens to one DynamoDB request, and counts it.
    pub(crate) fn dynamodb_action(&self) -> DynamoAction {
        let mut action = DynamoAction::Forward { delay: None };
        self.inner.dynamodb.send_if_modified(|fault| match fault {
            DynamoFault::Healthy => false,
            DynamoFault::Slow(latency) => {
                action = DynamoAction::Forward { delay: Some(*latency) };
                false
            }
            DynamoFault::Down(Outage::Refuse) => {
                action = DynamoAction::Refuse;
                false
            }
            DynamoFault::Down(Outage::Hang) => {
                action = DynamoAction::Hang;
                false
            }
            DynamoFault::Throttle(rate) => {
                if rate.hit() {
                    action = DynamoAction::Throttle;
                }
                if rate.spent() {
                    *fault = DynamoFault::Healthy;
                    return true;
                }
                false
            }
        });
        let counter = match action {
            DynamoAction::Forward { delay: None } => &self.inner.forwarded,
            DynamoAction::Forward { delay: Some(_) } => {
                self.inner.forwarded.fetch_add(1, Ordering::Relaxed);
                &self.inner.delayed
            }
            DynamoAction::Throttle => &self.inner.throttled,
            DynamoAction::Hang => &self.inner.hung,
            DynamoAction::Refuse => return action,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        action
    }

    /// Whether this `@connections` request is throttled, and counts it.
    pub(crate) fn connections_throttled(&self) -> bool {
        let mut fault = self.connections_fault();
        let ConnectionsFault::Throttle(rate) = &mut *fault else { return false };
        let hit = rate.hit();
        if rate.spent() {
            *fault = ConnectionsFault::Healthy;
        }
        if hit {
            self.inner.connections_throttled.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    fn connections_fault(&self) -> std::sync::MutexGuard<'_, ConnectionsFault> {
        self.inner.connections.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `/_local/faults`: read, change and clear the switch over HTTP.
    pub fn router(&self) -> Router {
        Router::new().route("/_local/faults", get(read).post(change).delete(reset)).with_state(self.clone())
    }

    /// The switch as `GET /_local/faults` answers it.
    pub fn to_json(&self) -> Value {
        json!({
            "dynamodb": WireFault::from(self.dynamodb()),
            "connections": WireFault::from(self.connections()),
            "stats": self.stats(),
        })
    }
}

/// One fault as the control endpoint reads and writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireFault {
    fault: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    latency_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    percent: Option<u8>,
}

/// A change as `POST /_local/faults` takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    dynamodb: Option<WireFault>,
    connections: Option<WireFault>,
}

impl WireFault {
    fn named(fault: &str) -> WireFault {
        WireFault { fault: fault.to_owned(), ..WireFault::default() }
    }

    fn throttle(rate: Rate) -> WireFault {
        let mut wire = WireFault::named("throttle");
        match rate {
            Rate::Always => {}
            Rate::Next(n) => wire.next = Some(n),
            Rate::Percent(percent) => wire.percent = Some(percent),
        }
        wire
    }

    /// The throttle's rate; refuses fields a throttle does not take.
    fn rate(&self) -> Result<Rate, String> {
        if self.latency_ms.is_some() {
            return Err("latencyMs belongs to \"slow\" only".to_owned());
        }
        match (self.next, self.percent) {
            (None, None) => Ok(Rate::Always),
            (Some(n), None) => Ok(Rate::Next(n)),
            (None, Some(percent)) if percent <= 100 => Ok(Rate::Percent(percent)),
            (None, Some(percent)) => Err(format!("percent must be 0 to 100, not {percent}")),
            (Some(_), Some(_)) => Err("a throttle takes next or percent, not both".to_owned()),
        }
    }

    /// Refuses any field besides `fault`.
    fn bare(&self) -> Result<(), String> {
        if *self == WireFault::named(&self.fault) {
            Ok(())
        } else {
            Err(format!("\"{}\" takes no other field", self.fault))
        }
    }
}

impl From<DynamoFault> for WireFault {
    fn from(fault: DynamoFault) -> WireFault {
        match fault {
            DynamoFault::Healthy => WireFault::named("healthy"),
            DynamoFault::Slow(latency) => WireFault {
                latency_ms: Some(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX)),
                ..WireFault::named("slow")
            },
            DynamoFault::Down(Outage::Refuse) => WireFault::named("refuse"),
            DynamoFault::Down(Outage::Hang) => WireFault::named("hang"),
            DynamoFault::Throttle(rate) => WireFault::throttle(rate),
        }
    }
}

impl From<ConnectionsFault> for WireFault {
    fn from(fault: ConnectionsFault) -> WireFault {
        match fault {
            ConnectionsFault::Healthy => WireFault::named("healthy"),
            ConnectionsFault::Throttle(rate) => WireFault::throttle(rate),
        }
    }
}

impl TryFrom<&WireFault> for DynamoFault {
    type Error = String;

    fn try_from(wire: &WireFault) -> Result<DynamoFault, String> {
        match wire.fault.as_str() {
            "healthy" => wire.bare().map(|()| DynamoFault::Healthy),
            "slow" => match (wire.latency_ms, wire.next, wire.percent) {
                (Some(ms), None, None) => Ok(DynamoFault::Slow(Duration::from_millis(ms))),
                (None, _, _) => Err("\"slow\" needs latencyMs".to_owned()),
                _ => Err("\"slow\" takes latencyMs only".to_owned()),
            },
            "refuse" => wire.bare().map(|()| DynamoFault::Down(Outage::Refuse)),
            "hang" => wire.bare().map(|()| DynamoFault::Down(Outage::Hang)),
            "throttle" => wire.rate().map(DynamoFault::Throttle),
            other => Err(format!(
                "unknown DynamoDB fault {other:?}: one of \"healthy\", \"slow\", \"refuse\", \"hang\", \"throttle\""
            )),
        }
    }
}

impl TryFrom<&WireFault> for ConnectionsFault {
    type Error = String;

    fn try_from(wire: &WireFault) -> Result<ConnectionsFault, String> {
        match wire.fault.as_str() {
            "healthy" => wire.bare().map(|()| ConnectionsFault::Healthy),
            "throttle" => wire.rate().map(ConnectionsFault::Throttle),
            other => Err(format!("unknown @connections fault {other:?}: one of \"healthy\", \"throttle\"")),
        }
    }
}

fn answer(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn read(State(faults): State<Faults>) -> Response {
    answer(StatusCode::OK, &faults.to_json())
}

async fn reset(State(faults): State<Faults>) -> Response {
    faults.clear();
    answer(StatusCode::OK, &faults.to_json())
}

async fn change(State(faults): State<Faults>, body: axum::body::Bytes) -> Response {
    let refused = |message: String| answer(StatusCode::BAD_REQUEST, &json!({ "message": message }));
    let change: Change = match serde_json::from_slice(&body) {
        Ok(change) => change,
        Err(error) => return refused(format!("not a fault change: {error}")),
    };
    // Both are read before either is applied, so a refused change changes nothing.
    let dynamodb = match change.dynamodb.as_ref().map(DynamoFault::try_from).transpose() {
        Ok(fault) => fault,
        Err(message) => return refused(format!("dynamodb: {message}")),
    };
    let connections = match change.connections.as_ref().map(ConnectionsFault::try_from).transpose() {
        Ok(fault) => fault,
        Err(message) => return refused(format!("connections: {message}")),
    };
    if let Some(fault) = dynamodb {
        faults.set_dynamodb(fault);
    }
    if let Some(fault) = connections {
        faults.set_connections(fault);
    }
    answer(StatusCode::OK, &faults.to_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(value: Value) -> WireFault {
        serde_json::from_value(value).expect("a wire fault")
    }

    #[test]
    fn next_hits_that_many_requests_then_clears_itself() {
        let faults = Faults::default();
        faults.set_connections(ConnectionsFault::Throttle(Rate::Next(2)));
        assert!(faults.connections_throttled());
        assert!(faults.connections_throttled());
        assert_eq!(faults.connections(), ConnectionsFault::Healthy);
        assert!(!faults.connections_throttled());
        assert_eq!(faults.stats().connections_throttled, 2);

        faults.set_dynamodb(DynamoFault::Throttle(Rate::Next(1)));
        assert_eq!(faults.dynamodb_action(), DynamoAction::Throttle);
        assert_eq!(faults.dynamodb(), DynamoFault::Healthy);
        assert_eq!(faults.dynamodb_action(), DynamoAction::Forward { delay: None });
        assert_eq!(faults.stats().dynamodb_throttled, 1);
        assert_eq!(faults.stats().dynamodb_forwarded, 1);
    }

    #[test]
    fn percent_bounds_are_exact() {
        let faults = Faults::default();
        faults.set_connections(ConnectionsFault::Throttle(Rate::Percent(0)));
        assert!((0..200).all(|_| !faults.connections_throttled()));
        faults.set_connections(ConnectionsFault::Throttle(Rate::Percent(100)));
        assert!((0..200).all(|_| faults.connections_throttled()));
    }

    #[test]
    fn every_fault_reads_back_as_written() {
        let dynamodb = [
            DynamoFault::Healthy,
            DynamoFault::Slow(Duration::from_millis(250)),
            DynamoFault::Down(Outage::Refuse),
            DynamoFault::Down(Outage::Hang),
            DynamoFault::Throttle(Rate::Always),
            DynamoFault::Throttle(Rate::Next(3)),
            DynamoFault::Throttle(Rate::Percent(40)),
        ];
        for fault in dynamodb {
            assert_eq!(DynamoFault::try_from(&WireFault::from(fault)), Ok(fault));
        }
        for fault in [ConnectionsFault::Healthy, ConnectionsFault::Throttle(Rate::Next(7))] {
            assert_eq!(ConnectionsFault::try_from(&WireFault::from(fault)), Ok(fault));
        }
        assert_eq!(
            DynamoFault::try_from(&wire(json!({"fault": "slow", "latencyMs": 5}))),
            Ok(DynamoFault::Slow(Duration::from_millis(5)))
        );
    }

    #[test]
    fn unreadable_faults_say_why() {
        let refused = |value: Value| DynamoFault::try_from(&wire(value)).expect_err("refused");
        assert!(refused(json!({"fault": "melt"})).contains("\"hang\""));
        assert!(refused(json!({"fault": "slow"})).contains("latencyMs"));
        assert!(refused(json!({"fault": "hang", "next": 1})).contains("no other field"));
        assert!(refused(json!({"fault": "throttle", "next": 1, "percent": 5})).contains("not both"));
        assert!(refused(json!({"fault": "throttle", "percent": 101})).contains("0 to 100"));
        assert!(ConnectionsFault::try_from(&wire(json!({"fault": "hang"}))).is_err());
        assert!(serde_json::from_value::<WireFault>(json!({"fault": "slow", "latency": 5})).is_err());
    }
}

//! A local, recording stand-in for API Gateway's `@connections` management API.
//!
//! [`ConnectionsApi::start`] serves the three routes the real `aws-sdk-apigatewaymanagement`
//! client calls, on a free loopback port, so handler tests use the real SDK client
//! ([`ConnectionsApi::client`]) pointed at it:
//!
//! - `POST /{stage}/@connections/{id}`: the body is the message; answers 200 and records it,
//!   or 410 (`GoneException`) when the connection is gone.
//! - `GET /{stage}/@connections/{id}`: answers 200 with fixed connection details, or 410.
//! - `DELETE /{stage}/@connections/{id}`: answers 204 and records the deletion (the connection
//!   is gone from then on), or 410 when it already was.
//!
//! Faults for tests of retries: [`ConnectionsApi::throttle_posts`] answers the next posts with
//! 429 `LimitExceededException`, as API Gateway does when the account's management API rate is
//! exceeded (AWS_FACTS 18), and [`ConnectionsApi::fail_posts`] with a 500. With
//! [`ConnectionsApi::set_delay`], [`ConnectionsApi::max_in_flight`] tells how many requests a
//! fan-out had in flight at once; [`ConnectionsApi::stall`] leaves one connection's requests
//! unanswered.
//!
//! The stage is any one path segment (the endpoint is `http://127.0.0.1:PORT/test`); paths
//! without a stage are accepted too. The SDK percent-encodes connection ids (AWS ids such as
//! `L0SM9cOFvHcCIhw=` end in `=`, sent as `%3D`); the server decodes them, so ids round-trip
//! exactly. A connection is gone once a test calls [`ConnectionsApi::mark_gone`] for it or a
//! client deletes it; every other id is a live connection.
//!
//! The server runs on a task of the runtime that called `start` (each `#[tokio::test]` has its
//! own), and stops when the last clone of its [`ConnectionsApi`] drops or that runtime ends.

use crate::recorder::OperationRecorder;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::oneshot;

/// The stage name in [`ConnectionsApi::endpoint`].
pub const STAGE: &str = "test";

/// The body of every 200 answer to `GET @connections/{id}`.
pub const CONNECTION_DETAILS: &str = r#"{"connectedAt":"2026-01-01T00:00:00Z","identity":{"sourceIp":"127.0.0.1","userAgent":"test"},"lastActiveAt":"2026-01-01T00:00:00Z"}"#;

/// A running stand-in for the `@connections` API, and what it has received. Clones share the
/// server and its record.
#[derive(Debug, Clone)]
pub struct ConnectionsApi {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    address: SocketAddr,
    state: Arc<Shared>,
    // Dropping the sender (when the last clone drops) stops the server.
    _stop: oneshot::Sender<()>,
}

#[derive(Debug, Default)]
struct Shared {
    record: Mutex<Record>,
    delay: Mutex<Duration>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

#[derive(Debug, Default)]
struct Record {
    posts: Vec<(String, String)>,
    deleted: Vec<String>,
    requests: Vec<(String, String)>,
    gone: HashSet<String>,
    /// Connections whose requests are recorded and then never answered.
    stalled: HashSet<String>,
    /// How many of the next posts answer 429, and how many after those answer 500.
    throttled_posts: usize,
    failed_posts: usize,
}

impl Shared {
    fn record(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn delay(&self) -> Duration {
        *self.delay.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ConnectionsApi {
    /// Starts a server on a free port of 127.0.0.1, on a task of the current tokio runtime.
    ///
    /// # Panics
    /// When no port can be bound, or when called outside a tokio runtime.
    pub async fn start() -> ConnectionsApi {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("the @connections stand-in should bind a free loopback port");
        let address = listener.local_addr().expect("a bound listener should have an address");
        let state = Arc::new(Shared::default());
        let router = Router::new()
            .route("/{stage}/@connections/{id}", any(handle))
            .route("/@connections/{id}", any(handle))
            .with_state(Arc::clone(&state));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async {
                // An error means the sender dropped, which is the signal to stop.
                let _ = stopped.await;
            };
            if let Err(error) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
                eprintln!("the @connections stand-in stopped: {error}");
            }
        });
        ConnectionsApi { inner: Arc::new(Inner { address, state, _stop: stop }) }
    }

    /// The endpoint URL for the SDK's `endpoint_url`, `http://127.0.0.1:PORT/test`.
    pub fn endpoint(&self) -> String {
        format!("http://{}/{STAGE}", self.inner.address)
    }

    /// The server's socket address.
    pub fn address(&self) -> SocketAddr {
        self.inner.address
    }

    /// Makes the connection gone: from now on every request for it answers 410.
    pub fn mark_gone(&self, id: &str) {
        self.inner.state.record().gone.insert(id.to_owned());
    }

    /// Whether the connection is gone (marked gone, or deleted).
    pub fn is_gone(&self, id: &str) -> bool {
        self.inner.state.record().gone.contains(id)
    }

    /// A fault for tests: from now on, requests for connection `id` are recorded but never
    /// answered (as from a congested endpoint), so each attempt of the SDK times out.
    pub fn stall(&self, id: &str) {
        self.inner.state.record().stalled.insert(id.to_owned());
    }

    /// Delays every later answer by `delay` (after the request is recorded), for tests of
    /// concurrency. `Duration::ZERO` turns the delay off.
    pub fn set_delay(&self, delay: Duration) {
        *self.inner.state.delay.lock().unwrap_or_else(PoisonError::into_inner) = delay;
    }

    /// Answers the next `count` posts (whoever they are for) with 429 `LimitExceededException`;
    /// they deliver nothing.
    pub fn throttle_posts(&self, count: usize) {
        self.inner.state.record().throttled_posts = count;
    }

    /// Answers the next `count` posts (after any throttled ones) with a 500; they deliver
    /// nothing.
    pub fn fail_posts(&self, count: usize) {
        self.inner.state.record().failed_posts = count;
    }

    /// The most requests that were being answered at once since the server started.
    pub fn max_in_flight(&self) -> usize {
        self.inner.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// Every delivered message as `(connection id, body)`, in arrival order. Posts answered
    /// with 410 are not messages; [`ConnectionsApi::requests`] shows them.
    pub fn posts(&self) -> Vec<(String, String)> {
        self.inner.state.record().posts.clone()
    }

    /// The bodies delivered to one connection, in arrival order.
    pub fn posts_to(&self, id: &str) -> Vec<String> {
        self.inner.state.record().posts.iter().filter(|(to, _)| to == id).map(|(_, body)| body.clone()).collect()
    }

    /// The messages delivered to one connection, parsed as JSON, in arrival order.
    ///
    /// # Panics
    /// When a body is not JSON; the message shows the body.
    pub fn messages_to(&self, id: &str) -> Vec<serde_json::Value> {
        self.posts_to(id)
            .into_iter()
            .map(|body| {
                serde_json::from_str(&body)
                    .unwrap_or_else(|error| panic!("the message to {id} is not JSON ({error}): {body}"))
            })
            .collect()
    }

    /// The connections deleted through the API, in order.
    pub fn deleted(&self) -> Vec<String> {
        self.inner.state.record().deleted.clone()
    }

    /// Every request received as `(method, connection id)`, in arrival order, whatever it was
    /// answered.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.inner.state.record().requests.clone()
    }

    /// Forgets the recorded posts, deletions and requests. Gone connections stay gone.
    pub fn clear(&self) {
        let mut record = self.inner.state.record();
        record.posts.clear();
        record.deleted.clear();
        record.requests.clear();
    }

    /// A real `aws-sdk-apigatewaymanagement` client for this server: fixed test credentials,
    /// region us-east-1, the latest behaviour version, and `interceptor` attached when given.
    pub fn client(&self, interceptor: Option<OperationRecorder>) -> aws_sdk_apigatewaymanagement::Client {
        use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Credentials, Region};
        let mut config = aws_sdk_apigatewaymanagement::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(crate::REGION))
            .endpoint_url(self.endpoint())
            .credentials_provider(Credentials::new("testing", "testing", None, None, "testkit"));
        if let Some(recorder) = interceptor {
            config = config.interceptor(recorder);
        }
        aws_sdk_apigatewaymanagement::Client::from_conf(config.build())
    }
}

async fn handle(
    method: Method,
    State(state): State<Arc<Shared>>,
    Path(params): Path<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let id = params.get("id").cloned().unwrap_or_default();
    let stalled = {
        let mut record = state.record();
        record.requests.push((method.to_string(), id.clone()));
        record.stalled.contains(&id)
    };
    if stalled {
        return std::future::pending().await;
    }
    let answer = {
        let mut record = state.record();
        let gone = record.gone.contains(&id);
        match method {
            _ if gone && matches!(method, Method::POST | Method::GET | Method::DELETE) => gone_answer(),
            Method::POST if record.throttled_posts > 0 => {
                record.throttled_posts -= 1;
                error_answer(StatusCode::TOO_MANY_REQUESTS, "LimitExceededException", "Rate exceeded")
            }
            Method::POST if record.failed_posts > 0 => {
                record.failed_posts -= 1;
                error_answer(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerErrorException", "Internal error")
            }
            Method::POST => {
                record.posts.push((id, String::from_utf8_lossy(&body).into_owned()));
                StatusCode::OK.into_response()
            }
            Method::GET => ([("content-type", "application/json")], CONNECTION_DETAILS).into_response(),
            Method::DELETE => {
                record.gone.insert(id.clone());
                record.deleted.push(id);
                StatusCode::NO_CONTENT.into_response()
            }
            _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
        }
    };
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let delay = state.delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    answer
}

/// API Gateway's answer for a connection that is no longer there.
fn gone_answer() -> Response {
    error_answer(StatusCode::GONE, "GoneException", "Gone")
}

/// An error answer as API Gateway's management API sends it.
fn error_answer(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = serde_json::json!({ "message": message }).to_string();
    (status, [("x-amzn-errortype", kind), ("content-type", "application/json")], body).into_response()
}

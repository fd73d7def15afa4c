//! The timeout budget and the classification of failures, against real sockets: a DynamoDB
//! endpoint that hangs, refuses connections, throttles or fails must give the store an error
//! that says "unavailable" (so clients get 503 `SERVICE_UNAVAILABLE` with `retryAfter`) before
//! the function's own timeout, and a request the service refuses must not.

use session_core::ids::SessionId;
use session_core::protocol::{ErrorCode, ProtocolError};
use session_core::setup;
use session_core::store::{Store, StoreError, TableNames};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The functions' timeout in both stages: an answer must come well before it.
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(10);

/// A store whose configuration is built as the functions build theirs, against `endpoint`.
async fn store_at(endpoint: &str) -> Store {
    let sdk = setup::with_budget(aws_config::defaults(aws_config::BehaviorVersion::latest()))
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    let tables = TableNames { sessions: "s".into(), connections: "c".into(), rate_limits: "r".into() };
    Store::new(aws_sdk_dynamodb::Client::new(&sdk), tables)
}

/// A server on a free port that answers every request with `response` (raw HTTP), or never
/// answers when `response` is `None`.
async fn server(response: Option<&'static str>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut buffer = vec![0_u8; 64 * 1024];
                loop {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    // Without a response, hold the connection open and say nothing.
                    if let Some(response) = response
                        && socket.write_all(response.as_bytes()).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{address}")
}

fn dynamodb_error(status: &str, kind: &str) -> &'static str {
    let body = format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"test"}}"#);
    Box::leak(
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_boxed_str(),
    )
}

/// Reads a session through `store`, and says how it failed and how long it took.
async fn failure(store: &Store) -> (StoreError, Duration) {
    let started = Instant::now();
    let id = SessionId::parse("quiet-harbor-417").expect("an id");
    let outcome = tokio::time::timeout(FUNCTION_TIMEOUT, store.get_session(&id))
        .await
        .expect("the store gives up before the function's timeout");
    (outcome.expect_err("the endpoint cannot answer"), started.elapsed())
}

fn assert_unavailable(error: &StoreError) {
    assert!(error.is_unavailable(), "{error}");
    let refusal = ProtocolError::from(StoreError::Aws {
        operation: "GetItem",
        table: "s".into(),
        message: error.to_string(),
        unavailable: error.is_unavailable(),
    });
    assert_eq!(refusal.code, ErrorCode::ServiceUnavailable);
    assert!(refusal.retry_after.is_some(), "a 503 says when to retry");
}

#[tokio::test]
async fn a_hanging_table_times_out_within_the_operation_budget() {
    let store = store_at(&server(None).await).await;
    let (error, took) = failure(&store).await;
    assert_unavailable(&error);
    assert!(took < setup::OPERATION_TIMEOUT + Duration::from_secs(1), "took {took:?}");
}

#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    // A port that was free a moment ago: nothing listens there.
    let address = TcpListener::bind("127.0.0.1:0").await.expect("a port").local_addr().expect("an address");
    let store = store_at(&format!("http://{address}")).await;
    let (error, _) = failure(&store).await;
    assert_unavailable(&error);
}

#[tokio::test]
async fn throttling_and_server_errors_are_unavailable() {
    for response in [
        dynamodb_error("400 Bad Request", "ThrottlingException"),
        dynamodb_error("400 Bad Request", "ProvisionedThroughputExceededException"),
        dynamodb_error("500 Internal Server Error", "InternalServerError"),
        dynamodb_error("503 Service Unavailable", "ServiceUnavailable"),
        "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n",
    ] {
        let store = store_at(&server(Some(response)).await).await;
        let (error, _) = failure(&store).await;
        assert_unavailable(&error);
    }
}

#[tokio::test]
async fn a_refused_request_is_not_unavailable() {
    let store = store_at(&server(Some(dynamodb_error("400 Bad Request", "ValidationException"))).await).await;
    let (error, _) = failure(&store).await;
    assert!(!error.is_unavailable(), "{error}");
    let refusal = ProtocolError::from(error);
    assert_eq!(refusal.code, ErrorCode::InternalError);
}

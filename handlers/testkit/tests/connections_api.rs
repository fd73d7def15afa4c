//! The `@connections` stand-in, driven by the real `aws-sdk-apigatewaymanagement` client.

use aws_sdk_apigatewaymanagement::primitives::Blob;
use std::time::{Duration, Instant};
use testkit::{ConnectionsApi, OperationRecorder};

#[tokio::test]
async fn a_post_is_delivered_and_recorded() {
    let api = ConnectionsApi::start().await;
    let client = api.client(None);
    client
        .post_to_connection()
        .connection_id("abc")
        .data(Blob::new(br#"{"type":"hello","n":1}"#.to_vec()))
        .send()
        .await
        .expect("a post to a live connection should succeed");
    client
        .post_to_connection()
        .connection_id("other")
        .data(Blob::new(b"plain text".to_vec()))
        .send()
        .await
        .expect("a post to a live connection should succeed");
    assert_eq!(
        api.posts(),
        vec![("abc".to_owned(), r#"{"type":"hello","n":1}"#.to_owned()), ("other".to_owned(), "plain text".to_owned()),]
    );
    assert_eq!(api.posts_to("other"), vec!["plain text".to_owned()]);
    assert_eq!(api.messages_to("abc"), vec![serde_json::json!({"type": "hello", "n": 1})]);
    assert!(api.deleted().is_empty());
    api.clear();
    assert!(api.posts().is_empty());
}

#[tokio::test]
async fn a_gone_connection_makes_the_sdk_answer_gone_exception() {
    let api = ConnectionsApi::start().await;
    api.mark_gone("gone-one");
    let error = api
        .client(None)
        .post_to_connection()
        .connection_id("gone-one")
        .data(Blob::new(b"{}".to_vec()))
        .send()
        .await
        .expect_err("a post to a gone connection should fail");
    assert_eq!(error.as_service_error().map(|e| e.is_gone_exception()), Some(true), "{error:?}");
    assert!(api.posts().is_empty());
    assert_eq!(api.requests(), vec![("POST".to_owned(), "gone-one".to_owned())]);
}

#[tokio::test]
async fn a_deleted_connection_is_gone() {
    let api = ConnectionsApi::start().await;
    let client = api.client(None);
    client.delete_connection().connection_id("c1").send().await.expect("deleting a live connection should succeed");
    assert_eq!(api.deleted(), vec!["c1".to_owned()]);
    let error = client
        .post_to_connection()
        .connection_id("c1")
        .data(Blob::new(b"{}".to_vec()))
        .send()
        .await
        .expect_err("a post to a deleted connection should fail");
    assert_eq!(error.as_service_error().map(|e| e.is_gone_exception()), Some(true), "{error:?}");
    let error = client
        .delete_connection()
        .connection_id("c1")
        .send()
        .await
        .expect_err("deleting a deleted connection should fail");
    assert_eq!(error.as_service_error().map(|e| e.is_gone_exception()), Some(true), "{error:?}");
    assert_eq!(api.deleted(), vec!["c1".to_owned()]);
    // Clearing the record keeps the connection gone.
    api.clear();
    assert!(api.is_gone("c1"));
}

#[tokio::test]
async fn get_connection_answers_details_or_gone() {
    let api = ConnectionsApi::start().await;
    let client = api.client(None);
    let details =
        client.get_connection().connection_id("live").send().await.expect("getting a live connection should succeed");
    let identity = details.identity().expect("the details should name the caller");
    assert_eq!(identity.source_ip(), Some("127.0.0.1"));
    assert_eq!(identity.user_agent(), Some("test"));
    assert!(details.connected_at().is_some());
    assert!(details.last_active_at().is_some());
    api.mark_gone("dead");
    let error =
        client.get_connection().connection_id("dead").send().await.expect_err("a gone connection has no details");
    assert_eq!(error.as_service_error().map(|e| e.is_gone_exception()), Some(true), "{error:?}");
}

#[tokio::test]
async fn aws_style_connection_ids_round_trip_exactly() {
    let api = ConnectionsApi::start().await;
    let client = api.client(None);
    let ids = ["L0SM9cOFvHcCIhw=", "a+b==", "Zm9v-_x="];
    for id in ids {
        client
            .post_to_connection()
            .connection_id(id)
            .data(Blob::new(id.as_bytes().to_vec()))
            .send()
            .await
            .expect("a post to a live connection should succeed");
    }
    let expected: Vec<(String, String)> = ids.iter().map(|id| ((*id).to_owned(), (*id).to_owned())).collect();
    assert_eq!(api.posts(), expected);
    api.mark_gone("L0SM9cOFvHcCIhw=");
    let error = client
        .post_to_connection()
        .connection_id("L0SM9cOFvHcCIhw=")
        .data(Blob::new(b"{}".to_vec()))
        .send()
        .await
        .expect_err("the marked id should be gone");
    assert_eq!(error.as_service_error().map(|e| e.is_gone_exception()), Some(true), "{error:?}");
    client.delete_connection().connection_id("a+b==").send().await.expect("deleting a live connection should succeed");
    assert_eq!(api.deleted(), vec!["a+b==".to_owned()]);
}

#[tokio::test]
async fn paths_without_a_stage_are_accepted() {
    let api = ConnectionsApi::start().await;
    let config = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(aws_sdk_apigatewaymanagement::config::BehaviorVersion::latest())
        .region(aws_sdk_apigatewaymanagement::config::Region::new(testkit::REGION))
        .endpoint_url(format!("http://{}", api.address()))
        .credentials_provider(aws_sdk_apigatewaymanagement::config::Credentials::new("a", "b", None, None, "test"))
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(config)
        .post_to_connection()
        .connection_id("no-stage=")
        .data(Blob::new(b"x".to_vec()))
        .send()
        .await
        .expect("a post without a stage should succeed");
    assert_eq!(api.posts(), vec![("no-stage=".to_owned(), "x".to_owned())]);
}

#[tokio::test]
async fn calls_through_the_client_are_recorded_as_manage_connections() {
    let api = ConnectionsApi::start().await;
    let recorder = OperationRecorder::new();
    let client = api.client(Some(recorder.clone()));
    client.post_to_connection().connection_id("r").data(Blob::new(b"{}".to_vec())).send().await.expect("post");
    client.delete_connection().connection_id("r").send().await.expect("delete");
    assert_eq!(
        recorder.calls(),
        vec![
            ("ApiGatewayManagementApi".to_owned(), "PostToConnection".to_owned()),
            ("ApiGatewayManagementApi".to_owned(), "DeleteConnection".to_owned()),
        ]
    );
    assert_eq!(
        recorder.iam_actions().into_iter().collect::<Vec<_>>(),
        vec!["execute-api:ManageConnections".to_owned()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delay_holds_answers_but_requests_run_concurrently() {
    let api = ConnectionsApi::start().await;
    api.set_delay(Duration::from_millis(300));
    let client = api.client(None);
    let started = Instant::now();
    let mut posts = tokio::task::JoinSet::new();
    for n in 0..5 {
        posts.spawn(client.post_to_connection().connection_id(format!("c{n}")).data(Blob::new(b"{}".to_vec())).send());
    }
    for result in posts.join_all().await {
        result.expect("a delayed post should still succeed");
    }
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(300), "the answers came after {elapsed:?}");
    assert!(elapsed < Duration::from_millis(1200), "the posts did not overlap: {elapsed:?}");
    assert_eq!(api.posts().len(), 5);
}

#[tokio::test]
async fn the_server_stops_when_the_last_clone_drops() {
    let api = ConnectionsApi::start().await;
    let address = api.address();
    let clone = api.clone();
    drop(api);
    assert!(tokio::net::TcpStream::connect(address).await.is_ok(), "a clone still holds the server");
    drop(clone);
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(address).await.is_ok() {
        assert!(Instant::now() < deadline, "the server still accepts connections");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

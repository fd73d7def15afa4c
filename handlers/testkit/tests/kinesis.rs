//! Kinesis helpers against the local endpoint.

use aws_sdk_kinesis::primitives::Blob;
use testkit::OperationRecorder;

#[tokio::test]
async fn records_put_with_the_sdk_are_read_back_in_order() {
    let recorder = OperationRecorder::new();
    let client = testkit::kinesis_client(Some(&recorder));
    let stream = testkit::create_stream(&client).await;
    assert!(testkit::read_all_records(&client, &stream).await.is_empty(), "a new stream should be empty");
    client
        .put_record()
        .stream_name(&stream)
        .partition_key("session-1")
        .data(Blob::new(b"first".to_vec()))
        .send()
        .await
        .expect("the first PutRecord should succeed");
    client
        .put_record()
        .stream_name(&stream)
        .partition_key("session-2")
        .data(Blob::new(vec![0, 159, 146, 150]))
        .send()
        .await
        .expect("the second PutRecord should succeed");
    assert_eq!(
        testkit::read_all_records(&client, &stream).await,
        vec![("session-1".to_owned(), b"first".to_vec()), ("session-2".to_owned(), vec![0, 159, 146, 150])]
    );
    assert!(recorder.iam_actions().contains("kinesis:PutRecord"), "{:?}", recorder.calls());
    assert!(recorder.iam_actions().contains("kinesis:CreateStream"), "{:?}", recorder.calls());
}

#[tokio::test]
async fn every_stream_is_new() {
    let client = testkit::kinesis_client(None);
    let first = testkit::create_stream(&client).await;
    let second = testkit::create_stream(&client).await;
    assert_ne!(first, second);
}

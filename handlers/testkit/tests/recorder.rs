//! The operation recorder, attached to a DynamoDB client on the local endpoint.

use std::collections::BTreeSet;
use testkit::OperationRecorder;

#[tokio::test]
async fn dynamodb_calls_are_recorded_with_their_iam_actions() {
    let recorder = OperationRecorder::new();
    let client = testkit::dynamodb_client_recording(&recorder);
    let tables = testkit::create_tables(&testkit::dynamodb_client()).await;
    assert!(recorder.calls().is_empty(), "the unrecorded client's calls should not show");
    let name = tables.names.values().next().expect("the contract should declare a table").clone();
    client.list_tables().send().await.expect("ListTables should succeed");
    client.describe_table().table_name(&name).send().await.expect("DescribeTable should succeed");
    assert_eq!(
        recorder.calls(),
        vec![("DynamoDB".to_owned(), "ListTables".to_owned()), ("DynamoDB".to_owned(), "DescribeTable".to_owned()),]
    );
    let expected: BTreeSet<String> = ["dynamodb:DescribeTable", "dynamodb:ListTables"].map(str::to_owned).into();
    assert_eq!(recorder.iam_actions(), expected);
    recorder.clear();
    assert!(recorder.calls().is_empty());
}

#[tokio::test]
async fn a_failed_call_is_recorded_once() {
    let recorder = OperationRecorder::new();
    let client = testkit::dynamodb_client_recording(&recorder);
    client
        .describe_table()
        .table_name("no-such-table-anywhere")
        .send()
        .await
        .expect_err("describing a missing table should fail");
    assert_eq!(recorder.calls(), vec![("DynamoDB".to_owned(), "DescribeTable".to_owned())]);
}

#[test]
fn iam_actions_follow_the_service() {
    assert_eq!(testkit::recorder::iam_action("DynamoDB", "Query"), "dynamodb:Query");
    assert_eq!(testkit::recorder::iam_action("Kinesis", "PutRecords"), "kinesis:PutRecords");
    assert_eq!(
        testkit::recorder::iam_action("ApiGatewayManagementApi", "GetConnection"),
        "execute-api:ManageConnections"
    );
    assert_eq!(testkit::recorder::iam_action("S3", "GetObject"), "unknown:S3:GetObject");
}

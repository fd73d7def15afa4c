//! Kinesis on the local endpoint: a client, fresh streams, and everything written to them.
//!
//! moto's server answers Kinesis on the same port as DynamoDB, so [`kinesis_client`] points
//! at [`local_endpoint`](crate::local_endpoint). [`create_stream`] makes a stream with a
//! unique name, so tests running in parallel never read each other's records, and
//! [`read_all_records`] reads back every record in it.

use crate::recorder::OperationRecorder;
use aws_sdk_kinesis::types::{ShardIteratorType, StreamStatus};
use std::time::Duration;

/// How long [`create_stream`] waits for a new stream to become active.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`create_stream`] waits between two looks at a new stream.
const ACTIVE_POLL: Duration = Duration::from_millis(100);
/// At most this many `GetRecords` pages are read from one shard, so a misbehaving endpoint
/// cannot hang a test.
const MAX_PAGES_PER_SHARD: usize = 1000;

/// A Kinesis client for the local endpoint, with fixed test credentials, and `recorder`
/// attached when given.
pub fn kinesis_client(recorder: Option<&OperationRecorder>) -> aws_sdk_kinesis::Client {
    use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
    let mut config = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(crate::REGION))
        .endpoint_url(crate::local_endpoint())
        .credentials_provider(Credentials::new("testing", "testing", None, None, "testkit"));
    if let Some(recorder) = recorder {
        config = config.interceptor(recorder.clone());
    }
    aws_sdk_kinesis::Client::from_conf(config.build())
}

/// Creates a stream with one shard and a unique name, waits until it is active, and answers
/// its name.
///
/// # Panics
/// When the endpoint refuses the stream or it does not become active in time.
pub async fn create_stream(client: &aws_sdk_kinesis::Client) -> String {
    let name = format!("s{:016x}", rand::random::<u64>());
    client
        .create_stream()
        .stream_name(&name)
        .shard_count(1)
        .send()
        .await
        .unwrap_or_else(|error| panic!("could not create stream {name}: {}", show_error(error)));
    let deadline = tokio::time::Instant::now() + ACTIVE_TIMEOUT;
    loop {
        let summary = client
            .describe_stream_summary()
            .stream_name(&name)
            .send()
            .await
            .unwrap_or_else(|error| panic!("could not describe stream {name}: {}", show_error(error)));
        let status = summary.stream_description_summary().map(|summary| summary.stream_status().clone());
        if status == Some(StreamStatus::Active) {
            return name;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("stream {name} is not active after {ACTIVE_TIMEOUT:?} (its status is {status:?})");
        }
        tokio::time::sleep(ACTIVE_POLL).await;
    }
}

/// Every record in the stream as `(partition key, data)`: shard by shard in the order the
/// endpoint lists them, and in sequence order within a shard.
///
/// # Panics
/// When the endpoint refuses a request; the message names the stream and the reason.
pub async fn read_all_records(client: &aws_sdk_kinesis::Client, stream_name: &str) -> Vec<(String, Vec<u8>)> {
    let fail = |what: &str, error: String| -> ! { panic!("could not {what} of stream {stream_name}: {error}") };
    let mut shard_ids = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        // ListShards takes either the stream name or a continuation token, never both.
        let request = match &next_token {
            Some(token) => client.list_shards().next_token(token),
            None => client.list_shards().stream_name(stream_name),
        };
        let page = request.send().await.unwrap_or_else(|error| fail("list the shards", show_error(error)));
        shard_ids.extend(page.shards().iter().map(|shard| shard.shard_id().to_owned()));
        match page.next_token() {
            Some(token) => next_token = Some(token.to_owned()),
            None => break,
        }
    }
    let mut records = Vec::new();
    for shard_id in shard_ids {
        let mut iterator = client
            .get_shard_iterator()
            .stream_name(stream_name)
            .shard_id(&shard_id)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap_or_else(|error| fail(&format!("get an iterator for shard {shard_id}"), show_error(error)))
            .shard_iterator()
            .map(str::to_owned);
        let mut pages = 0;
        while let Some(current) = iterator.take() {
            let page = client
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .unwrap_or_else(|error| fail(&format!("read shard {shard_id}"), show_error(error)));
            for record in page.records() {
                records.push((record.partition_key().unwrap_or_default().to_owned(), record.data().as_ref().to_vec()));
            }
            pages += 1;
            // An empty page is the end of what was written (on moto; real Kinesis can also
            // answer empty pages early, which this helper is not meant for).
            if !page.records().is_empty() && pages < MAX_PAGES_PER_SHARD {
                iterator = page.next_shard_iterator().map(str::to_owned);
            }
        }
    }
    records
}

fn show_error(error: impl std::error::Error) -> String {
    aws_sdk_kinesis::error::DisplayErrorContext(error).to_string()
}

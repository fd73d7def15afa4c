//! `cargo xtask doctor`'s `tables` and `errors` groups, and `cargo xtask logs`, against a
//! stage deployed to a local AWS-compatible endpoint (moto's server) from the real `dev`
//! template with fake zips.
//!
//! Such a deploy creates the tables, the log groups, the functions, their roles and the audio
//! stream, each with its physical id in `DescribeStackResources` (API Gateway v2 resources are
//! not created: the other groups fail on this stage, so the assertions are per check id). The
//! test then makes the live stage what AWS would have made it (moto leaves TTL and
//! point-in-time recovery off), checks that doctor passes the tables, the stream and the quiet
//! logs, breaks one table's TTL, writes Lambda-shaped log lines (JSON application lines, a
//! platform timeout, a runtime exit, and an error older than `--since`), and reads what doctor
//! and `cargo xtask logs` say.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::Output;

mod support;

use support::{
    artifacts, checks_by_id, deploy_dev, physical_ids, sdk_config, set_ttl, tables_as_aws_deploys_them, temp_dir, text,
    xtask, xtask_command,
};

const STACK: &str = "session-service-dev";

/// A region no other test deploys to: `cargo xtask test` runs one local endpoint for every
/// test binary.
const REGION: &str = "ca-central-1";

/// `cargo xtask doctor --stage dev --no-probe --json` in the test's region: its exit code and checks by id.
fn doctor(endpoint: &str) -> (Option<i32>, BTreeMap<String, Value>) {
    let run = xtask(endpoint, &["doctor", "--stage", "dev", "--region", REGION, "--no-probe", "--json"]);
    (run.status.code(), checks_by_id(&run))
}

fn logs(endpoint: &str, args: &[&str]) -> Output {
    let mut all = vec!["logs", "--stage", "dev", "--region", REGION];
    all.extend_from_slice(args);
    xtask(endpoint, &all)
}

fn now_millis() -> i64 {
    let elapsed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    i64::try_from(elapsed.as_millis()).expect("fits")
}

/// Lambda's JSON `time`/`timestamp` of `millis` (`2024-05-01T10:00:00.123Z`).
fn iso(millis: i64) -> String {
    use aws_sdk_cloudwatchlogs::primitives::{DateTime, DateTimeFormat};
    DateTime::from_millis(millis).fmt(DateTimeFormat::DateTime).expect("a representable time")
}

/// Writes `lines` (timestamp, message) to a new stream of `group`, in time order.
async fn put(client: &aws_sdk_cloudwatchlogs::Client, group: &str, stream: &str, lines: &[(i64, String)]) {
    client.create_log_stream().log_group_name(group).log_stream_name(stream).send().await.expect("stream created");
    let mut request = client.put_log_events().log_group_name(group).log_stream_name(stream);
    for (timestamp, message) in lines {
        request = request.log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(*timestamp)
                .message(message.as_str())
                .build()
                .expect("event"),
        );
    }
    let put = request.send().await.expect("events put");
    assert!(put.rejected_log_events_info().is_none(), "{put:?}");
}

fn status(checks: &BTreeMap<String, Value>, id: &str) -> String {
    checks.get(id).map(|check| check["status"].as_str().unwrap_or_default().to_owned()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_reads_live_tables_and_logs_and_logs_interleaves_the_functions() {
    let endpoint = testkit::local_endpoint();
    let dir = temp_dir("doctor-data");
    artifacts(&dir);
    let bucket = format!("doctor-data-assets-{}", std::process::id());
    let deployed = deploy_dev(&endpoint, &dir, REGION, &bucket);
    assert!(deployed.status.success(), "{}", text(&deployed));
    let config = sdk_config(&endpoint, REGION);
    let physical = physical_ids(&aws_sdk_cloudformation::Client::new(&config), STACK).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    tables_as_aws_deploys_them(&dynamodb, &physical).await;
    let logs_client = aws_sdk_cloudwatchlogs::Client::new(&config);
    let group = |function: &str| physical[&stacks::naming::log_group(function)].clone();
    // Empty log groups, even when the endpoint already served an earlier run of this test.
    for function in contract::CONTRACT.functions {
        let name = group(function.name);
        logs_client.delete_log_group().log_group_name(&name).send().await.ok();
        logs_client.create_log_group().log_group_name(&name).send().await.expect("log group created");
    }

    // The stage as AWS would run it, quiet: every table, the stream and every log group pass.
    let (_, checks) = doctor(&endpoint);
    for schema in contract::CONTRACT.tables {
        for aspect in ["keys", "ttl", "pitr"] {
            let id = format!("tables.{}.{aspect}", schema.logical_id);
            assert_eq!(status(&checks, &id), "pass", "{id}: {:#}", checks.get(&id).unwrap_or(&Value::Null));
        }
    }
    let index = &checks["tables.ConnectionsTable.index"];
    assert_eq!(index["status"], "pass", "{index:#}");
    assert!(index["message"].as_str().unwrap_or_default().contains("bySessionAudience"), "{index:#}");
    assert_eq!(status(&checks, "tables.AudioStream.status"), "pass", "{:#}", checks["tables.AudioStream.status"]);
    for function in contract::CONTRACT.functions {
        let check = &checks[&format!("errors.{}", function.name)];
        assert_eq!(check["status"], "pass", "{check:#}");
        assert!(
            check["message"]
                .as_str()
                .unwrap_or_default()
                .contains("no errors, timeouts or runtime exits in the last 1h"),
            "{check:#}"
        );
    }

    // TTL turned off by hand on the Connections table.
    let connections = &physical["ConnectionsTable"];
    set_ttl(&dynamodb, connections, "ttl", false).await;

    // Lines as Lambda writes them with `LogFormat: JSON`, the oldest outside `--since 1h`.
    let now = now_millis();
    let at = |seconds_ago: i64| now - seconds_ago * 1000;
    let messages = [
        (
            at(7200),
            json!({"timestamp": iso(at(7200)), "level": "ERROR", "message": "an old failure", "requestId": "0ld00000-0000-0000-0000-000000000000"}),
        ),
        (
            at(50),
            json!({"timestamp": iso(at(50)), "level": "ERROR", "message": "fan-out failed: PostToConnection throttled", "requestId": "11111111-1111-1111-1111-111111111111"}),
        ),
        (
            at(45),
            json!({"level": "INFO", "fields": {"message": "joined session"}, "span": {"requestId": "22222222-2222-2222-2222-222222222222", "name": "Lambda runtime invoke"}}),
        ),
        (
            at(40),
            json!({"time": iso(at(40)), "type": "platform.runtimeDone", "record": {"requestId": "33333333-3333-3333-3333-333333333333", "status": "timeout", "metrics": {"durationMs": 3000.0}}}),
        ),
        (
            at(40) + 10,
            json!({"time": iso(at(40) + 10), "type": "platform.report", "record": {"requestId": "33333333-3333-3333-3333-333333333333", "metrics": {"durationMs": 3000.0, "billedDurationMs": 3000, "memorySizeMB": 128, "maxMemoryUsedMB": 41}, "status": "timeout"}}),
        ),
        (
            at(30),
            json!({"time": iso(at(30)), "type": "platform.runtimeDone", "record": {"requestId": "44444444-4444-4444-4444-444444444444", "status": "error", "errorType": "Runtime.ExitError"}}),
        ),
        (
            at(20),
            json!({"level": "ERROR", "fields": {"message": "store write failed", "error": "ThrottlingException"}, "span": {"requestId": "55555555-5555-5555-5555-555555555555", "name": "Lambda runtime invoke"}}),
        ),
    ];
    let messages: Vec<(i64, String)> = messages.into_iter().map(|(time, line)| (time, line.to_string())).collect();
    put(&logs_client, &group("messages"), "2024/05/01/[$LATEST]messages", &messages).await;
    let connection = [
        (at(55), json!({"level": "INFO", "fields": {"message": "speaker connected"}})),
        (at(35), json!({"level": "INFO", "fields": {"message": "listener connected"}})),
    ];
    let connection: Vec<(i64, String)> = connection.into_iter().map(|(time, line)| (time, line.to_string())).collect();
    put(&logs_client, &group("connection"), "2024/05/01/[$LATEST]connection", &connection).await;

    let (code, checks) = doctor(&endpoint);
    assert_eq!(code, Some(1), "a failed check");
    let ttl = &checks["tables.ConnectionsTable.ttl"];
    assert_eq!(ttl["status"], "fail", "{ttl:#}");
    let message = ttl["message"].as_str().unwrap_or_default();
    assert!(message.contains("DISABLED") && message.contains("never deleted"), "{ttl:#}");
    let fix = ttl["fix"].as_str().unwrap_or_default();
    assert!(
        fix.contains(&format!("update-time-to-live --table-name {connections}"))
            && fix.contains("AttributeName=ttl")
            && fix.contains(REGION),
        "{ttl:#}"
    );
    assert_eq!(status(&checks, "tables.ConnectionsTable.keys"), "pass");
    assert_eq!(status(&checks, "tables.SessionsTable.ttl"), "pass");

    let errors = &checks["errors.messages"];
    assert_eq!(errors["status"], "fail", "{errors:#}");
    let message = errors["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("in the last 1h: 1 timeout, 1 runtime exit, 2 errors;"), "{errors:#}");
    for line in
        ["fan-out failed: PostToConnection throttled", "store write failed", "Runtime.ExitError", "platform.report"]
    {
        assert!(message.contains(line), "{line}: {errors:#}");
    }
    assert!(!message.contains("an old failure"), "{errors:#}");
    assert!(!message.contains("joined session"), "{errors:#}");
    assert_eq!(errors["fix"], format!("cargo xtask logs --stage dev --function messages --since 1h --region {REGION}"));
    assert_eq!(status(&checks, "errors.connection"), "pass");

    // `cargo xtask logs`: both functions' lines, interleaved in time order, each with its name.
    let printed = logs(&endpoint, &["--since", "10m"]);
    let output = String::from_utf8_lossy(&printed.stdout).into_owned();
    assert!(printed.status.success(), "{}", text(&printed));
    let order = [
        ("connection", "speaker connected"),
        ("messages", "fan-out failed"),
        ("messages", "joined session"),
        ("messages", "platform.runtimeDone"),
        ("connection", "listener connected"),
        ("messages", "Runtime.ExitError"),
        ("messages", "store write failed"),
    ];
    let mut last = 0;
    for (function, said) in order {
        let (index, line) = output
            .lines()
            .enumerate()
            .find(|(_, line)| line.contains(said))
            .unwrap_or_else(|| panic!("{said} printed: {output}"));
        assert!(index >= last, "{said} after the line before it: {output}");
        assert!(line.split_whitespace().nth(1) == Some(function), "{line}");
        last = index;
    }
    assert!(output.contains("INFO joined session"), "JSON shown as level and message: {output}");
    assert!(!output.contains("an old failure"), "{output}");

    let one = logs(&endpoint, &["--since", "10m", "--function", "connection"]);
    let output = String::from_utf8_lossy(&one.stdout).into_owned();
    assert!(one.status.success(), "{}", text(&one));
    assert_eq!(output.lines().count(), 2, "{output}");
    assert!(output.lines().all(|line| line.split_whitespace().nth(1) == Some("connection")), "{output}");

    // `--follow`: a line written while it runs is printed once, and Ctrl-C stops it cleanly.
    let following = xtask_command(
        &endpoint,
        &["logs", "--stage", "dev", "--region", REGION, "--since", "10m", "--function", "connection", "--follow"],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("logs --follow runs");
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let later = json!({"level": "INFO", "fields": {"message": "listener left"}}).to_string();
    put(&logs_client, &group("connection"), "2024/05/01/[$LATEST]later", &[(now_millis(), later)]).await;
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let interrupted =
        std::process::Command::new("kill").args(["-INT", &following.id().to_string()]).status().expect("kill runs");
    assert!(interrupted.success());
    let followed = following.wait_with_output().expect("logs --follow stops");
    let output = String::from_utf8_lossy(&followed.stdout).into_owned();
    assert_eq!(followed.status.code(), Some(0), "{}", text(&followed));
    for said in ["speaker connected", "listener connected", "listener left"] {
        assert_eq!(output.matches(said).count(), 1, "{said} printed once: {output}");
    }

    let unknown = logs(&endpoint, &["--function", "nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    let said = text(&unknown);
    assert!(said.contains("unknown function `nope`"), "{said}");
    for function in contract::CONTRACT.functions {
        assert!(said.contains(function.name), "{said}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

//! End to end under faults: a function process killed in the middle of an invocation, DynamoDB
//! down or throttling, `@connections` answering 429. The faults are switched on at run time
//! ([`DevStack::faults`], or `/_local/faults` over HTTP), each test on its own stack; what is
//! left in DynamoDB afterwards is read from the local endpoint itself, behind the fault proxy.
//! The functions' output goes to `target/devstack-tests/<test>.log`.

mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use contract::tables::connections::{AUDIENCE, BY_SESSION_INDEX, CONNECTION_ID, SESSION_ID, TTL};
use devstack::template::ServiceTemplate;
use devstack::{ConnectionsFault, DevStack, DynamoFault, GatewayLimits, Outage, Rate};
use serde_json::{Value, json};
use session_core::model::LISTENER_AUDIENCE_PREFIX;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::{
    Socket, WAIT, connect, create_session, join, management_endpoint, next, next_of, next_unchecked, send, start, token,
};

const MESSAGES: &str = "MessagesFunction";
const CONNECTION: &str = "ConnectionFunction";

/// A function's timeout, as the template the stack runs sets it.
fn function_timeout(stack: &DevStack, function: &str) -> Duration {
    let template = ServiceTemplate::read(stack.template()).expect("the stack's template reads");
    let spec = template.function(function).expect("the function is in the template");
    Duration::from_secs(spec.timeout_seconds)
}

/// A handshake, bounded so a hanging gateway fails the test rather than stalling it.
async fn handshake(stack: &DevStack, query: &str) -> Result<Socket, u16> {
    tokio::time::timeout(WAIT, connect(stack, query)).await.expect("the handshake is answered")
}

/// Waits until no process of `function` holds an invocation (a reply can reach a client before
/// the invocation that posted it has returned).
async fn idle(stack: &DevStack, function: &str) {
    tokio::time::timeout(WAIT, async {
        while stack.processes(function).iter().any(|process| process.invocation.is_some()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the function's invocations finish");
}

/// The process of `function` that holds an invocation, once one does and a DynamoDB request
/// hangs (so the invocation is in the middle of its work).
async fn hung_process(stack: &DevStack, function: &str) -> u32 {
    tokio::time::timeout(WAIT, async {
        loop {
            let busy = stack.processes(function).into_iter().find(|process| process.invocation.is_some());
            if let (Some(process), true) = (busy, stack.faults().stats().dynamodb_hung > 0) {
                return process.pid;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("an invocation reaches a process and waits on DynamoDB")
}

/// SIGKILL, as the operating system's OOM killer or a crash would end a process.
fn kill(pid: u32) {
    let status = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().expect("kill runs");
    assert!(status.success(), "kill -KILL {pid}: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_invocation_fails_only_its_frame() {
    let stack = start("killed-mid-invocation", GatewayLimits::default(), None).await;
    let session = create_session(&stack, &token(&stack, "speaker-1")).await;
    let mut victim = join(&stack, &session, "de").await;
    let mut bystander = join(&stack, &session, "fr").await;

    // DynamoDB hangs, so the victim's heartbeat stays in the middle of its invocation, the only
    // one of the function once the joins' invocations have returned.
    idle(&stack, MESSAGES).await;
    stack.faults().set_dynamodb(DynamoFault::Down(Outage::Hang));
    send(&mut victim, json!({"action": "heartbeat"})).await;
    let pid = hung_process(&stack, MESSAGES).await;
    kill(pid);
    stack.faults().clear();

    // API Gateway's own frame, not the service's: no `type`, so it is read unchecked.
    let failed = next_unchecked(&mut victim).await;
    assert_eq!(failed["message"], "Internal server error", "API Gateway's answer to a failed function: {failed}");
    assert!(failed["connectionId"].is_string() && failed["requestId"].is_string(), "{failed}");
    // The other client, connected all along, gets nothing of it and is served as usual.
    send(&mut bystander, json!({"action": "heartbeat"})).await;
    assert_eq!(next(&mut bystander).await["type"], "heartbeatAck", "the bystander's first message is its answer");
    // The victim's connection stays open too, as on AWS; the next frame starts a new process.
    send(&mut victim, json!({"action": "heartbeat"})).await;
    assert_eq!(next(&mut victim).await["type"], "heartbeatAck");
    assert!(stack.processes(MESSAGES).iter().all(|process| process.pid != pid), "the killed process is gone");
    let health = reqwest::get(format!("{}/health", stack.http_url())).await.expect("the gateway still answers");
    assert_eq!(health.status(), 200);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_refusing_connections_is_503_and_leaves_nothing_half_written() {
    dynamodb_down_is_503_and_recovers("dynamodb-refused", Outage::Refuse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_hanging_is_503_and_leaves_nothing_half_written() {
    dynamodb_down_is_503_and_recovers("dynamodb-hanging", Outage::Hang).await;
}

/// While DynamoDB is down, a listener's handshake is refused with 503 before the function's
/// timeout and a speaker's frame is answered `SERVICE_UNAVAILABLE` with `retryAfter`; once it
/// is back, the same handshake succeeds and the session's counts match its live rows.
async fn dynamodb_down_is_503_and_recovers(test: &str, outage: Outage) {
    let stack = start(test, GatewayLimits::default(), None).await;
    let speaker_token = token(&stack, "speaker-2");
    let session = create_session(&stack, &speaker_token).await;
    let mut speaker =
        handshake(&stack, &format!("sessionId={session}&token={speaker_token}")).await.expect("the owner connects");
    let _first = join(&stack, &session, "de").await;
    assert_eq!(next_of(&mut speaker, "listenerCountChanged").await["listenerCount"], 1);

    stack.faults().set_dynamodb(DynamoFault::Down(outage));
    let query = format!("sessionId={session}&targetLanguage=fr");
    let bound = function_timeout(&stack, CONNECTION);
    let started = Instant::now();
    let refused = handshake(&stack, &query).await.err();
    let took = started.elapsed();
    assert_eq!(refused, Some(503), "a listener's handshake while DynamoDB is down ({outage:?}), after {took:?}");
    assert!(took < bound, "refused after {took:?}: not before the function's timeout ({bound:?})");

    let bound = function_timeout(&stack, MESSAGES);
    let started = Instant::now();
    send(&mut speaker, json!({"action": "getSessionStatus"})).await;
    let refusal = next(&mut speaker).await;
    let took = started.elapsed();
    assert_eq!(refusal["type"], "error", "a speaker's frame while DynamoDB is down: {refusal}");
    assert_eq!(refusal["code"], "SERVICE_UNAVAILABLE", "{refusal}");
    assert!(refusal["retryAfter"].is_u64(), "the client is told when to retry: {refusal}");
    assert!(took < bound, "answered after {took:?}: not before the function's timeout ({bound:?})");

    stack.faults().clear();
    let mut second = handshake(&stack, &query).await.expect("the same handshake succeeds once DynamoDB is back");
    send(&mut second, json!({"action": "joinSession", "sessionId": session, "targetLanguage": "fr"})).await;
    assert_eq!(next_of(&mut second, "sessionJoined").await["listenerCount"], 2);

    let state = stored_session(&stack, &session).await;
    let management = management_endpoint(&stack);
    for row in &state.rows {
        let live = reqwest::get(format!("{management}/@connections/{}", row.connection_id)).await.expect("answered");
        assert_eq!(live.status(), 200, "connection row {row:?} has no live connection: an orphan");
    }
    let listeners: Vec<&Row> = state.rows.iter().filter(|row| row.language.is_some()).collect();
    assert_eq!(state.listener_count, listeners.len() as u64, "listenerCount against the listener rows: {state:?}");
    let mut by_language = BTreeMap::new();
    for row in &listeners {
        *by_language.entry(row.language.clone().unwrap_or_default()).or_insert(0) += 1;
    }
    assert_eq!(state.language_counts, by_language, "languageCounts against the listener rows");
    assert_eq!(state.rows.len(), stack.open_connections(), "one row per open connection (the speaker, two listeners)");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_reaches_every_listener_through_a_burst_of_429s() {
    let stack = start("connections-throttled", GatewayLimits::default(), None).await;
    let speaker_token = token(&stack, "speaker-3");
    let session = create_session(&stack, &speaker_token).await;
    let mut speaker =
        handshake(&stack, &format!("sessionId={session}&token={speaker_token}")).await.expect("the owner connects");
    let mut listeners = Vec::new();
    for language in ["de", "fr", "es"] {
        listeners.push(join(&stack, &session, language).await);
    }
    while next_of(&mut speaker, "listenerCountChanged").await["listenerCount"] != 3 {}

    // As many 429s as listeners. Posts that go out together each have their first attempt
    // refused; posts that go out one at a time leave the first recipient three refusals. Either
    // way only a post retried after a 429 gets through (four attempts are enough in any order).
    let burst = u32::try_from(listeners.len()).expect("a few listeners");
    stack.faults().set_connections(ConnectionsFault::Throttle(Rate::Next(burst)));
    send(&mut speaker, json!({"action": "pauseBroadcast"})).await;
    for listener in &mut listeners {
        assert_eq!(next_of(listener, "broadcastPaused").await["type"], "broadcastPaused");
    }
    assert_eq!(stack.faults().stats().connections_throttled, u64::from(burst), "every planned 429 was answered");
    assert_eq!(stack.faults().connections(), ConnectionsFault::Healthy, "the burst is over");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fault_switch_is_served_over_http() {
    let stack = start("fault-switch", GatewayLimits::default(), None).await;
    let session = create_session(&stack, &token(&stack, "speaker-4")).await;
    let switch = stack.ready_json()["faults_url"].as_str().expect("the ready file names the switch").to_owned();
    let client = reqwest::Client::new();
    let post = |body: Value| client.post(&switch).json(&body).send();

    let throttled: Value =
        post(json!({"dynamodb": {"fault": "throttle"}})).await.expect("answered").json().await.expect("JSON");
    assert_eq!(throttled["dynamodb"], json!({"fault": "throttle"}));
    let query = format!("sessionId={session}&targetLanguage=de");
    assert_eq!(handshake(&stack, &query).await.err(), Some(503), "DynamoDB's ThrottlingException is a 503");
    assert!(stack.faults().stats().dynamodb_throttled > 0);

    let refused = post(json!({"dynamodb": {"fault": "slow"}})).await.expect("answered");
    assert_eq!(refused.status(), 400, "a slow fault needs its latency");
    let message: Value = refused.json().await.expect("JSON");
    assert!(message["message"].as_str().is_some_and(|text| text.contains("latencyMs")), "{message}");
    assert_eq!(stack.faults().dynamodb(), DynamoFault::Throttle(Rate::Always), "a refused change changes nothing");

    let slow =
        json!({"dynamodb": {"fault": "slow", "latencyMs": 20}, "connections": {"fault": "throttle", "percent": 0}});
    assert_eq!(post(slow).await.expect("answered").status(), 200);
    assert!(handshake(&stack, &query).await.is_ok(), "a slow DynamoDB still answers");
    assert!(stack.faults().stats().dynamodb_delayed > 0);

    let cleared: Value = client.delete(&switch).send().await.expect("answered").json().await.expect("JSON");
    assert_eq!(cleared["dynamodb"], json!({"fault": "healthy"}));
    assert_eq!(cleared["connections"], json!({"fault": "healthy"}));
    let read: Value = reqwest::get(&switch).await.expect("answered").json().await.expect("JSON");
    assert_eq!((&read["dynamodb"], &read["connections"]), (&cleared["dynamodb"], &cleared["connections"]));
    assert!(read["stats"]["dynamodbForwarded"].as_u64().is_some_and(|forwarded| forwarded > 0), "{read}");
    stack.stop().await;
}

/// One row of the Connections table.
#[derive(Debug)]
struct Row {
    connection_id: String,
    /// A listener's language; `None` for the speaker.
    language: Option<String>,
}

/// A session as stored: its counts, and its live connection rows.
#[derive(Debug)]
struct StoredSession {
    listener_count: u64,
    /// Languages with a count above zero.
    language_counts: BTreeMap<String, u64>,
    rows: Vec<Row>,
}

/// Reads a session's item and its unexpired connection rows from the local endpoint itself.
async fn stored_session(stack: &DevStack, session: &str) -> StoredSession {
    let client = stack.dynamodb_client();
    let tables = stack.table_names();
    let item = client
        .get_item()
        .table_name(&tables[contract::tables::SESSIONS.logical_id])
        .key(contract::tables::sessions::SESSION_ID, AttributeValue::S(session.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .expect("the session is read")
        .item
        .expect("the session exists");
    let number = |value: &AttributeValue| value.as_n().ok().and_then(|n| n.parse::<u64>().ok());
    let listener_count = item.get("listenerCount").and_then(number).expect("a listenerCount");
    let language_counts = item
        .get("languageCounts")
        .and_then(|counts| counts.as_m().ok())
        .map(|counts| {
            counts
                .iter()
                .filter_map(|(language, count)| Some((language.clone(), number(count)?)))
                .filter(|(_, count)| *count > 0)
                .collect()
        })
        .unwrap_or_default();

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
    let mut rows = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .query()
            .table_name(&tables[contract::tables::CONNECTIONS.logical_id])
            .index_name(BY_SESSION_INDEX)
            .key_condition_expression("#session = :session")
            .expression_attribute_names("#session", SESSION_ID)
            .expression_attribute_values(":session", AttributeValue::S(session.to_owned()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("the session's connections are read");
        for row in page.items() {
            if row.get(TTL).and_then(number).is_some_and(|ttl| ttl <= now) {
                continue;
            }
            let text = |name: &str| row.get(name).and_then(|value| value.as_s().ok()).cloned();
            let audience = text(AUDIENCE).unwrap_or_default();
            rows.push(Row {
                connection_id: text(CONNECTION_ID).expect("a connection id"),
                language: audience.strip_prefix(LISTENER_AUDIENCE_PREFIX).map(str::to_owned),
            });
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    StoredSession { listener_count, language_counts, rows }
}

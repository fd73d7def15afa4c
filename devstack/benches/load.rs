//! The local stack under a live audience, with release binaries and the `dev` stage's default
//! limits (`cargo xtask bench --load` builds them first):
//!
//! - `LOAD_LISTENERS` listeners over `LOAD_SESSIONS` sessions, each listener on its own
//!   loopback source address in 127.0.0.0/8 (`LOAD_PER_ADDRESS` listeners share one), so the
//!   per-address limits see distinct clients and are not raised;
//! - every session's speaker sends `sendAudio` at 10 chunks per second (100 ms of PCM, 16 kHz
//!   mono s16le, 3,200 bytes before base64) while not paused, and one control every
//!   `LOAD_CONTROL_MS` in the cycle pause, resume, mute, unmute, `setVolume`; the next control
//!   waits until the previous one has reached every live listener (or 10 s passed). As a
//!   client should, a speaker told `SERVICE_UNAVAILABLE` (or API Gateway's `Internal server
//!   error`) resends its control after the
//!   `retryAfter` it was given, if the control has not yet reached everyone (controls set a
//!   state, so a listener may then get one twice: counted apart, not as a duplicate);
//! - the speakers start before the listeners connect (`LOAD_CONNECT_CONCURRENCY` handshakes in
//!   flight), so joins meet fan-outs; once everyone has connected the run goes on for
//!   `LOAD_SECONDS`, during which `LOAD_DROP_PERCENT` of the listeners drop their TCP
//!   connection abruptly (reset, no close frame).
//!
//! It prints the connect rate and the refusals by status, each control's fan-out time until the
//! last live listener of its session has it (p50/p99), the gateway's peak memory, and the
//! `messages` function's own cost of a fan-out (`fan-out done` lines in the functions' log,
//! `target/devstack-load.log`). Timings are printed, never asserted; two things are checked and
//! fail the run (exit 1): every control a speaker sent after a live listener joined reaches that
//! listener (exactly once, resends apart), and after the run each session's `listenerCount`
//! equals its listener rows in the Connections table and the number of listeners still
//! connected. Counts left too high by writes whose answers were lost are what the service's
//! recount lowers; a heartbeat runs it every 5 minutes, so the bench runs it (the service's
//! own code, against the stack) once the run is over, and prints the counts before and after.
//!
//! The clients run in a child process (this binary again, with the plan in `LOAD_CLIENT_PLAN`),
//! so the peak memory of this process is the local gateway's and Runtime API's, not the
//! clients'. Environment and defaults: `LOAD_LISTENERS` 2000, `LOAD_SESSIONS` 4,
//! `LOAD_SECONDS` 60, `LOAD_DROP_PERCENT` 10, `LOAD_PER_ADDRESS` 1, `LOAD_CONTROL_MS` 1000,
//! `LOAD_CONNECT_CONCURRENCY` 32.

use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use contract::tables;
use devstack::{DevConfig, DevStack, LogSink, TokenRequest};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use session_core::config::Limits;
use session_core::ids::SessionId;
use session_core::lifecycle::Lifecycle;
use session_core::store::{Store, TableNames};
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, client_async, connect_async};

/// The child process finds its plan here.
const PLAN_ENV: &str = "LOAD_CLIENT_PLAN";
/// The child's one line of results on its standard output starts with this.
const RESULT_PREFIX: &str = "load-result ";
/// The speaker's controls, in the order it sends them, with the message listeners get.
const CONTROLS: [(&str, &str); 5] = [
    ("pauseBroadcast", "broadcastPaused"),
    ("resumeBroadcast", "broadcastResumed"),
    ("muteBroadcast", "broadcastMuted"),
    ("unmuteBroadcast", "broadcastUnmuted"),
    ("setVolume", "volumeChanged"),
];
/// The `retryAfter` of `SERVICE_UNAVAILABLE`: when a speaker told so resends its control.
const RETRY_AFTER: Duration = Duration::from_secs(2);
/// How long a speaker waits for a control to reach everyone before it sends the next one.
const FAN_OUT_TIMEOUT: Duration = Duration::from_secs(10);
const LANGUAGES: [&str; 5] = ["de", "fr", "es", "it", "ja"];

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn percentile(samples: &mut [f64], percent: usize) -> f64 {
    samples.sort_unstable_by(f64::total_cmp);
    let index = (samples.len() * percent / 100).min(samples.len().saturating_sub(1));
    samples.get(index).copied().unwrap_or(0.0)
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
}

/// A `/proc/self/status` field in kB (Linux only).
fn proc_status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What the coordinator tells the clients' process.
#[derive(Debug, Serialize, Deserialize)]
struct Plan {
    websocket_url: String,
    gateway: SocketAddr,
    speakers: Vec<SpeakerPlan>,
    listeners: usize,
    seconds: u64,
    drop_percent: usize,
    per_address: usize,
    control_ms: u64,
    connect_concurrency: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct SpeakerPlan {
    session_id: String,
    token: String,
}

/// What the clients saw.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Outcome {
    connected: usize,
    connect_seconds: f64,
    /// `"<status> <code>"` → listeners refused with it.
    refused: BTreeMap<String, usize>,
    /// Handshakes that failed without an HTTP status.
    failed: BTreeMap<String, usize>,
    dropped: usize,
    /// Listeners the bench did not drop whose connection ended anyway, by how it ended.
    closed_by_service: BTreeMap<String, usize>,
    sessions: Vec<SessionOutcome>,
    /// Per control sent after the last connect: until the last live listener has it.
    control_latency_ms: Vec<f64>,
    /// The same for the controls sent while the listeners were connecting.
    control_latency_connecting_ms: Vec<f64>,
    controls_sent: usize,
    controls_with_loss: usize,
    /// Controls that reached no listener (refused, or failed before the fan-out: the speaker
    /// was told, with an `error` or API Gateway's `Internal server error`).
    controls_reaching_none: usize,
    expected: usize,
    received: usize,
    lost: usize,
    duplicated: usize,
    /// Controls a speaker sent again after `SERVICE_UNAVAILABLE`.
    controls_resent: usize,
    /// Second copies of a resent control (its first send had reached the listener).
    repeated_by_resends: usize,
    /// Control messages that arrived after the speaker had sent its next control (it waits 10 s
    /// at most), or that belong to no control.
    late: usize,
    /// Controls delivered to a listener that joined while they were in flight (not expected).
    joined_in_flight: usize,
    lost_examples: Vec<String>,
    unexpected_listener_messages: BTreeMap<String, usize>,
    audio_sent: usize,
    speaker_messages: BTreeMap<String, usize>,
    steady_seconds: f64,
    clients_peak_kb: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct SessionOutcome {
    session_id: String,
    connected: usize,
    dropped: usize,
    closed_by_service: usize,
    /// Connected, not dropped, not closed: what the service should count.
    open: usize,
    controls: usize,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    match std::env::var(PLAN_ENV) {
        Ok(plan) => clients(serde_json::from_str(&plan).context("reading the clients' plan")?).await,
        Err(_) => coordinate().await,
    }
}

// The coordinator: the stack, the sessions, the checks against the tables, the report.

async fn coordinate() -> Result<()> {
    let listeners = setting("LOAD_LISTENERS", 2000);
    let sessions = setting("LOAD_SESSIONS", 4).max(1);
    let seconds = setting("LOAD_SECONDS", 60);
    let drop_percent = setting("LOAD_DROP_PERCENT", 10).min(100);
    let per_address = setting("LOAD_PER_ADDRESS", 1).max(1);
    let control_ms = setting("LOAD_CONTROL_MS", 1000).max(1);
    let connect_concurrency = setting("LOAD_CONNECT_CONCURRENCY", 32).max(1);
    let _ = rlimit::increase_nofile_limit(65_536);
    let root = testkit::workspace_root();
    let binaries = tokio::task::spawn_blocking(move || devstack::binaries::build(&root, true)).await??;
    // The stage's own limits: the listeners come from many addresses instead.
    let stage = stacks::stages::dev();
    let cap = usize::try_from(stage.limits.max_listeners_per_session).unwrap_or(usize::MAX);
    if listeners.div_ceil(sessions) > cap {
        println!("note: {} listeners per session is over the stage's cap of {cap}", listeners.div_ceil(sessions));
    }
    let log = devstack::binaries::target_directory(&testkit::workspace_root()).join("devstack-load.log");
    let _ = std::fs::remove_file(&log);
    let stack = DevStack::start(DevConfig::local(stage, binaries, LogSink::file(&log)?)?).await?;
    let result = run(
        &stack,
        &log,
        sessions,
        Plan {
            websocket_url: stack.websocket_url(),
            gateway: gateway_address(&stack.websocket_url())?,
            speakers: Vec::new(),
            listeners,
            seconds: u64::try_from(seconds).unwrap_or(u64::MAX),
            drop_percent,
            per_address,
            control_ms: u64::try_from(control_ms).unwrap_or(u64::MAX),
            connect_concurrency,
        },
    )
    .await;
    stack.stop().await;
    let failures = result?;
    if !failures.is_empty() {
        bail!("load: {}", failures.join("; "));
    }
    Ok(())
}

/// `ws://127.0.0.1:PORT/dev` → `127.0.0.1:PORT`.
fn gateway_address(url: &str) -> Result<SocketAddr> {
    let authority = url.trim_start_matches("ws://").split('/').next().unwrap_or_default();
    authority.parse().with_context(|| format!("the gateway's address in {url}"))
}

/// Runs the clients against `stack` and reports; answers the correctness failures.
async fn run(stack: &DevStack, log: &std::path::Path, sessions: usize, mut plan: Plan) -> Result<Vec<String>> {
    let http = reqwest::Client::new();
    for index in 0..sessions {
        let request = TokenRequest::id(&format!("load-speaker-{index}"), 7200);
        let token = stack.token(&request)?;
        let created: Value = http
            .post(format!("{}/sessions", stack.http_url()))
            .bearer_auth(&token)
            .json(&json!({"sourceLanguage": "en"}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let session_id = created["sessionId"].as_str().context("POST /sessions answered no sessionId")?.to_owned();
        plan.speakers.push(SpeakerPlan { session_id, token });
    }
    let addresses = plan.listeners.div_ceil(plan.per_address);
    println!(
        "load: {} listeners over {sessions} sessions, dev stage limits, {} listener(s) per source address ({addresses} addresses in 127.0.0.0/8), {} s steady, {} % dropped",
        plan.listeners, plan.per_address, plan.seconds, plan.drop_percent
    );

    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .env(PLAN_ENV, serde_json::to_string(&plan)?)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the clients' process")?;
    let mut lines = BufReader::new(child.stdout.take().context("the clients' output")?).lines();
    let mut outcome = None;
    while let Some(line) = lines.next_line().await? {
        match line.strip_prefix(RESULT_PREFIX) {
            Some(result) => {
                outcome = Some(serde_json::from_str::<Outcome>(result)?);
                break;
            }
            None => println!("{line}"),
        }
    }
    let Some(outcome) = outcome else {
        let status = child.wait().await?;
        bail!("the clients' process ended without results ({status})");
    };
    // The clients stay connected until the tables have been read.
    let mut failures = report(&outcome);
    failures.extend(check_counts(stack, &outcome).await?);
    report_fan_out_log(log);
    report_memory(&outcome);
    let stats = stack.function_stats();
    let stats: Vec<String> = stats
        .iter()
        .map(|(name, stats)| format!("{name} {} ({} cold)", stats.invocations, stats.cold_starts))
        .collect();
    println!("invocations: {}", stats.join(", "));
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"done\n").await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    Ok(failures)
}

/// Prints what the clients saw; answers the lost-message failures.
fn report(outcome: &Outcome) -> Vec<String> {
    let mut failures = Vec::new();
    let attempted =
        outcome.connected + outcome.refused.values().sum::<usize>() + outcome.failed.values().sum::<usize>();
    println!(
        "connects: {} of {attempted} listeners in {:.1} s = {:.1} listeners/s (authorizer + $connect + moto, while the speakers sent audio and controls)",
        outcome.connected,
        outcome.connect_seconds,
        outcome.connected as f64 / outcome.connect_seconds.max(1e-9)
    );
    println!("  refused: {}", summary(&outcome.refused));
    println!("  failed without a status: {}", summary(&outcome.failed));
    println!(
        "run: {:.1} s after the last connect; {} listeners dropped without a close frame; closed by the service (not dropped): {}",
        outcome.steady_seconds,
        outcome.dropped,
        summary(&outcome.closed_by_service)
    );
    println!(
        "fan-out: a speaker control until the last live listener of its session has it ({} sent; {} with a loss: {} reached nobody, {} reached only some):",
        outcome.controls_sent,
        outcome.controls_with_loss,
        outcome.controls_reaching_none,
        outcome.controls_with_loss - outcome.controls_reaching_none
    );
    for (phase, latency) in [
        ("after the last connect", &outcome.control_latency_ms),
        ("while listeners connected", &outcome.control_latency_connecting_ms),
    ] {
        let mut latency = latency.clone();
        println!(
            "  {phase}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} controls)",
            percentile(&mut latency, 50),
            percentile(&mut latency, 99),
            latency.last().copied().unwrap_or(0.0),
            latency.len()
        );
    }
    println!(
        "messages: {} expected (a control × a live listener that had joined before it was sent), {} received, {} lost, {} duplicated, {} late (after the next control was sent); {} more reached listeners that joined while they were in flight; {} controls resent after SERVICE_UNAVAILABLE, {} copies repeated by those resends",
        outcome.expected,
        outcome.received,
        outcome.lost,
        outcome.duplicated,
        outcome.late,
        outcome.joined_in_flight,
        outcome.controls_resent,
        outcome.repeated_by_resends
    );
    for example in &outcome.lost_examples {
        println!("  lost: {example}");
    }
    if !outcome.unexpected_listener_messages.is_empty() {
        println!("  listeners also got: {}", summary(&outcome.unexpected_listener_messages));
    }
    if outcome.lost > 0 || outcome.duplicated > 0 {
        failures.push(format!(
            "{} control messages lost and {} duplicated on live listeners",
            outcome.lost, outcome.duplicated
        ));
    }
    println!("audio: {} chunks sent; the speakers got: {}", outcome.audio_sent, summary(&outcome.speaker_messages));
    failures
}

fn summary(counts: &BTreeMap<String, usize>) -> String {
    if counts.is_empty() {
        return "none".to_owned();
    }
    counts.iter().map(|(key, count)| format!("{key}: {count}")).collect::<Vec<_>>().join(", ")
}

/// Waits for every session's `listenerCount`, its listener rows and the bench's open
/// listeners to agree; if they do not, runs the service's recount on each session and waits
/// again. Prints the counts both times; answers the mismatches left.
async fn check_counts(stack: &DevStack, outcome: &Outcome) -> Result<Vec<String>> {
    let counts = settled_counts(stack, outcome, Duration::from_secs(20)).await?;
    println!("rows and counts after the run (the dropped listeners' $disconnects included):");
    let mut failures = print_counts(outcome, &counts);
    if !failures.is_empty() {
        recount(stack, outcome).await?;
        let counts = settled_counts(stack, outcome, Duration::from_secs(10)).await?;
        println!("rows and counts after the recount a heartbeat runs every 5 minutes:");
        failures = print_counts(outcome, &counts);
    }
    let speakers = outcome.sessions.len();
    println!(
        "  the gateway holds {} connections ({} listeners open + {speakers} speakers)",
        stack.open_connections(),
        outcome.sessions.iter().map(|session| session.open).sum::<usize>()
    );
    Ok(failures)
}

/// Each session's (`listenerCount`, listener rows), once they agree with the open listeners
/// or `patience` has passed.
async fn settled_counts(
    stack: &DevStack,
    outcome: &Outcome,
    patience: Duration,
) -> Result<Vec<(Option<usize>, usize)>> {
    let client = stack.dynamodb_client();
    let names = stack.table_names();
    let sessions_table = names.get(tables::SESSIONS.logical_id).context("no Sessions table")?;
    let connections_table = names.get(tables::CONNECTIONS.logical_id).context("no Connections table")?;
    let deadline = Instant::now() + patience;
    loop {
        let mut counts = Vec::new();
        for session in &outcome.sessions {
            let count = listener_count(&client, sessions_table, &session.session_id).await?;
            let rows = listener_rows(&client, connections_table, &session.session_id).await?;
            counts.push((count, rows));
        }
        let settled = outcome
            .sessions
            .iter()
            .zip(&counts)
            .all(|(session, &(count, rows))| count == Some(rows) && rows == session.open);
        if settled || Instant::now() >= deadline {
            return Ok(counts);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Prints each session's counts; answers the mismatches.
fn print_counts(outcome: &Outcome, counts: &[(Option<usize>, usize)]) -> Vec<String> {
    let mut failures = Vec::new();
    for (session, &(count, rows)) in outcome.sessions.iter().zip(counts) {
        let verdict = if count == Some(rows) && rows == session.open { "ok" } else { "MISMATCH" };
        println!(
            "  {}: listenerCount {}, listener rows {rows}, listeners open {} ({} connected, {} dropped, {} closed by the service), {} controls  {verdict}",
            session.session_id,
            count.map_or_else(|| "absent".to_owned(), |count| count.to_string()),
            session.open,
            session.connected,
            session.dropped,
            session.closed_by_service,
            session.controls
        );
        if count != Some(rows) {
            failures.push(format!("{}: listenerCount {count:?} but {rows} listener rows", session.session_id));
        } else if rows != session.open {
            failures.push(format!("{}: {rows} listener rows but {} listeners open", session.session_id, session.open));
        }
    }
    failures
}

/// The recount a listener's heartbeat runs every few minutes, run now on every session: the
/// service's own code (`Store::recount_listeners`), asking the local gateway's `@connections`
/// which rows are closed.
async fn recount(stack: &DevStack, outcome: &Outcome) -> Result<()> {
    let names = stack.table_names();
    let tables = TableNames::from_lookup(|variable| {
        let table = tables::ALL.iter().find(|table| table.name_env == variable)?;
        names.get(table.logical_id).cloned()
    })?;
    let store = Store::new(stack.dynamodb_client(), tables);
    let connections = stack.connections();
    let limits = Limits::default();
    let lifecycle = Lifecycle::new(&store, &connections, &limits);
    for session in &outcome.sessions {
        let id = SessionId::parse(&session.session_id).map_err(|error| anyhow::anyhow!("{error}"))?;
        store.recount_listeners(&id, None, 0, |rows| lifecycle.closed_among(rows)).await?;
    }
    Ok(())
}

async fn listener_count(client: &aws_sdk_dynamodb::Client, table: &str, session: &str) -> Result<Option<usize>> {
    let item = client
        .get_item()
        .table_name(table)
        .key(tables::sessions::SESSION_ID, AttributeValue::S(session.to_owned()))
        .consistent_read(true)
        .send()
        .await?;
    Ok(item
        .item()
        .and_then(|item| item.get("listenerCount"))
        .and_then(|count| count.as_n().ok())
        .and_then(|count| count.parse().ok()))
}

/// The session's listener rows whose TTL has not passed (the readers' view).
async fn listener_rows(client: &aws_sdk_dynamodb::Client, table: &str, session: &str) -> Result<usize> {
    let now = epoch_ms() / 1000;
    let mut rows = 0;
    let mut start = None;
    loop {
        let page = client
            .query()
            .table_name(table)
            .index_name(tables::connections::BY_SESSION_INDEX)
            .key_condition_expression("#session = :session AND begins_with(#audience, :listener)")
            .expression_attribute_names("#session", tables::connections::SESSION_ID)
            .expression_attribute_names("#audience", tables::connections::AUDIENCE)
            .expression_attribute_values(":session", AttributeValue::S(session.to_owned()))
            .expression_attribute_values(":listener", AttributeValue::S("listener#".to_owned()))
            .set_exclusive_start_key(start)
            .send()
            .await?;
        rows += page
            .items()
            .iter()
            .filter(|item| {
                let ttl = item.get(tables::connections::TTL).and_then(|ttl| ttl.as_n().ok());
                ttl.and_then(|ttl| ttl.parse::<u64>().ok()).is_none_or(|ttl| ttl > now)
            })
            .count();
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return Ok(rows);
        }
    }
}

/// The `messages` function's `fan-out done` lines: its own time to post, and the store's query.
fn report_fan_out_log(log: &std::path::Path) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<HashMap<String, f64>> =
        text.lines().filter(|line| line.contains("fan-out done")).map(|line| fields(&strip_ansi(line))).collect();
    if all.is_empty() {
        println!("posting side: no fan-out log lines in {}", log.display());
        return;
    }
    // A fan-out to nobody (before the first listener) says nothing about posting.
    let empty =
        all.iter().filter(|fields| fields.get("recipients").is_some_and(|&recipients| recipients == 0.0)).count();
    let lines: Vec<_> =
        all.into_iter().filter(|fields| fields.get("recipients").is_none_or(|&recipients| recipients > 0.0)).collect();
    let column = |name: &str| -> Vec<f64> { lines.iter().filter_map(|fields| fields.get(name).copied()).collect() };
    let (mut post, mut query, mut elapsed) = (column("post_ms"), column("query_ms"), column("elapsed_ms"));
    let total = |name: &str| lines.iter().filter_map(|fields| fields.get(name)).sum::<f64>();
    println!(
        "posting side ({} fan-outs logged, {empty} more to nobody): post_ms p50 {:.1}, p99 {:.1}; query_ms p50 {:.1}, p99 {:.1}; elapsed_ms p50 {:.1}, p99 {:.1}; recipients {:.0}, delivered {:.0}, gone {:.0}, failed {:.0}, retried {:.0}",
        lines.len(),
        percentile(&mut post, 50),
        percentile(&mut post, 99),
        percentile(&mut query, 50),
        percentile(&mut query, 99),
        percentile(&mut elapsed, 50),
        percentile(&mut elapsed, 99),
        total("recipients"),
        total("delivered"),
        total("gone"),
        total("failed"),
        total("retried")
    );
}

/// `key=value` pairs of a log line whose value is a number.
fn fields(line: &str) -> HashMap<String, f64> {
    line.split_whitespace()
        .filter_map(|token| token.split_once('='))
        .filter_map(|(key, value)| {
            let value = value.trim_matches(|character: char| character == '"' || character == ',' || character == '}');
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The line without terminal colour codes (`ESC [ … m`).
fn strip_ansi(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut characters = line.chars();
    while let Some(character) = characters.next() {
        if character == '\u{1b}' {
            for code in characters.by_ref() {
                if code.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(character);
        }
    }
    plain
}

fn report_memory(outcome: &Outcome) {
    let megabytes =
        |kb: Option<u64>| kb.map_or_else(|| "unknown".to_owned(), |kb| format!("{:.1} MB", kb as f64 / 1024.0));
    println!(
        "memory: peak RSS (VmHWM) of the process running the local gateway and Runtime API: {} (the bench's clients run in a child process, peak {}; moto and the function processes are not included)",
        megabytes(proc_status_kb("VmHWM:")),
        megabytes(outcome.clients_peak_kb)
    );
}

// The clients' process: speakers, listeners, drops, and what each of them received.

/// A session as the clients see it: its controls so far and its listeners.
#[derive(Debug)]
struct Session {
    id: String,
    controls: Mutex<Vec<Control>>,
    /// The control in flight (1-based index into `controls`; 0 before the first).
    current: AtomicUsize,
    listeners: Mutex<Vec<Arc<Listener>>>,
    paused: AtomicBool,
    /// Control messages received by its listeners so far.
    arrivals: AtomicUsize,
    /// `SERVICE_UNAVAILABLE` errors and `Internal server error` answers its speaker got so far.
    unavailable: AtomicUsize,
}

#[derive(Debug, Clone, Copy)]
struct Control {
    kind: &'static str,
    sent: Instant,
    /// How many times the speaker sent it again after `SERVICE_UNAVAILABLE`.
    resends: usize,
}

#[derive(Debug)]
struct Listener {
    joined: Instant,
    dropped: AtomicBool,
    closed: AtomicBool,
    /// How the connection ended, if the bench did not drop it.
    ended: Mutex<Option<String>>,
    /// (control, arrival) for every control message received.
    arrivals: Mutex<Vec<(usize, Instant)>>,
    /// The highest control received.
    latest: AtomicUsize,
    late: AtomicUsize,
    hang_up: Mutex<Option<oneshot::Sender<()>>>,
}

impl Listener {
    /// A control message: it belongs to the latest control of its kind (kinds alternate, so
    /// only a message more than four controls late could be taken for a newer one).
    fn receive(&self, session: &Session, kind: &str, at: Instant) {
        let seq = lock(&session.controls).iter().rposition(|control| control.kind == kind).map_or(0, |index| index + 1);
        session.arrivals.fetch_add(1, Ordering::SeqCst);
        if seq == 0 {
            self.late.fetch_add(1, Ordering::SeqCst);
            return;
        }
        if seq != session.current.load(Ordering::SeqCst) {
            self.late.fetch_add(1, Ordering::SeqCst);
        }
        lock(&self.arrivals).push((seq, at));
        self.latest.fetch_max(seq, Ordering::SeqCst);
    }

    fn is_open(&self) -> bool {
        !self.dropped.load(Ordering::SeqCst) && !self.closed.load(Ordering::SeqCst)
    }
}

impl Session {
    /// Whether every open listener that had joined by `sent` has control `seq`.
    fn delivered(&self, seq: usize, sent: Instant) -> bool {
        lock(&self.listeners).iter().all(|listener| {
            listener.joined > sent || !listener.is_open() || listener.latest.load(Ordering::SeqCst) >= seq
        })
    }
}

type Writer = Arc<tokio::sync::Mutex<SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>>>;

/// The listener's source address: 127.b.c.d, never 127.0.x.x (so never the speakers' 127.0.0.1).
fn source_address(group: usize) -> Ipv4Addr {
    let number = group + 1;
    let byte = |value: usize| u8::try_from(value % 254 + 1).unwrap_or(1);
    Ipv4Addr::new(127, byte(number / (254 * 254)), byte(number / 254), byte(number))
}

/// 100 ms of a 440 Hz tone, 16 kHz mono s16le: 3,200 bytes.
fn pcm_chunk() -> Vec<u8> {
    (0..1600)
        .flat_map(|sample| {
            let phase = 2.0 * std::f64::consts::PI * 440.0 * f64::from(sample) / 16_000.0;
            let value = (phase.sin() * 8000.0) as i16;
            value.to_le_bytes()
        })
        .collect()
}

async fn clients(plan: Plan) -> Result<()> {
    let _ = rlimit::increase_nofile_limit(65_536);
    let stop = Arc::new(AtomicBool::new(false));
    let audio_sent = Arc::new(AtomicUsize::new(0));
    let speaker_messages = Arc::new(Mutex::new(BTreeMap::new()));
    let mut sessions = Vec::new();
    let mut speakers = Vec::new();
    for speaker in &plan.speakers {
        let url = format!("{}?sessionId={}&token={}", plan.websocket_url, speaker.session_id, speaker.token);
        let (socket, _) = connect_async(url).await.with_context(|| format!("the speaker of {}", speaker.session_id))?;
        let session = Arc::new(Session {
            id: speaker.session_id.clone(),
            controls: Mutex::new(Vec::new()),
            current: AtomicUsize::new(0),
            listeners: Mutex::new(Vec::new()),
            paused: AtomicBool::new(false),
            arrivals: AtomicUsize::new(0),
            unavailable: AtomicUsize::new(0),
        });
        let (sink, stream) = socket.split();
        let sink: Writer = Arc::new(tokio::sync::Mutex::new(sink));
        tokio::spawn(speaker_reader(Arc::clone(&session), stream, Arc::clone(&speaker_messages)));
        speakers.push(tokio::spawn(audio(
            Arc::clone(&session),
            Arc::clone(&sink),
            Arc::clone(&stop),
            Arc::clone(&audio_sent),
        )));
        speakers.push(tokio::spawn(controls(
            Arc::clone(&session),
            sink,
            Arc::clone(&stop),
            Duration::from_millis(plan.control_ms),
        )));
        sessions.push(session);
    }

    // Listeners connect while the speakers talk.
    let unexpected = Arc::new(Mutex::new(BTreeMap::new()));
    let mut outcome = Outcome::default();
    let mut all = Vec::new();
    let started = Instant::now();
    let mut attempts = futures::stream::iter(0..plan.listeners)
        .map(|index| {
            let session = &sessions[index % sessions.len()];
            let language = LANGUAGES[(index / sessions.len()) % LANGUAGES.len()];
            let source = source_address(index / plan.per_address);
            let url = format!("{}?sessionId={}&targetLanguage={language}", plan.websocket_url, session.id);
            async move { (index, connect_listener(source, plan.gateway, url).await) }
        })
        .buffer_unordered(plan.connect_concurrency);
    while let Some((index, attempt)) = attempts.next().await {
        match attempt {
            Ok(socket) => {
                let (hang_up, hung_up) = oneshot::channel();
                let listener = Arc::new(Listener {
                    joined: Instant::now(),
                    dropped: AtomicBool::new(false),
                    closed: AtomicBool::new(false),
                    ended: Mutex::new(None),
                    arrivals: Mutex::new(Vec::new()),
                    latest: AtomicUsize::new(0),
                    late: AtomicUsize::new(0),
                    hang_up: Mutex::new(Some(hang_up)),
                });
                let session = Arc::clone(&sessions[index % sessions.len()]);
                lock(&session.listeners).push(Arc::clone(&listener));
                all.push(Arc::clone(&listener));
                tokio::spawn(listen(listener, session, socket, hung_up, Arc::clone(&unexpected)));
                if all.len() % 100 == 0 {
                    eprintln!("load: {} listeners connected after {:.1} s", all.len(), started.elapsed().as_secs_f64());
                }
            }
            Err(Refusal::Status(label)) => *outcome.refused.entry(label).or_default() += 1,
            Err(Refusal::Failed(label)) => *outcome.failed.entry(label).or_default() += 1,
        }
    }
    drop(attempts);
    outcome.connect_seconds = started.elapsed().as_secs_f64();
    outcome.connected = all.len();

    // The steady run, with drops spread over its middle 80 %.
    let steady = Instant::now();
    let length = Duration::from_secs(plan.seconds);
    let drops = all.len() * plan.drop_percent / 100;
    for number in 0..drops {
        let listener = &all[number * all.len() / drops];
        let at = steady + length.mul_f64(0.1 + 0.8 * number as f64 / drops as f64);
        tokio::time::sleep_until(at.into()).await;
        if let Some(hang_up) = lock(&listener.hang_up).take() {
            let _ = hang_up.send(());
        }
    }
    tokio::time::sleep_until((steady + length).into()).await;
    stop.store(true, Ordering::SeqCst);
    for speaker in speakers {
        let _ = speaker.await;
    }
    outcome.steady_seconds = steady.elapsed().as_secs_f64();
    // Stragglers and duplicates: until no control message arrived for 3 s (60 s at most).
    let arrivals = || sessions.iter().map(|session| session.arrivals.load(Ordering::SeqCst)).sum::<usize>();
    let (mut seen, mut quiet_since, settle) = (arrivals(), Instant::now(), Instant::now());
    while quiet_since.elapsed() < Duration::from_secs(3) && settle.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if arrivals() != seen {
            (seen, quiet_since) = (arrivals(), Instant::now());
        }
    }

    tally(&sessions, steady, &mut outcome);
    outcome.audio_sent = audio_sent.load(Ordering::SeqCst);
    outcome.speaker_messages = lock(&speaker_messages).clone();
    outcome.unexpected_listener_messages = lock(&unexpected).clone();
    outcome.clients_peak_kb = proc_status_kb("VmHWM:");
    println!("{RESULT_PREFIX}{}", serde_json::to_string(&outcome)?);
    // Everyone stays connected until the coordinator has read the tables.
    let _ = tokio::task::spawn_blocking(|| std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new())).await;
    Ok(())
}

/// Counts, per control and open listener, what arrived.
fn tally(sessions: &[Arc<Session>], steady: Instant, outcome: &mut Outcome) {
    for session in sessions {
        let controls = lock(&session.controls).clone();
        let listeners = lock(&session.listeners).clone();
        let mut summary = SessionOutcome {
            session_id: session.id.clone(),
            connected: listeners.len(),
            controls: controls.len(),
            ..SessionOutcome::default()
        };
        let mut live = Vec::new();
        for listener in &listeners {
            if listener.dropped.load(Ordering::SeqCst) {
                summary.dropped += 1;
                continue;
            }
            if let Some(reason) = lock(&listener.ended).clone() {
                summary.closed_by_service += 1;
                *outcome.closed_by_service.entry(reason).or_default() += 1;
            } else {
                summary.open += 1;
            }
            outcome.late += listener.late.load(Ordering::SeqCst);
            let mut received: HashMap<usize, (usize, Instant)> = HashMap::new();
            for &(seq, at) in lock(&listener.arrivals).iter() {
                let entry = received.entry(seq).or_insert((0, at));
                entry.0 += 1;
            }
            live.push((listener, received));
        }
        outcome.controls_sent += controls.len();
        outcome.controls_resent += controls.iter().filter(|control| control.resends > 0).count();
        for (position, control) in controls.iter().enumerate() {
            let seq = position + 1;
            let mut members = 0;
            let mut complete = true;
            let mut last = Duration::ZERO;
            let mut reached = 0;
            for (listener, received) in &live {
                let (count, at) = received.get(&seq).copied().unwrap_or((0, control.sent));
                if listener.joined > control.sent {
                    outcome.joined_in_flight += count;
                    continue;
                }
                members += 1;
                outcome.expected += 1;
                match count {
                    0 => {
                        outcome.lost += 1;
                        complete = false;
                    }
                    count => {
                        reached += 1;
                        outcome.received += 1;
                        if control.resends > 0 {
                            outcome.repeated_by_resends += count - 1;
                        } else {
                            outcome.duplicated += count - 1;
                        }
                        last = last.max(at - control.sent);
                    }
                }
            }
            if members > 0 {
                if complete {
                    let latency = last.as_secs_f64() * 1e3;
                    if control.sent < steady {
                        outcome.control_latency_connecting_ms.push(latency);
                    } else {
                        outcome.control_latency_ms.push(latency);
                    }
                } else {
                    outcome.controls_with_loss += 1;
                    if reached == 0 {
                        outcome.controls_reaching_none += 1;
                    }
                    if outcome.lost_examples.len() < 10 {
                        let offset = if control.sent >= steady {
                            (control.sent - steady).as_secs_f64()
                        } else {
                            -(steady - control.sent).as_secs_f64()
                        };
                        outcome.lost_examples.push(format!(
                            "session {} control #{seq} {} (sent {offset:+.1} s from the last connect) reached {reached} of {members} live listeners",
                            session.id, control.kind
                        ));
                    }
                }
            }
        }
        outcome.dropped += summary.dropped;
        outcome.sessions.push(summary);
    }
}

enum Refusal {
    /// The handshake was answered with this HTTP status (and the body's code, if any).
    Status(String),
    /// No status: the connection or the handshake failed.
    Failed(String),
}

/// A listener's handshake from `source`.
async fn connect_listener(
    source: Ipv4Addr,
    gateway: SocketAddr,
    url: String,
) -> Result<WebSocketStream<TcpStream>, Refusal> {
    let attempt = async {
        let socket = TcpSocket::new_v4().map_err(|error| Refusal::Failed(format!("socket: {error}")))?;
        socket
            .bind(SocketAddr::new(source.into(), 0))
            .map_err(|error| Refusal::Failed(format!("bind: {}", error.kind())))?;
        let stream =
            socket.connect(gateway).await.map_err(|error| Refusal::Failed(format!("connect: {}", error.kind())))?;
        match client_async(url, stream).await {
            Ok((socket, _)) => Ok(socket),
            Err(WsError::Http(response)) => {
                let code = response
                    .body()
                    .as_deref()
                    .and_then(|body| serde_json::from_slice::<Value>(body).ok())
                    .and_then(|body| body.get("code").or_else(|| body.get("message")).cloned())
                    .and_then(|code| code.as_str().map(str::to_owned))
                    .unwrap_or_default();
                Err(Refusal::Status(format!("{} {code}", response.status().as_u16()).trim_end().to_owned()))
            }
            Err(error) => Err(Refusal::Failed(format!("handshake: {error}"))),
        }
    };
    tokio::time::timeout(Duration::from_secs(30), attempt)
        .await
        .unwrap_or_else(|_| Err(Refusal::Failed("handshake: no answer in 30 s".to_owned())))
}

/// One listener: records each control it receives until the bench drops it (a reset, no close
/// frame) or the connection ends.
async fn listen(
    listener: Arc<Listener>,
    session: Arc<Session>,
    mut socket: WebSocketStream<TcpStream>,
    mut hung_up: oneshot::Receiver<()>,
    unexpected: Arc<Mutex<BTreeMap<String, usize>>>,
) {
    let ended = loop {
        tokio::select! {
            Ok(()) = &mut hung_up => {
                listener.dropped.store(true, Ordering::SeqCst);
                let _ = socket.get_ref().set_zero_linger();
                drop(socket);
                return;
            }
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let at = Instant::now();
                    let kind = serde_json::from_str::<Value>(&text)
                        .ok()
                        .and_then(|message| message["type"].as_str().map(str::to_owned))
                        .unwrap_or_else(|| "not JSON".to_owned());
                    if CONTROLS.iter().any(|(_, control)| *control == kind) {
                        listener.receive(&session, &kind, at);
                    } else {
                        *lock(&unexpected).entry(kind).or_default() += 1;
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    break frame.map_or_else(
                        || "close without a code".to_owned(),
                        |frame| format!("close {} {}", u16::from(frame.code), frame.reason),
                    );
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => break format!("error: {error}"),
                None => break "end of stream".to_owned(),
            }
        }
    };
    *lock(&listener.ended) = Some(ended);
    listener.closed.store(true, Ordering::SeqCst);
}

/// Counts what a speaker is told, errors by code.
async fn speaker_reader(
    session: Arc<Session>,
    mut stream: SplitStream<WebSocketStream<MaybeTlsStream<TcpStream>>>,
    counts: Arc<Mutex<BTreeMap<String, usize>>>,
) {
    while let Some(Ok(message)) = stream.next().await {
        if let Message::Text(text) = message {
            let message: Value = serde_json::from_str(&text).unwrap_or_default();
            // API Gateway's own messages (a failed or refused route) have no `type`.
            let kind = message["type"].as_str().or_else(|| message["message"].as_str()).unwrap_or("not JSON");
            // Both mean "not done, try again": the service's 503, and API Gateway's answer when
            // the invocation itself failed (the local stack's too: no process took it in time).
            if message["code"] == "SERVICE_UNAVAILABLE" || message["message"] == "Internal server error" {
                session.unavailable.fetch_add(1, Ordering::SeqCst);
            }
            let label = match message["code"].as_str() {
                Some(code) => format!("{kind} {code}"),
                None => kind.to_owned(),
            };
            *lock(&counts).entry(label).or_default() += 1;
        }
    }
    *lock(&counts).entry("speaker connection closed".to_owned()).or_default() += 1;
}

/// 10 chunks a second while the broadcast is not paused.
async fn audio(session: Arc<Session>, sink: Writer, stop: Arc<AtomicBool>, sent: Arc<AtomicUsize>) {
    let chunk = base64::engine::general_purpose::STANDARD.encode(pcm_chunk());
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut chunk_id = 0_u64;
    while !stop.load(Ordering::SeqCst) {
        tick.tick().await;
        if session.paused.load(Ordering::SeqCst) {
            continue;
        }
        let frame = json!({"action": "sendAudio", "audioData": chunk, "chunkId": chunk_id, "timestamp": epoch_ms()});
        chunk_id += 1;
        if sink.lock().await.send(Message::text(frame.to_string())).await.is_err() {
            return;
        }
        sent.fetch_add(1, Ordering::SeqCst);
    }
}

/// One control per `every`, each after the previous one reached every open listener (or
/// [`FAN_OUT_TIMEOUT`] passed). Audio stops from a pause until its resume has reached everyone.
async fn controls(session: Arc<Session>, sink: Writer, stop: Arc<AtomicBool>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    for number in 0.. {
        tick.tick().await;
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let (action, kind) = CONTROLS[number % CONTROLS.len()];
        let mut frame = json!({"action": action});
        if action == "setVolume" {
            frame["volumeLevel"] = json!(((number / CONTROLS.len()) % 10) as f64 / 10.0 + 0.05);
        }
        if action == "pauseBroadcast" {
            session.paused.store(true, Ordering::SeqCst);
        }
        let (seq, sent) = {
            let mut sink = sink.lock().await;
            let sent = Instant::now();
            let seq = {
                let mut sent_so_far = lock(&session.controls);
                sent_so_far.push(Control { kind, sent, resends: 0 });
                sent_so_far.len()
            };
            session.current.store(seq, Ordering::SeqCst);
            if sink.send(Message::text(frame.to_string())).await.is_err() {
                return;
            }
            (seq, sent)
        };
        let mut unavailable = session.unavailable.load(Ordering::SeqCst);
        let mut last_sent = sent;
        while !session.delivered(seq, sent) && sent.elapsed() < FAN_OUT_TIMEOUT {
            tokio::time::sleep(Duration::from_millis(10)).await;
            // Told to retry since the last send (this control's refusal, or an audio chunk's:
            // the speaker cannot tell which), and the retry is due: the control goes again.
            let told = session.unavailable.load(Ordering::SeqCst);
            if told > unavailable && last_sent.elapsed() >= RETRY_AFTER && !session.delivered(seq, sent) {
                if sink.lock().await.send(Message::text(frame.to_string())).await.is_err() {
                    return;
                }
                lock(&session.controls)[seq - 1].resends += 1;
                (unavailable, last_sent) = (told, Instant::now());
            }
        }
        if action == "resumeBroadcast" {
            session.paused.store(false, Ordering::SeqCst);
        }
    }
}

//! `cargo xtask logs`: the stage's functions' log lines interleaved in time order, each with
//! its function's name, as `sam logs` prints them.
//!
//! The log groups are the stack's: each contract function logs to `<Name>Logs`
//! ([`stacks::naming::log_group`]), which the template names in the function's `LoggingConfig`;
//! their physical names come from `ListStackResources`, and their lines from
//! `FilterLogEvents`, from `--since` ago. One line per event: the time (UTC, milliseconds), the
//! function's name, the message. The functions log JSON (`LogFormat: JSON`), shown readably
//! ([`render`]): an application line as its level and message, then its other fields compact;
//! a platform line as its type and record, compact. Plain-text lines are printed as they are.
//!
//! `--follow` keeps polling every 2 s from the last timestamp seen (the events of that
//! millisecond are read again and dropped by event id) until Ctrl-C.
//!
//! The reading ([`read_events`]) is shared with `cargo xtask doctor`'s `errors` group.
//!
//! Exit codes: 0 when the lines were printed (no line in the window is not an error), or when
//! `--follow` was stopped with Ctrl-C; 1 on an unknown `--function` (the message lists the
//! contract's functions), on missing credentials, when the stack does not exist, and when a
//! read fails (the message names the API call and the permission it needs). A log group that
//! does not exist yet (nothing has logged) is noted on standard error and skipped.

use crate::aws::AwsArgs;
use crate::synth::stage_named;
use anyhow::{Result, anyhow, bail};
use serde_json::{Map, Value};
use stacks::StageConfig;
use stacks::template::canonical_json;
use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often `--follow` asks for new lines.
const POLL: Duration = Duration::from_secs(2);

/// At most this many pages of `FilterLogEvents` per read (AWS may answer a filtered read with
/// many empty pages before the end).
const MAX_PAGES: usize = 1_000;

/// Prints the stage's function logs in time order.
#[derive(Debug, clap::Args)]
pub(crate) struct Logs {
    /// The stage (`dev`, `prod`).
    #[arg(long)]
    stage: String,
    /// Only this contract function (`connection`, `messages`, `http`, `authorizer`).
    #[arg(long)]
    function: Option<String>,
    /// How far back to start (`30s`, `10m`, `1h`, `2d`).
    #[arg(long, default_value = "10m", value_parser = crate::doctor::parse_since)]
    since: Duration,
    /// Keep printing new lines as they arrive (Ctrl-C stops).
    #[arg(long)]
    follow: bool,
    #[command(flatten)]
    aws: AwsArgs,
}

impl Logs {
    pub(crate) fn run(self) -> Result<()> {
        let stage = stage_named(&self.stage)?;
        let functions = selected(self.function.as_deref())?;
        let runtime = tokio::runtime::Runtime::new()?;
        runtime.block_on(self.print(&stage, &functions))
    }

    async fn print(&self, stage: &StageConfig, functions: &[&'static str]) -> Result<()> {
        let sdk = self.aws.load(&stage.region).await?;
        let region = crate::aws::region(&sdk)?;
        let cloudformation = aws_sdk_cloudformation::Client::new(&sdk);
        let physical = stack_resources(&cloudformation, &stage.stack_name, &region).await?;
        let mut sources = Vec::new();
        for function in functions {
            let logical = stacks::naming::log_group(function);
            match physical.get(&logical) {
                Some(group) => sources.push((*function, group.clone())),
                None => eprintln!(
                    "note: the stack {} lists no log group {logical} for `{function}` (deployed from an older \
                     template?): its lines are not shown",
                    stage.stack_name
                ),
            }
        }
        let client = aws_sdk_cloudwatchlogs::Client::new(&sdk);
        let width = functions.iter().map(|name| name.len()).max().unwrap_or(0);
        let since = i64::try_from(self.since.as_millis()).unwrap_or(i64::MAX);
        let mut follow = Follow::new(now_millis().saturating_sub(since));
        let mut absent: HashSet<String> = HashSet::new();
        let stop = tokio::signal::ctrl_c();
        tokio::pin!(stop);
        loop {
            let batch = tokio::select! {
                batch = read_all(&client, &sources, follow.start, &mut absent) => batch?,
                _ = &mut stop => return Ok(()),
            };
            let mut out = std::io::stdout().lock();
            for (function, event) in follow.fresh(batch) {
                let line = format!("{} {function:<width$} {}", utc(event.timestamp), render(&event.message));
                if writeln!(out, "{line}").is_err() {
                    // The reader went away (`| head`): nothing left to do.
                    return Ok(());
                }
            }
            drop(out);
            if !self.follow {
                return Ok(());
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                _ = &mut stop => return Ok(()),
            }
        }
    }
}

/// The contract functions `--function` selects: all of them without it.
fn selected(function: Option<&str>) -> Result<Vec<&'static str>> {
    let names: Vec<&'static str> = contract::CONTRACT.functions.iter().map(|function| function.name).collect();
    match function {
        None => Ok(names),
        Some(name) => match contract::CONTRACT.function(name) {
            Some(function) => Ok(vec![function.name]),
            None => bail!("unknown function `{name}`: the stage's functions are {}", names.join(", ")),
        },
    }
}

/// Logical id → physical id of the stack's resources.
async fn stack_resources(
    client: &aws_sdk_cloudformation::Client,
    stack: &str,
    region: &str,
) -> Result<BTreeMap<String, String>> {
    crate::aws::stack_resources(client, stack).await.map_err(|text| {
        if text.contains("does not exist") {
            anyhow!("the stack {stack} does not exist in {region}: deploy the stage, or pass the --region it lives in")
        } else {
            anyhow!("{text}")
                .context(format!("ListStackResources on {stack} failed (it needs cloudformation:ListStackResources)"))
        }
    })
}

/// Every source's events from `start`, each with its function's name.
async fn read_all(
    client: &aws_sdk_cloudwatchlogs::Client,
    sources: &[(&'static str, String)],
    start: i64,
    absent: &mut HashSet<String>,
) -> Result<Vec<(&'static str, Event)>> {
    let mut batch = Vec::new();
    for (function, group) in sources {
        match read_events(client, group, start, None, None, usize::MAX).await {
            Ok(read) => batch.extend(read.events.into_iter().map(|event| (*function, event))),
            Err(ReadError::Missing) => {
                if absent.insert(group.clone()) {
                    eprintln!("note: the log group {group} of `{function}` does not exist yet: it has not logged");
                }
            }
            Err(ReadError::Failed(message)) => bail!("{message}"),
        }
    }
    Ok(batch)
}

/// Where the next read starts, and the events already printed at that millisecond.
#[derive(Debug)]
struct Follow {
    start: i64,
    printed: HashSet<String>,
}

impl Follow {
    fn new(start: i64) -> Follow {
        Follow { start, printed: HashSet::new() }
    }

    /// The events of `batch` not printed yet, in time order (event id breaks ties); the next
    /// read starts at the last timestamp seen.
    fn fresh(&mut self, mut batch: Vec<(&'static str, Event)>) -> Vec<(&'static str, Event)> {
        batch.sort_by(|(_, a), (_, b)| (a.timestamp, &a.id).cmp(&(b.timestamp, &b.id)));
        batch.dedup_by(|(_, a), (_, b)| a.id == b.id);
        let fresh: Vec<(&'static str, Event)> =
            batch.into_iter().filter(|(_, event)| !self.printed.contains(&event.id)).collect();
        if let Some(last) = fresh.iter().map(|(_, event)| event.timestamp).max() {
            if last > self.start {
                self.start = last;
                self.printed.clear();
            }
            let start = self.start;
            self.printed.extend(fresh.iter().filter(|(_, event)| event.timestamp == start).map(|(_, e)| e.id.clone()));
        }
        fresh
    }
}

/// One log event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    pub(crate) id: String,
    /// Milliseconds since the epoch.
    pub(crate) timestamp: i64,
    pub(crate) message: String,
}

/// What a read found: its events in time order, and whether it stopped at the limit.
#[derive(Debug, Default)]
pub(crate) struct Events {
    pub(crate) events: Vec<Event>,
    pub(crate) truncated: bool,
}

/// Why a read found nothing.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The log group does not exist.
    Missing,
    /// The read failed: the message names the call, the group, the error and the permission.
    Failed(String),
}

/// The events of `group` from `start` to `end` (milliseconds since the epoch; `end` open when
/// `None`) that match the filter `pattern`, at most about `limit` of them (then `truncated`).
pub(crate) async fn read_events(
    client: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    start: i64,
    end: Option<i64>,
    pattern: Option<&str>,
    limit: usize,
) -> Result<Events, ReadError> {
    let mut read = Events::default();
    let mut token = None;
    for _ in 0..MAX_PAGES {
        let page = client
            .filter_log_events()
            .log_group_name(group)
            .start_time(start)
            .set_end_time(end)
            .set_filter_pattern(pattern.map(str::to_owned))
            .set_next_token(token)
            .send()
            .await;
        let page = match page {
            Ok(page) => page,
            Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
                return Err(ReadError::Missing);
            }
            Err(error) => {
                return Err(ReadError::Failed(format!(
                    "FilterLogEvents on the log group {group} failed ({}): reading it needs logs:FilterLogEvents \
                     on the group",
                    aws_sdk_cloudwatchlogs::error::DisplayErrorContext(error)
                )));
            }
        };
        read.events.extend(page.events.unwrap_or_default().into_iter().map(|event| Event {
            id: event.event_id.unwrap_or_default(),
            timestamp: event.timestamp.unwrap_or_default(),
            message: event.message.unwrap_or_default(),
        }));
        token = page.next_token;
        if token.is_none() {
            break;
        }
        if read.events.len() >= limit {
            read.truncated = true;
            break;
        }
    }
    read.truncated |= token.is_some();
    read.events.sort_by(|a, b| (a.timestamp, &a.id).cmp(&(b.timestamp, &b.id)));
    Ok(read)
}

/// Milliseconds since the epoch, now.
pub(crate) fn now_millis() -> i64 {
    let elapsed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
}

/// `2024-05-01T10:00:00.123Z`, always that wide.
pub(crate) fn utc(millis: i64) -> String {
    let seconds = millis.div_euclid(1000);
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = devstack::events::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        millis.rem_euclid(1000)
    )
}

/// A log message made readable: a JSON application line as `LEVEL message {rest}`, a JSON
/// platform line as `platform.x {record}`, anything else as it is (without its trailing
/// newline). Objects show their keys sorted, in every build of serde_json.
pub(crate) fn render(message: &str) -> String {
    let text = message.trim_end();
    let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(text) else {
        return text.to_owned();
    };
    if let Some(kind) = object.get("type").and_then(Value::as_str).filter(|kind| kind.starts_with("platform.")) {
        let kind = kind.to_owned();
        return match object.get("record") {
            Some(record) => format!("{kind} {}", canonical_json(record)),
            None => kind,
        };
    }
    let level = object.remove("level").and_then(|level| level.as_str().map(str::to_uppercase));
    object.remove("timestamp");
    object.remove("time");
    let mut said = object.remove("message");
    // `tracing`'s JSON lines keep the message and the event's fields under `fields`, and the
    // invocation's request id in the current span.
    if let Some(Value::Object(fields)) = object.remove("fields") {
        for (key, value) in fields {
            if key == "message" && said.is_none() {
                said = Some(value);
            } else {
                object.entry(key).or_insert(value);
            }
        }
    }
    if let Some(request) = object.get("span").and_then(|span| span.get("requestId")).cloned() {
        object.remove("span");
        object.remove("spans");
        object.entry("requestId").or_insert(request);
    }
    let said = match said {
        Some(Value::String(text)) => text,
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let mut line = [level.unwrap_or_default(), said].into_iter().filter(|part| !part.is_empty()).collect::<Vec<_>>();
    if !object.is_empty() {
        line.push(canonical_json(&Value::Object(Map::from_iter(object))));
    }
    line.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, timestamp: i64) -> Event {
        Event { id: id.to_owned(), timestamp, message: format!("line {id}") }
    }

    #[test]
    fn times_are_utc_with_milliseconds() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
        assert_eq!(utc(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(utc(4_102_444_800_000), "2100-01-01T00:00:00.000Z");
    }

    #[test]
    fn json_lines_read_as_level_message_and_the_rest() {
        // Lambda's documented application line.
        let documented =
            r#"{"timestamp":"2024-05-01T10:00:00.123Z","level":"ERROR","message":"boom","requestId":"r1"}"#;
        assert_eq!(render(documented), r#"ERROR boom {"requestId":"r1"}"#);
        // The handlers' `tracing` JSON line (lambda_runtime's subscriber, AWS_LAMBDA_LOG_FORMAT=JSON).
        let handler = r#"{"level":"WARN","fields":{"message":"audio stream unavailable","stream":"s"},"span":{"requestId":"r2","name":"Lambda runtime invoke"},"spans":[{"requestId":"r2"}]}"#;
        assert_eq!(render(handler), r#"WARN audio stream unavailable {"requestId":"r2","stream":"s"}"#);
        // A platform line.
        let platform = r#"{"time":"2024-05-01T10:00:00.000Z","type":"platform.report","record":{"requestId":"r3","status":"timeout"}}"#;
        assert_eq!(render(platform), r#"platform.report {"requestId":"r3","status":"timeout"}"#);
        // Plain text stays as it is.
        assert_eq!(render("START RequestId: r4 Version: $LATEST\n"), "START RequestId: r4 Version: $LATEST");
        assert_eq!(render("[1, 2]"), "[1, 2]");
    }

    #[test]
    fn following_prints_each_event_once_in_time_order() {
        let mut follow = Follow::new(100);
        let first = follow.fresh(vec![("messages", event("b", 120)), ("connection", event("a", 110))]);
        let ids: Vec<&str> = first.iter().map(|(_, e)| e.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(follow.start, 120);
        // The next poll starts at 120 and sees `b` again, with a new event of the same millisecond.
        let second = follow.fresh(vec![("messages", event("b", 120)), ("http", event("c", 120))]);
        let ids: Vec<&str> = second.iter().map(|(_, e)| e.id.as_str()).collect();
        assert_eq!(ids, ["c"]);
        let third = follow.fresh(vec![("messages", event("b", 120)), ("http", event("c", 120))]);
        assert!(third.is_empty());
        let fourth = follow.fresh(vec![("http", event("c", 120)), ("http", event("d", 130))]);
        assert_eq!(fourth.len(), 1);
        assert_eq!(follow.start, 130);
    }

    #[test]
    fn an_unknown_function_lists_the_contracts_names() {
        let error = selected(Some("nope")).expect_err("unknown").to_string();
        assert!(error.contains("unknown function `nope`"), "{error}");
        for function in contract::CONTRACT.functions {
            assert!(error.contains(function.name), "{error}");
        }
        assert_eq!(selected(Some("messages")).expect("known"), ["messages"]);
        assert_eq!(selected(None).expect("all").len(), contract::CONTRACT.functions.len());
    }
}

//! Check group `errors`: each contract function's log group over `--since`: how many errors,
//! timeouts, runtime exits and failed invocations it holds, with the three latest lines of
//! each kind (`errors.<function>`).
//!
//! The log group is the stack's `<Name>Logs` ([`stacks::naming::log_group`]: the template
//! names it in each function's `LoggingConfig`, with `LogFormat: JSON`; its physical id is its
//! name). It is read with `FilterLogEvents`, narrowed on the server by [`PATTERN`] (terms that
//! every line counted here contains), then judged line by line by [`classify`], which knows
//! the shapes Lambda writes:
//!
//! - application lines in JSON, as Lambda's managed runtimes write them (`{"timestamp",
//!   "level", "message", "requestId"}`) and as the handlers' `tracing` subscriber writes them
//!   (`lambda_runtime::tracing::init_default_subscriber` with `AWS_LAMBDA_LOG_FORMAT=JSON`,
//!   which Lambda sets for `LogFormat: JSON`: `{"level": "ERROR", "fields": {"message", ...},
//!   "span": {"requestId", ...}}`; Lambda passes JSON application lines through as they are);
//!   level `ERROR` (or `FATAL`, `CRITICAL`) is an error;
//! - application lines in plain text (`ERROR ...`, `[ERROR] ...`, the level among the first
//!   words): an error;
//! - system lines in JSON (`{"time", "type": "platform.runtimeDone" | "platform.report" |
//!   "platform.initRuntimeDone" | ..., "record": {"requestId", "status", "errorType"}}`, the
//!   Telemetry API's schema): status `timeout` is a timeout, `error` a runtime exit
//!   (`Runtime.ExitError`: the process died), `failure` an invocation the handler failed;
//! - system lines in plain text: `Task timed out after 3.00 seconds` and `REPORT ... Status:
//!   timeout` are timeouts; `Runtime exited with error: ...`, `Runtime.ExitError` and `Process
//!   exited before completing request` are runtime exits.
//!
//! One invocation writes several such lines (a timeout: `platform.runtimeDone` and
//! `platform.report`), so each kind counts distinct request ids; a line naming none counts
//! alone.
//!
//! Severity: timeouts, runtime exits and failed invocations **fail**: the invocation was cut
//! short, so its client got API Gateway's internal error (a refused connection, a frame with no
//! reply, a 500), and what the handler was writing may be half done. Errors alone **warn**: a
//! handler logs ERROR for a failure it handles and still answers (a gone connection, a
//! throttled write), which calls for reading the lines rather than for an incident. A missing
//! log group warns too: nothing has logged yet, or the function logs elsewhere.

use super::live;
use super::{Check, Context};
use crate::logs::{self, Event, Events, ReadError};
use contract::Function;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const GROUP: &str = "errors";

/// A `FilterLogEvents` pattern matching every line [`classify`] may count (terms are
/// case-sensitive; `?` makes them alternatives). The judgment is [`classify`]'s: this only
/// keeps the read small.
const PATTERN: &str = "?ERROR ?Error ?error ?FATAL ?CRITICAL ?\"timed out\" ?timeout ?\"Runtime exited\" \
                       ?\"Runtime.ExitError\" ?failure ?\"exited before completing\"";

/// At most about this many matching lines are read per function (then the counts are "at
/// least").
const MAX_LINES_READ: usize = 10_000;

/// How many of the latest lines of each kind are shown.
const LATEST: usize = 3;

/// The longest line shown, in characters.
const MAX_LINE_CHARS: usize = 240;

/// What a counted line says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// The invocation ran out of time.
    Timeout,
    /// The function's process exited (crashed, panicked with `abort`, ran out of memory).
    RuntimeExit,
    /// The handler returned an error to the runtime.
    Failure,
    /// An application line at level ERROR.
    Error,
}

impl Kind {
    /// What one such line is called in the report.
    fn label(self) -> &'static str {
        match self {
            Kind::Timeout => "timeout",
            Kind::RuntimeExit => "runtime exit",
            Kind::Failure => "failed invocation",
            Kind::Error => "error",
        }
    }

    /// `1 timeout`, `3 timeouts`.
    fn counted(self, count: usize) -> String {
        let label = self.label();
        if count == 1 { format!("1 {label}") } else { format!("{count} {label}s") }
    }

    /// Whether one such line makes the check fail (see the module's documentation).
    fn fails(self) -> bool {
        self != Kind::Error
    }
}

/// One line that counts: what happened, and the invocation it belongs to when it names one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Classified {
    kind: Kind,
    request: Option<String>,
}

/// What one log line says happened, if it is an error, a timeout or a runtime exit.
fn classify(message: &str) -> Option<Classified> {
    let text = message.trim();
    if let Ok(Value::Object(object)) = serde_json::from_str::<Value>(text) {
        return classify_json(&object);
    }
    let clean = strip_ansi(text);
    let kind = system_text(&clean).or_else(|| has_error_level(&clean).then_some(Kind::Error))?;
    Some(Classified { kind, request: text_request(&clean) })
}

/// The text `value` holds, if it is a string.
fn string(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str)
}

/// [`classify`] for a JSON line: a platform line by its record's status, an application line
/// by what it says (a system message) or its level.
fn classify_json(object: &Map<String, Value>) -> Option<Classified> {
    if let Some(kind) = string(object.get("type")).filter(|kind| kind.starts_with("platform.")) {
        let record = object.get("record");
        if kind == "platform.fault" {
            // The Logs API's record of a process that died mid-request (a string).
            return Some(Classified { kind: Kind::RuntimeExit, request: string(record).and_then(text_request) });
        }
        let record = record?.as_object()?;
        let request = string(record.get("requestId")).map(str::to_owned);
        let error_type = string(record.get("errorType")).unwrap_or_default();
        let kind = match string(record.get("status"))? {
            "timeout" => Kind::Timeout,
            "error" if error_type.contains("Timedout") => Kind::Timeout,
            "error" => Kind::RuntimeExit,
            "failure" => Kind::Failure,
            _ => return None,
        };
        return Some(Classified { kind, request });
    }
    let fields = object.get("fields").and_then(Value::as_object);
    let span = object.get("span").and_then(Value::as_object);
    let request = string(object.get("requestId"))
        .or_else(|| string(span.and_then(|span| span.get("requestId"))))
        .or_else(|| string(fields.and_then(|fields| fields.get("requestId"))))
        .map(str::to_owned);
    let said = string(object.get("message")).or_else(|| string(fields.and_then(|fields| fields.get("message"))));
    if let Some(kind) = said.and_then(system_text) {
        return Some(Classified { kind, request });
    }
    let level = string(object.get("level")).or_else(|| string(object.get("severity")))?;
    is_error_level(level).then_some(Classified { kind: Kind::Error, request })
}

/// The timeouts and runtime exits Lambda reports in plain text.
fn system_text(text: &str) -> Option<Kind> {
    if text.contains("Task timed out") || text.contains("Status: timeout") {
        Some(Kind::Timeout)
    } else if ["Runtime exited", "Runtime.ExitError", "Process exited before completing request", "Status: error"]
        .iter()
        .any(|needle| text.contains(needle))
    {
        Some(Kind::RuntimeExit)
    } else {
        None
    }
}

/// Whether a level name is an error's (`ERROR`, `FATAL`, `CRITICAL`, any case).
fn is_error_level(level: &str) -> bool {
    ["ERROR", "FATAL", "CRITICAL"].iter().any(|error| level.eq_ignore_ascii_case(error))
}

/// A plain-text line whose level, the first level name among its first words, is ERROR:
/// `tracing`'s `ERROR msg`, Python's `[ERROR]\t...`, Node's `time\trequest\tERROR\t...`.
fn has_error_level(text: &str) -> bool {
    const LEVELS: [&str; 9] = ["TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL", "CRITICAL", "PANIC"];
    text.split_whitespace()
        .take(4)
        .map(|word| word.trim_matches(|c: char| !c.is_ascii_alphanumeric()))
        .find(|word| LEVELS.contains(word))
        .is_some_and(is_error_level)
}

/// The request id a plain-text line names (`RequestId: X`, or a bare UUID as in `time X Task
/// timed out ...`).
fn text_request(text: &str) -> Option<String> {
    if let Some((_, after)) = text.split_once("RequestId: ") {
        let id: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        if !id.is_empty() {
            return Some(id);
        }
    }
    text.split_whitespace().find(|word| is_uuid(word)).map(str::to_owned)
}

/// Whether `word` is a UUID as Lambda writes request ids (`8-4-4-4-12` hex digits).
fn is_uuid(word: &str) -> bool {
    word.len() == 36
        && word.char_indices().all(
            |(index, c)| {
                if [8, 13, 18, 23].contains(&index) { c == '-' } else { c.is_ascii_hexdigit() }
            },
        )
}

/// `text` without terminal colour sequences (`ESC [ ... letter`), which the text format of
/// `tracing` writes.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The counted lines of a log group, by kind: one entry per invocation (or per line naming
/// none), each with its latest line, oldest first.
#[derive(Debug, Default)]
struct Tally {
    kinds: BTreeMap<Kind, Vec<(String, Event)>>,
}

impl Tally {
    /// `events` in time order.
    fn of(events: &[Event]) -> Tally {
        let mut tally = Tally::default();
        for event in events {
            let Some(classified) = classify(&event.message) else {
                continue;
            };
            let key = classified.request.unwrap_or_else(|| format!("event {}", event.id));
            let entries = tally.kinds.entry(classified.kind).or_default();
            entries.retain(|(seen, _)| *seen != key);
            entries.push((key, event.clone()));
        }
        tally
    }

    /// How many invocations (or lines naming none) counted as `kind`.
    fn count(&self, kind: Kind) -> usize {
        self.kinds.get(&kind).map_or(0, Vec::len)
    }

    /// The latest lines of `kind`, newest first.
    fn latest(&self, kind: Kind) -> impl Iterator<Item = &Event> {
        self.kinds.get(&kind).into_iter().flat_map(|entries| entries.iter().rev().take(LATEST).map(|(_, e)| e))
    }
}

/// `1h`, `30m`, `2d`, `45s`: how `--since` is written.
fn since_text(since: Duration) -> String {
    let seconds = since.as_secs();
    match seconds {
        0 => "0s".to_owned(),
        _ if seconds.is_multiple_of(86_400) => format!("{}d", seconds / 86_400),
        _ if seconds.is_multiple_of(3600) => format!("{}h", seconds / 3600),
        _ if seconds.is_multiple_of(60) => format!("{}m", seconds / 60),
        _ => format!("{seconds}s"),
    }
}

/// What the clients of `function` saw when its invocations were cut short.
fn cut_short(function: &Function) -> &'static str {
    let authorizer = contract::CONTRACT.authorizer.is_some_and(|authorizer| authorizer.function == function.name);
    if authorizer {
        "connections were refused with 500 before $connect ran (browsers see close 1006)"
    } else if function.websocket_routes.contains(&contract::CONNECT_ROUTE) {
        "connections were refused with 500 (browsers see close 1006)"
    } else if !function.websocket_routes.is_empty() {
        "frames got \"Internal server error\" and no reply"
    } else if !function.http_routes.is_empty() {
        "requests got 500"
    } else {
        "those invocations failed"
    }
}

/// Where doctor and `cargo xtask logs` read, for the fix.
#[derive(Debug, Clone)]
struct Reading<'a> {
    stage: &'a str,
    /// ` --region R` when it is not the stage's own, else empty.
    region_option: String,
    since: Duration,
}

/// The check of `function`'s log group `group`, from what was read of it.
fn judge(function: &Function, group: &str, reading: &Reading<'_>, read: Result<Events, ReadError>) -> Check {
    let id = format!("{GROUP}.{}", function.name);
    let since = since_text(reading.since);
    let fix = format!(
        "cargo xtask logs --stage {} --function {} --since {since}{}",
        reading.stage, function.name, reading.region_option
    );
    let events = match read {
        Ok(events) => events,
        Err(ReadError::Missing) => {
            return Check::warn(
                GROUP,
                id,
                format!(
                    "the log group {group} does not exist: `{}` has not logged yet, or it logs elsewhere \
                     (its errors cannot be read here)",
                    function.name
                ),
                format!(
                    "invoke the function once, or redeploy so that it logs to {group}: cargo xtask deploy --stage {}",
                    reading.stage
                ),
            );
        }
        Err(ReadError::Failed(message)) => {
            return Check::fail(
                GROUP,
                id,
                format!("cannot read the logs of `{}`: {message}", function.name),
                format!("grant logs:FilterLogEvents on {group} to the identity running doctor (or retry if throttled)"),
            );
        }
    };
    let tally = Tally::of(&events.events);
    let kinds = [Kind::Timeout, Kind::RuntimeExit, Kind::Failure, Kind::Error];
    let found: Vec<Kind> = kinds.into_iter().filter(|kind| tally.count(*kind) > 0).collect();
    if found.is_empty() {
        return Check::pass(GROUP, id, format!("no errors, timeouts or runtime exits in the last {since} ({group})"));
    }
    let at_least = if events.truncated { "at least " } else { "" };
    let counts: Vec<String> = found.iter().map(|kind| kind.counted(tally.count(*kind))).collect();
    let failing = found.iter().any(|kind| kind.fails());
    let meaning = if failing {
        format!("invocations were cut short: {}", cut_short(function))
    } else {
        "the handler logged errors it handled (it still answered): read them".to_owned()
    };
    let mut message = format!("in the last {since}: {at_least}{}; {meaning}", counts.join(", "));
    for kind in &found {
        for event in tally.latest(*kind) {
            let line: String = logs::render(&event.message).chars().take(MAX_LINE_CHARS).collect();
            message.push_str(&format!("\n      {:<17} {} {line}", kind.label(), logs::utc(event.timestamp)));
        }
    }
    if failing { Check::fail(GROUP, id, message, fix) } else { Check::warn(GROUP, id, message, fix) }
}

/// The `errors` checks of the live stage.
pub(super) async fn checks(context: &Context) -> Vec<Check> {
    let functions = contract::CONTRACT.functions;
    if context.stack.is_none() {
        return functions
            .iter()
            .map(|function| {
                Check::skip(GROUP, format!("{GROUP}.{}", function.name), "no stack to read (see stack.exists)")
            })
            .collect();
    }
    let region = context.region();
    let reading = Reading {
        stage: &context.stage.name,
        region_option: if region == context.stage.region { String::new() } else { format!(" --region {region}") },
        since: context.since,
    };
    let client = aws_sdk_cloudwatchlogs::Client::new(&context.sdk);
    let end = logs::now_millis();
    let start = end.saturating_sub(i64::try_from(context.since.as_millis()).unwrap_or(i64::MAX));
    let mut checks = Vec::new();
    for function in functions {
        let logical = stacks::naming::log_group(function.name);
        let Some(group) = context.physical(&logical) else {
            checks.push(Check::warn(
                GROUP,
                format!("{GROUP}.{}", function.name),
                format!(
                    "the stack lists no log group {logical}: `{}` logs to /aws/lambda/<its name> or elsewhere \
                     (deployed from an older template?), so its errors are not read here",
                    function.name
                ),
                live::deploy_command(&context.stage),
            ));
            continue;
        };
        let read = logs::read_events(&client, group, start, Some(end), Some(PATTERN), MAX_LINES_READ).await;
        checks.push(judge(function, group, &reading, read));
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    fn kind(line: &str) -> Option<Kind> {
        classify(line).map(|classified| classified.kind)
    }

    fn messages() -> &'static Function {
        contract::CONTRACT.function("messages").expect("messages")
    }

    fn reading() -> Reading<'static> {
        Reading { stage: "dev", region_option: String::new(), since: Duration::from_secs(3600) }
    }

    fn events(lines: &[&str]) -> Events {
        let events = lines
            .iter()
            .enumerate()
            .map(|(index, line)| Event {
                id: format!("e{index}"),
                timestamp: 1_700_000_000_000 + i64::try_from(index).expect("small") * 1000,
                message: (*line).to_owned(),
            })
            .collect();
        Events { events, truncated: false }
    }

    const TIMEOUT_DONE: &str = r#"{"time":"2024-05-01T10:00:03.000Z","type":"platform.runtimeDone","record":{"requestId":"79b5e81f-9cdd-4145-b1f6-7c50ef8a2a36","status":"timeout","metrics":{"durationMs":3000.0}}}"#;
    const TIMEOUT_REPORT: &str = r#"{"time":"2024-05-01T10:00:03.010Z","type":"platform.report","record":{"requestId":"79b5e81f-9cdd-4145-b1f6-7c50ef8a2a36","metrics":{"durationMs":3000.0,"billedDurationMs":3000,"memorySizeMB":128,"maxMemoryUsedMB":40},"status":"timeout"}}"#;
    const EXIT: &str = r#"{"time":"2024-05-01T10:01:00.000Z","type":"platform.runtimeDone","record":{"requestId":"6d68ca91-49c9-448d-89b8-7ca3e6dc66aa","status":"error","errorType":"Runtime.ExitError"}}"#;
    const APP_ERROR: &str = r#"{"timestamp":"2024-05-01T10:02:00.000Z","level":"ERROR","message":"fan-out failed","requestId":"11111111-2222-3333-4444-555555555555"}"#;
    const HANDLER_ERROR: &str = r#"{"level":"ERROR","fields":{"message":"store write failed","error":"ThrottlingException"},"span":{"requestId":"aaaaaaaa-2222-3333-4444-555555555555","name":"Lambda runtime invoke"}}"#;

    #[test]
    fn every_documented_line_shape_is_recognised() {
        // JSON system lines (Telemetry API schema).
        assert_eq!(kind(TIMEOUT_DONE), Some(Kind::Timeout));
        assert_eq!(kind(TIMEOUT_REPORT), Some(Kind::Timeout));
        assert_eq!(kind(EXIT), Some(Kind::RuntimeExit));
        let init = r#"{"time":"t","type":"platform.initRuntimeDone","record":{"initializationType":"on-demand","phase":"init","status":"error","errorType":"Runtime.ExitError"}}"#;
        assert_eq!(kind(init), Some(Kind::RuntimeExit));
        let failure = r#"{"time":"t","type":"platform.runtimeDone","record":{"requestId":"r","status":"failure","errorType":"Handler.Error"}}"#;
        assert_eq!(kind(failure), Some(Kind::Failure));
        let fault = r#"{"time":"t","type":"platform.fault","record":"RequestId: d783b35e-a91d-4251-af17-035953428a2c Process exited before completing request"}"#;
        assert_eq!(
            classify(fault),
            Some(Classified { kind: Kind::RuntimeExit, request: Some("d783b35e-a91d-4251-af17-035953428a2c".into()) })
        );
        let fine = r#"{"time":"t","type":"platform.report","record":{"requestId":"r","metrics":{"durationMs":1.0},"status":"success"}}"#;
        assert_eq!(kind(fine), None);
        assert_eq!(
            kind(r#"{"time":"t","type":"platform.start","record":{"requestId":"r","version":"$LATEST"}}"#),
            None
        );
        // JSON application lines: Lambda's documented shape and the handlers' `tracing` shape.
        assert_eq!(
            classify(APP_ERROR),
            Some(Classified { kind: Kind::Error, request: Some("11111111-2222-3333-4444-555555555555".into()) })
        );
        assert_eq!(
            classify(HANDLER_ERROR),
            Some(Classified { kind: Kind::Error, request: Some("aaaaaaaa-2222-3333-4444-555555555555".into()) })
        );
        assert_eq!(kind(r#"{"level":"INFO","fields":{"message":"retrying after an error"}}"#), None);
        assert_eq!(kind(r#"{"level":"WARN","message":"error budget low"}"#), None);
        assert_eq!(kind(r#"{"level":"error","message":"lowercase level"}"#), Some(Kind::Error));
        // Plain text, as the text log format writes it.
        assert_eq!(
            classify("2024-05-01T10:00:03.000Z 1f60b20c-8ed7-41ed-9945-08dcafcc74ee Task timed out after 3.00 seconds"),
            Some(Classified { kind: Kind::Timeout, request: Some("1f60b20c-8ed7-41ed-9945-08dcafcc74ee".into()) })
        );
        assert_eq!(
            kind("REPORT RequestId: 1f60b20c-8ed7-41ed-9945-08dcafcc74ee\tDuration: 3000.00 ms\tStatus: timeout"),
            Some(Kind::Timeout)
        );
        assert_eq!(
            kind(
                "RequestId: 6d68ca91-49c9-448d-89b8-7ca3e6dc66aa Error: Runtime exited with error: signal: killed\nRuntime.ExitError"
            ),
            Some(Kind::RuntimeExit)
        );
        assert_eq!(kind("\u{1b}[31mERROR\u{1b}[0m store write failed"), Some(Kind::Error));
        assert_eq!(kind("[ERROR]\t2024-05-01T10:00:00Z\tr\tboom"), Some(Kind::Error));
        assert_eq!(kind(" INFO connected, no ERROR later in the line counts"), None);
        assert_eq!(kind("START RequestId: r Version: $LATEST"), None);
    }

    #[test]
    fn one_invocation_counts_once_per_kind() {
        let tally = Tally::of(&events(&[TIMEOUT_DONE, TIMEOUT_REPORT, EXIT, APP_ERROR, HANDLER_ERROR]).events);
        assert_eq!(tally.count(Kind::Timeout), 1);
        assert_eq!(tally.count(Kind::RuntimeExit), 1);
        assert_eq!(tally.count(Kind::Error), 2);
        // The line kept for the timeout is its latest (the report).
        let latest: Vec<&Event> = tally.latest(Kind::Timeout).collect();
        assert_eq!(latest.len(), 1);
        assert!(latest[0].message.contains("platform.report"));
    }

    #[test]
    fn timeouts_and_exits_fail_with_counts_lines_and_the_logs_command() {
        let read = events(&[TIMEOUT_DONE, TIMEOUT_REPORT, EXIT, APP_ERROR, HANDLER_ERROR]);
        let check = judge(messages(), "session-service-dev-MessagesLogs", &reading(), Ok(read));
        assert_eq!(check.status, Status::Fail);
        assert_eq!(check.id, "errors.messages");
        assert!(check.message.starts_with("in the last 1h: 1 timeout, 1 runtime exit, 2 errors"), "{}", check.message);
        assert!(check.message.contains("Internal server error"), "{}", check.message);
        assert!(check.message.contains("fan-out failed") && check.message.contains("store write failed"));
        assert!(check.message.contains("Runtime.ExitError"), "{}", check.message);
        assert_eq!(check.fix, "cargo xtask logs --stage dev --function messages --since 1h");
    }

    #[test]
    fn handled_errors_warn_and_only_the_three_latest_lines_show() {
        let lines: Vec<String> = (0..5)
            .map(|n| format!(r#"{{"timestamp":"t","level":"ERROR","message":"problem {n}","requestId":"r{n}"}}"#))
            .collect();
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let check = judge(messages(), "g", &reading(), Ok(events(&lines)));
        assert_eq!(check.status, Status::Warn);
        assert!(check.message.contains("5 errors"), "{}", check.message);
        assert!(check.message.contains("problem 4") && check.message.contains("problem 2"));
        assert!(!check.message.contains("problem 1"), "{}", check.message);
    }

    #[test]
    fn quiet_logs_pass_and_a_missing_group_warns() {
        let check = judge(messages(), "g", &reading(), Ok(events(&["START RequestId: r Version: $LATEST"])));
        assert_eq!(check.status, Status::Pass);
        assert!(check.message.contains("no errors, timeouts or runtime exits in the last 1h"), "{}", check.message);
        let check = judge(messages(), "g", &reading(), Err(ReadError::Missing));
        assert_eq!(check.status, Status::Warn);
        let check = judge(messages(), "g", &reading(), Err(ReadError::Failed("AccessDeniedException".into())));
        assert_eq!(check.status, Status::Fail);
        assert!(check.fix.contains("logs:FilterLogEvents"), "{}", check.fix);
    }

    #[test]
    fn since_is_written_as_typed() {
        assert_eq!(since_text(Duration::from_secs(3600)), "1h");
        assert_eq!(since_text(Duration::from_secs(1800)), "30m");
        assert_eq!(since_text(Duration::from_secs(172_800)), "2d");
        assert_eq!(since_text(Duration::from_secs(90)), "90s");
    }
}

//! `cargo xtask doctor`: the incident runbook, automated against a live stage (issue 12).
//!
//! `diff` compares templates; the live API can still differ from its template (a console edit,
//! a failed deployment, drift). `doctor` reads the **live** resources of the stage's stack and
//! prints a checklist, each check judged by the contract the template is built from:
//!
//! - `stack` ([`stack`]): the stack exists, its status is `*_COMPLETE` (not rolled back, not in
//!   progress), and it has every output the synthesized template declares;
//! - `websocket` ([`websocket`]): the live WebSocket API, read through the API Gateway v2 API:
//!   every contract route with an integration invoking this stack's function for it,
//!   `$connect`'s authorization and its authorizer (type REQUEST, no identity source, invoking
//!   the stack's authorizer function), judged by [`stacks::verify()`] itself, and the stage
//!   serving a deployment made for the live routes;
//! - `http` ([`http_api`]): the live HTTP API: every contract route with an integration invoking
//!   this stack's function and the authorization the code expects, the JWT authorizer trusting
//!   the stage's identity provider, and CORS letting the stage file's origins call every route;
//! - `functions` ([`functions`]): each contract function's live configuration (state, runtime,
//!   architecture, code against the local build manifest, environment, resource policy);
//! - `permissions` ([`permissions`]): each function role's live policies grant the contract's
//!   actions on the right resources;
//! - `tables` ([`tables`]): each table's keys, fan-out index, TTL and point-in-time recovery;
//! - `probe` ([`probe`]): a tokenless listener handshake for a session that cannot exist must
//!   be answered by the `$connect` function with 404; with `--token`, a speaker connects and
//!   heartbeats; the HTTP API's `GET /health` answers 200 (all skipped with `--no-probe`);
//! - `errors` ([`errors`]): each function's log group over `--since`: errors, timeouts and
//!   runtime exits and failed invocations, with the latest lines.
//!
//! A group that cannot read what it judges (no permission, a throttled call) reports that as a
//! failed check naming the API call, rather than stopping the checklist.
//!
//! Each check is `{id, group, status, message, fix}`; a failure says what it means for clients
//! and the exact fix. On a terminal the marks are coloured (unless `NO_COLOR` is set); piped,
//! the lines are plain; `--json` prints `{"stage", "ok", "checks": [...]}` for scripts.
//!
//! Exit codes: 0 when no check fails (warnings and skips allowed), 1 otherwise (and on errors
//! such as missing credentials).

mod errors;
mod functions;
mod http_api;
mod live;
mod permissions;
mod probe;
mod stack;
mod tables;
mod websocket;

use crate::aws::AwsArgs;
use crate::synth::stage_named;
use anyhow::Result;
use serde::Serialize;
use serde_json::Value;
use stacks::StageConfig;
use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Checks a deployed stage against the contract, live.
#[derive(Debug, clap::Args)]
pub(crate) struct Doctor {
    /// The stage (`dev`, `prod`).
    #[arg(long)]
    stage: String,
    /// Print the checklist as JSON: `{"stage", "ok", "checks": [...]}`.
    #[arg(long)]
    json: bool,
    /// The WebSocket URL the probe connects to (default: the stack's `WebSocketUrl` output).
    #[arg(long, value_name = "URL")]
    websocket_url: Option<String>,
    /// The HTTP API's base URL the `/health` probe requests (default: the stack's `HttpUrl` output).
    #[arg(long, value_name = "URL")]
    http_url: Option<String>,
    /// A speaker token: the probe then also connects as a speaker and heartbeats.
    #[arg(long, value_name = "JWT")]
    token: Option<String>,
    /// Skip the network probes.
    #[arg(long)]
    no_probe: bool,
    /// How far back the `errors` group reads the functions' logs (`30m`, `1h`, `2d`).
    #[arg(long, default_value = "1h", value_parser = parse_since)]
    since: Duration,
    /// The build manifest's directory, to compare deployed code with (default: target/lambda, when it exists).
    #[arg(long, value_name = "DIR")]
    artifacts: Option<PathBuf>,
    #[command(flatten)]
    aws: AwsArgs,
}

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Pass,
    Fail,
    Warn,
    Skip,
}

impl Status {
    fn mark(self) -> &'static str {
        match self {
            Status::Pass => "✓",
            Status::Fail => "✗",
            Status::Warn => "!",
            Status::Skip => "-",
        }
    }
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Check {
    pub(crate) id: String,
    pub(crate) group: &'static str,
    pub(crate) status: Status,
    pub(crate) message: String,
    /// The command or the change that fixes a failure (or a warning); empty otherwise.
    pub(crate) fix: String,
}

impl Check {
    pub(crate) fn pass(group: &'static str, id: impl Into<String>, message: impl Into<String>) -> Check {
        Check { id: id.into(), group, status: Status::Pass, message: message.into(), fix: String::new() }
    }

    pub(crate) fn fail(
        group: &'static str,
        id: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check { id: id.into(), group, status: Status::Fail, message: message.into(), fix: fix.into() }
    }

    pub(crate) fn warn(
        group: &'static str,
        id: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check { id: id.into(), group, status: Status::Warn, message: message.into(), fix: fix.into() }
    }

    pub(crate) fn skip(group: &'static str, id: impl Into<String>, message: impl Into<String>) -> Check {
        Check { id: id.into(), group, status: Status::Skip, message: message.into(), fix: String::new() }
    }
}

/// The whole checklist of a stage.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) stage: String,
    pub(crate) ok: bool,
    pub(crate) checks: Vec<Check>,
}

impl Report {
    fn new(stage: &str, checks: Vec<Check>) -> Report {
        let ok = checks.iter().all(|check| check.status != Status::Fail);
        Report { stage: stage.to_owned(), ok, checks }
    }

    /// The checklist as text; `color` marks each line's status in ANSI colour (on a terminal).
    pub(crate) fn render(&self, color: bool) -> String {
        let paint = |status: Status, text: &str| {
            let code = match status {
                Status::Pass => "32",
                Status::Fail => "31",
                Status::Warn => "33",
                Status::Skip => "2",
            };
            if color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() }
        };
        let mut out = format!("Stage {}\n", self.stage);
        let mut group = "";
        for check in &self.checks {
            if check.group != group {
                group = check.group;
                out.push_str(&format!("\n{group}\n"));
            }
            out.push_str(&format!("{} {}: {}\n", paint(check.status, check.status.mark()), check.id, check.message));
            if !check.fix.is_empty() && matches!(check.status, Status::Fail | Status::Warn) {
                out.push_str(&format!("    fix: {}\n", check.fix));
            }
        }
        let failed = self.checks.iter().filter(|check| check.status == Status::Fail).count();
        let warned = self.checks.iter().filter(|check| check.status == Status::Warn).count();
        out.push('\n');
        out.push_str(&match (failed, warned) {
            (0, 0) => "Healthy: no check failed.".to_owned(),
            (0, warned) => format!("Healthy: no check failed ({warned} warning(s))."),
            (failed, _) => paint(Status::Fail, &format!("{failed} check(s) failed.")),
        });
        out.push('\n');
        out
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

/// Whether standard output is a terminal that wants colour (`NO_COLOR` unset).
fn colour_wanted() -> bool {
    use std::io::IsTerminal as _;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

/// What every check group reads: the stage, its synthesized template, the SDK configuration
/// and what the live stack says about itself.
pub(crate) struct Context {
    pub(crate) stage: StageConfig,
    pub(crate) synthesized: Value,
    pub(crate) sdk: aws_config::SdkConfig,
    /// The live stack, when it exists.
    pub(crate) stack: Option<stack::LiveStack>,
    /// The live WebSocket API (`None` when there is none to find), read once for every group
    /// that judges it or needs its ids; the error says why it could not be read.
    pub(crate) websocket: Result<Option<websocket::LiveApi>, String>,
    /// How far back `errors` reads.
    pub(crate) since: Duration,
    /// The build manifest's directory.
    pub(crate) artifacts: PathBuf,
}

impl Context {
    /// The physical id of the template's resource `logical` (`ListStackResources`), if
    /// the stack lists it.
    pub(crate) fn physical(&self, logical: &str) -> Option<&str> {
        self.stack.as_ref().and_then(|stack| stack.resources.get(logical)).map(String::as_str)
    }

    /// The stack's output `name`.
    pub(crate) fn output(&self, name: &str) -> Option<&str> {
        self.stack.as_ref().and_then(|stack| stack.outputs.get(name)).map(String::as_str)
    }

    /// The region the SDK configuration talks to.
    pub(crate) fn region(&self) -> String {
        self.sdk.region().map(ToString::to_string).unwrap_or_else(|| self.stage.region.clone())
    }
}

/// `30s`, `10m`, `1h`, `2d`.
pub(crate) fn parse_since(text: &str) -> Result<Duration, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration such as 30m, 1h or 2d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" | "" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}`: the unit must be s, m, h or d")),
    };
    Ok(Duration::from_secs(number * seconds))
}

impl Doctor {
    pub(crate) fn run(self) -> Result<ExitCode> {
        let stage = stage_named(&self.stage)?;
        let synthesized = stacks::synthesize(&contract::CONTRACT, &stage)?.to_value();
        let runtime = tokio::runtime::Runtime::new()?;
        let sdk = runtime.block_on(self.aws.load(&stage.region))?;
        let cloudformation = aws_sdk_cloudformation::Client::new(&sdk);
        let live_stack = runtime.block_on(stack::read(&cloudformation, &stage.stack_name))?;
        let apigateway = aws_sdk_apigatewayv2::Client::new(&sdk);
        let physical = live_stack.as_ref().map(|live| live.resources.clone()).unwrap_or_default();
        let live_api = runtime.block_on(websocket::read(&apigateway, &synthesized, &physical, &stage.name));
        let context = Context {
            stage,
            synthesized,
            sdk,
            stack: live_stack,
            websocket: live_api.map_err(|error| format!("{error:#}")),
            since: self.since,
            artifacts: self.artifacts.clone().unwrap_or_else(|| crate::project_root().join("target/lambda")),
        };
        let checks = runtime.block_on(self.checks(&context));
        let report = Report::new(&context.stage.name, checks);
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", report.render(colour_wanted()));
        }
        Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    }

    /// Every group's checks, in the order of the runbook. A group that cannot read what it
    /// judges says so in a failed check; the others still run.
    async fn checks(&self, context: &Context) -> Vec<Check> {
        let stage = &context.stage;
        let mut checks = stack::judge(stage, &context.synthesized, context.stack.as_ref());

        let physical = context.stack.as_ref().map(|live| live.resources.clone()).unwrap_or_default();
        match &context.websocket {
            Ok(api) => checks.extend(websocket::judge(stage, &context.synthesized, api.as_ref(), &physical)),
            Err(error) => checks.push(Check::fail(
                websocket::GROUP,
                "websocket.api",
                format!("cannot read the WebSocket API: {error}; its routes, authorizer and stage are not judged"),
                "run doctor with credentials allowed apigateway:GET on the stage's APIs (a throttled call: run it again)",
            )),
        }

        checks.extend(http_api::checks(context).await);
        checks.extend(functions::checks(context).await);
        checks.extend(permissions::checks(context).await);
        checks.extend(tables::checks(context).await);

        let targets = probe::Targets {
            websocket_url: self.websocket_url.as_deref(),
            http_url: self.http_url.as_deref(),
            token: self.token.as_deref(),
            skip: self.no_probe,
        };
        checks.extend(probe::checks(context, &targets).await);

        checks.extend(errors::checks(context).await);
        checks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_makes_the_report_not_ok_and_prints_its_fix() {
        let report = Report::new(
            "dev",
            vec![
                Check::pass("stack", "stack.status", "UPDATE_COMPLETE"),
                Check::fail("websocket", "websocket.route.heartbeat", "missing", "cargo xtask deploy --stage dev"),
                Check::skip("probe", "probe.listener", "skipped (--no-probe)"),
            ],
        );
        assert!(!report.ok);
        let text = report.to_string();
        assert!(text.contains("✓ stack.status: UPDATE_COMPLETE"), "{text}");
        assert!(
            text.contains("✗ websocket.route.heartbeat: missing\n    fix: cargo xtask deploy --stage dev"),
            "{text}"
        );
        assert!(text.contains("- probe.listener"), "{text}");
        let json = serde_json::to_value(&report).expect("JSON");
        assert_eq!(json["checks"][1]["status"], "fail");
        assert_eq!(json["ok"], false);
    }

    #[test]
    fn since_reads_the_usual_units() {
        assert_eq!(parse_since("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_since("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_since("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_since("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_since("1w").is_err());
        assert!(parse_since("h").is_err());
    }

    #[test]
    fn warnings_and_skips_are_ok() {
        let report = Report::new(
            "dev",
            vec![Check::warn("stack", "stack.x", "odd", "look"), Check::skip("probe", "probe.listener", "skipped")],
        );
        assert!(report.ok);
        assert!(report.to_string().ends_with("Healthy: no check failed (1 warning(s)).\n"), "{report}");
        let coloured = report.render(true);
        assert!(coloured.contains("\x1b[33m!\x1b[0m stack.x: odd"), "{coloured}");
        assert!(!report.to_string().contains('\x1b'));
    }
}

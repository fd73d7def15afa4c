//! `cargo xtask doctor`: the incident runbook, automated against a live stage (issue 12).
//!
//! `diff` compares templates; the live API can still differ from its template (a console edit,
//! a failed deployment, drift). `doctor` reads the **live** resources of the stage's stack and
//! prints a checklist, each check judged by the contract the template is built from:
//!
//! - `stack` ([`stack`]): the stack exists, its status is `*_COMPLETE` (not rolled back, not in
//!   progress), and it has every output the synthesized template declares;
//! - `websocket` ([`websocket`]): the live WebSocket API, read through the API Gateway v2 API:
//!   every contract route with its integration, `$connect`'s authorization and its authorizer
//!   (type REQUEST, no identity source), judged by [`stacks::verify`] itself;
//! - `probe` ([`probe`]): a tokenless listener handshake for a session that cannot exist must
//!   be answered by the `$connect` function with 404 (skipped with `--no-probe`).
//!
//! Each check is `{id, group, status, message, fix}`; a failure says what it means for clients
//! and the exact fix. Exit codes: 0 when no check fails (warnings and skips allowed), 1
//! otherwise (and on errors such as missing credentials).

mod probe;
mod stack;
mod websocket;

use crate::aws::AwsArgs;
use crate::synth::stage_named;
use anyhow::Result;
use serde::Serialize;
use std::fmt;
use std::process::ExitCode;

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
    /// Skip the network probes.
    #[arg(long)]
    no_probe: bool,
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
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Stage {}", self.stage)?;
        let mut group = "";
        for check in &self.checks {
            if check.group != group {
                group = check.group;
                writeln!(f, "\n{group}")?;
            }
            writeln!(f, "{} {}: {}", check.status.mark(), check.id, check.message)?;
            if !check.fix.is_empty() && matches!(check.status, Status::Fail | Status::Warn) {
                writeln!(f, "    fix: {}", check.fix)?;
            }
        }
        let failed = self.checks.iter().filter(|check| check.status == Status::Fail).count();
        if failed == 0 {
            writeln!(f, "\nHealthy: no check failed.")
        } else {
            writeln!(f, "\n{failed} check(s) failed.")
        }
    }
}

impl Doctor {
    pub(crate) fn run(self) -> Result<ExitCode> {
        let stage = stage_named(&self.stage)?;
        let synthesized = stacks::synthesize(&contract::CONTRACT, &stage)?.to_value();
        let runtime = tokio::runtime::Runtime::new()?;
        let sdk = runtime.block_on(self.aws.load(&stage.region))?;
        let cloudformation = aws_sdk_cloudformation::Client::new(&sdk);
        let apigateway = aws_sdk_apigatewayv2::Client::new(&sdk);

        let mut checks = Vec::new();
        let live_stack = runtime.block_on(stack::read(&cloudformation, &stage.stack_name))?;
        checks.extend(stack::judge(&stage, &synthesized, live_stack.as_ref()));

        let physical = live_stack.as_ref().map(|live| live.resources.clone()).unwrap_or_default();
        let api = runtime.block_on(websocket::read(&apigateway, &synthesized, &physical))?;
        checks.extend(websocket::judge(&stage, &synthesized, api.as_ref()));

        if self.no_probe {
            checks.push(Check::skip(probe::GROUP, "probe.listener", "skipped (--no-probe)"));
        } else {
            let output = live_stack.as_ref().and_then(|live| live.outputs.get(stack::WEBSOCKET_URL).cloned());
            match self.websocket_url.or(output) {
                Some(url) => checks.push(runtime.block_on(probe::listener(&stage, &url))),
                None => checks.push(Check::fail(
                    probe::GROUP,
                    "probe.listener",
                    "no WebSocket URL to probe: the stack has no WebSocketUrl output",
                    format!("pass --websocket-url, or deploy the stage: cargo xtask deploy --stage {}", stage.name),
                )),
            }
        }

        let report = Report::new(&stage.name, checks);
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{report}");
        }
        Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
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
    fn warnings_and_skips_are_ok() {
        let report = Report::new(
            "dev",
            vec![Check::warn("stack", "stack.x", "odd", "look"), Check::skip("probe", "probe.listener", "skipped")],
        );
        assert!(report.ok);
    }
}

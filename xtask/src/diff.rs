//! `cargo xtask diff`: what a release of a stage would change, before it happens.
//!
//! The deployed template (CloudFormation `GetTemplate`) against the synthesized one, resource
//! by resource and property by property ([`stacks::diff`]), with security-relevant changes,
//! stateful replacements, and contract findings on **both** sides called out. A stack that does
//! not exist yet is shown as all-new.
//!
//! Exit codes (Terraform `plan -detailed-exitcode` style): 0 no difference; 2 differences;
//! 1 an error, or any contract finding on either side — so a release pipeline stops on the
//! seed incident even when the synthesized side is clean.

use crate::aws::AwsArgs;
use crate::synth::stage_named;
use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;
use stacks::Finding;
use stacks::diff::{ChangeKind, TemplateDiff};
use std::fmt;
use std::process::ExitCode;

/// Shows what deploying a stage would change.
#[derive(Debug, clap::Args)]
pub(crate) struct Diff {
    /// The stage (`dev`, `prod`).
    #[arg(long)]
    stage: String,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    aws: AwsArgs,
}

/// Everything `diff` found.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Report {
    pub(crate) stack: String,
    pub(crate) stack_exists: bool,
    pub(crate) diff: TemplateDiff,
    pub(crate) findings: Findings,
    pub(crate) exit_code: u8,
}

/// Contract findings on each side.
#[derive(Debug, Serialize)]
pub(crate) struct Findings {
    pub(crate) deployed: Vec<Finding>,
    pub(crate) synthesized: Vec<Finding>,
}

impl Diff {
    pub(crate) fn run(self) -> Result<ExitCode> {
        let stage = stage_named(&self.stage)?;
        let runtime = tokio::runtime::Runtime::new()?;
        let sdk = runtime.block_on(self.aws.load(&stage.region))?;
        let client = aws_sdk_cloudformation::Client::new(&sdk);
        let deployed = runtime.block_on(deployed_template(&client, &stage.stack_name))?;
        let synthesized = stacks::synthesize(&contract::CONTRACT, &stage)?.to_value();
        let report = report(&stage.stack_name, deployed.as_ref(), &synthesized);
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{report}");
        }
        Ok(ExitCode::from(report.exit_code))
    }
}

/// The deployed template of `stack`, or `None` if the stack does not exist.
pub(crate) async fn deployed_template(client: &aws_sdk_cloudformation::Client, stack: &str) -> Result<Option<Value>> {
    let result = client
        .get_template()
        .stack_name(stack)
        .template_stage(aws_sdk_cloudformation::types::TemplateStage::Original)
        .send()
        .await;
    let output = match result {
        Ok(output) => output,
        Err(error) => {
            let missing = error
                .as_service_error()
                .and_then(|service| service.meta().message())
                .is_some_and(|message| message.contains("does not exist"));
            if missing {
                return Ok(None);
            }
            return Err(anyhow::anyhow!("{}", aws_sdk_cloudformation::error::DisplayErrorContext(error)))
                .with_context(|| format!("reading the deployed template of {stack}"));
        }
    };
    let body = output.template_body.unwrap_or_default();
    let template = serde_json::from_str(&body)
        .with_context(|| format!("the deployed template of {stack} is not JSON (this tool writes JSON templates)"))?;
    Ok(Some(template))
}

/// Compares the two sides and decides the exit code.
pub(crate) fn report(stack: &str, deployed: Option<&Value>, synthesized: &Value) -> Report {
    let diff = stacks::diff::diff(deployed.unwrap_or(&Value::Null), synthesized);
    let findings = Findings {
        deployed: deployed.map(|template| stacks::verify(template, &contract::CONTRACT)).unwrap_or_default(),
        synthesized: stacks::verify(synthesized, &contract::CONTRACT),
    };
    let exit_code = if !findings.deployed.is_empty() || !findings.synthesized.is_empty() {
        1
    } else if diff.is_empty() {
        0
    } else {
        2
    };
    Report { stack: stack.to_owned(), stack_exists: deployed.is_some(), diff, findings, exit_code }
}

fn show(value: &Option<Value>) -> String {
    match value {
        None => "(absent)".to_owned(),
        Some(Value::String(text)) => format!("{text:?}"),
        Some(other) => other.to_string(),
    }
}

impl Report {
    /// The report without its closing verdict (deploy says what it does instead).
    pub(crate) fn body(&self) -> String {
        Body(self).to_string()
    }

    fn verdict(&self) -> &'static str {
        match self.exit_code {
            0 => "nothing to deploy",
            2 => "differences (exit 2)",
            _ => "contract findings: do not release (exit 1)",
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Body(self))?;
        writeln!(f, "\n{}", self.verdict())
    }
}

/// Everything but the verdict.
struct Body<'a>(&'a Report);

impl fmt::Display for Body<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let report = self.0;
        let state = if report.stack_exists { "deployed" } else { "not deployed yet: everything is new" };
        writeln!(f, "Stack {} ({state})", report.stack)?;
        if report.diff.is_empty() {
            writeln!(f, "\nNo differences.")?;
        }
        if !report.diff.resources.is_empty() {
            writeln!(f, "\nResources")?;
        }
        for change in &report.diff.resources {
            let mark = match change.kind {
                ChangeKind::Added => "+",
                ChangeKind::Removed => "-",
                ChangeKind::Modified => "~",
            };
            writeln!(f, "{mark} {} ({})", change.logical_id, change.resource_type)?;
            if change.kind == ChangeKind::Modified {
                for property in &change.properties {
                    writeln!(f, "    {}: {} → {}", property.path, show(&property.old), show(&property.new))?;
                }
            }
        }
        if !report.diff.other.is_empty() {
            writeln!(f, "\nParameters and outputs")?;
            for property in &report.diff.other {
                writeln!(f, "~ {}: {} → {}", property.path, show(&property.old), show(&property.new))?;
            }
        }
        let security: Vec<_> = report.diff.security().collect();
        if !security.is_empty() {
            writeln!(f, "\nSecurity-relevant changes (review before release)")?;
            for change in security {
                for reason in &change.security {
                    writeln!(f, "! {}: {reason}", change.logical_id)?;
                }
            }
        }
        let losses: Vec<_> = report.diff.data_loss().collect();
        if !losses.is_empty() {
            writeln!(f, "\nStateful resources replaced or removed (DATA)")?;
            for change in losses {
                writeln!(f, "! {}", change.data_loss.as_deref().unwrap_or_default())?;
            }
        }
        for (side, findings) in [("deployed", &report.findings.deployed), ("synthesized", &report.findings.synthesized)]
        {
            if !findings.is_empty() {
                writeln!(f, "\nContract findings in the {side} template")?;
                for finding in findings {
                    writeln!(f, "✗ {finding}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> Value {
        stacks::synthesize(&contract::CONTRACT, &stacks::stages::dev()).expect("synthesizes").to_value()
    }

    #[test]
    fn the_same_template_is_exit_0() {
        let report = report("s", Some(&dev()), &dev());
        assert_eq!(report.exit_code, 0);
        assert!(report.to_string().contains("No differences."));
    }

    #[test]
    fn a_stack_not_deployed_yet_is_all_new_and_exit_2() {
        let report = report("s", None, &dev());
        assert_eq!(report.exit_code, 2);
        assert!(report.diff.resources.iter().all(|change| change.kind == ChangeKind::Added));
        assert!(report.to_string().contains("not deployed yet"));
    }

    #[test]
    fn the_seed_incident_on_the_deployed_side_is_exit_1_and_named() {
        let mut deployed = dev();
        deployed["Resources"]["ConnectAuthorizer"]["Properties"]["IdentitySource"] =
            serde_json::json!(["route.request.querystring.token"]);
        let report = report("s", Some(&deployed), &dev());
        assert_eq!(report.exit_code, 1);
        let text = report.to_string();
        assert!(text.contains("$connect") && text.contains("IdentitySource") && text.contains("401"), "{text}");
        assert!(text.contains("Contract findings in the deployed template"), "{text}");
        assert!(report.findings.synthesized.is_empty());
        // The change back is security-relevant too.
        assert!(text.contains("identity source"), "{text}");
    }

    #[test]
    fn a_changed_setting_is_exit_2_and_shows_exactly_that_change() {
        let mut bigger = stacks::stages::dev();
        bigger.limits.max_listeners_per_session = 800;
        let synthesized = stacks::synthesize(&contract::CONTRACT, &bigger).expect("synthesizes").to_value();
        let report = report("s", Some(&dev()), &synthesized);
        assert_eq!(report.exit_code, 2);
        let changed: Vec<(String, String)> = report
            .diff
            .resources
            .iter()
            .flat_map(|change| change.properties.iter().map(|p| (change.logical_id.clone(), p.path.clone())))
            .collect();
        let expected = ["ConnectionFunction", "MessagesFunction"]
            .map(|id| (id.to_owned(), "Properties.Environment.Variables.MAX_LISTENERS_PER_SESSION".to_owned()));
        assert_eq!(changed, expected);
        assert!(report.to_string().contains("\"500\" → \"800\""), "{report}");
    }

    #[test]
    fn the_json_report_has_a_stable_shape() {
        let value = serde_json::to_value(report("s", None, &dev())).expect("json");
        for key in ["stack", "stackExists", "diff", "findings", "exitCode"] {
            assert!(value.get(key).is_some(), "{key}");
        }
        assert!(value["findings"]["deployed"].is_array() && value["findings"]["synthesized"].is_array());
    }
}

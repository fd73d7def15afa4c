//! `cargo xtask diff`: what a release of a stage would change, before it happens.
//!
//! The deployed template (CloudFormation `GetTemplate`) against the synthesized one, resource
//! by resource and property by property ([`stacks::diff`]), with security-relevant changes,
//! replacements ("replace", "may replace", "may change", from the CloudFormation registry's
//! create-only properties: `stacks::replacement`), stateful replacements, updates
//! CloudFormation would reject, and contract findings on **both** sides called out. A stack
//! that does not exist yet is shown as all-new.
//!
//! Code is part of the diff: per function, the deployed `<Function>CodeKey` parameter (the
//! zip's content-addressed key) against the local build's manifest (`target/lambda`,
//! `--artifacts` for another directory).
//!
//! Exit codes (Terraform `plan -detailed-exitcode` style): 0 no difference; 2 differences;
//! 1 an error, any contract finding on either side, or an update CloudFormation would reject —
//! so a release pipeline stops on the seed incident even when the synthesized side is clean.
//! A stage whose file still holds example settings is refused before anything is read, except
//! against a local endpoint ([`crate::examples`]).
//!
//! The report prints as text (for a person), JSON (`--format json`, or `--json`: for scripts),
//! or markdown (`--format markdown`: the body of a pull-request comment, [`markdown`]).

mod markdown;

use crate::aws::AwsArgs;
use crate::build;
use crate::project_root;
use crate::synth::stage_named;
use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;
use stacks::Finding;
use stacks::diff::{ChangeKind, Replacement, TemplateDiff};
use stacks::naming;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;

/// Shows what deploying a stage would change.
#[derive(Debug, clap::Args)]
pub(crate) struct Diff {
    /// The stage (`dev`, `prod`).
    #[arg(long)]
    stage: String,
    /// How to print the report: text, json, or markdown (a pull-request comment).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Print the report as JSON (the same as `--format json`).
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Where the local build's zips and manifest.json are (default: target/lambda).
    #[arg(long, value_name = "DIR")]
    artifacts: Option<PathBuf>,
    #[command(flatten)]
    aws: AwsArgs,
}

/// How `diff` prints its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// For a person at a terminal.
    Text,
    /// For scripts: the whole report.
    Json,
    /// The body of a pull-request comment (GitHub-flavoured markdown).
    Markdown,
}

/// Everything `diff` found.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Report {
    pub(crate) stack: String,
    pub(crate) stack_exists: bool,
    /// The deployed stack was released through the CDK (`synth --cdk-out`, `cdk deploy`): it is
    /// compared with the CDK form of the synthesized template, code by its zip in the bootstrap's
    /// bucket.
    pub(crate) released_through_cdk: bool,
    pub(crate) diff: TemplateDiff,
    /// Per function, the deployed code against the local build (empty when not compared).
    pub(crate) code: Vec<CodeChange>,
    pub(crate) findings: Findings,
    pub(crate) exit_code: u8,
}

/// One function's code, deployed and built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CodeChange {
    pub(crate) function: String,
    /// The deployed `<Function>CodeKey` parameter (released through the CDK: the code's
    /// `S3Key`), if the stack has one.
    pub(crate) deployed_key: Option<String>,
    /// The key the local build's zip would be uploaded under, if it was built.
    pub(crate) local_key: Option<String>,
    pub(crate) status: CodeStatus,
}

/// Whether a function's deployed code is the local build's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum CodeStatus {
    Same,
    Differs,
    /// Deployed, but no local build to compare with.
    NotBuilt,
    /// Built, but not deployed yet.
    NotDeployed,
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
        crate::examples::refuse_for_a_real_account(&stage, self.aws.endpoint_url.as_deref())?;
        let runtime = tokio::runtime::Runtime::new()?;
        let sdk = runtime.block_on(self.aws.load(&stage.region))?;
        let client = aws_sdk_cloudformation::Client::new(&sdk);
        let deployed = runtime.block_on(deployed_template(&client, &stage.stack_name))?;
        let synthesized = stacks::synthesize(&contract::CONTRACT, &stage)?.to_value();
        let dir = self.artifacts.unwrap_or_else(|| project_root().join("target/lambda"));
        let built = build::read_manifest(&dir).unwrap_or_default();
        let report = match deployed.as_ref().filter(|template| stacks::cdk::is_cdk_template(template)) {
            Some(deployed) => released_through_cdk(&stage, deployed, &synthesized, &built)?,
            None => {
                let mut report = report(&stage.stack_name, deployed.as_ref(), &synthesized);
                let deployed_keys = runtime.block_on(deployed_parameters(&client, &stage.stack_name))?;
                report.with_code(code_changes(&deployed_keys, &built));
                report
            }
        };
        match if self.json { Format::Json } else { self.format } {
            Format::Text => print!("{report}"),
            Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
            Format::Markdown => print!("{}", markdown::render(&report, &stage.name)),
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

/// The deployed stack's parameters (none if it does not exist).
async fn deployed_parameters(client: &aws_sdk_cloudformation::Client, stack: &str) -> Result<BTreeMap<String, String>> {
    let stacks = match client.describe_stacks().stack_name(stack).send().await {
        Ok(output) => output.stacks.unwrap_or_default(),
        Err(error)
            if error
                .as_service_error()
                .and_then(|e| e.meta().message())
                .is_some_and(|m| m.contains("does not exist")) =>
        {
            return Ok(BTreeMap::new());
        }
        Err(error) => {
            return Err(anyhow::anyhow!("{}", aws_sdk_cloudformation::error::DisplayErrorContext(error)))
                .with_context(|| format!("reading the parameters of {stack}"));
        }
    };
    let parameters = stacks.into_iter().next().and_then(|stack| stack.parameters).unwrap_or_default();
    Ok(parameters
        .into_iter()
        .filter_map(|parameter| Some((parameter.parameter_key?, parameter.parameter_value?)))
        .collect())
}

/// Per function of the contract: its deployed code key against the local build's.
pub(crate) fn code_changes(deployed: &BTreeMap<String, String>, built: &[build::Artifact]) -> Vec<CodeChange> {
    compare_code(
        |function| deployed.get(&naming::code_key(function)).cloned(),
        |function| built.iter().find(|artifact| artifact.function == function).map(build::Artifact::asset_key),
    )
}

/// Per function of the contract: the key of its deployed code against the local build's.
fn compare_code(deployed: impl Fn(&str) -> Option<String>, local: impl Fn(&str) -> Option<String>) -> Vec<CodeChange> {
    contract::functions::ALL
        .iter()
        .map(|function| {
            let (deployed_key, local_key) = (deployed(function.name), local(function.name));
            let status = match (&deployed_key, &local_key) {
                (Some(deployed), Some(local)) if deployed == local => CodeStatus::Same,
                (Some(_), Some(_)) => CodeStatus::Differs,
                (Some(_), None) => CodeStatus::NotBuilt,
                (None, _) => CodeStatus::NotDeployed,
            };
            CodeChange { function: function.name.to_owned(), deployed_key, local_key, status }
        })
        .collect()
}

/// The report of a stack released through the CDK: `deployed` (a CDK-form template) against the
/// CDK form of `synthesized`, whose code is the local build's zip where there is one and the
/// deployed zip otherwise (so an unbuilt function shows as not built, not as a template change);
/// each function's code by its zip's object key (`<sha256>.zip`).
fn released_through_cdk(
    stage: &stacks::StageConfig,
    deployed: &Value,
    synthesized: &Value,
    built: &[build::Artifact],
) -> Result<Report> {
    let deployed_zips = stacks::cdk::zip_hashes(&contract::CONTRACT, deployed);
    let local_zip = |function: &str| {
        built.iter().find(|artifact| artifact.function == function).map(|artifact| artifact.sha256_hex.clone())
    };
    let mut zips = BTreeMap::new();
    for function in contract::functions::ALL {
        let zip =
            local_zip(function.name).or_else(|| deployed_zips.get(function.name).cloned()).with_context(|| {
                format!("`{}` is neither built nor deployed from a zip: run `cargo xtask build`", function.name)
            })?;
        zips.insert(function.name.to_owned(), zip);
    }
    let cdk_form = stacks::cdk::template(&contract::CONTRACT, &stage.region, synthesized, &zips)?;
    let mut report = report(&stage.stack_name, Some(deployed), &cdk_form);
    report.released_through_cdk = true;
    report.with_code(compare_code(
        |function| deployed_zips.get(function).map(|hash| format!("{hash}.zip")),
        |function| local_zip(function).map(|hash| format!("{hash}.zip")),
    ));
    Ok(report)
}

/// Compares the two sides and decides the exit code.
pub(crate) fn report(stack: &str, deployed: Option<&Value>, synthesized: &Value) -> Report {
    let diff = stacks::diff::diff(deployed.unwrap_or(&Value::Null), synthesized);
    let findings = Findings {
        deployed: deployed.map(|template| stacks::verify(template, &contract::CONTRACT)).unwrap_or_default(),
        synthesized: stacks::verify(synthesized, &contract::CONTRACT),
    };
    let mut report = Report {
        stack: stack.to_owned(),
        stack_exists: deployed.is_some(),
        diff,
        released_through_cdk: false,
        code: Vec::new(),
        findings,
        exit_code: 0,
    };
    report.exit_code = report.decide_exit_code();
    report
}

fn show(value: &Option<Value>) -> String {
    match value {
        None => "(absent)".to_owned(),
        Some(Value::String(text)) => format!("{text:?}"),
        Some(other) => other.to_string(),
    }
}

impl Report {
    /// The report with the code comparison, and the exit code it then has.
    /// The deployed side in words: deployed (through the CDK, or not), or not yet.
    pub(crate) fn state(&self) -> &'static str {
        match (self.stack_exists, self.released_through_cdk) {
            (false, _) => "not deployed yet: everything is new",
            (true, false) => "deployed",
            (true, true) => "deployed through the CDK: compared with the synthesized template's CDK form",
        }
    }

    pub(crate) fn with_code(&mut self, code: Vec<CodeChange>) {
        self.code = code;
        self.exit_code = self.decide_exit_code();
    }

    fn decide_exit_code(&self) -> u8 {
        let code_differs = self.code.iter().any(|change| matches!(change.status, CodeStatus::Differs));
        if !self.findings.deployed.is_empty()
            || !self.findings.synthesized.is_empty()
            || self.diff.rejected().next().is_some()
        {
            1
        } else if self.diff.is_empty() && !code_differs {
            0
        } else {
            2
        }
    }

    /// The report without its closing verdict (deploy says what it does instead).
    pub(crate) fn body(&self) -> String {
        Body(self).to_string()
    }

    fn verdict(&self) -> &'static str {
        match self.exit_code {
            0 => "nothing to deploy",
            2 => "differences (exit 2)",
            _ if self.diff.rejected().next().is_some() => "CloudFormation would reject this update: split it (exit 1)",
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
        writeln!(f, "Stack {} ({})", report.stack, report.state())?;
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
                ChangeKind::Modified | ChangeKind::MayChange => "~",
            };
            let verdict = match (change.kind, change.replacement) {
                (_, Replacement::Always) => "  replace",
                (_, Replacement::Conditional) => "  may replace",
                (ChangeKind::MayChange, Replacement::Never) => "  may change",
                _ => "",
            };
            writeln!(f, "{mark} {} ({}){verdict}", change.logical_id, change.resource_type)?;
            for because in &change.replacement_because {
                writeln!(f, "    because: {because}")?;
            }
            if change.kind == ChangeKind::Modified {
                for property in &change.properties {
                    writeln!(f, "    {}: {} → {}", property.path, show(&property.old), show(&property.new))?;
                }
            }
            for note in &change.notes {
                writeln!(f, "    note: {note}")?;
            }
        }
        let code: Vec<&CodeChange> = report.code.iter().filter(|change| change.status != CodeStatus::Same).collect();
        if !code.is_empty() {
            writeln!(f, "\nCode")?;
            for change in code {
                let text = match change.status {
                    CodeStatus::Differs => format!(
                        "~ {}: {} → {}",
                        change.function,
                        change.deployed_key.as_deref().unwrap_or_default(),
                        change.local_key.as_deref().unwrap_or_default()
                    ),
                    CodeStatus::NotBuilt => {
                        format!("? {}: deployed, no local build to compare (cargo xtask build)", change.function)
                    }
                    CodeStatus::NotDeployed => format!("+ {}: not deployed yet", change.function),
                    CodeStatus::Same => continue,
                };
                writeln!(f, "{text}")?;
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
        let rejected: Vec<_> = report.diff.rejected().collect();
        if !rejected.is_empty() {
            writeln!(f, "\nUpdates CloudFormation would reject (split them into releases)")?;
            for change in rejected {
                writeln!(f, "✗ {}: {}", change.logical_id, change.rejected.as_deref().unwrap_or_default())?;
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

/// `template` with two global secondary indexes more on the connections table: an update
/// CloudFormation would reject (for tests).
#[cfg(test)]
pub(crate) fn with_two_indexes_more(template: &Value) -> Value {
    let mut changed = template.clone();
    if let Some(indexes) = changed
        .pointer_mut("/Resources/ConnectionsTable/Properties/GlobalSecondaryIndexes")
        .and_then(Value::as_array_mut)
    {
        for name in ["a", "b"] {
            let mut index = indexes[0].clone();
            index["IndexName"] = serde_json::json!(name);
            indexes.push(index);
        }
    }
    changed
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
    fn each_functions_code_is_compared_with_the_local_build() {
        let zip = |function: &str, content: &[u8]| {
            let dir = std::env::temp_dir();
            build::artifact(function, build::Arch::Arm64, build::Profile::Release, dir.join("x.zip"), content)
        };
        let (connection, messages, http) = (zip("connection", b"c"), zip("messages", b"m"), zip("http", b"h"));
        let deployed = BTreeMap::from([
            (naming::code_key("authorizer"), "assets/authorizer/old.zip".to_owned()),
            (naming::code_key("connection"), connection.asset_key()),
            (naming::code_key("messages"), "assets/messages/old.zip".to_owned()),
        ]);
        let changes = code_changes(&deployed, &[connection, messages, http]);
        let statuses: Vec<(&str, CodeStatus)> =
            changes.iter().map(|change| (change.function.as_str(), change.status)).collect();
        assert_eq!(
            statuses,
            [
                ("authorizer", CodeStatus::NotBuilt),
                ("connection", CodeStatus::Same),
                ("messages", CodeStatus::Differs),
                ("http", CodeStatus::NotDeployed)
            ]
        );
        // Only a difference in deployed code is a difference to release.
        let mut same = report("s", Some(&dev()), &dev());
        same.with_code(changes.iter().filter(|change| change.status != CodeStatus::Differs).cloned().collect());
        assert_eq!(same.exit_code, 0);
        same.with_code(changes);
        assert_eq!(same.exit_code, 2);
        let text = same.to_string();
        assert!(text.contains("~ messages: assets/messages/old.zip → assets/messages/"), "{text}");
        assert!(text.contains("? authorizer: deployed, no local build"), "{text}");
    }

    #[test]
    fn replacements_read_replace_may_replace_and_may_change() {
        let mut deployed = dev();
        deployed["Resources"]["WebSocketApi"]["Properties"]["ProtocolType"] = serde_json::json!("HTTP");
        let text = report("s", Some(&deployed), &dev()).to_string();
        assert!(text.contains("~ WebSocketApi (AWS::ApiGatewayV2::Api)  replace"), "{text}");
        assert!(text.contains("~ RouteConnect (AWS::ApiGatewayV2::Route)  may replace"), "{text}");
        assert!(text.contains("~ MessagesFunction (AWS::Lambda::Function)  may change"), "{text}");
        assert!(text.contains("MANAGEMENT_ENDPOINT change"), "{text}");
    }

    #[test]
    fn an_update_cloudformation_would_reject_is_exit_1() {
        let deployed = dev();
        let report = report("s", Some(&deployed), &with_two_indexes_more(&deployed));
        assert_eq!(report.exit_code, 1);
        assert!(report.to_string().contains("Updates CloudFormation would reject"), "{report}");
    }

    #[test]
    fn the_json_report_has_a_stable_shape() {
        let value = serde_json::to_value(report("s", None, &dev())).expect("json");
        for key in ["stack", "stackExists", "releasedThroughCdk", "diff", "code", "findings", "exitCode"] {
            assert!(value.get(key).is_some(), "{key}");
        }
        assert!(value["findings"]["deployed"].is_array() && value["findings"]["synthesized"].is_array());
        let first = &value["diff"]["resources"][0];
        assert_eq!(
            (first["replacement"].as_str(), first["replacementBecause"].as_array().map(Vec::len)),
            (Some("never"), Some(0))
        );
    }
}

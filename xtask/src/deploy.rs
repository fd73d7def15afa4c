//! `cargo xtask deploy`: releases a stage, showing what changes and asking where it matters.
//!
//! 1. Refuses a stage whose file still holds example settings, except against a local endpoint
//!    ([`crate::examples`]); synthesizes the stage and refuses a template with contract findings.
//! 2. Builds the functions (or, with `--no-build`, takes the zips of the last `cargo xtask
//!    build` from `--artifacts`, refusing them unless every function is there, built for the
//!    stage's architecture with the release profile, and unchanged since: see
//!    [`build::check_manifest`]).
//! 3. Reads the stack's status and decides what the change set is ([`change_set_type`]): none
//!    yet, or `REVIEW_IN_PROGRESS` (only a change set, never executed), creates it; a stack
//!    that cannot be updated (`ROLLBACK_COMPLETE` after a failed first creation, ...) or that
//!    is busy (`*_IN_PROGRESS`) stops the release here, saying what to run or wait for.
//! 4. Uploads each zip to the assets bucket under its content hash, skipping what is already
//!    there; the bucket is created on first use, in the region the release goes to
//!    ([`assets`]).
//! 5. Says "no changes" and stops when the deployed template and parameters already match;
//!    refuses, before any change set exists, an update CloudFormation would reject (a table's
//!    global secondary indexes: `stacks::replacement::rejection`), saying how to split it.
//! 6. Uploads the template to the same bucket (`templates/<sha256>.json`, skipped when there)
//!    and creates a change set from its `TemplateURL` (always by URL, whatever the template's
//!    size: see [`Assets::upload_template`]), without executing it, with `--role-arn` as the
//!    stack's service role when given (CloudFormation then acts with that role, not the
//!    caller's credentials); waits until CloudFormation has worked it out. One that holds no
//!    changes is deleted: nothing to do.
//! 7. Reads the change set ([`change_set::describe`], every page) and prints it beside our own
//!    diff, with a warning wherever the two disagree on whether a resource is replaced
//!    ([`review`]).
//! 8. Refuses to replace a stateful resource (table, stream) that either view says is replaced,
//!    unless `--allow-replacement LOGICAL_ID` names it.
//! 9. Asks for approval when the release has security-relevant changes, replaces stateful
//!    resources or removes them (`--yes` skips the question; without a terminal it refuses
//!    instead). A refusal at 8 or 9 deletes the change set: nothing is executed.
//! 10. Executes the change set and follows the stack's events ([`progress`]): on a terminal
//!     live (resources done of the change set's, those in progress and for how long, each
//!     failure as it comes, the root cause first, then the rollback), elsewhere one plain line
//!     per event. Prints the outputs; or, on failure, an error that starts with the root cause
//!     (the first failure that is not a cascade of another) and ends with what the stack
//!     needs before the next release.
//!
//! Exit codes: 0 released, or nothing to change; 1 anything else, the message saying what to
//! do next — among them a stack in `ROLLBACK_COMPLETE` (the message gives the exact
//! `aws cloudformation delete-stack` command to run before deploying again), a stack with an
//! operation in progress (wait for it, then deploy again), an update CloudFormation would
//! reject (how to split it), a stateful replacement not allowed (what is lost, and how to
//! replace deliberately), and an approval refused or not askable.

mod assets;
mod change_set;
mod progress;
mod review;

use crate::aws::{self, AwsArgs};
use crate::build::{self, Arch, Artifact};
use crate::diff::{Report, deployed_template, report};
use crate::synth::stage_named;
use crate::{project_root, step};
use anyhow::{Context, Result, bail};
use assets::Assets;
use aws_sdk_cloudformation::types::{ChangeSetType, StackStatus};
use change_set::Pending;
use progress::Execution;
use stacks::naming;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// Deploys a stage.
#[derive(Debug, clap::Args)]
pub(crate) struct Deploy {
    /// The stage (`dev`, `prod`).
    #[arg(long)]
    stage: String,
    /// Do not ask for approval of security-relevant changes or stateful replacements.
    #[arg(long)]
    yes: bool,
    /// Let this release replace the stateful resource (table, stream) with this logical id,
    /// losing its data; repeat for each. Without it such a release is refused.
    #[arg(long = "allow-replacement", value_name = "LOGICAL_ID")]
    allow_replacement: Vec<String>,
    /// Use the zips already built (see --artifacts) instead of building.
    #[arg(long)]
    no_build: bool,
    /// Where the built zips and their manifest.json are.
    #[arg(long, value_name = "DIR")]
    artifacts: Option<PathBuf>,
    /// The IAM role CloudFormation assumes to create, update and delete the stack's resources (a
    /// CloudFormation service role), so the caller needs no permission on them; without it the
    /// caller's credentials are used, or the role the stack was last given.
    #[arg(long, value_name = "ARN")]
    role_arn: Option<String>,
    /// The assets bucket (default: the CDK bootstrap's assets bucket where the region has one,
    /// else `<stack>-assets-<account>-<region>`).
    #[arg(long)]
    assets_bucket: Option<String>,
    #[command(flatten)]
    aws: AwsArgs,
}

impl Deploy {
    pub(crate) fn run(self) -> Result<()> {
        let stage = stage_named(&self.stage)?;
        crate::examples::refuse_for_a_real_account(&stage, self.aws.endpoint_url.as_deref())?;
        let template = stacks::synthesize(&contract::CONTRACT, &stage)?;
        let findings = stacks::verify(&template.to_value(), &contract::CONTRACT);
        if !findings.is_empty() {
            let lines: Vec<String> = findings.iter().map(|finding| format!("  {finding}")).collect();
            bail!("refusing to deploy a template that contradicts the contract:\n{}", lines.join("\n"));
        }
        let arch = Arch::from(stage.architecture);
        let functions: Vec<&contract::Function> = contract::functions::ALL.iter().collect();
        let artifacts = if self.no_build {
            let dir = self.artifacts.clone().unwrap_or_else(|| project_root().join("target/lambda"));
            build::check_manifest(&build::read_manifest(&dir)?, arch, &functions)
                .with_context(|| format!("--no-build takes the zips in {}", dir.display()))?
        } else {
            build::build(arch, true, &functions)?
        };
        let runtime = tokio::runtime::Runtime::new()?;
        runtime.block_on(self.release(&stage, &template, &artifacts))
    }

    async fn release(
        &self,
        stage: &stacks::StageConfig,
        template: &stacks::cfn::Template,
        artifacts: &[Artifact],
    ) -> Result<()> {
        let sdk = self.aws.load(&stage.region).await?;
        let region = aws::region(&sdk)?;
        let cloudformation = aws_sdk_cloudformation::Client::new(&sdk);
        let stack = &stage.stack_name;
        let current = describe(&cloudformation, stack).await?;
        let status = current.as_ref().and_then(|described| described.stack_status.as_ref());
        let kind = change_set_type(stack, status, &self.aws.cli_options(&region))?;
        if status == Some(&StackStatus::ReviewInProgress) {
            step(format!("{stack} is REVIEW_IN_PROGRESS: it only holds a change set never executed; creating it"));
        }
        let s3 = aws_sdk_s3::Client::new(&sdk);
        let bucket = match &self.assets_bucket {
            Some(bucket) => bucket.clone(),
            None => assets::default_bucket(&sdk, &s3, &stage.stack_name, &region).await?,
        };
        // The bucket lives where the stack does (Lambda reads code only from its own
        // region): the region the SDK talks to, which `--region` may have changed.
        let assets = Assets::open(&s3, &bucket, &region).await?;
        let keys = assets.upload_zips(artifacts).await?;
        let mut parameters = BTreeMap::from([(naming::ASSETS_BUCKET.to_owned(), bucket.clone())]);
        for (logical_id, _) in template.parameters.iter().filter(|(id, _)| id.ends_with("CodeKey")) {
            let function = contract::functions::ALL
                .iter()
                .find(|function| naming::code_key(function.name) == *logical_id)
                .with_context(|| format!("no function for parameter {logical_id}"))?;
            let key = keys.get(function.name).with_context(|| {
                format!("no zip for `{}`: run `cargo xtask build` (or drop --no-build)", function.name)
            })?;
            parameters.insert(logical_id.clone(), key.clone());
        }

        // A stack about to be created has nothing deployed, whatever a pending change set holds.
        let (deployed, deployed_parameters) = match kind {
            ChangeSetType::Create => (None, BTreeMap::new()),
            _ => (deployed_template(&cloudformation, stack).await?, parameters_of(current.clone())),
        };
        let synthesized = template.to_value();
        // A new service role is for CloudFormation to take or not: the change set decides.
        let deployed_role = current.as_ref().and_then(|stack| stack.role_arn.as_deref());
        let new_role = self.role_arn.as_deref().is_some_and(|role| Some(role) != deployed_role);
        if deployed.as_ref() == Some(&synthesized) && deployed_parameters == parameters && !new_role {
            println!("No changes: {stack} already runs this template and this code.");
            return Ok(());
        }
        let report = report(stack, deployed.as_ref(), &synthesized);
        refuse_rejected(&report)?;

        // Always by URL, never inline: why is on `upload_template`.
        let template_url = assets.upload_template(&template.to_json()).await?;
        let request = change_set::Request {
            stack,
            kind,
            template_url: &template_url,
            parameters: &parameters,
            role_arn: self.role_arn.as_deref(),
        };
        let Some(pending) = change_set::create(&cloudformation, &request).await? else {
            println!("No changes: CloudFormation found nothing to change.");
            return Ok(());
        };
        let changes = match self.review(&cloudformation, &pending, &report).await {
            Ok(changes) => changes,
            Err(refused) => {
                change_set::delete(&cloudformation, &pending).await;
                return Err(refused);
            }
        };
        // From here on the stack is named by its id: the one this change set belongs to. Its
        // newest event before the execution marks where the release's events begin (read by
        // event, not by this machine's clock, which may run ahead of CloudFormation's).
        let stack_id = &pending.stack_id;
        let before = newest_event(&cloudformation, stack_id).await?;
        let started = SystemTime::now();
        change_set::execute(&cloudformation, &pending).await?;
        let mut execution = Execution::new(stack, changes, started);
        let status = follow(&cloudformation, stack_id, &mut execution, before).await?;
        let description = describe(&cloudformation, stack_id).await?;
        if !matches!(status, StackStatus::CreateComplete | StackStatus::UpdateComplete) {
            let reason = description.and_then(|stack| stack.stack_status_reason).unwrap_or_default();
            let cli_options = self.aws.cli_options(&region);
            bail!("{}", failed(stack, &status, &reason, execution.root_cause(), &cli_options));
        }
        println!("{stack} is {}.", status.as_str());
        for output in description.map(|stack| stack.outputs.unwrap_or_default()).unwrap_or_default() {
            println!("  {} = {}", output.output_key.unwrap_or_default(), output.output_value.unwrap_or_default());
        }
        Ok(())
    }

    /// Shows our diff and the change set side by side, then decides: a stateful replacement
    /// not allowed is refused; a risky release is asked about. An error here means the change
    /// set must not be executed. Returns how many resource changes the change set holds.
    async fn review(
        &self,
        client: &aws_sdk_cloudformation::Client,
        pending: &Pending,
        report: &Report,
    ) -> Result<usize> {
        let plan = change_set::describe(client, pending).await?;
        print!("{}", report.body());
        if !report.findings.deployed.is_empty() {
            println!("(the deployed template's findings above are what this release fixes)");
        }
        print!("{plan}");
        let review = review::review(&report.diff, &plan, &self.allow_replacement);
        for warning in review.warnings() {
            println!("warning: {warning}");
        }
        review.check()?;
        let risky = report.diff.security().next().is_some()
            || report.diff.data_loss().next().is_some()
            || review.replaces_stateful();
        if risky && !self.yes {
            approve()?;
        }
        Ok(plan.changes.len())
    }
}

/// What kind of change set a release makes of a stack in `status` (`None`: no stack), or why
/// it cannot make one now. `cli_options` are the `aws` CLI options that reach the same stack
/// (`--region ...`), for the commands the refusals quote.
fn change_set_type(stack: &str, status: Option<&StackStatus>, cli_options: &str) -> Result<ChangeSetType> {
    let Some(status) = status else {
        return Ok(ChangeSetType::Create);
    };
    let name = status.as_str();
    match status {
        // A change set of type CREATE made the stack and was never executed: another CREATE
        // change set creates it (an UPDATE one is refused).
        StackStatus::ReviewInProgress => Ok(ChangeSetType::Create),
        StackStatus::RollbackComplete | StackStatus::RollbackFailed => bail!(
            "{stack} is {name}: its first creation failed (the reason is in its events) and a stack in this state \
             cannot be updated. Delete it, wait for the deletion, and deploy again:\n  \
             aws cloudformation delete-stack --stack-name {stack}{cli_options}\n  \
             aws cloudformation wait stack-delete-complete --stack-name {stack}{cli_options}"
        ),
        StackStatus::DeleteFailed => bail!(
            "{stack} is DELETE_FAILED: a deletion stopped part-way and the stack cannot be updated. Delete it \
             again (the events say which resources failed; --retain-resources keeps them), then deploy:\n  \
             aws cloudformation delete-stack --stack-name {stack}{cli_options}\n  \
             aws cloudformation wait stack-delete-complete --stack-name {stack}{cli_options}"
        ),
        StackStatus::UpdateRollbackFailed => bail!(
            "{stack} is UPDATE_ROLLBACK_FAILED: finish the rollback, then deploy again:\n  \
             aws cloudformation continue-update-rollback --stack-name {stack}{cli_options}"
        ),
        _ if name.ends_with("_IN_PROGRESS") => bail!(
            "{stack} is {name}: an operation is running on it; wait for the running operation to finish \
             (aws cloudformation describe-stack-events --stack-name {stack}{cli_options}), then deploy again"
        ),
        _ => Ok(ChangeSetType::Update),
    }
}

async fn describe(
    client: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> Result<Option<aws_sdk_cloudformation::types::Stack>> {
    match client.describe_stacks().stack_name(stack).send().await {
        Ok(output) => Ok(output.stacks.unwrap_or_default().into_iter().next()),
        Err(error)
            if error
                .as_service_error()
                .and_then(|e| e.meta().message())
                .is_some_and(|m| m.contains("does not exist")) =>
        {
            Ok(None)
        }
        Err(error) => Err(anyhow::anyhow!("{}", aws_sdk_cloudformation::error::DisplayErrorContext(error))),
    }
}

fn parameters_of(stack: Option<aws_sdk_cloudformation::types::Stack>) -> BTreeMap<String, String> {
    stack
        .and_then(|stack| stack.parameters)
        .unwrap_or_default()
        .into_iter()
        .map(|parameter| (parameter.parameter_key.unwrap_or_default(), parameter.parameter_value.unwrap_or_default()))
        .collect()
}

/// Refuses, before any change set exists, an update CloudFormation would reject (a table's
/// global secondary indexes changed more than one at a time, or in place), saying how to split it.
fn refuse_rejected(report: &Report) -> Result<()> {
    let rejected: Vec<String> = report
        .diff
        .rejected()
        .map(|change| format!("{}: {}", change.logical_id, change.rejected.as_deref().unwrap_or_default()))
        .collect();
    if rejected.is_empty() {
        return Ok(());
    }
    bail!("CloudFormation would reject this update, so no change set was made:\n  {}", rejected.join("\n  "))
}

/// Asks on the terminal; refuses without one.
fn approve() -> Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "this release has security-relevant changes, or replaces or removes stateful resources (listed \
             above); not on a terminal to ask, so refusing: review them and rerun with --yes"
        );
    }
    eprint!("Deploy these changes? [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        bail!("not deployed: the answer was no");
    }
    Ok(())
}

/// The error of a release whose stack ended in `status` (`reason`: the stack's), the root
/// cause first: what a person has to fix. Then what else the stack needs before the next
/// release, with the commands (`cli_options` as for [`change_set_type`]).
fn failed(
    stack: &str,
    status: &StackStatus,
    reason: &str,
    root_cause: Option<&progress::Failure>,
    cli_options: &str,
) -> String {
    let first = root_cause.map(|failure| format!("{failure}\n")).unwrap_or_default();
    let reason = match reason.trim().trim_end_matches('.') {
        "" => String::new(),
        reason => format!(": {reason}"),
    };
    let next = match status {
        StackStatus::RollbackComplete | StackStatus::RollbackFailed => format!(
            "fix the cause, delete the stack (a first creation that failed cannot be updated), and deploy again:\n  \
             aws cloudformation delete-stack --stack-name {stack}{cli_options}\n  \
             aws cloudformation wait stack-delete-complete --stack-name {stack}{cli_options}"
        ),
        StackStatus::UpdateRollbackFailed => format!(
            "finish the rollback, fix the cause, and deploy again:\n  \
             aws cloudformation continue-update-rollback --stack-name {stack}{cli_options}"
        ),
        _ => "fix the cause and deploy again".to_owned(),
    };
    format!("{first}{stack} is {}{reason}. The failing events are listed above; {next}", status.as_str())
}

/// Follows the stack's new events into `execution` until the stack settles; returns its
/// final status. On a terminal ([`crate::progress::live`]) it shows the execution live: done
/// of total, what is in progress and for how long, each failure as it comes (the root cause
/// first) and the rollback; elsewhere it prints each event as a plain line.
async fn follow(
    client: &aws_sdk_cloudformation::Client,
    stack: &str,
    execution: &mut Execution,
    before: Option<String>,
) -> Result<StackStatus> {
    let mut board = crate::progress::live().then(crate::progress::Board::stderr);
    let mut seen: std::collections::BTreeSet<String> = before.into_iter().collect();
    let mut printed = std::collections::BTreeSet::new();
    loop {
        for event in &new_events(client, stack, &seen).await? {
            seen.insert(event.event_id.clone().unwrap_or_default());
            execution.apply(event);
            if board.is_some() {
                continue;
            }
            let status = event.resource_status.as_ref().map(|status| status.as_str()).unwrap_or("");
            let marker = if status.contains("FAILED") { "✗" } else { " " };
            println!(
                "{marker} {:<40} {:<22} {}",
                event.logical_resource_id.as_deref().unwrap_or(""),
                status,
                event.resource_status_reason.as_deref().unwrap_or("")
            );
        }
        if let Some(board) = &board {
            for failure in execution.failures() {
                if printed.insert(failure.event_id.clone()) {
                    board.println(&format!("✗ {failure}"));
                }
            }
        }
        let status =
            describe(client, stack).await?.and_then(|stack| stack.stack_status).context("the stack vanished")?;
        if !status.as_str().ends_with("_IN_PROGRESS") {
            if let Some(board) = board.take() {
                board.finish(&execution.view(SystemTime::now()));
            }
            return Ok(status);
        }
        // Two seconds between polls; the elapsed times move on every second meanwhile.
        for _ in 0..2 {
            if let Some(board) = &mut board {
                board.show(&execution.view(SystemTime::now()));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// The id of the stack's newest event, if it has any.
async fn newest_event(client: &aws_sdk_cloudformation::Client, stack: &str) -> Result<Option<String>> {
    let page = client.describe_stack_events().stack_name(stack).send().await?;
    Ok(page.stack_events.unwrap_or_default().into_iter().next().and_then(|event| event.event_id))
}

/// The stack's events newer than every event in `seen`, oldest first. `DescribeStackEvents`
/// answers newest first, up to 100 events a page: pages are read until one reaches an event
/// already seen (the newest before the release, then each one shown), so a burst of events
/// between two polls (a first release creates every resource at once) is never cut to its
/// newest page.
async fn new_events(
    client: &aws_sdk_cloudformation::Client,
    stack: &str,
    seen: &std::collections::BTreeSet<String>,
) -> Result<Vec<aws_sdk_cloudformation::types::StackEvent>> {
    let mut pages = client.describe_stack_events().stack_name(stack).into_paginator().send();
    let mut fresh = Vec::new();
    'pages: while let Some(page) = pages.next().await {
        for event in page?.stack_events.unwrap_or_default() {
            if seen.contains(event.event_id.as_deref().unwrap_or_default()) {
                break 'pages;
            }
            fresh.push(event);
        }
    }
    fresh.reverse();
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLI: &str = " --region eu-west-1 --profile ops";

    #[test]
    fn an_update_cloudformation_would_reject_is_refused_before_any_change_set() {
        let dev = stacks::synthesize(&contract::CONTRACT, &stacks::stages::dev()).expect("synthesizes").to_value();
        assert!(refuse_rejected(&report("s", Some(&dev), &dev)).is_ok());
        let two_indexes = crate::diff::with_two_indexes_more(&dev);
        let refused = refuse_rejected(&report("s", Some(&dev), &two_indexes)).expect_err("refused");
        assert!(refused.to_string().contains("ConnectionsTable") && refused.to_string().contains("one at a time"));
    }

    #[test]
    fn the_error_of_a_failed_release_starts_with_the_root_cause() {
        let root = progress::Failure {
            event_id: "e".into(),
            logical_id: "MessagesFunction".into(),
            resource_type: "AWS::Lambda::Function".into(),
            status: "CREATE_FAILED".into(),
            reason: "Resource handler returned message: \"Uploaded file must be a non-empty zip\"".into(),
        };
        let reason = "The following resource(s) failed to create: [SessionsTable, MessagesFunction]. \
                      Rollback requested by user.";
        let error = failed("session-service-dev", &StackStatus::RollbackComplete, reason, Some(&root), CLI);
        assert_eq!(
            error,
            "MessagesFunction (AWS::Lambda::Function) CREATE_FAILED: Resource handler returned message: \
             \"Uploaded file must be a non-empty zip\"\n\
             session-service-dev is ROLLBACK_COMPLETE: The following resource(s) failed to create: \
             [SessionsTable, MessagesFunction]. Rollback requested by user. The failing events are listed above; \
             fix the cause, delete the stack (a first creation that failed cannot be updated), and deploy again:\n  \
             aws cloudformation delete-stack --stack-name session-service-dev --region eu-west-1 --profile ops\n  \
             aws cloudformation wait stack-delete-complete --stack-name session-service-dev --region eu-west-1 \
             --profile ops"
        );
        let stuck = failed("s", &StackStatus::UpdateRollbackFailed, "x", Some(&root), CLI);
        assert!(
            stuck.ends_with(
                "aws cloudformation continue-update-rollback --stack-name s --region eu-west-1 --profile ops"
            ),
            "{stuck}"
        );
        let without = failed("s", &StackStatus::UpdateRollbackComplete, "", None, "");
        assert_eq!(
            without,
            "s is UPDATE_ROLLBACK_COMPLETE. The failing events are listed above; fix the cause and deploy again"
        );
    }

    fn decide(status: Option<StackStatus>) -> Result<ChangeSetType> {
        change_set_type("session-service-dev", status.as_ref(), CLI)
    }

    #[test]
    fn a_stack_that_does_not_exist_or_was_never_executed_is_created() {
        assert_eq!(decide(None).ok(), Some(ChangeSetType::Create));
        assert_eq!(decide(Some(StackStatus::ReviewInProgress)).ok(), Some(ChangeSetType::Create));
    }

    #[test]
    fn a_settled_stack_is_updated() {
        for status in [
            StackStatus::CreateComplete,
            StackStatus::UpdateComplete,
            StackStatus::UpdateRollbackComplete,
            StackStatus::ImportComplete,
        ] {
            assert_eq!(decide(Some(status.clone())).ok(), Some(ChangeSetType::Update), "{status:?}");
        }
    }

    #[test]
    fn a_failed_first_creation_is_refused_with_the_command_that_deletes_it() {
        let error = decide(Some(StackStatus::RollbackComplete)).expect_err("refused").to_string();
        assert!(error.contains("ROLLBACK_COMPLETE") && error.contains("cannot be updated"), "{error}");
        assert!(
            error.contains(
                "aws cloudformation delete-stack --stack-name session-service-dev --region eu-west-1 --profile ops"
            ),
            "{error}"
        );
        let failed = decide(Some(StackStatus::RollbackFailed)).expect_err("refused").to_string();
        assert!(failed.contains("aws cloudformation delete-stack"), "{failed}");
    }

    #[test]
    fn a_failed_rollback_is_refused_with_the_command_that_finishes_it() {
        let error = decide(Some(StackStatus::UpdateRollbackFailed)).expect_err("refused").to_string();
        assert!(
            error.contains("aws cloudformation continue-update-rollback --stack-name session-service-dev"),
            "{error}"
        );
    }

    #[test]
    fn a_stack_with_an_operation_in_progress_is_waited_for() {
        for status in [
            StackStatus::CreateInProgress,
            StackStatus::UpdateInProgress,
            StackStatus::UpdateCompleteCleanupInProgress,
            StackStatus::UpdateRollbackInProgress,
            StackStatus::RollbackInProgress,
            StackStatus::DeleteInProgress,
            StackStatus::ImportInProgress,
        ] {
            let error = decide(Some(status.clone())).expect_err("refused").to_string();
            assert!(error.contains("wait for the running operation"), "{status:?}: {error}");
        }
    }

    /// CloudFormation's limit on an inline `TemplateBody`, in bytes.
    const INLINE_LIMIT: usize = 51_200;

    /// A template over the inline limit deploys: through its `TemplateURL` on the assets
    /// bucket, as every template does (against the local endpoint, in a region of its own).
    #[tokio::test(flavor = "multi_thread")]
    async fn a_template_over_the_inline_limit_deploys_through_its_url() {
        let region = "eu-north-1";
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region))
            .endpoint_url(testkit::local_endpoint())
            .credentials_provider(aws_sdk_cloudformation::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await;
        let template = serde_json::json!({
            "Metadata": {"Padding": "x".repeat(INLINE_LIMIT)},
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        });
        let body = serde_json::to_string_pretty(&template).expect("JSON");
        assert!(body.len() > INLINE_LIMIT, "{} bytes", body.len());

        let s3 = aws_sdk_s3::Client::new(&sdk);
        let bucket = format!("xtask-template-url-{}", std::process::id());
        let assets = Assets::open(&s3, &bucket, region).await.expect("bucket");
        let url = assets.upload_template(&body).await.expect("uploaded");
        assert!(url.starts_with(&format!("https://{bucket}.s3.{region}.amazonaws.com/templates/")), "{url}");
        // Content-addressed: the same template again is not uploaded again, and has the same URL.
        assert_eq!(assets.upload_template(&body).await.expect("unchanged"), url);

        let cloudformation = aws_sdk_cloudformation::Client::new(&sdk);
        let stack = "xtask-template-url";
        let parameters = BTreeMap::new();
        let request = change_set::Request {
            stack,
            kind: ChangeSetType::Create,
            template_url: &url,
            parameters: &parameters,
            role_arn: None,
        };
        let pending = change_set::create(&cloudformation, &request).await.expect("created").expect("changes");
        let plan = change_set::describe(&cloudformation, &pending).await.expect("described");
        assert_eq!(
            plan.changes.iter().map(|change| (change.action.as_str(), change.logical_id.as_str())).collect::<Vec<_>>(),
            [("Add", "Topic")]
        );
        let mut execution = Execution::new(stack, plan.changes.len(), SystemTime::now());
        let before = newest_event(&cloudformation, &pending.stack_id).await.expect("events");
        change_set::execute(&cloudformation, &pending).await.expect("executed");
        let status = follow(&cloudformation, &pending.stack_id, &mut execution, before).await.expect("settled");
        assert_eq!(status, StackStatus::CreateComplete);
        let deployed = deployed_template(&cloudformation, stack).await.expect("read").expect("deployed");
        assert_eq!(deployed, template);
    }

    /// `<member>` of a `DescribeStackEvents` answer.
    fn stack_event(id: &str, at: &str, status: &str) -> String {
        format!(
            "<member><EventId>{id}</EventId><StackId>stack-id</StackId><StackName>s</StackName>\
             <LogicalResourceId>{id}</LogicalResourceId><ResourceStatus>{status}</ResourceStatus>\
             <Timestamp>{at}</Timestamp></member>"
        )
    }

    fn events_page(members: &[String], next: Option<&str>) -> String {
        format!(
            "<DescribeStackEventsResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\">\
             <DescribeStackEventsResult><StackEvents>{}</StackEvents>{}</DescribeStackEventsResult>\
             <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DescribeStackEventsResponse>",
            members.concat(),
            next.map(|token| format!("<NextToken>{token}</NextToken>")).unwrap_or_default()
        )
    }

    #[tokio::test]
    async fn every_page_of_new_events_is_read_and_they_come_oldest_first() {
        let pages = vec![
            events_page(
                &[
                    stack_event("newest", "2026-11-18T11:07:30Z", "CREATE_IN_PROGRESS"),
                    stack_event("middle", "2026-11-18T11:07:20Z", "CREATE_IN_PROGRESS"),
                ],
                Some("page-2"),
            ),
            events_page(
                &[
                    stack_event("root-cause", "2026-11-18T11:07:10Z", "CREATE_FAILED"),
                    stack_event("seen-before", "2026-11-18T11:07:00Z", "CREATE_IN_PROGRESS"),
                ],
                Some("page-3"),
            ),
        ];
        let (url, server) = change_set::tests::serve(pages);
        let seen = std::collections::BTreeSet::from(["seen-before".to_owned()]);
        let events = new_events(&change_set::tests::client(&url), "s", &seen).await.expect("read");
        let ids: Vec<&str> = events.iter().filter_map(|event| event.event_id.as_deref()).collect();
        assert_eq!(ids, ["root-cause", "middle", "newest"]);
        let requests = server.join().expect("served");
        assert_eq!(requests.len(), 2, "the third page is never asked for: {requests:?}");
        assert!(requests[1].contains("NextToken=page-2"), "{}", requests[1]);
    }
}

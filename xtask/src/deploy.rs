//! `cargo xtask deploy`: releases a stage, showing what changes and asking where it matters.
//!
//! 1. Synthesizes the stage and refuses a template with contract findings.
//! 2. Builds the functions (or, with `--no-build`, takes the zips of the last `cargo xtask
//!    build` from `--artifacts`, refusing them unless every function is there, built for the
//!    stage's architecture with the release profile, and unchanged since: see
//!    [`build::check_manifest`]).
//! 3. Reads the stack's status and decides what the change set is ([`change_set_type`]): none
//!    yet, or `REVIEW_IN_PROGRESS` (only a change set, never executed), creates it; a stack
//!    that cannot be updated (`ROLLBACK_COMPLETE` after a failed first creation, ...) or that
//!    is busy (`*_IN_PROGRESS`) stops the release here, saying what to run or wait for.
//! 4. Uploads each zip to the assets bucket under its content hash, skipping what is already
//!    there; the bucket is created on first use, in the region the release goes to.
//! 5. Says "no changes" and stops when the deployed template and parameters already match.
//! 6. Prints the diff, asks for approval when it has security-relevant changes or replaces
//!    stateful resources (`--yes` skips the question; without a terminal it refuses instead),
//!    creates a change set, executes it, and streams the stack's events.
//! 7. Prints the outputs; on failure, the failing events and the stack's state.
//!
//! Exit codes: 0 released, or nothing to change; 1 anything else, the message saying what to
//! do next — among them a stack in `ROLLBACK_COMPLETE` (the message gives the exact
//! `aws cloudformation delete-stack` command to run before deploying again) and a stack with
//! an operation in progress (wait for it, then deploy again).

use crate::aws::{self, AwsArgs};
use crate::build::{self, Arch, Artifact};
use crate::diff::{deployed_template, report};
use crate::synth::stage_named;
use crate::{project_root, step};
use anyhow::{Context, Result, bail};
use aws_sdk_cloudformation::types::{Capability, ChangeSetStatus, ChangeSetType, Parameter, StackStatus};
use stacks::naming;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

/// Deploys a stage.
#[derive(Debug, clap::Args)]
pub(crate) struct Deploy {
    /// The stage (`dev`, `prod`).
    #[arg(long)]
    stage: String,
    /// Do not ask for approval of security-relevant changes or stateful replacements.
    #[arg(long)]
    yes: bool,
    /// Use the zips already built (see --artifacts) instead of building.
    #[arg(long)]
    no_build: bool,
    /// Where the built zips and their manifest.json are.
    #[arg(long, value_name = "DIR")]
    artifacts: Option<PathBuf>,
    /// The assets bucket (default: `<stack>-assets-<account>`).
    #[arg(long)]
    assets_bucket: Option<String>,
    #[command(flatten)]
    aws: AwsArgs,
}

impl Deploy {
    pub(crate) fn run(self) -> Result<()> {
        let stage = stage_named(&self.stage)?;
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
        let bucket = match &self.assets_bucket {
            Some(bucket) => bucket.clone(),
            None => {
                let identity = aws_sdk_sts::Client::new(&sdk)
                    .get_caller_identity()
                    .send()
                    .await
                    .context("asking STS who we are")?;
                format!("{}-assets-{}", stage.stack_name, identity.account().unwrap_or("account"))
            }
        };
        let s3 = aws_sdk_s3::Client::new(&sdk);
        // The bucket lives where the stack does (Lambda reads code only from its own
        // region): the region the SDK talks to, which `--region` may have changed.
        let keys = upload_assets(&s3, &bucket, &region, artifacts).await?;
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
            _ => (deployed_template(&cloudformation, stack).await?, parameters_of(current)),
        };
        let synthesized = template.to_value();
        if deployed.as_ref() == Some(&synthesized) && deployed_parameters == parameters {
            println!("No changes: {stack} already runs this template and this code.");
            return Ok(());
        }
        let report = report(stack, deployed.as_ref(), &synthesized);
        print!("{}", report.body());
        if !report.findings.deployed.is_empty() {
            println!("(the deployed template's findings above are what this release fixes)");
        }
        let risky = report.diff.security().next().is_some() || report.diff.data_loss().next().is_some();
        if risky && !self.yes {
            approve()?;
        }
        let change_set = create_change_set(&cloudformation, stack, &template.to_json(), &parameters, kind).await?;
        let Some((change_set, stack_id)) = change_set else {
            println!("No changes: CloudFormation found nothing to change.");
            return Ok(());
        };
        let started = aws_sdk_cloudformation::primitives::DateTime::from(std::time::SystemTime::now());
        step(format!("executing change set {change_set}"));
        cloudformation.execute_change_set().stack_name(&stack_id).change_set_name(&change_set).send().await?;
        // From here on the stack is named by its id: the one this change set belongs to.
        let status = follow(&cloudformation, &stack_id, started).await?;
        let description = describe(&cloudformation, &stack_id).await?;
        if !matches!(status, StackStatus::CreateComplete | StackStatus::UpdateComplete) {
            bail!(
                "{stack} is {}: {}. The failing events are listed above; fix the cause and deploy again \
                 (a stack in UPDATE_ROLLBACK_FAILED needs `aws cloudformation continue-update-rollback` first)",
                status.as_str(),
                description.and_then(|stack| stack.stack_status_reason).unwrap_or_default()
            );
        }
        println!("{stack} is {}.", status.as_str());
        for output in description.map(|stack| stack.outputs.unwrap_or_default()).unwrap_or_default() {
            println!("  {} = {}", output.output_key.unwrap_or_default(), output.output_value.unwrap_or_default());
        }
        Ok(())
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

/// Refuses a bucket S3 places in another region than the release's.
fn same_region(bucket: &str, found: Option<&str>, region: &str) -> Result<()> {
    match found {
        Some(elsewhere) if elsewhere != region => bail!(
            "the assets bucket {bucket} is in {elsewhere}, but this release goes to {region} and Lambda reads \
             code only from a bucket in its own region: pass --assets-bucket with a bucket in {region}"
        ),
        _ => Ok(()),
    }
}

/// Uploads each zip under its content hash unless it is there already; returns the keys.
async fn upload_assets(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    region: &str,
    artifacts: &[Artifact],
) -> Result<BTreeMap<String, String>> {
    let exists = match s3.head_bucket().bucket(bucket).send().await {
        Ok(found) => {
            same_region(bucket, found.bucket_region(), region)?;
            true
        }
        Err(error) => {
            // S3 names the region of a bucket that exists elsewhere (301) in this header.
            let elsewhere = error.raw_response().and_then(|raw| raw.headers().get("x-amz-bucket-region"));
            same_region(bucket, elsewhere, region)?;
            false
        }
    };
    if !exists {
        step(format!("creating the assets bucket {bucket} in {region}"));
        let mut create = s3.create_bucket().bucket(bucket);
        if region != "us-east-1" {
            create = create.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        create
            .send()
            .await
            .map_err(|error| anyhow::anyhow!("{}", aws_sdk_s3::error::DisplayErrorContext(error)))
            .with_context(|| format!("creating the assets bucket {bucket}; pass --assets-bucket to use another"))?;
    }
    let mut keys = BTreeMap::new();
    for artifact in artifacts {
        let key = format!("assets/{}/{}.zip", artifact.function, artifact.sha256_hex);
        if s3.head_object().bucket(bucket).key(&key).send().await.is_ok() {
            println!("  {} unchanged ({key})", artifact.function);
        } else {
            let body = aws_sdk_s3::primitives::ByteStream::from_path(&artifact.zip)
                .await
                .with_context(|| format!("reading {}", artifact.zip.display()))?;
            s3.put_object()
                .bucket(bucket)
                .key(&key)
                .body(body)
                .send()
                .await
                .map_err(|error| anyhow::anyhow!("{}", aws_sdk_s3::error::DisplayErrorContext(error)))
                .with_context(|| format!("uploading {}", artifact.zip.display()))?;
            println!("  {} uploaded ({key}, {:.2} MB)", artifact.function, artifact.size as f64 / 1e6);
        }
        keys.insert(artifact.function.clone(), key);
    }
    Ok(keys)
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

/// Asks on the terminal; refuses without one.
fn approve() -> Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "this release has security-relevant changes or replaces stateful resources (listed above); \
               not on a terminal to ask, so refusing: review them and rerun with --yes"
        );
    }
    eprint!("Deploy these changes? [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        bail!("not deployed");
    }
    Ok(())
}

/// Creates a change set and waits for it; returns its name and its stack's id, or `None` when
/// it holds no changes.
async fn create_change_set(
    client: &aws_sdk_cloudformation::Client,
    stack: &str,
    body: &str,
    parameters: &BTreeMap<String, String>,
    kind: ChangeSetType,
) -> Result<Option<(String, String)>> {
    let name = format!("xtask-{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs());
    step(format!("creating change set {name}"));
    let mut request = client
        .create_change_set()
        .stack_name(stack)
        .change_set_name(&name)
        .template_body(body)
        .capabilities(Capability::CapabilityIam)
        .change_set_type(kind);
    for (key, value) in parameters {
        request = request.parameters(Parameter::builder().parameter_key(key).parameter_value(value).build());
    }
    let created = request
        .send()
        .await
        .map_err(|error| anyhow::anyhow!("{}", aws_sdk_cloudformation::error::DisplayErrorContext(error)))?;
    let stack_id = created.stack_id.unwrap_or_else(|| stack.to_owned());
    for _ in 0..300 {
        let described = client.describe_change_set().stack_name(&stack_id).change_set_name(&name).send().await?;
        match described.status {
            Some(ChangeSetStatus::CreateComplete) => return Ok(Some((name, stack_id))),
            Some(ChangeSetStatus::Failed) => {
                let reason = described.status_reason.unwrap_or_default();
                if reason.contains("didn't contain changes") || reason.contains("No updates") {
                    client.delete_change_set().stack_name(&stack_id).change_set_name(&name).send().await.ok();
                    return Ok(None);
                }
                bail!("the change set failed: {reason}");
            }
            _ => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
    bail!("the change set {name} was not ready after 5 minutes")
}

/// Prints the stack's new events until it settles; returns its final status.
async fn follow(
    client: &aws_sdk_cloudformation::Client,
    stack: &str,
    since: aws_sdk_cloudformation::primitives::DateTime,
) -> Result<StackStatus> {
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let events = client.describe_stack_events().stack_name(stack).send().await?.stack_events.unwrap_or_default();
        for event in events.iter().rev() {
            let id = event.event_id.clone().unwrap_or_default();
            if event.timestamp.is_some_and(|at| at.secs() + 1 < since.secs()) || !seen.insert(id) {
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
        let status =
            describe(client, stack).await?.and_then(|stack| stack.stack_status).context("the stack vanished")?;
        if !status.as_str().ends_with("_IN_PROGRESS") {
            return Ok(status);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLI: &str = " --region eu-west-1 --profile ops";

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

    #[test]
    fn a_bucket_in_another_region_is_refused() {
        assert!(same_region("b", Some("eu-west-1"), "eu-west-1").is_ok());
        assert!(same_region("b", None, "eu-west-1").is_ok());
        let error = same_region("b", Some("eu-west-1"), "us-west-2").expect_err("refused").to_string();
        assert!(error.contains("is in eu-west-1") && error.contains("--assets-bucket"), "{error}");
    }
}

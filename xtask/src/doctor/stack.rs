//! Check group `stack`: the stage's CloudFormation stack exists, is in a `*_COMPLETE` status
//! (not rolled back, not in progress), and has every output the synthesized template declares.
//! Reading it also gives the physical ids of its resources (`ListStackResources`), which
//! the other groups use to find the live resources.

use super::Check;
use super::live;
use anyhow::{Context, Result};
use serde_json::Value;
use stacks::StageConfig;
use std::collections::BTreeMap;

const GROUP: &str = "stack";

/// The output naming the WebSocket URL clients connect to (the probes' default).
pub(super) const WEBSOCKET_URL: &str = "WebSocketUrl";

/// The output naming the HTTP API's base URL (the `/health` probe's default).
pub(super) const HTTP_URL: &str = "HttpUrl";

/// What the live stack says about itself.
#[derive(Debug, Clone, Default)]
pub(crate) struct LiveStack {
    pub(crate) status: String,
    pub(crate) status_reason: Option<String>,
    pub(crate) outputs: BTreeMap<String, String>,
    /// Logical id → physical id, for the resources CloudFormation lists.
    pub(crate) resources: BTreeMap<String, String>,
}

/// Reads `stack`, or `None` when it does not exist.
pub(super) async fn read(client: &aws_sdk_cloudformation::Client, stack: &str) -> Result<Option<LiveStack>> {
    let described = match client.describe_stacks().stack_name(stack).send().await {
        Ok(output) => output,
        Err(error) if says_it_does_not_exist(error.as_service_error().and_then(|e| e.meta().message())) => {
            return Ok(None);
        }
        Err(error) => {
            return Err(anyhow::anyhow!("{}", aws_sdk_cloudformation::error::DisplayErrorContext(error)))
                .with_context(|| format!("describing the stack {stack}"));
        }
    };
    let Some(found) = described.stacks.unwrap_or_default().into_iter().next() else {
        return Ok(None);
    };
    let outputs = found
        .outputs
        .unwrap_or_default()
        .into_iter()
        .filter_map(|output| Some((output.output_key?, output.output_value?)))
        .collect();
    let resources = crate::aws::stack_resources(client, stack)
        .await
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("listing the resources of {stack} (cloudformation:ListStackResources)"))?;
    Ok(Some(LiveStack {
        status: found.stack_status.map(|status| status.as_str().to_owned()).unwrap_or_default(),
        status_reason: found.stack_status_reason,
        outputs,
        resources,
    }))
}

/// Whether CloudFormation's error `message` says the stack does not exist (`DescribeStacks`
/// answers a missing stack with a `ValidationError` saying so).
fn says_it_does_not_exist(message: Option<&str>) -> bool {
    message.is_some_and(|message| message.contains("does not exist"))
}

/// The `stack` checks of `live` against the stage and its synthesized template.
pub(super) fn judge(stage: &StageConfig, synthesized: &Value, live: Option<&LiveStack>) -> Vec<Check> {
    let deploy = live::deploy_command(stage);
    let Some(live) = live else {
        return vec![Check::fail(
            GROUP,
            "stack.exists",
            format!("the stack {} does not exist: there is no service for clients to reach", stage.stack_name),
            format!("{deploy} (or pass the --region/--profile/--endpoint-url where it lives)"),
        )];
    };
    let mut checks = vec![Check::pass(GROUP, "stack.exists", format!("{} exists", stage.stack_name))];
    checks.push(status_check(&stage.stack_name, &live.status, live.status_reason.as_deref(), &deploy));
    let declared: Vec<&String> = synthesized
        .get("Outputs")
        .and_then(Value::as_object)
        .map(|outputs| outputs.keys().collect())
        .unwrap_or_default();
    let absent: Vec<&str> =
        declared.iter().filter(|name| !live.outputs.contains_key(name.as_str())).map(|name| name.as_str()).collect();
    if absent.is_empty() {
        let listed: Vec<String> =
            declared.iter().map(|name| format!("{name}={}", live.outputs[name.as_str()])).collect();
        checks.push(Check::pass(GROUP, "stack.outputs", listed.join(", ")));
    } else {
        checks.push(Check::fail(
            GROUP,
            "stack.outputs",
            format!(
                "outputs missing: {}; clients and this tool cannot learn where the service is \
                 (the stack was deployed from another template)",
                absent.join(", ")
            ),
            deploy,
        ));
    }
    checks
}

/// A `*_COMPLETE` status passes, unless it is a rollback's; anything in progress or failed fails.
fn status_check(stack: &str, status: &str, reason: Option<&str>, deploy: &str) -> Check {
    let because = reason.map(|reason| format!(" ({reason})")).unwrap_or_default();
    if status.ends_with("_COMPLETE") && !status.contains("ROLLBACK") {
        Check::pass(GROUP, "stack.status", status)
    } else if status.ends_with("IN_PROGRESS") {
        Check::fail(
            GROUP,
            "stack.status",
            format!("{status}{because}: a deployment is under way; what clients reach may change under this checklist"),
            format!(
                "wait for it to finish (aws cloudformation wait stack-{}-complete --stack-name {stack}), then run \
                 doctor again",
                if status.starts_with("CREATE") { "create" } else { "update" }
            ),
        )
    } else {
        Check::fail(
            GROUP,
            "stack.status",
            format!("{status}{because}: the last deployment did not apply; the stage runs an older or partial release"),
            format!("read the stack's events for the first failure, fix it, then {deploy}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    fn live(status: &str, outputs: &[&str]) -> LiveStack {
        LiveStack {
            status: status.to_owned(),
            outputs: outputs.iter().map(|name| ((*name).to_owned(), format!("https://{name}"))).collect(),
            ..LiveStack::default()
        }
    }

    fn synthesized() -> Value {
        stacks::synthesize(&contract::CONTRACT, &stacks::stages::dev()).expect("dev synthesizes").to_value()
    }

    #[test]
    fn a_complete_stack_with_its_outputs_passes() {
        let checks = judge(
            &stacks::stages::dev(),
            &synthesized(),
            Some(&live("UPDATE_COMPLETE", &["WebSocketUrl", "ManagementEndpoint", "HttpUrl"])),
        );
        assert!(checks.iter().all(|check| check.status == Status::Pass), "{checks:?}");
    }

    #[test]
    fn rollbacks_progress_missing_outputs_and_a_missing_stack_fail() {
        for status in ["UPDATE_ROLLBACK_COMPLETE", "ROLLBACK_COMPLETE", "UPDATE_IN_PROGRESS", "CREATE_FAILED"] {
            let check = status_check("s", status, None, "deploy");
            assert_eq!(check.status, Status::Fail, "{status}");
        }
        let waiting = status_check("session-service-dev", "CREATE_IN_PROGRESS", None, "deploy");
        assert!(waiting.fix.contains("wait stack-create-complete --stack-name session-service-dev"), "{waiting:?}");
        let checks = judge(&stacks::stages::dev(), &synthesized(), Some(&live("CREATE_COMPLETE", &["HttpUrl"])));
        let outputs = checks.iter().find(|check| check.id == "stack.outputs").expect("outputs checked");
        assert_eq!(outputs.status, Status::Fail);
        assert!(outputs.message.contains("WebSocketUrl"), "{}", outputs.message);
        let checks = judge(&stacks::stages::dev(), &synthesized(), None);
        assert_eq!(checks[0].status, Status::Fail);
        assert!(checks[0].fix.contains("cargo xtask deploy --stage dev"));
    }
}

//! Check group `functions`: each contract function's **live** configuration, read through the
//! Lambda API (`GetFunctionConfiguration`, `GetPolicy`) and judged by the contract and the
//! stage's synthesized template. Per function `<name>`:
//!
//! - `functions.<name>.state`: the stack lists it, Lambda has it, its `State` is `Active` and
//!   its `LastUpdateStatus` `Successful`;
//! - `functions.<name>.runtime` and `.architecture`: as the synthesized template declares them
//!   (a bootstrap built for arm64 cannot execute on x86_64);
//! - `functions.<name>.code`: the deployed `CodeSha256` against the local build manifest, when
//!   there is one; a difference is a warning (the deployed code is not your last build);
//! - `functions.<name>.environment`: every variable the contract declares is set, and its value
//!   is checked where the contract knows it: a table name is the stack's table, `AUDIO_STREAM`
//!   the stack's stream, `MANAGEMENT_ENDPOINT` the `https://` endpoint of this API and stage,
//!   a stage setting the template's literal;
//! - `functions.<name>.invoke-permission`: its resource policy lets API Gateway invoke it from
//!   this stack's APIs, for every WebSocket route it serves, as the `$connect` authorizer, and
//!   for every HTTP route it serves (the source ARNs API Gateway invokes with).
//!
//! Physical names come from `DescribeStackResources`; the APIs, which the local AWS endpoint
//! does not list there, are found by the names the template gives them. The authorizer
//! function is judged only on a stage with the `$connect` authorizer.

use super::{Check, Context, websocket};
use crate::build::{Artifact, read_manifest};
use contract::{EnvSource, EnvVar, Function, env};
use serde::Deserialize;
use serde_json::{Value, json};
use stacks::template::{self, glob, glob_ignore_case};
use stacks::{StageConfig, naming};
use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::Path;

pub(super) const GROUP: &str = "functions";

/// The contract's functions the stage deploys: every one, but the authorizer's on a stage
/// without the `$connect` authorizer.
pub(super) fn deployed(stage: &StageConfig) -> Vec<&'static Function> {
    let authorizer = contract::CONTRACT.authorizer.map(|authorizer| authorizer.function);
    let with_authorizer = stage.connect_authorizer;
    contract::CONTRACT
        .functions
        .iter()
        .filter(|function| with_authorizer || Some(function.name) != authorizer)
        .collect()
}

/// A live function's configuration, in the shape of Lambda's `GetFunctionConfiguration`
/// response (so unit tests can state it as AWS documents it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct LiveFunction {
    pub(super) function_name: String,
    pub(super) function_arn: String,
    pub(super) runtime: String,
    pub(super) role: String,
    pub(super) code_sha256: String,
    pub(super) state: String,
    pub(super) state_reason: String,
    pub(super) state_reason_code: String,
    pub(super) last_update_status: String,
    pub(super) last_update_status_reason: String,
    pub(super) last_update_status_reason_code: String,
    pub(super) architectures: Vec<String>,
    pub(super) environment: LiveEnvironment,
}

/// The `Environment` of a live function.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct LiveEnvironment {
    pub(super) variables: BTreeMap<String, String>,
    /// Set when Lambda could not apply the variables (for example a KMS key it cannot use).
    pub(super) error: Option<LiveEnvironmentError>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct LiveEnvironmentError {
    pub(super) error_code: String,
    pub(super) message: String,
}

impl From<aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput> for LiveFunction {
    fn from(output: aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput) -> Self {
        let text = |value: Option<&str>| value.unwrap_or_default().to_owned();
        let environment = output.environment.map(|environment| LiveEnvironment {
            variables: environment.variables.unwrap_or_default().into_iter().collect(),
            error: environment.error.map(|error| LiveEnvironmentError {
                error_code: error.error_code.unwrap_or_default(),
                message: error.message.unwrap_or_default(),
            }),
        });
        LiveFunction {
            function_name: text(output.function_name.as_deref()),
            function_arn: text(output.function_arn.as_deref()),
            runtime: text(output.runtime.as_ref().map(|runtime| runtime.as_str())),
            role: text(output.role.as_deref()),
            code_sha256: text(output.code_sha256.as_deref()),
            state: text(output.state.as_ref().map(|state| state.as_str())),
            state_reason: text(output.state_reason.as_deref()),
            state_reason_code: text(output.state_reason_code.as_ref().map(|code| code.as_str())),
            last_update_status: text(output.last_update_status.as_ref().map(|status| status.as_str())),
            last_update_status_reason: text(output.last_update_status_reason.as_deref()),
            last_update_status_reason_code: text(
                output.last_update_status_reason_code.as_ref().map(|code| code.as_str()),
            ),
            architectures: output
                .architectures
                .unwrap_or_default()
                .iter()
                .map(|architecture| architecture.as_str().to_owned())
                .collect(),
            environment: environment.unwrap_or_default(),
        }
    }
}

impl LiveFunction {
    /// The architectures it runs on (Lambda's default, `x86_64`, when none is reported).
    fn architectures(&self) -> Vec<String> {
        if self.architectures.is_empty() { vec!["x86_64".to_owned()] } else { self.architectures.clone() }
    }
}

/// The partition, region and account of an ARN (`arn:aws:lambda:eu-west-1:123456789012:...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ArnParts {
    pub(super) partition: String,
    pub(super) region: String,
    pub(super) account: String,
}

impl ArnParts {
    pub(super) fn of(arn: &str) -> Option<ArnParts> {
        let mut parts = arn.split(':');
        let (Some("arn"), Some(partition), Some(_service), Some(region), Some(account)) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        if partition.is_empty() || region.is_empty() || account.is_empty() {
            return None;
        }
        Some(ArnParts { partition: partition.to_owned(), region: region.to_owned(), account: account.to_owned() })
    }

    /// `arn:{partition}:execute-api:{region}:{account}:{rest}`.
    fn execute_api(&self, rest: &str) -> String {
        format!("arn:{}:execute-api:{}:{}:{rest}", self.partition, self.region, self.account)
    }
}

/// The domain API Gateway endpoints of `region` live under.
pub(super) fn url_suffix(region: &str) -> &'static str {
    if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" }
}

/// A read that failed: the API call, the IAM permission the doctor's caller needs for it, and
/// the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unreadable {
    pub(super) call: String,
    pub(super) permission: String,
    pub(super) error: String,
}

impl Unreadable {
    pub(super) fn new(call: &str, permission: &str, error: impl Display) -> Unreadable {
        Unreadable { call: call.to_owned(), permission: permission.to_owned(), error: error.to_string() }
    }

    /// The failed check that reports it.
    pub(super) fn check(&self, group: &'static str, id: impl Into<String>, what: &str) -> Check {
        Check::fail(
            group,
            id,
            format!("cannot read {what}: {} failed ({}), so this check could not judge it", self.call, self.error),
            format!("run doctor with credentials allowed {} (a throttled call: run it again)", self.permission),
        )
    }
}

/// Reads a function's configuration; `None` when Lambda has no such function.
pub(super) async fn read_function(
    client: &aws_sdk_lambda::Client,
    name: &str,
) -> Result<Option<LiveFunction>, Unreadable> {
    match client.get_function_configuration().function_name(name).send().await {
        Ok(output) => Ok(Some(LiveFunction::from(output))),
        Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(None),
        Err(error) => Err(Unreadable::new(
            &format!("GetFunctionConfiguration({name})"),
            "lambda:GetFunctionConfiguration",
            aws_sdk_lambda::error::DisplayErrorContext(error),
        )),
    }
}

/// Reads a function's resource policy; `None` when it has none.
async fn read_policy(client: &aws_sdk_lambda::Client, name: &str) -> Result<Option<Value>, Unreadable> {
    let call = format!("GetPolicy({name})");
    match client.get_policy().function_name(name).send().await {
        Ok(output) => match output.policy {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text).map(Some).map_err(|error| {
                Unreadable::new(&call, "lambda:GetPolicy", format!("the policy is not JSON: {error}"))
            }),
        },
        Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(None),
        Err(error) => {
            Err(Unreadable::new(&call, "lambda:GetPolicy", aws_sdk_lambda::error::DisplayErrorContext(error)))
        }
    }
}

/// What the live functions are compared with, read once for every function.
#[derive(Debug)]
pub(super) struct Expected<'a> {
    pub(super) stage: &'a StageConfig,
    pub(super) synthesized: &'a Value,
    /// Logical id → physical id, as the stack lists them.
    pub(super) physical: BTreeMap<String, String>,
    /// The region the doctor talks to (used where a function's ARN does not say).
    pub(super) region: String,
    /// The live WebSocket API's id.
    pub(super) websocket_api: Result<Option<String>, Unreadable>,
    /// The id of the authorizer the live `$connect` route names.
    pub(super) connect_authorizer: Option<String>,
    /// The live HTTP API's id.
    pub(super) http_api: Result<Option<String>, Unreadable>,
    /// The last build's zips, or why there is nothing to compare the deployed code with.
    pub(super) manifest: Result<Vec<Artifact>, String>,
}

impl<'a> Expected<'a> {
    async fn read(context: &'a Context) -> Expected<'a> {
        let physical = context.stack.as_ref().map(|stack| stack.resources.clone()).unwrap_or_default();
        let apigateway = aws_sdk_apigatewayv2::Client::new(&context.sdk);
        let live = websocket::read(&apigateway, &context.synthesized, &physical, &context.stage.name).await;
        let (websocket_api, connect_authorizer) = match live {
            Ok(Some(api)) => (Ok(Some(api.id)), api.connect_authorizer.map(|authorizer| authorizer.id)),
            Ok(None) => (Ok(None), None),
            Err(error) => (
                Err(Unreadable::new(
                    "the API Gateway v2 API (GetApis, GetRoutes)",
                    "apigateway:GET",
                    format!("{error:#}"),
                )),
                None,
            ),
        };
        let connect_authorizer = context.physical(naming::CONNECT_AUTHORIZER).map(str::to_owned).or(connect_authorizer);
        let http_api = match context.physical(naming::HTTP_API) {
            Some(id) => Ok(Some(id.to_owned())),
            None => {
                let name = api_name(&context.synthesized, naming::HTTP_API).unwrap_or_default();
                websocket::find_by_name(&apigateway, name)
                    .await
                    .map_err(|error| Unreadable::new("GetApis", "apigateway:GET", format!("{error:#}")))
            }
        };
        Expected {
            stage: &context.stage,
            synthesized: &context.synthesized,
            physical,
            region: context.region(),
            websocket_api,
            connect_authorizer,
            http_api,
            manifest: manifest(&context.artifacts),
        }
    }

    /// The synthesized `Properties` of `logical`.
    fn properties(&self, logical: &str) -> &'a Value {
        let synthesized: &'a Value = self.synthesized;
        &synthesized["Resources"][logical]["Properties"]
    }

    fn deploy(&self) -> String {
        format!("cargo xtask deploy --stage {}", self.stage.name)
    }

    /// The fix of a difference between the live function and the template: a deploy when the
    /// deployed template is behind, else the live repair (CloudFormation does not see live edits).
    fn deploy_or_live(&self, live_fix: &str) -> String {
        format!(
            "{} if `cargo xtask diff --stage {}` shows the change; if it shows none, it was changed live, which \
             CloudFormation does not see: {live_fix}",
            self.deploy(),
            self.stage.name
        )
    }
}

/// The name the synthesized template gives the API `logical`.
fn api_name<'a>(synthesized: &'a Value, logical: &str) -> Option<&'a str> {
    synthesized["Resources"][logical]["Properties"]["Name"].as_str()
}

/// The build manifest in `dir`, or why there is none to compare with.
fn manifest(dir: &Path) -> Result<Vec<Artifact>, String> {
    if !dir.join("manifest.json").exists() {
        return Err(format!(
            "no build manifest in {} (`cargo xtask build` writes one; --artifacts DIR names another)",
            dir.display()
        ));
    }
    read_manifest(dir).map_err(|error| format!("{error:#}"))
}

/// The `functions` checks of the live stage.
pub(super) async fn checks(context: &Context) -> Vec<Check> {
    let lambda = aws_sdk_lambda::Client::new(&context.sdk);
    let expected = Expected::read(context).await;
    let mut checks = Vec::new();
    for function in deployed(&context.stage) {
        let logical = naming::function(function.name);
        let Some(physical) = expected.physical.get(&logical).cloned() else {
            checks.push(absent_check(&expected, function, Absent::NotInStack));
            continue;
        };
        let live = match read_function(&lambda, &physical).await {
            Ok(Some(live)) => live,
            Ok(None) => {
                checks.push(absent_check(&expected, function, Absent::Deleted(&physical)));
                continue;
            }
            Err(unreadable) => {
                checks.push(unreadable.check(GROUP, format!("functions.{}.state", function.name), &physical));
                continue;
            }
        };
        let policy = read_policy(&lambda, &physical).await;
        checks.extend(judge_function(&expected, function, &live, &policy));
    }
    checks
}

/// How a function is not there.
#[derive(Debug, Clone, Copy)]
enum Absent<'a> {
    /// The stack does not list it.
    NotInStack,
    /// The stack lists it under this name, and Lambda has no such function.
    Deleted(&'a str),
}

/// The single failed check of a function that is not there.
fn absent_check(expected: &Expected<'_>, function: &Function, absent: Absent<'_>) -> Check {
    let id = format!("functions.{}.state", function.name);
    let outage = stacks::verify::outage(&contract::CONTRACT, function);
    let logical = naming::function(function.name);
    match absent {
        Absent::NotInStack => Check::fail(
            GROUP,
            id,
            format!("the stack has no {logical}: `{}` is not deployed, so {outage}", function.name),
            expected.deploy(),
        ),
        Absent::Deleted(physical) => Check::fail(
            GROUP,
            id,
            format!(
                "the stack lists {logical} as {physical}, but Lambda has no such function (deleted outside \
                 CloudFormation), so {outage}"
            ),
            format!(
                "CloudFormation does not recreate a resource deleted behind its back (`aws cloudformation \
                 detect-stack-drift --stack-name {stack}` shows it DELETED), and a deploy with no change to it does \
                 nothing: recreate it under the same name, as the template declares it (aws lambda create-function \
                 --function-name {physical} --role ARN_OF_{role} --runtime {runtime} --handler bootstrap --architectures \
                 {architectures} --zip-file fileb://target/lambda/{name}.zip, with the template's environment), so \
                 the stack finds it again",
                stack = expected.stage.stack_name,
                role = naming::role(function.name),
                runtime = expected.properties(&logical)["Runtime"].as_str().unwrap_or("provided.al2023"),
                architectures = template::strings(&expected.properties(&logical)["Architectures"]).join(" "),
                name = function.name,
            ),
        ),
    }
}

/// Every check of one live function.
fn judge_function(
    expected: &Expected<'_>,
    function: &Function,
    live: &LiveFunction,
    policy: &Result<Option<Value>, Unreadable>,
) -> Vec<Check> {
    vec![
        state_check(expected, function, live),
        runtime_check(expected, function, live),
        architecture_check(expected, function, live),
        code_check(expected, function, live),
        environment_check(expected, function, live),
        invoke_check(expected, function, live, policy),
    ]
}

/// The region of the function's ARN, else the one the doctor talks to.
fn region_of(expected: &Expected<'_>, live: &LiveFunction) -> String {
    ArnParts::of(&live.function_arn).map_or_else(|| expected.region.clone(), |parts| parts.region)
}

/// `State` `Active` and `LastUpdateStatus` `Successful`.
fn state_check(expected: &Expected<'_>, function: &Function, live: &LiveFunction) -> Check {
    let id = format!("functions.{}.state", function.name);
    let outage = stacks::verify::outage(&contract::CONTRACT, function);
    let name = &live.function_name;
    let region = region_of(expected, live);
    let because = |code: &str, reason: &str| match (code.is_empty(), reason.is_empty()) {
        (true, true) => String::new(),
        (false, true) => format!(" ({code})"),
        (true, false) => format!(" ({reason})"),
        (false, false) => format!(" ({code}: {reason})"),
    };
    match live.state.as_str() {
        "Active" | "" => {}
        "Pending" => {
            return Check::fail(
                GROUP,
                id,
                format!(
                    "{name} is Pending (being created or its network set up): until it is Active, invocations fail, so {outage}"
                ),
                format!(
                    "wait for it: aws lambda wait function-active-v2 --function-name {name} --region {region}, then run doctor again"
                ),
            );
        }
        "Failed" => {
            return Check::fail(
                GROUP,
                id,
                format!(
                    "{name} is Failed{}: Lambda could not set it up and every invocation fails, so {outage}",
                    because(&live.state_reason_code, &live.state_reason)
                ),
                format!("remove the cause named above (role, subnets, KMS key, code), then {}", expected.deploy()),
            );
        }
        "Inactive" => {
            return Check::fail(
                GROUP,
                id,
                format!(
                    "{name} is Inactive{} (Lambda reclaimed it after weeks without invocations): the next \
                     invocations fail while it becomes Active again, so meanwhile {outage}",
                    because(&live.state_reason_code, &live.state_reason)
                ),
                format!(
                    "invoke it once (or {}), then aws lambda wait function-active-v2 --function-name {name} --region {region}",
                    expected.deploy()
                ),
            );
        }
        other => {
            return Check::fail(
                GROUP,
                id,
                format!("{name} is in the unknown state {other}: it may not serve invocations, so {outage}"),
                format!("aws lambda get-function-configuration --function-name {name} --region {region}"),
            );
        }
    }
    match live.last_update_status.as_str() {
        "Successful" | "" => Check::pass(GROUP, id, format!("{name}: Active, last update Successful")),
        "InProgress" => Check::fail(
            GROUP,
            id,
            format!(
                "{name}: an update is InProgress: invocations run the previous code and configuration until it \
                 completes, and another deployment fails (ResourceConflictException) meanwhile"
            ),
            format!(
                "wait for it: aws lambda wait function-updated-v2 --function-name {name} --region {region}, then run doctor again"
            ),
        ),
        "Failed" => Check::fail(
            GROUP,
            id,
            format!(
                "{name}: the last update Failed{}: it still runs its previous code and configuration, not the \
                 release you deployed",
                because(&live.last_update_status_reason_code, &live.last_update_status_reason)
            ),
            format!("remove the cause named above, then {}", expected.deploy()),
        ),
        other => Check::fail(
            GROUP,
            id,
            format!("{name}: the last update is in the unknown status {other}: which code it runs is unknown"),
            format!("aws lambda get-function-configuration --function-name {name} --region {region}"),
        ),
    }
}

/// The runtime, as the template declares it.
fn runtime_check(expected: &Expected<'_>, function: &Function, live: &LiveFunction) -> Check {
    let id = format!("functions.{}.runtime", function.name);
    let properties = expected.properties(&naming::function(function.name));
    let Some(declared) = properties["Runtime"].as_str() else {
        return Check::skip(GROUP, id, format!("{}: the template declares no runtime to compare with", live.runtime));
    };
    if live.runtime == declared {
        return Check::pass(GROUP, id, declared.to_owned());
    }
    let outage = stacks::verify::outage(&contract::CONTRACT, function);
    let name = &live.function_name;
    Check::fail(
        GROUP,
        id,
        format!(
            "{name} runs on {}, the template declares {declared}: the bootstrap is built for {declared} and may not \
             start on another runtime (its C library differs), so {outage}",
            if live.runtime.is_empty() { "no runtime (a container image?)" } else { &live.runtime }
        ),
        expected.deploy_or_live(&format!(
            "aws lambda update-function-configuration --function-name {name} --runtime {declared} --region {}",
            region_of(expected, live)
        )),
    )
}

/// The architecture, as the template declares it (and `cargo xtask build` builds for).
fn architecture_check(expected: &Expected<'_>, function: &Function, live: &LiveFunction) -> Check {
    let id = format!("functions.{}.architecture", function.name);
    let properties = expected.properties(&naming::function(function.name));
    let mut declared = template::strings(&properties["Architectures"]);
    if declared.is_empty() {
        declared.push("x86_64".to_owned());
    }
    let running = live.architectures();
    if running == declared {
        return Check::pass(GROUP, id, declared.join(", "));
    }
    let outage = stacks::verify::outage(&contract::CONTRACT, function);
    let name = &live.function_name;
    let zip = match &expected.manifest {
        Ok(artifacts) => {
            artifacts.iter().find(|artifact| artifact.function == function.name).map(|a| a.zip.display().to_string())
        }
        Err(_) => None,
    }
    .unwrap_or_else(|| format!("target/lambda/{}.zip", function.name));
    Check::fail(
        GROUP,
        id,
        format!(
            "{name} runs on {}, the template declares {} (the architecture `cargo xtask build` builds the bootstrap \
             for): the bootstrap cannot execute (Runtime.InvalidEntrypoint, exec format error), so {outage}",
            running.join(", "),
            declared.join(", ")
        ),
        expected.deploy_or_live(&format!(
            "aws lambda update-function-code --function-name {name} --architectures {} --zip-file fileb://{zip} --region {}",
            declared.join(" "),
            region_of(expected, live)
        )),
    )
}

/// The deployed code against the last local build.
fn code_check(expected: &Expected<'_>, function: &Function, live: &LiveFunction) -> Check {
    let id = format!("functions.{}.code", function.name);
    let artifacts = match &expected.manifest {
        Ok(artifacts) => artifacts,
        Err(why) => return Check::skip(GROUP, id, format!("CodeSha256 {}; not compared: {why}", live.code_sha256)),
    };
    let Some(built) = artifacts.iter().find(|artifact| artifact.function == function.name) else {
        return Check::skip(
            GROUP,
            id,
            format!("CodeSha256 {}; not compared: the build manifest has no `{}`", live.code_sha256, function.name),
        );
    };
    if built.code_sha256 == live.code_sha256 {
        Check::pass(GROUP, id, format!("CodeSha256 {}: your last build", live.code_sha256))
    } else {
        Check::warn(
            GROUP,
            id,
            format!(
                "the deployed code is not your last build: CodeSha256 {} deployed, {} built ({})",
                live.code_sha256,
                built.code_sha256,
                built.zip.display()
            ),
            format!("deploy your build if it is the release you mean: {} --no-build", expected.deploy()),
        )
    }
}

/// One thing wrong with a function's environment.
#[derive(Debug)]
struct EnvProblem {
    /// What is wrong and what clients see.
    message: String,
    /// Whether clients are hurt (a failure), rather than a setting drifting (a warning).
    breaks_clients: bool,
    /// The right value, when it is known.
    right: Option<String>,
}

/// Settings that decide who may speak: a wrong value refuses speakers or accepts strangers.
const AUTH_SETTINGS: [&str; 5] =
    [env::CONNECT_AUTH, env::JWT_ISSUER, env::JWT_AUDIENCE, env::JWKS_SOURCE, env::JWT_TOKEN_USE];

/// `https://{api}.execute-api.{region}.{suffix}/{stage}` of the live WebSocket API.
fn management_endpoint(expected: &Expected<'_>, region: &str) -> Option<String> {
    let api = expected.websocket_api.as_ref().ok()?.as_ref()?;
    Some(format!("https://{api}.execute-api.{region}.{}/{}", url_suffix(region), expected.stage.name))
}

/// Whether `url` is `https://{api id}.execute-api.{region}.{suffix}/{stage}` for some API id.
fn is_management_endpoint(url: &str, region: &str, stage: &str) -> bool {
    let Some((host, path)) = url.strip_prefix("https://").and_then(|rest| rest.split_once('/')) else {
        return false;
    };
    let Some(api) = host.strip_suffix(&format!(".execute-api.{region}.{}", url_suffix(region))) else {
        return false;
    };
    !api.is_empty() && api.chars().all(|c| c.is_ascii_alphanumeric()) && path.trim_end_matches('/') == stage
}

/// What is wrong with the value of `var`, if anything.
fn env_problem(
    expected: &Expected<'_>,
    function: &Function,
    var: &EnvVar,
    value: &str,
    region: &str,
) -> Option<EnvProblem> {
    let name = var.name;
    match var.source {
        EnvSource::TableName(table) => {
            let schema = contract::CONTRACT.tables.iter().find(|schema| schema.id == table)?;
            let physical = expected.physical.get(schema.logical_id)?;
            (value != physical).then(|| EnvProblem {
                message: format!(
                    "{name} is {value}, not this stack's {} ({physical}): `{}` reads and writes another table, so its \
                     requests fail (ResourceNotFoundException, AccessDenied) or see another stage's data",
                    schema.logical_id, function.name
                ),
                breaks_clients: true,
                right: Some(physical.clone()),
            })
        }
        EnvSource::StreamName(_) => {
            let declared = &expected.properties(&naming::function(function.name))["Environment"]["Variables"][name];
            let stream = template::references(declared).into_iter().next()?;
            let physical = expected.physical.get(&stream.id)?;
            (value != physical).then(|| EnvProblem {
                message: format!(
                    "{name} is {value}, not this stack's {} ({physical}): speakers' audio chunks go to another stream \
                     or are refused, so listeners hear nothing",
                    stream.id
                ),
                breaks_clients: true,
                right: Some(physical.clone()),
            })
        }
        EnvSource::ManagementEndpoint => {
            let right = management_endpoint(expected, region);
            if !value.starts_with("https://") {
                return Some(EnvProblem {
                    message: format!(
                        "{name} is {value}, not an https:// URL: @connections calls fail: listeners never receive \
                         audio/controls, and no client gets a reply"
                    ),
                    breaks_clients: true,
                    right,
                });
            }
            let Some(right) = right else {
                // No live API to name: at least the shape of this region's and stage's endpoints.
                return (!is_management_endpoint(value, region, &expected.stage.name)).then(|| EnvProblem {
                    message: format!(
                        "{name} is {value}, not the @connections endpoint of an API of this region and stage \
                         (https://{{api id}}.execute-api.{region}.{}/{}): @connections calls fail: listeners never \
                         receive audio/controls, and no client gets a reply",
                        url_suffix(region),
                        expected.stage.name
                    ),
                    breaks_clients: true,
                    right: None,
                });
            };
            (value.trim_end_matches('/') != right).then(|| EnvProblem {
                message: format!(
                    "{name} is {value}, not this API and stage ({right}): @connections calls go to another API or \
                     stage and fail (GoneException, Forbidden): listeners never receive audio/controls, and no \
                     client gets a reply"
                ),
                breaks_clients: true,
                right: Some(right),
            })
        }
        EnvSource::StageSetting(_) => {
            let declared =
                expected.properties(&naming::function(function.name))["Environment"]["Variables"][name].as_str()?;
            if value == declared {
                return None;
            }
            let breaks_clients = AUTH_SETTINGS.contains(&name);
            let meaning = if name == env::CONNECT_AUTH {
                "`$connect` and the stage's authorizer disagree on who verifies speaker tokens: speakers are refused, \
                 or connect unverified"
                    .to_owned()
            } else if breaks_clients {
                "speaker tokens are checked against another issuer, audience or key set than the stage's: valid \
                 speakers are refused (close 1006, or 401 from the HTTP API), or other tokens accepted"
                    .to_owned()
            } else {
                format!("`{}` runs with another limit than the stage declares", function.name)
            };
            Some(EnvProblem {
                message: format!("{name} is {value}, the stage declares {declared}: {meaning}"),
                breaks_clients,
                right: Some(declared.to_owned()),
            })
        }
    }
}

/// Every variable the contract declares, with its value where the contract knows it.
fn environment_check(expected: &Expected<'_>, function: &Function, live: &LiveFunction) -> Check {
    let id = format!("functions.{}.environment", function.name);
    let name = &live.function_name;
    let region = region_of(expected, live);
    let outage = stacks::verify::outage(&contract::CONTRACT, function);
    if let Some(error) = &live.environment.error {
        return Check::fail(
            GROUP,
            id,
            format!(
                "Lambda cannot apply {name}'s environment ({}: {}): the function cannot start, so {outage}",
                error.error_code, error.message
            ),
            format!(
                "fix the cause (usually the function's KMS key or its role's access to it), then {}",
                expected.deploy()
            ),
        );
    }
    let variables = &live.environment.variables;
    let mut problems: Vec<(&str, EnvProblem)> = Vec::new();
    for var in function.environment {
        let problem = match variables.get(var.name) {
            None => Some(EnvProblem {
                message: format!("{} is not set: the cold start of `{}` fails, so {outage}", var.name, function.name),
                breaks_clients: true,
                right: right_value(expected, function, var, &region),
            }),
            Some(value) => env_problem(expected, function, var, value, &region),
        };
        problems.extend(problem.map(|problem| (var.name, problem)));
    }
    if problems.is_empty() {
        let endpoint = variables.get(env::MANAGEMENT_ENDPOINT).map(|url| format!(", MANAGEMENT_ENDPOINT {url}"));
        let unread = match &expected.websocket_api {
            Err(unreadable) => {
                format!(" (the WebSocket API could not be read, {}: its id is not compared)", unreadable.call)
            }
            Ok(None) if endpoint.is_some() => {
                " (no live WebSocket API to compare MANAGEMENT_ENDPOINT's id with)".to_owned()
            }
            Ok(_) => String::new(),
        };
        return Check::pass(
            GROUP,
            id,
            format!(
                "the {} variables the contract declares, with this stack's resources{}{unread}",
                function.environment.len(),
                endpoint.unwrap_or_default()
            ),
        );
    }
    let message = problems.iter().map(|(_, problem)| problem.message.as_str()).collect::<Vec<_>>().join("; ");
    let corrections: Option<Vec<(&str, &String)>> =
        problems.iter().map(|(name, problem)| problem.right.as_ref().map(|right| (*name, right))).collect();
    let fix = match corrections {
        Some(corrections) => {
            let mut corrected = variables.clone();
            for (name, right) in corrections {
                corrected.insert(name.to_owned(), right.clone());
            }
            // `update-function-configuration` replaces the whole environment: every variable is given.
            let document = json!({ "Variables": corrected }).to_string().replace('\'', "'\\''");
            expected.deploy_or_live(&format!(
                "aws lambda update-function-configuration --function-name {name} --region {region} --environment '{document}'"
            ))
        }
        None => expected.deploy(),
    };
    let breaks_clients = problems.iter().any(|(_, problem)| problem.breaks_clients);
    if breaks_clients { Check::fail(GROUP, id, message, fix) } else { Check::warn(GROUP, id, message, fix) }
}

/// The value `var` must have, when the contract and the stack say it.
fn right_value(expected: &Expected<'_>, function: &Function, var: &EnvVar, region: &str) -> Option<String> {
    match var.source {
        EnvSource::TableName(table) => {
            let schema = contract::CONTRACT.tables.iter().find(|schema| schema.id == table)?;
            expected.physical.get(schema.logical_id).cloned()
        }
        EnvSource::ManagementEndpoint => management_endpoint(expected, region),
        EnvSource::StreamName(_) | EnvSource::StageSetting(_) => {
            let declared = &expected.properties(&naming::function(function.name))["Environment"]["Variables"][var.name];
            match declared.as_str() {
                Some(literal) => Some(literal.to_owned()),
                None => expected.physical.get(&template::references(declared).into_iter().next()?.id).cloned(),
            }
        }
    }
}

/// One source API Gateway invokes a function from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Source {
    /// What it is, for messages (`$connect`, `the $connect authorizer`, `GET /health`).
    what: String,
    /// The `SourceArn` API Gateway invokes with.
    arn: String,
    /// The `--source-arn` that lets every source of its kind invoke the function, as the template grants it.
    grant: String,
}

/// Every source API Gateway invokes `function` from; `Err` is the check to report instead.
fn invoke_sources(
    expected: &Expected<'_>,
    function: &Function,
    arn: &ArnParts,
    id: &str,
) -> Result<Vec<Source>, Check> {
    let mut sources = Vec::new();
    let stage = &expected.stage.name;
    let api_id = |lookup: &Result<Option<String>, Unreadable>, what: &str, check: &str| match lookup {
        Ok(Some(api)) => Ok(api.clone()),
        Ok(None) => Err(Check::skip(GROUP, id, format!("no live {what} to compare with (see {check})"))),
        Err(unreadable) => Err(unreadable.check(GROUP, id, what)),
    };
    if !function.websocket_routes.is_empty() {
        let api = api_id(&expected.websocket_api, "WebSocket API", "websocket.api")?;
        for route in function.websocket_routes {
            sources.push(Source {
                what: (*route).to_owned(),
                arn: arn.execute_api(&format!("{api}/{stage}/{route}")),
                grant: arn.execute_api(&format!("{api}/{stage}/*")),
            });
        }
    }
    if contract::CONTRACT.authorizer.is_some_and(|authorizer| authorizer.function == function.name) {
        let api = api_id(&expected.websocket_api, "WebSocket API", "websocket.api")?;
        let Some(authorizer) = &expected.connect_authorizer else {
            return Err(Check::skip(
                GROUP,
                id,
                "the live $connect route names no authorizer to compare with (see websocket.connect-authorizer)",
            ));
        };
        let arn = arn.execute_api(&format!("{api}/authorizers/{authorizer}"));
        sources.push(Source { what: "the $connect authorizer".to_owned(), arn: arn.clone(), grant: arn });
    }
    if !function.http_routes.is_empty() {
        let api = api_id(&expected.http_api, "HTTP API", "the stack's HttpUrl output")?;
        let http_stage = expected.properties(naming::HTTP_STAGE)["StageName"].as_str().unwrap_or("$default");
        for route in function.http_routes {
            sources.push(Source {
                what: route.route_key(),
                arn: arn.execute_api(&format!("{api}/{http_stage}/{}{}", route.method.as_str(), route.path)),
                grant: arn.execute_api(&format!("{api}/*")),
            });
        }
    }
    Ok(sources)
}

/// The statements of a policy document (`Statement` may be one object or a list).
pub(super) fn statements(document: &Value) -> Vec<&Value> {
    match &document["Statement"] {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![&document["Statement"]],
        _ => Vec::new(),
    }
}

/// Whether a resource policy statement's principal includes API Gateway.
fn names_api_gateway(principal: &Value) -> bool {
    match principal {
        Value::String(text) => text == "*",
        Value::Object(map) => {
            map.get("Service").is_some_and(|services| {
                template::strings(services).iter().any(|service| service == "apigateway.amazonaws.com")
            }) || map.get("AWS").is_some_and(|aws| template::strings(aws).iter().any(|who| who == "*"))
        }
        _ => false,
    }
}

/// Whether every condition of a statement holds for an invocation from `source` in `account`.
/// Only the conditions `add-permission` writes are understood; any other makes the statement
/// count as not applying (the check stays on the safe side).
fn conditions_hold(conditions: &Value, source: &str, account: &str) -> bool {
    let Some(operators) = conditions.as_object() else {
        return conditions.is_null();
    };
    operators.iter().all(|(operator, keys)| {
        keys.as_object().is_some_and(|keys| {
            keys.iter().all(|(key, values)| {
                let values = template::strings(values);
                let subject = match key.to_ascii_lowercase().as_str() {
                    "aws:sourcearn" => source,
                    "aws:sourceaccount" => account,
                    _ => return false,
                };
                match operator.as_str() {
                    "ArnLike" | "ArnEquals" | "StringLike" => values.iter().any(|pattern| glob(pattern, subject)),
                    "StringEquals" => values.iter().any(|value| value == subject),
                    _ => false,
                }
            })
        })
    })
}

/// Whether a function's resource policy lets API Gateway invoke it from `source`.
fn policy_allows(policy: &Value, source: &str, account: &str) -> bool {
    let applies = |effect: &str| {
        statements(policy).into_iter().any(|statement| {
            statement["Effect"] == effect
                && names_api_gateway(&statement["Principal"])
                && template::strings(&statement["Action"])
                    .iter()
                    .any(|action| glob_ignore_case(action, "lambda:InvokeFunction"))
                && conditions_hold(&statement["Condition"], source, account)
        })
    };
    applies("Allow") && !applies("Deny")
}

/// The source ARNs a policy lets API Gateway invoke from, for messages.
fn granted_sources(policy: &Value) -> Vec<String> {
    statements(policy)
        .into_iter()
        .filter(|statement| statement["Effect"] == "Allow" && names_api_gateway(&statement["Principal"]))
        .flat_map(|statement| {
            let conditions = statement["Condition"].as_object().cloned().unwrap_or_default();
            let arns: Vec<String> = conditions
                .values()
                .filter_map(Value::as_object)
                .flat_map(|keys| keys.iter().filter(|(key, _)| key.eq_ignore_ascii_case("aws:SourceArn")))
                .flat_map(|(_, values)| template::strings(values))
                .collect();
            if arns.is_empty() { vec!["any source".to_owned()] } else { arns }
        })
        .collect()
}

/// The resource policy lets API Gateway invoke the function from every source it serves.
fn invoke_check(
    expected: &Expected<'_>,
    function: &Function,
    live: &LiveFunction,
    policy: &Result<Option<Value>, Unreadable>,
) -> Check {
    let id = format!("functions.{}.invoke-permission", function.name);
    let name = &live.function_name;
    let Some(arn) = ArnParts::of(&live.function_arn) else {
        return Check::skip(
            GROUP,
            id,
            format!("{name}: its ARN {:?} names no account to build source ARNs with", live.function_arn),
        );
    };
    let sources = match invoke_sources(expected, function, &arn, &id) {
        Ok(sources) if sources.is_empty() => {
            return Check::skip(GROUP, id, format!("`{}` is not invoked by API Gateway", function.name));
        }
        Ok(sources) => sources,
        Err(check) => return check,
    };
    let policy = match policy {
        Ok(policy) => policy.clone().unwrap_or(Value::Null),
        Err(unreadable) => return unreadable.check(GROUP, id, &format!("{name}'s resource policy")),
    };
    let denied: Vec<&Source> =
        sources.iter().filter(|source| !policy_allows(&policy, &source.arn, &arn.account)).collect();
    if denied.is_empty() {
        let grants = granted_sources(&policy);
        return Check::pass(
            GROUP,
            id,
            format!("API Gateway may invoke it from all {} of its sources ({})", sources.len(), grants.join(", ")),
        );
    }
    let outage = stacks::verify::outage(&contract::CONTRACT, function);
    let whats: Vec<&str> = denied.iter().map(|source| source.what.as_str()).collect();
    let grants = granted_sources(&policy);
    let allowed = if grants.is_empty() {
        "lets API Gateway invoke it from no source".to_owned()
    } else {
        format!("lets API Gateway invoke it only from {}", grants.join(", "))
    };
    let mut grant: Vec<&str> = denied.iter().map(|source| source.grant.as_str()).collect();
    grant.dedup();
    let commands: Vec<String> = grant
        .iter()
        .enumerate()
        .map(|(index, source)| {
            format!(
                "aws lambda add-permission --function-name {name} --statement-id apigateway-invoke-{} --action \
                 lambda:InvokeFunction --principal apigateway.amazonaws.com --source-arn '{source}' --region {}",
                index + 1,
                arn.region
            )
        })
        .collect();
    Check::fail(
        GROUP,
        id,
        format!(
            "API Gateway may not invoke {name} for {} (for example from {}): its resource policy {allowed}; \
             API Gateway gets AccessDenied invoking it, so {outage}",
            whats.join(", "),
            denied[0].arn
        ),
        format!(
            "{} (a permission removed or changed live: `{}` does not restore it, CloudFormation does not see it)",
            commands.join(" && "),
            expected.deploy()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{Arch, Profile};
    use crate::doctor::Status;

    const ACCOUNT: &str = "123456789012";
    const API: &str = "a1b2c3d4e5";
    const AUTHORIZER: &str = "abc123";
    const HTTP_API: &str = "h7t7p7a7p7";

    fn synthesized(stage: &StageConfig) -> Value {
        stacks::synthesize(&contract::CONTRACT, stage).expect("synthesizes").to_value()
    }

    fn physical_name(logical: &str) -> String {
        format!("session-service-dev-{logical}-ABC123")
    }

    fn expected<'a>(stage: &'a StageConfig, synthesized: &'a Value) -> Expected<'a> {
        let physical = synthesized["Resources"]
            .as_object()
            .expect("resources")
            .iter()
            .filter(|(_, resource)| !resource["Type"].as_str().unwrap_or_default().starts_with("AWS::ApiGatewayV2"))
            .map(|(logical, _)| (logical.clone(), physical_name(logical)))
            .collect();
        Expected {
            stage,
            synthesized,
            physical,
            region: "eu-west-1".into(),
            websocket_api: Ok(Some(API.into())),
            connect_authorizer: Some(AUTHORIZER.into()),
            http_api: Ok(Some(HTTP_API.into())),
            manifest: Err("no build manifest".into()),
        }
    }

    /// The live configuration of `function` as a healthy deployment of the template leaves it,
    /// in the shape of Lambda's `GetFunctionConfiguration` response.
    fn healthy(expected: &Expected<'_>, function: &Function) -> LiveFunction {
        let logical = naming::function(function.name);
        let name = physical_name(&logical);
        let declared = &expected.properties(&logical)["Environment"]["Variables"];
        let variables: BTreeMap<String, String> = declared
            .as_object()
            .expect("variables")
            .iter()
            .map(|(key, value)| {
                let value = match value.as_str() {
                    Some(literal) => literal.to_owned(),
                    None if key == env::MANAGEMENT_ENDPOINT => {
                        format!("https://{API}.execute-api.eu-west-1.amazonaws.com/{}", expected.stage.name)
                    }
                    None => physical_name(&template::references(value)[0].id),
                };
                (key.clone(), value)
            })
            .collect();
        serde_json::from_value(json!({
            "FunctionName": name,
            "FunctionArn": format!("arn:aws:lambda:eu-west-1:{ACCOUNT}:function:{name}"),
            "Runtime": "provided.al2023",
            "Role": format!("arn:aws:iam::{ACCOUNT}:role/{}", physical_name(&naming::role(function.name))),
            "Handler": "bootstrap",
            "CodeSize": 4_211_000,
            "CodeSha256": "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=",
            "Version": "$LATEST",
            "Environment": {"Variables": variables},
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "PackageType": "Zip",
            "Architectures": ["arm64"],
        }))
        .expect("a GetFunctionConfiguration response")
    }

    /// The resource policy a healthy deployment gives `function` (as `GetPolicy` returns it).
    fn healthy_policy(function: &Function) -> Value {
        healthy_policy_of(&stacks::stages::dev(), function)
    }

    fn healthy_policy_of(stage: &StageConfig, function: &Function) -> Value {
        let source = match function.name {
            "authorizer" => format!("arn:aws:execute-api:eu-west-1:{ACCOUNT}:{API}/authorizers/{AUTHORIZER}"),
            "http" => format!("arn:aws:execute-api:eu-west-1:{ACCOUNT}:{HTTP_API}/*"),
            _ => format!("arn:aws:execute-api:eu-west-1:{ACCOUNT}:{API}/{}/*", stage.name),
        };
        policy_from(&source)
    }

    fn policy_from(source: &str) -> Value {
        json!({
            "Version": "2012-10-17",
            "Id": "default",
            "Statement": [{
                "Sid": "stack-permission",
                "Effect": "Allow",
                "Principal": {"Service": "apigateway.amazonaws.com"},
                "Action": "lambda:InvokeFunction",
                "Resource": "arn:aws:lambda:eu-west-1:123456789012:function:f",
                "Condition": {"ArnLike": {"AWS:SourceArn": source}},
            }],
        })
    }

    fn judged(expected: &Expected<'_>, function: &Function, live: &LiveFunction, policy: Option<Value>) -> Vec<Check> {
        judge_function(expected, function, live, &Ok(policy))
    }

    fn failures(checks: &[Check]) -> Vec<&Check> {
        checks.iter().filter(|check| check.status == Status::Fail).collect()
    }

    fn only_failure<'a>(checks: &'a [Check], id: &str) -> &'a Check {
        let failed = failures(checks);
        assert_eq!(failed.len(), 1, "{checks:#?}");
        assert_eq!(failed[0].id, id, "{checks:#?}");
        failed[0]
    }

    #[test]
    fn every_function_as_every_stage_deploys_it_passes() {
        for stage in stacks::stages::all() {
            let synthesized = synthesized(&stage);
            let expected = expected(&stage, &synthesized);
            for function in deployed(&stage) {
                let policy = healthy_policy_of(&stage, function);
                let checks = judged(&expected, function, &healthy(&expected, function), Some(policy));
                assert!(failures(&checks).is_empty(), "{} {}: {checks:#?}", stage.name, function.name);
                assert_eq!(checks.len(), 6);
            }
        }
        let without = StageConfig { connect_authorizer: false, ..stacks::stages::dev() };
        assert!(deployed(&without).iter().all(|function| function.name != "authorizer"));
        assert_eq!(deployed(&stacks::stages::dev()).len(), contract::CONTRACT.functions.len());
    }

    #[test]
    fn a_failed_pending_or_inactive_function_or_an_unfinished_update_fails_with_its_reason() {
        let stage = stacks::stages::dev();
        let synthesized = synthesized(&stage);
        let expected = expected(&stage, &synthesized);
        let function = &contract::functions::CONNECTION;
        let mut live = healthy(&expected, function);
        live.state = "Failed".into();
        live.state_reason_code = "InvalidSubnet".into();
        live.state_reason = "The subnet subnet-0abc does not exist".into();
        let checks = judged(&expected, function, &live, Some(healthy_policy(function)));
        let check = only_failure(&checks, "functions.connection.state");
        assert!(
            check.message.contains("Failed (InvalidSubnet: The subnet subnet-0abc does not exist)"),
            "{}",
            check.message
        );
        assert!(check.message.contains("every connection is refused with 500"), "{}", check.message);

        for state in ["Pending", "Inactive"] {
            let mut live = healthy(&expected, function);
            live.state = state.into();
            let checks = judged(&expected, function, &live, Some(healthy_policy(function)));
            assert!(only_failure(&checks, "functions.connection.state").message.contains(state));
        }

        let mut live = healthy(&expected, function);
        live.last_update_status = "InProgress".into();
        let checks = judged(&expected, function, &live, Some(healthy_policy(function)));
        let check = only_failure(&checks, "functions.connection.state");
        assert!(check.message.contains("previous code"), "{}", check.message);
        assert!(check.fix.contains("aws lambda wait function-updated-v2"), "{}", check.fix);

        let mut live = healthy(&expected, function);
        live.last_update_status = "Failed".into();
        live.last_update_status_reason_code = "EniLimitExceeded".into();
        let checks = judged(&expected, function, &live, Some(healthy_policy(function)));
        assert!(only_failure(&checks, "functions.connection.state").message.contains("EniLimitExceeded"));
    }

    #[test]
    fn another_architecture_or_runtime_fails() {
        let stage = stacks::stages::dev();
        let synthesized = synthesized(&stage);
        let expected = expected(&stage, &synthesized);
        let function = &contract::functions::MESSAGES;
        let mut live = healthy(&expected, function);
        live.architectures = vec!["x86_64".into()];
        let checks = judged(&expected, function, &live, Some(healthy_policy(function)));
        let check = only_failure(&checks, "functions.messages.architecture");
        assert!(check.message.contains("runs on x86_64, the template declares arm64"), "{}", check.message);
        assert!(check.message.contains("\"Internal server error\""), "{}", check.message);
        assert!(check.fix.contains("--architectures arm64"), "{}", check.fix);
        assert!(check.fix.contains("cargo xtask deploy --stage dev"), "{}", check.fix);
        // Lambda's default, when the response lists none.
        live.architectures = Vec::new();
        assert_eq!(failures(&judged(&expected, function, &live, Some(healthy_policy(function)))).len(), 1);

        let mut live = healthy(&expected, function);
        live.runtime = "provided.al2".into();
        let checks = judged(&expected, function, &live, Some(healthy_policy(function)));
        assert!(only_failure(&checks, "functions.messages.runtime").fix.contains("--runtime provided.al2023"));
    }

    #[test]
    fn code_is_compared_with_the_manifest_when_there_is_one() {
        let stage = stacks::stages::dev();
        let synthesized = synthesized(&stage);
        let mut expected = expected(&stage, &synthesized);
        let function = &contract::functions::HTTP;
        let live = healthy(&expected, function);
        let check = code_check(&expected, function, &live);
        assert_eq!(check.status, Status::Skip);
        assert!(check.message.contains("not compared: no build manifest"), "{}", check.message);

        let built = |code_sha256: &str| Artifact {
            function: "http".into(),
            arch: Arch::Arm64,
            profile: Profile::Release,
            zip: "target/lambda/http.zip".into(),
            size: 1,
            sha256_hex: "00".into(),
            code_sha256: code_sha256.into(),
        };
        expected.manifest = Ok(vec![built(&live.code_sha256)]);
        assert_eq!(code_check(&expected, function, &live).status, Status::Pass);
        expected.manifest = Ok(vec![built("AAAA")]);
        let check = code_check(&expected, function, &live);
        assert_eq!(check.status, Status::Warn);
        assert!(check.message.contains("the deployed code is not your last build"), "{}", check.message);
        expected.manifest = Ok(Vec::new());
        assert_eq!(code_check(&expected, function, &live).status, Status::Skip);
    }

    #[test]
    fn a_wss_or_foreign_management_endpoint_a_missing_variable_and_a_wrong_table_fail() {
        let stage = stacks::stages::dev();
        let synthesized = synthesized(&stage);
        let expected = expected(&stage, &synthesized);
        let function = &contract::functions::MESSAGES;
        let right = format!("https://{API}.execute-api.eu-west-1.amazonaws.com/dev");

        let mut live = healthy(&expected, function);
        live.environment.variables.insert(env::MANAGEMENT_ENDPOINT.into(), right.replace("https://", "wss://"));
        let checks = judged(&expected, function, &live, Some(healthy_policy(function)));
        let check = only_failure(&checks, "functions.messages.environment");
        assert!(check.message.contains("not an https:// URL"), "{}", check.message);
        assert!(check.message.contains("@connections calls fail: listeners never receive audio/controls"));
        assert!(check.fix.contains(&format!("\"MANAGEMENT_ENDPOINT\":\"{right}\"")), "{}", check.fix);
        assert!(check.fix.contains("aws lambda update-function-configuration"), "{}", check.fix);

        live.environment.variables.insert(env::MANAGEMENT_ENDPOINT.into(), right.replace(API, "otherapi99"));
        let checks = judged(&expected, function, &live, Some(healthy_policy(function)));
        assert!(only_failure(&checks, "functions.messages.environment").message.contains("not this API and stage"));

        // Without a live API to name, the endpoint's shape is still judged (moto leaves `${WebSocketApi}` in it).
        let unknown = Expected { websocket_api: Ok(None), ..super::tests::expected(&stage, &synthesized) };
        live.environment.variables.insert(
            env::MANAGEMENT_ENDPOINT.into(),
            "https://${WebSocketApi}.execute-api.eu-west-1.amazonaws.com/dev".into(),
        );
        let check = environment_check(&unknown, function, &live);
        assert_eq!(check.status, Status::Fail, "{check:?}");
        assert!(check.message.contains("not the @connections endpoint of an API of this region and stage"));
        live.environment.variables.insert(env::MANAGEMENT_ENDPOINT.into(), right.clone());
        assert_eq!(environment_check(&unknown, function, &live).status, Status::Pass);

        let mut live = healthy(&expected, function);
        live.environment.variables.remove(env::AUDIO_STREAM);
        live.environment.variables.insert(env::SESSIONS_TABLE.into(), "session-service-prod-SessionsTable-X".into());
        let checks = judged(&expected, function, &live, Some(healthy_policy(function)));
        let check = only_failure(&checks, "functions.messages.environment");
        assert!(
            check.message.contains("AUDIO_STREAM is not set: the cold start of `messages` fails"),
            "{}",
            check.message
        );
        assert!(check.message.contains("not this stack's SessionsTable"), "{}", check.message);
        assert!(check.fix.contains(&physical_name("AudioStream")), "{}", check.fix);

        let mut live = healthy(&expected, function);
        live.environment.variables.insert(env::MAX_LISTENERS_PER_SESSION.into(), "7".into());
        let check = environment_check(&expected, function, &live);
        assert_eq!(check.status, Status::Warn, "{check:?}");

        let mut live = healthy(&expected, &contract::functions::CONNECTION);
        live.environment.variables.insert(env::CONNECT_AUTH.into(), "self".into());
        assert_eq!(environment_check(&expected, &contract::functions::CONNECTION, &live).status, Status::Fail);
    }

    #[test]
    fn a_policy_for_another_api_or_none_at_all_fails_with_the_add_permission_command() {
        let stage = stacks::stages::dev();
        let synthesized = synthesized(&stage);
        let expected = expected(&stage, &synthesized);
        let function = &contract::functions::CONNECTION;
        let live = healthy(&expected, function);
        let other = format!("arn:aws:execute-api:eu-west-1:{ACCOUNT}:otherapi99/dev/*");
        let checks = judged(&expected, function, &live, Some(policy_from(&other)));
        let check = only_failure(&checks, "functions.connection.invoke-permission");
        assert!(check.message.contains("$connect, $disconnect"), "{}", check.message);
        assert!(check.message.contains(&other), "{}", check.message);
        assert!(check.message.contains("AccessDenied"), "{}", check.message);
        assert!(check.fix.contains("aws lambda add-permission"), "{}", check.fix);
        assert!(
            check.fix.contains(&format!("--source-arn 'arn:aws:execute-api:eu-west-1:{ACCOUNT}:{API}/dev/*'")),
            "{}",
            check.fix
        );

        let checks = judged(&expected, function, &live, None);
        assert!(only_failure(&checks, "functions.connection.invoke-permission").message.contains("from no source"));

        // Wider grants are fine; another stage of the API, another account or a deny are not.
        for (source, allowed) in [
            (format!("arn:aws:execute-api:eu-west-1:{ACCOUNT}:{API}/*"), true),
            (format!("arn:aws:execute-api:*:{ACCOUNT}:*"), true),
            (format!("arn:aws:execute-api:eu-west-1:{ACCOUNT}:{API}/prod/*"), false),
            (format!("arn:aws:execute-api:eu-west-1:999999999999:{API}/dev/*"), false),
        ] {
            let checks = judged(&expected, function, &live, Some(policy_from(&source)));
            assert_eq!(failures(&checks).is_empty(), allowed, "{source}: {checks:#?}");
        }
        let mut denied = healthy_policy(function);
        let mut deny = denied["Statement"][0].clone();
        deny["Effect"] = json!("Deny");
        denied["Statement"].as_array_mut().expect("statements").push(deny);
        assert_eq!(failures(&judged(&expected, function, &live, Some(denied))).len(), 1);

        let authorizer = &contract::functions::AUTHORIZER;
        let live = healthy(&expected, authorizer);
        let wrong = format!("arn:aws:execute-api:eu-west-1:{ACCOUNT}:{API}/authorizers/zzz999");
        let checks = judged(&expected, authorizer, &live, Some(policy_from(&wrong)));
        let check = only_failure(&checks, "functions.authorizer.invoke-permission");
        assert!(check.message.contains("before $connect runs"), "{}", check.message);
    }

    #[test]
    fn unreadable_and_missing_functions_are_failed_checks_naming_the_call() {
        let stage = stacks::stages::dev();
        let synthesized = synthesized(&stage);
        let expected = expected(&stage, &synthesized);
        let function = &contract::functions::HTTP;
        let live = healthy(&expected, function);
        let denied = Unreadable::new("GetPolicy(f)", "lambda:GetPolicy", "AccessDeniedException: not allowed");
        let checks = judge_function(&expected, function, &live, &Err(denied));
        let check = only_failure(&checks, "functions.http.invoke-permission");
        assert!(check.message.contains("GetPolicy(f) failed (AccessDeniedException"), "{}", check.message);
        assert!(check.fix.contains("lambda:GetPolicy"), "{}", check.fix);

        let check = absent_check(&expected, function, Absent::NotInStack);
        assert!(check.message.contains("the stack has no HttpFunction"), "{}", check.message);
        let check = absent_check(&expected, function, Absent::Deleted("gone"));
        assert!(check.message.contains("Lambda has no such function"), "{}", check.message);
    }

    #[test]
    fn arn_parts_are_read_without_panicking() {
        assert_eq!(
            ArnParts::of("arn:aws-cn:lambda:cn-north-1:123:function:f"),
            Some(ArnParts { partition: "aws-cn".into(), region: "cn-north-1".into(), account: "123".into() })
        );
        assert_eq!(ArnParts::of("not an arn"), None);
        assert_eq!(ArnParts::of("arn:aws:lambda::123:function:f"), None);
        assert_eq!(url_suffix("cn-north-1"), "amazonaws.com.cn");
    }
}

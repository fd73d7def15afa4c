//! Check group `functions`: each contract function's **live** configuration, read through the
//! Lambda API (`GetFunctionConfiguration`, `GetPolicy`) and judged by the contract and the
//! stage's synthesized template. Per function `<name>`:
//!
//! - `functions.<name>.state`: the stack lists it, Lambda has it, its `State` is `Active` and
//!   its `LastUpdateStatus` `Successful`; a function deleted live is recreated under its name,
//!   with its role's ARN (the account of another function's ARN, else `GetCallerIdentity`'s);
//! - `functions.<name>.runtime` and `.architecture`: as the synthesized template declares them
//!   (a bootstrap built for arm64 cannot execute on x86_64);
//! - `functions.<name>.code`: the deployed `CodeSha256` against the local build manifest, when
//!   there is one; a difference is a warning (the deployed code is not your last build);
//! - `functions.<name>.environment` ([`environment`]): every variable the contract declares is
//!   set, and its value is checked where the contract knows it: a table name is the stack's
//!   table, `AUDIO_STREAM` the stack's stream, `MANAGEMENT_ENDPOINT` the `https://` endpoint of
//!   this API and stage, a stage setting the template's literal;
//! - `functions.<name>.invoke-permission` ([`invoke_permission`]): its resource policy lets API
//!   Gateway invoke it from this stack's APIs, for every WebSocket route it serves, as the
//!   `$connect` authorizer, and for every HTTP route it serves (the source ARNs API Gateway
//!   invokes with).
//!
//! Physical names come from `ListStackResources`; the APIs, which the local AWS endpoint
//! does not list there, are found by the names the template gives them. The authorizer
//! function is judged only on a stage with the `$connect` authorizer.

mod environment;
mod invoke_permission;

use super::{Check, Context, websocket};
use crate::build::{Artifact, read_manifest};
use crate::doctor::live;
use crate::doctor::live::{ArnParts, Unreadable};
use contract::Function;
use serde::Deserialize;
use serde_json::Value;
use stacks::template;
use stacks::{StageConfig, naming};
use std::collections::BTreeMap;
use std::path::Path;

const GROUP: &str = "functions";

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

/// What the live functions are compared with, read once for every function.
#[derive(Debug)]
struct Expected<'a> {
    stage: &'a StageConfig,
    synthesized: &'a Value,
    /// Logical id → physical id, as the stack lists them.
    physical: BTreeMap<String, String>,
    /// The region the doctor talks to (used where a function's ARN does not say).
    region: String,
    /// The live WebSocket API's id.
    websocket_api: Result<Option<String>, Unreadable>,
    /// The id of the authorizer the live `$connect` route names.
    connect_authorizer: Option<String>,
    /// The live HTTP API's id.
    http_api: Result<Option<String>, Unreadable>,
    /// The last build's zips, or why there is nothing to compare the deployed code with.
    manifest: Result<Vec<Artifact>, String>,
}

impl<'a> Expected<'a> {
    async fn read(context: &'a Context) -> Expected<'a> {
        let physical = context.stack.as_ref().map(|stack| stack.resources.clone()).unwrap_or_default();
        let apigateway = aws_sdk_apigatewayv2::Client::new(&context.sdk);
        let (websocket_api, connect_authorizer) = match &context.websocket {
            Ok(Some(api)) => {
                (Ok(Some(api.id.clone())), api.connect_authorizer.as_ref().map(|authorizer| authorizer.id.clone()))
            }
            Ok(None) => (Ok(None), None),
            Err(error) => {
                (Err(Unreadable::new("the API Gateway v2 API (GetApis, GetRoutes)", "apigateway:GET", error)), None)
            }
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
        live::deploy_command(self.stage)
    }

    /// The fix of a difference between the live function and the template ([`live::deploy_or_live`]).
    fn deploy_or_live(&self, live_fix: &str) -> String {
        live::deploy_or_live(self.stage, live_fix)
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
    let mut found = Vec::new();
    for function in deployed(&context.stage) {
        found.push((function, find(&lambda, &expected, function).await));
    }
    // Only the fix of a deleted function needs the account (its role's ARN).
    let any_deleted = found.iter().any(|(_, found)| matches!(found, Found::Deleted(_)));
    let account = if any_deleted { stage_account(context, &found).await } else { None };
    let mut checks = Vec::new();
    for (function, found) in &found {
        match found {
            Found::NotInStack => checks.push(absent_check(&expected, function, Absent::NotInStack)),
            Found::Deleted(physical) => {
                let role = role_arn(&expected, function, account.as_ref());
                checks.push(absent_check(&expected, function, Absent::Deleted { physical, role: &role }));
            }
            Found::Unreadable(physical, unreadable) => {
                checks.push(unreadable.check(GROUP, format!("functions.{}.state", function.name), physical));
            }
            Found::Live(live, policy) => checks.extend(judge_function(&expected, function, live, policy)),
        }
    }
    checks
}

/// What Lambda has of one contract function.
#[derive(Debug)]
enum Found {
    /// The stack does not list it.
    NotInStack,
    /// The stack lists it under this name, and Lambda has no such function.
    Deleted(String),
    /// The stack lists it under this name, and reading it failed.
    Unreadable(String, Unreadable),
    /// Its configuration and its resource policy.
    Live(Box<LiveFunction>, Result<Option<Value>, Unreadable>),
}

/// Reads `function` under the name the stack lists it by.
async fn find(lambda: &aws_sdk_lambda::Client, expected: &Expected<'_>, function: &Function) -> Found {
    let Some(physical) = expected.physical.get(&naming::function(function.name)).cloned() else {
        return Found::NotInStack;
    };
    match read_function(lambda, &physical).await {
        Ok(Some(live)) => {
            let policy = invoke_permission::read_policy(lambda, &physical).await;
            Found::Live(Box::new(live), policy)
        }
        Ok(None) => Found::Deleted(physical),
        Err(unreadable) => Found::Unreadable(physical, unreadable),
    }
}

/// The partition and account of the stage's resources: those of a live function's ARN, else
/// of the identity doctor runs as (`GetCallerIdentity`); `None` when neither says.
async fn stage_account(context: &Context, found: &[(&Function, Found)]) -> Option<ArnParts> {
    let live = found.iter().find_map(|(_, found)| match found {
        Found::Live(live, _) => ArnParts::of(&live.function_arn),
        _ => None,
    });
    if live.is_some() {
        return live;
    }
    let identity = aws_sdk_sts::Client::new(&context.sdk).get_caller_identity().send().await.ok()?;
    let partition = identity.arn()?.split(':').nth(1).filter(|partition| !partition.is_empty())?;
    Some(ArnParts {
        partition: partition.to_owned(),
        region: context.region(),
        account: identity.account()?.to_owned(),
    })
}

/// The ARN of the role the template gives `function`: its name as the stack lists it, in
/// `account` (a placeholder where the account is unknown).
fn role_arn(expected: &Expected<'_>, function: &Function, account: Option<&ArnParts>) -> String {
    let logical = naming::role(function.name);
    let name = expected.physical.get(&logical).map_or_else(|| format!("<the name of {logical}>"), Clone::clone);
    match account {
        Some(account) => account.role(&name),
        None => format!("arn:aws:iam::<account id>:role/{name}"),
    }
}

/// How a function is not there.
#[derive(Debug, Clone, Copy)]
enum Absent<'a> {
    /// The stack does not list it.
    NotInStack,
    /// The stack lists it under the name `physical`, and Lambda has no such function; `role`
    /// is the ARN of the role the template gives it.
    Deleted { physical: &'a str, role: &'a str },
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
        Absent::Deleted { physical, role } => Check::fail(
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
                 --function-name {physical} --role {role} --runtime {runtime} --handler bootstrap --architectures \
                 {architectures} --zip-file fileb://target/lambda/{name}.zip --region {region}, with the template's \
                 environment), so the stack finds it again",
                stack = expected.stage.stack_name,
                runtime = expected.properties(&logical)["Runtime"].as_str().unwrap_or("provided.al2023"),
                architectures = template::strings(&expected.properties(&logical)["Architectures"]).join(" "),
                name = function.name,
                region = expected.region,
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
        environment::check(expected, function, live),
        invoke_permission::check(expected, function, live, policy),
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

/// A healthy deployment of the template, as the functions checks read it, and what the tests
/// of its checks share.
#[cfg(test)]
mod fixtures {
    use super::*;
    use crate::doctor::Status;
    use contract::env;
    use serde_json::json;

    pub(super) const ACCOUNT: &str = "123456789012";
    pub(super) const API: &str = "a1b2c3d4e5";
    pub(super) const AUTHORIZER: &str = "abc123";
    pub(super) const HTTP_API: &str = "h7t7p7a7p7";

    pub(super) fn physical_name(logical: &str) -> String {
        format!("session-service-dev-{logical}-ABC123")
    }

    /// A stage with its synthesized template, which an [`Expected`] borrows.
    pub(super) struct Synthesized {
        stage: StageConfig,
        template: Value,
    }

    impl Synthesized {
        pub(super) fn of(stage: StageConfig) -> Synthesized {
            let template = stacks::synthesize(&contract::CONTRACT, &stage).expect("synthesizes").to_value();
            Synthesized { stage, template }
        }

        pub(super) fn dev() -> Synthesized {
            Synthesized::of(stacks::stages::dev())
        }

        /// What a healthy deployment of the stage is compared with: every resource but the
        /// APIs listed by the stack, the APIs found by name, no build manifest.
        pub(super) fn expected(&self) -> Expected<'_> {
            let physical = self.template["Resources"]
                .as_object()
                .expect("resources")
                .iter()
                .filter(|(_, resource)| !resource["Type"].as_str().unwrap_or_default().starts_with("AWS::ApiGatewayV2"))
                .map(|(logical, _)| (logical.clone(), physical_name(logical)))
                .collect();
            Expected {
                stage: &self.stage,
                synthesized: &self.template,
                physical,
                region: "eu-west-1".into(),
                websocket_api: Ok(Some(API.into())),
                connect_authorizer: Some(AUTHORIZER.into()),
                http_api: Ok(Some(HTTP_API.into())),
                manifest: Err("no build manifest".into()),
            }
        }
    }

    /// The live configuration of `function` as a healthy deployment of the template leaves it,
    /// in the shape of Lambda's `GetFunctionConfiguration` response.
    pub(super) fn healthy(expected: &Expected<'_>, function: &Function) -> LiveFunction {
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
    pub(super) fn healthy_policy(function: &Function) -> Value {
        healthy_policy_of(&stacks::stages::dev(), function)
    }

    /// The resource policy a healthy deployment of `stage` gives `function`.
    pub(super) fn healthy_policy_of(stage: &StageConfig, function: &Function) -> Value {
        let source = match function.name {
            "authorizer" => format!("arn:aws:execute-api:eu-west-1:{ACCOUNT}:{API}/authorizers/{AUTHORIZER}"),
            "http" => format!("arn:aws:execute-api:eu-west-1:{ACCOUNT}:{HTTP_API}/*"),
            _ => format!("arn:aws:execute-api:eu-west-1:{ACCOUNT}:{API}/{}/*", stage.name),
        };
        policy_from(&source)
    }

    /// A resource policy letting API Gateway invoke the function from `source` only.
    pub(super) fn policy_from(source: &str) -> Value {
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

    pub(super) fn judged(
        expected: &Expected<'_>,
        function: &Function,
        live: &LiveFunction,
        policy: Option<Value>,
    ) -> Vec<Check> {
        judge_function(expected, function, live, &Ok(policy))
    }

    /// Every check of `live`, with the resource policy a healthy deployment gives it.
    pub(super) fn judged_with_healthy_policy(
        expected: &Expected<'_>,
        function: &Function,
        live: &LiveFunction,
    ) -> Vec<Check> {
        judged(expected, function, live, Some(healthy_policy(function)))
    }

    pub(super) fn failures(checks: &[Check]) -> Vec<&Check> {
        checks.iter().filter(|check| check.status == Status::Fail).collect()
    }

    /// The one failed check of `checks`, which must be `id`.
    pub(super) fn only_failure<'a>(checks: &'a [Check], id: &str) -> &'a Check {
        let failed = failures(checks);
        assert_eq!(failed.len(), 1, "{checks:#?}");
        assert_eq!(failed[0].id, id, "{checks:#?}");
        failed[0]
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{
        ACCOUNT, Synthesized, failures, healthy, healthy_policy_of, judged, judged_with_healthy_policy, only_failure,
        physical_name,
    };
    use super::*;
    use crate::build::{Arch, Profile};
    use crate::doctor::Status;

    #[test]
    fn every_function_as_every_stage_deploys_it_passes() {
        for stage in stacks::stages::all() {
            let synthesized = Synthesized::of(stage.clone());
            let expected = synthesized.expected();
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
        let dev = Synthesized::dev();
        let expected = dev.expected();
        let function = &contract::functions::CONNECTION;
        let mut live = healthy(&expected, function);
        live.state = "Failed".into();
        live.state_reason_code = "InvalidSubnet".into();
        live.state_reason = "The subnet subnet-0abc does not exist".into();
        let checks = judged_with_healthy_policy(&expected, function, &live);
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
            let checks = judged_with_healthy_policy(&expected, function, &live);
            assert!(only_failure(&checks, "functions.connection.state").message.contains(state));
        }

        let mut live = healthy(&expected, function);
        live.last_update_status = "InProgress".into();
        let checks = judged_with_healthy_policy(&expected, function, &live);
        let check = only_failure(&checks, "functions.connection.state");
        assert!(check.message.contains("previous code"), "{}", check.message);
        assert!(check.fix.contains("aws lambda wait function-updated-v2"), "{}", check.fix);

        let mut live = healthy(&expected, function);
        live.last_update_status = "Failed".into();
        live.last_update_status_reason_code = "EniLimitExceeded".into();
        let checks = judged_with_healthy_policy(&expected, function, &live);
        assert!(only_failure(&checks, "functions.connection.state").message.contains("EniLimitExceeded"));
    }

    #[test]
    fn another_architecture_or_runtime_fails() {
        let dev = Synthesized::dev();
        let expected = dev.expected();
        let function = &contract::functions::MESSAGES;
        let mut live = healthy(&expected, function);
        live.architectures = vec!["x86_64".into()];
        let checks = judged_with_healthy_policy(&expected, function, &live);
        let check = only_failure(&checks, "functions.messages.architecture");
        assert!(check.message.contains("runs on x86_64, the template declares arm64"), "{}", check.message);
        assert!(check.message.contains("\"Internal server error\""), "{}", check.message);
        assert!(check.fix.contains("--architectures arm64"), "{}", check.fix);
        assert!(check.fix.contains("cargo xtask deploy --stage dev"), "{}", check.fix);
        // Lambda's default, when the response lists none.
        live.architectures = Vec::new();
        assert_eq!(failures(&judged_with_healthy_policy(&expected, function, &live)).len(), 1);

        let mut live = healthy(&expected, function);
        live.runtime = "provided.al2".into();
        let checks = judged_with_healthy_policy(&expected, function, &live);
        assert!(only_failure(&checks, "functions.messages.runtime").fix.contains("--runtime provided.al2023"));
    }

    #[test]
    fn code_is_compared_with_the_manifest_when_there_is_one() {
        let dev = Synthesized::dev();
        let mut expected = dev.expected();
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
    fn unreadable_and_missing_functions_are_failed_checks_naming_the_call() {
        let dev = Synthesized::dev();
        let expected = dev.expected();
        let function = &contract::functions::HTTP;
        let live = healthy(&expected, function);
        let denied = Unreadable::new("GetPolicy(f)", "lambda:GetPolicy", "AccessDeniedException: not allowed");
        let checks = judge_function(&expected, function, &live, &Err(denied));
        let check = only_failure(&checks, "functions.http.invoke-permission");
        assert!(check.message.contains("GetPolicy(f) failed (AccessDeniedException"), "{}", check.message);
        assert!(check.fix.contains("lambda:GetPolicy"), "{}", check.fix);

        let check = absent_check(&expected, function, Absent::NotInStack);
        assert!(check.message.contains("the stack has no HttpFunction"), "{}", check.message);
    }

    #[test]
    fn a_deleted_function_is_recreated_with_its_role_in_the_stage_account() {
        let dev = Synthesized::dev();
        let expected = dev.expected();
        let function = &contract::functions::HTTP;
        let account = ArnParts::of(&healthy(&expected, &contract::functions::CONNECTION).function_arn);
        let role = role_arn(&expected, function, account.as_ref());
        assert_eq!(role, format!("arn:aws:iam::{ACCOUNT}:role/{}", physical_name(&naming::role("http"))));
        let check = absent_check(&expected, function, Absent::Deleted { physical: "gone", role: &role });
        assert!(check.message.contains("Lambda has no such function"), "{}", check.message);
        assert!(check.fix.contains(&format!("create-function --function-name gone --role {role} ")), "{}", check.fix);
        assert!(check.fix.contains("--region eu-west-1"), "{}", check.fix);
        assert!(role_arn(&expected, function, None).starts_with("arn:aws:iam::<account id>:role/"));
    }
}

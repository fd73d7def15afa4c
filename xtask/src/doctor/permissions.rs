//! Check group `permissions`: each function role's **live** policies grant every action the
//! contract says the function calls, on this stage's resources (its tables and their indexes,
//! its stream, this API's `@connections`), and no wildcard. One check per function,
//! `permissions.<name>`.
//!
//! The role is the one the live function runs as (`GetFunctionConfiguration`'s `Role`); its
//! policies are its inline ones (`ListRolePolicies`, `GetRolePolicy`) and the managed ones
//! attached to it (`ListAttachedRolePolicies`, `GetPolicy`, `GetPolicyVersion`).
//!
//! The judgment is the contract verifier's own: the live documents are laid over the
//! synthesized template as the role's policies ([`overlay`]) and [`stacks::verify()`] runs on the
//! result; only the findings the live documents add are reported. The verifier compares ARNs
//! as the template writes them (`${SessionsTable.Arn}`), so each live `Resource` is mapped back
//! to the template's references first ([`template_resources`]): a live ARN pattern stands for
//! every resource of the stack whose physical ARN it covers (IAM wildcards included), which
//! keeps `*`, wider patterns, another table or another API exactly as permissive as they are
//! live. A missing action says which handler call fails with AccessDenied and what clients
//! see; a wildcard is a warning (clients see nothing wrong).

use super::functions::{self, LiveFunction};
use super::{Check, Context};
use crate::doctor::live;
use crate::doctor::live::{ArnParts, Unreadable};
use contract::Function;
use serde_json::{Map, Value, json};
use stacks::template::{self, Resources, glob};
use stacks::{FindingKind, StageConfig, naming};
use std::collections::BTreeMap;

const GROUP: &str = "permissions";

/// One live policy of a role.
#[derive(Debug, Clone, PartialEq)]
struct LivePolicy {
    name: String,
    /// The managed policy's ARN; `None` for an inline policy.
    managed: Option<String>,
    /// The policy document, or why it could not be read as JSON.
    document: Result<Value, String>,
}

/// A function's live role and its policies.
#[derive(Debug, Clone, PartialEq)]
struct LiveRole {
    name: String,
    arn: String,
    policies: Vec<LivePolicy>,
}

/// The name of the role an ARN names (`arn:aws:iam::123:role/path/name` → `name`).
fn role_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// A policy document as IAM returns it: URL-encoded JSON (RFC 3986), or JSON.
fn decode_document(text: &str) -> Result<Value, String> {
    if let Ok(document) = serde_json::from_str(text) {
        return Ok(document);
    }
    let decoded = percent_decode(text).ok_or_else(|| "neither JSON nor URL-encoded JSON".to_owned())?;
    serde_json::from_str(&decoded).map_err(|error| format!("not a JSON policy document ({error})"))
}

/// `text` with every `%XX` decoded and `+` as a space; `None` when that is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%' {
            let hex = std::str::from_utf8(bytes.get(index + 1..index + 3)?).ok()?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(if byte == b'+' { b' ' } else { byte });
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// A failed IAM read: the call, the permission it needs, and the error.
fn iam_error(call: String, permission: &str, error: impl std::error::Error + Send + Sync + 'static) -> Unreadable {
    Unreadable::new(&call, permission, aws_sdk_iam::error::DisplayErrorContext(error))
}

/// Reads the role `arn` and its policies; `None` when IAM has no such role.
async fn read_role(client: &aws_sdk_iam::Client, arn: &str) -> Result<Option<LiveRole>, Unreadable> {
    let name = role_name(arn);
    let mut role = LiveRole { name: name.to_owned(), arn: arn.to_owned(), policies: Vec::new() };
    let mut inline = Vec::new();
    let mut marker = None;
    loop {
        let page = match client.list_role_policies().role_name(name).set_marker(marker).send().await {
            Ok(page) => page,
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_entity_exception()) => return Ok(None),
            Err(error) => return Err(iam_error(format!("ListRolePolicies({name})"), "iam:ListRolePolicies", error)),
        };
        inline.extend(page.policy_names);
        marker = page.marker.filter(|_| page.is_truncated);
        if marker.is_none() {
            break;
        }
    }
    for policy in inline {
        let output = client
            .get_role_policy()
            .role_name(name)
            .policy_name(&policy)
            .send()
            .await
            .map_err(|error| iam_error(format!("GetRolePolicy({name}, {policy})"), "iam:GetRolePolicy", error))?;
        role.policies.push(LivePolicy {
            name: policy,
            managed: None,
            document: decode_document(&output.policy_document),
        });
    }
    let mut marker = None;
    loop {
        let page =
            client.list_attached_role_policies().role_name(name).set_marker(marker).send().await.map_err(|error| {
                iam_error(format!("ListAttachedRolePolicies({name})"), "iam:ListAttachedRolePolicies", error)
            })?;
        for attached in page.attached_policies.unwrap_or_default() {
            let (Some(policy), Some(arn)) = (attached.policy_name, attached.policy_arn) else {
                continue;
            };
            let document = read_managed(client, &arn).await?;
            role.policies.push(LivePolicy { name: policy, managed: Some(arn), document });
        }
        marker = page.marker.filter(|_| page.is_truncated);
        if marker.is_none() {
            break;
        }
    }
    Ok(Some(role))
}

/// The default version's document of the managed policy `arn`.
async fn read_managed(client: &aws_sdk_iam::Client, arn: &str) -> Result<Result<Value, String>, Unreadable> {
    let policy = client
        .get_policy()
        .policy_arn(arn)
        .send()
        .await
        .map_err(|error| iam_error(format!("GetPolicy({arn})"), "iam:GetPolicy", error))?;
    let Some(version) = policy.policy.and_then(|policy| policy.default_version_id) else {
        return Ok(Err("IAM names no default version".to_owned()));
    };
    let output = client
        .get_policy_version()
        .policy_arn(arn)
        .version_id(&version)
        .send()
        .await
        .map_err(|error| iam_error(format!("GetPolicyVersion({arn}, {version})"), "iam:GetPolicyVersion", error))?;
    Ok(match output.policy_version.and_then(|version| version.document) {
        Some(document) => decode_document(&document),
        None => Err("IAM returned no document".to_owned()),
    })
}

/// Where the stage's resources live: what maps ARNs to template references and back.
#[derive(Debug, Clone)]
struct Stack<'a> {
    stage: &'a StageConfig,
    synthesized: &'a Value,
    /// Logical id → physical id, as the stack lists them.
    physical: &'a BTreeMap<String, String>,
    /// The live WebSocket API's id, when it was found.
    websocket_api: Option<String>,
    /// The partition, region and account the function lives in.
    arn: ArnParts,
}

/// A stage's methods on `@connections` that the handlers call (post, read, close).
const CONNECTIONS_METHODS: [&str; 3] = ["POST", "GET", "DELETE"];

impl Stack<'_> {
    /// The physical ARN of the template's resource `logical`, for the types policies name.
    fn arn_of(&self, logical: &str) -> Option<String> {
        let physical = self.physical.get(logical)?;
        let ArnParts { partition, region, account } = &self.arn;
        Some(match Resources::of(self.synthesized).type_of(logical)? {
            template::TABLE => format!("arn:{partition}:dynamodb:{region}:{account}:table/{physical}"),
            template::STREAM => format!("arn:{partition}:kinesis:{region}:{account}:stream/{physical}"),
            "AWS::Logs::LogGroup" => format!("arn:{partition}:logs:{region}:{account}:log-group:{physical}:*"),
            template::LAMBDA => format!("arn:{partition}:lambda:{region}:{account}:function:{physical}"),
            template::ROLE => self.arn.role(physical),
            _ => return None,
        })
    }

    /// The `@connections` ARNs of one connection of `api` on this stage, one per method.
    fn connections_arns(&self, api: &str) -> Vec<String> {
        let ArnParts { partition, region, account } = &self.arn;
        CONNECTIONS_METHODS
            .iter()
            .map(|method| {
                format!(
                    "arn:{partition}:execute-api:{region}:{account}:{api}/{}/{method}/@connections/doctorProbeId=",
                    self.stage.name
                )
            })
            .collect()
    }
}

/// The template's expressions a live `Resource` entry stands for: every resource of the stack
/// whose physical ARN it covers, written as the template writes it. `*` stays `*`; an entry
/// that covers none of them stays its own text (with `${` escaped, so it refers to nothing).
fn template_resources(entry: &str, stack: &Stack<'_>) -> Vec<Value> {
    if entry == "*" {
        return vec![json!("*")];
    }
    let resources = Resources::of(stack.synthesized);
    let mut found = Vec::new();
    for table in contract::CONTRACT.tables {
        let Some(arn) = stack.arn_of(table.logical_id) else {
            continue;
        };
        if glob(entry, &arn) {
            found.push(json!({"Fn::GetAtt": [table.logical_id, "Arn"]}));
        }
        let indexes: Vec<String> =
            table.global_indexes.iter().map(|index| format!("{arn}/index/{}", index.name)).collect();
        if !indexes.is_empty() && indexes.iter().all(|index| glob(entry, index)) {
            found.push(json!({"Fn::Sub": format!("${{{}.Arn}}/index/*", table.logical_id)}));
        }
    }
    for (stream, _) in resources.of_type(template::STREAM) {
        if stack.arn_of(stream).is_some_and(|arn| glob(entry, &arn)) {
            found.push(json!({"Fn::GetAtt": [stream, "Arn"]}));
        }
    }
    let api = match &stack.websocket_api {
        Some(api) => Some(api.clone()),
        // No live API to name: any API id of this account's ARNs stands for it.
        None => entry
            .strip_prefix(&format!(
                "arn:{}:execute-api:{}:{}:",
                stack.arn.partition, stack.arn.region, stack.arn.account
            ))
            .and_then(|rest| rest.split('/').next())
            .filter(|api| !api.is_empty() && !api.contains('*'))
            .map(str::to_owned),
    };
    if api.is_some_and(|api| stack.connections_arns(&api).iter().all(|arn| glob(entry, arn))) {
        found.push(json!({"Fn::Sub": format!(
            "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{{}}}/{}/*/@connections/*",
            naming::WEBSOCKET_API,
            stack.stage.name
        )}));
    }
    if found.is_empty() {
        found.push(json!({"Fn::Sub": entry.replace("${", "${!")}));
    }
    found
}

/// A live policy document with every `Resource`/`NotResource` entry mapped to the template's
/// expressions ([`template_resources`]).
fn template_document(document: &Value, stack: &Stack<'_>) -> Value {
    let mut document = document.clone();
    let statements: Vec<&mut Value> = match document.get_mut("Statement") {
        Some(Value::Array(items)) => items.iter_mut().collect(),
        Some(single @ Value::Object(_)) => vec![single],
        _ => Vec::new(),
    };
    for statement in statements {
        let Some(statement) = statement.as_object_mut() else {
            continue;
        };
        for field in ["Resource", "NotResource"] {
            if let Some(entries) = statement.get(field) {
                let mapped: Vec<Value> =
                    template::strings(entries).iter().flat_map(|entry| template_resources(entry, stack)).collect();
                statement.insert(field.to_owned(), Value::Array(mapped));
            }
        }
    }
    document
}

/// The template's role of `function` (what its `Role` refers to).
fn template_role(synthesized: &Value, function: &Function) -> Option<String> {
    let resources = Resources::of(synthesized);
    let properties = resources.properties(&naming::function(function.name));
    resources.referenced(Some(template::prop(properties, "Role")), template::ROLE).map(str::to_owned)
}

/// The synthesized template with the function's role holding exactly the live policies (mapped
/// to the template's references), and no other policy of the template attached to it.
fn overlay(stack: &Stack<'_>, function: &Function, role: &LiveRole) -> Option<Value> {
    let role_id = template_role(stack.synthesized, function)?;
    let policies: Vec<Value> = role
        .policies
        .iter()
        .filter_map(|policy| {
            let document = policy.document.as_ref().ok()?;
            Some(json!({"PolicyName": policy.name, "PolicyDocument": template_document(document, stack)}))
        })
        .collect();
    let mut overlaid = stack.synthesized.clone();
    let resources = overlaid.get_mut("Resources")?.as_object_mut()?;
    resources.retain(|_, resource| {
        let attaches = matches!(
            resource["Type"].as_str(),
            Some("AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" | "AWS::IAM::RolePolicy")
        );
        !(attaches && template::refers_to(&resource["Properties"], &role_id))
    });
    let properties = resources.get_mut(&role_id)?.get_mut("Properties")?.as_object_mut()?;
    properties.insert("Policies".to_owned(), Value::Array(policies));
    Some(overlaid)
}

/// The `permissions` check of one function's live role.
fn judge(stack: &Stack<'_>, function: &Function, role: &LiveRole) -> Check {
    let id = format!("permissions.{}", function.name);
    let names: Vec<String> = role
        .policies
        .iter()
        .map(|policy| match &policy.managed {
            Some(_) => format!("{} (managed)", policy.name),
            None => policy.name.clone(),
        })
        .collect();
    let described =
        format!("role {} ({})", role.name, if names.is_empty() { "no policies".to_owned() } else { names.join(", ") });
    let unreadable: Vec<(&str, String)> = role
        .policies
        .iter()
        .filter_map(|policy| {
            policy.document.as_ref().err().map(|error| (policy.name.as_str(), format!("{}: {error}", policy.name)))
        })
        .collect();
    if let Some((first, _)) = unreadable.first() {
        let unreadable: Vec<&str> = unreadable.iter().map(|(_, problem)| problem.as_str()).collect();
        return Check::fail(
            GROUP,
            id,
            format!(
                "{described}: cannot read {}, so what `{}` may do is unknown",
                unreadable.join("; "),
                function.name
            ),
            format!(
                "look at it (aws iam get-role-policy --role-name {} --policy-name {first}); to restore the contract's: {}",
                role.name,
                fix(stack, function, role)
            ),
        );
    }
    let Some(role_id) = template_role(stack.synthesized, function) else {
        return Check::skip(
            GROUP,
            id,
            format!("{described}: the template names no role of `{}` to judge it by", function.name),
        );
    };
    let Some(overlaid) = overlay(stack, function, role) else {
        return Check::skip(
            GROUP,
            id,
            format!("{described}: the template's role {role_id} cannot hold the live policies"),
        );
    };
    let before = stacks::verify(stack.synthesized, &contract::CONTRACT);
    let added: Vec<stacks::Finding> = stacks::verify(&overlaid, &contract::CONTRACT)
        .into_iter()
        .filter(|finding| !before.contains(finding))
        .filter(|finding| finding.logical_id == role_id)
        .filter(|finding| matches!(finding.kind, FindingKind::RoleMissingAction | FindingKind::RoleWildcard))
        .collect();
    let stack_role = stack.physical.get(&role_id);
    let other_role = stack_role.filter(|physical| physical.as_str() != role.name);
    if added.is_empty() {
        let actions: usize = function.permissions.iter().map(|permission| permission.actions.len()).sum();
        let grants = if actions == 0 {
            format!("`{}` calls no AWS action, and no wildcard is granted", function.name)
        } else {
            format!(
                "allows the {actions} actions `{}` calls, each on this stage's resource, and no wildcard",
                function.name
            )
        };
        return match other_role {
            None => Check::pass(GROUP, id, format!("{described} {grants}")),
            Some(physical) => Check::warn(
                GROUP,
                id,
                format!(
                    "{described} {grants}; but it is not the stack's role {physical}: the function was changed live"
                ),
                live::deploy_or_live(
                    stack.stage,
                    &format!(
                        "aws lambda update-function-configuration --function-name {} --role {} --region {}",
                        stack.physical.get(&naming::function(function.name)).map_or("FUNCTION", String::as_str),
                        stack.arn_of(&role_id).unwrap_or_default(),
                        stack.arn.region
                    ),
                ),
            ),
        };
    }
    let message: Vec<String> = added
        .iter()
        .map(|finding| match finding.kind {
            FindingKind::RoleWildcard => format!("{}: {}", policy_path(&finding.property, role), finding.consequence),
            _ => finding.consequence.clone(),
        })
        .collect();
    let message = format!("{described} {}", message.join("; "));
    if added.iter().any(|finding| finding.kind == FindingKind::RoleMissingAction) {
        Check::fail(GROUP, id, message, fix(stack, function, role))
    } else {
        Check::warn(GROUP, id, message, fix(stack, function, role))
    }
}

/// A verifier path inside the overlaid role (`Policies[1].PolicyDocument.Statement[0].Action`)
/// named by the live policy (`policy P, Statement[0].Action`).
fn policy_path(property: &str, role: &LiveRole) -> String {
    let readable: Vec<&LivePolicy> = role.policies.iter().filter(|policy| policy.document.is_ok()).collect();
    let parsed = property.strip_prefix("Policies[").and_then(|rest| rest.split_once("].PolicyDocument."));
    match parsed.and_then(|(index, rest)| Some((readable.get(index.parse::<usize>().ok()?)?, rest))) {
        Some((policy, rest)) => format!("policy {}, {rest}", policy.name),
        None => property.to_owned(),
    }
}

/// The fix: a deploy, or putting back the template's policies with this stack's ARNs.
fn fix(stack: &Stack<'_>, function: &Function, role: &LiveRole) -> String {
    let Some(role_id) = template_role(stack.synthesized, function) else {
        return live::deploy_command(stack.stage);
    };
    let declared = &stack.synthesized["Resources"][role_id.as_str()]["Properties"]["Policies"];
    let commands: Option<Vec<String>> = declared
        .as_array()
        .map(|policies| {
            policies
                .iter()
                .map(|policy| {
                    let name = policy["PolicyName"].as_str()?;
                    let document = resolve(&policy["PolicyDocument"], stack)?;
                    Some(format!(
                        "aws iam put-role-policy --role-name {} --policy-name {name} --policy-document '{}'",
                        role.name,
                        document.to_string().replace('\'', "'\\''")
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    match commands {
        Some(commands) if !commands.is_empty() => live::deploy_or_live(stack.stage, &commands.join(" && ")),
        _ => live::deploy_command(stack.stage),
    }
}

/// The template expression `value` with every reference replaced by this stack's physical
/// value; `None` when one cannot be.
fn resolve(value: &Value, stack: &Stack<'_>) -> Option<Value> {
    match value {
        Value::Array(items) => {
            items.iter().map(|item| resolve(item, stack)).collect::<Option<Vec<_>>>().map(Value::Array)
        }
        Value::Object(map) => {
            if let Some((function, argument)) = single_entry(map) {
                match function {
                    "Ref" => return reference(stack, argument.as_str()?, None).map(Value::String),
                    "Fn::GetAtt" => {
                        let (id, attribute) = match argument {
                            Value::String(text) => text.split_once('.')?,
                            Value::Array(parts) => (parts.first()?.as_str()?, parts.get(1)?.as_str()?),
                            _ => return None,
                        };
                        return reference(stack, id, Some(attribute)).map(Value::String);
                    }
                    "Fn::Sub" => return substitute(argument, stack).map(Value::String),
                    "Fn::Join" => {
                        let separator = argument.get(0)?.as_str()?;
                        let parts: Option<Vec<String>> = argument
                            .get(1)?
                            .as_array()?
                            .iter()
                            .map(|part| resolve(part, stack).and_then(|part| part.as_str().map(str::to_owned)))
                            .collect();
                        return Some(Value::String(parts?.join(separator)));
                    }
                    _ => {}
                }
            }
            map.iter()
                .map(|(key, item)| Some((key.clone(), resolve(item, stack)?)))
                .collect::<Option<Map<String, Value>>>()
                .map(Value::Object)
        }
        other => Some(other.clone()),
    }
}

/// The one key and value of `map` (an intrinsic function such as `{"Ref": ...}`), if it has
/// exactly one.
fn single_entry(map: &Map<String, Value>) -> Option<(&str, &Value)> {
    let mut entries = map.iter();
    let (key, value) = entries.next()?;
    entries.next().is_none().then_some((key.as_str(), value))
}

/// The physical value of a reference (`Ref` when `attribute` is `None`, `Fn::GetAtt` else).
fn reference(stack: &Stack<'_>, id: &str, attribute: Option<&str>) -> Option<String> {
    let ArnParts { partition, region, account } = &stack.arn;
    match (id, attribute) {
        ("AWS::Partition", None) => Some(partition.clone()),
        ("AWS::Region", None) => Some(region.clone()),
        ("AWS::AccountId", None) => Some(account.clone()),
        ("AWS::URLSuffix", None) => Some(live::url_suffix(region).to_owned()),
        (naming::WEBSOCKET_API, None) => stack.websocket_api.clone(),
        (id, None) => stack.physical.get(id).cloned(),
        (id, Some("Arn")) => stack.arn_of(id),
        _ => None,
    }
}

/// `Fn::Sub`'s text with every `${...}` replaced.
fn substitute(argument: &Value, stack: &Stack<'_>) -> Option<String> {
    let (text, variables) = match argument {
        Value::String(text) => (text.as_str(), None),
        Value::Array(parts) => (parts.first()?.as_str()?, parts.get(1).and_then(Value::as_object)),
        _ => return None,
    };
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}')?;
        let name = &after[..end];
        if let Some(literal) = name.strip_prefix('!') {
            out.push_str(&format!("${{{literal}}}"));
        } else if let Some(value) = variables.and_then(|variables| variables.get(name)) {
            out.push_str(resolve(value, stack)?.as_str()?);
        } else {
            let (id, attribute) = match name.split_once('.') {
                Some((id, attribute)) => (id, Some(attribute)),
                None => (name, None),
            };
            out.push_str(&reference(stack, id, attribute)?);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// The `permissions` checks of the live stage.
pub(super) async fn checks(context: &Context) -> Vec<Check> {
    let lambda = aws_sdk_lambda::Client::new(&context.sdk);
    let iam = aws_sdk_iam::Client::new(&context.sdk);
    let physical = context.stack.as_ref().map(|stack| stack.resources.clone()).unwrap_or_default();
    let mut unlisted = None;
    let websocket_api = match (context.physical(naming::WEBSOCKET_API), &context.websocket) {
        (Some(id), _) => Some(id.to_owned()),
        (None, Ok(api)) => api.as_ref().map(|api| api.id.clone()),
        (None, Err(error)) => {
            // @connections grants are then judged without the API's id, and the checks say so.
            unlisted = Some(format!(
                " (GetApis failed, {error}: @connections grants were not tied to the API's id; the doctor's \
                 credentials need apigateway:GET)"
            ));
            None
        }
    };
    let mut checks = Vec::new();
    for function in functions::deployed(&context.stage) {
        let id = format!("permissions.{}", function.name);
        let Some(name) = physical.get(&naming::function(function.name)) else {
            checks.push(Check::skip(GROUP, id, format!("not deployed (see functions.{}.state)", function.name)));
            continue;
        };
        let live: LiveFunction = match functions::read_function(&lambda, name).await {
            Ok(Some(live)) => live,
            Ok(None) => {
                checks.push(Check::skip(
                    GROUP,
                    id,
                    format!("{name} does not exist (see functions.{}.state)", function.name),
                ));
                continue;
            }
            Err(unreadable) => {
                checks.push(unreadable.check(GROUP, id, &format!("the role of {name}")));
                continue;
            }
        };
        let Some(arn) = ArnParts::of(&live.function_arn) else {
            checks.push(Check::skip(GROUP, id, format!("{name}: its ARN {:?} names no account", live.function_arn)));
            continue;
        };
        let stack = Stack {
            stage: &context.stage,
            synthesized: &context.synthesized,
            physical: &physical,
            websocket_api: websocket_api.clone(),
            arn,
        };
        match read_role(&iam, &live.role).await {
            Ok(Some(role)) => {
                let mut check = judge(&stack, function, &role);
                check.message.push_str(unlisted.as_deref().unwrap_or_default());
                checks.push(check);
            }
            Ok(None) => checks.push(Check::fail(
                GROUP,
                id,
                format!(
                    "{name} runs as the role {}, which does not exist: Lambda cannot assume it and every invocation \
                     fails, so {}",
                    live.role,
                    stacks::verify::outage(&contract::CONTRACT, function)
                ),
                live::deploy_or_live(
                    stack.stage,
                    &format!(
                        "point it at the stack's role: aws lambda update-function-configuration --function-name {name} \
                     --role {} --region {}",
                        template_role(&context.synthesized, function)
                            .and_then(|role| stack.arn_of(&role))
                            .unwrap_or_else(|| "ROLE_ARN".to_owned()),
                        stack.arn.region
                    ),
                ),
            )),
            Err(unreadable) => checks.push(unreadable.check(GROUP, id, &format!("the policies of {}", live.role))),
        }
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    const ACCOUNT: &str = "123456789012";
    const API: &str = "a1b2c3d4e5";

    fn physical_name(logical: &str) -> String {
        format!("session-service-dev-{logical}-ABC123")
    }

    struct Fixture {
        stage: StageConfig,
        synthesized: Value,
        physical: BTreeMap<String, String>,
    }

    impl Fixture {
        fn dev() -> Fixture {
            let stage = stacks::stages::dev();
            let synthesized = stacks::synthesize(&contract::CONTRACT, &stage).expect("synthesizes").to_value();
            let physical = synthesized["Resources"]
                .as_object()
                .expect("resources")
                .keys()
                .map(|logical| (logical.clone(), physical_name(logical)))
                .collect();
            Fixture { stage, synthesized, physical }
        }

        fn stack(&self) -> Stack<'_> {
            Stack {
                stage: &self.stage,
                synthesized: &self.synthesized,
                physical: &self.physical,
                websocket_api: Some(API.into()),
                arn: ArnParts { partition: "aws".into(), region: "eu-west-1".into(), account: ACCOUNT.into() },
            }
        }
    }

    /// The live role a deployment of the template leaves: its inline policy with physical ARNs,
    /// as `GetRolePolicy` returns it (URL-encoded).
    fn healthy(fixture: &Fixture, function: &Function) -> LiveRole {
        let stack = fixture.stack();
        let role_id = template_role(&fixture.synthesized, function).expect("role");
        let declared = &fixture.synthesized["Resources"][role_id.as_str()]["Properties"]["Policies"][0];
        let document = resolve(&declared["PolicyDocument"], &stack).expect("resolves");
        let encoded: String = document
            .to_string()
            .bytes()
            .map(|byte| match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                    (byte as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect();
        LiveRole {
            name: physical_name(&role_id),
            arn: format!("arn:aws:iam::{ACCOUNT}:role/{}", physical_name(&role_id)),
            policies: vec![LivePolicy {
                name: declared["PolicyName"].as_str().expect("name").to_owned(),
                managed: None,
                document: decode_document(&encoded),
            }],
        }
    }

    fn statements_mut(role: &mut LiveRole) -> &mut Vec<Value> {
        role.policies[0].document.as_mut().expect("document")["Statement"].as_array_mut().expect("statements")
    }

    #[test]
    fn every_role_as_deployed_passes() {
        let fixture = Fixture::dev();
        for function in functions::deployed(&fixture.stage) {
            let check = judge(&fixture.stack(), function, &healthy(&fixture, function));
            assert_eq!(check.status, Status::Pass, "{check:#?}");
            assert!(check.message.contains("-contract"), "{}", check.message);
        }
    }

    #[test]
    fn a_missing_action_names_the_call_that_fails_and_the_fix_restores_the_policy() {
        let fixture = Fixture::dev();
        let function = &contract::functions::MESSAGES;
        let mut role = healthy(&fixture, function);
        for statement in statements_mut(&mut role) {
            if let Some(actions) = statement["Action"].as_array_mut() {
                actions.retain(|action| action != "dynamodb:Query");
            }
        }
        let check = judge(&fixture.stack(), function, &role);
        assert_eq!(check.status, Status::Fail, "{check:#?}");
        assert!(
            check.message.contains("does not allow dynamodb:Query on the indexes of ConnectionsTable"),
            "{}",
            check.message
        );
        assert!(check.message.contains("listeners never receive broadcasts"), "{}", check.message);
        assert!(check.fix.contains("aws iam put-role-policy --role-name session-service-dev-MessagesRole-ABC123"));
        assert!(check.fix.contains("--policy-name messages-contract"), "{}", check.fix);
        assert!(
            check.fix.contains(&format!(
                "arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/{}/index/*",
                physical_name("ConnectionsTable")
            )),
            "{}",
            check.fix
        );
    }

    #[test]
    fn another_table_another_api_or_stage_are_not_grants_but_wider_patterns_are() {
        let fixture = Fixture::dev();
        let function = &contract::functions::CONNECTION;
        let rewrite = |from: &str, to: &str| {
            let mut role = healthy(&fixture, function);
            let document = role.policies[0].document.as_ref().expect("document").to_string().replace(from, to);
            role.policies[0].document = Ok(serde_json::from_str(&document).expect("JSON"));
            judge(&fixture.stack(), function, &role)
        };
        let other_table = rewrite(&physical_name("SessionsTable"), "session-service-prod-SessionsTable-X");
        assert_eq!(other_table.status, Status::Fail);
        assert!(other_table.message.contains("on SessionsTable"), "{}", other_table.message);
        let other_api = rewrite(&format!("{API}/dev/"), "zzzzzzzzzz/dev/");
        assert_eq!(other_api.status, Status::Fail);
        assert!(other_api.message.contains("@connections"), "{}", other_api.message);
        assert_eq!(rewrite(&format!("{API}/dev/"), &format!("{API}/prod/")).status, Status::Fail);

        let wider = rewrite(&physical_name("SessionsTable"), "session-service-dev-*");
        assert_eq!(wider.status, Status::Pass, "{wider:#?}");
        let any_api = rewrite(&format!("{API}/dev/*/@connections/*"), "*/dev/*");
        assert_eq!(any_api.status, Status::Pass, "{any_api:#?}");
    }

    #[test]
    fn a_wildcard_is_a_warning_and_a_deny_a_failure() {
        let fixture = Fixture::dev();
        let function = &contract::functions::HTTP;
        let mut role = healthy(&fixture, function);
        statements_mut(&mut role).push(json!({"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}));
        let check = judge(&fixture.stack(), function, &role);
        assert_eq!(check.status, Status::Warn, "{check:#?}");
        assert!(
            check.message.contains("policy http-contract, Statement[6].Action: allows dynamodb:*"),
            "{}",
            check.message
        );

        let mut role = healthy(&fixture, function);
        let table = format!("arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/{}", physical_name("RateLimitsTable"));
        statements_mut(&mut role).push(json!({"Effect": "Deny", "Action": "dynamodb:UpdateItem", "Resource": table}));
        let check = judge(&fixture.stack(), function, &role);
        assert_eq!(check.status, Status::Fail, "{check:#?}");
        assert!(check.message.contains("dynamodb:UpdateItem on RateLimitsTable"), "{}", check.message);
    }

    #[test]
    fn a_managed_policy_counts_and_an_unreadable_document_fails() {
        let fixture = Fixture::dev();
        let function = &contract::functions::MESSAGES;
        let mut role = healthy(&fixture, function);
        let inline = role.policies.remove(0);
        role.policies.push(LivePolicy {
            name: "MessagesAccess".into(),
            managed: Some("arn:aws:iam::1:policy/x".into()),
            ..inline
        });
        assert_eq!(judge(&fixture.stack(), function, &role).status, Status::Pass);

        role.policies[0].document = decode_document("{'Statement': []}");
        let check = judge(&fixture.stack(), function, &role);
        assert_eq!(check.status, Status::Fail, "{check:#?}");
        assert!(check.message.contains("cannot read MessagesAccess"), "{}", check.message);
    }

    #[test]
    fn documents_decode_from_json_and_from_url_encoding() {
        assert_eq!(decode_document("%7B%22a%22%3A%5B1%5D%7D"), Ok(json!({"a": [1]})));
        assert_eq!(decode_document("{\"a\": 1}"), Ok(json!({"a": 1})));
        assert!(decode_document("%ZZ").is_err());
        assert!(decode_document("%7").is_err());
        assert_eq!(role_name("arn:aws:iam::1:role/service/path/the-role"), "the-role");
    }
}

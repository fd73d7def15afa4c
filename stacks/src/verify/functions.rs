//! The functions: present, configured with every variable they read, and allowed every action
//! they call on the resource they call it on.

use super::template::{self, LAMBDA, ROLE, STREAM, glob, glob_ignore_case, prop, refers_to};
use super::{FindingKind, Report, View};
use crate::naming;
use contract::{EnvSource, EnvVar, Function, Permission, Resource, TableSchema, env};
use serde_json::Value;

/// The `Effect`s of IAM statements the verifier reads.
const ALLOW: &str = "Allow";
const DENY: &str = "Deny";

/// Policy resources that attach statements to a role they refer to.
const ATTACHED_POLICIES: [(&str, &str); 3] =
    [("AWS::IAM::Policy", "Roles"), ("AWS::IAM::ManagedPolicy", "Roles"), ("AWS::IAM::RolePolicy", "RoleName")];

pub(super) fn check(view: &View<'_>, connect_authorizers: &[String], report: &mut Report) {
    for function in view.contract.functions {
        let id = naming::function(function.name);
        match view.resources.type_of(&id) {
            Some(LAMBDA) => {
                let properties = view.resources.properties(&id);
                check_environment(view, function, &id, properties, report);
                check_role(view, function, &id, properties, report);
            }
            Some(other) => report.add(
                FindingKind::FunctionMissing,
                &id,
                "Type",
                format!("is a {other}, not the Lambda function `{}`: {}", function.name, view.outage(function)),
            ),
            None if is_required(view, function, connect_authorizers) => report.add(
                FindingKind::FunctionMissing,
                &id,
                "Type",
                format!("the template has no Lambda function `{}`: {}", function.name, view.outage(function)),
            ),
            None => {}
        }
    }
}

/// Every function is required but the authorizer's on a stage without it (`CONNECT_AUTH=self`,
/// or, when that is unknown, no authorizer on `$connect`).
fn is_required(view: &View<'_>, function: &Function, connect_authorizers: &[String]) -> bool {
    if view.authorizer_function() != Some(function.name) {
        return true;
    }
    match view.connect_auth.as_deref() {
        Some("self") => false,
        Some(_) => true,
        None => !connect_authorizers.is_empty(),
    }
}

fn check_environment(view: &View<'_>, function: &Function, id: &str, properties: &Value, report: &mut Report) {
    let variables = prop(prop(properties, "Environment"), "Variables").as_object();
    for var in function.environment {
        let property = format!("Environment.Variables.{}", var.name);
        match variables.and_then(|variables| variables.get(var.name)) {
            None => report.add(
                FindingKind::EnvironmentMissing,
                id,
                property,
                format!(
                    "`{}` reads {} and it is not set: its cold start fails, so {}",
                    function.name,
                    var.name,
                    view.outage(function)
                ),
            ),
            Some(value) => check_value(view, function, var, value, id, property, report),
        }
    }
}

fn check_value(
    view: &View<'_>,
    function: &Function,
    var: &EnvVar,
    value: &Value,
    id: &str,
    property: String,
    report: &mut Report,
) {
    let text = template::render(value);
    let shown = text.clone().unwrap_or_else(|| value.to_string());
    let references = template::references(value);
    match var.source {
        EnvSource::TableName(table) => {
            let Some(schema) = table_schema(view, table) else {
                return;
            };
            if !references.is_empty() && !references.iter().any(|reference| reference.id == schema.logical_id) {
                report.add(
                    FindingKind::EnvironmentValue,
                    id,
                    property,
                    format!(
                        "is {shown}, not the {} table: `{}` reads and writes the wrong table, and requests fail or \
                         see other data",
                        schema.logical_id, function.name
                    ),
                );
            }
        }
        EnvSource::StreamName(_) => {
            if !references.is_empty() && !references.iter().any(|reference| view.resources.is(&reference.id, STREAM)) {
                report.add(
                    FindingKind::EnvironmentValue,
                    id,
                    property,
                    format!("is {shown}, not a Kinesis stream of this template: speakers' audio is never stored"),
                );
            }
        }
        EnvSource::ManagementEndpoint => {
            if !text.as_deref().is_some_and(|text| text.starts_with("https://")) {
                report.add(
                    FindingKind::ManagementEndpointNotHttps,
                    id,
                    property,
                    format!(
                        "is {shown}, not an https:// URL: `{}` cannot post through @connections, so replies and \
                         fan-out fail; clients never hear back (AWS_FACTS 8)",
                        function.name
                    ),
                );
            }
        }
        EnvSource::StageSetting(env::CONNECT_AUTH) => {
            if !matches!(text.as_deref(), Some("authorizer" | "self")) {
                report.add(
                    FindingKind::EnvironmentValue,
                    id,
                    property,
                    format!(
                        "is {shown}, neither \"authorizer\" nor \"self\": the cold start of `{}` fails, so {}",
                        function.name,
                        view.outage(function)
                    ),
                );
            }
        }
        EnvSource::StageSetting(_) => {}
    }
}

fn table_schema(view: &View<'_>, id: contract::TableId) -> Option<&'static TableSchema> {
    view.contract.tables.iter().find(|table| table.id == id)
}

/// One IAM statement that applies to a role, and where it is written.
#[derive(Debug)]
struct Statement<'a> {
    /// The resource that holds it (the role, or a policy attached to it).
    owner: &'a str,
    /// Its path inside that resource.
    path: String,
    effect: Option<&'a str>,
    /// `Action`, or `NotAction` when `negated_action`.
    actions: Vec<String>,
    negated_action: bool,
    /// `Resource`, or `NotResource` when `negated_resource`.
    resources: Vec<&'a Value>,
    negated_resource: bool,
}

impl Statement<'_> {
    fn matches_action(&self, action: &str) -> bool {
        let listed = self.actions.iter().any(|pattern| glob_ignore_case(pattern, action));
        listed != self.negated_action
    }

    fn covers(&self, view: &View<'_>, target: Resource) -> bool {
        let listed = self.resources.iter().any(|resource| covers(view, resource, target));
        listed != self.negated_resource
    }

    /// Whether the statement applies to `action` on `target` with this effect.
    fn applies(&self, view: &View<'_>, effect: &str, action: &str, target: Resource) -> bool {
        self.effect == Some(effect) && self.matches_action(action) && self.covers(view, target)
    }
}

fn check_role(view: &View<'_>, function: &Function, id: &str, properties: &Value, report: &mut Report) {
    let Some(role) = view.resources.referenced(Some(prop(properties, "Role")), ROLE) else {
        if !function.permissions.is_empty() {
            report.add(
                FindingKind::RoleMissingAction,
                id,
                "Role",
                format!(
                    "is not a role of this template, so `{}` cannot be shown to be allowed {}: any missing one \
                     fails at run time with AccessDenied",
                    function.name,
                    all_actions(function).join(", ")
                ),
            );
        }
        return;
    };
    let statements = statements(view, role);
    check_wildcards(function, &statements, report);
    for permission in function.permissions {
        let missing: Vec<&str> = permission
            .actions
            .iter()
            .copied()
            .filter(|action| !is_allowed(view, &statements, action, permission.resource))
            .collect();
        if !missing.is_empty() {
            report.add(
                FindingKind::RoleMissingAction,
                role,
                "Policies",
                format!(
                    "does not allow {} on {}: {}",
                    missing.join(", "),
                    describe_resource(view, permission.resource),
                    denied_consequence(view, function, permission)
                ),
            );
        }
    }
}

fn all_actions(function: &Function) -> Vec<&'static str> {
    function.permissions.iter().flat_map(|permission| permission.actions.iter().copied()).collect()
}

/// Allowed by some statement and denied by none.
fn is_allowed(view: &View<'_>, statements: &[Statement<'_>], action: &str, target: Resource) -> bool {
    statements.iter().any(|statement| statement.applies(view, ALLOW, action, target))
        && !statements.iter().any(|statement| statement.applies(view, DENY, action, target))
}

/// The role's inline policies, then the policies of the template attached to it.
fn statements<'a>(view: &View<'a>, role: &'a str) -> Vec<Statement<'a>> {
    let mut found = Vec::new();
    let policies = prop(view.resources.properties(role), "Policies");
    for (index, policy) in policies.as_array().into_iter().flatten().enumerate() {
        let document = prop(policy, "PolicyDocument");
        read_statements(role, &format!("Policies[{index}].PolicyDocument"), document, &mut found);
    }
    for (kind, roles) in ATTACHED_POLICIES {
        for (policy, properties) in view.resources.of_type(kind) {
            if refers_to(prop(properties, roles), role) {
                read_statements(policy, "PolicyDocument", prop(properties, "PolicyDocument"), &mut found);
            }
        }
    }
    found
}

fn read_statements<'a>(owner: &'a str, path: &str, document: &'a Value, found: &mut Vec<Statement<'a>>) {
    let statement = prop(document, "Statement");
    let listed: Vec<(String, &Value)> = match statement {
        Value::Array(items) => {
            items.iter().enumerate().map(|(index, item)| (format!("{path}.Statement[{index}]"), item)).collect()
        }
        Value::Object(_) => vec![(format!("{path}.Statement"), statement)],
        _ => Vec::new(),
    };
    for (path, statement) in listed {
        let negated_action = statement.get("Action").is_none() && statement.get("NotAction").is_some();
        let negated_resource = statement.get("Resource").is_none() && statement.get("NotResource").is_some();
        let actions = prop(statement, if negated_action { "NotAction" } else { "Action" });
        let resources = prop(statement, if negated_resource { "NotResource" } else { "Resource" });
        found.push(Statement {
            owner,
            path,
            effect: prop(statement, "Effect").as_str(),
            actions: template::strings(actions),
            negated_action,
            resources: match resources {
                Value::Array(items) => items.iter().collect(),
                Value::Null => Vec::new(),
                single => vec![single],
            },
            negated_resource,
        });
    }
}

/// An allowed action of a whole service (`*`, `service:*`, or `NotAction`), or an allowed
/// resource `*` (or `NotResource`).
fn check_wildcards(function: &Function, statements: &[Statement<'_>], report: &mut Report) {
    for statement in statements.iter().filter(|statement| statement.effect == Some(ALLOW)) {
        let broad_action = statement.actions.iter().find(|action| *action == "*" || action.ends_with(":*"));
        if statement.negated_action || broad_action.is_some() {
            let (field, granted) = if statement.negated_action {
                ("NotAction", "every action but the listed ones".to_owned())
            } else {
                ("Action", broad_action.cloned().unwrap_or_default())
            };
            report.add(
                FindingKind::RoleWildcard,
                statement.owner,
                format!("{}.{field}", statement.path),
                format!(
                    "allows {granted}: a bug or a leaked credential in `{}` can do far more than the {} actions the \
                     code calls",
                    function.name,
                    all_actions(function).len()
                ),
            );
        }
        let any_resource = statement.resources.iter().any(|resource| resource.as_str() == Some("*"));
        if statement.negated_resource || any_resource {
            let field = if statement.negated_resource { "NotResource" } else { "Resource" };
            report.add(
                FindingKind::RoleWildcard,
                statement.owner,
                format!("{}.{field}", statement.path),
                format!(
                    "allows its actions on every resource: a bug or a leaked credential in `{}` reaches other \
                     tables, streams and APIs of the account",
                    function.name
                ),
            );
        }
    }
}

/// Whether one `Resource` entry of a statement covers a contract resource. ARNs are compared
/// as `Fn::Sub` text (`${SessionsTable.Arn}`), with IAM wildcards; `@connections` is compared
/// structurally (the WebSocket API's id and the `@connections` marker, any stage).
fn covers(view: &View<'_>, resource: &Value, target: Resource) -> bool {
    let Some(text) = template::render(resource) else {
        return false;
    };
    if text == "*" {
        return true;
    }
    match target {
        Resource::Table(table) => {
            table_schema(view, table).is_some_and(|schema| glob(&text, &format!("${{{}.Arn}}", schema.logical_id)))
        }
        Resource::TableIndexes(table) => table_schema(view, table).is_some_and(|schema| {
            let names: Vec<&str> = if schema.global_indexes.is_empty() {
                vec!["*"]
            } else {
                schema.global_indexes.iter().map(|index| index.name).collect()
            };
            names.iter().all(|name| glob(&text, &format!("${{{}.Arn}}/index/{name}", schema.logical_id)))
        }),
        Resource::Stream(_) => {
            view.resources.of_type(STREAM).any(|(stream, _)| glob(&text, &format!("${{{stream}.Arn}}")))
        }
        Resource::Connections => websocket_apis(view)
            .iter()
            .any(|api| refers_to(resource, api) && (text.contains("@connections") || whole_api(&text, api))),
    }
}

fn websocket_apis<'a>(view: &View<'a>) -> Vec<&'a str> {
    view.resources
        .of_type(template::API)
        .filter(|(_, properties)| prop(properties, "ProtocolType").as_str() == Some("WEBSOCKET"))
        .map(|(id, _)| id)
        .collect()
}

/// `...${Api}/*` or `...${Api}*`: every stage, method and path of the API.
fn whole_api(text: &str, api: &str) -> bool {
    [format!("${{{api}}}"), format!("${{{api}.ApiId}}")]
        .iter()
        .filter_map(|marker| text.find(marker.as_str()).map(|start| &text[start + marker.len()..]))
        .any(|rest| rest == "/*" || rest == "*")
}

fn describe_resource(view: &View<'_>, target: Resource) -> String {
    match target {
        Resource::Table(table) => table_schema(view, table).map_or(format!("{table:?}"), |s| s.logical_id.to_owned()),
        Resource::TableIndexes(table) => {
            table_schema(view, table).map_or(format!("{table:?}"), |s| format!("the indexes of {}", s.logical_id))
        }
        Resource::Stream(stream) => format!("the {stream:?} stream"),
        Resource::Connections => "the WebSocket API's @connections".to_owned(),
    }
}

/// What users see when `function` is denied `permission`.
fn denied_consequence(view: &View<'_>, function: &Function, permission: &Permission) -> String {
    match permission.resource {
        Resource::Table(table) => format!(
            "`{}` gets AccessDenied on {}: every client request that reads or writes it fails",
            function.name,
            describe_resource(view, Resource::Table(table))
        ),
        Resource::TableIndexes(table) => match table_schema(view, table) {
            Some(schema) if schema.global_indexes.iter().any(|index| index.name == FAN_OUT_INDEX) => format!(
                "the fan-out query on index {FAN_OUT_INDEX} fails with AccessDenied: listeners never receive \
                 broadcasts"
            ),
            _ => "the store's index queries fail with AccessDenied".to_owned(),
        },
        Resource::Stream(_) => {
            "speakers' audio chunks are refused with AccessDenied: sendAudio fails and listeners hear nothing"
                .to_owned()
        }
        Resource::Connections => "replies and fan-out fail with AccessDenied; clients never hear back".to_owned(),
    }
}

/// The index the fan-out queries.
const FAN_OUT_INDEX: &str = contract::tables::connections::BY_SESSION_INDEX;

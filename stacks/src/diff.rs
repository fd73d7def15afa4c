//! What a release would change: a deployed template against a synthesized one, resource by
//! resource and property by property, with what a release owner must look at called out.
//!
//! - **Security-relevant** changes: IAM roles and policies (a statement or action added is a
//!   broadening), Lambda invoke permissions, authorizers (identity sources above all), and
//!   route authorization: a route added without authorization (`AuthorizationType` `NONE` or
//!   absent), a route removed (an authenticated one, or one whose function may check callers
//!   itself), a route's `AuthorizationType` or `AuthorizerId` changed, and an unauthenticated
//!   route's `RouteKey` changed (the same unauthenticated route now answers another key).
//! - **Replacement** of every resource, decided by [`crate::replacement`] from the
//!   CloudFormation registry's create-only properties (and DynamoDB's documented rules), and
//!   carried on to the resources that refer to a replaced one: those appear as "may change"
//!   (or "may be replaced", when the referring property is create-only) even when their own
//!   template did not change. Updates CloudFormation would reject (a table's global secondary
//!   indexes) are named.
//! - **Stateful replacements**: a table or stream whose change replaces it loses its data,
//!   unless its `UpdateReplacePolicy` is `Retain` (what CloudFormation does with the old
//!   physical resource on replacement), in which case the old one is orphaned and the new one
//!   starts empty. One removed from the template is judged by its `DeletionPolicy` instead.
//!
//! The diff reads templates as JSON only; contract findings on either side come from
//! [`crate::verify`], and talking to AWS is the caller's business.

use crate::replacement;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// How a resource changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeKind {
    Added,
    Removed,
    Modified,
    /// Its template is the same, but it refers to a resource that is replaced: a value it
    /// reads (an id, an ARN, a URL) changes.
    MayChange,
}

/// One property that differs; `None` is absent on that side.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyChange {
    /// Dotted path inside the resource, e.g. `Properties.IdentitySource`.
    pub path: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// Whether a change replaces the resource (a new physical resource, the old one deleted or,
/// with `UpdateReplacePolicy: Retain`, orphaned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Replacement {
    /// Updated in place (or added, or removed).
    Never,
    /// Replaced depending on values known only at deploy time, or on the resource's state.
    Conditional,
    /// Replaced.
    Always,
}

/// One resource that differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceChange {
    pub logical_id: String,
    pub resource_type: String,
    pub kind: ChangeKind,
    /// Whether the change replaces the resource.
    pub replacement: Replacement,
    /// What decides `replacement`: property paths, or the replaced resource this one refers to.
    pub replacement_because: Vec<String>,
    pub properties: Vec<PropertyChange>,
    /// Why this change matters for security, if it does.
    pub security: Vec<String>,
    /// Set when the change replaces or removes a stateful resource.
    pub data_loss: Option<String>,
    /// Set when CloudFormation would reject the update, with how to split it into releases.
    pub rejected: Option<String>,
    /// What else the change means (a replaced API's new URL).
    pub notes: Vec<String>,
}

/// Everything that differs between two templates.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateDiff {
    pub resources: Vec<ResourceChange>,
    /// Parameters and outputs that differ, as property changes (`Parameters.X`, `Outputs.Y`).
    pub other: Vec<PropertyChange>,
}

impl TemplateDiff {
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty() && self.other.is_empty()
    }

    /// The changes that are security-relevant.
    pub fn security(&self) -> impl Iterator<Item = &ResourceChange> {
        self.resources.iter().filter(|change| !change.security.is_empty())
    }

    /// The changes that lose or orphan data.
    pub fn data_loss(&self) -> impl Iterator<Item = &ResourceChange> {
        self.resources.iter().filter(|change| change.data_loss.is_some())
    }

    /// The changes CloudFormation would reject.
    pub fn rejected(&self) -> impl Iterator<Item = &ResourceChange> {
        self.resources.iter().filter(|change| change.rejected.is_some())
    }
}

/// Resource types whose data dies with them.
pub const STATEFUL: &[&str] = &["AWS::DynamoDB::Table", "AWS::Kinesis::Stream"];

/// Why a change to this type or path is security-relevant, if it is.
fn security_reason(resource_type: &str, path: &str) -> Option<&'static str> {
    match resource_type {
        "AWS::IAM::Role" | "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" | "AWS::IAM::RolePolicy" => {
            Some("IAM permissions change")
        }
        "AWS::Lambda::Permission" => Some("who may invoke a function changes"),
        "AWS::ApiGatewayV2::Authorizer" if path.contains("IdentitySource") => {
            Some("an authorizer's identity source changes (a required source refuses clients that lack it with 401)")
        }
        "AWS::ApiGatewayV2::Authorizer" => Some("an authorizer changes"),
        _ => None,
    }
}

const ROUTE: &str = "AWS::ApiGatewayV2::Route";

/// A route's `AuthorizationType`; absent is `NONE` (CloudFormation's default).
fn authorization_type(route: &Value) -> String {
    route.pointer("/Properties/AuthorizationType").and_then(Value::as_str).unwrap_or("NONE").to_ascii_uppercase()
}

/// A route's `RouteKey`, for messages.
fn route_key(route: &Value) -> String {
    match route.pointer("/Properties/RouteKey") {
        Some(Value::String(key)) => key.clone(),
        Some(other) => other.to_string(),
        None => "?".to_owned(),
    }
}

/// Why adding or removing this route is security-relevant, if it is.
fn route_added_or_removed(route: &Value, kind: ChangeKind) -> Option<String> {
    let (key, authorization) = (route_key(route), authorization_type(route));
    match kind {
        ChangeKind::Added if authorization == "NONE" => {
            Some(format!("an unauthenticated route is added: anyone may call {key} (AuthorizationType NONE)"))
        }
        ChangeKind::Removed if authorization == "NONE" => Some(format!(
            "a route without authorization is removed ({key}): any check its function made on callers goes with it"
        )),
        ChangeKind::Removed => Some(format!(
            "an authenticated route is removed ({key}, AuthorizationType {authorization}): its callers are no longer checked there"
        )),
        _ => None,
    }
}

/// Why a route's modification is security-relevant, if it is: its authorization changes
/// (`AuthorizationType`, `AuthorizerId`, scopes; read from both sides, so a whole
/// `Properties` added or removed counts too), or an unauthenticated route answers another key.
fn route_modified(before: &Value, after: &Value, properties: &[PropertyChange]) -> Vec<String> {
    let mut reasons = Vec::new();
    let authorizer = |route: &Value| route.pointer("/Properties/AuthorizerId").cloned();
    let (old_type, new_type) = (authorization_type(before), authorization_type(after));
    if old_type != new_type {
        let widened = if new_type == "NONE" { ": it is now unauthenticated" } else { "" };
        reasons.push(format!("a route's authorization changes ({old_type} → {new_type}){widened}"));
    } else if authorizer(before) != authorizer(after) {
        reasons.push("a route's authorization changes (another authorizer)".to_owned());
    } else if properties.iter().any(|change| change.path.contains("Authoriz")) {
        reasons.push("a route's authorization changes".to_owned());
    }
    if new_type == "NONE" && route_key(before) != route_key(after) {
        reasons.push(format!(
            "an unauthenticated route answers another key ({} → {}): anyone may call it",
            route_key(before),
            route_key(after)
        ));
    }
    reasons
}

/// Compares a deployed template (`old`; `Value::Null` when the stack does not exist) with a
/// synthesized one (`new`).
pub fn diff(old: &Value, new: &Value) -> TemplateDiff {
    let empty = Map::new();
    let resources = |template: &Value| template.get("Resources").and_then(Value::as_object).unwrap_or(&empty).clone();
    let (old_resources, new_resources) = (resources(old), resources(new));
    let ids: BTreeSet<&String> = old_resources.keys().chain(new_resources.keys()).collect();
    let mut changes = Vec::new();
    for id in ids {
        let change = match (old_resources.get(id), new_resources.get(id)) {
            (None, Some(added)) => whole(id, added, ChangeKind::Added),
            (Some(removed), None) => whole(id, removed, ChangeKind::Removed),
            (Some(before), Some(after)) if before != after => modified(id, before, after),
            _ => continue,
        };
        changes.push(change);
    }
    carry_replacements(old, new, &mut changes);
    let mut other = Vec::new();
    for section in ["Parameters", "Outputs"] {
        let side = |template: &Value| template.get(section).cloned().unwrap_or(Value::Object(Map::new()));
        compare(section, Some(&side(old)), Some(&side(new)), &mut other);
    }
    TemplateDiff { resources: changes, other }
}

/// Marks what refers to a replaced resource: a change of its own gets the reason (and may be
/// replaced in turn), an unchanged resource is added as [`ChangeKind::MayChange`]. Repeated
/// until nothing new is replaced, since a replacement can carry on further.
fn carry_replacements(old: &Value, new: &Value, changes: &mut Vec<ResourceChange>) {
    let mut done = BTreeSet::new();
    loop {
        let replaced: Vec<String> = changes
            .iter()
            .filter(|change| change.replacement != Replacement::Never && !done.contains(&change.logical_id))
            .map(|change| change.logical_id.clone())
            .collect();
        if replaced.is_empty() {
            break;
        }
        for target in replaced {
            for referrer in replacement::referrers(new, &target) {
                let because = format!("{} refers to {target}, which is replaced", referrer.paths.join(", "));
                match changes.iter_mut().find(|change| change.logical_id == referrer.logical_id) {
                    Some(change) if change.kind == ChangeKind::Added => {}
                    Some(change) => {
                        change.replacement = change.replacement.max(referrer.replacement);
                        change.replacement_because.push(because);
                    }
                    None => changes.push(ResourceChange {
                        logical_id: referrer.logical_id,
                        resource_type: referrer.resource_type,
                        kind: ChangeKind::MayChange,
                        replacement: referrer.replacement,
                        replacement_because: vec![because],
                        properties: Vec::new(),
                        security: Vec::new(),
                        data_loss: None,
                        rejected: None,
                        notes: Vec::new(),
                    }),
                }
            }
            done.insert(target);
        }
    }
    let resource =
        |template: &Value, id: &str| template.get("Resources").and_then(|resources| resources.get(id)).cloned();
    for change in changes.iter_mut().filter(|change| change.data_loss.is_none()) {
        let (before, after) = (resource(old, &change.logical_id), resource(new, &change.logical_id));
        change.data_loss = replaced_data(change, before.as_ref(), after.as_ref());
    }
    changes.sort_by(|a, b| a.logical_id.cmp(&b.logical_id));
}

fn type_of(resource: &Value) -> String {
    resource.get("Type").and_then(Value::as_str).unwrap_or("?").to_owned()
}

/// Whether removing this resource from the template keeps it (`DeletionPolicy`).
fn retained_on_removal(resource: &Value) -> bool {
    matches!(resource.get("DeletionPolicy").and_then(Value::as_str), Some("Retain" | "RetainExceptOnCreate"))
}

/// Whether replacing this resource keeps the old one (`UpdateReplacePolicy`).
fn retained_on_replacement(resource: &Value) -> bool {
    resource.get("UpdateReplacePolicy").and_then(Value::as_str) == Some("Retain")
}

fn whole(id: &str, resource: &Value, kind: ChangeKind) -> ResourceChange {
    let resource_type = type_of(resource);
    let (old, new) = match kind {
        ChangeKind::Added => (None, Some(resource.clone())),
        _ => (Some(resource.clone()), None),
    };
    let security = if resource_type == ROUTE {
        route_added_or_removed(resource, kind)
    } else {
        security_reason(&resource_type, "").map(|reason| {
            let verb = if kind == ChangeKind::Added { "added" } else { "removed" };
            format!("{reason} ({verb})")
        })
    };
    let data_loss = (kind == ChangeKind::Removed && STATEFUL.contains(&resource_type.as_str())).then(|| {
        if retained_on_removal(resource) {
            format!("{id} is removed from the stack but retained: it is orphaned, and nothing reads its data any more")
        } else {
            format!("{id} is deleted: every item in it is lost")
        }
    });
    ResourceChange {
        logical_id: id.to_owned(),
        resource_type,
        kind,
        replacement: Replacement::Never,
        replacement_because: Vec::new(),
        properties: vec![PropertyChange { path: String::new(), old, new }],
        security: security.into_iter().collect(),
        data_loss,
        rejected: None,
        notes: Vec::new(),
    }
}

fn modified(id: &str, before: &Value, after: &Value) -> ResourceChange {
    let resource_type = type_of(after);
    let mut properties = Vec::new();
    compare("", Some(before), Some(after), &mut properties);
    let mut security: Vec<String> = Vec::new();
    for change in &properties {
        if let Some(reason) = security_reason(&resource_type, &change.path) {
            let text = match broadening(&resource_type, change) {
                Some(broader) => format!("{reason}: {broader}"),
                None => reason.to_owned(),
            };
            if !security.contains(&text) {
                security.push(text);
            }
        }
    }
    if resource_type == ROUTE {
        for text in route_modified(before, after, &properties) {
            if !security.contains(&text) {
                security.push(text);
            }
        }
    }
    let (replacement, replacement_because) = replacement::of_changes(&resource_type, before, after, &properties);
    let mut change = ResourceChange {
        logical_id: id.to_owned(),
        rejected: replacement::rejection(&resource_type, before, after),
        notes: Vec::new(),
        resource_type,
        kind: ChangeKind::Modified,
        replacement,
        replacement_because,
        properties,
        security,
        data_loss: None,
    };
    change.data_loss = replaced_data(&change, Some(before), Some(after));
    if change.replacement != Replacement::Never
        && let Some(consequence) = replacement::consequence(&change.resource_type)
    {
        change.notes.push(consequence.to_owned());
    }
    change
}

/// What a replacement of a stateful resource does to its data, if it is one and is replaced.
/// CloudFormation deletes the old physical resource after the replacement unless
/// `UpdateReplacePolicy` says `Retain`. Orphaning is only promised when both templates say
/// so: a policy added in the same release as the replacement is not relied upon.
fn replaced_data(change: &ResourceChange, before: Option<&Value>, after: Option<&Value>) -> Option<String> {
    if !STATEFUL.contains(&change.resource_type.as_str()) || change.replacement == Replacement::Never {
        return None;
    }
    let retained = |side: Option<&Value>| side.is_some_and(retained_on_replacement);
    let fate = match (retained(before), retained(after)) {
        (true, true) => {
            "the old one is retained (UpdateReplacePolicy Retain) but orphaned and the new one starts empty"
        }
        (false, true) => {
            "every item in it is lost unless the UpdateReplacePolicy Retain this release adds is in force first: \
             deploy the policy on its own before the replacement"
        }
        _ => "every item in it is lost",
    };
    let verb = if change.replacement == Replacement::Always { "is replaced" } else { "may be replaced" };
    Some(format!("{} {verb} (because of {}): {fate}", change.logical_id, change.replacement_because.join(", ")))
}

/// Says how an IAM change widens access, if it does: statements or actions added.
fn broadening(resource_type: &str, change: &PropertyChange) -> Option<String> {
    if !resource_type.starts_with("AWS::IAM::") {
        return None;
    }
    let actions = |value: &Option<Value>| -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        collect_actions(value.as_ref().unwrap_or(&Value::Null), &mut found);
        found
    };
    let added: Vec<String> = actions(&change.new).difference(&actions(&change.old)).cloned().collect();
    (!added.is_empty()).then(|| format!("broadened: now also allows {}", added.join(", ")))
}

fn collect_actions(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if key == "Action" {
                    match inner {
                        Value::String(action) => {
                            found.insert(action.clone());
                        }
                        Value::Array(list) => found.extend(list.iter().filter_map(Value::as_str).map(str::to_owned)),
                        _ => {}
                    }
                } else {
                    collect_actions(inner, found);
                }
            }
        }
        Value::Array(list) => list.iter().for_each(|inner| collect_actions(inner, found)),
        // A plain action string at the top of the change (the change was inside an Action list).
        Value::String(text) if text.contains(':') || text == "*" => {
            found.insert(text.clone());
        }
        _ => {}
    }
}

/// Walks two values and records the paths where they differ. Objects are compared key by
/// key; arrays of different lengths or of non-objects are compared whole, so a reviewer sees
/// the full old and new list.
fn compare(path: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<PropertyChange>) {
    match (old, new) {
        (Some(Value::Object(before)), Some(Value::Object(after))) => {
            let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
            for key in keys {
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                compare(&child, before.get(key), after.get(key), out);
            }
        }
        (Some(Value::Array(before)), Some(Value::Array(after)))
            if before.len() == after.len() && before.iter().chain(after).all(Value::is_object) =>
        {
            for (index, (item_before, item_after)) in before.iter().zip(after).enumerate() {
                compare(&format!("{path}.{index}"), Some(item_before), Some(item_after), out);
            }
        }
        (before, after) if before != after => {
            out.push(PropertyChange { path: path.to_owned(), old: before.cloned(), new: after.cloned() });
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(resources: Value) -> Value {
        json!({ "Resources": resources })
    }

    #[test]
    fn identical_templates_have_no_diff() {
        let t = template(json!({"A": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 14}}}));
        assert!(diff(&t, &t).is_empty());
    }

    #[test]
    fn a_property_change_names_the_path_and_both_values() {
        let old = template(json!({"A": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 14}}}));
        let new = template(json!({"A": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 90}}}));
        let change = diff(&old, &new);
        assert_eq!(change.resources.len(), 1);
        let resource = &change.resources[0];
        assert_eq!((resource.kind, resource.logical_id.as_str()), (ChangeKind::Modified, "A"));
        assert_eq!(
            resource.properties,
            [PropertyChange { path: "Properties.RetentionInDays".into(), old: Some(json!(14)), new: Some(json!(90)) }]
        );
        assert!(resource.security.is_empty() && resource.data_loss.is_none());
    }

    #[test]
    fn added_and_removed_resources_are_whole() {
        let old = template(json!({"Gone": {"Type": "AWS::Logs::LogGroup", "Properties": {}}}));
        let new = template(json!({"New": {"Type": "AWS::Logs::LogGroup", "Properties": {}}}));
        let change = diff(&old, &new);
        let kinds: Vec<(&str, ChangeKind)> = change.resources.iter().map(|r| (r.logical_id.as_str(), r.kind)).collect();
        assert_eq!(kinds, [("Gone", ChangeKind::Removed), ("New", ChangeKind::Added)]);
    }

    #[test]
    fn a_stack_that_does_not_exist_is_all_new() {
        let new = template(json!({"A": {"Type": "AWS::Logs::LogGroup"}, "B": {"Type": "AWS::Logs::LogGroup"}}));
        let change = diff(&Value::Null, &new);
        assert!(change.resources.iter().all(|r| r.kind == ChangeKind::Added));
        assert_eq!(change.resources.len(), 2);
    }

    #[test]
    fn an_iam_broadening_is_called_out() {
        let role = |actions: Value| {
            json!({"Type": "AWS::IAM::Role", "Properties": {"Policies": [{"PolicyName": "p", "PolicyDocument":
                {"Statement": [{"Effect": "Allow", "Action": actions, "Resource": ["x"]}]}}]}})
        };
        let old = template(json!({"R": role(json!(["dynamodb:GetItem"]))}));
        let new = template(json!({"R": role(json!(["dynamodb:GetItem", "dynamodb:Scan"]))}));
        let change = diff(&old, &new);
        let security: Vec<&ResourceChange> = change.security().collect();
        assert_eq!(security.len(), 1);
        assert_eq!(security[0].security, ["IAM permissions change: broadened: now also allows dynamodb:Scan"]);
        // Narrowing is still security-relevant, but not a broadening.
        let narrowed = diff(&new, &old);
        assert_eq!(narrowed.resources[0].security, ["IAM permissions change"]);
    }

    #[test]
    fn an_identity_source_on_an_authorizer_is_security_relevant() {
        let authorizer = |props: Value| json!({"Type": "AWS::ApiGatewayV2::Authorizer", "Properties": props});
        let old = template(json!({"Auth": authorizer(json!({"AuthorizerType": "REQUEST"}))}));
        let new = template(json!({"Auth": authorizer(json!({"AuthorizerType": "REQUEST",
            "IdentitySource": ["route.request.querystring.token"]}))}));
        let change = diff(&old, &new);
        assert!(change.resources[0].security[0].contains("identity source"), "{:?}", change.resources[0].security);
    }

    /// A table keyed by `key`, with the given `DeletionPolicy` and `UpdateReplacePolicy`.
    fn table(key: &str, deletion: Option<&str>, update_replace: Option<&str>) -> Value {
        let mut t = json!({"Type": "AWS::DynamoDB::Table",
            "Properties": {"KeySchema": [{"AttributeName": key, "KeyType": "HASH"}]}});
        if let Some(policy) = deletion {
            t["DeletionPolicy"] = json!(policy);
        }
        if let Some(policy) = update_replace {
            t["UpdateReplacePolicy"] = json!(policy);
        }
        t
    }

    fn replaced(before: Value, after: Value) -> String {
        let change = diff(&template(json!({"T": before})), &template(json!({"T": after})));
        change.resources[0].data_loss.clone().unwrap_or_default()
    }

    #[test]
    fn replacing_a_table_says_its_data_would_be_lost() {
        let lost = replaced(table("id", None, None), table("key", None, None));
        assert!(lost.contains("replaced") && lost.contains("lost"), "{lost}");
        // The old table survives a replacement only by its UpdateReplacePolicy.
        let orphaned = replaced(table("id", None, Some("Retain")), table("key", None, Some("Retain")));
        assert!(orphaned.contains("orphaned") && !orphaned.contains("lost"), "{orphaned}");
        // A change that does not replace the table loses nothing.
        let mut ttl = table("id", Some("Retain"), Some("Retain"));
        ttl["Properties"]["TimeToLiveSpecification"] = json!({"AttributeName": "ttl", "Enabled": true});
        let unchanged = table("id", Some("Retain"), Some("Retain"));
        assert!(diff(&template(json!({"T": unchanged})), &template(json!({"T": ttl}))).data_loss().next().is_none());
    }

    #[test]
    fn a_deletion_policy_does_not_save_a_replaced_table() {
        // DeletionPolicy is for removal from the template; on replacement CloudFormation
        // deletes the old table unless UpdateReplacePolicy says Retain.
        let lost = replaced(table("id", Some("Retain"), None), table("key", Some("Retain"), None));
        assert!(lost.contains("lost") && !lost.contains("orphaned"), "{lost}");
        let deleted = replaced(table("id", None, Some("Delete")), table("key", None, Some("Delete")));
        assert!(deleted.contains("lost"), "{deleted}");
    }

    #[test]
    fn an_update_replace_policy_added_with_the_replacement_is_not_relied_upon() {
        let message = replaced(table("id", None, None), table("key", None, Some("Retain")));
        assert!(message.contains("lost") && message.contains("on its own"), "{message}");
    }

    #[test]
    fn removing_a_table_is_judged_by_its_deletion_policy() {
        let removed = |resource: Value| {
            diff(&template(json!({"T": resource})), &template(json!({}))).resources[0]
                .data_loss
                .clone()
                .unwrap_or_default()
        };
        assert!(removed(table("id", Some("Retain"), None)).contains("orphaned"));
        assert!(removed(table("id", Some("RetainExceptOnCreate"), None)).contains("orphaned"));
        let deleted = removed(table("id", None, Some("Retain")));
        assert!(deleted.contains("lost"), "UpdateReplacePolicy does not apply to removal: {deleted}");
    }

    fn route(key: &str, authorization: Option<&str>, authorizer: Option<&str>) -> Value {
        let mut properties = json!({"ApiId": {"Ref": "Api"}, "RouteKey": key});
        if let Some(kind) = authorization {
            properties["AuthorizationType"] = json!(kind);
        }
        if let Some(id) = authorizer {
            properties["AuthorizerId"] = json!({"Ref": id});
        }
        json!({"Type": "AWS::ApiGatewayV2::Route", "Properties": properties})
    }

    fn route_security(old: Value, new: Value) -> Vec<String> {
        diff(&template(old), &template(new)).security().flat_map(|change| change.security.clone()).collect()
    }

    #[test]
    fn an_unauthenticated_route_added_is_security_relevant() {
        for unauthenticated in [route("$disconnect", Some("NONE"), None), route("$default", None, None)] {
            let reasons = route_security(json!({}), json!({"R": unauthenticated}));
            assert_eq!(reasons.len(), 1, "{reasons:?}");
            assert!(reasons[0].contains("unauthenticated route is added"), "{reasons:?}");
        }
        // An authenticated route added restricts, it does not widen.
        let guarded = route_security(json!({}), json!({"R": route("$connect", Some("CUSTOM"), Some("Auth"))}));
        assert!(guarded.is_empty(), "{guarded:?}");
    }

    #[test]
    fn a_route_removed_is_security_relevant() {
        let authenticated = route_security(json!({"R": route("$connect", Some("CUSTOM"), Some("Auth"))}), json!({}));
        assert_eq!(authenticated.len(), 1, "{authenticated:?}");
        assert!(authenticated[0].contains("authenticated route is removed"), "{authenticated:?}");
        // A route without authorization may be one whose function checks callers itself
        // (CONNECT_AUTH=self): removing it is called out too.
        let unauthenticated = route_security(json!({"R": route("$connect", None, None)}), json!({}));
        assert_eq!(unauthenticated.len(), 1, "{unauthenticated:?}");
        assert!(unauthenticated[0].contains("without authorization is removed"), "{unauthenticated:?}");
    }

    #[test]
    fn a_route_authorization_change_is_security_relevant() {
        let custom = route("$connect", Some("CUSTOM"), Some("Auth"));
        let dropped = route_security(json!({"R": custom.clone()}), json!({"R": route("$connect", None, None)}));
        assert_eq!(dropped, ["a route's authorization changes (CUSTOM → NONE): it is now unauthenticated"]);
        let other = route_security(
            json!({"R": custom.clone()}),
            json!({"R": route("$connect", Some("CUSTOM"), Some("Other"))}),
        );
        assert_eq!(other, ["a route's authorization changes (another authorizer)"]);
        let added = route_security(json!({"R": route("$connect", None, None)}), json!({"R": custom.clone()}));
        assert_eq!(added, ["a route's authorization changes (NONE → CUSTOM)"]);
        // The whole Properties block appearing counts too.
        let bare = json!({"Type": "AWS::ApiGatewayV2::Route"});
        assert_eq!(route_security(json!({"R": bare}), json!({"R": custom})).len(), 1);
        // A change that leaves authorization alone is not security-relevant.
        let mut target = route("$connect", Some("CUSTOM"), Some("Auth"));
        target["Properties"]["Target"] = json!("integrations/x");
        assert!(
            route_security(json!({"R": route("$connect", Some("CUSTOM"), Some("Auth"))}), json!({"R": target}))
                .is_empty()
        );
    }

    #[test]
    fn an_unauthenticated_route_answering_another_key_is_security_relevant() {
        let reasons =
            route_security(json!({"R": route("send", None, None)}), json!({"R": route("$connect", None, None)}));
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].contains("send → $connect"), "{reasons:?}");
        let guarded = route_security(
            json!({"R": route("a", Some("CUSTOM"), Some("Auth"))}),
            json!({"R": route("b", Some("CUSTOM"), Some("Auth"))}),
        );
        assert!(guarded.is_empty(), "{guarded:?}");
    }

    #[test]
    fn removing_a_stream_loses_its_records() {
        let old = template(json!({"S": {"Type": "AWS::Kinesis::Stream", "Properties": {}}}));
        let change = diff(&old, &template(json!({})));
        assert!(change.resources[0].data_loss.clone().unwrap_or_default().contains("lost"));
    }

    #[test]
    fn parameters_and_outputs_are_compared_too() {
        let old = json!({"Resources": {}, "Outputs": {"Url": {"Value": "a"}}});
        let new = json!({"Resources": {}, "Outputs": {"Url": {"Value": "b"}}});
        let change = diff(&old, &new);
        assert_eq!(change.other[0].path, "Outputs.Url.Value");
    }

    #[test]
    fn the_json_shape_is_stable() {
        let old = template(json!({"A": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 14}}}));
        let new = template(json!({"A": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 90}}}));
        assert_eq!(
            serde_json::to_value(diff(&old, &new)).expect("json"),
            json!({"resources": [{"logicalId": "A", "resourceType": "AWS::Logs::LogGroup", "kind": "modified",
                "replacement": "never", "replacementBecause": [],
                "properties": [{"path": "Properties.RetentionInDays", "old": 14, "new": 90}],
                "security": [], "dataLoss": null, "rejected": null, "notes": []}], "other": []})
        );
    }
}

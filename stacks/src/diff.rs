//! What a release would change: a deployed template against a synthesized one, resource by
//! resource and property by property, with what a release owner must look at called out.
//!
//! - **Security-relevant** changes: IAM roles and policies (a statement or action added is a
//!   broadening), Lambda invoke permissions, authorizers (identity sources above all), and
//!   route authorization.
//! - **Stateful replacements**: a table or stream whose change replaces it (or that is
//!   removed) loses its data, unless the old resource is retained, in which case it is
//!   orphaned and the new one starts empty.
//!
//! The diff reads templates as JSON only; contract findings on either side come from
//! [`crate::verify`], and talking to AWS is the caller's business.

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

/// One resource that differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceChange {
    pub logical_id: String,
    pub resource_type: String,
    pub kind: ChangeKind,
    pub properties: Vec<PropertyChange>,
    /// Why this change matters for security, if it does.
    pub security: Vec<String>,
    /// Set when the change replaces or removes a stateful resource.
    pub data_loss: Option<String>,
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
}

/// Resource types whose data dies with them.
const STATEFUL: &[&str] = &["AWS::DynamoDB::Table", "AWS::Kinesis::Stream"];

/// Properties whose change replaces a stateful resource (CloudFormation user guide, "Update
/// requires: Replacement").
fn replaces(resource_type: &str, path: &str) -> bool {
    let replacing: &[&str] = match resource_type {
        "AWS::DynamoDB::Table" => &["Properties.KeySchema", "Properties.TableName", "Properties.LocalSecondaryIndexes"],
        "AWS::Kinesis::Stream" => &["Properties.Name"],
        _ => &[],
    };
    replacing.iter().any(|prefix| path == *prefix || path.starts_with(&format!("{prefix}.")))
}

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
        "AWS::ApiGatewayV2::Route" if path.contains("Authoriz") => Some("a route's authorization changes"),
        _ => None,
    }
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
    let mut other = Vec::new();
    for section in ["Parameters", "Outputs"] {
        let side = |template: &Value| template.get(section).cloned().unwrap_or(Value::Object(Map::new()));
        compare(section, Some(&side(old)), Some(&side(new)), &mut other);
    }
    TemplateDiff { resources: changes, other }
}

fn type_of(resource: &Value) -> String {
    resource.get("Type").and_then(Value::as_str).unwrap_or("?").to_owned()
}

fn retained(resource: &Value) -> bool {
    resource.get("DeletionPolicy").and_then(Value::as_str) == Some("Retain")
}

fn whole(id: &str, resource: &Value, kind: ChangeKind) -> ResourceChange {
    let resource_type = type_of(resource);
    let (old, new) = match kind {
        ChangeKind::Added => (None, Some(resource.clone())),
        _ => (Some(resource.clone()), None),
    };
    let security = security_reason(&resource_type, "").map(|reason| {
        let verb = if kind == ChangeKind::Added { "added" } else { "removed" };
        format!("{reason} ({verb})")
    });
    let data_loss = (kind == ChangeKind::Removed && STATEFUL.contains(&resource_type.as_str())).then(|| {
        if retained(resource) {
            format!("{id} is removed from the stack but retained: it is orphaned, and nothing reads its data any more")
        } else {
            format!("{id} is deleted: every item in it is lost")
        }
    });
    ResourceChange {
        logical_id: id.to_owned(),
        resource_type,
        kind,
        properties: vec![PropertyChange { path: String::new(), old, new }],
        security: security.into_iter().collect(),
        data_loss,
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
    let replacing: Vec<&str> = properties
        .iter()
        .filter(|change| replaces(&resource_type, &change.path))
        .map(|change| change.path.as_str())
        .collect();
    let data_loss = (STATEFUL.contains(&resource_type.as_str()) && !replacing.is_empty()).then(|| {
        let fate = if retained(before) {
            "the old one is retained but orphaned and the new one starts empty"
        } else {
            "every item in it is lost"
        };
        format!("{id} is replaced (because of {}): {fate}", replacing.join(", "))
    });
    ResourceChange {
        logical_id: id.to_owned(),
        resource_type,
        kind: ChangeKind::Modified,
        properties,
        security,
        data_loss,
    }
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

    #[test]
    fn replacing_a_table_says_its_data_would_be_lost() {
        let table = |key: &str, retain: bool| {
            let mut t = json!({"Type": "AWS::DynamoDB::Table", "Properties": {"KeySchema": [{"AttributeName": key, "KeyType": "HASH"}]}});
            if retain {
                t["DeletionPolicy"] = json!("Retain");
            }
            t
        };
        let lost = diff(&template(json!({"T": table("id", false)})), &template(json!({"T": table("key", false)})));
        let message = lost.resources[0].data_loss.clone().unwrap_or_default();
        assert!(message.contains("replaced") && message.contains("lost"), "{message}");
        let orphaned = diff(&template(json!({"T": table("id", true)})), &template(json!({"T": table("key", true)})));
        assert!(orphaned.resources[0].data_loss.clone().unwrap_or_default().contains("orphaned"));
        // A change that does not replace the table loses nothing.
        let mut ttl = table("id", true);
        ttl["Properties"]["TimeToLiveSpecification"] = json!({"AttributeName": "ttl", "Enabled": true});
        assert!(
            diff(&template(json!({"T": table("id", true)})), &template(json!({"T": ttl}))).data_loss().next().is_none()
        );
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
                "properties": [{"path": "Properties.RetentionInDays", "old": 14, "new": 90}],
                "security": [], "dataLoss": null}], "other": []})
        );
    }
}

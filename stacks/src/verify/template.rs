//! A read-only view of template JSON: resources by logical id and type, and the intrinsic
//! functions the verifier has to see through (`Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::Join`).
//!
//! Nothing here assumes a property has the shape CloudFormation documents: every accessor
//! answers `None`, an empty list or `Null` for a value of the wrong kind, so a hand-edited or
//! damaged template is read as far as it can be and never makes the verifier panic.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// What a missing property reads as.
static NULL: Value = Value::Null;

pub const API: &str = "AWS::ApiGatewayV2::Api";
pub const ROUTE: &str = "AWS::ApiGatewayV2::Route";
pub const INTEGRATION: &str = "AWS::ApiGatewayV2::Integration";
pub const AUTHORIZER: &str = "AWS::ApiGatewayV2::Authorizer";
pub const DEPLOYMENT: &str = "AWS::ApiGatewayV2::Deployment";
pub const STAGE: &str = "AWS::ApiGatewayV2::Stage";
pub const LAMBDA: &str = "AWS::Lambda::Function";
pub const LAMBDA_PERMISSION: &str = "AWS::Lambda::Permission";
pub const ROLE: &str = "AWS::IAM::Role";
pub const TABLE: &str = "AWS::DynamoDB::Table";
pub const STREAM: &str = "AWS::Kinesis::Stream";

/// The `Resources` section of a template, by logical id.
#[derive(Debug)]
pub struct Resources<'a> {
    /// The section itself, for hashing exactly what the synthesizer hashed.
    section: &'a Value,
    by_id: BTreeMap<&'a str, &'a Value>,
}

impl<'a> Resources<'a> {
    /// The resources of `template`; none when the section is missing or not an object.
    pub fn of(template: &'a Value) -> Resources<'a> {
        let section = template.get("Resources").unwrap_or(&NULL);
        let by_id = section
            .as_object()
            .map(|map| map.iter().map(|(id, resource)| (id.as_str(), resource)).collect())
            .unwrap_or_default();
        Resources { section, by_id }
    }

    /// The `Resources` section as found in the template.
    pub fn section(&self) -> &'a Value {
        self.section
    }

    /// The logical id as stored in the template, if such a resource exists.
    pub fn id(&self, id: &str) -> Option<&'a str> {
        self.by_id.get_key_value(id).map(|(key, _)| *key)
    }

    /// The resource's `Type`.
    pub fn type_of(&self, id: &str) -> Option<&'a str> {
        self.by_id.get(id)?.get("Type")?.as_str()
    }

    /// Whether the resource exists and has this type.
    pub fn is(&self, id: &str, kind: &str) -> bool {
        self.type_of(id) == Some(kind)
    }

    /// The resource's `Properties`, or `Null`.
    pub fn properties(&self, id: &str) -> &'a Value {
        self.by_id.get(id).and_then(|resource| resource.get("Properties")).unwrap_or(&NULL)
    }

    /// A resource attribute outside `Properties` (`DependsOn`), or `Null`.
    pub fn attribute(&self, id: &str, name: &str) -> &'a Value {
        self.by_id.get(id).and_then(|resource| resource.get(name)).unwrap_or(&NULL)
    }

    /// Every resource of a type, as (logical id, properties), in logical id order.
    pub fn of_type(&self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + '_ {
        self.by_id
            .iter()
            .filter(move |(_, resource)| resource.get("Type").and_then(Value::as_str) == Some(kind))
            .map(|(id, resource)| (*id, resource.get("Properties").unwrap_or(&NULL)))
    }

    /// The first resource of type `kind` that `value` refers to.
    pub fn referenced(&self, value: Option<&Value>, kind: &str) -> Option<&'a str> {
        references(value?).into_iter().find(|reference| self.is(&reference.id, kind)).and_then(|r| self.id(&r.id))
    }
}

/// A property of `properties` by name, or `Null`.
pub fn prop<'a>(properties: &'a Value, name: &str) -> &'a Value {
    properties.get(name).unwrap_or(&NULL)
}

/// Whether `value` refers to the resource `id` anywhere inside it.
pub fn refers_to(value: &Value, id: &str) -> bool {
    references(value).iter().any(|reference| reference.id == id)
}

/// A reference to a resource (or parameter) found in an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub id: String,
    /// The attribute of `Fn::GetAtt` or `${Id.Attribute}`.
    pub attribute: Option<String>,
}

/// Every logical id `value` refers to through `Ref`, `Fn::GetAtt` or `Fn::Sub`, at any depth,
/// in order of appearance. Pseudo parameters (`AWS::Region`) are not references.
pub fn references(value: &Value) -> Vec<Reference> {
    let mut found = Vec::new();
    collect_references(value, &mut found);
    found
}

fn collect_references(value: &Value, found: &mut Vec<Reference>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| collect_references(item, found)),
        Value::Object(map) => {
            if let Some((function, argument)) = single_entry(map) {
                match function {
                    "Ref" => {
                        if let Some(id) = argument.as_str() {
                            push_reference(found, id, None);
                        }
                        return;
                    }
                    "Fn::GetAtt" => {
                        if let Some((id, attribute)) = get_att(argument) {
                            push_reference(found, &id, Some(attribute));
                        }
                        return;
                    }
                    "Fn::Sub" => {
                        collect_sub_references(argument, found);
                        return;
                    }
                    _ => {}
                }
            }
            map.values().for_each(|item| collect_references(item, found));
        }
        _ => {}
    }
}

fn collect_sub_references(argument: &Value, found: &mut Vec<Reference>) {
    let Some((text, variables)) = sub_parts(argument) else {
        return;
    };
    for name in placeholders(text) {
        if variables.is_some_and(|variables| variables.contains_key(name)) {
            continue;
        }
        match name.split_once('.') {
            Some((id, attribute)) => push_reference(found, id, Some(attribute.to_owned())),
            None => push_reference(found, name, None),
        }
    }
    if let Some(variables) = variables {
        variables.values().for_each(|value| collect_references(value, found));
    }
}

fn push_reference(found: &mut Vec<Reference>, id: &str, attribute: Option<String>) {
    if !id.contains("::") && !id.is_empty() {
        found.push(Reference { id: id.to_owned(), attribute });
    }
}

/// The only entry of a one-key object (the shape of every intrinsic function).
fn single_entry(map: &Map<String, Value>) -> Option<(&str, &Value)> {
    let mut entries = map.iter();
    let (key, value) = entries.next()?;
    entries.next().is_none().then_some((key.as_str(), value))
}

/// `["Id", "Attribute"]` or `"Id.Attribute"`.
fn get_att(argument: &Value) -> Option<(String, String)> {
    match argument {
        Value::String(text) => text.split_once('.').map(|(id, attribute)| (id.to_owned(), attribute.to_owned())),
        Value::Array(parts) => {
            let id = parts.first()?.as_str()?;
            let attribute = parts.get(1).and_then(render).unwrap_or_default();
            Some((id.to_owned(), attribute))
        }
        _ => None,
    }
}

/// `"template"` or `["template", {variables}]`.
fn sub_parts(argument: &Value) -> Option<(&str, Option<&Map<String, Value>>)> {
    match argument {
        Value::String(text) => Some((text, None)),
        Value::Array(parts) => Some((parts.first()?.as_str()?, parts.get(1).and_then(Value::as_object))),
        _ => None,
    }
}

/// The names inside `${...}` of a `Fn::Sub` template, without the `${!literal}` escapes.
fn placeholders(text: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            break;
        };
        let name = &after[..end];
        if !name.starts_with('!') {
            names.push(name);
        }
        rest = &after[end + 1..];
    }
    names
}

/// The text of an expression, with references written as `${Id}` and `${Id.Attribute}`
/// (the way `Fn::Sub` writes them), so expressions of different shapes compare as text.
/// `None` for what cannot be written that way (`Fn::If`, objects, arrays, null).
pub fn render(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Object(map) => {
            let (function, argument) = single_entry(map)?;
            match function {
                "Ref" => argument.as_str().map(|id| format!("${{{id}}}")),
                "Fn::GetAtt" => get_att(argument).map(|(id, attribute)| format!("${{{id}.{attribute}}}")),
                "Fn::Sub" => render_sub(argument),
                "Fn::Join" => render_join(argument),
                _ => None,
            }
        }
        Value::Null | Value::Array(_) => None,
    }
}

fn render_sub(argument: &Value) -> Option<String> {
    let (text, variables) = sub_parts(argument)?;
    let mut rendered = text.to_owned();
    for (name, value) in variables.into_iter().flatten() {
        if let Some(replacement) = render(value) {
            rendered = rendered.replace(&format!("${{{name}}}"), &replacement);
        }
    }
    Some(rendered)
}

fn render_join(argument: &Value) -> Option<String> {
    let parts = argument.as_array()?;
    let separator = parts.first()?.as_str()?;
    let items = parts.get(1)?.as_array()?;
    let rendered: Option<Vec<String>> = items.iter().map(render).collect();
    Some(rendered?.join(separator))
}

/// A value that may be one string or a list of them, as strings (other items rendered).
pub fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().map(|item| render(item).unwrap_or_else(|| item.to_string())).collect(),
        Value::Null => Vec::new(),
        other => vec![render(other).unwrap_or_else(|| other.to_string())],
    }
}

/// `value` as JSON text with every object's keys in sorted order, whatever order the value
/// holds them in: the same text for the same JSON, whether serde_json keeps maps sorted or, with
/// its `preserve_order` feature (which any crate of a build may turn on), in insertion order.
/// What a fingerprint hashes.
pub fn canonical_json(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                Value::Object(entries.into_iter().map(|(key, value)| (key.clone(), sorted(value))).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// `true`, or the string `"true"` in any case.
pub fn is_true(value: &Value) -> bool {
    match value {
        Value::Bool(flag) => *flag,
        Value::String(text) => text.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// IAM-style wildcard matching: `*` matches any run of characters, `?` exactly one.
pub fn glob(pattern: &str, text: &str) -> bool {
    glob_bytes(pattern.as_bytes(), text.as_bytes(), |a, b| a == b)
}

/// [`glob`] ignoring ASCII case, as IAM compares actions.
pub fn glob_ignore_case(pattern: &str, text: &str) -> bool {
    glob_bytes(pattern.as_bytes(), text.as_bytes(), |a, b| a.eq_ignore_ascii_case(&b))
}

/// Wildcard matching over bytes, backtracking to the last `*` on a mismatch. A `?` matches
/// one byte, which is one character in the ASCII of ARNs and actions.
fn glob_bytes(pattern: &[u8], text: &[u8], same: impl Fn(u8, u8) -> bool) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while let Some(&character) = text.get(t) {
        match pattern.get(p) {
            Some(b'*') => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some(&expected) if expected == b'?' || same(expected, character) => {
                p += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((star, matched)) => {
                    p = star + 1;
                    t = matched + 1;
                    backtrack = Some((star, matched + 1));
                }
                None => return false,
            },
        }
    }
    pattern.get(p..).unwrap_or_default().iter().all(|character| *character == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_every_objects_keys() {
        let mut inner = Map::new();
        inner.insert("d".into(), json!(2));
        inner.insert("c".into(), json!([{"z": 1, "y": 2}]));
        let mut outer = Map::new();
        outer.insert("b".into(), json!(1));
        outer.insert("a".into(), Value::Object(inner));
        assert_eq!(canonical_json(&Value::Object(outer)), r#"{"a":{"c":[{"y":2,"z":1}],"d":2},"b":1}"#);
    }

    fn ids(value: Value) -> Vec<String> {
        references(&value).into_iter().map(|reference| reference.id).collect()
    }

    #[test]
    fn references_are_found_through_every_intrinsic() {
        assert_eq!(ids(json!({"Ref": "Api"})), ["Api"]);
        assert_eq!(ids(json!({"Ref": "AWS::Region"})), Vec::<String>::new());
        assert_eq!(ids(json!({"Fn::GetAtt": ["Fn", "Arn"]})), ["Fn"]);
        assert_eq!(ids(json!({"Fn::GetAtt": "Fn.Arn"})), ["Fn"]);
        assert_eq!(ids(json!({"Fn::Sub": "arn:${AWS::Partition}:${Api}/${Fn.Arn}/${!Literal}"})), ["Api", "Fn"]);
        assert_eq!(ids(json!({"Fn::Sub": ["${A}/${B}", {"A": {"Ref": "Table"}}]})), ["B", "Table"]);
        assert_eq!(ids(json!({"Fn::Join": ["/", ["integrations", {"Ref": "I"}]]})), ["I"]);
        assert_eq!(ids(json!({"Fn::If": ["C", {"Ref": "X"}, {"Ref": "Y"}]})), ["X", "Y"]);
        assert_eq!(ids(json!(["a", 5, null, {"Fn::Sub": 7}, {"Fn::GetAtt": 7}])), Vec::<String>::new());
    }

    #[test]
    fn expressions_render_as_sub_text() {
        assert_eq!(render(&json!({"Fn::GetAtt": ["T", "Arn"]})).as_deref(), Some("${T.Arn}"));
        assert_eq!(
            render(&json!({"Fn::Join": ["", ["https://", {"Ref": "Api"}, ".example"]]})).as_deref(),
            Some("https://${Api}.example")
        );
        assert_eq!(
            render(&json!({"Fn::Sub": ["${A}/index/*", {"A": {"Fn::GetAtt": ["T", "Arn"]}}]})).as_deref(),
            Some("${T.Arn}/index/*")
        );
        assert_eq!(render(&json!({"Fn::If": ["C", "a", "b"]})), None);
        assert_eq!(render(&json!({"Fn::Join": ["", ["a", {"Fn::If": []}]]})), None);
    }

    #[test]
    fn glob_matches_like_iam() {
        assert!(glob("*", "anything"));
        assert!(glob("dynamodb:*", "dynamodb:Query"));
        assert!(glob("${T.Arn}/index/*", "${T.Arn}/index/byX"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("${T.Arn}", "${T.Arn}/index/byX"));
        assert!(!glob("dynamodb:Get*", "dynamodb:Query"));
        assert!(glob("*a*b", "xxaxxb"));
        assert!(!glob("", "x"));
        assert!(glob("", ""));
        assert!(glob_ignore_case("DynamoDB:get*", "dynamodb:GetItem"));
        assert!(!glob("DynamoDB:GetItem", "dynamodb:GetItem"));
    }
}

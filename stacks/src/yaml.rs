//! CloudFormation YAML: the template JSON written for people, with the short forms of the
//! intrinsic functions (`!Ref X`, `!GetAtt X.Y`, `!Sub '...'`, `!Join [...]`), as
//! `cdk synth` and `aws cloudformation` print it, and read back.
//!
//! Written and read with serde-saphyr, whose `Tagged` wrapper puts an explicit tag on a node
//! and captures it when reading; its quoting keeps every string a string for every reader
//! (`yes`, `on`, `null`, `10800`, `2010-09-09` are quoted). A multi-line string is a literal
//! block scalar; long single-line strings stay on one line (no folding).
//!
//! Maps are written in a fixed order whatever order the JSON value holds (serde_json's
//! `preserve_order` depends on the build's feature set): the template's sections in the
//! order CloudFormation documents them, a resource's `Type` first and its `Properties` last,
//! and every other map sorted by key.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};
use serde_saphyr::Tagged;

/// The intrinsic functions written in short form: the JSON key and the tag.
const INTRINSICS: &[(&str, &str)] = &[
    ("Ref", "!Ref"),
    ("Fn::GetAtt", "!GetAtt"),
    ("Fn::Sub", "!Sub"),
    ("Fn::Join", "!Join"),
    ("Fn::Select", "!Select"),
    ("Fn::Split", "!Split"),
    ("Fn::If", "!If"),
    ("Fn::Equals", "!Equals"),
    ("Fn::Not", "!Not"),
    ("Fn::And", "!And"),
    ("Fn::Or", "!Or"),
    ("Fn::FindInMap", "!FindInMap"),
    ("Fn::ImportValue", "!ImportValue"),
    ("Fn::Base64", "!Base64"),
    ("Fn::Cidr", "!Cidr"),
    ("Fn::GetAZs", "!GetAZs"),
    ("Fn::Length", "!Length"),
    ("Fn::ToJsonString", "!ToJsonString"),
];

/// The template's sections, in the order CloudFormation's documentation lists them.
const SECTIONS: &[&str] = &[
    "AWSTemplateFormatVersion",
    "Description",
    "Metadata",
    "Parameters",
    "Rules",
    "Mappings",
    "Conditions",
    "Transform",
    "Resources",
    "Outputs",
];

/// A resource's keys: what it is first, its properties last.
const RESOURCE_KEYS: &[&str] =
    &["Type", "Condition", "DependsOn", "DeletionPolicy", "UpdateReplacePolicy", "Metadata", "Properties"];

/// Why YAML text is not a template.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    #[error("the YAML does not parse: {0}")]
    Parse(String),
    #[error("a mapping key is not a string: {0}")]
    Key(String),
    #[error("unknown tag {0}: not an intrinsic function this reader knows")]
    UnknownTag(String),
    #[error("{0} has a form CloudFormation does not read")]
    Form(String),
}

/// The template JSON as CloudFormation YAML text, ending with a newline.
pub fn to_yaml(template: &Value) -> String {
    let node = Node::from_json(template, Place::Top);
    let mut options = serde_saphyr::SerializerOptions::default();
    // Long single-line strings (descriptions, ARNs) stay on their line; only strings with a
    // line break become (literal) block scalars.
    options.folded_wrap_chars = usize::MAX;
    let mut text = serde_saphyr::to_string_with_options(&node, options).unwrap_or_default();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// CloudFormation YAML read back into the template JSON: every short form becomes its JSON
/// form (`!GetAtt X.Y` is `{"Fn::GetAtt": ["X", "Y"]}`).
pub fn from_yaml(text: &str) -> Result<Value, YamlError> {
    let loaded: Tagged<Loaded> = serde_saphyr::from_str(text).map_err(|error| YamlError::Parse(error.to_string()))?;
    to_json(loaded)
}

/// Where a map sits, which decides the order of its keys.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Top,
    Resources,
    Resource,
    Other,
}

/// A YAML node to write.
enum Node {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
    Tagged(&'static str, Box<Node>),
}

impl Node {
    fn from_json(value: &Value, place: Place) -> Node {
        match value {
            Value::Null => Node::Null,
            Value::Bool(value) => Node::Bool(*value),
            Value::Number(number) => Node::Number(number.clone()),
            Value::String(text) => Node::Str(text.clone()),
            Value::Array(items) => Node::Seq(items.iter().map(|item| Node::from_json(item, Place::Other)).collect()),
            Value::Object(map) => match short_form(map) {
                Some(node) => node,
                None => Node::Map(ordered(map, place)),
            },
        }
    }
}

/// A one-key map that is an intrinsic function, as its tagged node.
fn short_form(map: &Map<String, Value>) -> Option<Node> {
    let (key, argument) = map.iter().next().filter(|_| map.len() == 1)?;
    let tag = INTRINSICS.iter().find(|(name, _)| name == key).map(|(_, tag)| *tag)?;
    if key == "Fn::GetAtt" {
        // `!GetAtt X.Y` when both are plain names (the reader splits at the first dot).
        if let Some([Value::String(id), Value::String(attribute)]) = argument.as_array().map(Vec::as_slice)
            && !id.contains('.')
        {
            return Some(Node::Tagged(tag, Box::new(Node::Str(format!("{id}.{attribute}")))));
        }
    }
    Some(Node::Tagged(tag, Box::new(Node::from_json(argument, Place::Other))))
}

/// The map's entries in the order they are written.
fn ordered(map: &Map<String, Value>, place: Place) -> Vec<(String, Node)> {
    let first: &[&str] = match place {
        Place::Top => SECTIONS,
        Place::Resource => RESOURCE_KEYS,
        Place::Resources | Place::Other => &[],
    };
    let rank = |key: &str| first.iter().position(|known| *known == key).unwrap_or(first.len());
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    keys.into_iter()
        .map(|key| {
            let inner = match (place, key.as_str()) {
                (Place::Top, "Resources") => Place::Resources,
                (Place::Resources, _) => Place::Resource,
                _ => Place::Other,
            };
            (key.clone(), Node::from_json(&map[key], inner))
        })
        .collect()
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => serializer.serialize_unit(),
            Node::Bool(value) => serializer.serialize_bool(*value),
            Node::Number(number) => number.serialize(serializer),
            Node::Str(text) => serializer.serialize_str(text),
            Node::Seq(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
            Node::Tagged(tag, inner) => Tagged(inner.as_ref(), Some((*tag).to_owned())).serialize(serializer),
        }
    }
}

/// A YAML node as read, each child with its tag.
#[derive(Debug)]
enum Loaded {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Str(String),
    Seq(Vec<Tagged<Loaded>>),
    Map(Vec<(Loaded, Tagged<Loaded>)>),
}

impl<'de> Deserialize<'de> for Loaded {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Loaded, D::Error> {
        deserializer.deserialize_any(LoadedVisitor)
    }
}

struct LoadedVisitor;

impl<'de> Visitor<'de> for LoadedVisitor {
    type Value = Loaded;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a YAML node")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Loaded, E> {
        Ok(Loaded::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Loaded, E> {
        Ok(Loaded::Null)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Loaded, E> {
        Ok(Loaded::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Loaded, E> {
        Ok(Loaded::Number(value.into()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Loaded, E> {
        Ok(Loaded::Number(value.into()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Loaded, E> {
        serde_json::Number::from_f64(value)
            .map(Loaded::Number)
            .ok_or_else(|| E::custom(format!("{value} is not a JSON number")))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Loaded, E> {
        Ok(Loaded::Str(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Loaded, E> {
        Ok(Loaded::Str(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Loaded, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Loaded::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Loaded, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Loaded::Map(entries))
    }
}

fn to_json(Tagged(node, tag): Tagged<Loaded>) -> Result<Value, YamlError> {
    let value = match node {
        Loaded::Null => Value::Null,
        Loaded::Bool(value) => Value::Bool(value),
        Loaded::Number(number) => Value::Number(number),
        Loaded::Str(text) => Value::String(text),
        Loaded::Seq(items) => Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?),
        Loaded::Map(entries) => {
            let mut map = Map::new();
            for (key, value) in entries {
                let Loaded::Str(key) = key else { return Err(YamlError::Key(format!("{key:?}"))) };
                map.insert(key, to_json(value)?);
            }
            Value::Object(map)
        }
    };
    let Some(tag) = tag else { return Ok(value) };
    let Some((name, _)) = INTRINSICS.iter().find(|(_, known)| *known == tag) else {
        return match tag.as_str() {
            // The core schema's own tags (`!!str` and the like) change nothing here.
            core if core.starts_with("tag:yaml.org,2002:") => Ok(value),
            _ => Err(YamlError::UnknownTag(tag)),
        };
    };
    let argument = match (*name, value) {
        ("Fn::GetAtt", Value::String(text)) => {
            let (id, attribute) = text.split_once('.').ok_or_else(|| YamlError::Form(format!("!GetAtt {text}")))?;
            Value::Array(vec![Value::String(id.to_owned()), Value::String(attribute.to_owned())])
        }
        (_, value) => value,
    };
    let mut map = Map::new();
    map.insert((*name).to_owned(), argument);
    Ok(Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn intrinsics_take_their_short_forms() {
        let template = json!({
            "Resources": { "R": { "Properties": {
                "A": { "Ref": "Bucket" },
                "B": { "Fn::GetAtt": ["Role", "Arn"] },
                "C": { "Fn::Sub": "arn:${AWS::Partition}:s3:::${Bucket}/*" },
                "D": { "Fn::Join": ["", ["integrations/", { "Ref": "Integration" }]] },
                "E": { "Fn::Sub": ["${A}-x", { "A": { "Ref": "Bucket" } }] },
            }, "Type": "AWS::S3::Bucket" } }
        });
        let text = to_yaml(&template);
        for expected in ["A: !Ref Bucket", "B: !GetAtt Role.Arn", "C: !Sub ", "D: !Join", "E: !Sub", "  R:\n    Type: "]
        {
            assert!(text.contains(expected), "{expected:?} missing from\n{text}");
        }
        assert_eq!(from_yaml(&text).expect("reads back"), template);
    }

    /// Strings that YAML 1.1 or 1.2 readers would take for something else, or that need quoting.
    #[rustfmt::skip]
    const MISREADABLE: &[&str] = &[
        "yes", "no", "on", "off", "true", "False", "NO", "y", "n", "null", "~", "", "10800", "0x1F", "1e3", "0o17",
        "012", "1_000", "3.14", ".inf", "-.NaN", "2010-09-09", "2026-01-01T00:00:00Z", "1:30", "*", "&a", "!Ref",
        "@x", "`x", "|", ">", "- x", "? x", "a: b", "a #b", "#x", "%x", "[x]", "{x}", "'x'", "\"x\"", " lead",
        "trail ", "two\nlines", "two\nlines\n", "\ttab", "$request.body.action", "$connect", "${AWS::Region}",
    ];

    #[test]
    fn strings_another_reader_could_misread_stay_strings() {
        let template = json!({ "Strings": MISREADABLE, "Numbers": [0, 10800, -1, 1.5], "Flags": [true, false, null] });
        let text = to_yaml(&template);
        assert_eq!(from_yaml(&text).expect("reads back"), template, "{text}");
        assert!(text.contains("- '10800'") || text.contains("- \"10800\""), "{text}");
        assert!(text.contains("- 10800\n"), "{text}");
    }

    #[test]
    fn an_unknown_tag_is_refused() {
        assert!(matches!(from_yaml("A: !Nope x\n"), Err(YamlError::UnknownTag(tag)) if tag == "!Nope"));
    }
}

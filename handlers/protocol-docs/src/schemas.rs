//! JSON Schemas of the protocol's types, as each document's dialect wants them: JSON Schema
//! draft-07 for AsyncAPI 3.0 (its default schema format is a superset of draft-07) and 2020-12
//! for OpenAPI 3.1. Named schemas go to `#/components/schemas/<Name>` in both documents.
//!
//! A tagged enum (`ClientMessage` by `action`, `ServerFrame` by `type`) is split into one
//! schema per variant, keyed by the value its tag pins with `const`, so each message of a
//! document carries exactly its own schema.

use crate::Error;
use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value};

/// Where named schemas live in both documents (a JSON pointer).
const DEFINITIONS_PATH: &str = "/components/schemas";

/// A document's JSON Schema dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// JSON Schema draft-07, AsyncAPI 3.0's default schema format.
    Draft07,
    /// JSON Schema 2020-12, OpenAPI 3.1's.
    Draft2020_12,
}

/// Schemas generated for one document.
#[derive(Debug)]
pub(crate) struct Schemas {
    generator: SchemaGenerator,
    /// Named schemas already taken out of the generator (tidied).
    taken: Map<String, Value>,
}

/// One variant of a tagged enum: the value its tag pins, and its schema.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Variant {
    pub(crate) tag_value: String,
    pub(crate) schema: Value,
}

impl Schemas {
    pub(crate) fn new(dialect: Dialect) -> Schemas {
        let settings = match dialect {
            Dialect::Draft07 => SchemaSettings::draft07(),
            Dialect::Draft2020_12 => SchemaSettings::draft2020_12(),
        };
        let generator = settings.with(|settings| settings.definitions_path = DEFINITIONS_PATH.into()).into_generator();
        Schemas { generator, taken: Map::new() }
    }

    /// The schema of `T` where it is used: a `$ref` to its named schema.
    pub(crate) fn reference<T: JsonSchema>(&mut self) -> Value {
        tidy(self.generator.subschema_for::<T>().to_value())
    }

    /// The schema of `T` itself, never a `$ref` to it (the schemas it uses are referenced).
    pub(crate) fn inline<T: JsonSchema>(&mut self) -> Result<Value, Error> {
        let name = T::schema_name();
        let used = self.generator.subschema_for::<T>().to_value();
        if used.get("$ref").is_none() {
            return Ok(tidy(used));
        }
        let mut generated = self.take()?;
        let schema =
            generated.remove(name.as_ref()).ok_or_else(|| Error::Schema(format!("{name} generated no schema")))?;
        self.keep(generated)?;
        Ok(schema)
    }

    /// The schema of each variant of the tagged enum `T`, in declaration order, keyed by the
    /// value of `tag`. Properties that `T` declares beside its variants (the siblings of a
    /// `#[serde(flatten)]` enum, such as `timestamp`) are added to every variant.
    pub(crate) fn variants<T: JsonSchema>(&mut self, tag: &str) -> Result<Vec<Variant>, Error> {
        split(&T::schema_name(), &self.inline::<T>()?, tag)
    }

    /// Every named schema used so far, for `components.schemas`.
    pub(crate) fn definitions(mut self) -> Result<Map<String, Value>, Error> {
        let generated = self.take()?;
        self.keep(generated)?;
        Ok(self.taken)
    }

    fn take(&mut self) -> Result<Map<String, Value>, Error> {
        Ok(self.generator.take_definitions(true).into_iter().map(|(name, schema)| (name, tidy(schema))).collect())
    }

    /// Keeps named schemas; a name already kept must have the same schema.
    fn keep(&mut self, schemas: Map<String, Value>) -> Result<(), Error> {
        for (name, schema) in schemas {
            match self.taken.get(&name) {
                Some(kept) if *kept != schema => {
                    return Err(Error::Schema(format!("two different types are both named {name}")));
                }
                _ => {
                    self.taken.insert(name, schema);
                }
            }
        }
        Ok(())
    }
}

/// Splits a tagged enum's schema (`oneOf` of objects, each pinning `tag` with `const`) into its
/// variants, each with the enum's shared properties added.
fn split(name: &str, schema: &Value, tag: &str) -> Result<Vec<Variant>, Error> {
    let branches = schema
        .get("oneOf")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Schema(format!("{name} is not a tagged enum (no oneOf)")))?;
    let shared_properties = schema.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
    let shared_required = schema.get("required").and_then(Value::as_array).cloned().unwrap_or_default();
    branches
        .iter()
        .map(|branch| {
            let mut branch = branch.clone();
            let tag_value = branch
                .pointer(&format!("/properties/{tag}/const"))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| Error::Schema(format!("a variant of {name} does not pin `{tag}` with const")))?;
            if let Some(properties) = branch.get_mut("properties").and_then(Value::as_object_mut) {
                properties.extend(shared_properties.clone());
            }
            if let Some(required) = branch.get_mut("required").and_then(Value::as_array_mut) {
                required.extend(shared_required.iter().cloned());
            }
            Ok(Variant { tag_value, schema: branch })
        })
        .collect()
}

/// A schema as the documents show it: descriptions as paragraphs (the line breaks of wrapped
/// doc comments removed, blank lines kept), in every nested schema.
fn tidy(mut schema: Value) -> Value {
    fn visit(value: &mut Value) {
        match value {
            Value::Object(object) => {
                for (key, child) in object.iter_mut() {
                    match child {
                        Value::String(text) if key == "description" => *text = paragraphs(text),
                        _ => visit(child),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(visit),
            _ => {}
        }
    }
    visit(&mut schema);
    schema
}

/// `text` with the line breaks inside paragraphs made spaces.
pub(crate) fn paragraphs(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| paragraph.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wrapped_lines_join_and_paragraphs_stay() {
        assert_eq!(paragraphs("one\ntwo\n\nthree"), "one two\n\nthree");
        assert_eq!(
            tidy(json!({"description": "a\nb", "x": {"description": "c\nd"}})),
            json!({"description": "a b", "x": {"description": "c d"}})
        );
    }

    #[test]
    fn a_variant_gets_the_shared_properties_and_names_its_tag() {
        let schema = json!({
            "properties": {"timestamp": {"type": "integer"}},
            "required": ["timestamp"],
            "oneOf": [{"properties": {"type": {"const": "a"}}, "required": ["type"]}],
        });
        let variants = split("Frame", &schema, "type").expect("splits");
        assert_eq!(variants[0].tag_value, "a");
        assert_eq!(variants[0].schema["required"], json!(["type", "timestamp"]));
        assert!(split("Frame", &json!({"oneOf": [{"properties": {}}]}), "type").is_err());
    }
}

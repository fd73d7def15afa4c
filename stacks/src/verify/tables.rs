//! The tables, exactly as the store queries them: key schema, key attribute types, global
//! secondary indexes and TTL.

use super::template::{TABLE, is_true, prop};
use super::{FindingKind, Report, View};
use contract::{GlobalIndex, KeyAttribute, TableSchema};
use serde_json::Value;

pub(super) fn check(view: &View<'_>, report: &mut Report) {
    for schema in view.contract.tables {
        let id = schema.logical_id;
        match view.resources.type_of(id) {
            Some(TABLE) => check_table(schema, view.resources.properties(id), report),
            Some(other) => report.add(
                FindingKind::TableSchema,
                id,
                "Type",
                format!("is a {other}, not a DynamoDB table: every request that uses {} fails", schema.name_env),
            ),
            None => report.add(
                FindingKind::TableSchema,
                id,
                "Type",
                format!("the table is missing: every request that uses {} fails", schema.name_env),
            ),
        }
    }
}

fn check_table(schema: &TableSchema, properties: &Value, report: &mut Report) {
    let id = schema.logical_id;
    let expected = key_schema(schema.partition_key, schema.sort_key);
    let actual = read_key_schema(prop(properties, "KeySchema"));
    if actual != expected {
        report.add(
            FindingKind::TableSchema,
            id,
            "KeySchema",
            format!(
                "is {} but the store keys items by {}: every read and write of the table fails with \
                 ValidationException",
                show(&actual),
                show(&expected)
            ),
        );
    }
    check_attribute_types(schema, properties, report);
    for index in schema.global_indexes {
        check_index(schema, index, properties, report);
    }
    check_ttl(schema, properties, report);
}

/// (attribute, key type) pairs, partition key first.
type Keys = Vec<(String, String)>;

fn key_schema(partition: KeyAttribute, sort: Option<KeyAttribute>) -> Keys {
    std::iter::once((partition.name.to_owned(), "HASH".to_owned()))
        .chain(sort.map(|key| (key.name.to_owned(), "RANGE".to_owned())))
        .collect()
}

/// A `KeySchema` list, HASH before RANGE whatever the written order.
fn read_key_schema(value: &Value) -> Keys {
    let mut keys: Keys = value
        .as_array()
        .into_iter()
        .flatten()
        .map(|element| {
            let text = |name: &str| prop(element, name).as_str().unwrap_or("?").to_owned();
            (text("AttributeName"), text("KeyType"))
        })
        .collect();
    keys.sort_by_key(|(_, kind)| kind != "HASH");
    keys
}

fn show(keys: &Keys) -> String {
    if keys.is_empty() {
        return "nothing".to_owned();
    }
    keys.iter().map(|(name, kind)| format!("{name} ({kind})")).collect::<Vec<_>>().join(", ")
}

fn check_attribute_types(schema: &TableSchema, properties: &Value, report: &mut Report) {
    let definitions = prop(properties, "AttributeDefinitions");
    for key in schema.key_attributes() {
        let actual = definitions
            .as_array()
            .into_iter()
            .flatten()
            .find(|definition| prop(definition, "AttributeName").as_str() == Some(key.name))
            .and_then(|definition| prop(definition, "AttributeType").as_str());
        let problem = match actual {
            Some(code) if code == key.kind.code() => continue,
            Some(code) => {
                format!("types the key {} as {code} but the store writes it as {}", key.name, key.kind.code())
            }
            None => format!("does not define the key attribute {} ({})", key.name, key.kind.code()),
        };
        report.add(
            FindingKind::TableSchema,
            schema.logical_id,
            format!("AttributeDefinitions.{}", key.name),
            format!("{problem}: the store's writes and queries keyed by it fail with ValidationException"),
        );
    }
}

fn check_index(schema: &TableSchema, index: &GlobalIndex, properties: &Value, report: &mut Report) {
    let found = prop(properties, "GlobalSecondaryIndexes")
        .as_array()
        .into_iter()
        .flatten()
        .find(|candidate| prop(candidate, "IndexName").as_str() == Some(index.name));
    let problem = match found {
        None => Some(format!("has no index {}", index.name)),
        Some(found) => {
            let expected = key_schema(index.partition_key, index.sort_key);
            let actual = read_key_schema(prop(found, "KeySchema"));
            let projection = prop(prop(found, "Projection"), "ProjectionType").as_str();
            if actual != expected {
                Some(format!("keys index {} by {} instead of {}", index.name, show(&actual), show(&expected)))
            } else if projection != Some(index.projection.code()) {
                Some(format!(
                    "projects {} into index {} instead of {}",
                    projection.unwrap_or("nothing"),
                    index.name,
                    index.projection.code()
                ))
            } else {
                None
            }
        }
    };
    if let Some(problem) = problem {
        report.add(
            FindingKind::TableSchema,
            schema.logical_id,
            "GlobalSecondaryIndexes",
            format!("{problem}: {}", index_consequence(index)),
        );
    }
}

/// What users see when the store's queries on `index` fail.
fn index_consequence(index: &GlobalIndex) -> String {
    if index.name == contract::tables::connections::BY_SESSION_INDEX {
        format!("the fan-out query on index {} fails: listeners never receive broadcasts", index.name)
    } else {
        format!("the store's queries on index {} fail", index.name)
    }
}

fn check_ttl(schema: &TableSchema, properties: &Value, report: &mut Report) {
    let Some(attribute) = schema.ttl_attribute else {
        return;
    };
    let specification = prop(properties, "TimeToLiveSpecification");
    let enabled = is_true(prop(specification, "Enabled"));
    if !enabled || prop(specification, "AttributeName").as_str() != Some(attribute) {
        report.add(
            FindingKind::TableSchema,
            schema.logical_id,
            "TimeToLiveSpecification",
            format!(
                "does not expire items by {attribute}: rows of ended sessions and dropped connections are never \
                 deleted, and the table only grows (AWS_FACTS 10)"
            ),
        );
    }
}

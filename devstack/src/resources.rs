//! The template's stateful resources made on the local endpoint: each `AWS::DynamoDB::Table`
//! from its own `Properties` (keys, attribute definitions, global secondary indexes, TTL) and
//! each `AWS::Kinesis::Stream`.

use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use serde_json::Value;

fn text<'a>(value: &'a Value, name: &str, owner: &str) -> Result<&'a str> {
    value.get(name).and_then(Value::as_str).with_context(|| format!("{owner}: {name} is missing or not a string"))
}

fn key_schema(value: &Value, owner: &str) -> Result<Vec<KeySchemaElement>> {
    let elements = value.as_array().with_context(|| format!("{owner}: KeySchema is not a list"))?;
    elements
        .iter()
        .map(|element| {
            Ok(KeySchemaElement::builder()
                .attribute_name(text(element, "AttributeName", owner)?)
                .key_type(KeyType::from(text(element, "KeyType", owner)?))
                .build()?)
        })
        .collect()
}

/// Creates the table `name` as `properties` (a template's `AWS::DynamoDB::Table`) declares it.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str, properties: &Value) -> Result<()> {
    let owner = name;
    let definitions = properties
        .get("AttributeDefinitions")
        .and_then(Value::as_array)
        .with_context(|| format!("{owner}: AttributeDefinitions is missing"))?
        .iter()
        .map(|definition| {
            Ok(AttributeDefinition::builder()
                .attribute_name(text(definition, "AttributeName", owner)?)
                .attribute_type(ScalarAttributeType::from(text(definition, "AttributeType", owner)?))
                .build()?)
        })
        .collect::<Result<Vec<_>>>()?;
    let billing = properties.get("BillingMode").and_then(Value::as_str).unwrap_or("PROVISIONED");
    if billing != "PAY_PER_REQUEST" {
        bail!("{owner}: only on-demand (PAY_PER_REQUEST) tables are made locally");
    }
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(definitions))
        .set_key_schema(Some(key_schema(properties.get("KeySchema").unwrap_or(&Value::Null), owner)?));
    for index in properties.get("GlobalSecondaryIndexes").and_then(Value::as_array).into_iter().flatten() {
        let projection = index.get("Projection").unwrap_or(&Value::Null);
        let mut projection_builder =
            Projection::builder().projection_type(ProjectionType::from(text(projection, "ProjectionType", owner)?));
        for attribute in projection.get("NonKeyAttributes").and_then(Value::as_array).into_iter().flatten() {
            if let Some(attribute) = attribute.as_str() {
                projection_builder = projection_builder.non_key_attributes(attribute);
            }
        }
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(text(index, "IndexName", owner)?)
                .set_key_schema(Some(key_schema(index.get("KeySchema").unwrap_or(&Value::Null), owner)?))
                .projection(projection_builder.build())
                .build()?,
        );
    }
    request
        .send()
        .await
        .map_err(|error| anyhow::anyhow!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(error)))
        .with_context(|| format!("creating table {name}"))?;
    if let Some(ttl) = properties.get("TimeToLiveSpecification")
        && ttl.get("Enabled").and_then(Value::as_bool) == Some(true)
    {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(text(ttl, "AttributeName", owner)?)
                    .build()?,
            )
            .send()
            .await
            .map_err(|error| anyhow::anyhow!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(error)))
            .with_context(|| format!("enabling TTL on {name}"))?;
    }
    Ok(())
}

/// Creates the stream `name` (one shard: the local endpoint has no on-demand capacity).
pub async fn create_stream(client: &aws_sdk_kinesis::Client, name: &str) -> Result<()> {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(1)
        .send()
        .await
        .map_err(|error| anyhow::anyhow!("{}", aws_sdk_kinesis::error::DisplayErrorContext(error)))
        .with_context(|| format!("creating stream {name}"))?;
    Ok(())
}

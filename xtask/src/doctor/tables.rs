//! Check group `tables`: each contract table as DynamoDB describes it **live**, and the audio
//! stream.
//!
//! For each table of the contract (its physical name from `ListStackResources`):
//!
//! - `tables.<LogicalId>.keys` (`DescribeTable`): the table exists, is usable (`ACTIVE` or
//!   `UPDATING`), and is keyed and typed as the store queries it;
//! - `tables.<LogicalId>.index` (tables the contract gives an index): the fan-out index, its
//!   keys and projection, and its status: `CREATING` fails (DynamoDB refuses queries on an
//!   index while it backfills);
//! - `tables.<LogicalId>.ttl` (`DescribeTimeToLive`): expiry enabled on the attribute the
//!   contract names; disabled, rows of closed connections and ended sessions are never
//!   removed. `ENABLING` warns (expiry starts once it is `ENABLED`);
//! - `tables.<LogicalId>.pitr` (`DescribeContinuousBackups`): point-in-time recovery is on when
//!   the synthesized template asks for it. Off when wanted is a **warning**, not a failure:
//!   clients see nothing wrong today; what is lost is the way back from a bad release or a
//!   deletion (a restore to any second of the last 35 days), which the stage asked for;
//!
//! and `tables.AudioStream.status` (`DescribeStreamSummary`): the Kinesis stream the messages
//! function writes speakers' audio to exists and is `ACTIVE` (or `UPDATING`).
//!
//! Keys, attribute types, the index's keys and projection, and TTL are judged by the contract
//! verifier itself: the live description is laid over the synthesized template as the table's
//! CloudFormation properties ([`overlay`]) and [`stacks::verify()`] runs on the result, so the
//! contract's judgment stays in one place; only the findings the live values add are reported.
//! What the verifier does not know (statuses, point-in-time recovery) is judged here.
//!
//! A read that fails (no permission, throttled) is a failed check naming the call and the
//! permission it needs.

use super::live;
use super::{Check, Context};
use contract::TableSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stacks::naming;
use stacks::{Finding, StageConfig};

const GROUP: &str = "tables";

/// A table as `DescribeTable` describes it (the response's `Table`, as far as these checks
/// read it; field names as AWS documents them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct TableShape {
    table_name: String,
    table_status: String,
    key_schema: Vec<KeyElement>,
    attribute_definitions: Vec<AttributeDefinition>,
    global_secondary_indexes: Vec<IndexShape>,
}

/// One element of a `KeySchema`: an attribute and its role (`HASH`, `RANGE`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyElement {
    attribute_name: String,
    key_type: String,
}

/// One of `AttributeDefinitions`: an attribute and its type (`S`, `N`, `B`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttributeDefinition {
    attribute_name: String,
    attribute_type: String,
}

/// One of `GlobalSecondaryIndexes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IndexShape {
    index_name: String,
    #[serde(default)]
    key_schema: Vec<KeyElement>,
    #[serde(default)]
    projection: ProjectionShape,
    #[serde(default)]
    index_status: String,
}

/// An index's `Projection`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ProjectionShape {
    projection_type: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    non_key_attributes: Vec<String>,
}

/// `DescribeTimeToLive`'s `TimeToLiveDescription`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct TtlShape {
    time_to_live_status: String,
    attribute_name: Option<String>,
}

/// `DescribeContinuousBackups`' `ContinuousBackupsDescription`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct BackupsShape {
    continuous_backups_status: String,
    point_in_time_recovery_description: Option<PitrShape>,
}

/// `PointInTimeRecoveryDescription`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct PitrShape {
    point_in_time_recovery_status: String,
}

/// What the three calls said about one table; each of the last two may have failed alone
/// (the message names the call and its error).
#[derive(Debug, Clone)]
struct LiveTable {
    table: TableShape,
    ttl: Result<TtlShape, String>,
    backups: Result<BackupsShape, String>,
}

/// A DynamoDB error with its context, as one line.
fn dynamodb_error<E>(error: aws_sdk_dynamodb::error::SdkError<E>) -> String
where
    E: std::error::Error + Send + Sync + 'static,
{
    aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string()
}

/// Reads the table `name`; `Ok(None)` when it does not exist, `Err` (naming the call) when
/// `DescribeTable` failed.
async fn read(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<Option<LiveTable>, String> {
    let described = match client.describe_table().table_name(name).send().await {
        Ok(described) => described,
        Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
            return Ok(None);
        }
        Err(error) => return Err(format!("DescribeTable failed ({})", dynamodb_error(error))),
    };
    let Some(description) = described.table else {
        return Ok(None);
    };
    let keys = |elements: &[aws_sdk_dynamodb::types::KeySchemaElement]| {
        elements
            .iter()
            .map(|element| KeyElement {
                attribute_name: element.attribute_name().to_owned(),
                key_type: element.key_type().as_str().to_owned(),
            })
            .collect::<Vec<_>>()
    };
    let table = TableShape {
        table_name: description.table_name().unwrap_or(name).to_owned(),
        table_status: description.table_status().map(|status| status.as_str().to_owned()).unwrap_or_default(),
        key_schema: keys(description.key_schema()),
        attribute_definitions: description
            .attribute_definitions()
            .iter()
            .map(|definition| AttributeDefinition {
                attribute_name: definition.attribute_name().to_owned(),
                attribute_type: definition.attribute_type().as_str().to_owned(),
            })
            .collect(),
        global_secondary_indexes: description
            .global_secondary_indexes()
            .iter()
            .map(|index| IndexShape {
                index_name: index.index_name().unwrap_or_default().to_owned(),
                key_schema: keys(index.key_schema()),
                projection: ProjectionShape {
                    projection_type: index
                        .projection()
                        .and_then(|projection| projection.projection_type())
                        .map(|kind| kind.as_str().to_owned())
                        .unwrap_or_default(),
                    non_key_attributes: index
                        .projection()
                        .map(|projection| projection.non_key_attributes().to_vec())
                        .unwrap_or_default(),
                },
                index_status: index.index_status().map(|status| status.as_str().to_owned()).unwrap_or_default(),
            })
            .collect(),
    };
    let ttl = match client.describe_time_to_live().table_name(name).send().await {
        Ok(output) => {
            let description = output.time_to_live_description;
            Ok(TtlShape {
                time_to_live_status: description
                    .as_ref()
                    .and_then(|d| d.time_to_live_status())
                    .map(|status| status.as_str().to_owned())
                    .unwrap_or_else(|| "DISABLED".to_owned()),
                attribute_name: description.and_then(|d| d.attribute_name),
            })
        }
        Err(error) => Err(format!("DescribeTimeToLive failed ({})", dynamodb_error(error))),
    };
    let backups = match client.describe_continuous_backups().table_name(name).send().await {
        Ok(output) => {
            let description = output.continuous_backups_description;
            Ok(BackupsShape {
                continuous_backups_status: description
                    .as_ref()
                    .map(|d| d.continuous_backups_status().as_str().to_owned())
                    .unwrap_or_default(),
                point_in_time_recovery_description: description
                    .as_ref()
                    .and_then(|d| d.point_in_time_recovery_description())
                    .map(|pitr| PitrShape {
                        point_in_time_recovery_status: pitr
                            .point_in_time_recovery_status()
                            .map(|status| status.as_str().to_owned())
                            .unwrap_or_default(),
                    }),
            })
        }
        Err(error) => Err(format!("DescribeContinuousBackups failed ({})", dynamodb_error(error))),
    };
    Ok(Some(LiveTable { table, ttl, backups }))
}

/// The synthesized template with `live` laid over the table `logical`'s properties: its keys,
/// attribute definitions, indexes and (when it was read) TTL, as CloudFormation writes them.
fn overlay(synthesized: &Value, logical: &str, live: &LiveTable) -> Option<Value> {
    let mut template = synthesized.clone();
    let properties = template.get_mut("Resources")?.get_mut(logical)?.get_mut("Properties")?.as_object_mut()?;
    properties.insert("KeySchema".into(), serde_json::to_value(&live.table.key_schema).ok()?);
    properties.insert("AttributeDefinitions".into(), serde_json::to_value(&live.table.attribute_definitions).ok()?);
    let indexes: Vec<Value> = live
        .table
        .global_secondary_indexes
        .iter()
        .map(|index| json!({"IndexName": index.index_name, "KeySchema": index.key_schema, "Projection": index.projection}))
        .collect();
    if indexes.is_empty() {
        properties.remove("GlobalSecondaryIndexes");
    } else {
        properties.insert("GlobalSecondaryIndexes".into(), Value::from(indexes));
    }
    if let Ok(ttl) = &live.ttl {
        let enabled = matches!(ttl.time_to_live_status.as_str(), "ENABLED" | "ENABLING");
        let mut specification = json!({"Enabled": enabled});
        if let Some(attribute) = &ttl.attribute_name {
            specification["AttributeName"] = json!(attribute);
        }
        properties.insert("TimeToLiveSpecification".into(), specification);
    }
    Some(template)
}

/// The verifier's findings on the table `logical` that the live values add to the template's.
fn added_findings(synthesized: &Value, logical: &str, live: &LiveTable) -> Vec<Finding> {
    let Some(overlaid) = overlay(synthesized, logical, live) else {
        return Vec::new();
    };
    let before = stacks::verify(synthesized, &contract::CONTRACT);
    stacks::verify(&overlaid, &contract::CONTRACT)
        .into_iter()
        .filter(|finding| finding.logical_id == logical && !before.contains(finding))
        .collect()
}

/// Which check a verifier finding on a table belongs to.
fn aspect(finding: &Finding) -> &'static str {
    match finding.property.as_str() {
        "GlobalSecondaryIndexes" => "index",
        "TimeToLiveSpecification" => "ttl",
        _ => "keys",
    }
}

/// `connectionId (HASH S), ...`: keys with their roles and types.
fn show_keys(keys: &[KeyElement], definitions: &[AttributeDefinition]) -> String {
    keys.iter()
        .map(|key| {
            let kind = definitions
                .iter()
                .find(|definition| definition.attribute_name == key.attribute_name)
                .map(|definition| format!(" {}", definition.attribute_type))
                .unwrap_or_default();
            format!("{} ({}{kind})", key.attribute_name, key.key_type)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the verifier's findings mean, each after the property it is about.
fn consequences(findings: &[&Finding]) -> String {
    findings
        .iter()
        .map(|finding| format!("{} {}", finding.property, finding.consequence))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Where the fixes are run: the stage's name and the region the tables live in.
#[derive(Debug, Clone, Copy)]
struct Place<'a> {
    stage: &'a StageConfig,
    region: &'a str,
}

impl Place<'_> {
    /// The command that deploys the stage.
    fn deploy(&self) -> String {
        live::deploy_command(self.stage)
    }
}

/// `tables.<LogicalId>.<aspect>`.
fn check_id(schema: &TableSchema, aspect: &str) -> String {
    format!("{GROUP}.{}.{aspect}", schema.logical_id)
}

/// A table that was read, as each of its checks judges it.
#[derive(Debug, Clone, Copy)]
struct Table<'a> {
    place: Place<'a>,
    schema: &'a TableSchema,
    /// Its name, as the stack lists it.
    physical: &'a str,
    live: &'a LiveTable,
}

/// The checks of one contract table, from what was read of it.
fn judge(
    place: Place<'_>,
    synthesized: &Value,
    schema: &TableSchema,
    physical: &str,
    live: &Result<Option<LiveTable>, String>,
) -> Vec<Check> {
    let logical = schema.logical_id;
    let id = |aspect: &str| check_id(schema, aspect);
    let unjudged = |reason: &str| {
        let mut checks = Vec::new();
        if !schema.global_indexes.is_empty() {
            checks.push(Check::skip(GROUP, id("index"), reason));
        }
        if schema.ttl_attribute.is_some() {
            checks.push(Check::skip(GROUP, id("ttl"), reason));
        }
        checks.push(Check::skip(GROUP, id("pitr"), reason));
        checks
    };
    let live = match live {
        Err(message) => {
            let mut checks = vec![Check::fail(
                GROUP,
                id("keys"),
                format!("cannot read the table {physical}: {message}"),
                format!(
                    "grant dynamodb:DescribeTable, dynamodb:DescribeTimeToLive and dynamodb:DescribeContinuousBackups \
                     on {physical} to the identity running doctor (or retry if throttled)"
                ),
            )];
            checks.extend(unjudged(&format!("the table could not be read (see {})", id("keys"))));
            return checks;
        }
        Ok(None) => {
            let mut checks = vec![Check::fail(
                GROUP,
                id("keys"),
                format!(
                    "the table {physical} does not exist: every request that uses {} fails (the stack still lists \
                     it: it was deleted outside CloudFormation)",
                    schema.name_env
                ),
                format!(
                    "restore it from a backup under the same name if its items matter; otherwise `{}` after \
                     removing {logical} from the deployed stack (CloudFormation does not recreate a resource it \
                     believes exists)",
                    place.deploy()
                ),
            )];
            checks.extend(unjudged(&format!("the table does not exist (see {})", id("keys"))));
            return checks;
        }
        Ok(Some(live)) => live,
    };
    let findings = added_findings(synthesized, logical, live);
    let of = |wanted: &str| findings.iter().filter(|finding| aspect(finding) == wanted).collect::<Vec<_>>();
    let table = Table { place, schema, physical, live };
    let mut checks = vec![keys_check(table, &of("keys"))];
    if !schema.global_indexes.is_empty() {
        checks.push(index_check(table, &of("index")));
    }
    if schema.ttl_attribute.is_some() {
        checks.push(ttl_check(table, &of("ttl")));
    }
    checks.push(pitr_check(table, synthesized));
    checks
}

/// `tables.<LogicalId>.keys`: the keys the verifier judged, and the table's status.
fn keys_check(table: Table<'_>, findings: &[&Finding]) -> Check {
    let Table { place, schema, physical, live } = table;
    let id = check_id(schema, "keys");
    let table = &live.table;
    let status = table.table_status.as_str();
    let described = show_keys(&table.key_schema, &table.attribute_definitions);
    if !findings.is_empty() {
        return Check::fail(
            GROUP,
            id,
            format!("{physical} is keyed {described}: {}", consequences(findings)),
            format!(
                "a table's key cannot change in place: `cargo xtask diff --stage {}` shows what the deployed \
                 template says; `{} --allow-replacement {}` recreates the table as the contract declares \
                 (CloudFormation replaces it: export its items first if they matter)",
                place.stage.name,
                place.deploy(),
                schema.logical_id
            ),
        );
    }
    match status {
        "ACTIVE" | "UPDATING" => Check::pass(GROUP, id, format!("{physical}: {described}, {status}")),
        "CREATING" => Check::fail(
            GROUP,
            id,
            format!("{physical} is CREATING: every request that uses {} fails until it is ACTIVE", schema.name_env),
            format!("wait: aws dynamodb wait table-exists --table-name {physical} --region {}", place.region),
        ),
        "INACCESSIBLE_ENCRYPTION_CREDENTIALS" => Check::fail(
            GROUP,
            id,
            format!(
                "{physical} cannot reach its KMS key: every request that uses {} fails (DynamoDB archives the table \
                 after seven days of this)",
                schema.name_env
            ),
            "re-enable the table's KMS key or restore the grant DynamoDB uses, then run doctor again",
        ),
        other => Check::fail(
            GROUP,
            id,
            format!(
                "{physical} is {}: every request that uses {} fails",
                if other.is_empty() { "in no known status" } else { other },
                schema.name_env
            ),
            format!("read the table's status in the DynamoDB console; when it is gone, {}", place.deploy()),
        ),
    }
}

/// `tables.<LogicalId>.index`: the index the verifier judged, and its status.
fn index_check(table: Table<'_>, findings: &[&Finding]) -> Check {
    let Table { place, schema, physical, live } = table;
    let id = check_id(schema, "index");
    if !findings.is_empty() {
        return Check::fail(
            GROUP,
            id,
            format!("{physical}: {}", consequences(findings)),
            format!(
                "`{}` (CloudFormation adds or recreates the index in place; queries on it work once it is ACTIVE)",
                place.deploy()
            ),
        );
    }
    let mut described = Vec::new();
    for expected in schema.global_indexes {
        let Some(index) = live.table.global_secondary_indexes.iter().find(|index| index.index_name == expected.name)
        else {
            continue; // the verifier reported it
        };
        let status = index.index_status.as_str();
        let meaning = if expected.name == contract::tables::connections::BY_SESSION_INDEX {
            "the fan-out query fails: listeners receive no broadcasts"
        } else {
            "the store's queries on it fail"
        };
        match status {
            "ACTIVE" | "UPDATING" => described.push(format!(
                "{} on {}, {}, {status}",
                index.index_name,
                show_keys(&index.key_schema, &live.table.attribute_definitions),
                index.projection.projection_type
            )),
            "CREATING" => {
                return Check::fail(
                    GROUP,
                    id,
                    format!(
                        "index {} of {physical} is CREATING: DynamoDB refuses queries on an index while it backfills, \
                         so {meaning} until it is ACTIVE",
                        index.index_name
                    ),
                    format!(
                        "wait until it is ACTIVE (minutes to hours, with the table's size): aws dynamodb describe-table \
                         --table-name {physical} --region {} --query \"Table.GlobalSecondaryIndexes[].IndexStatus\"",
                        place.region
                    ),
                );
            }
            other => {
                return Check::fail(
                    GROUP,
                    id,
                    format!("index {} of {physical} is {other}: {meaning}", index.index_name),
                    format!("`{}` once the deletion is over (CloudFormation recreates the index)", place.deploy()),
                );
            }
        }
    }
    Check::pass(GROUP, id, described.join("; "))
}

/// `tables.<LogicalId>.ttl`: TTL as the verifier judged it; `ENABLING` warns.
fn ttl_check(table: Table<'_>, findings: &[&Finding]) -> Check {
    let Table { place, schema, physical, live } = table;
    let id = check_id(schema, "ttl");
    let wanted = schema.ttl_attribute.unwrap_or_default();
    let ttl = match &live.ttl {
        Ok(ttl) => ttl,
        Err(message) => {
            return Check::fail(
                GROUP,
                id,
                format!("cannot read the TTL of {physical}: {message}"),
                format!(
                    "grant dynamodb:DescribeTimeToLive on {physical} to the identity running doctor (or retry if throttled)"
                ),
            );
        }
    };
    let status = ttl.time_to_live_status.as_str();
    // AWS names the attribute only while TTL is on (or turning on); moto names it always.
    let on = ttl
        .attribute_name
        .as_deref()
        .filter(|_| matches!(status, "ENABLED" | "ENABLING"))
        .map(|attribute| format!(" on {attribute}"))
        .unwrap_or_default();
    if !findings.is_empty() {
        let enable = format!(
            "aws dynamodb update-time-to-live --table-name {physical} --time-to-live-specification \
             Enabled=true,AttributeName={wanted} --region {}",
            place.region
        );
        let wrong_attribute = ttl.attribute_name.as_deref().is_some_and(|attribute| attribute != wanted)
            && matches!(status, "ENABLED" | "ENABLING");
        let fix = if wrong_attribute {
            format!(
                "disable the TTL on {} first (aws dynamodb update-time-to-live --table-name {physical} \
                 --time-to-live-specification Enabled=false,AttributeName={} --region {}), then, once it is DISABLED \
                 (AWS allows one TTL change per hour): {enable}",
                ttl.attribute_name.as_deref().unwrap_or_default(),
                ttl.attribute_name.as_deref().unwrap_or_default(),
                place.region
            )
        } else {
            format!(
                "{enable} (a deploy does not turn it back on: CloudFormation believes it is on, as its template says)"
            )
        };
        return Check::fail(GROUP, id, format!("TTL is {status}{on}: {}", consequences(findings)), fix);
    }
    if status == "ENABLING" {
        return Check::warn(
            GROUP,
            id,
            format!("TTL is ENABLING{on}: expired rows are not deleted until it is ENABLED (AWS takes up to an hour)"),
            "nothing to do: run doctor again within the hour",
        );
    }
    Check::pass(GROUP, id, format!("TTL {status}{on}"))
}

/// `tables.<LogicalId>.pitr`: point-in-time recovery on when the template asks for it.
fn pitr_check(table: Table<'_>, synthesized: &Value) -> Check {
    let Table { place, schema, physical, live } = table;
    let id = check_id(schema, "pitr");
    let wanted = synthesized["Resources"][schema.logical_id]["Properties"]["PointInTimeRecoverySpecification"]
        ["PointInTimeRecoveryEnabled"]
        .as_bool()
        .unwrap_or(false);
    let backups = match &live.backups {
        Ok(backups) => backups,
        Err(message) => {
            return Check::fail(
                GROUP,
                id,
                format!("cannot read the backups of {physical}: {message}"),
                format!(
                    "grant dynamodb:DescribeContinuousBackups on {physical} to the identity running doctor (or retry \
                     if throttled)"
                ),
            );
        }
    };
    let status = backups
        .point_in_time_recovery_description
        .as_ref()
        .map(|pitr| pitr.point_in_time_recovery_status.as_str())
        .filter(|status| !status.is_empty())
        .unwrap_or("DISABLED");
    match (wanted, status) {
        (true, "ENABLED") => Check::pass(GROUP, id, "point-in-time recovery ENABLED"),
        (true, other) => Check::warn(
            GROUP,
            id,
            format!(
                "point-in-time recovery is {other} though the stage asks for it: clients see nothing wrong, but the \
                 table cannot be restored to a moment before a bad release or a deletion"
            ),
            format!(
                "aws dynamodb update-continuous-backups --table-name {physical} --point-in-time-recovery-specification \
                 PointInTimeRecoveryEnabled=true --region {} (a deploy does not turn it back on: CloudFormation \
                 believes it is on)",
                place.region
            ),
        ),
        (false, other) => {
            Check::pass(GROUP, id, format!("point-in-time recovery {other} (the stage does not ask for it)"))
        }
    }
}

/// The audio stream's check, from its status (`None`: it does not exist) or the read's error.
fn stream_check(place: Place<'_>, physical: Option<&str>, live: &Result<Option<String>, String>) -> Check {
    let id = format!("{GROUP}.{}.status", naming::AUDIO_STREAM);
    let dropped = "speakers' audio is refused: sendAudio is answered \"the audio stream is busy; resend the chunk\" \
                   and no audio reaches the stream";
    let Some(physical) = physical else {
        return Check::fail(
            GROUP,
            id,
            format!("the stack lists no stream {}: {dropped}", naming::AUDIO_STREAM),
            place.deploy(),
        );
    };
    match live {
        Err(message) => Check::fail(
            GROUP,
            id,
            format!("cannot read the stream {physical}: {message}"),
            format!(
                "grant kinesis:DescribeStreamSummary on {physical} to the identity running doctor (or retry if throttled)"
            ),
        ),
        Ok(None) => Check::fail(
            GROUP,
            id,
            format!("the stream {physical} does not exist (deleted outside CloudFormation): {dropped}"),
            format!(
                "`{}` after removing {} from the deployed stack (CloudFormation does not recreate a resource it \
                 believes exists)",
                place.deploy(),
                naming::AUDIO_STREAM
            ),
        ),
        Ok(Some(status)) => match status.as_str() {
            "ACTIVE" | "UPDATING" => Check::pass(GROUP, id, format!("{physical}: {status}")),
            "CREATING" => Check::fail(
                GROUP,
                id,
                format!("the stream {physical} is CREATING: until it is ACTIVE, {dropped}"),
                format!("wait: aws kinesis wait stream-exists --stream-name {physical} --region {}", place.region),
            ),
            other => Check::fail(GROUP, id, format!("the stream {physical} is {other}: {dropped}"), place.deploy()),
        },
    }
}

/// The status of the stream `name`; `Ok(None)` when it does not exist.
async fn read_stream(client: &aws_sdk_kinesis::Client, name: &str) -> Result<Option<String>, String> {
    match client.describe_stream_summary().stream_name(name).send().await {
        Ok(output) => Ok(output.stream_description_summary.map(|summary| summary.stream_status().as_str().to_owned())),
        Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(None),
        Err(error) => {
            Err(format!("DescribeStreamSummary failed ({})", aws_sdk_kinesis::error::DisplayErrorContext(error)))
        }
    }
}

/// The `tables` checks of the live stage.
pub(super) async fn checks(context: &Context) -> Vec<Check> {
    let region = context.region();
    let place = Place { stage: &context.stage, region: &region };
    let tables = contract::CONTRACT.tables;
    if context.stack.is_none() {
        let mut checks: Vec<Check> = tables
            .iter()
            .map(|schema| Check::skip(GROUP, check_id(schema, "keys"), "no stack to read (see stack.exists)"))
            .collect();
        checks.push(Check::skip(
            GROUP,
            format!("{GROUP}.{}.status", naming::AUDIO_STREAM),
            "no stack to read (see stack.exists)",
        ));
        return checks;
    }
    let dynamodb = aws_sdk_dynamodb::Client::new(&context.sdk);
    let mut checks = Vec::new();
    for schema in tables {
        let Some(physical) = context.physical(schema.logical_id) else {
            checks.push(Check::fail(
                GROUP,
                check_id(schema, "keys"),
                format!(
                    "the stack lists no table {}: every request that uses {} fails",
                    schema.logical_id, schema.name_env
                ),
                place.deploy(),
            ));
            continue;
        };
        let live = read(&dynamodb, physical).await;
        checks.extend(judge(place, &context.synthesized, schema, physical, &live));
    }
    let stream = context.physical(naming::AUDIO_STREAM);
    let live = match stream {
        Some(name) => read_stream(&aws_sdk_kinesis::Client::new(&context.sdk), name).await,
        None => Ok(None),
    };
    checks.push(stream_check(place, stream, &live));
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;
    use contract::tables::{CONNECTIONS, SESSIONS};

    fn stage() -> StageConfig {
        stacks::stages::dev()
    }

    fn synthesized() -> Value {
        stacks::synthesize(&contract::CONTRACT, &stage()).expect("dev synthesizes").to_value()
    }

    /// The Connections table as `DescribeTable`, `DescribeTimeToLive` and
    /// `DescribeContinuousBackups` document their responses, healthy.
    fn connections() -> LiveTable {
        let described = json!({
            "Table": {
                "TableName": "session-service-dev-ConnectionsTable-1ABC",
                "TableStatus": "ACTIVE",
                "TableArn": "arn:aws:dynamodb:eu-west-1:123456789012:table/session-service-dev-ConnectionsTable-1ABC",
                "ItemCount": 0,
                "AttributeDefinitions": [
                    {"AttributeName": "audience", "AttributeType": "S"},
                    {"AttributeName": "connectionId", "AttributeType": "S"},
                    {"AttributeName": "sessionId", "AttributeType": "S"}
                ],
                "KeySchema": [{"AttributeName": "connectionId", "KeyType": "HASH"}],
                "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
                "GlobalSecondaryIndexes": [{
                    "IndexName": "bySessionAudience",
                    "KeySchema": [
                        {"AttributeName": "sessionId", "KeyType": "HASH"},
                        {"AttributeName": "audience", "KeyType": "RANGE"}
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                    "IndexStatus": "ACTIVE",
                    "IndexSizeBytes": 0,
                    "ItemCount": 0
                }]
            }
        });
        let ttl = json!({"TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}});
        let backups = json!({"ContinuousBackupsDescription": {
            "ContinuousBackupsStatus": "ENABLED",
            "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "ENABLED"}
        }});
        LiveTable {
            table: serde_json::from_value(described["Table"].clone()).expect("table"),
            ttl: Ok(serde_json::from_value(ttl["TimeToLiveDescription"].clone()).expect("ttl")),
            backups: Ok(serde_json::from_value(backups["ContinuousBackupsDescription"].clone()).expect("backups")),
        }
    }

    fn judged(schema: &TableSchema, live: LiveTable) -> Vec<Check> {
        let stage = stage();
        let place = Place { stage: &stage, region: "eu-west-1" };
        judge(place, &synthesized(), schema, "session-service-dev-ConnectionsTable-1ABC", &Ok(Some(live)))
    }

    fn check<'a>(checks: &'a [Check], aspect: &str) -> &'a Check {
        checks.iter().find(|check| check.id.ends_with(&format!(".{aspect}"))).expect("checked")
    }

    #[test]
    fn a_healthy_table_passes_every_check() {
        let checks = judged(&CONNECTIONS, connections());
        let ids: Vec<&str> = checks.iter().map(|check| check.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "tables.ConnectionsTable.keys",
                "tables.ConnectionsTable.index",
                "tables.ConnectionsTable.ttl",
                "tables.ConnectionsTable.pitr"
            ]
        );
        assert!(checks.iter().all(|check| check.status == Status::Pass), "{checks:#?}");
        assert!(
            check(&checks, "index")
                .message
                .contains("bySessionAudience on sessionId (HASH S), audience (RANGE S), ALL")
        );
    }

    #[test]
    fn an_index_still_creating_fails_the_fan_out() {
        let mut live = connections();
        live.table.global_secondary_indexes[0].index_status = "CREATING".into();
        let checks = judged(&CONNECTIONS, live);
        let index = check(&checks, "index");
        assert_eq!(index.status, Status::Fail);
        assert!(index.message.contains("CREATING") && index.message.contains("listeners receive no broadcasts"));
        assert!(index.fix.contains("IndexStatus"), "{}", index.fix);
        assert_eq!(check(&checks, "keys").status, Status::Pass);
    }

    #[test]
    fn an_index_keyed_or_projected_otherwise_fails_through_the_verifier() {
        let mut live = connections();
        live.table.global_secondary_indexes[0].projection.projection_type = "KEYS_ONLY".into();
        let index = judged(&CONNECTIONS, live).into_iter().find(|check| check.id.ends_with(".index")).expect("index");
        assert_eq!(index.status, Status::Fail);
        assert!(index.message.contains("KEYS_ONLY") && index.message.contains("fan-out"), "{}", index.message);
        let mut live = connections();
        live.table.global_secondary_indexes.clear();
        let index = judged(&CONNECTIONS, live).into_iter().find(|check| check.id.ends_with(".index")).expect("index");
        assert_eq!(index.status, Status::Fail);
        assert!(index.message.contains("has no index bySessionAudience"), "{}", index.message);
    }

    #[test]
    fn ttl_enabling_warns_and_disabled_or_elsewhere_fails() {
        let mut live = connections();
        live.ttl = Ok(TtlShape { time_to_live_status: "ENABLING".into(), attribute_name: Some("ttl".into()) });
        let ttl = check(&judged(&CONNECTIONS, live), "ttl").clone();
        assert_eq!(ttl.status, Status::Warn, "{ttl:?}");

        let mut live = connections();
        live.ttl = Ok(TtlShape { time_to_live_status: "DISABLED".into(), attribute_name: None });
        let ttl = check(&judged(&CONNECTIONS, live), "ttl").clone();
        assert_eq!(ttl.status, Status::Fail);
        assert!(ttl.message.contains("never deleted"), "{}", ttl.message);
        assert!(ttl.fix.contains("update-time-to-live") && ttl.fix.contains("AttributeName=ttl"), "{}", ttl.fix);

        let mut live = connections();
        live.ttl = Ok(TtlShape { time_to_live_status: "ENABLED".into(), attribute_name: Some("expiresAt".into()) });
        let ttl = check(&judged(&CONNECTIONS, live), "ttl").clone();
        assert_eq!(ttl.status, Status::Fail);
        assert!(ttl.fix.starts_with("disable the TTL on expiresAt first"), "{}", ttl.fix);
    }

    #[test]
    fn a_table_keyed_otherwise_fails_its_keys() {
        let mut live = connections();
        live.table.key_schema = vec![
            KeyElement { attribute_name: "sessionId".into(), key_type: "HASH".into() },
            KeyElement { attribute_name: "connectionId".into(), key_type: "RANGE".into() },
        ];
        let checks = judged(&CONNECTIONS, live);
        let keys = check(&checks, "keys");
        assert_eq!(keys.status, Status::Fail);
        assert!(keys.message.contains("ValidationException"), "{}", keys.message);
        assert!(keys.fix.contains("--allow-replacement ConnectionsTable"), "{}", keys.fix);

        let mut live = connections();
        live.table.attribute_definitions[1].attribute_type = "N".into();
        let keys = judged(&CONNECTIONS, live).into_iter().find(|check| check.id.ends_with(".keys")).expect("keys");
        assert_eq!(keys.status, Status::Fail);
        assert!(keys.message.contains("connectionId as N"), "{}", keys.message);
    }

    #[test]
    fn pitr_off_warns_and_unreadable_parts_fail_naming_the_call() {
        let mut live = connections();
        live.backups = Ok(BackupsShape {
            continuous_backups_status: "ENABLED".into(),
            point_in_time_recovery_description: Some(PitrShape { point_in_time_recovery_status: "DISABLED".into() }),
        });
        live.ttl = Err("DescribeTimeToLive failed (AccessDeniedException: not authorized)".into());
        let checks = judged(&CONNECTIONS, live);
        let pitr = check(&checks, "pitr");
        assert_eq!(pitr.status, Status::Warn);
        assert!(pitr.fix.contains("update-continuous-backups"), "{}", pitr.fix);
        let ttl = check(&checks, "ttl");
        assert_eq!(ttl.status, Status::Fail);
        assert!(ttl.message.contains("DescribeTimeToLive") && ttl.fix.contains("dynamodb:DescribeTimeToLive"));
        assert_eq!(check(&checks, "keys").status, Status::Pass);
    }

    #[test]
    fn a_missing_or_unreadable_table_fails_its_keys_and_skips_the_rest() {
        let stage = stage();
        let place = Place { stage: &stage, region: "eu-west-1" };
        let checks = judge(place, &synthesized(), &SESSIONS, "gone", &Ok(None));
        assert_eq!(checks[0].status, Status::Fail);
        assert!(checks[0].message.contains("SESSIONS_TABLE"), "{}", checks[0].message);
        assert!(checks[1..].iter().all(|check| check.status == Status::Skip), "{checks:#?}");
        let checks =
            judge(place, &synthesized(), &SESSIONS, "t", &Err("DescribeTable failed (ThrottlingException)".into()));
        assert_eq!(checks[0].status, Status::Fail);
        assert!(checks[0].fix.contains("dynamodb:DescribeTable"), "{}", checks[0].fix);
    }

    #[test]
    fn the_stream_is_active_or_named_with_what_speakers_see() {
        let stage = stage();
        let place = Place { stage: &stage, region: "eu-west-1" };
        assert_eq!(stream_check(place, Some("audio"), &Ok(Some("ACTIVE".into()))).status, Status::Pass);
        let creating = stream_check(place, Some("audio"), &Ok(Some("CREATING".into())));
        assert_eq!(creating.status, Status::Fail);
        assert!(creating.message.contains("sendAudio"), "{}", creating.message);
        assert_eq!(stream_check(place, Some("audio"), &Ok(None)).status, Status::Fail);
        assert_eq!(stream_check(place, None, &Ok(None)).status, Status::Fail);
    }
}

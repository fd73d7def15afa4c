//! What the xtask test files share: running `cargo xtask` against a local endpoint, SDK
//! clients of that endpoint, the zips a release of fake functions uploads, what a deployed
//! stack lists, and the checks of a doctor report.

#![allow(dead_code, reason = "each test binary uses the part it needs")]

use aws_sdk_sts::config::{Credentials, SharedCredentialsProvider};
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

/// The access key id and secret key of every test's requests (the local endpoint takes any).
const TEST_KEY: &str = "testing";

/// `cargo xtask` with `args`, the test's credentials and `endpoint`, blind to the caller's AWS
/// settings, standard input closed: without `--region` in `args`, the stage's region is the
/// one it uses.
pub(crate) fn xtask_command(endpoint: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    testkit::isolate_aws_environment(&mut command)
        .args(args)
        .args(["--endpoint-url", endpoint])
        .env("AWS_ACCESS_KEY_ID", TEST_KEY)
        .env("AWS_SECRET_ACCESS_KEY", TEST_KEY)
        .stdin(std::process::Stdio::null());
    command
}

/// Runs [`xtask_command`] to its end.
pub(crate) fn xtask(endpoint: &str, args: &[&str]) -> Output {
    xtask_command(endpoint, args).output().expect("xtask runs")
}

/// `cargo xtask deploy --stage dev --no-build --yes` of the zips in `dir` (see [`artifacts`])
/// to `region`, through the assets bucket `bucket` (bucket names are global: each test names
/// its own).
pub(crate) fn deploy_dev(endpoint: &str, dir: &Path, region: &str, bucket: &str) -> Output {
    let dir = dir.to_str().expect("utf-8 path");
    let deploy = ["deploy", "--stage", "dev", "--no-build", "--yes", "--artifacts", dir];
    xtask(endpoint, &[&deploy[..], &["--region", region, "--assets-bucket", bucket]].concat())
}

/// The SDK configuration of the local `endpoint` in `region`, with the test's credentials:
/// `aws_sdk_X::Client::new(&config)` is a client of any service there.
pub(crate) fn sdk_config(endpoint: &str, region: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(TEST_KEY, TEST_KEY, None, None, "test")))
        .build()
}

/// Everything a run printed, standard output then standard error.
pub(crate) fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// One zip per function, as `cargo xtask build` leaves them, with its manifest.
pub(crate) fn artifacts(dir: &Path) -> Vec<(String, String)> {
    let mut manifest = Vec::new();
    let mut hashes = Vec::new();
    for function in contract::functions::ALL {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        writer.start_file("bootstrap", zip::write::SimpleFileOptions::default()).expect("entry");
        writer.write_all(format!("#!/bin/sh\necho {}\n", function.name).as_bytes()).expect("written");
        let bytes = writer.finish().expect("zip").into_inner();
        let path = dir.join(format!("{}.zip", function.name));
        std::fs::write(&path, &bytes).expect("zip written");
        let digest = Sha256::digest(&bytes);
        let code_sha256 = base64::engine::general_purpose::STANDARD.encode(digest);
        manifest.push(json!({
            "function": function.name, "arch": "arm64", "profile": "release", "zip": path, "size": bytes.len(),
            "sha256_hex": digest.iter().map(|b| format!("{b:02x}")).collect::<String>(), "code_sha256": code_sha256,
        }));
        hashes.push((function.name.to_owned(), code_sha256));
    }
    std::fs::write(dir.join("manifest.json"), Value::from(manifest).to_string()).expect("manifest written");
    hashes
}

/// A fresh directory for one test's zips.
pub(crate) fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Logical id → physical id of the resources of `stack`, as `DescribeStackResources` lists them.
pub(crate) async fn physical_ids(
    cloudformation: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> BTreeMap<String, String> {
    let listed = cloudformation.describe_stack_resources().stack_name(stack).send().await.expect("stack resources");
    listed
        .stack_resources()
        .iter()
        .filter_map(|resource| {
            Some((resource.logical_resource_id()?.to_owned(), resource.physical_resource_id()?.to_owned()))
        })
        .collect()
}

/// Updates `stack` with its deployed template as `edit` leaves it, every parameter kept: what a
/// hand edit in the console does (and, unedited, what makes moto read the stack's outputs).
pub(crate) async fn update_template(
    cloudformation: &aws_sdk_cloudformation::Client,
    stack: &str,
    edit: impl FnOnce(&mut Value),
) {
    let deployed = cloudformation.get_template().stack_name(stack).send().await.expect("template");
    let mut template: Value = serde_json::from_str(deployed.template_body().unwrap_or_default()).expect("JSON");
    edit(&mut template);
    let mut update = cloudformation
        .update_stack()
        .stack_name(stack)
        .template_body(template.to_string())
        .capabilities(aws_sdk_cloudformation::types::Capability::CapabilityIam);
    for key in template["Parameters"].as_object().expect("parameters").keys() {
        update = update.parameters(
            aws_sdk_cloudformation::types::Parameter::builder().parameter_key(key).use_previous_value(true).build(),
        );
    }
    update.send().await.expect("updated");
}

/// Makes the tables of a stage deployed to moto what a deploy to AWS leaves: TTL on the
/// contract's attribute, point-in-time recovery on (moto 5.2.5 creates tables from
/// CloudFormation without applying their `TimeToLiveSpecification` or
/// `PointInTimeRecoverySpecification`: both are DISABLED after the deploy). `physical` maps
/// the tables' logical ids to their names.
pub(crate) async fn tables_as_aws_deploys_them(
    dynamodb: &aws_sdk_dynamodb::Client,
    physical: &BTreeMap<String, String>,
) {
    for schema in contract::CONTRACT.tables {
        let name = &physical[schema.logical_id];
        let attribute = schema.ttl_attribute.expect("every table expires its rows");
        set_ttl(dynamodb, name, attribute, true).await;
        dynamodb
            .update_continuous_backups()
            .table_name(name)
            .point_in_time_recovery_specification(
                aws_sdk_dynamodb::types::PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(true)
                    .build()
                    .expect("specification"),
            )
            .send()
            .await
            .expect("point-in-time recovery enabled");
    }
}

/// Turns TTL on `attribute` of `table` on or off, unless it already is.
pub(crate) async fn set_ttl(dynamodb: &aws_sdk_dynamodb::Client, table: &str, attribute: &str, enabled: bool) {
    let described = dynamodb.describe_time_to_live().table_name(table).send().await.expect("TTL described");
    let status = described.time_to_live_description().and_then(|d| d.time_to_live_status()).map(|s| s.as_str());
    if (status == Some("ENABLED")) == enabled {
        return;
    }
    dynamodb
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
                .attribute_name(attribute)
                .enabled(enabled)
                .build()
                .expect("specification"),
        )
        .send()
        .await
        .expect("TTL updated");
}

/// The checks of a `cargo xtask doctor --json` run, by id.
pub(crate) fn checks_by_id(run: &Output) -> BTreeMap<String, Value> {
    let report: Value = serde_json::from_slice(&run.stdout).unwrap_or_else(|_| panic!("a JSON report: {}", text(run)));
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|check| (check["id"].as_str().expect("id").to_owned(), check.clone()))
        .collect()
}

/// A policy of `.github/iam` (the release workflow's roles).
pub(crate) fn iam_policy(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.github/iam").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("policy file")).expect("policy JSON")
}

/// A policy element that IAM takes as one string or a list of them (`Action`, `Resource`), as a
/// list.
pub(crate) fn listed(value: &Value) -> Vec<String> {
    match value {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        other => panic!("a string or a list of strings, not {other}"),
    }
}

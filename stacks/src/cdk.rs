//! A stage's stack as a CDK cloud assembly: what `cdk ls`, `cdk diff` and `cdk deploy --app DIR`
//! read, so that a team whose pipeline and accounts are set up for the CDK deploys this service
//! through the account's CDK bootstrap (its assets bucket and roles), as CDK's own
//! `DefaultStackSynthesizer` would.
//!
//! The pure part: template in, file texts out ([`assembly`]). Writing them and copying the zips
//! is the xtask's (`cargo xtask synth --cdk-out DIR`).
//!
//! The assembly's template is the stage's template with code located the CDK way, and nothing
//! else changed (the contract verifier reads it as it reads the other):
//! - each function's `Code` is `S3Bucket: !Sub cdk-<qualifier>-assets-${AWS::AccountId}-<region>`,
//!   `S3Key: <sha256 of the zip>.zip`, the object the CDK CLI publishes it as; so the
//!   `AssetsBucket` and `<Function>CodeKey` parameters are gone (a CDK template deploys with no
//!   parameter to fill);
//! - the `BootstrapVersion` parameter (read from the bootstrap's SSM parameter) and the
//!   `CheckBootstrapVersion` rule, which refuses an account bootstrapped before version 6, as
//!   every CDK template has them.
//!
//! Every text is JSON with sorted keys ([`crate::template::canonical_json`] read back and
//! printed), whatever order a serde_json map keeps: the same input gives the same bytes.

use crate::naming;
use crate::stages::StageConfig;
use contract::Contract;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The bootstrap qualifier CDK uses unless `cdk bootstrap --qualifier` said otherwise.
pub const QUALIFIER: &str = "hnb659fds";
/// The stack `cdk bootstrap` creates unless `--toolkit-stack-name` said otherwise.
pub const TOOLKIT_STACK: &str = "CDKToolkit";
/// The output of [`TOOLKIT_STACK`] that names its assets bucket.
pub const TOOLKIT_BUCKET_OUTPUT: &str = "BucketName";
/// The template parameter that reads the bootstrap's version from SSM.
pub const BOOTSTRAP_VERSION: &str = "BootstrapVersion";
/// The template rule that refuses a bootstrap older than [`REQUIRED_BOOTSTRAP_VERSION`].
pub const CHECK_BOOTSTRAP_VERSION: &str = "CheckBootstrapVersion";
/// The oldest bootstrap with what the assembly uses: the deploy, CloudFormation execution and
/// file-publishing roles (as CDK's `DefaultStackSynthesizer` requires).
pub const REQUIRED_BOOTSTRAP_VERSION: u32 = 6;
/// The cloud assembly schema version the manifests declare. The pinned CDK CLI reads up to 55;
/// every field used here is older than 36, which CDK CLIs from 2024 on read, so a team's older
/// CLI reads the assembly too.
pub const SCHEMA_VERSION: &str = "36.0.0";

/// The SSM parameter that holds the bootstrap's version.
pub fn bootstrap_version_parameter() -> String {
    format!("/cdk-bootstrap/{QUALIFIER}/version")
}

/// The bootstrap's assets bucket in `region`, with `${AWS::AccountId}` left for CloudFormation
/// (in the template's `Fn::Sub`) or the CDK CLI (in the manifests) to fill.
pub fn assets_bucket(region: &str) -> String {
    format!("cdk-{QUALIFIER}-assets-${{AWS::AccountId}}-{region}")
}

/// The ARN of the bootstrap's `kind` role (`deploy`, `cfn-exec`, `file-publishing`) in
/// `region`, account and partition left as placeholders.
pub fn role_arn(kind: &str, region: &str) -> String {
    format!(
        "arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/cdk-{QUALIFIER}-{kind}-role-${{AWS::AccountId}}-{region}"
    )
}

/// Whether `template` is in the CDK form [`template`] writes (a stack released through the CDK):
/// it carries the [`CHECK_BOOTSTRAP_VERSION`] rule every CDK template has.
pub fn is_cdk_template(template: &Value) -> bool {
    template["Rules"].get(CHECK_BOOTSTRAP_VERSION).is_some()
}

/// Per function of `contract`, the hex SHA-256 of the zip a CDK-form `template` runs, read from
/// its code's `S3Key` (`<sha256>.zip`); functions whose code is not so named are left out.
pub fn zip_hashes(contract: &Contract, template: &Value) -> BTreeMap<String, String> {
    contract
        .functions
        .iter()
        .filter_map(|function| {
            let key = template
                .pointer(&format!("/Resources/{}/Properties/Code/S3Key", naming::function(function.name)))?
                .as_str()?;
            let hash = key.strip_suffix(".zip").filter(|hash| !hash.is_empty())?;
            Some((function.name.to_owned(), hash.to_owned()))
        })
        .collect()
}

/// Why a template cannot be made a CDK one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CdkError {
    #[error("no zip for function `{0}`")]
    MissingZip(String),
    #[error("the template has no `Code` for {0}")]
    MissingCode(String),
}

/// One file of the assembly: its name in the assembly directory and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub name: String,
    pub text: String,
}

/// A function's zip as the assembly holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipAsset {
    pub function: String,
    /// Its file in the assembly directory: `asset.<sha256>.zip`.
    pub file: String,
    /// Its key in the bootstrap's assets bucket: `<sha256>.zip`.
    pub object_key: String,
}

/// A stage's whole assembly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assembly {
    /// `manifest.json`, `<Stack>.template.json`, `<Stack>.assets.json`.
    pub files: Vec<File>,
    /// The zips to copy beside them.
    pub zips: Vec<ZipAsset>,
    /// The template as the assembly holds it.
    pub template: Value,
}

/// The assembly of `stage`, whose template (as `stacks::synthesize` makes it) is `template`;
/// `zips` maps each function of `contract` to the hex SHA-256 of its zip.
pub fn assembly(
    contract: &Contract,
    stage: &StageConfig,
    template: &Value,
    zips: &BTreeMap<String, String>,
) -> Result<Assembly, CdkError> {
    let region = &stage.region;
    let stack = &stage.stack_name;
    let cdk_template = self::template(contract, region, template, zips)?;
    let template_text = pretty(&cdk_template);
    let template_file = format!("{stack}.template.json");
    let template_hash = hex(&Sha256::digest(template_text.as_bytes()));
    let assets_file = format!("{stack}.assets.json");
    let assets_artifact = format!("{stack}.assets");
    let bucket = assets_bucket(region);
    let destination = |object_key: &str| {
        json!({
            format!("current_account-{region}"): {
                "assumeRoleArn": role_arn("file-publishing", region),
                "bucketName": bucket,
                "objectKey": object_key,
                "region": region,
            }
        })
    };

    let mut files = serde_json::Map::new();
    let mut zip_assets = Vec::new();
    for function in contract.functions {
        let hash = &zips[function.name];
        let asset = ZipAsset {
            function: function.name.to_owned(),
            file: format!("asset.{hash}.zip"),
            object_key: format!("{hash}.zip"),
        };
        files.insert(
            hash.clone(),
            json!({
                "displayName": format!("{} code", naming::function(function.name)),
                "source": { "packaging": "file", "path": asset.file },
                "destinations": destination(&asset.object_key),
            }),
        );
        zip_assets.push(asset);
    }
    let template_key = format!("{template_hash}.json");
    files.insert(
        template_hash.clone(),
        json!({
            "displayName": format!("{stack} Template"),
            "source": { "packaging": "file", "path": template_file },
            "destinations": destination(&template_key),
        }),
    );
    let assets = json!({ "version": SCHEMA_VERSION, "files": files, "dockerImages": {} });

    let bootstrap = json!({
        "requiresBootstrapStackVersion": REQUIRED_BOOTSTRAP_VERSION,
        "bootstrapStackVersionSsmParameter": bootstrap_version_parameter(),
    });
    let mut stack_properties = json!({
        "templateFile": template_file,
        "stackName": stack,
        "terminationProtection": false,
        "validateOnSynth": false,
        "assumeRoleArn": role_arn("deploy", region),
        "cloudFormationExecutionRoleArn": role_arn("cfn-exec", region),
        "stackTemplateAssetObjectUrl": format!("s3://{bucket}/{template_key}"),
        "additionalDependencies": [assets_artifact],
    });
    let mut asset_properties = json!({ "file": assets_file });
    for properties in [&mut stack_properties, &mut asset_properties] {
        for (key, value) in bootstrap.as_object().into_iter().flatten() {
            properties[key] = value.clone();
        }
    }
    let environment = format!("aws://unknown-account/{region}");
    let manifest = json!({
        "version": SCHEMA_VERSION,
        "artifacts": {
            assets_artifact.clone(): {
                "type": "cdk:asset-manifest",
                "environment": environment,
                "properties": asset_properties,
            },
            stack.clone(): {
                "type": "aws:cloudformation:stack",
                "environment": environment,
                "properties": stack_properties,
                "dependencies": [assets_artifact],
                "displayName": stack,
            },
        },
    });
    Ok(Assembly {
        files: vec![
            File { name: "manifest.json".into(), text: pretty(&manifest) },
            File { name: template_file, text: template_text },
            File { name: assets_file, text: pretty(&assets) },
        ],
        zips: zip_assets,
        template: cdk_template,
    })
}

/// `template` with code located the CDK way (see the module's docs), for a stack in `region`.
pub fn template(
    contract: &Contract,
    region: &str,
    template: &Value,
    zips: &BTreeMap<String, String>,
) -> Result<Value, CdkError> {
    let mut template = template.clone();
    let bucket = assets_bucket(region);
    for function in contract.functions {
        let hash = zips.get(function.name).ok_or_else(|| CdkError::MissingZip(function.name.to_owned()))?;
        let logical_id = naming::function(function.name);
        let code = template
            .pointer_mut(&format!("/Resources/{logical_id}/Properties/Code"))
            .filter(|code| code.is_object())
            .ok_or_else(|| CdkError::MissingCode(logical_id.clone()))?;
        *code = json!({ "S3Bucket": { "Fn::Sub": bucket }, "S3Key": format!("{hash}.zip") });
        if let Some(parameters) = template["Parameters"].as_object_mut() {
            parameters.remove(&naming::code_key(function.name));
        }
    }
    let parameters = template
        .as_object_mut()
        .map(|object| object.entry("Parameters").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut);
    if let Some(parameters) = parameters {
        parameters.remove(naming::ASSETS_BUCKET);
        parameters.insert(
            BOOTSTRAP_VERSION.into(),
            json!({
                "Type": "AWS::SSM::Parameter::Value<String>",
                "Default": bootstrap_version_parameter(),
                "Description": "Version of the CDK Bootstrap resources in this environment, automatically retrieved \
                                from SSM Parameter Store. [cdk:skip]",
            }),
        );
    }
    let too_old: Vec<String> = (1..REQUIRED_BOOTSTRAP_VERSION).map(|version| version.to_string()).collect();
    template["Rules"] = json!({
        CHECK_BOOTSTRAP_VERSION: {
            "Assertions": [{
                "Assert": { "Fn::Not": [{ "Fn::Contains": [too_old, { "Ref": BOOTSTRAP_VERSION }] }] },
                "AssertDescription": format!(
                    "CDK bootstrap stack version {REQUIRED_BOOTSTRAP_VERSION} required. Please run 'cdk bootstrap' \
                     with a recent version of the CDK CLI."
                ),
            }]
        }
    });
    Ok(template)
}

/// `value` as pretty JSON with every object's keys sorted, ending with a newline.
fn pretty(value: &Value) -> String {
    let sorted: Value = serde_json::from_str(&crate::template::canonical_json(value)).unwrap_or_default();
    let mut text = serde_json::to_string_pretty(&sorted).unwrap_or_default();
    text.push('\n');
    text
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages;

    fn zips() -> BTreeMap<String, String> {
        contract::functions::ALL
            .iter()
            .enumerate()
            .map(|(index, function)| (function.name.to_owned(), format!("{index:064x}")))
            .collect()
    }

    fn dev_assembly() -> (Value, Assembly) {
        let stage = stages::dev();
        let template = crate::synthesize(&contract::CONTRACT, &stage).expect("synthesizes").to_value();
        let assembly = assembly(&contract::CONTRACT, &stage, &template, &zips()).expect("assembles");
        (template, assembly)
    }

    fn file(assembly: &Assembly, name: &str) -> Value {
        let file = assembly.files.iter().find(|file| file.name == name).unwrap_or_else(|| panic!("{name}"));
        serde_json::from_str(&file.text).expect("JSON")
    }

    /// Every `Ref` in `value`, recursively.
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(object) => {
                if let Some(Value::String(target)) = object.get("Ref") {
                    out.push(target.clone());
                }
                object.values().for_each(|value| refs(value, out));
            }
            Value::Array(items) => items.iter().for_each(|value| refs(value, out)),
            _ => {}
        }
    }

    #[test]
    fn only_the_code_location_and_the_bootstrap_check_differ() {
        let (original, assembly) = dev_assembly();
        let cdk = &assembly.template;
        assert!(stacks_verify(cdk).is_empty(), "{:?}", stacks_verify(cdk));
        let without_code = |template: &Value| {
            let mut template = template.clone();
            for function in contract::CONTRACT.functions {
                template["Resources"][naming::function(function.name)]["Properties"]
                    .as_object_mut()
                    .expect("properties")
                    .remove("Code");
            }
            let object = template.as_object_mut().expect("object");
            object.remove("Parameters");
            object.remove("Rules");
            template
        };
        assert_eq!(without_code(cdk), without_code(&original));
        let parameters: Vec<&String> = cdk["Parameters"].as_object().expect("parameters").keys().collect();
        assert_eq!(parameters, [BOOTSTRAP_VERSION]);
        assert!(cdk["Rules"][CHECK_BOOTSTRAP_VERSION].is_object());
        let first = &contract::functions::ALL[0];
        assert_eq!(
            cdk["Resources"][naming::function(first.name)]["Properties"]["Code"],
            json!({ "S3Bucket": { "Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-eu-west-1" },
                    "S3Key": format!("{:064x}.zip", 0) })
        );
    }

    fn stacks_verify(template: &Value) -> Vec<crate::Finding> {
        crate::verify(template, &contract::CONTRACT)
    }

    /// Every `Ref` names a parameter, a resource or a pseudo parameter: nothing points at a
    /// parameter the assembly dropped.
    #[test]
    fn every_reference_resolves() {
        let (_, assembly) = dev_assembly();
        let template = &assembly.template;
        let mut found = Vec::new();
        refs(template, &mut found);
        let known = |id: &String| {
            id.starts_with("AWS::")
                || template["Parameters"].get(id).is_some()
                || template["Resources"].get(id).is_some()
        };
        let unknown: Vec<&String> = found.iter().filter(|id| !known(id)).collect();
        assert!(unknown.is_empty(), "{unknown:?}");
    }

    #[test]
    fn the_manifests_name_each_zip_the_template_and_the_bootstrap() {
        let (_, assembly) = dev_assembly();
        let stack = "session-service-dev";
        let manifest = file(&assembly, "manifest.json");
        let properties = &manifest["artifacts"][stack]["properties"];
        assert_eq!(properties["templateFile"], "session-service-dev.template.json");
        assert_eq!(
            properties["assumeRoleArn"],
            "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/cdk-hnb659fds-deploy-role-${AWS::AccountId}-eu-west-1"
        );
        assert_eq!(properties["bootstrapStackVersionSsmParameter"], "/cdk-bootstrap/hnb659fds/version");
        assert_eq!(manifest["artifacts"][stack]["environment"], "aws://unknown-account/eu-west-1");

        let assets = file(&assembly, "session-service-dev.assets.json");
        let template_text = &assembly.files.iter().find(|file| file.name.ends_with(".template.json")).expect("t").text;
        let template_hash = hex(&Sha256::digest(template_text.as_bytes()));
        let url = properties["stackTemplateAssetObjectUrl"].as_str().expect("url");
        assert!(url.ends_with(&format!("-eu-west-1/{template_hash}.json")), "{url}");
        assert_eq!(assets["files"][&template_hash]["source"]["path"], "session-service-dev.template.json");
        for (function, hash) in zips() {
            let asset = &assets["files"][&hash];
            assert_eq!(
                asset["source"],
                json!({ "packaging": "file", "path": format!("asset.{hash}.zip") }),
                "{function}"
            );
            let destination = &asset["destinations"]["current_account-eu-west-1"];
            assert_eq!(destination["objectKey"], format!("{hash}.zip"));
            assert_eq!(destination["bucketName"], "cdk-hnb659fds-assets-${AWS::AccountId}-eu-west-1");
            assert!(destination["assumeRoleArn"].as_str().expect("role").contains("file-publishing-role"));
        }
        assert_eq!(assets["files"].as_object().expect("files").len(), zips().len() + 1);
        assert_eq!(assembly.template, file(&assembly, "session-service-dev.template.json"));
    }

    #[test]
    fn a_function_without_a_zip_is_refused() {
        let stage = stages::dev();
        let template = crate::synthesize(&contract::CONTRACT, &stage).expect("synthesizes").to_value();
        let mut zips = zips();
        let missing = contract::functions::ALL[1].name;
        zips.remove(missing);
        let error = assembly(&contract::CONTRACT, &stage, &template, &zips).expect_err("refused");
        assert_eq!(error, CdkError::MissingZip(missing.to_owned()));
    }

    /// The texts are sorted JSON, whatever order the value was built in.
    #[test]
    fn the_text_does_not_depend_on_map_order() {
        let forward: serde_json::Map<String, Value> =
            [("b", 1), ("a", 2)].into_iter().map(|(k, v)| (k.to_owned(), json!(v))).collect();
        let backward: serde_json::Map<String, Value> =
            [("a", 2), ("b", 1)].into_iter().map(|(k, v)| (k.to_owned(), json!(v))).collect();
        assert_eq!(pretty(&Value::Object(forward)), pretty(&Value::Object(backward)));
        assert_eq!(
            pretty(&json!({"b": {"d": 1, "c": 2}, "a": 0})),
            "{\n  \"a\": 0,\n  \"b\": {\n    \"c\": 2,\n    \"d\": 1\n  }\n}\n"
        );
    }

    #[test]
    fn a_cdk_template_is_told_apart_and_its_zips_read_back() {
        let stage = crate::stages::dev();
        let plain = crate::synthesize(&contract::CONTRACT, &stage).expect("dev").to_value();
        let zips: BTreeMap<String, String> = contract::CONTRACT
            .functions
            .iter()
            .enumerate()
            .map(|(index, function)| (function.name.to_owned(), format!("{index:064x}")))
            .collect();
        let cdk = template(&contract::CONTRACT, &stage.region, &plain, &zips).expect("cdk form");
        assert!(is_cdk_template(&cdk));
        assert!(!is_cdk_template(&plain));
        assert_eq!(zip_hashes(&contract::CONTRACT, &cdk), zips);
        assert_eq!(zip_hashes(&contract::CONTRACT, &plain), BTreeMap::new(), "code from parameters names no zip");
    }
}

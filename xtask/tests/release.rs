//! The release workflow end to end, against a local AWS-compatible endpoint (moto's server):
//! `deploy` creates the stack, its tables and its functions with the given code, from a
//! template it uploaded to the assets bucket (`TemplateURL`) and a change set it printed; a
//! second `deploy` is a no-op; `diff` is quiet; a changed deployed configuration makes `diff`
//! exit 2 and show exactly that change; a deployed seed incident makes `diff` exit 1 and name
//! it, and `deploy` refuses it without a terminal, deleting its change set; a release that
//! replaces a table is refused, even with `--yes`, until `--allow-replacement` names it.
//! Beside that workflow: `--region` decides where the assets bucket is made; a stack that
//! only holds a change set never executed (`REVIEW_IN_PROGRESS`) is created; and
//! `--no-build` refuses zips that were not built for the stage.
//!
//! moto stores API Gateway v2 resources only in the template (it does not create them), which
//! is enough: `diff` and the verifier read templates.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

mod support;

use support::{artifacts, deploy_dev, physical_ids, sdk_config, temp_dir, text, update_template, xtask};

const STACK: &str = "session-service-dev";

#[tokio::test(flavor = "multi_thread")]
async fn deploy_then_diff_against_a_local_endpoint() {
    let endpoint = testkit::local_endpoint();
    let dir = temp_dir("release");
    let hashes = artifacts(&dir);
    let artifacts_dir = dir.to_str().expect("utf-8 path");

    // First release: everything is new.
    let first = xtask(&endpoint, &["deploy", "--stage", "dev", "--no-build", "--artifacts", artifacts_dir, "--yes"]);
    let output = text(&first);
    assert!(first.status.success(), "{output}");
    assert!(output.contains("CREATE_COMPLETE"), "{output}");
    // The change set was read and shown beside our diff.
    assert!(
        output.contains("not deployed yet") && output.contains("Change set (what CloudFormation will do)"),
        "{output}"
    );
    let first_table = contract::CONTRACT.tables[0].logical_id;
    assert!(output.contains(&format!("+ Add {first_table} (AWS::DynamoDB::Table)")), "{output}");
    // The template went by URL: uploaded to the assets bucket under its hash.
    let synthesized = stacks::synthesize(&contract::CONTRACT, &stacks::stages::dev()).expect("synthesizes").to_json();
    let key = format!("templates/{:x}.json", Sha256::digest(synthesized.as_bytes()));
    assert!(output.contains(&format!("template uploaded ({key}")), "{output}");
    // The `dev` stage's region, where a deploy without `--region` goes.
    let config = sdk_config(&endpoint, &stacks::stages::dev().region);
    let bucket = format!("{STACK}-assets-{}-{}", account(&config).await, stacks::stages::dev().region);
    s3(&config).head_object().bucket(&bucket).key(&key).send().await.expect("the template is in the bucket");

    let client = aws_sdk_cloudformation::Client::new(&config);
    let physical = physical_ids(&client, STACK).await;
    for table in contract::CONTRACT.tables {
        assert!(physical.get(table.logical_id).is_some_and(|name| !name.is_empty()), "{} created", table.logical_id);
    }
    // The functions run exactly the uploaded zips.
    let lambda = aws_sdk_lambda::Client::new(&config);
    for (function, code_sha256) in &hashes {
        let name = &physical[&stacks::naming::function(function)];
        let configuration =
            lambda.get_function_configuration().function_name(name).send().await.expect("function configuration");
        assert_eq!(configuration.code_sha256(), Some(code_sha256.as_str()), "{function}");
    }

    // Second release: nothing to do, no question asked (stdin is not a terminal).
    let second = xtask(&endpoint, &["deploy", "--stage", "dev", "--no-build", "--artifacts", artifacts_dir]);
    assert!(second.status.success(), "{}", text(&second));
    assert!(text(&second).contains("No changes"), "{}", text(&second));

    let quiet = xtask(&endpoint, &["diff", "--stage", "dev"]);
    assert_eq!(quiet.status.code(), Some(0), "{}", text(&quiet));

    // A changed configuration on the deployed side: exit 2, exactly that change.
    update_template(&client, STACK, |template| {
        template["Resources"]["MessagesFunction"]["Properties"]["Environment"]["Variables"]["MAX_LISTENERS_PER_SESSION"] = json!("900");
    })
    .await;
    let changed = xtask(&endpoint, &["diff", "--stage", "dev", "--json"]);
    assert_eq!(changed.status.code(), Some(2), "{}", text(&changed));
    let report: Value = serde_json::from_slice(&changed.stdout).expect("JSON report");
    // The fields a release reads (the report has more; `diff`'s own tests pin its whole shape).
    let fields = ["logicalId", "resourceType", "kind", "replacement", "properties", "security", "dataLoss"];
    let resources: Vec<Value> = report["diff"]["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|change| fields.iter().map(|field| (field.to_string(), change[field].clone())).collect())
        .collect();
    assert_eq!(
        resources,
        [json!({"logicalId": "MessagesFunction", "resourceType": "AWS::Lambda::Function", "kind": "modified",
            "replacement": "never",
            "properties": [{"path": "Properties.Environment.Variables.MAX_LISTENERS_PER_SESSION", "old": "900", "new": "500"}],
            "security": [], "dataLoss": null})]
    );

    // The seed incident deployed: exit 1, named.
    update_template(&client, STACK, |template| {
        template["Resources"]["ConnectAuthorizer"]["Properties"]["IdentitySource"] =
            json!(["route.request.querystring.token"]);
    })
    .await;
    let incident = xtask(&endpoint, &["diff", "--stage", "dev"]);
    assert_eq!(incident.status.code(), Some(1), "{}", text(&incident));
    let output = text(&incident);
    assert!(output.contains("$connect") && output.contains("IdentitySource") && output.contains("401"), "{output}");
    // A deploy would fix it, but it changes an authorizer: without a terminal it asks for --yes.
    let refused = xtask(&endpoint, &["deploy", "--stage", "dev", "--no-build", "--artifacts", artifacts_dir]);
    let output = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{output}");
    assert!(output.contains("--yes") && output.contains("Change set (what CloudFormation will do)"), "{output}");
    assert!(output.contains("deleted change set"), "{output}");
    assert_eq!(executable_change_sets(&client).await, Vec::<String>::new());

    // A table with a name the template does not give it: the release would replace it. Refused
    // even with --yes, saying what is lost and how to go ahead; nothing executed.
    update_template(&client, STACK, |template| {
        template["Resources"][first_table]["Properties"]["TableName"] = json!("renamed-by-hand");
    })
    .await;
    let release = ["deploy", "--stage", "dev", "--no-build", "--artifacts", artifacts_dir, "--yes"];
    let replacing = xtask(&endpoint, &release);
    let output = text(&replacing);
    assert_eq!(replacing.status.code(), Some(1), "{output}");
    assert!(output.contains("refusing to replace stateful resources"), "{output}");
    assert!(output.contains(&format!("{first_table} (AWS::DynamoDB::Table)")), "{output}");
    assert!(output.contains("UpdateReplacePolicy: Retain"), "{output}");
    assert!(output.contains(&format!("deploy again with --allow-replacement {first_table}")), "{output}");
    assert!(output.contains("deleted change set") && !output.contains("executing change set"), "{output}");
    assert_eq!(executable_change_sets(&client).await, Vec::<String>::new());
    let deployed = client.get_template().stack_name(STACK).send().await.expect("template");
    assert!(deployed.template_body().unwrap_or_default().contains("renamed-by-hand"), "nothing was executed");

    // Named by --allow-replacement, it goes ahead (and fixes the seed incident with it).
    let allowed = xtask(&endpoint, &[&release[..], &["--allow-replacement", first_table]].concat());
    let output = text(&allowed);
    assert!(allowed.status.success(), "{output}");
    assert!(output.contains("UPDATE_COMPLETE"), "{output}");
    let quiet = xtask(&endpoint, &["diff", "--stage", "dev"]);
    assert_eq!(quiet.status.code(), Some(0), "{}", text(&quiet));
    std::fs::remove_dir_all(&dir).ok();
}

/// The change sets of the stack that could still be executed.
async fn executable_change_sets(client: &aws_sdk_cloudformation::Client) -> Vec<String> {
    let listed = client.list_change_sets().stack_name(STACK).send().await.expect("change sets");
    listed
        .summaries()
        .iter()
        .filter(|summary| summary.stack_name() == Some(STACK))
        .filter(|summary| summary.execution_status().map(|status| status.as_str()) == Some("AVAILABLE"))
        .map(|summary| summary.change_set_name().unwrap_or_default().to_owned())
        .collect()
}

/// The account the local endpoint answers as (it names the default assets bucket).
async fn account(config: &aws_config::SdkConfig) -> String {
    let identity = aws_sdk_sts::Client::new(config).get_caller_identity().send().await.expect("identity");
    identity.account().unwrap_or_default().to_owned()
}

/// S3 with path-style addressing (the local endpoint serves no bucket subdomains).
fn s3(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(config).force_path_style(true).build())
}

/// `--region` sends the whole release there, the assets bucket included; a bucket in another
/// region cannot serve it.
#[tokio::test(flavor = "multi_thread")]
async fn the_assets_bucket_is_made_in_the_region_asked_for() {
    let endpoint = testkit::local_endpoint();
    let dir = temp_dir("release-region");
    artifacts(&dir);
    let bucket = format!("xtask-region-{}", std::process::id());
    let deploy = |region: &str| deploy_dev(&endpoint, &dir, region, &bucket);
    let released = deploy("us-west-2");
    assert!(released.status.success(), "{}", text(&released));
    let location =
        s3(&sdk_config(&endpoint, "us-west-2")).get_bucket_location().bucket(&bucket).send().await.expect("location");
    assert_eq!(location.location_constraint().map(|constraint| constraint.as_str()), Some("us-west-2"));

    let elsewhere = deploy("ap-southeast-2");
    assert!(!elsewhere.status.success(), "{}", text(&elsewhere));
    assert!(text(&elsewhere).contains(&format!("{bucket} is in us-west-2")), "{}", text(&elsewhere));
    std::fs::remove_dir_all(&dir).ok();
}

/// A bucket of earlier releases (`<stack>-assets-<account>`, before buckets were named per
/// region) in the release's region stays the stage's bucket: nothing moves.
#[tokio::test(flavor = "multi_thread")]
async fn the_bucket_of_earlier_releases_is_kept_in_its_region() {
    let endpoint = testkit::local_endpoint();
    let region = "eu-west-3";
    let dir = temp_dir("release-earlier-bucket");
    let hashes = artifacts(&dir);
    let config = sdk_config(&endpoint, region);
    let earlier = format!("{STACK}-assets-{}", account(&config).await);
    let constraint = aws_sdk_s3::types::CreateBucketConfiguration::builder()
        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
        .build();
    s3(&config).create_bucket().bucket(&earlier).create_bucket_configuration(constraint).send().await.expect("made");
    let artifacts_dir = dir.to_str().expect("utf-8 path");
    let released = xtask(
        &endpoint,
        &["deploy", "--stage", "dev", "--region", region, "--no-build", "--artifacts", artifacts_dir, "--yes"],
    );
    assert!(released.status.success(), "{}", text(&released));
    assert!(
        text(&released).contains(&format!("using the assets bucket of earlier releases, {earlier}")),
        "{}",
        text(&released)
    );
    let (function, _) = &hashes[0];
    let listed = s3(&config).list_objects_v2().bucket(&earlier).prefix(format!("assets/{function}/")).send().await;
    assert_eq!(listed.expect("listed").contents().len(), 1, "{function}'s zip is in {earlier}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A stack that exists only as a change set never executed (`REVIEW_IN_PROGRESS`, what an
/// interrupted first deploy leaves) is created, with a change set of type CREATE.
#[tokio::test(flavor = "multi_thread")]
async fn a_stack_that_only_holds_a_change_set_is_created() {
    let endpoint = testkit::local_endpoint();
    let region = "us-east-2";
    let dir = temp_dir("release-review");
    artifacts(&dir);
    let client = aws_sdk_cloudformation::Client::new(&sdk_config(&endpoint, region));
    client
        .create_change_set()
        .stack_name(STACK)
        .change_set_name("left-behind")
        .change_set_type(aws_sdk_cloudformation::types::ChangeSetType::Create)
        .template_body(json!({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}).to_string())
        .send()
        .await
        .expect("change set created");
    let reviewed = client.describe_stacks().stack_name(STACK).send().await.expect("stack");
    assert_eq!(reviewed.stacks()[0].stack_status().map(|status| status.as_str()), Some("REVIEW_IN_PROGRESS"));

    let bucket = format!("xtask-review-{}", std::process::id());
    let released = deploy_dev(&endpoint, &dir, region, &bucket);
    let output = text(&released);
    assert!(released.status.success(), "{output}");
    assert!(output.contains("REVIEW_IN_PROGRESS") && output.contains("not deployed yet"), "{output}");
    assert!(output.contains("session-service-dev is CREATE_COMPLETE"), "{output}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `--no-build` takes only zips built for the stage (arm64, release), before touching AWS.
#[test]
fn zips_that_do_not_fit_the_stage_are_refused() {
    let endpoint = testkit::local_endpoint();
    let dir = temp_dir("release-misfit");
    artifacts(&dir);
    let path = dir.join("manifest.json");
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("manifest")).expect("JSON");
    for (field, value, says) in [("arch", "x86_64", "built for x86_64"), ("profile", "debug", "a debug build")] {
        let mut changed = manifest.clone();
        changed[1][field] = json!(value);
        std::fs::write(&path, changed.to_string()).expect("manifest written");
        let refused = xtask(
            &endpoint,
            // A region of its own, so that a regression cannot disturb the other tests' stacks.
            &[
                "deploy",
                "--stage",
                "dev",
                "--no-build",
                "--yes",
                "--region",
                "ca-central-1",
                "--artifacts",
                dir.to_str().expect("utf-8 path"),
            ],
        );
        let output = text(&refused);
        assert_eq!(refused.status.code(), Some(1), "{output}");
        assert!(output.contains(says) && output.contains("run `cargo xtask build`"), "{output}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

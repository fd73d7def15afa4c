//! The CDK path: `cargo xtask synth --stage dev --cdk-out DIR` writes a cloud assembly that the
//! real CDK CLI (`aws-cdk`, pinned in `xtask/node`, installed by `cargo xtask test` with
//! `npm ci` into `target/tools/node`) reads: `cdk ls` lists the stage's stack, `cdk synth`
//! prints back the very template of the assembly, and `cdk diff --template` against a changed
//! copy names exactly the resources our own diff (`stacks::diff`) names. The CLI runs offline,
//! without credentials, blind to the caller's AWS settings, with its version check, notices
//! and telemetry off.
//!
//! Against the local endpoint (moto's server), in a region bootstrapped as far as a release
//! reads it (a `CDKToolkit` stack with the assets bucket and the version parameter):
//! `cdk deploy --app DIR` creates the stack with the assembly's zips; and `cargo xtask deploy`
//! puts the zips in the bootstrap's bucket there, and in its own bucket in a region without one.

use serde_json::{Value, json};
use stacks::naming;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;

use support::{artifacts, sdk_config, temp_dir, text, xtask_command};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn stack() -> String {
    stacks::stages::dev().stack_name
}

/// `cargo xtask synth --stage dev --cdk-out <dir>/cdk.out` of fake zips: the assembly's
/// directory. A local `AWS_ENDPOINT_URL` lets the stage's example settings through.
fn assembly(name: &str) -> PathBuf {
    let dir = temp_dir(name);
    let zips = dir.join("zips");
    std::fs::create_dir_all(&zips).expect("zips dir");
    artifacts(&zips);
    let out = dir.join("cdk.out");
    let written = synth(&out, &zips);
    assert!(written.status.success(), "{}", text(&written));
    out
}

fn synth(out: &Path, zips: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    testkit::isolate_aws_environment(&mut command)
        .args(["synth", "--stage", "dev", "--cdk-out"])
        .arg(out)
        .arg("--artifacts")
        .arg(zips)
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
    command.output().expect("xtask runs")
}

/// The pinned CDK CLI with `args`: offline, no credentials, no version check, notices or
/// telemetry, its caches in `home`.
fn cdk(home: &Path, args: &[&str]) -> Output {
    cdk_command(home, args).output().expect("node runs the CDK CLI (install Node.js 20 or newer)")
}

/// [`cdk`], to be run.
fn cdk_command(home: &Path, args: &[&str]) -> Command {
    let cli = root().join(protocol_docs::PARSERS_DIR).join("node_modules/aws-cdk/bin/cdk");
    assert!(
        cli.is_file(),
        "the CDK CLI is not installed in {}: run `cargo xtask test` (it runs `npm ci` with the lock file of {})",
        protocol_docs::PARSERS_DIR,
        protocol_docs::PARSERS_PACKAGE
    );
    let mut command = Command::new("node");
    testkit::isolate_aws_environment(&mut command)
        .arg(cli)
        .args(args)
        .arg("--no-notices")
        .env("CDK_DISABLE_VERSION_CHECK", "1")
        .env("CDK_DISABLE_CLI_TELEMETRY", "true")
        .env("CDK_HOME", home)
        .env("HOME", home)
        .stdin(std::process::Stdio::null());
    command
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("readable")).expect("JSON")
}

#[test]
fn cdk_ls_lists_the_stages_stack() {
    let out = assembly("cdk-ls");
    let listed = cdk(out.parent().expect("dir"), &["ls", "--app", out.to_str().expect("utf-8")]);
    assert!(listed.status.success(), "{}", text(&listed));
    let stacks: Vec<&str> = std::str::from_utf8(&listed.stdout).expect("utf-8").lines().collect();
    assert_eq!(stacks, [stack()], "{}", text(&listed));
}

/// `cdk synth` reads the assembly back and prints its template, which is the stage's template
/// with code in the bootstrap's bucket, and which the contract verifier passes; the zips are
/// beside it as the asset manifest names them.
#[test]
fn cdk_synth_prints_the_assemblys_template() {
    let out = assembly("cdk-synth");
    let printed =
        cdk(out.parent().expect("dir"), &["synth", "--app", out.to_str().expect("utf-8"), "--json", &stack()]);
    assert!(printed.status.success(), "{}", text(&printed));
    let template: Value = serde_json::from_slice(&printed.stdout).unwrap_or_else(|_| panic!("{}", text(&printed)));
    // The CLI prints a template as `cdk synth` of a CDK app would: without the bootstrap
    // version rule (it hides `CheckBootstrapVersion`), numbers as JavaScript writes them.
    let mut written = read_json(&out.join(format!("{}.template.json", stack())));
    let rules = written.as_object_mut().expect("template").remove("Rules").expect("the rule is in the file");
    assert_eq!(rules.as_object().expect("rules").keys().collect::<Vec<_>>(), [stacks::cdk::CHECK_BOOTSTRAP_VERSION]);
    assert_eq!(numbers_as_floats(&template), numbers_as_floats(&written));
    assert_eq!(stacks::verify(&template, &contract::CONTRACT), []);

    let first = contract::CONTRACT.functions[0].name;
    let code = &template["Resources"][naming::function(first)]["Properties"]["Code"];
    let key = code["S3Key"].as_str().expect("a literal key");
    assert_eq!(
        code["S3Bucket"],
        json!({ "Fn::Sub": format!("cdk-hnb659fds-assets-${{AWS::AccountId}}-{}", stacks::stages::dev().region) })
    );
    let zip = std::fs::read(out.join(format!("asset.{key}"))).expect("the zip is in the assembly");
    assert_eq!(format!("{}.zip", sha256_hex(&zip)), key);
    let assets = read_json(&out.join(format!("{}.assets.json", stack())));
    let hash = key.trim_end_matches(".zip");
    assert_eq!(assets["files"][hash]["source"]["path"], format!("asset.{key}"));
}

/// `cdk diff --template OLD` of the assembly names the same changed resources as our diff of
/// the same two templates: a route taken out and a table's setting changed in OLD.
#[test]
fn cdk_diff_names_the_resources_our_diff_names() {
    let out = assembly("cdk-diff");
    let new = read_json(&out.join(format!("{}.template.json", stack())));
    let route = naming::websocket_route(contract::Action::all_route_keys().last().expect("a route"));
    let table = contract::CONTRACT.tables[0].logical_id;
    let mut old = new.clone();
    old["Resources"].as_object_mut().expect("resources").remove(&route).expect("the route is in the template");
    old["Resources"][table]["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] =
        json!(false);
    let old_path = out.parent().expect("dir").join("old.template.json");
    std::fs::write(&old_path, old.to_string()).expect("written");

    let ours: BTreeSet<String> =
        stacks::diff::diff(&old, &new).resources.into_iter().map(|change| change.logical_id).collect();
    assert_eq!(ours, BTreeSet::from([route, table.to_owned()]));

    let app = out.to_str().expect("utf-8");
    let diffed =
        cdk(out.parent().expect("dir"), &["diff", "--app", app, "--template", old_path.to_str().expect("utf-8")]);
    assert!(diffed.status.success(), "{}", text(&diffed));
    let theirs = changed_resources(&text(&diffed));
    assert_eq!(theirs, ours, "{}", text(&diffed));

    // And no difference against the assembly's own template.
    let same = cdk(
        out.parent().expect("dir"),
        &["diff", "--app", app, "--template", out.join(format!("{}.template.json", stack())).to_str().expect("utf-8")],
    );
    assert!(same.status.success(), "{}", text(&same));
    assert_eq!(changed_resources(&text(&same)), BTreeSet::new(), "{}", text(&same));
    assert!(text(&same).contains("There were no differences"), "{}", text(&same));
}

/// The logical ids of the resource lines of a `cdk diff` (`[+] TYPE ID`, `[-]`, `[~]`).
fn changed_resources(output: &str) -> BTreeSet<String> {
    let mut section = "";
    let mut ids = BTreeSet::new();
    for line in output.lines() {
        if !line.starts_with(' ') && !line.starts_with('[') {
            section = line.trim();
            continue;
        }
        let mut words = line.split_whitespace();
        let marker = words.next().unwrap_or_default();
        if section == "Resources" && ["[+]", "[-]", "[~]"].contains(&marker) {
            ids.extend(words.nth(1).map(str::to_owned));
        }
    }
    ids
}

/// Without a build, or with one that does not fit the stage, the assembly is refused, saying
/// what to run; nothing is written.
#[test]
fn an_assembly_without_a_fitting_build_is_refused_saying_what_to_run() {
    let dir = temp_dir("cdk-no-build");
    let refused = synth(&dir.join("cdk.out"), &dir.join("nothing-built"));
    assert!(!refused.status.success());
    let message = text(&refused);
    assert!(message.contains("holds none (no manifest.json): run `cargo xtask build` first"), "{message}");

    let zips = dir.join("zips");
    std::fs::create_dir_all(&zips).expect("zips dir");
    artifacts(&zips);
    let manifest = std::fs::read_to_string(zips.join("manifest.json")).expect("manifest");
    std::fs::write(zips.join("manifest.json"), manifest.replace("\"arm64\"", "\"x86_64\"")).expect("written");
    let refused = synth(&dir.join("cdk.out"), &zips);
    assert!(!refused.status.success());
    let message = text(&refused);
    let first = contract::CONTRACT.functions[0].name;
    assert!(message.contains(&format!("{first}: built for x86_64, the stage runs arm64")), "{message}");
    assert!(message.contains("run `cargo xtask build` first") && !message.contains("--no-build"), "{message}");
    assert!(!dir.join("cdk.out").exists(), "nothing written");
}

/// `value` with every number as a float: `50.0` and `50` are the same JSON number, which
/// JavaScript writes `50`.
fn numbers_as_floats(value: &Value) -> Value {
    match value {
        Value::Number(number) => json!(number.as_f64()),
        Value::Array(items) => Value::Array(items.iter().map(numbers_as_floats).collect()),
        Value::Object(object) => {
            Value::Object(object.iter().map(|(key, value)| (key.clone(), numbers_as_floats(value))).collect())
        }
        other => other.clone(),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Credentials of an account of the test's own, `offset` apart from other tests' accounts: moto
/// switches accounts on an assumed role's credentials, so no other test's stacks or buckets
/// (bucket names are global) are in the way, whatever region the test uses.
struct Account {
    id: String,
    endpoint: String,
    keys: [(&'static str, String); 3],
}

impl Account {
    async fn own(endpoint: &str, offset: u64) -> Account {
        let id = format!("{:012}", offset * 100_000_000_000 + u64::from(std::process::id()));
        let sts = aws_sdk_sts::Client::new(&sdk_config(endpoint, "eu-central-1"));
        let assumed = sts
            .assume_role()
            .role_arn(format!("arn:aws:iam::{id}:role/cdk-interop-test"))
            .role_session_name("cdk-interop-test")
            .send()
            .await
            .expect("a role in the test's account");
        let credentials = assumed.credentials().expect("credentials");
        let keys = [
            ("AWS_ACCESS_KEY_ID", credentials.access_key_id().to_owned()),
            ("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key().to_owned()),
            ("AWS_SESSION_TOKEN", credentials.session_token().to_owned()),
        ];
        Account { id, endpoint: endpoint.to_owned(), keys }
    }

    /// SDK clients' configuration in `region` of this account.
    fn config(&self, region: &str) -> aws_config::SdkConfig {
        let [(_, key), (_, secret), (_, token)] = &self.keys;
        let provider = aws_sdk_sts::config::Credentials::new(key, secret, Some(token.clone()), None, "test");
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_owned()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_sts::config::SharedCredentialsProvider::new(provider))
            .build()
    }

    /// Bootstraps `region` as far as a release reads the bootstrap: a `CDKToolkit` stack with
    /// the assets bucket, its `BucketName` output and the version parameter.
    /// Moto lets anyone assume the bootstrap's roles without them existing, so they are not
    /// made. Returns the bucket's name.
    async fn bootstrap(&self, region: &str) -> String {
        let bucket = format!("cdk-{}-assets-{}-{region}", stacks::cdk::QUALIFIER, self.id);
        let toolkit = json!({
            "Resources": {
                "StagingBucket": { "Type": "AWS::S3::Bucket", "Properties": { "BucketName": bucket } },
                "CdkBootstrapVersion": {
                    "Type": "AWS::SSM::Parameter",
                    "Properties": { "Name": stacks::cdk::bootstrap_version_parameter(), "Type": "String", "Value": "30" },
                },
            },
            "Outputs": { stacks::cdk::TOOLKIT_BUCKET_OUTPUT: { "Value": { "Ref": "StagingBucket" } } },
        });
        aws_sdk_cloudformation::Client::new(&self.config(region))
            .create_stack()
            .stack_name(stacks::cdk::TOOLKIT_STACK)
            .template_body(toolkit.to_string())
            .send()
            .await
            .expect("the bootstrap stack is created");
        bucket
    }
}

/// `deploy` without `--assets-bucket` puts the zips in the CDK bootstrap's assets bucket of a
/// region bootstrapped for the CDK (a `CDKToolkit` stack with a `BucketName` output), and says
/// so; in a region without one, in the project's own bucket.
#[tokio::test(flavor = "multi_thread")]
async fn deploy_uses_the_cdk_bootstrap_bucket_where_the_region_has_one() {
    let endpoint = testkit::local_endpoint();
    let account = Account::own(&endpoint, 2).await;
    let dir = temp_dir("cdk-bootstrap-bucket");
    artifacts(&dir);
    let deploy = |region: &str| {
        let dir = dir.to_str().expect("utf-8 path");
        let args = ["deploy", "--stage", "dev", "--no-build", "--yes", "--region", region, "--artifacts", dir];
        let mut command = xtask_command(&endpoint, &args);
        command.envs(account.keys.iter().map(|(name, value)| (name, value)));
        command.output().expect("xtask runs")
    };

    // eu-central-1 is bootstrapped.
    let bootstrapped = "eu-central-1";
    let bucket = account.bootstrap(bootstrapped).await;
    let released = deploy(bootstrapped);
    let output = text(&released);
    assert!(released.status.success(), "{output}");
    assert!(output.contains(&format!("using the CDK bootstrap's assets bucket {bucket}")), "{output}");
    assert_zips_in(&account.config(bootstrapped), &bucket, &dir).await;
    let cloudformation = aws_sdk_cloudformation::Client::new(&account.config(bootstrapped));
    let deployed = cloudformation.describe_stacks().stack_name(stack()).send().await.expect("the stack");
    let parameters = deployed.stacks()[0].parameters();
    let assets_bucket =
        parameters.iter().find(|p| p.parameter_key() == Some(naming::ASSETS_BUCKET)).expect("parameter");
    assert_eq!(assets_bucket.parameter_value(), Some(bucket.as_str()));

    // eu-south-1 is not: the project's own bucket, made there.
    let plain = "eu-south-1";
    let released = deploy(plain);
    let output = text(&released);
    assert!(released.status.success(), "{output}");
    assert!(!output.contains("CDK bootstrap"), "{output}");
    let own = format!("{}-assets-{}-{plain}", stack(), account.id);
    assert!(output.contains(&format!("creating the assets bucket {own} in {plain}")), "{output}");
    assert_zips_in(&account.config(plain), &own, &dir).await;
}

/// `cdk deploy --app DIR` releases the assembly through a bootstrapped account: the CLI
/// publishes the zips and the template to the bootstrap's bucket, CloudFormation reads the
/// bootstrap version from its parameter, and the stack's functions run exactly the assembly's
/// zips. In the stage's own region, in an account of the test's own.
#[tokio::test(flavor = "multi_thread")]
async fn cdk_deploy_releases_the_assembly_through_the_bootstrap() {
    let endpoint = testkit::local_endpoint();
    let account = Account::own(&endpoint, 3).await;
    let region = stacks::stages::dev().region;
    let bucket = account.bootstrap(&region).await;
    let out = assembly("cdk-deploy");
    let zips = out.parent().expect("dir").join("zips");

    // Moto reads a change set's TemplateURL from its own S3 only when the URL names localhost.
    let endpoint_for_the_cli = endpoint.replace("127.0.0.1", "localhost");
    let mut command = cdk_command(out.parent().expect("dir"), &["deploy", "--app", out.to_str().expect("utf-8")]);
    command
        .args(["--require-approval", "never"])
        .env("AWS_ENDPOINT_URL", &endpoint_for_the_cli)
        .env("AWS_REGION", &region)
        .envs(account.keys.iter().map(|(name, value)| (name, value)));
    let deployed = command.output().expect("the CDK CLI runs");
    assert!(deployed.status.success(), "{}", text(&deployed));

    let config = account.config(&region);
    assert_zips_in_as_cdk_publishes_them(&config, &bucket, &zips).await;
    let cloudformation = aws_sdk_cloudformation::Client::new(&config);
    let described = cloudformation.describe_stacks().stack_name(stack()).send().await.expect("the stack");
    let deployed_stack = &described.stacks()[0];
    assert_eq!(deployed_stack.stack_status().map(|status| status.as_str()), Some("CREATE_COMPLETE"));
    let parameters: Vec<(&str, &str)> = deployed_stack
        .parameters()
        .iter()
        .map(|p| (p.parameter_key().unwrap_or_default(), p.parameter_value().unwrap_or_default()))
        .collect();
    assert_eq!(parameters, [(stacks::cdk::BOOTSTRAP_VERSION, "30")]);
    let physical = support::physical_ids(&cloudformation, &stack()).await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    for function in contract::CONTRACT.functions {
        let zip = std::fs::read(zips.join(format!("{}.zip", function.name))).expect("zip");
        let name = &physical[&naming::function(function.name)];
        let configuration = lambda.get_function_configuration().function_name(name).send().await.expect("function");
        assert_eq!(configuration.code_sha256(), Some(code_sha256(&zip).as_str()), "{}", function.name);
    }

    // `cargo xtask diff` knows a stack released through the CDK: nothing to release against the
    // build that was deployed; another build of one function is that function's code, only.
    let diff = |artifacts: &Path| {
        let mut command = support::xtask_command(&endpoint, &["diff", "--stage", "dev", "--region", &region]);
        command.arg("--artifacts").arg(artifacts).envs(account.keys.iter().map(|(name, value)| (name, value)));
        command.output().expect("xtask runs")
    };
    let quiet = diff(&zips);
    assert_eq!(quiet.status.code(), Some(0), "{}", text(&quiet));
    assert!(text(&quiet).contains("(deployed through the CDK: compared with the synthesized template's CDK form)"));
    assert!(text(&quiet).contains("No differences."), "{}", text(&quiet));
    let rebuilt = out.parent().expect("dir").join("rebuilt");
    std::fs::create_dir_all(&rebuilt).expect("dir");
    artifacts(&rebuilt);
    let mut manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(rebuilt.join("manifest.json")).expect("manifest")).expect("json");
    manifest[0]["sha256_hex"] = Value::from("f".repeat(64));
    std::fs::write(rebuilt.join("manifest.json"), manifest.to_string()).expect("manifest written");
    let changed = diff(&rebuilt);
    let report = text(&changed);
    assert_eq!(changed.status.code(), Some(2), "{report}");
    let first = contract::functions::ALL[0];
    assert!(
        report.contains(&format!("~ {}: ", first.name)) && report.contains(&format!("{}.zip", "f".repeat(64))),
        "{report}"
    );
    assert!(report.contains(&format!("~ {} (AWS::Lambda::Function)", naming::function(first.name))), "{report}");
}

/// Every zip of `dir` is in `bucket` as the CDK CLI publishes it: `<sha256>.zip`.
async fn assert_zips_in_as_cdk_publishes_them(config: &aws_config::SdkConfig, bucket: &str, dir: &Path) {
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(config).force_path_style(true).build());
    for function in contract::CONTRACT.functions {
        let zip = std::fs::read(dir.join(format!("{}.zip", function.name))).expect("zip");
        let key = format!("{}.zip", sha256_hex(&zip));
        s3.head_object().bucket(bucket).key(&key).send().await.unwrap_or_else(|error| panic!("{key}: {error:?}"));
    }
}

fn code_sha256(bytes: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
}

/// Every zip of `dir` (as [`artifacts`] wrote them) is in `bucket`, under its content hash.
async fn assert_zips_in(config: &aws_config::SdkConfig, bucket: &str, dir: &Path) {
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(config).force_path_style(true).build());
    for function in contract::CONTRACT.functions {
        let zip = std::fs::read(dir.join(format!("{}.zip", function.name))).expect("zip");
        let key = format!("assets/{}/{}.zip", function.name, sha256_hex(&zip));
        let object = s3.get_object().bucket(bucket).key(&key).send().await;
        let body = object.unwrap_or_else(|error| panic!("{key} is not in {bucket}: {error:?}")).body.collect().await;
        assert_eq!(body.expect("body").into_bytes(), zip, "{key}");
    }
}

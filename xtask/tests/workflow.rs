//! The GitHub workflows under `.github/workflows`, and the roles' policies beside them.
//!
//! - actionlint (from the project's Python environment, `xtask/python-requirements.txt`) finds
//!   nothing in any workflow, and it does refuse a copy of the release workflow broken on
//!   purpose (a misspelt key, a bad expression), so the first check cannot pass vacuously.
//!   actionlint also runs shellcheck on `run:` scripts when shellcheck is on `PATH`.
//! - The release workflow, read as YAML, runs exactly the commands it is meant to run: the
//!   tests, the templates' check, the build and the markdown diff of `prod` on pull requests;
//!   the deploy of `prod`, in the `prod` environment (its approval), one at a time, on `main`.
//!   AWS access is by OIDC only (no access key anywhere), no job asks for more than it uses,
//!   and every action is pinned to a version.
//! - The CloudFormation service role (`deploy --role-arn`) may create every resource type the
//!   stacks synthesize; the deploy role may only release the stack, use the assets buckets and
//!   hand that one role to CloudFormation; every statement is scoped to the `prod` stack's
//!   names.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

mod support;

use support::{iam_policy, listed};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

/// The actionlint of the project's Python environment.
fn actionlint() -> PathBuf {
    let python = testkit::venv_python();
    let program = python.parent().expect("the environment's bin directory").join("actionlint");
    assert!(program.exists(), "{} is missing: run `cargo xtask test`, which installs it", program.display());
    program
}

/// actionlint's verdict on `files`: whether it found nothing, and what it said.
fn lint(files: &[PathBuf]) -> (bool, String) {
    let output = Command::new(actionlint()).arg("-no-color").args(files).output().expect("actionlint runs");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), said)
}

fn workflows() -> Vec<PathBuf> {
    let dir = root().join(".github/workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect(".github/workflows")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml" || ext == "yaml"))
        .collect();
    files.sort();
    files
}

const RELEASE: &str = ".github/workflows/release.yml";

#[test]
fn actionlint_finds_nothing_in_any_workflow() {
    let files = workflows();
    assert!(files.iter().any(|file| file.ends_with(RELEASE)), "{files:?}");
    let (clean, said) = lint(&files);
    assert!(clean, "actionlint:\n{said}");
}

#[test]
fn actionlint_refuses_a_broken_copy() {
    let release = std::fs::read_to_string(root().join(RELEASE)).expect("release.yml");
    let dir = std::env::temp_dir().join(format!("xtask-workflow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (name, from, to, says) in [
        ("key", "    environment: prod\n", "    environmnt: prod\n", "environmnt"),
        ("expression", "vars.AWS_DIFF_ROLE_ARN }}", "vars.AWS_DIFF_ROLE_ARN ) }}", "AWS_DIFF_ROLE_ARN"),
    ] {
        assert!(release.contains(from), "{from:?} is no longer in release.yml: change this test");
        let broken = dir.join(format!("broken-{name}.yml"));
        std::fs::write(&broken, release.replacen(from, to, 1)).expect("written");
        let (clean, said) = lint(std::slice::from_ref(&broken));
        assert!(!clean && said.contains(says), "a broken {name} passed actionlint:\n{said}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

fn release() -> Value {
    let text = std::fs::read_to_string(root().join(RELEASE)).expect("release.yml");
    serde_saphyr::from_str(&text).expect("release.yml is YAML")
}

/// Per job, the `cargo xtask` commands its `run:` steps call: the lines that start with one, up to
/// a redirection or an operator.
fn xtask_commands(workflow: &Value) -> BTreeMap<String, Vec<String>> {
    let jobs = workflow["jobs"].as_object().expect("jobs");
    jobs.iter()
        .map(|(name, job)| {
            let commands = job["steps"]
                .as_array()
                .expect("steps")
                .iter()
                .filter_map(|step| step["run"].as_str())
                .flat_map(|script| script.lines().map(str::trim_start).filter(|line| line.starts_with("cargo xtask")))
                .map(|command| command.split(['>', '|', ';', '&']).next().unwrap_or_default().trim().to_owned())
                .collect();
            (name.clone(), commands)
        })
        .collect()
}

#[test]
fn the_release_workflow_runs_what_it_should_where_it_should() {
    let workflow = release();
    let commands = xtask_commands(&workflow);
    let expected: BTreeMap<String, Vec<String>> = [
        ("test", vec!["cargo xtask test", "cargo xtask synth --check"]),
        ("diff", vec!["cargo xtask build", "cargo xtask diff --stage prod --format markdown"]),
        ("deploy", vec!["cargo xtask deploy --stage prod --yes --role-arn \"$CLOUDFORMATION_ROLE_ARN\""]),
    ]
    .into_iter()
    .map(|(job, commands)| (job.to_owned(), commands.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(commands, expected);

    let jobs = &workflow["jobs"];
    assert!(jobs["diff"]["if"].as_str().is_some_and(|condition| condition.contains("pull_request")));
    let deploy = &jobs["deploy"];
    assert_eq!(deploy["environment"], "prod");
    assert!(deploy["if"].as_str().is_some_and(|condition| condition.contains("refs/heads/main")));
    assert_eq!(deploy["concurrency"]["cancel-in-progress"], false);
    assert!(deploy["concurrency"]["group"].as_str().is_some_and(|group| !group.is_empty()));
    assert_eq!(deploy["needs"], "test");
}

#[test]
fn aws_access_is_by_oidc_with_the_least_permissions() {
    let workflow = release();
    assert_eq!(workflow["permissions"], serde_json::json!({}), "nothing by default");
    let jobs = workflow["jobs"].as_object().expect("jobs");
    let text = std::fs::read_to_string(root().join(RELEASE)).expect("release.yml");
    assert!(!text.contains("aws-access-key-id") && !text.contains("aws-secret-access-key"), "no stored keys");
    for (name, job) in jobs {
        let steps = job["steps"].as_array().expect("steps");
        let credentials: Vec<&Value> = steps
            .iter()
            .filter(|step| {
                step["uses"].as_str().is_some_and(|uses| uses.starts_with("aws-actions/configure-aws-credentials@"))
            })
            .collect();
        let permissions = job["permissions"].as_object().expect("each job says what it needs");
        let write: BTreeSet<&str> =
            permissions.iter().filter(|(_, level)| *level == "write").map(|(scope, _)| scope.as_str()).collect();
        let wanted: BTreeSet<&str> = match name.as_str() {
            "test" => BTreeSet::new(),
            "diff" => ["id-token", "pull-requests"].into(),
            "deploy" => ["id-token"].into(),
            other => panic!("a job this test does not know: {other}"),
        };
        assert_eq!(write, wanted, "{name} writes");
        assert_eq!(credentials.len(), usize::from(write.contains("id-token")), "{name}: credentials by OIDC only");
        for step in credentials {
            let role = step["with"]["role-to-assume"].as_str().unwrap_or_default();
            assert!(role.starts_with("${{ vars.AWS_") && role.ends_with("_ROLE_ARN }}"), "{name}: {role}");
        }
        // Every action pinned to a version (a tag vN or a commit).
        for uses in steps.iter().filter_map(|step| step["uses"].as_str()) {
            let version = uses.rsplit_once('@').map(|(_, version)| version).unwrap_or_default();
            let tag =
                version.strip_prefix('v').is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit() || c == '.'));
            let commit = version.len() == 40 && version.chars().all(|c| c.is_ascii_hexdigit());
            assert!(tag || commit, "{name}: {uses} is not pinned");
        }
    }
}

fn statements(policy: &Value) -> &Vec<Value> {
    policy["Statement"].as_array().expect("statements")
}

/// The IAM service prefix of a CloudFormation resource type.
fn service(resource_type: &str) -> String {
    let service = resource_type.split("::").nth(1).expect("AWS::Service::Type");
    match service {
        "ApiGatewayV2" | "ApiGateway" => "apigateway".to_owned(),
        other => other.to_ascii_lowercase(),
    }
}

#[test]
fn the_cloudformation_role_may_create_every_resource_type_the_stacks_synthesize() {
    let policy = iam_policy("cloudformation-role-policy.json");
    let services: BTreeSet<String> = statements(&policy)
        .iter()
        .filter(|statement| statement["Effect"] == "Allow")
        .flat_map(|statement| listed(&statement["Action"]))
        .filter_map(|action| action.split_once(':').map(|(service, _)| service.to_owned()))
        .collect();
    for stage in [stacks::stages::dev(), stacks::stages::prod()] {
        let template = stacks::synthesize(&contract::CONTRACT, &stage).expect("synthesizes").to_value();
        for resource in template["Resources"].as_object().expect("resources").values() {
            let resource_type = resource["Type"].as_str().expect("type");
            assert!(
                services.contains(&service(resource_type)),
                "{resource_type} ({}): CloudFormation creates it with its service role's credentials; \
                 add a statement for it to .github/iam/cloudformation-role-policy.json",
                stage.name
            );
        }
    }
}

#[test]
fn the_roles_are_scoped_to_the_prod_stack() {
    let stack = stacks::stages::prod().stack_name;
    for name in ["diff-role-policy.json", "deploy-role-policy.json", "cloudformation-role-policy.json"] {
        for statement in statements(&iam_policy(name)) {
            let actions = listed(&statement["Action"]);
            assert!(!actions.iter().any(|action| action.ends_with(":*") || action == "*"), "{name}: {actions:?}");
            for resource in listed(&statement["Resource"]) {
                // What cannot be scoped: listing log groups (CloudFormation lists them all), the
                // HTTP API's log delivery (API Gateway's guide asks for it on `*`), listing key
                // aliases, and key use only through DynamoDB (`kms:ViaService`).
                let through_dynamodb =
                    statement["Condition"]["StringLike"]["kms:ViaService"] == "dynamodb.*.amazonaws.com";
                let unscopable = actions.iter().all(|action| {
                    action == "logs:DescribeLogGroups"
                        || action == "kms:ListAliases"
                        || HTTP_ACCESS_LOGS.contains(&action.as_str())
                });
                let unscoped = resource == "*" && (unscopable || through_dynamodb);
                let apis = resource.starts_with("arn:aws:apigateway:");
                let bootstrap = cdk_bootstrap_resources().contains(&resource);
                assert!(
                    unscoped || apis || bootstrap || resource.contains(&stack),
                    "{name}: {resource} is not {stack}'s"
                );
            }
        }
    }
    for (name, subject) in [("diff-role-trust.json", ":pull_request"), ("deploy-role-trust.json", ":environment:prod")]
    {
        let trust = iam_policy(name);
        let condition = &statements(&trust)[0]["Condition"]["StringEquals"];
        assert_eq!(condition["token.actions.githubusercontent.com:aud"], "sts.amazonaws.com", "{name}");
        let sub = condition["token.actions.githubusercontent.com:sub"].as_str().unwrap_or_default();
        assert!(sub.starts_with("repo:") && sub.ends_with(subject), "{name}: {sub}");
    }
}

/// What `deploy` reads and writes of a region's CDK bootstrap, when the account has one: the
/// bootstrap stack, and its assets bucket and objects.
fn cdk_bootstrap_resources() -> [String; 3] {
    let bucket = format!("arn:aws:s3:::cdk-{}-assets-*", stacks::cdk::QUALIFIER);
    [
        format!("arn:aws:cloudformation:*:*:stack/{}/*", stacks::cdk::TOOLKIT_STACK),
        bucket.clone(),
        format!("{bucket}/*"),
    ]
}

#[test]
fn the_deploy_role_may_use_the_cdk_bootstrap_bucket() {
    let policy = iam_policy("deploy-role-policy.json");
    let allowed = |action: &str, resource: &str| {
        statements(&policy).iter().any(|statement| {
            statement["Effect"] == "Allow"
                && listed(&statement["Action"]).iter().any(|listed| listed == action)
                && listed(&statement["Resource"]).iter().any(|listed| listed == resource)
        })
    };
    let [stack, bucket, objects] = cdk_bootstrap_resources();
    assert!(allowed("cloudformation:DescribeStacks", &stack), "deploy finds the bootstrap's bucket in {stack}");
    assert!(allowed("s3:ListBucket", &bucket), "deploy opens the bucket (HeadBucket)");
    for action in ["s3:PutObject", "s3:GetObject"] {
        assert!(allowed(action, &objects), "{action} on {objects}");
    }
}

#[test]
fn the_deploy_role_hands_cloudformation_its_role_and_creates_nothing_itself() {
    let policy = iam_policy("deploy-role-policy.json");
    for statement in statements(&policy) {
        for action in listed(&statement["Action"]) {
            let service = action.split(':').next().unwrap_or_default().to_owned();
            assert!(
                ["cloudformation", "s3", "iam"].contains(&service.as_str()),
                "{action}: the service role's, not the deploy role's"
            );
            if service == "iam" {
                assert_eq!(action, "iam:PassRole");
                let stack = stacks::stages::prod().stack_name;
                assert_eq!(listed(&statement["Resource"]), [format!("arn:aws:iam::*:role/{stack}-cloudformation")]);
                assert_eq!(
                    statement["Condition"]["StringEquals"]["iam:PassedToService"],
                    "cloudformation.amazonaws.com"
                );
            }
        }
    }
    let trust = iam_policy("cloudformation-role-trust.json");
    assert_eq!(statements(&trust)[0]["Principal"]["Service"], "cloudformation.amazonaws.com");
}

/// Handler permissions the registry lists that no property of the stack's resources exercises,
/// by resource type, each with the reason; everything else a handler may call, the service role
/// must allow.
const NOT_EXERCISED: &[(&str, &[&str], &str)] = &[
    ("AWS::ApiGatewayV2::Api", &["s3:getObject"], "no BodyS3Location: the API is defined by its resources"),
    (
        "AWS::ApiGatewayV2::Integration",
        &["iam:PassRole"],
        "no CredentialsArn: Lambda's resource policy lets API Gateway in",
    ),
    ("AWS::ApiGatewayV2::Authorizer", &["iam:PassRole"], "no AuthorizerCredentialsArn: as for integrations"),
    (
        "AWS::DynamoDB::Table",
        &[
            "dynamodb:AssociateTableReplica",
            "dynamodb:CreateTableReplica",
            "iam:CreateServiceLinkedRole",
            "dynamodb:ImportTable",
            "dynamodb:DescribeImport",
            "dynamodb:BatchWriteItem",
            "dynamodb:DeleteItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:Scan",
            "dynamodb:UpdateItem",
            "s3:GetObject",
            "s3:GetObjectMetadata",
            "s3:ListBucket",
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:DescribeLogGroups",
            "logs:DescribeLogStreams",
            "logs:PutLogEvents",
            "logs:PutRetentionPolicy",
        ],
        "no Replicas and no ImportSourceSpecification: each table is made empty, in one region",
    ),
    (
        "AWS::DynamoDB::Table",
        &[
            "dynamodb:EnableKinesisStreamingDestination",
            "dynamodb:DisableKinesisStreamingDestination",
            "dynamodb:UpdateKinesisStreamingDestination",
            "kinesis:PutRecords",
        ],
        "no KinesisStreamSpecification",
    ),
    ("AWS::DynamoDB::Table", &["dynamodb:PutResourcePolicy", "dynamodb:DeleteResourcePolicy"], "no ResourcePolicy"),
    ("AWS::DynamoDB::Table", &["dynamodb:UpdateContributorInsights"], "no ContributorInsightsSpecification"),
    (
        "AWS::IAM::Role",
        &["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
        "no ManagedPolicyArns: the roles' permissions are inline",
    ),
    (
        "AWS::IAM::Role",
        &["iam:PutRolePermissionsBoundary", "iam:DeleteRolePermissionsBoundary"],
        "no PermissionsBoundary",
    ),
    ("AWS::IAM::Role", &["iam:UpdateRole", "iam:UpdateRoleDescription"], "no Description or MaxSessionDuration"),
    (
        "AWS::Kinesis::Stream",
        &[
            "kinesis:EnableEnhancedMonitoring",
            "kinesis:DisableEnhancedMonitoring",
            "kinesis:UpdateMaxRecordSize",
            "kinesis:UpdateStreamRecordDistributionStrategy",
            "kinesis:UpdateStreamWarmThroughput",
        ],
        "no shard-level metrics, record size, distribution strategy or warm throughput set",
    ),
    (
        "AWS::Lambda::Function",
        &["ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs"],
        "no VpcConfig",
    ),
    (
        "AWS::Lambda::Function",
        &["elasticfilesystem:DescribeMountTargets", "s3files:ListMountTargets"],
        "no FileSystemConfigs",
    ),
    (
        "AWS::Lambda::Function",
        &["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"],
        "no KmsKeyArn: Lambda encrypts the environment with its own key",
    ),
    (
        "AWS::Lambda::Function",
        &[
            "lambda:GetCodeSigningConfig",
            "lambda:PutFunctionCodeSigningConfig",
            "lambda:DeleteFunctionCodeSigningConfig",
        ],
        "no CodeSigningConfigArn",
    ),
    (
        "AWS::Lambda::Function",
        &[
            "lambda:AssociateRuntimeAlias",
            "lambda:PassCapacityProvider",
            "lambda:PublishVersion",
            "lambda:PutFunctionRecursionConfig",
            "lambda:PutFunctionScalingConfig",
            "lambda:PutRuntimeManagementConfig",
            "lambda:GetLayerVersion",
            "s3:GetObjectVersion",
        ],
        "no capacity provider, SnapStart, RecursiveLoop, scaling or runtime management setting, layer or S3ObjectVersion",
    ),
    (
        "AWS::Logs::LogGroup",
        &[
            "firehose:TagDeliveryStream",
            "logs:AssociateKmsKey",
            "logs:DisassociateKmsKey",
            "logs:PutDataProtectionPolicy",
            "logs:DeleteDataProtectionPolicy",
            "logs:PutIndexPolicy",
            "logs:DeleteIndexPolicy",
            "logs:PutBearerTokenAuthentication",
            "logs:PutLogGroupDeletionProtection",
            "logs:DeleteResourcePolicy",
            "s3:REST.PUT.OBJECT",
        ],
        "no KmsKeyId, DataProtectionPolicy, index or resource policy, bearer tokens, deletion protection or delivery",
    ),
];

/// What creating an HTTP API stage that logs access takes besides (API Gateway developer guide,
/// "Configure logging for HTTP APIs in API Gateway", permissions to activate logging).
const HTTP_ACCESS_LOGS: &[&str] = &[
    "logs:CreateLogDelivery",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:CreateLogGroup",
    "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery",
    "logs:ListLogDeliveries",
];

#[test]
fn the_cloudformation_role_allows_what_each_resource_types_handlers_call() {
    let allowed: BTreeSet<String> = statements(&iam_policy("cloudformation-role-policy.json"))
        .iter()
        .filter(|statement| statement["Effect"] == "Allow")
        .flat_map(|statement| listed(&statement["Action"]))
        .map(|action| action.to_ascii_lowercase())
        .collect();
    // The registry's handler permissions (the table `cargo xtask registry` generates from the
    // pinned cfn-lint's schemas), for each resource type the templates hold.
    let mut needed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for stage in [stacks::stages::dev(), stacks::stages::prod()] {
        let template = stacks::synthesize(&contract::CONTRACT, &stage).expect("synthesizes").to_value();
        for resource in template["Resources"].as_object().expect("resources").values() {
            let resource_type = resource["Type"].as_str().expect("type").to_owned();
            let (_, handlers) = stacks::registry::HANDLER_PERMISSIONS
                .iter()
                .find(|(kind, _)| *kind == resource_type)
                .unwrap_or_else(|| panic!("no handler permissions for {resource_type}: run `cargo xtask registry`"));
            needed.entry(resource_type.clone()).or_default().extend(handlers.iter().map(|p| (*p).to_owned()));
            let logs_access = !resource["Properties"]["AccessLogSettings"].is_null();
            if resource_type == "AWS::ApiGatewayV2::Stage" && logs_access {
                let extra = HTTP_ACCESS_LOGS.iter().map(|permission| (*permission).to_owned());
                needed.entry(resource_type.clone()).or_default().extend(extra);
            }
        }
    }
    let mut missing = Vec::new();
    for (resource_type, permissions) in &needed {
        for permission in permissions {
            let excused = NOT_EXERCISED
                .iter()
                .any(|(kind, listed, _)| kind == resource_type && listed.contains(&permission.as_str()));
            if !excused && !allowed.contains(&permission.to_ascii_lowercase()) {
                missing.push(format!("{resource_type}: {permission}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "CloudFormation's service role lacks what these resource types' handlers call (the registry's handler \
         permissions): add them to .github/iam/cloudformation-role-policy.json, or to NOT_EXERCISED with the reason \
         no property of the stack's resources exercises them:\n  {}",
        missing.join("\n  ")
    );
    // Every excuse still names something a handler lists: none outlives the schema it was for.
    for (resource_type, permissions, reason) in NOT_EXERCISED {
        for permission in *permissions {
            assert!(
                needed.get(*resource_type).is_some_and(|listed| listed.contains(*permission)),
                "{resource_type} no longer lists {permission}: drop it from NOT_EXERCISED ({reason})"
            );
        }
    }
}

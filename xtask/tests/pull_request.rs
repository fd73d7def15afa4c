//! The pull-request workflow's AWS side (`.github/workflows/release.yml`), against a moto
//! server of this test's own that **enforces IAM**: the roles' policies in `.github/iam` are
//! given to IAM users, and `cargo xtask deploy` (with the CloudFormation service role,
//! `--role-arn`, as the workflow runs it) and `cargo xtask diff` run with those users' keys, so
//! an AWS operation the code calls that its policy does not allow fails the run.
//!
//! Why this way. Two ways were open: record the operations the xtask's SDK clients call (an
//! interceptor, as `testkit::OperationRecorder` does for the functions) and compare them with
//! the policy, or let the endpoint judge each request. The xtask is a separate process whose
//! clients are built in several modules, so recording would take a hook in each; moto's server
//! can enforce IAM instead (`/moto-api/reset-auth`, the switch `INITIAL_NO_AUTH_ACTION_COUNT`
//! sets at start-up), for every service it serves (CloudFormation, S3, STS, ...), with real
//! SigV4 signatures checked against the users' secret keys. It is the real judge of each
//! request the code sends, so it cannot drift from the code.
//!
//! What moto does not check, and how the policies are adapted for it ([`for_moto`]): it
//! matches a statement's `Resource` only for S3 (for other services it asks for `*`, so those
//! statements are given `*` here); it cannot evaluate a `Condition` outside trust policies (so
//! conditions are dropped); and it names S3's `HeadBucket` `s3:HeadBucket` where AWS asks for
//! `s3:ListBucket` (so the one implies the other). The actions are the policy's own. What
//! CloudFormation itself creates with its service role (functions, roles, tables...) moto
//! creates without asking: that role's statements are kept honest by `workflow.rs`, which
//! checks that every resource type of the synthesized templates has its service's statement.
//!
//! Beside the permissions: `diff --format markdown` of a changed deployed configuration, as
//! the workflow posts it (exit 2, the marker line, one table row for the changed function).
//!
//! Region `eu-west-2`, on a server of its own: nothing here can meet another test's stacks.

use serde_json::{Value, json};
use std::process::Output;

mod support;

use support::{artifacts, iam_policy, listed, sdk_config, temp_dir, text, update_template, xtask_command};

const REGION: &str = "eu-west-2";
const STACK: &str = "session-service-prod";

/// The statement's `Action`, as a list.
fn actions(statement: &Value) -> Vec<String> {
    listed(&statement["Action"])
}

/// `policy` as moto can judge it (see the module's documentation): resources `*` but for S3,
/// no conditions, `s3:HeadBucket` beside `s3:ListBucket`.
fn for_moto(policy: &Value) -> Value {
    let mut adapted = policy.clone();
    for statement in adapted["Statement"].as_array_mut().expect("statements") {
        let mut listed = actions(statement);
        if !listed.iter().all(|action| action.starts_with("s3:")) {
            statement["Resource"] = json!("*");
        }
        if listed.iter().any(|action| action == "s3:ListBucket") {
            listed.push("s3:HeadBucket".to_owned());
        }
        statement["Action"] = json!(listed);
        statement.as_object_mut().expect("statement").remove("Condition");
    }
    adapted
}

/// `policy` without `action`.
fn without(policy: &Value, action: &str) -> Value {
    let mut less = policy.clone();
    for statement in less["Statement"].as_array_mut().expect("statements") {
        let kept: Vec<String> = actions(statement).into_iter().filter(|listed| listed != action).collect();
        statement["Action"] = json!(kept);
    }
    less
}

/// Access keys of a new IAM user whose only permissions are `policy`.
async fn user(iam: &aws_sdk_iam::Client, name: &str, policy: &Value) -> (String, String) {
    iam.create_user().user_name(name).send().await.expect("user created");
    iam.put_user_policy()
        .user_name(name)
        .policy_name("role")
        .policy_document(policy.to_string())
        .send()
        .await
        .expect("policy put");
    let created = iam.create_access_key().user_name(name).send().await.expect("access key");
    let key = created.access_key().expect("access key");
    (key.access_key_id().to_owned(), key.secret_access_key().to_owned())
}

/// Turns IAM enforcement of the server at `endpoint` on or off.
async fn enforce(endpoint: &str, on: bool) {
    let count = if on { "0" } else { "inf" };
    let answer = reqwest::Client::new()
        .post(format!("{endpoint}/moto-api/reset-auth"))
        .body(count)
        .send()
        .await
        .expect("moto answers");
    assert!(answer.status().is_success(), "reset-auth: {}", answer.status());
}

/// `cargo xtask` with `args` in this test's region, as the user with `keys`.
fn xtask_as(endpoint: &str, keys: &(String, String), args: &[&str]) -> Output {
    xtask_command(endpoint, args)
        .args(["--region", REGION])
        .env("AWS_ACCESS_KEY_ID", &keys.0)
        .env("AWS_SECRET_ACCESS_KEY", &keys.1)
        .output()
        .expect("xtask runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_roles_policies_allow_what_diff_and_deploy_call_and_nothing_less() {
    let server = testkit::LocalServer::start(&testkit::venv_python()).expect("a moto server of this test's own");
    let endpoint = server.url().to_owned();
    let iam = aws_sdk_iam::Client::new(&sdk_config(&endpoint, "us-east-1"));
    let (diff_policy, deploy_policy) = (iam_policy("diff-role-policy.json"), iam_policy("deploy-role-policy.json"));
    let deployer = user(&iam, "deploy", &for_moto(&deploy_policy)).await;
    let differ = user(&iam, "diff", &for_moto(&diff_policy)).await;
    let diff_actions: Vec<String> =
        diff_policy["Statement"].as_array().expect("statements").iter().flat_map(actions).collect();
    let mut lesser = Vec::new();
    for (index, action) in diff_actions.iter().enumerate() {
        lesser.push((
            action.clone(),
            user(&iam, &format!("diff-{index}"), &for_moto(&without(&diff_policy, action))).await,
        ));
    }
    let no_change_sets =
        user(&iam, "deploy-less", &for_moto(&without(&deploy_policy, "cloudformation:CreateChangeSet"))).await;
    enforce(&endpoint, true).await;

    // Enforcement is on: the keys every other test uses are refused.
    let stranger = xtask_as(&endpoint, &("testing".to_owned(), "testing".to_owned()), &["diff", "--stage", "prod"]);
    assert_eq!(stranger.status.code(), Some(1), "{}", text(&stranger));

    // The deploy role releases prod from nothing: bucket, uploads, change set, execution.
    let dir = temp_dir("pull-request");
    artifacts(&dir);
    // CloudFormation releases the stack with its own service role (the workflow passes it).
    let service_role = format!("arn:aws:iam::123456789012:role/{STACK}-cloudformation");
    let release = [
        "deploy",
        "--stage",
        "prod",
        "--no-build",
        "--artifacts",
        dir.to_str().expect("utf-8"),
        "--yes",
        "--role-arn",
        &service_role,
    ];
    // Without one of its actions, it cannot (it gets as far as the change set).
    let refused = xtask_as(&endpoint, &no_change_sets, &release);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("AccessDenied") && text(&refused).contains("uploaded"), "{}", text(&refused));
    let first = xtask_as(&endpoint, &deployer, &release);
    assert!(first.status.success(), "{}", text(&first));
    assert!(text(&first).contains("CREATE_COMPLETE"), "{}", text(&first));

    // The diff role reads it: no difference. Without any one of its actions, diff fails.
    let quiet = xtask_as(&endpoint, &differ, &["diff", "--stage", "prod", "--format", "markdown"]);
    assert_eq!(quiet.status.code(), Some(0), "{}", text(&quiet));
    assert!(String::from_utf8_lossy(&quiet.stdout).starts_with("<!-- session-service diff: prod -->\n"));
    for (action, keys) in &lesser {
        let denied = xtask_as(&endpoint, keys, &["diff", "--stage", "prod"]);
        assert_eq!(denied.status.code(), Some(1), "without {action}: {}", text(&denied));
        assert!(text(&denied).contains("AccessDenied"), "without {action}: {}", text(&denied));
    }

    // A changed deployed configuration (a hand edit, made with enforcement off): the comment.
    enforce(&endpoint, false).await;
    let client = aws_sdk_cloudformation::Client::new(&sdk_config(&endpoint, REGION));
    let described = client.describe_stacks().stack_name(STACK).send().await.expect("described");
    let stack = described.stacks().first().expect("the stack");
    assert_eq!(stack.role_arn(), Some(service_role.as_str()), "the stack's service role");
    update_template(&client, STACK, |template| {
        template["Resources"]["MessagesFunction"]["Properties"]["Environment"]["Variables"]["MAX_LISTENERS_PER_SESSION"] = json!("900");
    })
    .await;
    enforce(&endpoint, true).await;
    let artifacts_dir = dir.to_str().expect("utf-8");
    let markdown = ["diff", "--stage", "prod", "--format", "markdown", "--artifacts", artifacts_dir];
    let changed = xtask_as(&endpoint, &differ, &markdown);
    assert_eq!(changed.status.code(), Some(2), "{}", text(&changed));
    let body = String::from_utf8_lossy(&changed.stdout).into_owned();
    assert_eq!(body.lines().next(), Some("<!-- session-service diff: prod -->"), "{body}");
    assert!(body.contains("🔶 1 change") && body.contains("0 added · 1 modified · 0 removed"), "{body}");
    // Each function's code is the one deployed: the local build (`--artifacts`) was released.
    let code: Vec<&str> = body.lines().filter(|line| line.starts_with("| `") && line.ends_with("| same |")).collect();
    assert_eq!(code.len(), contract::functions::ALL.len(), "{body}");
    let rows: Vec<&str> = body.lines().filter(|line| line.starts_with("| `MessagesFunction`")).collect();
    assert_eq!(
        rows,
        [
            "| `MessagesFunction` | `AWS::Lambda::Function` | modify | no |",
            "| `MessagesFunction` | `Properties.Environment.Variables.MAX_LISTENERS_PER_SESSION` | `900` | `500` |"
        ],
        "{body}"
    );
    // `--json` still reads as before, beside `--format`.
    let json = xtask_as(&endpoint, &differ, &["diff", "--stage", "prod", "--json"]);
    assert_eq!(json.status.code(), Some(2), "{}", text(&json));
    let report: Value = serde_json::from_slice(&json.stdout).expect("a JSON report");
    assert_eq!(report["diff"]["resources"][0]["logicalId"], "MessagesFunction");

    // The deploy role applies it, and a release with nothing to do passes too.
    for expected in ["UPDATE_COMPLETE", "No changes"] {
        let again = xtask_as(&endpoint, &deployer, &release);
        assert!(again.status.success() && text(&again).contains(expected), "{expected}: {}", text(&again));
    }
    // Another service role is not "nothing to do": CloudFormation's change set decides (moto
    // finds nothing to change; it does not judge iam:PassRole, which would refuse that role).
    let other_role = format!("arn:aws:iam::123456789012:role/{STACK}-cloudformation-2");
    let mut with_other_role = release.to_vec();
    *with_other_role.last_mut().expect("the role") = &other_role;
    let moved = xtask_as(&endpoint, &deployer, &with_other_role);
    assert!(moved.status.success(), "{}", text(&moved));
    assert!(text(&moved).contains("creating change set"), "{}", text(&moved));
    std::fs::remove_dir_all(&dir).ok();
}

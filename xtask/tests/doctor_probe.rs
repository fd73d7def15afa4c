//! `cargo xtask doctor`'s probes against the local stack (`cargo xtask dev`'s library), each
//! stack started once and every run of doctor made against it:
//!
//! - healthy: the tokenless listener gets 404, a speaker with a valid token heartbeats and
//!   leaves nothing behind, `/health` answers 200; a token signed with another key is refused
//!   with 401 and diagnosed; `--no-probe` skips all three;
//! - the incident's identity source, with two more console edits: the heartbeat route (and
//!   `$default`) deleted, and `GET /health` behind the JWT authorizer.
//!
//! The checks other than the probes read the test's moto in a region nothing is deployed to;
//! only the probe lines are asserted.

use serde_json::{Value, json};

mod support;

use support::{text, xtask};

/// A region no other test uses (the checks other than the probes read it and find nothing).
const REGION: &str = "af-south-1";

/// Runs `cargo xtask doctor --stage dev` with the test's credentials, endpoint and region, and
/// returns what it printed.
fn doctor(endpoint: &str, args: &[&str]) -> String {
    let mut all = vec!["doctor", "--stage", "dev"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--region", REGION]);
    text(&xtask(endpoint, &all))
}

/// Runs doctor without blocking the runtime the local stack serves on.
async fn doctor_async(endpoint: &str, args: &[String]) -> String {
    let endpoint = endpoint.to_owned();
    let args = args.to_vec();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        doctor(&endpoint, &args)
    })
    .await
    .expect("doctor ran")
}

/// The line of check `id` in `report`, with its fix line if it has one.
fn check_line(report: &str, id: &str) -> String {
    let marker = format!(" {id}: ");
    let mut lines = report.lines().skip_while(|line| !line.contains(&marker));
    let Some(line) = lines.next() else { return format!("no {id} line in:\n{report}") };
    match lines.next() {
        Some(fix) if fix.starts_with("    fix: ") => format!("{line}\n{fix}"),
        _ => line.to_owned(),
    }
}

/// The local stack (`cargo xtask dev`'s library) from the synthesized `dev` template, edited.
async fn dev_stack(test: &str, edit: Option<devstack::stack::TemplateEdit>) -> devstack::DevStack {
    let root = testkit::workspace_root();
    let binaries = tokio::task::spawn_blocking(move || devstack::binaries::build(&root, false))
        .await
        .expect("the build finished")
        .expect("the functions build");
    let endpoint = tokio::task::spawn_blocking(testkit::local_endpoint).await.expect("moto is up");
    let log =
        devstack::binaries::target_directory(&testkit::workspace_root()).join(format!("devstack-tests/{test}.log"));
    let logs = devstack::LogSink::file(&log).expect("a log file");
    let config = devstack::DevConfig {
        edit_template: edit,
        aws_endpoint: Some(endpoint),
        max_concurrency: 2,
        ..devstack::DevConfig::local(stacks::stages::dev(), binaries, logs).expect("a local key")
    };
    devstack::DevStack::start(config).await.expect("the local stack starts")
}

fn speaker() -> devstack::TokenRequest {
    devstack::TokenRequest::id("doctor-probe-speaker", 600)
}

/// How many items the stack's table `logical_id` holds.
async fn items(stack: &devstack::DevStack, logical_id: &str) -> i32 {
    let name = &stack.table_names()[logical_id];
    stack.dynamodb_client().scan().table_name(name).send().await.expect("scanned").count()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_probes_pass_a_healthy_local_stack_and_name_a_refused_token() {
    let endpoint = testkit::local_endpoint();
    let stack = dev_stack("doctor-healthy", None).await;
    let websocket_url = stack.websocket_url();
    let http_url = stack.http_url();
    let urls = ["--websocket-url", websocket_url.as_str(), "--http-url", http_url.as_str()];
    let with = |extra: &[&str]| -> Vec<String> { urls.iter().chain(extra).map(|arg| (*arg).to_owned()).collect() };

    let token = stack.token(&speaker()).expect("a local token");
    let healthy = doctor_async(&endpoint, &with(&["--token", &token])).await;

    // The speaker's probe leaves nothing behind: no session, and its connection's row goes
    // with its `$disconnect`.
    let sessions = items(&stack, contract::tables::SESSIONS.logical_id).await;
    let mut connections = items(&stack, contract::tables::CONNECTIONS.logical_id).await;
    for _ in 0..50 {
        if connections == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        connections = items(&stack, contract::tables::CONNECTIONS.logical_id).await;
    }

    let stranger = devstack::LocalIdentity::generate().expect("another key");
    let foreign = stranger.token(stack.stage(), &speaker()).expect("a token of another key");
    let refused = doctor_async(&endpoint, &with(&["--token", &foreign])).await;
    let skipped = doctor_async(&endpoint, &with(&["--token", &token, "--no-probe"])).await;
    stack.stop().await;

    let line = check_line(&healthy, "probe.listener");
    assert!(line.starts_with("✓ probe.listener: a tokenless listener of a missing session got 404"), "{line}");
    let line = check_line(&healthy, "probe.speaker");
    assert!(line.starts_with("✓ probe.speaker: a speaker with the token connected, got heartbeatAck"), "{line}");
    assert!(!healthy.contains(&token), "the token is never printed:\n{healthy}");
    let line = check_line(&healthy, "probe.http");
    assert!(line.starts_with(&format!("✓ probe.http: GET /health answered 200 ({http_url}/health)")), "{line}");
    assert_eq!(sessions, 0, "the speaker's probe created no session");
    assert_eq!(connections, 0, "the speaker's connection row is gone");

    let line = check_line(&refused, "probe.speaker");
    assert!(line.starts_with("✗ probe.speaker: the speaker's token was refused with 401"), "{line}");
    assert!(line.contains("the $connect authorizer found it invalid or expired"), "{line}");
    assert!(line.contains("JWT_ISSUER, JWT_AUDIENCE"), "{line}");
    assert!(!refused.contains(&foreign), "the token is never printed:\n{refused}");
    assert!(check_line(&refused, "probe.listener").starts_with("✓"), "{refused}");
    assert!(check_line(&refused, "probe.http").starts_with("✓"), "{refused}");

    for id in ["probe.listener", "probe.speaker", "probe.http"] {
        assert_eq!(check_line(&skipped, id), format!("- {id}: skipped (--no-probe)"), "{skipped}");
    }
}

/// The incident (an identity source on the `$connect` authorizer) and two more console edits:
/// the heartbeat route and `$default` deleted, `GET /health` behind the JWT authorizer.
fn incident(template: &mut Value) {
    template["Resources"]["ConnectAuthorizer"]["Properties"]["IdentitySource"] =
        json!(["route.request.querystring.token"]);
    let Some(resources) = template["Resources"].as_object_mut() else { return };
    let route_key = |resource: &Value| resource["Properties"]["RouteKey"].as_str().map(str::to_owned);
    resources.retain(|_, resource| !matches!(route_key(resource).as_deref(), Some("heartbeat" | "$default")));
    for resource in resources.values_mut() {
        if route_key(resource).as_deref() == Some("GET /health") {
            resource["Properties"]["AuthorizationType"] = json!("JWT");
            resource["Properties"]["AuthorizerId"] = json!({"Ref": stacks::naming::HTTP_AUTHORIZER});
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_probes_name_the_incident_and_the_console_edits() {
    let endpoint = testkit::local_endpoint();
    let stack = dev_stack("doctor-incident", Some(Box::new(incident))).await;
    let token = stack.token(&speaker()).expect("a local token");
    let args = ["--websocket-url", &stack.websocket_url(), "--http-url", &stack.http_url(), "--token", &token];
    let report = doctor_async(&endpoint, &args.map(str::to_owned)).await;
    stack.stop().await;

    let line = check_line(&report, "probe.listener");
    assert!(line.starts_with("✗ probe.listener: a tokenless listener got 401"), "{line}");
    assert!(line.contains("identity source refused it before any function ran"), "{line}");
    assert!(line.contains("remove the IdentitySource"), "{line}");

    // A token in the query passes the identity source; its heartbeat finds no route.
    let line = check_line(&report, "probe.speaker");
    assert!(line.starts_with("✗ probe.speaker: API Gateway answered the heartbeat with \"Forbidden\""), "{line}");
    assert!(line.contains("websocket.route.heartbeat"), "{line}");

    let line = check_line(&report, "probe.http");
    assert!(line.starts_with("✗ probe.http: GET /health answered 401"), "{line}");
    assert!(line.contains("authorization NONE"), "{line}");
}

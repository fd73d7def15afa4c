//! `cargo xtask doctor`'s probes against the local stack (`cargo xtask dev`'s library):
//! healthy, and with the incident's identity source in its template.

use serde_json::{Value, json};

mod support;

use support::{text, xtask};

/// A region no other test uses (the checks other than the probes read it and find nothing).
const REGION: &str = "af-south-1";

/// Runs `cargo xtask doctor --stage dev` with the test's credentials, endpoint and region.
fn doctor(endpoint: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["doctor", "--stage", "dev"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--region", REGION]);
    xtask(endpoint, &all)
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

/// The probe's line of a doctor run against `url` (the other checks read moto, not the stack).
fn probe_line(endpoint: &str, url: &str) -> String {
    let report = text(&doctor(endpoint, &["--websocket-url", url]));
    report.lines().skip_while(|line| !line.contains("probe.listener")).take(2).collect::<Vec<_>>().join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_probe_tells_a_healthy_local_stack_from_the_incident() {
    let endpoint = testkit::local_endpoint();

    let healthy = dev_stack("doctor-healthy", None).await;
    let line = probe_line(&endpoint, &healthy.websocket_url());
    healthy.stop().await;
    assert!(line.starts_with("✓ probe.listener: a tokenless listener of a missing session got 404"), "{line}");

    let edit: devstack::stack::TemplateEdit = Box::new(|template: &mut Value| {
        template["Resources"]["ConnectAuthorizer"]["Properties"]["IdentitySource"] =
            json!(["route.request.querystring.token"]);
    });
    let incident = dev_stack("doctor-incident", Some(edit)).await;
    let line = probe_line(&endpoint, &incident.websocket_url());
    incident.stop().await;
    assert!(line.starts_with("✗ probe.listener: a tokenless listener got 401"), "{line}");
    assert!(line.contains("identity source refused it before any function ran"), "{line}");
    assert!(line.contains("remove the IdentitySource"), "{line}");
}

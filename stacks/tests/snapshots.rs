//! Every synthesized template, snapshotted in the top-level `snapshots/` folder as
//! CloudFormation YAML (`Template::to_yaml`, the short intrinsic forms), so a change to a route,
//! an authorizer, a permission or a setting is a short diff. The test fails until a reviewer
//! accepts the new snapshot; CI never writes snapshots. The YAML is held to the JSON the deploy
//! path uses: it reads back to the same template, for every stage.
//!
//! To review a change: `INSTA_UPDATE=always cargo test -p stacks --test snapshots`, then read
//! `git diff snapshots/` (or `cargo insta review` where cargo-insta is installed).

use contract::{CONTRACT, Contract};
use stacks::stages::{self, StageConfig};

fn assert_template_snapshot(name: &str, stage: &StageConfig) {
    let template = stacks::synthesize(&CONTRACT, stage).expect("the stage synthesizes");
    let yaml = template.to_yaml();
    assert_eq!(stacks::yaml::from_yaml(&yaml).expect("the YAML reads back"), template.to_value());
    insta::with_settings!({
        snapshot_path => "../../snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, yaml);
    });
}

/// Every stage's YAML reads back to exactly its JSON (the snapshot tests check the same for the
/// snapshotted stages; this covers any stage added later without a snapshot).
#[test]
fn every_stages_yaml_reads_back_as_its_json() {
    for stage in stages::all().into_iter().chain([stages::without_authorizer(stages::dev())]) {
        let template = stacks::synthesize(&CONTRACT, &stage).expect("the stage synthesizes");
        let read = stacks::yaml::from_yaml(&template.to_yaml()).expect("the YAML reads back");
        assert_eq!(read, template.to_value(), "stage {}", stage.name);
    }
}

#[test]
fn dev() {
    assert_template_snapshot("dev.template", &stages::dev());
}

#[test]
fn prod() {
    assert_template_snapshot("prod.template", &stages::prod());
}

#[test]
fn dev_without_the_connect_authorizer() {
    assert_template_snapshot("dev-no-authorizer.template", &stages::without_authorizer(stages::dev()));
}

/// The contract with one more route served by `messages`.
fn contract_with_route(route_key: &'static str) -> Contract {
    let mut functions = CONTRACT.functions.to_vec();
    for function in functions.iter_mut().filter(|function| function.name == "messages") {
        let mut routes = function.websocket_routes.to_vec();
        routes.push(route_key);
        function.websocket_routes = Box::leak(routes.into_boxed_slice());
    }
    Contract { functions: Box::leak(functions.into_boxed_slice()), ..CONTRACT }
}

fn deployment_of(template: &serde_json::Value) -> String {
    template["Resources"]["WebSocketStage"]["Properties"]["DeploymentId"]["Ref"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn a_route_added_in_code_changes_the_routes_and_the_stages_deployment() {
    let before = stacks::synthesize(&CONTRACT, &stages::dev()).expect("synthesizes").to_value();
    let after = stacks::synthesize(&contract_with_route("raiseHand"), &stages::dev()).expect("synthesizes").to_value();
    assert!(before["Resources"].get("RouteRaiseHand").is_none());
    let route = &after["Resources"]["RouteRaiseHand"];
    assert_eq!(route["Properties"]["RouteKey"], "raiseHand");
    assert_eq!(route["Properties"]["Target"]["Fn::Join"][1][1]["Ref"], "MessagesIntegration");
    let (old, new) = (deployment_of(&before), deployment_of(&after));
    assert!(old.starts_with("WebSocketDeployment") && new.starts_with("WebSocketDeployment"));
    assert_ne!(old, new, "a new route must be a new deployment, or the stage keeps serving the old routes");
    assert!(after["Resources"].get(&old).is_none(), "the old deployment is replaced");
    let depends: Vec<&str> =
        after["Resources"][&new]["DependsOn"].as_array().into_iter().flatten().filter_map(|id| id.as_str()).collect();
    assert!(depends.contains(&"RouteRaiseHand"), "the deployment waits for the new route");
}

#[test]
fn the_same_input_gives_the_same_bytes() {
    let once = stacks::synthesize(&CONTRACT, &stages::prod()).expect("synthesizes").to_json();
    let twice = stacks::synthesize(&CONTRACT, &stages::prod()).expect("synthesizes").to_json();
    assert_eq!(once, twice);
}

#[test]
fn a_stage_setting_change_does_not_redeploy_the_routes() {
    let mut bigger = stages::dev();
    bigger.limits.max_listeners_per_session = 1000;
    let before = stacks::synthesize(&CONTRACT, &stages::dev()).expect("synthesizes").to_value();
    let after = stacks::synthesize(&CONTRACT, &bigger).expect("synthesizes").to_value();
    assert_eq!(deployment_of(&before), deployment_of(&after));
    assert_eq!(
        after["Resources"]["MessagesFunction"]["Properties"]["Environment"]["Variables"]["MAX_LISTENERS_PER_SESSION"],
        "1000"
    );
}

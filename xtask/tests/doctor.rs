//! `cargo xtask doctor` against a local AWS-compatible endpoint (moto's server).
//!
//! moto does not create API Gateway v2 resources from CloudFormation, but it serves the API
//! Gateway v2 API itself, so [`build_live_api`] builds the live WebSocket API through that API
//! from the synthesized `dev` template (API, integrations, authorizer, routes, stage), and the
//! stack record is a small stack with the template's outputs. Then the live API is broken one
//! way at a time and doctor names each break: a route deleted, the incident's identity source
//! on the `$connect` authorizer. The probe runs against a local server that answers the
//! handshake with a chosen status (`doctor_probe.rs` runs it against the local stack).

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::Output;

mod support;

use support::{text, xtask};

const STACK: &str = "session-service-dev";

/// Runs `cargo xtask doctor --stage dev` with the test's credentials, endpoint and region.
fn doctor(endpoint: &str, args: &[&str]) -> Output {
    let mut all = vec!["doctor", "--stage", "dev"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--region", REGION]);
    xtask(endpoint, &all)
}

/// A region no other test uses: `cargo xtask test` runs one local endpoint for every test
/// binary, and the release tests deploy `session-service-dev` in the stage's region.
const REGION: &str = "sa-east-1";

fn region() -> String {
    REGION.to_owned()
}

fn credentials() -> aws_sdk_cloudformation::config::Credentials {
    aws_sdk_cloudformation::config::Credentials::new("testing", "testing", None, None, "test")
}

fn apigateway(endpoint: &str) -> aws_sdk_apigatewayv2::Client {
    let config = aws_sdk_apigatewayv2::Config::builder()
        .behavior_version(aws_sdk_apigatewayv2::config::BehaviorVersion::latest())
        .region(aws_sdk_apigatewayv2::config::Region::new(region()))
        .endpoint_url(endpoint)
        .credentials_provider(credentials())
        .build();
    aws_sdk_apigatewayv2::Client::from_conf(config)
}

fn cloudformation(endpoint: &str) -> aws_sdk_cloudformation::Client {
    let config = aws_sdk_cloudformation::Config::builder()
        .behavior_version(aws_sdk_cloudformation::config::BehaviorVersion::latest())
        .region(aws_sdk_cloudformation::config::Region::new(region()))
        .endpoint_url(endpoint)
        .credentials_provider(credentials())
        .build();
    aws_sdk_cloudformation::Client::from_conf(config)
}

/// The live WebSocket API the test built: its id and its objects' ids by logical id.
#[derive(Debug)]
struct LiveApi {
    id: String,
    routes: BTreeMap<String, String>,
    authorizer: String,
}

/// The logical id a `{"Ref": X}` names.
fn referenced(value: &Value) -> Option<&str> {
    value.get("Ref").and_then(Value::as_str)
}

/// The logical id of the integration a route's `Target` (`integrations/${X}`) names.
fn target_integration(target: &Value) -> Option<&str> {
    target["Fn::Join"][1].as_array()?.iter().find_map(referenced)
}

/// Builds the WebSocket API of the synthesized `dev` template through the API Gateway v2 API.
async fn build_live_api(client: &aws_sdk_apigatewayv2::Client) -> LiveApi {
    let template = stacks::synthesize(&contract::CONTRACT, &stacks::stages::dev()).expect("dev synthesizes").to_value();
    let resources = template["Resources"].as_object().expect("resources");
    let of_api = |kind: &str| {
        let kind = format!("AWS::ApiGatewayV2::{kind}");
        resources
            .iter()
            .filter(move |(_, resource)| {
                resource["Type"] == kind.as_str()
                    && referenced(&resource["Properties"]["ApiId"]) == Some(stacks::naming::WEBSOCKET_API)
            })
            .map(|(id, resource)| (id.clone(), resource["Properties"].clone()))
            .collect::<Vec<_>>()
    };
    let api = &resources[stacks::naming::WEBSOCKET_API]["Properties"];
    let created = client
        .create_api()
        .name(api["Name"].as_str().expect("name"))
        .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Websocket)
        .route_selection_expression(api["RouteSelectionExpression"].as_str().expect("expression"))
        .send()
        .await
        .expect("API created");
    let api_id = created.api_id.expect("API id");
    let function_uri = |logical: &str| {
        format!(
            "arn:aws:apigateway:{}:lambda:path/2015-03-31/functions/arn:aws:lambda:{}:123456789012:function:{logical}/invocations",
            region(),
            region()
        )
    };
    let mut integrations = BTreeMap::new();
    for (logical, _) in of_api("Integration") {
        let integration = client
            .create_integration()
            .api_id(&api_id)
            .integration_type(aws_sdk_apigatewayv2::types::IntegrationType::AwsProxy)
            .integration_uri(function_uri(&logical))
            .send()
            .await
            .expect("integration created");
        integrations.insert(logical, integration.integration_id.expect("integration id"));
    }
    let mut authorizers = BTreeMap::new();
    for (logical, properties) in of_api("Authorizer") {
        let sources: Vec<String> = properties["IdentitySource"]
            .as_array()
            .map(|sources| sources.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        let authorizer = client
            .create_authorizer()
            .api_id(&api_id)
            .name(properties["Name"].as_str().expect("authorizer name"))
            .authorizer_type(aws_sdk_apigatewayv2::types::AuthorizerType::Request)
            .authorizer_uri(function_uri(&logical))
            .set_identity_source(Some(sources))
            .send()
            .await
            .expect("authorizer created");
        authorizers.insert(logical, authorizer.authorizer_id.expect("authorizer id"));
    }
    let mut routes = BTreeMap::new();
    for (_, properties) in of_api("Route") {
        let key = properties["RouteKey"].as_str().expect("route key").to_owned();
        let integration = target_integration(&properties["Target"]).and_then(|logical| integrations.get(logical));
        let authorizer = referenced(&properties["AuthorizerId"]).and_then(|logical| authorizers.get(logical));
        let route = client
            .create_route()
            .api_id(&api_id)
            .route_key(&key)
            .authorization_type(aws_sdk_apigatewayv2::types::AuthorizationType::from(
                properties["AuthorizationType"].as_str().unwrap_or("NONE"),
            ))
            .set_authorizer_id(authorizer.cloned())
            .set_target(integration.map(|id| format!("integrations/{id}")))
            .send()
            .await
            .expect("route created");
        routes.insert(key, route.route_id.expect("route id"));
    }
    client.create_stage().api_id(&api_id).stage_name("dev").send().await.expect("stage created");
    let authorizer =
        authorizers.get(stacks::naming::CONNECT_AUTHORIZER).expect("dev has the $connect authorizer").clone();
    LiveApi { id: api_id, routes, authorizer }
}

/// The stack record: a stack holding the synthesized template's outputs, pointing at `api`.
async fn create_stack(client: &aws_sdk_cloudformation::Client, api: &str) {
    let template = json!({
        "Resources": {"Marker": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "WebSocketUrl": {"Value": format!("wss://{api}.execute-api.{}.amazonaws.com/dev", region())},
            "ManagementEndpoint": {"Value": format!("https://{api}.execute-api.{}.amazonaws.com/dev", region())},
            "HttpUrl": {"Value": format!("https://http.execute-api.{}.amazonaws.com", region())},
        },
    });
    client.create_stack().stack_name(STACK).template_body(template.to_string()).send().await.expect("stack created");
}

/// A local server that answers every WebSocket handshake with `status`; its `ws://` URL.
fn answering(status: u16) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bound");
    let address = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0_u8; 4096];
            let _ = stream.read(&mut buffer);
            let _ = write!(stream, "HTTP/1.1 {status} Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    format!("ws://{address}/dev")
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_names_each_break_of_the_live_api() {
    let endpoint = testkit::local_endpoint();
    let client = apigateway(&endpoint);

    // No stack and no API yet: exit 1, saying to deploy.
    let output = doctor(&endpoint, &["--no-probe"]);
    let report = text(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(report.contains("✗ stack.exists"), "{report}");
    assert!(report.contains("cargo xtask deploy --stage dev"), "{report}");

    let api = build_live_api(&client).await;
    create_stack(&cloudformation(&endpoint), &api.id).await;

    // Healthy: every check passes, the probe is skipped.
    let output = doctor(&endpoint, &["--no-probe"]);
    let report = text(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert!(report.contains("✓ stack.status: CREATE_COMPLETE"), "{report}");
    assert!(report.contains("✓ websocket.route.joinSession"), "{report}");
    assert!(report.contains("✓ websocket.connect-authorizer"), "{report}");
    assert!(report.contains("- probe.listener: skipped (--no-probe)"), "{report}");
    assert!(!report.contains('✗'), "{report}");

    // The same, for scripts.
    let output = doctor(&endpoint, &["--no-probe", "--json"]);
    let json: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(json["stage"], "dev");
    assert_eq!(json["ok"], true);
    let checks = json["checks"].as_array().expect("checks");
    assert!(checks.iter().all(|check| check["status"] != "fail"), "{json:#}");
    let probe = checks.iter().find(|check| check["id"] == "probe.listener").expect("probe listed");
    assert_eq!(probe["status"], "skip");
    assert_eq!(probe["group"], "probe");

    // The probe: 404 from $connect is healthy; 401 is the identity source.
    let output = doctor(&endpoint, &["--websocket-url", &answering(404)]);
    let report = text(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert!(report.contains("✓ probe.listener"), "{report}");
    let output = doctor(&endpoint, &["--websocket-url", &answering(401)]);
    let report = text(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(report.contains("✗ probe.listener"), "{report}");
    assert!(report.contains("identity source refused it before any function ran"), "{report}");

    // A route deleted: named by its key.
    client.delete_route().api_id(&api.id).route_id(&api.routes["joinSession"]).send().await.expect("deleted");
    let output = doctor(&endpoint, &["--no-probe"]);
    let report = text(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(
        report.contains("✗ websocket.route.joinSession: route joinSession is missing from the live API"),
        "{report}"
    );
    assert!(report.contains("✓ websocket.connect-authorizer"), "{report}");

    // The incident: an identity source on the $connect authorizer.
    client
        .update_authorizer()
        .api_id(&api.id)
        .authorizer_id(&api.authorizer)
        .identity_source("route.request.querystring.token")
        .send()
        .await
        .expect("authorizer edited");
    let output = doctor(&endpoint, &["--no-probe", "--json"]);
    let json: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert_eq!(json["ok"], false);
    let check = json["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|check| check["id"] == "websocket.connect-authorizer"))
        .expect("the authorizer is checked");
    assert_eq!(check["status"], "fail", "{check:#}");
    let message = check["message"].as_str().unwrap_or_default();
    assert!(message.contains("route.request.querystring.token"), "{message}");
    assert!(message.contains("401 before any function runs"), "{message}");
    assert!(message.contains("1006"), "{message}");
    let fix = check["fix"].as_str().unwrap_or_default();
    assert!(fix.contains("remove the IdentitySource"), "{fix}");
    assert!(fix.contains("cargo xtask deploy --stage dev"), "{fix}");
}

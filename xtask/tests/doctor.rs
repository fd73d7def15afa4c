//! `cargo xtask doctor` against a stage deployed to a local AWS-compatible endpoint (moto's
//! server): the real `dev` template, deployed by `cargo xtask deploy` with fake zips.
//!
//! moto does not apply everything of that template, so [`as_aws_deploys_it`] first makes the
//! live stage what AWS would have made of the same deploy (each step names the moto 5.2.5
//! limit it makes up for): the stack's outputs; the WebSocket API built through the API
//! Gateway v2 API (moto does not create API Gateway v2 resources from CloudFormation), its
//! integrations and authorizer
//! invoking the deployed functions; the HTTP API with its CORS, JWT authorizer and routes; the functions on arm64 with
//! `MANAGEMENT_ENDPOINT` naming that API; API Gateway's invoke permissions with that API's
//! source ARNs; the roles' policies as JSON naming that API; TTL and point-in-time recovery.
//!
//! Then the healthy stage passes, and the live stage is broken one way at a time (each break
//! undone before the next) and doctor names exactly the check that judges it, with what it
//! means for clients and the fix: `MANAGEMENT_ENDPOINT` written as `wss://`, a missing
//! environment variable, a missing invoke permission, a role policy without an action the
//! code calls, a route's integration pointed at another function, the HTTP API's CORS without
//! the stage's origins, `POST /sessions` out from behind the JWT authorizer, a route deleted, the incident (an identity source on the `$connect`
//! authorizer), and a function deleted live. The probes run against local servers that
//! answer with a chosen status (`doctor_probe.rs` runs them against the local stack).

use aws_sdk_lambda::primitives::Blob;
use serde_json::Value;
use stacks::naming;
use stacks::template::{self, Resources};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Output;

mod support;

use support::{
    artifacts, checks_by_id, deploy_dev, physical_ids, sdk_config, tables_as_aws_deploys_them, temp_dir, text,
    update_template, xtask,
};

const STACK: &str = "session-service-dev";

/// A region no other test uses: `cargo xtask test` runs one local endpoint for every test
/// binary, and the release tests deploy `session-service-dev` in the stage's region.
const REGION: &str = "sa-east-1";

/// Runs `cargo xtask doctor --stage dev` in the test's region, comparing code with `dir`'s manifest.
fn doctor(endpoint: &str, dir: &Path, args: &[&str]) -> Output {
    let mut all =
        vec!["doctor", "--stage", "dev", "--region", REGION, "--artifacts", dir.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    xtask(endpoint, &all)
}

/// `doctor --no-probe --json`: its exit code and its checks by id.
fn doctor_json(endpoint: &str, dir: &Path) -> (Option<i32>, BTreeMap<String, Value>) {
    let run = doctor(endpoint, dir, &["--no-probe", "--json"]);
    (run.status.code(), checks_by_id(&run))
}

/// The ids of the failed checks.
fn failed(checks: &BTreeMap<String, Value>) -> Vec<&str> {
    checks.iter().filter(|(_, check)| check["status"] == "fail").map(|(id, _)| id.as_str()).collect()
}

/// Asserts that doctor fails exactly the check `id`, and returns its message and fix.
fn only_failure(endpoint: &str, dir: &Path, id: &str) -> (String, String) {
    let (code, checks) = doctor_json(endpoint, dir);
    assert_eq!(failed(&checks), [id], "{checks:#?}");
    assert_eq!(code, Some(1));
    let check = &checks[id];
    (check["message"].as_str().unwrap_or_default().to_owned(), check["fix"].as_str().unwrap_or_default().to_owned())
}

/// The live stage: what the test reads, breaks and restores.
#[derive(Debug)]
struct LiveStage {
    /// Logical id → physical id, as the stack lists them.
    physical: BTreeMap<String, String>,
    /// The WebSocket API's id.
    api: String,
    /// Route key → route id.
    routes: BTreeMap<String, String>,
    /// The `$connect` authorizer's id.
    authorizer: String,
    /// The HTTP API's id.
    http_api: String,
    /// The HTTP API's route key → route id.
    http_routes: BTreeMap<String, String>,
    /// Contract function name → its environment as AWS has it.
    environments: BTreeMap<&'static str, BTreeMap<String, String>>,
    /// What `${...}` stands for in the template's `Fn::Sub` texts.
    values: BTreeMap<String, String>,
    /// (Role, policy name) → the inline policy as AWS holds it.
    policies: BTreeMap<(String, String), Value>,
}

impl LiveStage {
    fn function(&self, name: &str) -> &str {
        &self.physical[&naming::function(name)]
    }

    fn role(&self, name: &str) -> &str {
        &self.physical[&naming::role(name)]
    }
}

/// `Fn::Sub` text (as [`template::render`] writes any expression) with every `${...}` replaced.
fn resolve(text: &str, values: &BTreeMap<String, String>) -> String {
    let resolved =
        values.iter().fold(text.to_owned(), |text, (name, value)| text.replace(&format!("${{{name}}}"), value));
    assert!(!resolved.contains("${"), "{resolved} has a reference the test does not know");
    resolved
}

/// Makes the stage `cargo xtask deploy` left on moto what AWS would have made of it.
async fn as_aws_deploys_it(endpoint: &str, dir: &Path) -> LiveStage {
    let template = stacks::synthesize(&contract::CONTRACT, &stacks::stages::dev()).expect("dev synthesizes").to_value();
    let resources = Resources::of(&template);
    let config = sdk_config(endpoint, REGION);
    let cloudformation = aws_sdk_cloudformation::Client::new(&config);
    // moto gives a stack the outputs of the template it was created with, and a stack that a
    // change set created was created empty (it never recomputes them when a change set runs):
    // the stack is updated once with its own template, which makes moto read its outputs (and
    // make its resources again, with new physical ids).
    update_template(&cloudformation, STACK, |_| {}).await;
    let physical = physical_ids(&cloudformation, STACK).await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let mut configurations = BTreeMap::new();
    for function in contract::CONTRACT.functions {
        let name = &physical[&naming::function(function.name)];
        let configuration = lambda.get_function_configuration().function_name(name).send().await.expect("function");
        configurations.insert(function.name, configuration);
    }
    let arn = configurations["connection"].function_arn().expect("ARN").to_owned();
    let account = arn.split(':').nth(4).expect("account").to_owned();
    let mut values: BTreeMap<String, String> = [
        ("AWS::Partition", "aws".to_owned()),
        ("AWS::Region", REGION.to_owned()),
        ("AWS::AccountId", account),
        ("AWS::URLSuffix", "amazonaws.com".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    for (function, configuration) in &configurations {
        values.insert(
            format!("{}.Arn", naming::function(function)),
            configuration.function_arn().expect("ARN").to_owned(),
        );
    }

    // moto does not create API Gateway v2 resources from CloudFormation: the APIs are built
    // through the API Gateway v2 API, invoking the deployed functions.
    let apigateway = aws_sdk_apigatewayv2::Client::new(&config);
    let (api, routes, authorizer) = build_live_api(&apigateway, &template, &mut values).await;
    let (http_api, http_routes) = build_live_http_api(&apigateway, &template, &mut values).await;

    // moto creates functions from CloudFormation on x86_64 whatever `Architectures` says, and
    // ignores `Architectures` in UpdateFunctionCode: each function is made again, on the
    // template's architecture, with the same code; its `MANAGEMENT_ENDPOINT` (moto leaves
    // `${WebSocketApi}` in it) names the API.
    let mut environments = BTreeMap::new();
    for function in contract::CONTRACT.functions {
        let configuration = &configurations[function.name];
        let name = configuration.function_name().expect("name");
        let logical = naming::function(function.name);
        let variables: BTreeMap<String, String> = configuration
            .environment()
            .and_then(|environment| environment.variables())
            .expect("variables")
            .iter()
            .map(|(key, value)| (key.clone(), resolve(value, &values)))
            .collect();
        let architectures = template::strings(&resources.properties(&logical)["Architectures"]);
        lambda.delete_function().function_name(name).send().await.expect("deleted");
        let zip = std::fs::read(dir.join(format!("{}.zip", function.name))).expect("zip");
        lambda
            .create_function()
            .function_name(name)
            .runtime(configuration.runtime().expect("runtime").clone())
            .role(configuration.role().expect("role"))
            .handler(configuration.handler().expect("handler"))
            .set_timeout(configuration.timeout())
            .set_memory_size(configuration.memory_size())
            .set_description(configuration.description().map(str::to_owned))
            .set_architectures(Some(architectures.iter().map(|a| a.as_str().into()).collect()))
            .environment(
                aws_sdk_lambda::types::Environment::builder()
                    .set_variables(Some(variables.clone().into_iter().collect()))
                    .build(),
            )
            .code(aws_sdk_lambda::types::FunctionCode::builder().zip_file(Blob::new(zip)).build())
            .send()
            .await
            .expect("function made again");
        environments.insert(function.name, variables);
    }

    // moto leaves `${WebSocketApi}` (and `${ConnectAuthorizer}`, `${HttpApi}`) in the
    // permissions' source ARNs, and they went with the functions: API Gateway's permissions
    // are given again, as the template writes them, naming the built APIs.
    for (logical, properties) in resources.of_type(template::LAMBDA_PERMISSION) {
        let function = resources.referenced(Some(&properties["FunctionName"]), template::LAMBDA).expect("function");
        let source = template::render(&properties["SourceArn"]).expect("source ARN");
        lambda
            .add_permission()
            .function_name(&physical[function])
            .statement_id(logical)
            .action(properties["Action"].as_str().expect("action"))
            .principal(properties["Principal"].as_str().expect("principal"))
            .source_arn(resolve(&source, &values))
            .send()
            .await
            .expect("permission given");
    }

    // moto returns a role's policies created by CloudFormation as Python reprs (single quotes),
    // not JSON, with `${WebSocketApi}` left in the @connections ARN: each is put again as AWS
    // holds it.
    let iam = aws_sdk_iam::Client::new(&config);
    let mut policies = BTreeMap::new();
    for function in contract::CONTRACT.functions {
        let role = &physical[&naming::role(function.name)];
        let names = iam.list_role_policies().role_name(role).send().await.expect("policies").policy_names;
        for policy in names {
            let got = iam.get_role_policy().role_name(role).policy_name(&policy).send().await.expect("policy");
            let document = resolve(&got.policy_document.replace('\'', "\""), &values);
            let parsed: Value = serde_json::from_str(&document).expect("the policy reads as JSON");
            put_role_policy(&iam, role, &policy, &parsed).await;
            policies.insert((role.clone(), policy), parsed);
        }
    }

    // moto creates tables from CloudFormation without their `TimeToLiveSpecification` and
    // `PointInTimeRecoverySpecification`: both are turned on as the template says.
    tables_as_aws_deploys_them(&aws_sdk_dynamodb::Client::new(&config), &physical).await;

    LiveStage { physical, api, routes, authorizer, http_api, http_routes, environments, values, policies }
}

/// The template's API Gateway v2 resources of `kind` on the WebSocket API: (logical id, properties).
fn of_api<'a>(template: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    of_the_api(template, naming::WEBSOCKET_API, kind)
}

/// The template's API Gateway v2 resources of `kind` on the API `api`: (logical id, properties).
fn of_the_api<'a>(template: &'a Value, api: &str, kind: &str) -> Vec<(&'a str, &'a Value)> {
    let kind = format!("AWS::ApiGatewayV2::{kind}");
    let resources = template["Resources"].as_object().expect("resources");
    resources
        .iter()
        .filter(|(_, resource)| {
            resource["Type"] == kind.as_str()
                && template::references(&resource["Properties"]["ApiId"]).first().map(|r| r.id.as_str()) == Some(api)
        })
        .map(|(id, resource)| (id.as_str(), &resource["Properties"]))
        .collect()
}

/// Builds the WebSocket API of the template through the API Gateway v2 API (integrations and
/// authorizer invoking the functions `values` names), with its stage; records the API's and
/// the authorizer's ids in `values`. Returns the API's id, its routes by key, and the
/// `$connect` authorizer's id.
async fn build_live_api(
    client: &aws_sdk_apigatewayv2::Client,
    template: &Value,
    values: &mut BTreeMap<String, String>,
) -> (String, BTreeMap<String, String>, String) {
    let api = &template["Resources"][naming::WEBSOCKET_API]["Properties"];
    let created = client
        .create_api()
        .name(api["Name"].as_str().expect("name"))
        .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Websocket)
        .route_selection_expression(api["RouteSelectionExpression"].as_str().expect("expression"))
        .send()
        .await
        .expect("API created");
    let api_id = created.api_id.expect("API id");
    values.insert(naming::WEBSOCKET_API.to_owned(), api_id.clone());
    let mut integrations = BTreeMap::new();
    for (logical, properties) in of_api(template, "Integration") {
        let uri = template::render(&properties["IntegrationUri"]).expect("integration URI");
        let integration = client
            .create_integration()
            .api_id(&api_id)
            .integration_type(aws_sdk_apigatewayv2::types::IntegrationType::AwsProxy)
            .integration_uri(resolve(&uri, values))
            .send()
            .await
            .expect("integration created");
        integrations.insert(logical, integration.integration_id.expect("integration id"));
    }
    let mut authorizers = BTreeMap::new();
    for (logical, properties) in of_api(template, "Authorizer") {
        let uri = template::render(&properties["AuthorizerUri"]).expect("authorizer URI");
        let authorizer = client
            .create_authorizer()
            .api_id(&api_id)
            .name(properties["Name"].as_str().expect("authorizer name"))
            .authorizer_type(aws_sdk_apigatewayv2::types::AuthorizerType::Request)
            .authorizer_uri(resolve(&uri, values))
            .set_identity_source(Some(template::strings(&properties["IdentitySource"])))
            .send()
            .await
            .expect("authorizer created");
        let id = authorizer.authorizer_id.expect("authorizer id");
        values.insert(logical.to_owned(), id.clone());
        authorizers.insert(logical, id);
    }
    let routes = create_routes(client, template, naming::WEBSOCKET_API, &api_id, &integrations, &authorizers).await;
    // moto serves no deployments: the stage has none (doctor skips that check on such an endpoint).
    client.create_stage().api_id(&api_id).stage_name("dev").send().await.expect("stage created");
    let authorizer = authorizers.get(naming::CONNECT_AUTHORIZER).expect("dev has the $connect authorizer").clone();
    (api_id, routes, authorizer)
}

/// Builds the HTTP API of the template through the API Gateway v2 API: its CORS configuration,
/// the integration invoking the function `values` names, the JWT authorizer, the routes and the
/// auto-deployed `$default` stage. Returns the API's id and its routes by key.
async fn build_live_http_api(
    client: &aws_sdk_apigatewayv2::Client,
    template: &Value,
    values: &mut BTreeMap<String, String>,
) -> (String, BTreeMap<String, String>) {
    use aws_sdk_apigatewayv2::types::{AuthorizerType, Cors, IntegrationType, JwtConfiguration};
    let api = &template["Resources"][naming::HTTP_API]["Properties"];
    let cors = &api["CorsConfiguration"];
    let created = client
        .create_api()
        .name(api["Name"].as_str().expect("HTTP API name"))
        .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Http)
        .cors_configuration(
            Cors::builder()
                .set_allow_origins(Some(template::strings(&cors["AllowOrigins"])))
                .set_allow_methods(Some(template::strings(&cors["AllowMethods"])))
                .set_allow_headers(Some(template::strings(&cors["AllowHeaders"])))
                .set_max_age(cors["MaxAge"].as_i64().map(|age| i32::try_from(age).expect("max age")))
                .build(),
        )
        .send()
        .await
        .expect("HTTP API created");
    let api_id = created.api_id.expect("HTTP API id");
    values.insert(naming::HTTP_API.to_owned(), api_id.clone());
    let mut integrations = BTreeMap::new();
    for (logical, properties) in of_the_api(template, naming::HTTP_API, "Integration") {
        let uri = template::render(&properties["IntegrationUri"]).expect("integration URI");
        let integration = client
            .create_integration()
            .api_id(&api_id)
            .integration_type(IntegrationType::AwsProxy)
            .integration_uri(resolve(&uri, values))
            .payload_format_version(properties["PayloadFormatVersion"].as_str().expect("payload format"))
            .send()
            .await
            .expect("integration created");
        integrations.insert(logical, integration.integration_id.expect("integration id"));
    }
    let mut authorizers = BTreeMap::new();
    for (logical, properties) in of_the_api(template, naming::HTTP_API, "Authorizer") {
        let jwt = &properties["JwtConfiguration"];
        let authorizer = client
            .create_authorizer()
            .api_id(&api_id)
            .name(properties["Name"].as_str().expect("authorizer name"))
            .authorizer_type(AuthorizerType::Jwt)
            .set_identity_source(Some(template::strings(&properties["IdentitySource"])))
            .jwt_configuration(
                JwtConfiguration::builder()
                    .issuer(jwt["Issuer"].as_str().expect("issuer"))
                    .set_audience(Some(template::strings(&jwt["Audience"])))
                    .build(),
            )
            .send()
            .await
            .expect("authorizer created");
        authorizers.insert(logical, authorizer.authorizer_id.expect("authorizer id"));
    }
    let routes = create_routes(client, template, naming::HTTP_API, &api_id, &integrations, &authorizers).await;
    client.create_stage().api_id(&api_id).stage_name("$default").auto_deploy(true).send().await.expect("stage");
    (api_id, routes)
}

/// Creates the template's routes of the API `api` (a logical id) on the live API `api_id`,
/// targeting the live integrations and authorizers (logical id → live id); returns the routes
/// by key.
async fn create_routes(
    client: &aws_sdk_apigatewayv2::Client,
    template: &Value,
    api: &str,
    api_id: &str,
    integrations: &BTreeMap<&str, String>,
    authorizers: &BTreeMap<&str, String>,
) -> BTreeMap<String, String> {
    let mut routes = BTreeMap::new();
    for (_, properties) in of_the_api(template, api, "Route") {
        let key = properties["RouteKey"].as_str().expect("route key").to_owned();
        let live = |property: &str, ids: &BTreeMap<&str, String>| {
            template::references(&properties[property])
                .first()
                .and_then(|reference| ids.get(reference.id.as_str()))
                .cloned()
        };
        let route = client
            .create_route()
            .api_id(api_id)
            .route_key(&key)
            .authorization_type(properties["AuthorizationType"].as_str().unwrap_or("NONE").into())
            .set_authorizer_id(live("AuthorizerId", authorizers))
            .set_target(live("Target", integrations).map(|id| format!("integrations/{id}")))
            .send()
            .await
            .expect("route created");
        routes.insert(key, route.route_id.expect("route id"));
    }
    routes
}

/// A local server that answers every request (a WebSocket handshake, `GET /health`) with
/// `status`; its address.
fn answering(status: u16) -> std::net::SocketAddr {
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
    address
}

/// Puts `document` as the inline policy `policy` of `role`.
async fn put_role_policy(iam: &aws_sdk_iam::Client, role: &str, policy: &str, document: &Value) {
    iam.put_role_policy()
        .role_name(role)
        .policy_name(policy)
        .policy_document(document.to_string())
        .send()
        .await
        .expect("policy put");
}

/// Replaces the whole environment of `function` with `variables`.
async fn set_environment(lambda: &aws_sdk_lambda::Client, function: &str, variables: &BTreeMap<String, String>) {
    lambda
        .update_function_configuration()
        .function_name(function)
        .environment(
            aws_sdk_lambda::types::Environment::builder()
                .set_variables(Some(variables.clone().into_iter().collect()))
                .build(),
        )
        .send()
        .await
        .expect("environment updated");
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_names_each_break_of_a_live_stage() {
    let endpoint = testkit::local_endpoint();
    let dir = temp_dir("doctor");
    artifacts(&dir);

    // No stack and no API yet: exit 1, saying to deploy.
    let output = doctor(&endpoint, &dir, &["--no-probe"]);
    let report = text(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(report.contains("✗ stack.exists"), "{report}");
    assert!(report.contains("cargo xtask deploy --stage dev"), "{report}");

    // A bucket of its own: bucket names are global, and the release tests make the default one elsewhere.
    let bucket = format!("xtask-doctor-{}", std::process::id());
    let deployed = deploy_dev(&endpoint, &dir, REGION, &bucket);
    assert!(deployed.status.success(), "{}", text(&deployed));
    let live = as_aws_deploys_it(&endpoint, &dir).await;

    // Healthy: no check fails; the probe is skipped.
    let output = doctor(&endpoint, &dir, &["--no-probe"]);
    let report = text(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    for line in [
        "✓ stack.status: UPDATE_COMPLETE",
        "✓ stack.outputs",
        "✓ websocket.route.joinSession",
        "✓ websocket.connect-authorizer",
        "✓ functions.connection.state",
        "✓ functions.messages.architecture: arm64",
        "✓ functions.http.code",
        "✓ functions.messages.environment",
        "✓ functions.authorizer.invoke-permission",
        "✓ functions.http.invoke-permission",
        "✓ permissions.messages",
        "✓ http.route.POST /sessions: POST /sessions → http (",
        "✓ http.authorizer",
        "✓ http.cors",
        "- probe.listener: skipped (--no-probe)",
    ] {
        assert!(report.contains(line), "{line}: {report}");
    }
    assert!(!report.contains('✗'), "{report}");

    // The same, for scripts.
    let output = doctor(&endpoint, &dir, &["--no-probe", "--json"]);
    let json: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(json["stage"], "dev");
    assert_eq!(json["ok"], true);
    let checks = json["checks"].as_array().expect("checks");
    assert!(checks.iter().all(|check| check["status"] != "fail"), "{json:#}");
    let probe = checks.iter().find(|check| check["id"] == "probe.listener").expect("probe listed");
    assert_eq!(probe["status"], "skip");
    assert_eq!(probe["group"], "probe");
    let groups: BTreeSet<&str> = checks.iter().filter_map(|check| check["group"].as_str()).collect();
    for group in ["stack", "websocket", "http", "functions", "permissions", "tables", "probe", "errors"] {
        assert!(groups.contains(group), "{group}: {groups:?}");
    }

    // The probes: 404 from $connect is healthy; 401 is the identity source.
    let health = format!("http://{}", answering(200));
    let probe = |status: u16| {
        let websocket = format!("ws://{}/dev", answering(status));
        doctor(&endpoint, &dir, &["--websocket-url", &websocket, "--http-url", &health])
    };
    let output = probe(404);
    let report = text(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert!(report.contains("✓ probe.listener"), "{report}");
    let output = probe(401);
    let report = text(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(report.contains("✗ probe.listener"), "{report}");
    assert!(report.contains("identity source refused it before any function ran"), "{report}");

    let config = sdk_config(&endpoint, REGION);
    let lambda = aws_sdk_lambda::Client::new(&config);
    let iam = aws_sdk_iam::Client::new(&config);

    // MANAGEMENT_ENDPOINT written as wss://: named, with what listeners miss and the environment to set.
    let messages = live.function("messages");
    let healthy_messages = &live.environments["messages"];
    let right = healthy_messages[contract::env::MANAGEMENT_ENDPOINT].clone();
    assert_eq!(right, format!("https://{}.execute-api.{REGION}.amazonaws.com/dev", live.api));
    let mut broken = healthy_messages.clone();
    broken.insert(contract::env::MANAGEMENT_ENDPOINT.to_owned(), right.replace("https://", "wss://"));
    set_environment(&lambda, messages, &broken).await;
    let output = doctor(&endpoint, &dir, &["--no-probe"]);
    let report = text(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(report.contains("✗ functions.messages.environment: MANAGEMENT_ENDPOINT is wss://"), "{report}");
    assert!(report.contains("@connections calls fail: listeners never receive audio/controls"), "{report}");
    assert!(
        report.contains(&format!("aws lambda update-function-configuration --function-name {messages}")),
        "{report}"
    );
    assert!(report.contains(&format!("\"MANAGEMENT_ENDPOINT\":\"{right}\"")), "{report}");
    set_environment(&lambda, messages, healthy_messages).await;

    // A variable the code reads, removed.
    let http = live.function("http");
    let mut broken = live.environments["http"].clone();
    broken.remove(contract::env::SESSIONS_TABLE);
    set_environment(&lambda, http, &broken).await;
    let (message, fix) = only_failure(&endpoint, &dir, "functions.http.environment");
    assert!(message.contains("SESSIONS_TABLE is not set: the cold start of `http` fails"), "{message}");
    assert!(message.contains("every request to its HTTP routes gets 500"), "{message}");
    assert!(fix.contains(&format!("\"SESSIONS_TABLE\":\"{}\"", live.physical["SessionsTable"])), "{fix}");
    set_environment(&lambda, http, &live.environments["http"]).await;

    // API Gateway's permission to invoke $connect's function, removed.
    let connection = live.function("connection");
    let statement = naming::websocket_permission("connection");
    lambda.remove_permission().function_name(connection).statement_id(&statement).send().await.expect("removed");
    let (message, fix) = only_failure(&endpoint, &dir, "functions.connection.invoke-permission");
    assert!(message.contains("API Gateway may not invoke"), "{message}");
    assert!(message.contains("$connect, $disconnect"), "{message}");
    assert!(message.contains("AccessDenied"), "{message}");
    assert!(message.contains("browsers see close 1006"), "{message}");
    let source = resolve("arn:aws:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}/dev/*", &live.values);
    assert!(fix.contains(&format!("aws lambda add-permission --function-name {connection}")), "{fix}");
    assert!(fix.contains(&format!("--source-arn '{source}'")), "{fix}");
    lambda
        .add_permission()
        .function_name(connection)
        .statement_id(&statement)
        .action("lambda:InvokeFunction")
        .principal("apigateway.amazonaws.com")
        .source_arn(&source)
        .send()
        .await
        .expect("permission given back");

    // The messages role without kinesis:PutRecord.
    let role = live.role("messages");
    let policy = "messages-contract";
    let document = &live.policies[&(role.to_owned(), policy.to_owned())];
    let mut without = document.clone();
    without["Statement"]
        .as_array_mut()
        .expect("statements")
        .retain(|statement| !template::strings(&statement["Action"]).contains(&"kinesis:PutRecord".to_owned()));
    put_role_policy(&iam, role, policy, &without).await;
    let (message, fix) = only_failure(&endpoint, &dir, "permissions.messages");
    assert!(message.contains("does not allow kinesis:PutRecord on the Audio stream"), "{message}");
    assert!(message.contains("sendAudio fails and listeners hear nothing"), "{message}");
    assert!(fix.contains(&format!("aws iam put-role-policy --role-name {role} --policy-name {policy}")), "{fix}");
    assert!(fix.contains(&live.physical[naming::AUDIO_STREAM]), "{fix}");
    put_role_policy(&iam, role, policy, document).await;
    let (code, checks) = doctor_json(&endpoint, &dir);
    assert_eq!((code, failed(&checks)), (Some(0), Vec::<&str>::new()), "every break undone: {checks:#?}");

    // A route's integration pointed at another function: heartbeat sent to the connection
    // function's integration (that of $connect) instead of the messages function's.
    let apigateway = aws_sdk_apigatewayv2::Client::new(&config);
    let route = |key: &str| apigateway.get_route().api_id(&live.api).route_id(&live.routes[key]).send();
    let connect_target = route(contract::CONNECT_ROUTE).await.expect("$connect read").target;
    let heartbeat_target = route("heartbeat").await.expect("heartbeat read").target;
    let retarget = |target: Option<String>| {
        apigateway.update_route().api_id(&live.api).route_id(&live.routes["heartbeat"]).set_target(target).send()
    };
    retarget(connect_target).await.expect("heartbeat pointed at the connection function");
    let (message, fix) = only_failure(&endpoint, &dir, "websocket.route.heartbeat");
    let messages = live.function("messages");
    let wrong =
        format!("route heartbeat invokes ConnectionFunction, not this stack's `messages` function ({messages})");
    assert!(message.contains(&wrong), "{message}");
    assert!(fix.contains(&format!("aws apigatewayv2 update-integration --api-id {}", live.api)), "{fix}");
    retarget(heartbeat_target).await.expect("heartbeat restored");
    let (code, checks) = doctor_json(&endpoint, &dir);
    assert_eq!((code, failed(&checks)), (Some(0), Vec::<&str>::new()), "every break undone: {checks:#?}");

    // The HTTP API's CORS without the stage's origins: the console's pages are refused by browsers.
    let template = stacks::synthesize(&contract::CONTRACT, &stacks::stages::dev()).expect("dev").to_value();
    let cors = &template["Resources"][naming::HTTP_API]["Properties"]["CorsConfiguration"];
    let cors_with = |origins: Vec<String>| {
        aws_sdk_apigatewayv2::types::Cors::builder()
            .set_allow_origins(Some(origins))
            .set_allow_methods(Some(template::strings(&cors["AllowMethods"])))
            .set_allow_headers(Some(template::strings(&cors["AllowHeaders"])))
            .build()
    };
    let elsewhere = vec!["https://elsewhere.example.org".to_owned()];
    let update = apigateway.update_api().api_id(&live.http_api).cors_configuration(cors_with(elsewhere));
    update.send().await.expect("CORS edited");
    let (message, fix) = only_failure(&endpoint, &dir, "http.cors");
    let origins = template::strings(&cors["AllowOrigins"]).join(", ");
    assert!(message.contains(&format!("pages from {origins} get no Access-Control-Allow-Origin")), "{message}");
    assert!(fix.contains(&format!("aws apigatewayv2 update-api --api-id {}", live.http_api)), "{fix}");
    let update = apigateway
        .update_api()
        .api_id(&live.http_api)
        .cors_configuration(cors_with(template::strings(&cors["AllowOrigins"])));
    update.send().await.expect("CORS restored");

    // POST /sessions taken out from behind the JWT authorizer.
    let post = &live.http_routes["POST /sessions"];
    let authorize = |kind: &str| {
        apigateway.update_route().api_id(&live.http_api).route_id(post).authorization_type(kind.into()).send()
    };
    authorize("NONE").await.expect("route edited");
    let (message, _) = only_failure(&endpoint, &dir, "http.route.POST /sessions");
    assert!(message.contains("POST /sessions is not behind the JWT authorizer"), "{message}");
    authorize("JWT").await.expect("route restored");

    // A route deleted: named by its key.
    apigateway.delete_route().api_id(&live.api).route_id(&live.routes["joinSession"]).send().await.expect("deleted");
    let output = doctor(&endpoint, &dir, &["--no-probe"]);
    let report = text(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(
        report.contains("✗ websocket.route.joinSession: route joinSession is missing from the live API"),
        "{report}"
    );
    assert!(report.contains("✓ websocket.connect-authorizer"), "{report}");

    // The incident: an identity source on the $connect authorizer.
    apigateway
        .update_authorizer()
        .api_id(&live.api)
        .authorizer_id(&live.authorizer)
        .identity_source("route.request.querystring.token")
        .send()
        .await
        .expect("authorizer edited");
    let output = doctor(&endpoint, &dir, &["--no-probe", "--json"]);
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

    // A function deleted live: recreated under its name, with the role the stack lists, in this account.
    lambda.delete_function().function_name(http).send().await.expect("deleted");
    let (_, checks) = doctor_json(&endpoint, &dir);
    let check = &checks["functions.http.state"];
    assert_eq!(check["status"], "fail", "{check:#}");
    assert!(check["message"].as_str().unwrap_or_default().contains("Lambda has no such function"), "{check:#}");
    let role = format!("arn:aws:iam::{}:role/{}", live.values["AWS::AccountId"], live.role("http"));
    let fix = check["fix"].as_str().unwrap_or_default();
    assert!(fix.contains(&format!("aws lambda create-function --function-name {http} --role {role} ")), "{fix}");
    std::fs::remove_dir_all(&dir).ok();
}

//! The verifier against synthesized templates and against each known drift, one edit at a
//! time: the synthesized templates verify clean, every drift produces its finding (the seed
//! incident first), and no template, however damaged, makes the verifier panic.

use contract::{CONTRACT, Contract, Function};
use serde_json::{Value, json};
use stacks::stages::{self, StageConfig};
use stacks::{Finding, FindingKind, verify};

fn synthesized(stage: &StageConfig) -> Value {
    stacks::synthesize(&CONTRACT, stage).expect("the stage synthesizes").to_value()
}

/// The good `dev` template, which each test edits once.
fn dev() -> Value {
    synthesized(&stages::dev())
}

fn findings(template: &Value) -> Vec<Finding> {
    verify(template, &CONTRACT)
}

/// (kind, logical id, property) of each finding, in the verifier's order.
fn summary(findings: &[Finding]) -> Vec<(FindingKind, &str, &str)> {
    findings.iter().map(|finding| (finding.kind, finding.logical_id.as_str(), finding.property.as_str())).collect()
}

fn resource<'a>(template: &'a mut Value, id: &str) -> &'a mut Value {
    &mut template["Resources"][id]
}

fn properties<'a>(template: &'a mut Value, id: &str) -> &'a mut Value {
    &mut template["Resources"][id]["Properties"]
}

fn remove(value: &mut Value, key: &str) {
    value.as_object_mut().expect("an object").remove(key).expect("the key exists");
}

fn deployment_id(template: &Value) -> String {
    let resources = template["Resources"].as_object().expect("resources");
    resources.keys().find(|id| id.starts_with("WebSocketDeployment")).expect("a deployment").clone()
}

/// Renames the WebSocket deployment to the fingerprint of the edited routes, integrations and
/// `$connect` authorizer, as a synthesizer that produced the edit would have: the edit's own
/// finding can then be asserted alone, without the stale deployment it also causes.
fn reseal(template: &mut Value) {
    let resources = template["Resources"].as_object().expect("resources").clone();
    let of_api = |kind: &str| -> Vec<String> {
        resources
            .iter()
            .filter(|(_, resource)| {
                resource["Type"] == kind && resource["Properties"]["ApiId"] == json!({"Ref": "WebSocketApi"})
            })
            .map(|(id, _)| id.clone())
            .collect()
    };
    let routes = of_api("AWS::ApiGatewayV2::Route");
    let mut inputs: Vec<String> = routes.iter().chain(&of_api("AWS::ApiGatewayV2::Integration")).cloned().collect();
    let connect = resources.values().find(|resource| resource["Properties"]["RouteKey"] == "$connect");
    if let Some(Value::String(authorizer)) = connect.map(|route| &route["Properties"]["AuthorizerId"]["Ref"]) {
        inputs.push(authorizer.clone());
    }
    inputs.sort();
    let fingerprint = stacks::service::fingerprint(&template["Resources"], &inputs);
    let old = deployment_id(template);
    let mut deployment = template["Resources"].as_object_mut().expect("resources").remove(&old).expect("deployment");
    let mut depends_on = routes;
    depends_on.sort();
    deployment["DependsOn"] = json!(depends_on);
    let new = format!("WebSocketDeployment{fingerprint}");
    template["Resources"][&new] = deployment;
    properties(template, "WebSocketStage")["DeploymentId"] = json!({"Ref": new});
}

/// Asserts that `template` has exactly these findings.
fn assert_findings(template: &Value, expected: &[(FindingKind, &str, &str)]) -> Vec<Finding> {
    let found = findings(template);
    assert_eq!(summary(&found), expected, "{found:#?}");
    found
}

#[test]
fn every_synthesized_template_verifies_with_zero_findings() {
    for stage in [stages::dev(), stages::prod(), stages::without_authorizer(stages::dev())] {
        let found = findings(&synthesized(&stage));
        assert!(found.is_empty(), "{} ({}): {found:#?}", stage.name, stage.stack_name);
    }
}

#[test]
fn a_template_read_back_from_its_text_verifies_clean() {
    let text = stacks::synthesize(&CONTRACT, &stages::prod()).expect("synthesizes").to_json();
    let template: Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(findings(&template), []);
}

// The seed incident: a `$connect` authorizer with an identity source refuses every tokenless
// listener with 401 before any code runs.
#[test]
fn seed_incident_an_identity_source_on_the_connect_authorizer() {
    let mut template = dev();
    properties(&mut template, "ConnectAuthorizer")["IdentitySource"] = json!(["route.request.querystring.token"]);
    reseal(&mut template);
    let found =
        assert_findings(&template, &[(FindingKind::ConnectIdentitySource, "ConnectAuthorizer", "IdentitySource")]);
    let consequence = &found[0].consequence;
    assert!(consequence.contains("route.request.querystring.token"), "{consequence}");
    assert!(consequence.contains("401"), "{consequence}");
    assert!(consequence.contains("1006"), "{consequence}");
}

#[test]
fn seed_incident_reads_well() {
    let mut template = dev();
    properties(&mut template, "ConnectAuthorizer")["IdentitySource"] = json!(["route.request.querystring.token"]);
    let found = findings(&template);
    assert_eq!(
        found[0].to_string(),
        "ConnectAuthorizer: IdentitySource — the $connect authorizer requires route.request.querystring.token: \
         listeners without a token are refused with 401 before any function runs; browsers see close 1006"
    );
}

#[test]
fn seed_incident_comes_first_and_the_unredeployed_change_is_stale_too() {
    let mut template = dev();
    properties(&mut template, "ConnectAuthorizer")["IdentitySource"] = json!(["route.request.querystring.token"]);
    assert_findings(
        &template,
        &[
            (FindingKind::ConnectIdentitySource, "ConnectAuthorizer", "IdentitySource"),
            (FindingKind::StageStale, "WebSocketStage", "DeploymentId"),
        ],
    );
}

#[test]
fn an_identity_source_written_as_a_single_string_is_found_too() {
    let mut template = dev();
    properties(&mut template, "ConnectAuthorizer")["IdentitySource"] = json!("route.request.header.Authorization");
    reseal(&mut template);
    let found =
        assert_findings(&template, &[(FindingKind::ConnectIdentitySource, "ConnectAuthorizer", "IdentitySource")]);
    assert!(found[0].consequence.contains("route.request.header.Authorization"));
}

#[test]
fn iam_authorization_on_connect_refuses_listeners() {
    let mut template = dev();
    let route = properties(&mut template, "RouteConnect");
    route["AuthorizationType"] = json!("AWS_IAM");
    remove(route, "AuthorizerId");
    reseal(&mut template);
    let found = assert_findings(
        &template,
        &[
            (FindingKind::ConnectIdentitySource, "RouteConnect", "AuthorizationType"),
            (FindingKind::AuthorizerMissing, "RouteConnect", "AuthorizationType"),
        ],
    );
    assert!(found[0].consequence.contains("1006"));
}

#[test]
fn an_authorizer_detached_from_connect_is_missing() {
    let mut template = dev();
    let route = properties(&mut template, "RouteConnect");
    route["AuthorizationType"] = json!("NONE");
    remove(route, "AuthorizerId");
    reseal(&mut template);
    let found = assert_findings(&template, &[(FindingKind::AuthorizerMissing, "RouteConnect", "AuthorizationType")]);
    assert!(found[0].consequence.contains("authorizer context that never arrives"), "{}", found[0]);
}

#[test]
fn an_authorizer_attached_on_a_stage_without_one_is_unexpected() {
    let mut template = synthesized(&stages::without_authorizer(stages::dev()));
    let authorizer = dev()["Resources"]["ConnectAuthorizer"].clone();
    template["Resources"]["ConnectAuthorizer"] = authorizer;
    let route = properties(&mut template, "RouteConnect");
    route["AuthorizationType"] = json!("CUSTOM");
    route["AuthorizerId"] = json!({"Ref": "ConnectAuthorizer"});
    reseal(&mut template);
    assert_findings(&template, &[(FindingKind::AuthorizerUnexpected, "RouteConnect", "AuthorizerId")]);
}

#[test]
fn an_authorizer_invoking_another_function_does_not_emit_the_context_keys() {
    let mut template = dev();
    properties(&mut template, "ConnectAuthorizer")["AuthorizerUri"] = json!({"Fn::Sub":
        "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${MessagesFunction.Arn}/invocations"});
    reseal(&mut template);
    let found =
        assert_findings(&template, &[(FindingKind::AuthorizerContextKeys, "ConnectAuthorizer", "AuthorizerUri")]);
    assert!(found[0].consequence.contains("`messages` (MessagesFunction)"), "{}", found[0]);
    assert!(found[0].consequence.contains("authenticated, userId, email"), "{}", found[0]);
}

#[test]
fn an_authorizer_of_another_type_does_not_emit_the_context_keys() {
    let mut template = dev();
    properties(&mut template, "ConnectAuthorizer")["AuthorizerType"] = json!("JWT");
    reseal(&mut template);
    assert_findings(&template, &[(FindingKind::AuthorizerContextKeys, "ConnectAuthorizer", "AuthorizerType")]);
}

#[test]
fn a_function_reading_a_context_key_the_authorizer_never_emits() {
    const READER: Function = Function { reads_authorizer_context: &["tenant"], ..contract::functions::CONNECTION };
    static FUNCTIONS: [Function; 4] =
        [contract::functions::AUTHORIZER, READER, contract::functions::MESSAGES, contract::functions::HTTP];
    let contract = Contract { functions: &FUNCTIONS, ..CONTRACT };
    let found = verify(&dev(), &contract);
    assert_eq!(
        summary(&found),
        [(FindingKind::AuthorizerContextKeys, "ConnectionFunction", "requestContext.authorizer.tenant")]
    );
}

#[test]
fn a_missing_environment_variable() {
    let mut template = dev();
    remove(&mut properties(&mut template, "MessagesFunction")["Environment"]["Variables"], "SESSIONS_TABLE");
    let found = assert_findings(
        &template,
        &[(FindingKind::EnvironmentMissing, "MessagesFunction", "Environment.Variables.SESSIONS_TABLE")],
    );
    assert!(found[0].consequence.contains("cold start fails"), "{}", found[0]);
}

#[test]
fn an_environment_variable_naming_the_wrong_table() {
    let mut template = dev();
    properties(&mut template, "MessagesFunction")["Environment"]["Variables"]["SESSIONS_TABLE"] =
        json!({"Ref": "ConnectionsTable"});
    assert_findings(
        &template,
        &[(FindingKind::EnvironmentValue, "MessagesFunction", "Environment.Variables.SESSIONS_TABLE")],
    );
}

#[test]
fn a_connect_auth_the_function_cannot_parse() {
    let mut template = dev();
    properties(&mut template, "ConnectionFunction")["Environment"]["Variables"]["CONNECT_AUTH"] = json!("maybe");
    assert_findings(
        &template,
        &[(FindingKind::EnvironmentValue, "ConnectionFunction", "Environment.Variables.CONNECT_AUTH")],
    );
}

#[test]
fn a_wss_management_endpoint() {
    let mut template = dev();
    properties(&mut template, "MessagesFunction")["Environment"]["Variables"]["MANAGEMENT_ENDPOINT"] =
        json!({"Fn::Sub": "wss://${WebSocketApi}.execute-api.${AWS::Region}.amazonaws.com/dev"});
    let found = assert_findings(
        &template,
        &[(FindingKind::ManagementEndpointNotHttps, "MessagesFunction", "Environment.Variables.MANAGEMENT_ENDPOINT")],
    );
    assert!(found[0].consequence.contains("wss://${WebSocketApi}"), "{}", found[0]);
}

#[test]
fn a_management_endpoint_joined_by_hand_is_read_through_the_join() {
    let mut template = dev();
    properties(&mut template, "HttpFunction")["Environment"]["Variables"]["MANAGEMENT_ENDPOINT"] =
        json!({"Fn::Join": ["", ["https://", {"Ref": "WebSocketApi"}, ".execute-api.eu-west-1.amazonaws.com/dev"]]});
    assert_findings(&template, &[]);
    properties(&mut template, "HttpFunction")["Environment"]["Variables"]["MANAGEMENT_ENDPOINT"] =
        json!({"Fn::Join": ["", ["wss://", {"Ref": "WebSocketApi"}, "/dev"]]});
    assert_findings(
        &template,
        &[(FindingKind::ManagementEndpointNotHttps, "HttpFunction", "Environment.Variables.MANAGEMENT_ENDPOINT")],
    );
}

/// The statements of a role's only inline policy.
fn statements<'a>(template: &'a mut Value, role: &str) -> &'a mut Vec<Value> {
    properties(template, role)["Policies"][0]["PolicyDocument"]["Statement"].as_array_mut().expect("statements")
}

fn statement_index(template: &mut Value, role: &str, action: &str) -> usize {
    statements(template, role).iter().position(|statement| statement["Action"][0] == action).expect("statement")
}

#[test]
fn a_role_without_manage_connections() {
    let mut template = dev();
    let index = statement_index(&mut template, "MessagesRole", "execute-api:ManageConnections");
    statements(&mut template, "MessagesRole").remove(index);
    let found = assert_findings(&template, &[(FindingKind::RoleMissingAction, "MessagesRole", "Policies")]);
    let consequence = &found[0].consequence;
    assert!(consequence.contains("execute-api:ManageConnections"), "{consequence}");
    assert!(consequence.contains("clients never hear back"), "{consequence}");
}

#[test]
fn a_role_without_the_fan_out_query() {
    let mut template = dev();
    let index = statement_index(&mut template, "ConnectionRole", "dynamodb:Query");
    statements(&mut template, "ConnectionRole").remove(index);
    let found = assert_findings(&template, &[(FindingKind::RoleMissingAction, "ConnectionRole", "Policies")]);
    assert!(found[0].consequence.contains("listeners never receive broadcasts"), "{}", found[0]);
}

#[test]
fn a_statement_on_another_resource_does_not_count() {
    let mut template = dev();
    let index = statement_index(&mut template, "MessagesRole", "kinesis:PutRecord");
    statements(&mut template, "MessagesRole")[index]["Resource"] = json!([{"Fn::GetAtt": ["SessionsTable", "Arn"]}]);
    let found = assert_findings(&template, &[(FindingKind::RoleMissingAction, "MessagesRole", "Policies")]);
    assert!(found[0].consequence.contains("kinesis:PutRecord"), "{}", found[0]);
}

#[test]
fn a_deny_statement_takes_the_action_away() {
    let mut template = dev();
    statements(&mut template, "HttpRole").push(json!({
        "Effect": "Deny", "Action": "dynamodb:PutItem", "Resource": {"Fn::GetAtt": ["SessionsTable", "Arn"]}
    }));
    let found = assert_findings(&template, &[(FindingKind::RoleMissingAction, "HttpRole", "Policies")]);
    assert!(found[0].consequence.starts_with("does not allow dynamodb:PutItem on SessionsTable"), "{}", found[0]);
}

#[test]
fn a_statement_moved_to_an_attached_policy_still_counts() {
    let mut template = dev();
    let index = statement_index(&mut template, "MessagesRole", "execute-api:ManageConnections");
    let moved = statements(&mut template, "MessagesRole").remove(index);
    template["Resources"]["MessagesExtraPolicy"] = json!({
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyName": "extra",
            "PolicyDocument": {"Version": "2012-10-17", "Statement": moved},
            "Roles": [{"Ref": "MessagesRole"}]
        }
    });
    assert_findings(&template, &[]);
}

#[test]
fn a_wildcard_action() {
    let mut template = dev();
    statements(&mut template, "MessagesRole")[1]["Action"] = json!("*");
    let found = assert_findings(
        &template,
        &[(FindingKind::RoleWildcard, "MessagesRole", "Policies[0].PolicyDocument.Statement[1].Action")],
    );
    assert!(found[0].consequence.contains("`messages`"), "{}", found[0]);
}

#[test]
fn a_service_wildcard_and_a_wildcard_resource() {
    let mut template = dev();
    statements(&mut template, "HttpRole")[2]["Action"] = json!(["dynamodb:*"]);
    statements(&mut template, "HttpRole")[2]["Resource"] = json!("*");
    assert_findings(
        &template,
        &[
            (FindingKind::RoleWildcard, "HttpRole", "Policies[0].PolicyDocument.Statement[2].Action"),
            (FindingKind::RoleWildcard, "HttpRole", "Policies[0].PolicyDocument.Statement[2].Resource"),
        ],
    );
}

#[test]
fn a_route_whose_code_was_removed() {
    let mut template = dev();
    let mut dance = resource(&mut template, "RouteJoinSession").clone();
    dance["Properties"]["RouteKey"] = json!("dance");
    template["Resources"]["RouteDance"] = dance;
    reseal(&mut template);
    let found = assert_findings(&template, &[(FindingKind::RouteUnserved, "RouteDance", "RouteKey")]);
    assert!(found[0].consequence.contains("\"dance\""), "{}", found[0]);
}

#[test]
fn a_removed_route_is_missing_and_leaves_the_stage_stale() {
    let mut template = dev();
    template["Resources"].as_object_mut().expect("resources").remove("RouteJoinSession");
    let found = assert_findings(
        &template,
        &[
            (FindingKind::RouteMissing, "WebSocketApi", "route joinSession"),
            (FindingKind::StageStale, "WebSocketStage", "DeploymentId"),
        ],
    );
    assert!(found[0].consequence.contains("\"joinSession\""), "{}", found[0]);
    assert!(found[1].consequence.contains("AWS_FACTS 12"), "{}", found[1]);
}

#[test]
fn a_route_pointing_at_the_wrong_function() {
    let mut template = dev();
    properties(&mut template, "RouteJoinSession")["Target"] =
        json!({"Fn::Join": ["/", ["integrations", {"Ref": "ConnectionIntegration"}]]});
    reseal(&mut template);
    let found = assert_findings(&template, &[(FindingKind::RouteWrongFunction, "RouteJoinSession", "Target")]);
    assert!(found[0].consequence.contains("`connection` (ConnectionFunction)"), "{}", found[0]);
}

#[test]
fn references_written_in_other_intrinsic_forms_are_understood() {
    let mut template = dev();
    properties(&mut template, "RouteJoinSession")["Target"] = json!({"Fn::Sub": "integrations/${MessagesIntegration}"});
    properties(&mut template, "MessagesIntegration")["IntegrationUri"] = json!({"Fn::Join": ["", [
        "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/",
        {"Fn::GetAtt": "MessagesFunction.Arn"},
        "/invocations"
    ]]});
    properties(&mut template, "MessagesFunction")["Role"] = json!({"Fn::GetAtt": "MessagesRole.Arn"});
    statements(&mut template, "MessagesRole")[3]["Resource"] =
        json!({"Fn::Sub": ["${Table}/index/*", {"Table": {"Fn::GetAtt": ["ConnectionsTable", "Arn"]}}]});
    reseal(&mut template);
    assert_findings(&template, &[]);
}

#[test]
fn a_different_route_selection_expression() {
    let mut template = dev();
    properties(&mut template, "WebSocketApi")["RouteSelectionExpression"] = json!("$request.body.type");
    reseal(&mut template);
    let found = assert_findings(
        &template,
        &[(FindingKind::RouteSelectionExpression, "WebSocketApi", "RouteSelectionExpression")],
    );
    assert!(found[0].consequence.contains("$request.body.type"), "{}", found[0]);
}

#[test]
fn a_removed_index() {
    let mut template = dev();
    remove(properties(&mut template, "ConnectionsTable"), "GlobalSecondaryIndexes");
    let found = assert_findings(&template, &[(FindingKind::TableSchema, "ConnectionsTable", "GlobalSecondaryIndexes")]);
    assert!(found[0].consequence.contains("bySessionAudience"), "{}", found[0]);
    assert!(found[0].consequence.contains("listeners never receive broadcasts"), "{}", found[0]);
}

#[test]
fn a_renamed_key() {
    let mut template = dev();
    properties(&mut template, "SessionsTable")["KeySchema"][0]["AttributeName"] = json!("id");
    let found = assert_findings(&template, &[(FindingKind::TableSchema, "SessionsTable", "KeySchema")]);
    assert!(found[0].consequence.starts_with("is id (HASH) but the store keys items by sessionId (HASH)"));
}

#[test]
fn an_index_keyed_or_projected_differently() {
    let mut template = dev();
    let index = &mut properties(&mut template, "ConnectionsTable")["GlobalSecondaryIndexes"][0];
    index["Projection"]["ProjectionType"] = json!("KEYS_ONLY");
    assert_findings(&template, &[(FindingKind::TableSchema, "ConnectionsTable", "GlobalSecondaryIndexes")]);
    let mut template = dev();
    properties(&mut template, "ConnectionsTable")["GlobalSecondaryIndexes"][0]["KeySchema"][1]["KeyType"] =
        json!("HASH");
    assert_findings(&template, &[(FindingKind::TableSchema, "ConnectionsTable", "GlobalSecondaryIndexes")]);
}

#[test]
fn a_key_attribute_of_another_type_and_a_disabled_ttl() {
    let mut template = dev();
    properties(&mut template, "RateLimitsTable")["AttributeDefinitions"][0]["AttributeType"] = json!("N");
    properties(&mut template, "RateLimitsTable")["TimeToLiveSpecification"]["Enabled"] = json!(false);
    assert_findings(
        &template,
        &[
            (FindingKind::TableSchema, "RateLimitsTable", "AttributeDefinitions.identifier"),
            (FindingKind::TableSchema, "RateLimitsTable", "TimeToLiveSpecification"),
        ],
    );
}

#[test]
fn a_missing_table() {
    let mut template = dev();
    template["Resources"].as_object_mut().expect("resources").remove("SessionsTable");
    let found = findings(&template);
    assert!(summary(&found).contains(&(FindingKind::TableSchema, "SessionsTable", "Type")), "{found:#?}");
}

#[test]
fn a_route_edited_without_a_new_deployment_is_stale() {
    let mut template = dev();
    properties(&mut template, "RouteHeartbeat")["OperationName"] = json!("heartbeat");
    let found = assert_findings(&template, &[(FindingKind::StageStale, "WebSocketStage", "DeploymentId")]);
    assert!(found[0].consequence.contains(&deployment_id(&template)), "{}", found[0]);
    reseal(&mut template);
    assert_findings(&template, &[]);
}

#[test]
fn an_auto_deploying_stage_needs_no_deployment_but_a_stage_needs_one_or_the_other() {
    let mut template = dev();
    let stage = properties(&mut template, "WebSocketStage");
    remove(stage, "DeploymentId");
    assert_findings(&template, &[(FindingKind::StageStale, "WebSocketStage", "DeploymentId")]);
    properties(&mut template, "WebSocketStage")["AutoDeploy"] = json!(true);
    properties(&mut template, "RouteHeartbeat")["OperationName"] = json!("heartbeat");
    assert_findings(&template, &[]);
}

#[test]
fn a_deployment_that_does_not_wait_for_every_route() {
    let mut template = dev();
    let deployment = deployment_id(&template);
    let depends_on = resource(&mut template, &deployment)["DependsOn"].as_array_mut().expect("depends on");
    depends_on.retain(|id| id != "RouteSendAudio");
    let found = assert_findings(&template, &[(FindingKind::StageStale, deployment.as_str(), "DependsOn")]);
    assert!(found[0].consequence.contains("RouteSendAudio"), "{}", found[0]);
}

#[test]
fn an_auto_deploying_http_stage_that_does_not_wait_for_every_route() {
    let mut template = dev();
    let depends_on = resource(&mut template, "HttpStage")["DependsOn"].as_array_mut().expect("depends on");
    depends_on.retain(|id| id != "HttpRoutePOSTSessions");
    let found = assert_findings(&template, &[(FindingKind::StageStale, "HttpStage", "DependsOn")]);
    assert!(found[0].consequence.contains("HttpRoutePOSTSessions"), "{}", found[0]);
    assert!(found[0].consequence.contains("404"), "{}", found[0]);
}

#[test]
fn a_function_api_gateway_may_not_invoke() {
    let mut template = dev();
    template["Resources"].as_object_mut().expect("resources").remove("ConnectionWebSocketPermission");
    let found = assert_findings(
        &template,
        &[(FindingKind::InvokePermissionMissing, "ConnectionFunction", "lambda:InvokeFunction from WebSocketApi")],
    );
    assert!(found[0].consequence.contains("1006"), "{}", found[0]);
}

#[test]
fn an_authorizer_api_gateway_may_not_invoke() {
    let mut template = dev();
    properties(&mut template, "ConnectAuthorizerPermission")["SourceArn"] =
        json!({"Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/*"});
    assert_findings(
        &template,
        &[(FindingKind::InvokePermissionMissing, "AuthorizerFunction", "lambda:InvokeFunction from WebSocketApi")],
    );
}

#[test]
fn a_missing_function() {
    let mut template = dev();
    template["Resources"].as_object_mut().expect("resources").remove("MessagesFunction");
    let found = findings(&template);
    assert!(summary(&found).contains(&(FindingKind::FunctionMissing, "MessagesFunction", "Type")), "{found:#?}");
    // Every route it served now reaches no function; nothing else is reported.
    let others: Vec<&Finding> = found.iter().filter(|finding| finding.kind != FindingKind::FunctionMissing).collect();
    assert_eq!(others.len(), contract::functions::MESSAGES.websocket_routes.len(), "{others:#?}");
    assert!(
        others.iter().all(|finding| finding.kind == FindingKind::RouteWrongFunction && finding.property == "Target")
    );
}

#[test]
fn an_http_route_that_lost_its_jwt_authorizer_or_gained_one() {
    let mut template = dev();
    let route = properties(&mut template, "HttpRoutePOSTSessions");
    route["AuthorizationType"] = json!("NONE");
    remove(route, "AuthorizerId");
    let health = properties(&mut template, "HttpRouteGETHealth");
    health["AuthorizationType"] = json!("JWT");
    health["AuthorizerId"] = json!({"Ref": "HttpJwtAuthorizer"});
    let found = assert_findings(
        &template,
        &[
            (FindingKind::RouteAuthorization, "HttpRouteGETHealth", "AuthorizationType"),
            (FindingKind::RouteAuthorization, "HttpRoutePOSTSessions", "AuthorizationType"),
        ],
    );
    assert!(found[1].consequence.contains("401"), "{}", found[1]);
}

#[test]
fn a_missing_http_route() {
    let mut template = dev();
    template["Resources"].as_object_mut().expect("resources").remove("HttpRouteGETHealth");
    let found = assert_findings(&template, &[(FindingKind::RouteMissing, "HttpApi", "route GET /health")]);
    assert!(found[0].consequence.contains("404"), "{}", found[0]);
}

#[test]
fn cors_that_leaves_out_a_routes_method_or_the_token_header() {
    let mut template = dev();
    let cors = &mut properties(&mut template, "HttpApi")["CorsConfiguration"];
    cors["AllowMethods"] = json!(["GET", "POST", "DELETE"]);
    cors["AllowHeaders"] = json!(["content-type"]);
    let found = assert_findings(
        &template,
        &[
            (FindingKind::CorsRefused, "HttpApi", "CorsConfiguration.AllowHeaders"),
            (FindingKind::CorsRefused, "HttpApi", "CorsConfiguration.AllowHeaders"),
            (FindingKind::CorsRefused, "HttpApi", "CorsConfiguration.AllowHeaders"),
            (FindingKind::CorsRefused, "HttpApi", "CorsConfiguration.AllowMethods"),
        ],
    );
    let texts: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert!(texts.iter().any(|text| text.contains("PATCH is not allowed")), "{texts:#?}");
    assert!(texts.iter().any(|text| text.contains("Authorization is not allowed") && text.contains("POST /sessions")));

    // Wildcards and any letter case allow as much.
    let mut template = dev();
    let cors = &mut properties(&mut template, "HttpApi")["CorsConfiguration"];
    cors["AllowMethods"] = json!(["*"]);
    cors["AllowHeaders"] = json!(["authorization", "CONTENT-TYPE"]);
    assert_findings(&template, &[]);

    // Without a CORS configuration, the API serves no page of another origin: nothing to judge.
    let mut template = dev();
    remove(properties(&mut template, "HttpApi"), "CorsConfiguration");
    assert_findings(&template, &[]);
}

#[test]
fn an_authorized_route_that_catches_preflights_refuses_them_with_401() {
    let mut template = dev();
    let mut catch_all = template["Resources"]["HttpRoutePOSTSessions"].clone();
    catch_all["Properties"]["RouteKey"] = json!("$default");
    template["Resources"]["HttpRouteDefault"] = catch_all;
    let mut depends_on = resource(&mut template, "HttpStage")["DependsOn"].as_array().expect("a list").clone();
    depends_on.push(json!("HttpRouteDefault"));
    resource(&mut template, "HttpStage")["DependsOn"] = json!(depends_on);
    let found = assert_findings(
        &template,
        &[
            (FindingKind::RouteUnserved, "HttpRouteDefault", "RouteKey"),
            (FindingKind::CorsRefused, "HttpRouteDefault", "AuthorizationType"),
        ],
    );
    assert!(found[1].consequence.contains("preflight") && found[1].consequence.contains("401"), "{}", found[1]);

    // An OPTIONS /{proxy+} route without authorization takes the preflights first.
    let mut preflights = template["Resources"]["HttpRouteGETHealth"].clone();
    preflights["Properties"]["RouteKey"] = json!("OPTIONS /{proxy+}");
    template["Resources"]["HttpRouteOptionsProxy"] = preflights;
    depends_on.push(json!("HttpRouteOptionsProxy"));
    resource(&mut template, "HttpStage")["DependsOn"] = json!(depends_on);
    let kinds: Vec<FindingKind> = findings(&template).iter().map(|finding| finding.kind).collect();
    assert!(!kinds.contains(&FindingKind::CorsRefused), "{kinds:?}");
}

#[test]
fn a_function_checking_tokens_against_other_settings_than_the_http_api() {
    let mut template = dev();
    let variables = &mut properties(&mut template, "AuthorizerFunction")["Environment"]["Variables"];
    variables["JWT_ISSUER"] = json!("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Other");
    let audiences = &mut properties(&mut template, "HttpJwtAuthorizer")["JwtConfiguration"]["Audience"];
    audiences.as_array_mut().expect("a list").push(json!("web-console-client"));
    let found = assert_findings(
        &template,
        &[
            (FindingKind::JwtSettingsDiffer, "AuthorizerFunction", "Environment.Variables.JWT_AUDIENCE"),
            (FindingKind::JwtSettingsDiffer, "AuthorizerFunction", "Environment.Variables.JWT_ISSUER"),
            (FindingKind::JwtSettingsDiffer, "ConnectionFunction", "Environment.Variables.JWT_AUDIENCE"),
        ],
    );
    assert!(
        found[0].consequence.contains("web-console-client") && found[0].consequence.contains("1006"),
        "{}",
        found[0]
    );

    // The same audiences in another order, as the list variable holds them, agree.
    let mut template = dev();
    let audiences = &mut properties(&mut template, "HttpJwtAuthorizer")["JwtConfiguration"]["Audience"];
    audiences.as_array_mut().expect("a list").insert(0, json!("web-console-client"));
    let first = stages::dev().jwt.audiences[0].clone();
    for function in ["AuthorizerFunction", "ConnectionFunction"] {
        properties(&mut template, function)["Environment"]["Variables"]["JWT_AUDIENCE"] =
            json!(format!("{first}, web-console-client"));
    }
    assert_findings(&template, &[]);
}

#[test]
fn findings_serialize_for_tools() {
    let mut template = dev();
    properties(&mut template, "ConnectAuthorizer")["IdentitySource"] = json!(["route.request.querystring.token"]);
    let value = serde_json::to_value(&findings(&template)[0]).expect("serializable");
    assert_eq!(value["kind"], "ConnectIdentitySource");
    assert_eq!(value["logical_id"], "ConnectAuthorizer");
}

#[test]
fn empty_and_malformed_templates_give_findings_not_panics() {
    for template in [json!({}), json!({"Resources": 5}), json!(null), json!([1, 2]), json!({"Resources": {"X": 5}})] {
        let found = findings(&template);
        let kinds: Vec<FindingKind> = found.iter().map(|finding| finding.kind).collect();
        assert!(kinds.contains(&FindingKind::ApiMissing), "{template}: {found:#?}");
        assert!(kinds.contains(&FindingKind::FunctionMissing), "{template}: {found:#?}");
        assert!(kinds.contains(&FindingKind::TableSchema), "{template}: {found:#?}");
    }
}

#[test]
fn a_template_with_only_a_table() {
    let table = dev()["Resources"]["SessionsTable"].clone();
    let found = findings(&json!({"Resources": {"SessionsTable": table}}));
    assert!(!found.is_empty());
    assert!(!found.iter().any(|finding| finding.logical_id == "SessionsTable"), "{found:#?}");
    assert!(found.iter().any(|finding| finding.logical_id == "ConnectionsTable"), "{found:#?}");
}

/// Values of the wrong shape, and intrinsics written wrong.
fn garbage() -> Vec<Value> {
    vec![
        json!(null),
        json!(5),
        json!("x"),
        json!([]),
        json!({}),
        json!([null, 3, {"Ref": 7}]),
        json!({"Ref": 5}),
        json!({"Fn::GetAtt": [5]}),
        json!({"Fn::GetAtt": "NoDot"}),
        json!({"Fn::Sub": [1, 2]}),
        json!({"Fn::Sub": "${unclosed"}),
        json!({"Fn::Join": 3}),
        json!({"Fn::Join": ["/", [{"Fn::If": []}]]}),
        json!({"Ref": "WebSocketApi", "extra": true}),
    ]
}

/// Replaces the value at `path` with each garbage value in turn, verifying each time, and
/// puts the original back; answers whether every replacement produced a finding.
fn each_garbage(template: &mut Value, path: &[&str], garbage: &[Value]) -> bool {
    let original = template.pointer(&format!("/{}", path.join("/"))).cloned();
    let mut noticed = true;
    for value in garbage {
        let mut slot = &mut *template;
        for key in path {
            slot = &mut slot[*key];
        }
        *slot = value.clone();
        noticed &= !findings(template).is_empty();
    }
    let mut slot = &mut *template;
    for key in path {
        slot = &mut slot[*key];
    }
    *slot = original.unwrap_or(Value::Null);
    noticed
}

#[test]
fn garbage_anywhere_never_panics() {
    let garbage = garbage();
    let shapes = &garbage[..5];
    let mut unnoticed = std::collections::BTreeSet::new();
    for (stage, every_property) in [(stages::dev(), true), (stages::without_authorizer(stages::dev()), false)] {
        let mut template = synthesized(&stage);
        let ids: Vec<String> = template["Resources"].as_object().expect("resources").keys().cloned().collect();
        for id in &ids {
            each_garbage(&mut template, &["Resources", id], shapes);
            each_garbage(&mut template, &["Resources", id, "Type"], shapes);
            if !each_garbage(&mut template, &["Resources", id, "Properties"], shapes) {
                unnoticed.insert(id.clone());
            }
            let keys: Vec<String> = template["Resources"][id]["Properties"]
                .as_object()
                .filter(|_| every_property)
                .map(|map| map.keys().cloned().collect())
                .unwrap_or_default();
            for key in keys {
                each_garbage(&mut template, &["Resources", id, "Properties", &key], &garbage);
            }
        }
        assert_eq!(template, synthesized(&stage), "the test puts every value back");
    }
    // What the contract says nothing about: log groups, the stream's settings, and the role of
    // a function that calls nothing.
    let expected = ["AudioStream", "AuthorizerLogs", "AuthorizerRole", "ConnectionLogs", "HttpLogs", "MessagesLogs"];
    assert_eq!(unnoticed.iter().map(String::as_str).collect::<Vec<_>>(), expected);
}

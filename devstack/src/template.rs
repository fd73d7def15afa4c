//! What the local stack reads from a synthesized template, and nothing else: the WebSocket API
//! (route selection expression, stage, routes, the `$connect` authorizer and its identity
//! sources), the HTTP API (routes, their JWT authorizer, CORS), the functions (code, environment,
//! timeout, memory), the tables and the streams.
//!
//! The local stack has no route or authorization knowledge of its own: a route, authorizer or
//! identity source edited in the template changes what the local gateway does.

use crate::cors::Cors;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use stacks::template::{self, Resources, prop};
use std::collections::BTreeMap;

const API: &str = "AWS::ApiGatewayV2::Api";
const ROUTE: &str = "AWS::ApiGatewayV2::Route";
const INTEGRATION: &str = "AWS::ApiGatewayV2::Integration";
const AUTHORIZER: &str = "AWS::ApiGatewayV2::Authorizer";
const STAGE: &str = "AWS::ApiGatewayV2::Stage";
const LAMBDA: &str = "AWS::Lambda::Function";
const TABLE: &str = "AWS::DynamoDB::Table";
const STREAM: &str = "AWS::Kinesis::Stream";

/// The parts of a template the local stack serves.
#[derive(Debug, Clone)]
pub struct ServiceTemplate {
    pub websocket: WebSocketApi,
    pub http: Option<HttpApi>,
    /// By logical id.
    pub functions: BTreeMap<String, FunctionSpec>,
    /// Table logical ids and their `Properties`.
    pub tables: Vec<(String, Value)>,
    /// Stream logical ids.
    pub streams: Vec<String>,
}

/// The WebSocket API.
#[derive(Debug, Clone)]
pub struct WebSocketApi {
    pub logical_id: String,
    pub stage: String,
    pub route_selection: SelectionExpression,
    /// Route key → the logical id of the function its integration invokes.
    pub routes: BTreeMap<String, String>,
    /// The authorizer attached to `$connect`, if any.
    pub connect_authorizer: Option<RequestAuthorizer>,
}

/// A route selection expression, `$request.body.<path>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectionExpression {
    /// The JSON path under the body, split at dots.
    pub body_path: Vec<String>,
}

impl SelectionExpression {
    /// Parses `$request.body.action` (the only form API Gateway evaluates against a message).
    pub fn parse(text: &str) -> Result<SelectionExpression> {
        let Some(path) = text.strip_prefix("$request.body.") else {
            bail!("route selection expression {text:?} is not of the form $request.body.<field>");
        };
        if path.is_empty() || path.split('.').any(str::is_empty) {
            bail!("route selection expression {text:?} has an empty field name");
        }
        Ok(SelectionExpression { body_path: path.split('.').map(str::to_owned).collect() })
    }

    /// The value a message selects: the string at the path of its JSON body, if any.
    pub fn select(&self, body: &str) -> Option<String> {
        let mut value: Value = serde_json::from_str(body).ok()?;
        for segment in &self.body_path {
            value = value.get_mut(segment)?.take();
        }
        match value {
            Value::String(text) => Some(text),
            Value::Number(number) => Some(number.to_string()),
            Value::Bool(flag) => Some(flag.to_string()),
            _ => None,
        }
    }
}

/// A Lambda REQUEST authorizer.
#[derive(Debug, Clone)]
pub struct RequestAuthorizer {
    pub logical_id: String,
    /// The logical id of the function it invokes.
    pub function: String,
    pub identity_sources: Vec<IdentitySource>,
}

/// Where an identity source is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    /// `route.request.header.<name>` (case-insensitive).
    Header(String),
    /// `route.request.querystring.<name>`.
    QueryString(String),
}

impl IdentitySource {
    fn parse(text: &str) -> Result<IdentitySource> {
        if let Some(name) = text.strip_prefix("route.request.header.") {
            return Ok(IdentitySource::Header(name.to_owned()));
        }
        if let Some(name) = text.strip_prefix("route.request.querystring.") {
            return Ok(IdentitySource::QueryString(name.to_owned()));
        }
        bail!(
            "identity source {text:?} is not supported locally (route.request.header.* or route.request.querystring.*)"
        )
    }
}

/// The HTTP API.
#[derive(Debug, Clone)]
pub struct HttpApi {
    pub logical_id: String,
    pub routes: Vec<HttpRoute>,
    /// Its `CorsConfiguration`, if it has one.
    pub cors: Option<Cors>,
}

/// One route of the HTTP API.
#[derive(Debug, Clone)]
pub struct HttpRoute {
    /// `GET /sessions/{id}`, `ANY /x`, or `$default`.
    pub key: String,
    pub function: String,
    /// The integration's payload format (`2.0` or `1.0`).
    pub payload_format: String,
    pub authorization: HttpAuthorization,
}

/// How a route of the HTTP API is authorized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpAuthorization {
    None,
    Jwt { issuer: String, audience: Vec<String>, identity_sources: Vec<String> },
}

/// A function: which binary runs it and with what.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub logical_id: String,
    /// The value of `Code.S3Key`, as written (a parameter reference, resolved by the caller).
    pub code_key: Value,
    /// Variables as written in the template (references unresolved).
    pub environment: BTreeMap<String, Value>,
    pub timeout_seconds: u64,
    pub memory_mb: u32,
}

impl ServiceTemplate {
    /// Reads a synthesized template; the error names what is missing or not understood.
    pub fn read(template: &Value) -> Result<ServiceTemplate> {
        let resources = Resources::of(template);
        let functions =
            resources.of_type(LAMBDA).map(|(id, properties)| (id.to_owned(), function_spec(id, properties))).collect();
        Ok(ServiceTemplate {
            websocket: websocket_api(&resources)?,
            http: http_api(&resources)?,
            functions,
            tables: resources.of_type(TABLE).map(|(id, properties)| (id.to_owned(), properties.clone())).collect(),
            streams: resources.of_type(STREAM).map(|(id, _)| id.to_owned()).collect(),
        })
    }

    /// A function by logical id.
    pub fn function(&self, logical_id: &str) -> Result<&FunctionSpec> {
        self.functions.get(logical_id).with_context(|| format!("the template has no function {logical_id}"))
    }
}

fn apis<'a>(resources: &Resources<'a>, protocol: &str) -> Vec<&'a str> {
    resources
        .of_type(API)
        .filter(|(_, properties)| prop(properties, "ProtocolType").as_str() == Some(protocol))
        .map(|(id, _)| id)
        .collect()
}

fn of_api<'a>(resources: &Resources<'a>, kind: &'a str, api: &str) -> Vec<(&'a str, &'a Value)> {
    resources.of_type(kind).filter(|(_, properties)| template::refers_to(prop(properties, "ApiId"), api)).collect()
}

/// The function an integration's (or authorizer's) URI invokes.
fn invoked_function(resources: &Resources<'_>, owner: &str, uri: &Value) -> Result<String> {
    resources.referenced(Some(uri), LAMBDA).map(str::to_owned).with_context(|| format!("{owner} invokes no function"))
}

fn route_function(resources: &Resources<'_>, route: &str, properties: &Value) -> Result<(String, String)> {
    let integration = resources
        .referenced(Some(prop(properties, "Target")), INTEGRATION)
        .with_context(|| format!("route {route} has no integration target"))?;
    let integration_properties = resources.properties(integration);
    let function = invoked_function(resources, integration, prop(integration_properties, "IntegrationUri"))?;
    let format = template::render(prop(integration_properties, "PayloadFormatVersion")).unwrap_or_else(|| "1.0".into());
    Ok((function, format))
}

fn websocket_api(resources: &Resources<'_>) -> Result<WebSocketApi> {
    let apis = apis(resources, "WEBSOCKET");
    let [api] = apis.as_slice() else {
        bail!("the template must have exactly one WebSocket API (it has {})", apis.len());
    };
    let properties = resources.properties(api);
    let expression = prop(properties, "RouteSelectionExpression")
        .as_str()
        .with_context(|| format!("{api} has no RouteSelectionExpression"))?;
    let stages = of_api(resources, STAGE, api);
    let [(stage_id, stage)] = stages.as_slice() else {
        bail!("{api} must have exactly one stage (it has {})", stages.len());
    };
    let stage = prop(stage, "StageName").as_str().with_context(|| format!("{stage_id} has no StageName"))?;
    let mut routes = BTreeMap::new();
    let mut connect_authorizer = None;
    for (id, route) in of_api(resources, ROUTE, api) {
        let key = prop(route, "RouteKey").as_str().with_context(|| format!("{id} has no RouteKey"))?;
        routes.insert(key.to_owned(), route_function(resources, id, route)?.0);
        match prop(route, "AuthorizationType").as_str().unwrap_or("NONE") {
            "NONE" => {}
            "CUSTOM" if key == contract::CONNECT_ROUTE => {
                connect_authorizer = Some(request_authorizer(resources, id, route)?);
            }
            "CUSTOM" => bail!("{id}: API Gateway only attaches authorizers to $connect"),
            other => bail!("{id}: authorization type {other} is not supported locally (NONE or CUSTOM)"),
        }
    }
    Ok(WebSocketApi {
        logical_id: (*api).to_owned(),
        stage: stage.to_owned(),
        route_selection: SelectionExpression::parse(expression)?,
        routes,
        connect_authorizer,
    })
}

fn request_authorizer(resources: &Resources<'_>, route: &str, properties: &Value) -> Result<RequestAuthorizer> {
    let authorizer = resources
        .referenced(Some(prop(properties, "AuthorizerId")), AUTHORIZER)
        .with_context(|| format!("{route} is CUSTOM but names no authorizer"))?;
    let authorizer_properties = resources.properties(authorizer);
    if prop(authorizer_properties, "AuthorizerType").as_str() != Some("REQUEST") {
        bail!("{authorizer}: only REQUEST authorizers exist for WebSocket APIs");
    }
    let identity_sources = template::strings(prop(authorizer_properties, "IdentitySource"))
        .iter()
        .filter(|source| !source.is_empty())
        .map(|source| IdentitySource::parse(source))
        .collect::<Result<_>>()?;
    Ok(RequestAuthorizer {
        logical_id: authorizer.to_owned(),
        function: invoked_function(resources, authorizer, prop(authorizer_properties, "AuthorizerUri"))?,
        identity_sources,
    })
}

fn http_api(resources: &Resources<'_>) -> Result<Option<HttpApi>> {
    let apis = apis(resources, "HTTP");
    let api = match apis.as_slice() {
        [] => return Ok(None),
        [api] => *api,
        _ => bail!("the template has {} HTTP APIs; the local stack serves one", apis.len()),
    };
    let mut routes = Vec::new();
    for (id, route) in of_api(resources, ROUTE, api) {
        let key = prop(route, "RouteKey").as_str().with_context(|| format!("{id} has no RouteKey"))?;
        let (function, payload_format) = route_function(resources, id, route)?;
        let authorization = match prop(route, "AuthorizationType").as_str().unwrap_or("NONE") {
            "NONE" => HttpAuthorization::None,
            "JWT" => jwt_authorizer(resources, id, route)?,
            other => bail!("{id}: authorization type {other} is not supported locally"),
        };
        routes.push(HttpRoute { key: key.to_owned(), function, payload_format, authorization });
    }
    let cors = Cors::of_api(resources.properties(api));
    Ok(Some(HttpApi { logical_id: api.to_owned(), routes, cors }))
}

fn jwt_authorizer(resources: &Resources<'_>, route: &str, properties: &Value) -> Result<HttpAuthorization> {
    let authorizer = resources
        .referenced(Some(prop(properties, "AuthorizerId")), AUTHORIZER)
        .with_context(|| format!("{route} is JWT but names no authorizer"))?;
    let authorizer_properties = resources.properties(authorizer);
    let configuration = prop(authorizer_properties, "JwtConfiguration");
    Ok(HttpAuthorization::Jwt {
        issuer: template::render(prop(configuration, "Issuer"))
            .with_context(|| format!("{authorizer} has no JwtConfiguration.Issuer"))?,
        audience: template::strings(prop(configuration, "Audience")),
        identity_sources: template::strings(prop(authorizer_properties, "IdentitySource")),
    })
}

fn function_spec(id: &str, properties: &Value) -> FunctionSpec {
    let environment = prop(prop(properties, "Environment"), "Variables")
        .as_object()
        .map(|variables| variables.iter().map(|(name, value)| (name.clone(), value.clone())).collect())
        .unwrap_or_default();
    FunctionSpec {
        logical_id: id.to_owned(),
        code_key: prop(prop(properties, "Code"), "S3Key").clone(),
        environment,
        // Lambda's defaults when the template says nothing.
        timeout_seconds: prop(properties, "Timeout").as_u64().unwrap_or(3),
        memory_mb: prop(properties, "MemorySize").as_u64().and_then(|mb| u32::try_from(mb).ok()).unwrap_or(128),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> ServiceTemplate {
        let template = stacks::synthesize(&contract::CONTRACT, &stacks::stages::dev()).expect("dev synthesizes");
        ServiceTemplate::read(&template.to_value()).expect("dev is readable")
    }

    #[test]
    fn the_dev_template_reads_as_the_contract_declares() {
        let service = dev();
        assert_eq!(service.websocket.stage, "dev");
        assert_eq!(service.websocket.route_selection.body_path, ["action"]);
        assert_eq!(service.websocket.routes.get("$connect").map(String::as_str), Some("ConnectionFunction"));
        assert_eq!(service.websocket.routes.get("switchLanguage").map(String::as_str), Some("MessagesFunction"));
        let authorizer = service.websocket.connect_authorizer.as_ref().expect("dev has a $connect authorizer");
        assert_eq!(authorizer.function, "AuthorizerFunction");
        assert!(authorizer.identity_sources.is_empty(), "listeners must reach the authorizer without a token");
        let http = service.http.as_ref().expect("dev has an HTTP API");
        let post = http.routes.iter().find(|route| route.key == "POST /sessions").expect("POST /sessions");
        let audiences = stacks::stages::dev().jwt.audiences;
        assert!(matches!(&post.authorization, HttpAuthorization::Jwt { audience, .. } if audience == &audiences));
        assert_eq!(post.payload_format, "2.0");
        let cors = http.cors.as_ref().expect("dev's HTTP API has CORS");
        assert_eq!(cors.allow_origins, stacks::stages::dev().cors.allowed_origins);
        assert_eq!(service.tables.len(), 3);
        assert_eq!(service.streams, ["AudioStream"]);
        assert_eq!(service.function("MessagesFunction").map(|f| f.timeout_seconds).ok(), Some(10));
    }

    #[test]
    fn an_authorization_the_local_stack_cannot_enforce_is_refused_not_ignored() {
        let mut template =
            stacks::synthesize(&contract::CONTRACT, &stacks::stages::dev()).expect("dev synthesizes").to_value();
        template["Resources"]["RouteConnect"]["Properties"]["AuthorizationType"] = serde_json::json!("AWS_IAM");
        let error = ServiceTemplate::read(&template).expect_err("AWS_IAM cannot be enforced locally");
        assert!(error.to_string().contains("AWS_IAM"), "{error}");
    }

    #[test]
    fn selection_reads_the_body_path_and_nothing_else() {
        let expression = SelectionExpression::parse("$request.body.action").expect("valid");
        assert_eq!(expression.select(r#"{"action":"heartbeat"}"#).as_deref(), Some("heartbeat"));
        assert_eq!(expression.select(r#"{"action":{"nested":1}}"#), None);
        assert_eq!(expression.select("not json"), None);
        assert_eq!(expression.select(r#"{"other":"x"}"#), None);
        let nested = SelectionExpression::parse("$request.body.meta.kind").expect("valid");
        assert_eq!(nested.select(r#"{"meta":{"kind":"a"}}"#).as_deref(), Some("a"));
        assert!(SelectionExpression::parse("$request.header.x").is_err());
        assert!(SelectionExpression::parse("$request.body.").is_err());
    }

    #[test]
    fn identity_sources_are_headers_or_query_strings() {
        assert_eq!(
            IdentitySource::parse("route.request.header.Authorization").ok(),
            Some(IdentitySource::Header("Authorization".into()))
        );
        assert_eq!(
            IdentitySource::parse("route.request.querystring.token").ok(),
            Some(IdentitySource::QueryString("token".into()))
        );
        assert!(IdentitySource::parse("context.requestId").is_err());
    }
}

//! What a WebSocket API serves, in the one form both its template and the live API Gateway
//! API can give: each route's key and authorization, its authorizer, and the function its
//! integration invokes.
//!
//! A stage serves a *deployment*, a snapshot of the routes taken when it was made (AWS_FACTS
//! 12); routes edited afterwards (in the console, by a half-applied release) are visible in
//! the API but not served. To tell the two apart, the synthesizer writes the [`fingerprint`] of
//! the routes the deployment snapshots into its `Description` ([`description`]), and
//! `cargo xtask doctor` recomputes the fingerprint from the live routes, integrations and
//! authorizer and compares it with the one the stage's deployment carries ([`read_description`]).
//!
//! Functions are named by their logical id (`ConnectionFunction`) on both sides: the template
//! refers to them, and the live side maps each invoked function's name back through the
//! stack's resources. A function outside the stack keeps its name or ARN, and so changes the
//! fingerprint.

use crate::verify::template::{self, Resources};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// One route as the stage would serve it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServedRoute {
    pub key: String,
    /// `NONE`, `CUSTOM`, `AWS_IAM`.
    pub authorization_type: String,
    pub authorizer: Option<ServedAuthorizer>,
    /// The function the route's integration invokes; `None` without an integration.
    pub function: Option<String>,
}

/// A route's authorizer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServedAuthorizer {
    /// `REQUEST`, `JWT`...
    pub kind: String,
    /// Sorted.
    pub identity_source: Vec<String>,
    pub function: Option<String>,
}

/// What the deployment's description says before the fingerprint.
const MARK: &str = "served routes ";

/// A short hash of `routes`, independent of their order.
pub fn fingerprint(routes: &[ServedRoute]) -> String {
    let mut lines: Vec<String> = routes.iter().map(canonical).collect();
    lines.sort();
    let mut hasher = Sha256::new();
    for line in lines {
        hasher.update(line.as_bytes());
        hasher.update(b"\n");
    }
    hasher.finalize().iter().take(5).map(|byte| format!("{byte:02x}")).collect()
}

fn canonical(route: &ServedRoute) -> String {
    let authorizer = route
        .authorizer
        .as_ref()
        .map(|authorizer| {
            let mut sources = authorizer.identity_source.clone();
            sources.sort();
            format!("{} [{}] {}", authorizer.kind, sources.join(","), authorizer.function.as_deref().unwrap_or("-"))
        })
        .unwrap_or_else(|| "-".to_owned());
    format!(
        "{} | {} | {} | {}",
        route.key,
        route.authorization_type,
        authorizer,
        route.function.as_deref().unwrap_or("-")
    )
}

/// The deployment's description: the fingerprint of its resources' definitions (`settings`,
/// the one its logical id ends with) and that of the routes it serves.
pub fn description(settings: &str, routes: &str) -> String {
    format!("API settings, routes, integrations and authorizer {settings}; {MARK}{routes}")
}

/// The served-routes fingerprint a deployment's description carries, if it was written by
/// [`description`].
pub fn read_description(description: &str) -> Option<&str> {
    let (_, fingerprint) = description.rsplit_once(MARK)?;
    let fingerprint = fingerprint.trim();
    (fingerprint.len() == 10 && fingerprint.bytes().all(|byte| byte.is_ascii_hexdigit())).then_some(fingerprint)
}

/// The routes of the WebSocket API `api` (a logical id) in `template`.
pub fn of_template(template: &Value, api: &str) -> Vec<ServedRoute> {
    let resources = Resources::of(template);
    let of_api = |properties: &Value| template::refers_to(template::prop(properties, "ApiId"), api);
    resources
        .of_type("AWS::ApiGatewayV2::Route")
        .filter(|(_, properties)| of_api(properties))
        .map(|(_, properties)| {
            let text = |name: &str| template::prop(properties, name).as_str().unwrap_or_default().to_owned();
            let authorization_type = text("AuthorizationType");
            let authorizer = resources
                .referenced(Some(template::prop(properties, "AuthorizerId")), "AWS::ApiGatewayV2::Authorizer")
                .map(|id| resources.properties(id))
                .map(|authorizer| ServedAuthorizer {
                    kind: template::prop(authorizer, "AuthorizerType").as_str().unwrap_or_default().to_owned(),
                    identity_source: template::strings(template::prop(authorizer, "IdentitySource")),
                    function: invoked_function(&resources, template::prop(authorizer, "AuthorizerUri")),
                });
            let function = resources
                .referenced(Some(template::prop(properties, "Target")), "AWS::ApiGatewayV2::Integration")
                .and_then(|id| {
                    invoked_function(&resources, template::prop(resources.properties(id), "IntegrationUri"))
                });
            ServedRoute {
                key: text("RouteKey"),
                authorization_type: if authorization_type.is_empty() { "NONE".to_owned() } else { authorization_type },
                authorizer,
                function,
            }
        })
        .collect()
}

/// The Lambda function (logical id) an integration or authorizer URI invokes.
fn invoked_function(resources: &Resources<'_>, uri: &Value) -> Option<String> {
    resources.referenced(Some(uri), "AWS::Lambda::Function").map(str::to_owned)
}

/// The function name an integration or authorizer URI invokes
/// (`arn:aws:apigateway:R:lambda:path/2015-03-31/functions/arn:aws:lambda:R:A:function:NAME[:QUALIFIER]/invocations`),
/// or a plain Lambda ARN's (an HTTP API's integration URI).
pub fn function_name_of_uri(uri: &str) -> Option<&str> {
    let arn = match uri.split_once("/functions/") {
        Some((_, rest)) => rest.strip_suffix("/invocations").unwrap_or(rest),
        None => uri,
    };
    let (_, name) = arn.split_once(":function:")?;
    let name = name.split(':').next().unwrap_or(name);
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming;

    fn dev_template() -> Value {
        crate::synthesize(&contract::CONTRACT, &crate::stages::dev()).expect("dev synthesizes").to_value()
    }

    #[test]
    fn the_template_gives_every_route_with_its_function_and_authorizer() {
        let routes = of_template(&dev_template(), naming::WEBSOCKET_API);
        let routed: usize = contract::CONTRACT.functions.iter().map(|function| function.websocket_routes.len()).sum();
        assert_eq!(routes.len(), routed);
        let connect = routes.iter().find(|route| route.key == contract::CONNECT_ROUTE).expect("$connect");
        assert_eq!(connect.authorization_type, "CUSTOM");
        assert_eq!(connect.function.as_deref(), Some("ConnectionFunction"));
        let authorizer = connect.authorizer.as_ref().expect("an authorizer on dev");
        assert_eq!(authorizer.kind, "REQUEST");
        assert!(authorizer.identity_source.is_empty());
        assert_eq!(authorizer.function.as_deref(), Some("AuthorizerFunction"));
        let heartbeat = routes.iter().find(|route| route.key == "heartbeat").expect("heartbeat");
        assert_eq!((heartbeat.authorization_type.as_str(), heartbeat.authorizer.is_none()), ("NONE", true));
    }

    #[test]
    fn the_fingerprint_ignores_order_and_sees_every_field() {
        let routes = of_template(&dev_template(), naming::WEBSOCKET_API);
        let mut reversed = routes.clone();
        reversed.reverse();
        assert_eq!(fingerprint(&routes), fingerprint(&reversed));
        let changed = |change: &dyn Fn(&mut Vec<ServedRoute>)| {
            let mut copy = routes.clone();
            change(&mut copy);
            fingerprint(&copy)
        };
        let original = fingerprint(&routes);
        assert_ne!(original, changed(&|routes| routes.retain(|route| route.key != "heartbeat")));
        assert_ne!(original, changed(&|routes| routes[0].function = Some("OtherFunction".into())));
        assert_ne!(original, changed(&|routes| routes[0].authorization_type = "AWS_IAM".into()));
        let incident = |routes: &mut Vec<ServedRoute>| {
            for authorizer in routes.iter_mut().filter_map(|route| route.authorizer.as_mut()) {
                authorizer.identity_source = vec!["route.request.querystring.token".into()];
            }
        };
        assert_ne!(original, changed(&incident));
    }

    #[test]
    fn the_deployment_description_carries_the_served_fingerprint() {
        let template = dev_template();
        let resources = &template["Resources"];
        let deployment = resources
            .as_object()
            .and_then(|map| map.keys().find(|id| id.starts_with(naming::WEBSOCKET_DEPLOYMENT_PREFIX)))
            .expect("a deployment");
        let text = resources[deployment]["Properties"]["Description"].as_str().expect("a description");
        assert_eq!(read_description(text), Some(fingerprint(&of_template(&template, naming::WEBSOCKET_API)).as_str()));
        assert_eq!(read_description("Deployed by hand"), None);
        assert_eq!(read_description("served routes nothex!!!!"), None);
    }

    #[test]
    fn a_uri_names_its_function() {
        let uri = "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:stack-ConnectionFunction-AB12/invocations";
        assert_eq!(function_name_of_uri(uri), Some("stack-ConnectionFunction-AB12"));
        let qualified = "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:1:function:f:live/invocations";
        assert_eq!(function_name_of_uri(qualified), Some("f"));
        assert_eq!(function_name_of_uri("arn:aws:lambda:eu-west-1:1:function:http"), Some("http"));
        assert_eq!(function_name_of_uri("https://example.com"), None);
    }
}

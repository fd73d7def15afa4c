//! Check group `websocket`: the **live** WebSocket API, read through the API Gateway v2 API,
//! not the template (a console edit or a failed deployment shows here and nowhere else).
//!
//! The API is found by its physical id (`ListStackResources`, logical id `WebSocketApi`),
//! else by the name the synthesized template gives it (the local AWS endpoint does not create
//! API Gateway v2 resources from CloudFormation). Then:
//!
//! - every route key the contract serves has a live route with an integration that exists;
//! - `$connect`'s authorization and its authorizer (reached through the route's `AuthorizerId`
//!   with `GetAuthorizer`) are judged by the contract verifier itself: the live values are laid
//!   over the synthesized template ([`overlay`]) and [`stacks::verify()`] runs on the result, so
//!   "no identity source, REQUEST, an authorizer exactly when `CONNECT_AUTH` says so" is
//!   decided in one place. Only the findings the live values add are reported;
//! - every route's integration and the authorizer invoke **this stack's** functions (the
//!   invoked function's name, from the integration URI, against the stack's physical ids);
//! - the stage serves a deployment of the live routes: the deployment's description carries
//!   the fingerprint of the routes it snapshots ([`stacks::served_routes`]), recomputed here
//!   from the live routes, integrations and authorizer. A mismatch means a live edit was not
//!   deployed, or the stage serves an older deployment than the routes you see.

use super::{Check, live};
use anyhow::{Context, Result};
use contract::CONNECT_ROUTE;
use serde_json::{Value, json};
use stacks::served_routes::{self, ServedAuthorizer, ServedRoute};
use stacks::{FindingKind, StageConfig, naming};
use std::collections::BTreeMap;

pub(super) const GROUP: &str = "websocket";

/// The live WebSocket API, as far as these checks read it.
#[derive(Debug, Clone, Default)]
pub(crate) struct LiveApi {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) routes: Vec<LiveRoute>,
    /// Integration id → integration URI.
    pub(super) integrations: BTreeMap<String, String>,
    /// The authorizer `$connect` names, if it names one.
    pub(super) connect_authorizer: Option<LiveAuthorizer>,
    /// The stage the contract's clients connect to; `None` when it does not exist.
    pub(super) stage: Option<LiveStage>,
}

/// The live stage of the API.
#[derive(Debug, Clone, Default)]
pub(super) struct LiveStage {
    pub(super) auto_deploy: bool,
    pub(super) deployment_id: Option<String>,
    pub(super) deployment: Deployment,
}

/// What could be read of the deployment the stage serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) enum Deployment {
    /// Its description.
    Described(String),
    /// The stage serves none.
    #[default]
    None,
    /// The endpoint does not serve the deployments API (a local endpoint): not judged.
    Unsupported,
}

/// One live route.
#[derive(Debug, Clone, Default)]
pub(super) struct LiveRoute {
    pub(super) key: String,
    pub(super) authorization_type: String,
    pub(super) authorizer_id: Option<String>,
    /// `integrations/<id>`, when the route has a target.
    pub(super) target: Option<String>,
}

/// One live authorizer.
#[derive(Debug, Clone, Default)]
pub(super) struct LiveAuthorizer {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) kind: String,
    pub(super) identity_source: Vec<String>,
    pub(super) uri: String,
}

pub(super) fn sdk_error<E: std::error::Error + Send + Sync + 'static>(error: E) -> anyhow::Error {
    anyhow::anyhow!("{}", aws_sdk_apigatewayv2::error::DisplayErrorContext(error))
}

/// The name the synthesized template gives the WebSocket API.
pub(super) fn template_name(synthesized: &Value) -> Option<&str> {
    synthesized["Resources"][naming::WEBSOCKET_API]["Properties"]["Name"].as_str()
}

/// Reads the live WebSocket API and its stage `stage`; `None` when there is no API to find.
pub(super) async fn read(
    client: &aws_sdk_apigatewayv2::Client,
    synthesized: &Value,
    physical: &BTreeMap<String, String>,
    stage: &str,
) -> Result<Option<LiveApi>> {
    let name = template_name(synthesized).unwrap_or_default().to_owned();
    let id = match physical.get(naming::WEBSOCKET_API) {
        Some(id) => Some(id.clone()),
        None => find_by_name(client, &name).await?,
    };
    let Some(id) = id else {
        return Ok(None);
    };
    let api = client.get_api().api_id(&id).send().await.map_err(sdk_error).context("reading the WebSocket API")?;
    let mut live = LiveApi { id: id.clone(), name: api.name.unwrap_or(name), ..LiveApi::default() };

    (live.routes, live.integrations) = routes_and_integrations(client, &id, "WebSocket API").await?;

    let authorizer_id =
        live.routes.iter().find(|route| route.key == CONNECT_ROUTE).and_then(|route| route.authorizer_id.clone());
    if let Some(authorizer_id) = authorizer_id {
        let authorizer = client
            .get_authorizer()
            .api_id(&id)
            .authorizer_id(&authorizer_id)
            .send()
            .await
            .map_err(sdk_error)
            .with_context(|| format!("reading the $connect authorizer {authorizer_id}"))?;
        live.connect_authorizer = Some(LiveAuthorizer {
            id: authorizer_id,
            name: authorizer.name.unwrap_or_default(),
            kind: authorizer.authorizer_type.map(|kind| kind.as_str().to_owned()).unwrap_or_default(),
            identity_source: authorizer.identity_source.unwrap_or_default(),
            uri: authorizer.authorizer_uri.unwrap_or_default(),
        });
    }
    live.stage = read_stage(client, &id, stage).await?;
    Ok(Some(live))
}

/// Every route and integration (id → URI) of the API `api` (`what` names it in errors).
pub(super) async fn routes_and_integrations(
    client: &aws_sdk_apigatewayv2::Client,
    api: &str,
    what: &str,
) -> Result<(Vec<LiveRoute>, BTreeMap<String, String>)> {
    let routes = live::all_pages(|token| async move {
        let page = client
            .get_routes()
            .api_id(api)
            .set_next_token(token)
            .send()
            .await
            .map_err(sdk_error)
            .with_context(|| format!("listing the {what}'s routes"))?;
        Ok((page.items.unwrap_or_default(), page.next_token))
    })
    .await?;
    let integrations = live::all_pages(|token| async move {
        let page = client
            .get_integrations()
            .api_id(api)
            .set_next_token(token)
            .send()
            .await
            .map_err(sdk_error)
            .with_context(|| format!("listing the {what}'s integrations"))?;
        Ok((page.items.unwrap_or_default(), page.next_token))
    })
    .await?;
    let routes = routes
        .into_iter()
        .map(|route| LiveRoute {
            key: route.route_key.unwrap_or_default(),
            authorization_type: route.authorization_type.map(|kind| kind.as_str().to_owned()).unwrap_or_default(),
            authorizer_id: route.authorizer_id,
            target: route.target,
        })
        .collect();
    let integrations = integrations
        .into_iter()
        .filter_map(|integration| Some((integration.integration_id?, integration.integration_uri.unwrap_or_default())))
        .collect();
    Ok((routes, integrations))
}

/// Whether `error` says the endpoint does not serve the operation at all: a 404 that carries
/// no error code (AWS answers a missing object with `NotFoundException`).
fn unsupported<E: aws_sdk_apigatewayv2::error::ProvideErrorMetadata>(
    error: &aws_sdk_apigatewayv2::error::SdkError<E, aws_sdk_apigatewayv2::config::http::HttpResponse>,
) -> bool {
    let status = error.raw_response().map(|response| response.status().as_u16());
    status == Some(404) && error.as_service_error().is_some_and(|service| service.code().is_none())
}

/// Reads the stage and the description of the deployment it serves.
async fn read_stage(client: &aws_sdk_apigatewayv2::Client, api: &str, name: &str) -> Result<Option<LiveStage>> {
    let stage = match client.get_stage().api_id(api).stage_name(name).send().await {
        Ok(stage) => stage,
        Err(error) if error.as_service_error().is_some_and(|e| e.is_not_found_exception()) => return Ok(None),
        Err(error) => return Err(sdk_error(error)).with_context(|| format!("reading the stage {name}")),
    };
    let mut live = LiveStage {
        auto_deploy: stage.auto_deploy.unwrap_or(false),
        deployment_id: stage.deployment_id.clone(),
        deployment: Deployment::None,
    };
    live.deployment = match &stage.deployment_id {
        Some(deployment) => match client.get_deployment().api_id(api).deployment_id(deployment).send().await {
            Ok(found) => Deployment::Described(found.description.unwrap_or_default()),
            Err(error) if unsupported(&error) => Deployment::Unsupported,
            Err(error) => {
                return Err(sdk_error(error)).with_context(|| format!("reading the deployment {deployment}"));
            }
        },
        None => match client.get_deployments().api_id(api).send().await {
            Err(error) if unsupported(&error) => Deployment::Unsupported,
            _ => Deployment::None,
        },
    };
    Ok(Some(live))
}

/// The id of the API named `name`, if there is one.
pub(super) async fn find_by_name(client: &aws_sdk_apigatewayv2::Client, name: &str) -> Result<Option<String>> {
    let mut token = None;
    loop {
        let page =
            client.get_apis().set_next_token(token).send().await.map_err(sdk_error).context("listing the APIs")?;
        let found = page.items.unwrap_or_default().into_iter().find(|api| api.name.as_deref() == Some(name));
        if let Some(api) = found {
            return Ok(api.api_id);
        }
        token = page.next_token;
        if token.is_none() {
            return Ok(None);
        }
    }
}

/// The stack's functions by physical name and by logical id (from `ListStackResources`).
#[derive(Debug, Default)]
pub(super) struct StackFunctions {
    physical_by_logical: BTreeMap<String, String>,
}

impl StackFunctions {
    /// The contract's functions among the stack's resources.
    pub(super) fn of(physical: &BTreeMap<String, String>) -> StackFunctions {
        let physical_by_logical = contract::CONTRACT
            .functions
            .iter()
            .map(|function| naming::function(function.name))
            .filter_map(|logical| Some((logical.clone(), physical.get(&logical)?.clone())))
            .collect();
        StackFunctions { physical_by_logical }
    }

    /// The physical name of the function with logical id `logical`.
    pub(super) fn physical(&self, logical: &str) -> Option<&str> {
        self.physical_by_logical.get(logical).map(String::as_str)
    }

    /// The function an integration or authorizer URI invokes: its logical id when it is one of
    /// the stack's, else its name (or the URI itself when it names no function).
    pub(super) fn invoked(&self, uri: &str) -> String {
        let name = served_routes::function_name_of_uri(uri).unwrap_or(uri);
        self.physical_by_logical
            .iter()
            .find(|(_, physical)| physical.as_str() == name)
            .map(|(logical, _)| logical.clone())
            .unwrap_or_else(|| name.to_owned())
    }
}

/// The `websocket` checks of `live` against the contract, the stage's synthesized template
/// and the stack's resources (`physical`: logical id → physical id).
pub(super) fn judge(
    stage: &StageConfig,
    synthesized: &Value,
    live: Option<&LiveApi>,
    physical: &BTreeMap<String, String>,
) -> Vec<Check> {
    let deploy = live::deploy_command(stage);
    let Some(api) = live else {
        return vec![Check::fail(
            GROUP,
            "websocket.api",
            format!(
                "no WebSocket API {} found: every client connection fails (browsers see close 1006)",
                template_name(synthesized).unwrap_or(naming::WEBSOCKET_API)
            ),
            deploy,
        )];
    };
    let functions = StackFunctions::of(physical);
    let mut checks = vec![Check::pass(GROUP, "websocket.api", format!("{} ({})", api.name, api.id))];
    checks.extend(route_checks(stage, api, &functions));
    checks.push(connect_check(stage, synthesized, api));
    checks.extend(authorizer_function_check(stage, api, &functions));
    checks.push(deployment_check(stage, api, &functions));
    checks
}

/// Every contract route key: present, with an integration that exists and invokes the
/// stack's function that serves the route.
fn route_checks(stage: &StageConfig, api: &LiveApi, functions: &StackFunctions) -> Vec<Check> {
    let routes = contract::CONTRACT
        .functions
        .iter()
        .flat_map(|function| function.websocket_routes.iter().map(move |key| (function, *key)));
    routes
        .map(|(owner, key)| {
            let id = format!("websocket.route.{key}");
            let deploy = format!(
                "cargo xtask deploy --stage {} (if the deployed template already has it, the route was removed \
                 live: recreate it in the API Gateway console and deploy the API's stage)",
                stage.name
            );
            let Some(route) = api.routes.iter().find(|route| route.key == key) else {
                let meaning = match key {
                    CONNECT_ROUTE => {
                        "connections are accepted without the $connect function: no session is joined and \
                         nothing is recorded, so listeners hear nothing"
                    }
                    contract::DISCONNECT_ROUTE => {
                        "closed connections are cleaned up only when their rows expire (TTL): listener counts \
                         stay high until then"
                    }
                    contract::DEFAULT_ROUTE => "frames with no known action get API Gateway's error, not the service's",
                    _ => "its frames fall through to $default: the code that serves it never runs",
                };
                return Check::fail(GROUP, id, format!("route {key} is missing from the live API: {meaning}"), deploy);
            };
            let integration = route.target.as_deref().and_then(|target| target.strip_prefix("integrations/"));
            let Some((integration, uri)) =
                integration.and_then(|integration| Some((integration, api.integrations.get(integration)?)))
            else {
                return Check::fail(
                    GROUP,
                    id,
                    format!(
                        "route {key} has no integration ({}): API Gateway answers it with an internal error and no \
                         function runs",
                        route.target.as_deref().unwrap_or("no target")
                    ),
                    deploy,
                );
            };
            let expected = naming::function(owner.name);
            let Some(physical) = functions.physical(&expected) else {
                return Check::pass(
                    GROUP,
                    id,
                    format!(
                        "{key} → integration {integration} (the stack lists no `{}` function to compare)",
                        owner.name
                    ),
                );
            };
            let invoked = functions.invoked(uri);
            if invoked == expected {
                Check::pass(GROUP, id, format!("{key} → {} ({physical})", owner.name))
            } else {
                Check::fail(
                    GROUP,
                    id,
                    format!(
                        "route {key} invokes {invoked}, not this stack's `{}` function ({physical}): its frames run \
                         code this release did not deploy, or none",
                        owner.name
                    ),
                    format!(
                        "point integration {integration} back at {physical}: `cargo xtask deploy --stage {}` if the \
                         deployed template differs, else aws apigatewayv2 update-integration --api-id {} \
                         --integration-id {integration} --integration-uri <{physical}'s invocation URI>, then \
                         aws apigatewayv2 create-deployment --api-id {} --stage-name {}",
                        stage.name, api.id, api.id, stage.name
                    ),
                )
            }
        })
        .collect()
}

/// The `$connect` authorizer invokes the stack's authorizer function.
fn authorizer_function_check(stage: &StageConfig, api: &LiveApi, functions: &StackFunctions) -> Option<Check> {
    let authorizer = api.connect_authorizer.as_ref()?;
    let function = contract::CONTRACT.authorizer.as_ref()?.function;
    let expected = naming::function(function);
    let physical = functions.physical(&expected)?;
    let id = "websocket.connect-authorizer.function";
    let invoked = functions.invoked(&authorizer.uri);
    Some(if invoked == expected {
        Check::pass(GROUP, id, format!("{} invokes `{function}` ({physical})", authorizer.name))
    } else {
        Check::fail(
            GROUP,
            id,
            format!(
                "the $connect authorizer {} invokes {invoked}, not this stack's `{function}` function ({physical}): \
                 every handshake is judged by code this release did not deploy",
                authorizer.name
            ),
            format!(
                "`cargo xtask deploy --stage {}` if the deployed template differs, else aws apigatewayv2 \
                 update-authorizer --api-id {} --authorizer-id {} --authorizer-uri <{physical}'s invocation URI>, \
                 then aws apigatewayv2 create-deployment --api-id {} --stage-name {}",
                stage.name, api.id, authorizer.id, api.id, stage.name
            ),
        )
    })
}

/// The routes the live API would serve, in the form the deployment's description fingerprints.
pub(super) fn served(api: &LiveApi, functions: &StackFunctions) -> Vec<ServedRoute> {
    api.routes
        .iter()
        .map(|route| {
            let authorizer = route
                .authorizer_id
                .as_ref()
                .and_then(|id| api.connect_authorizer.as_ref().filter(|authorizer| &authorizer.id == id))
                .map(|authorizer| ServedAuthorizer {
                    kind: authorizer.kind.clone(),
                    identity_source: authorizer.identity_source.clone(),
                    function: Some(functions.invoked(&authorizer.uri)),
                });
            let function = route
                .target
                .as_deref()
                .and_then(|target| target.strip_prefix("integrations/"))
                .and_then(|integration| api.integrations.get(integration))
                .map(|uri| functions.invoked(uri));
            ServedRoute {
                key: route.key.clone(),
                authorization_type: if route.authorization_type.is_empty() {
                    "NONE".to_owned()
                } else {
                    route.authorization_type.clone()
                },
                authorizer,
                function,
            }
        })
        .collect()
}

/// The stage exists and serves a deployment of the live routes.
fn deployment_check(stage: &StageConfig, api: &LiveApi, functions: &StackFunctions) -> Check {
    let id = "websocket.deployment";
    let deploy = live::deploy_command(stage);
    let create_deployment =
        format!("aws apigatewayv2 create-deployment --api-id {} --stage-name {}", api.id, stage.name);
    let Some(live) = &api.stage else {
        return Check::fail(
            GROUP,
            id,
            format!("the API has no stage {}: the URL clients connect to does not exist (HTTP 403/404)", stage.name),
            deploy,
        );
    };
    if live.auto_deploy {
        return Check::pass(GROUP, id, format!("stage {} deploys every change automatically", stage.name));
    }
    let deployment_id = live.deployment_id.as_deref().unwrap_or("none");
    let description = match &live.deployment {
        Deployment::Unsupported => {
            return Check::skip(
                GROUP,
                id,
                "the endpoint does not serve API Gateway deployments (a local endpoint?): which deployment the \
                 stage serves is not judged",
            );
        }
        Deployment::None => {
            return Check::fail(
                GROUP,
                id,
                format!(
                    "stage {} serves no deployment and does not auto-deploy: no route is served, every connection \
                     fails (browsers see close 1006)",
                    stage.name
                ),
                format!("{deploy} (or {create_deployment})"),
            );
        }
        Deployment::Described(description) => description,
    };
    let live_fingerprint = served_routes::fingerprint(&served(api, functions));
    match served_routes::read_description(description) {
        None => Check::warn(
            GROUP,
            id,
            format!(
                "stage {} serves deployment {deployment_id}, which was not made by a release of this tool \
                 (description \"{description}\"): whether it serves the live routes cannot be told",
                stage.name
            ),
            format!("{deploy} makes a deployment of the template's routes"),
        ),
        Some(deployed) if deployed == live_fingerprint => Check::pass(
            GROUP,
            id,
            format!("stage {} serves deployment {deployment_id}, made for the live routes ({deployed})", stage.name),
        ),
        Some(deployed) => Check::fail(
            GROUP,
            id,
            format!(
                "stage {} serves deployment {deployment_id}, made for other routes than the live ones (served routes \
                 {deployed}, live {live_fingerprint}): a route, integration or authorizer was changed after that \
                 deployment, so clients get the deployment's version, not what the console shows",
                stage.name
            ),
            format!(
                "if the checks above show the live API as the template wants it, deploy it: {create_deployment}; \
                 otherwise `{deploy}` (a live edit is not in the template: undo it first)"
            ),
        ),
    }
}

/// `$connect`'s authorization and authorizer, judged by the contract verifier.
fn connect_check(stage: &StageConfig, synthesized: &Value, api: &LiveApi) -> Check {
    let id = "websocket.connect-authorizer";
    let Some(overlaid) = overlay(synthesized, api) else {
        return Check::skip(GROUP, id, "no live $connect route to judge (see websocket.route.$connect)");
    };
    let before = stacks::verify(synthesized, &contract::CONTRACT);
    let added: Vec<stacks::Finding> = stacks::verify(&overlaid, &contract::CONTRACT)
        .into_iter()
        .filter(|finding| !before.contains(finding))
        .filter(|finding| {
            [naming::websocket_route(CONNECT_ROUTE), naming::CONNECT_AUTHORIZER.to_owned()]
                .contains(&finding.logical_id)
        })
        // Which function the authorizer invokes is judged by `authorizer_function_check`.
        .filter(|finding| finding.property != "AuthorizerUri")
        .collect();
    let described = match &api.connect_authorizer {
        Some(authorizer) => format!(
            "authorizer {} ({}), {}, identity source {}",
            authorizer.name,
            authorizer.id,
            authorizer.kind,
            if authorizer.identity_source.is_empty() {
                "none".to_owned()
            } else {
                authorizer.identity_source.join(", ")
            }
        ),
        None => "no authorizer".to_owned(),
    };
    let Some(worst) = added.first() else {
        return Check::pass(GROUP, id, format!("$connect: {described}, as the stage declares"));
    };
    let message: Vec<String> =
        added.iter().map(|finding| format!("{}: {}", finding.property, finding.consequence)).collect();
    let message = format!("$connect ({described}): {}", message.join("; "));
    Check::fail(GROUP, id, message, fix(stage, api, worst.kind, &worst.property))
}

/// The exact change that removes a `$connect` finding.
fn fix(stage: &StageConfig, api: &LiveApi, kind: FindingKind, property: &str) -> String {
    let deploy = live::deploy_command(stage);
    let redeploy_stage = format!("aws apigatewayv2 create-deployment --api-id {} --stage-name {}", api.id, stage.name);
    match (kind, property) {
        (FindingKind::ConnectIdentitySource, "IdentitySource") => {
            let authorizer = api.connect_authorizer.as_ref();
            format!(
                "remove the IdentitySource from the $connect authorizer{}: `{deploy}` deploys the synthesized \
                 template, which has none (`cargo xtask diff --stage {}` shows whether the deployed template has \
                 it); if it was edited live, CloudFormation does not see it: clear it in the API Gateway console \
                 (or aws apigatewayv2 update-authorizer --api-id {} --authorizer-id {}), then `{redeploy_stage}`",
                authorizer.map(|a| format!(" {} ({})", a.name, a.id)).unwrap_or_default(),
                stage.name,
                api.id,
                authorizer.map(|a| a.id.as_str()).unwrap_or("ID"),
            )
        }
        (FindingKind::ConnectIdentitySource, _) => format!(
            "set $connect's authorization type back to {}: `{deploy}`, or in the console if it was edited live, then \
             `{redeploy_stage}`",
            if stage.connect_authorizer { "CUSTOM with the REQUEST authorizer" } else { "NONE" }
        ),
        _ => format!(
            "make $connect's authorizer what the stage declares (connect_authorizer = {} in stacks::stages): \
             `{deploy}`, or in the console if it was edited live, then `{redeploy_stage}`",
            stage.connect_authorizer
        ),
    }
}

/// The synthesized template with `$connect`'s live authorization laid over it; `None` when the
/// live API has no `$connect` route.
pub(super) fn overlay(synthesized: &Value, api: &LiveApi) -> Option<Value> {
    let live = api.routes.iter().find(|route| route.key == CONNECT_ROUTE)?;
    let mut template = synthesized.clone();
    let resources = template.get_mut("Resources")?.as_object_mut()?;
    if let Some(authorizer) = &api.connect_authorizer {
        let entry = resources.entry(naming::CONNECT_AUTHORIZER.to_owned()).or_insert_with(|| {
            json!({
                "Type": "AWS::ApiGatewayV2::Authorizer",
                "Properties": {"ApiId": {"Ref": naming::WEBSOCKET_API}, "AuthorizerUri": authorizer.uri, "Name": authorizer.name},
            })
        });
        let properties = entry.get_mut("Properties")?.as_object_mut()?;
        properties.insert("AuthorizerType".into(), json!(authorizer.kind));
        if authorizer.identity_source.is_empty() {
            properties.remove("IdentitySource");
        } else {
            properties.insert("IdentitySource".into(), json!(authorizer.identity_source));
        }
    }
    let route = resources.get_mut(&naming::websocket_route(CONNECT_ROUTE))?.get_mut("Properties")?.as_object_mut()?;
    route.insert("AuthorizationType".into(), json!(live.authorization_type));
    if api.connect_authorizer.is_some() {
        route.insert("AuthorizerId".into(), json!({"Ref": naming::CONNECT_AUTHORIZER}));
    } else {
        route.remove("AuthorizerId");
    }
    Some(template)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    /// The physical name the stack gives a function with logical id `logical`.
    fn physical_name(logical: &str) -> String {
        format!("session-service-dev-{logical}-X1")
    }

    /// `ListStackResources` of a stack holding the contract's functions.
    fn stack_resources() -> BTreeMap<String, String> {
        contract::CONTRACT
            .functions
            .iter()
            .map(|function| naming::function(function.name))
            .map(|logical| (logical.clone(), physical_name(&logical)))
            .collect()
    }

    /// An invocation URI of the function named `name`, as API Gateway returns it.
    fn invocation_uri(name: &str) -> String {
        format!(
            "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:{name}/invocations"
        )
    }

    /// The live API exactly as the stage's template describes it, its stage serving a
    /// deployment the stage's template made.
    fn healthy(stage: &StageConfig) -> LiveApi {
        let mut api =
            LiveApi { id: "abc123".into(), name: "session-service-dev-websocket".into(), ..LiveApi::default() };
        for function in contract::CONTRACT.functions {
            let integration = format!("int-{}", function.name);
            api.integrations
                .insert(integration.clone(), invocation_uri(&physical_name(&naming::function(function.name))));
            for key in function.websocket_routes {
                let connect = *key == CONNECT_ROUTE && stage.connect_authorizer;
                api.routes.push(LiveRoute {
                    key: (*key).to_owned(),
                    authorization_type: if connect { "CUSTOM" } else { "NONE" }.into(),
                    authorizer_id: connect.then(|| "auth1".to_owned()),
                    target: Some(format!("integrations/{integration}")),
                });
            }
        }
        if stage.connect_authorizer {
            api.connect_authorizer = Some(LiveAuthorizer {
                id: "auth1".into(),
                name: "session-service-dev-connect".into(),
                kind: "REQUEST".into(),
                identity_source: Vec::new(),
                uri: invocation_uri(&physical_name("AuthorizerFunction")),
            });
        }
        let synthesized = stacks::synthesize(&contract::CONTRACT, stage).expect("synthesizes").to_value();
        let description = synthesized["Resources"]
            .as_object()
            .and_then(|resources| resources.iter().find(|(id, _)| id.starts_with(naming::WEBSOCKET_DEPLOYMENT_PREFIX)))
            .and_then(|(_, deployment)| deployment["Properties"]["Description"].as_str())
            .expect("the template has a deployment")
            .to_owned();
        api.stage = Some(LiveStage {
            auto_deploy: false,
            deployment_id: Some("dep1".into()),
            deployment: Deployment::Described(description),
        });
        api
    }

    /// The checks of `api` with its edits deployed (the stage serves a deployment of its
    /// live routes), as when the edits came in a release.
    fn judged(stage: &StageConfig, api: &LiveApi) -> Vec<Check> {
        let mut deployed = api.clone();
        let fingerprint = served_routes::fingerprint(&served(api, &StackFunctions::of(&stack_resources())));
        if let Some(live) = deployed.stage.as_mut() {
            live.deployment = Deployment::Described(served_routes::description("0000000000", &fingerprint));
        }
        judged_as_is(stage, &deployed)
    }

    /// The checks of `api` as it is.
    fn judged_as_is(stage: &StageConfig, api: &LiveApi) -> Vec<Check> {
        let synthesized = stacks::synthesize(&contract::CONTRACT, stage).expect("synthesizes").to_value();
        judge(stage, &synthesized, Some(api), &stack_resources())
    }

    fn check<'a>(checks: &'a [Check], id: &str) -> &'a Check {
        checks.iter().find(|check| check.id == id).unwrap_or_else(|| panic!("no {id} in {checks:#?}"))
    }

    fn failures(checks: &[Check]) -> Vec<&Check> {
        checks.iter().filter(|check| check.status == Status::Fail).collect()
    }

    #[test]
    fn the_api_as_every_stage_declares_it_passes() {
        for stage in stacks::stages::all() {
            let checks = judged(&stage, &healthy(&stage));
            assert!(failures(&checks).is_empty(), "{}: {checks:#?}", stage.name);
        }
    }

    #[test]
    fn the_incident_identity_source_is_named_with_its_consequence_and_fix() {
        let stage = stacks::stages::dev();
        let mut api = healthy(&stage);
        if let Some(authorizer) = api.connect_authorizer.as_mut() {
            authorizer.identity_source = vec!["route.request.querystring.token".into()];
        }
        let checks = judged(&stage, &api);
        let failed = failures(&checks);
        assert_eq!(failed.len(), 1, "{failed:#?}");
        assert_eq!(failed[0].id, "websocket.connect-authorizer");
        assert!(failed[0].message.contains("route.request.querystring.token"), "{}", failed[0].message);
        assert!(failed[0].message.contains("401 before any function runs"), "{}", failed[0].message);
        assert!(failed[0].message.contains("1006"), "{}", failed[0].message);
        assert!(failed[0].fix.contains("remove the IdentitySource"), "{}", failed[0].fix);
        assert!(failed[0].fix.contains("cargo xtask deploy --stage dev"), "{}", failed[0].fix);
    }

    #[test]
    fn iam_authorization_a_missing_or_unexpected_authorizer_and_a_token_authorizer_fail() {
        let dev = stacks::stages::dev();
        let mut api = healthy(&dev);
        api.routes.iter_mut().filter(|route| route.key == CONNECT_ROUTE).for_each(|route| {
            route.authorization_type = "AWS_IAM".into();
            route.authorizer_id = None;
        });
        api.connect_authorizer = None;
        let failed: Vec<Check> = failures(&judged(&dev, &api)).into_iter().cloned().collect();
        assert_eq!(failed.len(), 1, "{failed:#?}");
        assert!(failed[0].message.contains("AWS_IAM"), "{}", failed[0].message);

        let mut api = healthy(&dev);
        if let Some(authorizer) = api.connect_authorizer.as_mut() {
            authorizer.kind = "TOKEN".into();
        }
        assert_eq!(failures(&judged(&dev, &api)).len(), 1);

        let without = StageConfig { connect_authorizer: false, ..stacks::stages::dev() };
        assert!(failures(&judged(&without, &healthy(&without))).is_empty());
        let checks = judged(&without, &healthy(&dev));
        assert_eq!(failures(&checks).len(), 1, "{checks:#?}");
    }

    #[test]
    fn a_missing_route_or_integration_is_named_by_its_key() {
        let stage = stacks::stages::dev();
        let mut api = healthy(&stage);
        api.routes.retain(|route| route.key != "joinSession");
        if let Some(route) = api.routes.iter_mut().find(|route| route.key == "heartbeat") {
            route.target = Some("integrations/gone".into());
        }
        let checks = judged(&stage, &api);
        let mut failed: Vec<&str> = failures(&checks).iter().map(|check| check.id.as_str()).collect();
        failed.sort_unstable();
        assert_eq!(failed, ["websocket.route.heartbeat", "websocket.route.joinSession"]);
        assert!(judge(&stage, &Value::Null, None, &BTreeMap::new())[0].status == Status::Fail);
    }

    #[test]
    fn an_integration_or_authorizer_invoking_another_function_is_named() {
        let stage = stacks::stages::dev();
        let mut api = healthy(&stage);
        let heartbeat = api.routes.iter().find(|route| route.key == "heartbeat").and_then(|route| route.target.clone());
        let integration = heartbeat.and_then(|target| target.strip_prefix("integrations/").map(str::to_owned));
        // The messages function's integration serves heartbeat; point it at a function of another stack.
        api.integrations.insert(integration.expect("heartbeat has an integration"), invocation_uri("someone-else"));
        if let Some(authorizer) = api.connect_authorizer.as_mut() {
            authorizer.uri = invocation_uri(&physical_name("ConnectionFunction"));
        }
        let checks = judged_as_is(&stage, &api);
        let heartbeat = check(&checks, "websocket.route.heartbeat");
        assert_eq!(heartbeat.status, Status::Fail);
        assert!(
            heartbeat.message.contains("invokes someone-else, not this stack's `messages` function"),
            "{heartbeat:?}"
        );
        assert!(heartbeat.fix.contains("update-integration --api-id abc123"), "{heartbeat:?}");
        let authorizer = check(&checks, "websocket.connect-authorizer.function");
        assert_eq!(authorizer.status, Status::Fail);
        assert!(
            authorizer.message.contains("invokes ConnectionFunction, not this stack's `authorizer`"),
            "{authorizer:?}"
        );
        // The live routes now differ from the deployment's: the stage serves the old ones.
        assert_eq!(check(&checks, "websocket.deployment").status, Status::Fail);

        // Without the stack's functions, nothing is compared.
        let synthesized = stacks::synthesize(&contract::CONTRACT, &stage).expect("synthesizes").to_value();
        let checks = judge(&stage, &synthesized, Some(&api), &BTreeMap::new());
        assert_eq!(check(&checks, "websocket.route.heartbeat").status, Status::Pass);
        assert!(checks.iter().all(|check| check.id != "websocket.connect-authorizer.function"));
    }

    #[test]
    fn the_stage_must_serve_a_deployment_of_the_live_routes() {
        let stage = stacks::stages::dev();
        let healthy_api = healthy(&stage);
        let deployment = |api: &LiveApi| check(&judged_as_is(&stage, api), "websocket.deployment").clone();
        assert_eq!(deployment(&healthy_api).status, Status::Pass, "{:?}", deployment(&healthy_api));

        // A live edit that was not deployed: the incident's identity source, added in the console.
        let mut edited = healthy_api.clone();
        if let Some(authorizer) = edited.connect_authorizer.as_mut() {
            authorizer.identity_source = vec!["route.request.querystring.token".into()];
        }
        let stale = deployment(&edited);
        assert_eq!(stale.status, Status::Fail);
        assert!(stale.message.contains("made for other routes than the live ones"), "{stale:?}");
        assert!(stale.fix.contains("aws apigatewayv2 create-deployment --api-id abc123 --stage-name dev"), "{stale:?}");

        // A route deleted live is as stale.
        let mut deleted = healthy_api.clone();
        deleted.routes.retain(|route| route.key != "heartbeat");
        assert_eq!(deployment(&deleted).status, Status::Fail);

        // A deployment made by hand (the console's "Deploy API"): cannot tell, a warning.
        let mut by_hand = healthy_api.clone();
        by_hand.stage = Some(LiveStage {
            deployment: Deployment::Described("hotfix".into()),
            ..by_hand.stage.clone().unwrap_or_default()
        });
        let warned = deployment(&by_hand);
        assert_eq!((warned.status, warned.message.contains("\"hotfix\"")), (Status::Warn, true), "{warned:?}");

        // No deployment; an auto-deploying stage; no stage; an endpoint without deployments.
        let with_stage = |live: Option<LiveStage>| LiveApi { stage: live, ..healthy_api.clone() };
        let none = deployment(&with_stage(Some(LiveStage::default())));
        assert_eq!(none.status, Status::Fail);
        assert!(none.message.contains("serves no deployment"), "{none:?}");
        let auto = LiveStage { auto_deploy: true, ..LiveStage::default() };
        assert_eq!(deployment(&with_stage(Some(auto))).status, Status::Pass);
        assert_eq!(deployment(&with_stage(None)).status, Status::Fail);
        let local = LiveStage { deployment: Deployment::Unsupported, ..LiveStage::default() };
        assert_eq!(deployment(&with_stage(Some(local))).status, Status::Skip);
    }
}

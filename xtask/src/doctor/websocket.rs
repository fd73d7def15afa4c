//! Check group `websocket`: the **live** WebSocket API, read through the API Gateway v2 API,
//! not the template (a console edit or a failed deployment shows here and nowhere else).
//!
//! The API is found by its physical id (`DescribeStackResources`, logical id `WebSocketApi`),
//! else by the name the synthesized template gives it (the local AWS endpoint does not create
//! API Gateway v2 resources from CloudFormation). Then:
//!
//! - every route key the contract serves has a live route with an integration that exists;
//! - `$connect`'s authorization and its authorizer (reached through the route's `AuthorizerId`
//!   with `GetAuthorizer`) are judged by the contract verifier itself: the live values are laid
//!   over the synthesized template ([`overlay`]) and [`stacks::verify`] runs on the result, so
//!   "no identity source, REQUEST, an authorizer exactly when `CONNECT_AUTH` says so" is
//!   decided in one place. Only the findings the live values add are reported.
//!
//! Not yet checked (issue 12): which function each integration and the authorizer invoke, and
//! whether the stage serves a deployment of the live routes.

use super::Check;
use anyhow::{Context, Result};
use contract::CONNECT_ROUTE;
use serde_json::{Value, json};
use stacks::naming;
use stacks::{FindingKind, StageConfig};
use std::collections::BTreeMap;

pub(super) const GROUP: &str = "websocket";

/// The live WebSocket API, as far as these checks read it.
#[derive(Debug, Clone, Default)]
pub(super) struct LiveApi {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) routes: Vec<LiveRoute>,
    /// Integration id → integration URI.
    pub(super) integrations: BTreeMap<String, String>,
    /// The authorizer `$connect` names, if it names one.
    pub(super) connect_authorizer: Option<LiveAuthorizer>,
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

fn sdk_error<E: std::error::Error + Send + Sync + 'static>(error: E) -> anyhow::Error {
    anyhow::anyhow!("{}", aws_sdk_apigatewayv2::error::DisplayErrorContext(error))
}

/// The name the synthesized template gives the WebSocket API.
fn template_name(synthesized: &Value) -> Option<&str> {
    synthesized["Resources"][naming::WEBSOCKET_API]["Properties"]["Name"].as_str()
}

/// Reads the live WebSocket API; `None` when there is none to find.
pub(super) async fn read(
    client: &aws_sdk_apigatewayv2::Client,
    synthesized: &Value,
    physical: &BTreeMap<String, String>,
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

    let mut token = None;
    loop {
        let page = client
            .get_routes()
            .api_id(&id)
            .set_next_token(token)
            .send()
            .await
            .map_err(sdk_error)
            .context("listing the WebSocket API's routes")?;
        for route in page.items.unwrap_or_default() {
            live.routes.push(LiveRoute {
                key: route.route_key.unwrap_or_default(),
                authorization_type: route.authorization_type.map(|kind| kind.as_str().to_owned()).unwrap_or_default(),
                authorizer_id: route.authorizer_id,
                target: route.target,
            });
        }
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }

    let mut token = None;
    loop {
        let page = client
            .get_integrations()
            .api_id(&id)
            .set_next_token(token)
            .send()
            .await
            .map_err(sdk_error)
            .context("listing the WebSocket API's integrations")?;
        for integration in page.items.unwrap_or_default() {
            if let Some(integration_id) = integration.integration_id {
                live.integrations.insert(integration_id, integration.integration_uri.unwrap_or_default());
            }
        }
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }

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
    Ok(Some(live))
}

/// The id of the API named `name`, if there is one.
async fn find_by_name(client: &aws_sdk_apigatewayv2::Client, name: &str) -> Result<Option<String>> {
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

/// The `websocket` checks of `live` against the contract and the stage's synthesized template.
pub(super) fn judge(stage: &StageConfig, synthesized: &Value, live: Option<&LiveApi>) -> Vec<Check> {
    let deploy = format!("cargo xtask deploy --stage {}", stage.name);
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
    let mut checks = vec![Check::pass(GROUP, "websocket.api", format!("{} ({})", api.name, api.id))];
    checks.extend(route_checks(stage, api));
    checks.push(connect_check(stage, synthesized, api));
    checks
}

/// Every contract route key: present, with an integration that exists.
fn route_checks(stage: &StageConfig, api: &LiveApi) -> Vec<Check> {
    let keys = contract::CONTRACT.functions.iter().flat_map(|function| function.websocket_routes.iter());
    keys.map(|key| {
        let id = format!("websocket.route.{key}");
        let deploy = format!(
            "cargo xtask deploy --stage {} (if the deployed template already has it, the route was removed live: \
             recreate it in the API Gateway console and deploy the API's stage)",
            stage.name
        );
        let Some(route) = api.routes.iter().find(|route| route.key == *key) else {
            let meaning = match *key {
                CONNECT_ROUTE => {
                    "connections are accepted without the $connect function: no session is joined \
                                  and nothing is recorded, so listeners hear nothing"
                }
                contract::DISCONNECT_ROUTE => "closed connections are cleaned up only when their rows expire (TTL): listener counts stay high until then",
                contract::DEFAULT_ROUTE => "frames with no known action get API Gateway's error, not the service's",
                _ => "its frames fall through to $default: the code that serves it never runs",
            };
            return Check::fail(GROUP, id, format!("route {key} is missing from the live API: {meaning}"), deploy);
        };
        let integration = route.target.as_deref().and_then(|target| target.strip_prefix("integrations/"));
        match integration {
            Some(integration) if api.integrations.contains_key(integration) => {
                Check::pass(GROUP, id, format!("{key} → integration {integration}"))
            }
            _ => Check::fail(
                GROUP,
                id,
                format!(
                    "route {key} has no integration ({}): API Gateway answers it with an internal error and no \
                     function runs",
                    route.target.as_deref().unwrap_or("no target")
                ),
                deploy,
            ),
        }
    })
    .collect()
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
        // Which function the authorizer invokes is not compared yet (live ARNs against template references).
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
    let deploy = format!("cargo xtask deploy --stage {}", stage.name);
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

    /// The live API exactly as the stage's template describes it.
    fn healthy(stage: &StageConfig) -> LiveApi {
        let mut api =
            LiveApi { id: "abc123".into(), name: "session-service-dev-websocket".into(), ..LiveApi::default() };
        api.integrations.insert("int1".into(), "arn:aws:lambda:...".into());
        for function in contract::CONTRACT.functions {
            for key in function.websocket_routes {
                let connect = *key == CONNECT_ROUTE && stage.connect_authorizer;
                api.routes.push(LiveRoute {
                    key: (*key).to_owned(),
                    authorization_type: if connect { "CUSTOM" } else { "NONE" }.into(),
                    authorizer_id: connect.then(|| "auth1".to_owned()),
                    target: Some("integrations/int1".into()),
                });
            }
        }
        if stage.connect_authorizer {
            api.connect_authorizer = Some(LiveAuthorizer {
                id: "auth1".into(),
                name: "session-service-dev-connect".into(),
                kind: "REQUEST".into(),
                identity_source: Vec::new(),
                uri: String::new(),
            });
        }
        api
    }

    fn judged(stage: &StageConfig, api: &LiveApi) -> Vec<Check> {
        let synthesized = stacks::synthesize(&contract::CONTRACT, stage).expect("synthesizes").to_value();
        judge(stage, &synthesized, Some(api))
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
        assert!(judge(&stage, &Value::Null, None)[0].status == Status::Fail);
    }
}

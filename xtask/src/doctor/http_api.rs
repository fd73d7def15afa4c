//! Check group `http`: the **live** HTTP API (the session API speakers' and listeners' pages
//! call), read through the API Gateway v2 API.
//!
//! The API is found like the WebSocket API ([`super::websocket`]): by its physical id, else by
//! the name the template gives it. Then:
//!
//! - `http.route.<key>`: every HTTP route of the contract is present, with an integration that
//!   invokes this stack's function for it, and behind the JWT authorizer exactly when the code
//!   expects (the verifier's `RouteAuthorization` rule, on the live values);
//! - `http.authorizer`: the JWT authorizer trusts the stage's issuer and app clients and reads
//!   the `Authorization` header, so it accepts the tokens `$connect` accepts;
//! - `http.cors`: the API answers browsers from the stage file's origins, and the methods and
//!   headers the routes need are allowed (the verifier's `CorsRefused` rule). An origin the
//!   stage file does not list is a warning: pages the team did not name may call the API.
//!
//! Route authorization and CORS are judged the way `websocket` judges `$connect`: the live
//! values are laid over the synthesized template ([`overlay`]) and [`stacks::verify()`] runs on
//! the result; only the findings the live values add are reported.

use super::websocket::{LiveRoute, StackFunctions, routes_and_integrations, sdk_error};
use super::{Check, Context, live};
use anyhow::{Context as _, Result};
use serde_json::{Value, json};
use stacks::template::strings;
use stacks::{FindingKind, StageConfig, naming};
use std::collections::{BTreeMap, BTreeSet};

pub(super) const GROUP: &str = "http";

/// The live HTTP API, as far as these checks read it.
#[derive(Debug, Clone, Default)]
pub(super) struct LiveHttpApi {
    pub(super) id: String,
    pub(super) name: String,
    /// `None` when the API has no CORS configuration.
    pub(super) cors: Option<LiveCors>,
    pub(super) routes: Vec<LiveRoute>,
    /// Integration id → integration URI.
    pub(super) integrations: BTreeMap<String, String>,
    /// Authorizer id → authorizer, for each authorizer a route names.
    pub(super) authorizers: BTreeMap<String, LiveJwtAuthorizer>,
}

/// The API's CORS configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct LiveCors {
    pub(super) allow_origins: Vec<String>,
    pub(super) allow_methods: Vec<String>,
    pub(super) allow_headers: Vec<String>,
    pub(super) max_age: Option<i32>,
}

/// One authorizer of the API (a JWT authorizer, when the stack made it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct LiveJwtAuthorizer {
    pub(super) name: String,
    pub(super) kind: String,
    pub(super) identity_source: Vec<String>,
    pub(super) issuer: String,
    pub(super) audiences: Vec<String>,
}

/// The `http` checks of the stage's live HTTP API.
pub(super) async fn checks(context: &Context) -> Vec<Check> {
    let client = aws_sdk_apigatewayv2::Client::new(&context.sdk);
    let physical = context.stack.as_ref().map(|stack| stack.resources.clone()).unwrap_or_default();
    match read(&client, &context.synthesized, &physical).await {
        Ok(api) => judge(&context.stage, &context.synthesized, api.as_ref(), &physical),
        Err(error) => vec![
            live::Unreadable::new(
                "apigatewayv2 GetApi/GetRoutes/GetIntegrations/GetAuthorizers",
                "apigateway:GET",
                format!("{error:#}"),
            )
            .check(GROUP, "http.api", "the HTTP API"),
        ],
    }
}

/// The name the synthesized template gives the HTTP API.
fn template_name(synthesized: &Value) -> Option<&str> {
    synthesized["Resources"][naming::HTTP_API]["Properties"]["Name"].as_str()
}

/// Reads the live HTTP API; `None` when there is none to find.
pub(super) async fn read(
    client: &aws_sdk_apigatewayv2::Client,
    synthesized: &Value,
    physical: &BTreeMap<String, String>,
) -> Result<Option<LiveHttpApi>> {
    let name = template_name(synthesized).unwrap_or_default().to_owned();
    let id = match physical.get(naming::HTTP_API) {
        Some(id) => Some(id.clone()),
        None => super::websocket::find_by_name(client, &name).await?,
    };
    let Some(id) = id else {
        return Ok(None);
    };
    let api = client.get_api().api_id(&id).send().await.map_err(sdk_error).context("reading the HTTP API")?;
    let cors = api.cors_configuration.map(|cors| LiveCors {
        allow_origins: cors.allow_origins.unwrap_or_default(),
        allow_methods: cors.allow_methods.unwrap_or_default(),
        allow_headers: cors.allow_headers.unwrap_or_default(),
        max_age: cors.max_age,
    });
    let (routes, integrations) = routes_and_integrations(client, &id, "HTTP API").await?;
    // Each authorizer a route names (GetAuthorizer, as `websocket` reads `$connect`'s; moto
    // 5.2.5 does not list authorizers).
    let named: BTreeSet<&String> = routes.iter().filter_map(|route| route.authorizer_id.as_ref()).collect();
    let mut authorizers = BTreeMap::new();
    for authorizer_id in named {
        let authorizer = client
            .get_authorizer()
            .api_id(&id)
            .authorizer_id(authorizer_id)
            .send()
            .await
            .map_err(sdk_error)
            .with_context(|| format!("reading the HTTP API's authorizer {authorizer_id}"))?;
        let (issuer, audiences) = authorizer
            .jwt_configuration
            .map(|jwt| (jwt.issuer.unwrap_or_default(), jwt.audience.unwrap_or_default()))
            .unwrap_or_default();
        authorizers.insert(
            authorizer_id.clone(),
            LiveJwtAuthorizer {
                name: authorizer.name.unwrap_or_default(),
                kind: authorizer.authorizer_type.map(|kind| kind.as_str().to_owned()).unwrap_or_default(),
                identity_source: authorizer.identity_source.unwrap_or_default(),
                issuer,
                audiences,
            },
        );
    }
    Ok(Some(LiveHttpApi { id, name: api.name.unwrap_or(name), cors, routes, integrations, authorizers }))
}

/// The `http` checks of `live` against the contract, the stage's synthesized template and the
/// stack's resources (`physical`: logical id → physical id).
pub(super) fn judge(
    stage: &StageConfig,
    synthesized: &Value,
    live: Option<&LiveHttpApi>,
    physical: &BTreeMap<String, String>,
) -> Vec<Check> {
    let Some(api) = live else {
        return vec![Check::fail(
            GROUP,
            "http.api",
            format!(
                "no HTTP API {} found: speakers cannot create sessions and listeners' pages cannot read them",
                template_name(synthesized).unwrap_or(naming::HTTP_API)
            ),
            live::deploy_command(stage),
        )];
    };
    let added = added_findings(synthesized, api);
    let functions = StackFunctions::of(physical);
    let mut checks = vec![Check::pass(GROUP, "http.api", format!("{} ({})", api.name, api.id))];
    checks.extend(route_checks(stage, api, &functions, &added));
    checks.push(authorizer_check(stage, synthesized, api));
    checks.push(cors_check(stage, synthesized, api, &added));
    checks
}

/// The findings of the verifier on the live values that the synthesized template does not have.
fn added_findings(synthesized: &Value, api: &LiveHttpApi) -> Vec<stacks::Finding> {
    let before = stacks::verify(synthesized, &contract::CONTRACT);
    stacks::verify(&overlay(synthesized, api), &contract::CONTRACT)
        .into_iter()
        .filter(|finding| !before.contains(finding))
        .collect()
}

/// Every contract HTTP route: present, invoking the stack's function that serves it, behind the
/// JWT authorizer exactly when the code expects.
fn route_checks(
    stage: &StageConfig,
    api: &LiveHttpApi,
    functions: &StackFunctions,
    added: &[stacks::Finding],
) -> Vec<Check> {
    let deploy = live::deploy_command(stage);
    let routes = contract::CONTRACT
        .functions
        .iter()
        .flat_map(|function| function.http_routes.iter().map(move |route| (function, route.route_key())));
    routes
        .map(|(owner, key)| {
            let id = format!("http.route.{key}");
            let Some(route) = api.routes.iter().find(|route| route.key == key) else {
                return Check::fail(
                    GROUP,
                    id,
                    format!("route {key} is missing from the live API: its callers get 404 Not Found from API Gateway"),
                    live::deploy_or_live(stage, "recreate the route in the API Gateway console (the $default stage deploys it)"),
                );
            };
            let uri = route
                .target
                .as_deref()
                .and_then(|target| target.strip_prefix("integrations/"))
                .and_then(|integration| api.integrations.get(integration));
            let Some(uri) = uri else {
                return Check::fail(
                    GROUP,
                    id,
                    format!(
                        "route {key} has no integration ({}): API Gateway answers it with 500 and no function runs",
                        route.target.as_deref().unwrap_or("no target")
                    ),
                    deploy.clone(),
                );
            };
            let expected = naming::function(owner.name);
            let invoked = functions.invoked(uri);
            if functions.physical(&expected).is_some() && invoked != expected {
                return Check::fail(
                    GROUP,
                    id,
                    format!(
                        "route {key} invokes {invoked}, not this stack's `{}` function: its requests run code this \
                         release did not deploy, or none",
                        owner.name
                    ),
                    live::deploy_or_live(
                        stage,
                        &format!(
                            "point the route's integration back at the stack's `{}` function in the API Gateway console",
                            owner.name
                        ),
                    ),
                );
            }
            let logical = naming::http_route(&key);
            let refused: Vec<&stacks::Finding> = added
                .iter()
                .filter(|finding| finding.logical_id == logical && finding.kind == FindingKind::RouteAuthorization)
                .collect();
            let authorization = match route.authorizer_id.as_ref().and_then(|id| api.authorizers.get(id)) {
                Some(authorizer) => format!("{} ({})", route.authorization_type, authorizer.name),
                None => route.authorization_type.clone(),
            };
            let function = match functions.physical(&expected) {
                Some(physical) => format!("{} ({physical})", owner.name),
                None => owner.name.to_owned(),
            };
            match refused.first() {
                None => Check::pass(GROUP, id, format!("{key} → {function}, authorization {authorization}")),
                Some(finding) => Check::fail(
                    GROUP,
                    id,
                    format!("route {key} (authorization {authorization}): {}", finding.consequence),
                    live::deploy_or_live(
                        stage,
                        &format!(
                            "aws apigatewayv2 update-route --api-id {} --route-id <{key}'s id> with the template's \
                             AuthorizationType and AuthorizerId",
                            api.id
                        ),
                    ),
                ),
            }
        })
        .collect()
}

/// The JWT authorizer the template's routes use, as the template declares it.
fn template_authorizer(synthesized: &Value) -> Option<LiveJwtAuthorizer> {
    let properties = &synthesized["Resources"][naming::HTTP_AUTHORIZER]["Properties"];
    Some(LiveJwtAuthorizer {
        name: properties["Name"].as_str()?.to_owned(),
        kind: properties["AuthorizerType"].as_str()?.to_owned(),
        identity_source: strings(&properties["IdentitySource"]),
        issuer: properties["JwtConfiguration"]["Issuer"].as_str()?.to_owned(),
        audiences: strings(&properties["JwtConfiguration"]["Audience"]),
    })
}

/// The live authorizer the protected routes use: the one named like the template's, else the
/// one a route names.
fn live_authorizer<'a>(api: &'a LiveHttpApi, name: &str) -> Option<(&'a String, &'a LiveJwtAuthorizer)> {
    api.authorizers.iter().find(|(_, authorizer)| authorizer.name == name).or_else(|| {
        let named = api.routes.iter().find_map(|route| route.authorizer_id.as_ref())?;
        api.authorizers.get_key_value(named)
    })
}

/// The JWT authorizer trusts the stage's identity provider, as `$connect` does.
fn authorizer_check(stage: &StageConfig, synthesized: &Value, api: &LiveHttpApi) -> Check {
    let id = "http.authorizer";
    let Some(wanted) = template_authorizer(synthesized) else {
        return Check::skip(GROUP, id, "the stage's template has no JWT authorizer");
    };
    let Some((authorizer_id, found)) = live_authorizer(api, &wanted.name) else {
        return Check::fail(
            GROUP,
            id,
            format!(
                "no route of the live API names the JWT authorizer {}: the routes that need a speaker's token find \
                 no claims and answer 401 (see the http.route checks)",
                wanted.name
            ),
            live::deploy_command(stage),
        );
    };
    let set = |values: &[String]| values.iter().cloned().collect::<BTreeSet<String>>();
    let mut differences = Vec::new();
    if found.kind != wanted.kind {
        differences.push(format!("type {} instead of {}", found.kind, wanted.kind));
    }
    if found.issuer != wanted.issuer {
        differences.push(format!("issuer {} instead of the stage's {}", found.issuer, wanted.issuer));
    }
    if set(&found.audiences) != set(&wanted.audiences) {
        differences.push(format!(
            "audiences {} instead of the stage's {}",
            found.audiences.join(", "),
            wanted.audiences.join(", ")
        ));
    }
    if set(&found.identity_source) != set(&wanted.identity_source) {
        differences.push(format!(
            "identity source {} instead of {}",
            found.identity_source.join(", "),
            wanted.identity_source.join(", ")
        ));
    }
    if differences.is_empty() {
        return Check::pass(
            GROUP,
            id,
            format!(
                "{} ({authorizer_id}): issuer {}, audiences {}",
                found.name,
                found.issuer,
                found.audiences.join(", ")
            ),
        );
    }
    Check::fail(
        GROUP,
        id,
        format!(
            "{} ({authorizer_id}): {}: speakers' tokens from the stage's identity provider are refused with 401 on \
             the session API, while $connect (configured from the stage file) judges them otherwise",
            found.name,
            differences.join("; ")
        ),
        live::deploy_or_live(
            stage,
            &format!(
                "aws apigatewayv2 update-authorizer --api-id {} --authorizer-id {authorizer_id} --jwt-configuration \
                 Issuer={},Audience={}",
                api.id,
                wanted.issuer,
                wanted.audiences.join(",")
            ),
        ),
    )
}

/// The API's CORS configuration lets the stage's pages call every route.
fn cors_check(stage: &StageConfig, synthesized: &Value, api: &LiveHttpApi, added: &[stacks::Finding]) -> Check {
    let id = "http.cors";
    let wanted =
        strings(&synthesized["Resources"][naming::HTTP_API]["Properties"]["CorsConfiguration"]["AllowOrigins"]);
    if wanted.is_empty() {
        return Check::skip(GROUP, id, format!("{} lists no origins: there is no CORS to judge", stage.settings_file));
    }
    let found = api.cors.as_ref().map(|cors| cors.allow_origins.clone()).unwrap_or_default();
    let live_fix = format!(
        "aws apigatewayv2 update-api --api-id {} --cors-configuration with the template's CorsConfiguration",
        api.id
    );
    let missing: Vec<&String> =
        wanted.iter().filter(|origin| !found.contains(origin) && !found.contains(&"*".to_owned())).collect();
    let refused: Vec<String> = added
        .iter()
        .filter(|finding| finding.kind == FindingKind::CorsRefused)
        .map(|finding| finding.consequence.clone())
        .collect();
    if !missing.is_empty() || !refused.is_empty() {
        let mut problems = Vec::new();
        if api.cors.is_none() {
            problems.push("the API has no CORS configuration".to_owned());
        }
        if !missing.is_empty() {
            problems.push(format!(
                "pages from {} get no Access-Control-Allow-Origin, so browsers block every answer to them (the \
                 console cannot create or read sessions)",
                missing.iter().map(|origin| origin.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
        problems.extend(refused);
        return Check::fail(GROUP, id, problems.join("; "), live::deploy_or_live(stage, &live_fix));
    }
    let extra: Vec<&String> = found.iter().filter(|origin| !wanted.contains(origin)).collect();
    if !extra.is_empty() {
        return Check::warn(
            GROUP,
            id,
            format!(
                "the API also answers pages from {}, which {} does not list: pages the team did not name may call it",
                extra.iter().map(|origin| origin.as_str()).collect::<Vec<_>>().join(", "),
                stage.settings_file
            ),
            live::deploy_or_live(stage, &live_fix),
        );
    }
    Check::pass(GROUP, id, format!("pages from {} may call every route", found.join(", ")))
}

/// The synthesized template with the live routes' authorization, the live JWT authorizer and the
/// live CORS configuration laid over it.
pub(super) fn overlay(synthesized: &Value, api: &LiveHttpApi) -> Value {
    let mut template = synthesized.clone();
    let authorizer_name = template_authorizer(synthesized).map(|authorizer| authorizer.name).unwrap_or_default();
    let live_authorizer = live_authorizer(api, &authorizer_name);
    let Some(resources) = template.get_mut("Resources").and_then(Value::as_object_mut) else {
        return template;
    };
    if let Some(properties) = resources.get_mut(naming::HTTP_API).and_then(|api| api.get_mut("Properties")) {
        match &api.cors {
            Some(cors) => {
                let mut configuration = json!({
                    "AllowOrigins": cors.allow_origins,
                    "AllowMethods": cors.allow_methods,
                    "AllowHeaders": cors.allow_headers,
                });
                if let Some(max_age) = cors.max_age {
                    configuration["MaxAge"] = json!(max_age);
                }
                properties["CorsConfiguration"] = configuration;
            }
            None => {
                if let Some(properties) = properties.as_object_mut() {
                    properties.remove("CorsConfiguration");
                }
            }
        }
    }
    if let (Some((_, authorizer)), Some(properties)) = (
        live_authorizer,
        resources.get_mut(naming::HTTP_AUTHORIZER).and_then(|authorizer| authorizer.get_mut("Properties")),
    ) {
        properties["AuthorizerType"] = json!(authorizer.kind);
        properties["IdentitySource"] = json!(authorizer.identity_source);
        properties["JwtConfiguration"] = json!({"Issuer": authorizer.issuer, "Audience": authorizer.audiences});
    }
    for route in &api.routes {
        let Some(properties) = resources
            .get_mut(&naming::http_route(&route.key))
            .and_then(|resource| resource.get_mut("Properties"))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        properties.insert("AuthorizationType".into(), json!(route.authorization_type));
        let names_the_authorizer =
            route.authorizer_id.as_ref().is_some_and(|id| live_authorizer.is_some_and(|(live_id, _)| live_id == id));
        if names_the_authorizer {
            properties.insert("AuthorizerId".into(), json!({"Ref": naming::HTTP_AUTHORIZER}));
        } else {
            properties.remove("AuthorizerId");
        }
    }
    template
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    /// The live API exactly as the synthesized template of `stage` declares it, with the stack's
    /// function invoked by every route.
    fn healthy(synthesized: &Value) -> LiveHttpApi {
        let resources = synthesized["Resources"].as_object().expect("resources");
        let cors = &resources[naming::HTTP_API]["Properties"]["CorsConfiguration"];
        let authorizer = template_authorizer(synthesized).expect("a JWT authorizer");
        let routes = resources
            .values()
            .filter(|resource| resource["Type"] == "AWS::ApiGatewayV2::Route")
            .filter(|resource| resource["Properties"]["ApiId"] == json!({"Ref": naming::HTTP_API}))
            .map(|resource| {
                let properties = &resource["Properties"];
                LiveRoute {
                    key: properties["RouteKey"].as_str().expect("key").to_owned(),
                    authorization_type: properties["AuthorizationType"].as_str().unwrap_or("NONE").to_owned(),
                    authorizer_id: properties.get("AuthorizerId").map(|_| "jwt1".to_owned()),
                    target: Some("integrations/int1".to_owned()),
                }
            })
            .collect();
        LiveHttpApi {
            id: "http1".into(),
            name: "session-service-dev-http".into(),
            cors: Some(LiveCors {
                allow_origins: strings(&cors["AllowOrigins"]),
                allow_methods: strings(&cors["AllowMethods"]),
                allow_headers: strings(&cors["AllowHeaders"]),
                max_age: cors["MaxAge"].as_i64().map(|age| age as i32),
            }),
            routes,
            integrations: BTreeMap::from([(
                "int1".to_owned(),
                "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:stack-HttpFunction-ABC/invocations".to_owned(),
            )]),
            authorizers: BTreeMap::from([("jwt1".to_owned(), authorizer)]),
        }
    }

    fn physical() -> BTreeMap<String, String> {
        BTreeMap::from([(naming::function("http"), "stack-HttpFunction-ABC".to_owned())])
    }

    fn judged(stage: &StageConfig, api: &LiveHttpApi) -> Vec<Check> {
        let synthesized = stacks::synthesize(&contract::CONTRACT, stage).expect("synthesizes").to_value();
        judge(stage, &synthesized, Some(api), &physical())
    }

    fn synthesized(stage: &StageConfig) -> Value {
        stacks::synthesize(&contract::CONTRACT, stage).expect("synthesizes").to_value()
    }

    fn failures(checks: &[Check]) -> Vec<&Check> {
        checks.iter().filter(|check| check.status == Status::Fail).collect()
    }

    fn only_failure(checks: &[Check]) -> &Check {
        let failed = failures(checks);
        assert_eq!(failed.len(), 1, "{failed:#?}");
        failed[0]
    }

    #[test]
    fn the_api_as_every_stage_declares_it_passes() {
        for stage in
            [stacks::stages::dev(), stacks::stages::prod(), stacks::stages::without_authorizer(stacks::stages::dev())]
        {
            let api = healthy(&synthesized(&stage));
            let checks = judged(&stage, &api);
            assert!(failures(&checks).is_empty(), "{}: {checks:#?}", stage.name);
            assert!(checks.iter().all(|check| check.status == Status::Pass), "{checks:#?}");
            let routes = checks.iter().filter(|check| check.id.starts_with("http.route.")).count();
            assert_eq!(routes, contract::functions::HTTP.http_routes.len());
        }
    }

    #[test]
    fn a_protected_route_opened_to_everyone_or_a_public_one_closed_is_named() {
        let stage = stacks::stages::dev();
        let mut api = healthy(&synthesized(&stage));
        let post = api.routes.iter_mut().find(|route| route.key == "POST /sessions").expect("POST /sessions");
        post.authorization_type = "NONE".into();
        post.authorizer_id = None;
        let checks = judged(&stage, &api);
        let failed = only_failure(&checks);
        assert_eq!(failed.id, "http.route.POST /sessions");
        assert!(failed.message.contains("not behind the JWT authorizer"), "{}", failed.message);

        let mut api = healthy(&synthesized(&stage));
        let read = api.routes.iter_mut().find(|route| route.key == "GET /sessions/{id}").expect("GET /sessions/{id}");
        read.authorization_type = "JWT".into();
        read.authorizer_id = Some("jwt1".into());
        let failed = only_failure(&judged(&stage, &api)).clone();
        assert_eq!(failed.id, "http.route.GET /sessions/{id}");
        assert!(failed.message.contains("callers without a bearer token get 401"), "{}", failed.message);
    }

    #[test]
    fn a_missing_route_or_one_invoking_another_function_is_named_by_its_key() {
        let stage = stacks::stages::dev();
        let mut api = healthy(&synthesized(&stage));
        api.routes.retain(|route| route.key != "GET /health");
        let failed = only_failure(&judged(&stage, &api)).clone();
        assert_eq!(failed.id, "http.route.GET /health");
        assert!(failed.message.contains("404 Not Found"), "{}", failed.message);

        let mut api = healthy(&synthesized(&stage));
        api.integrations.insert("int1".into(), "arn:aws:lambda:eu-west-1:123456789012:function:someone-else".into());
        let failed = failures(&judged(&stage, &api)).into_iter().map(|check| check.id.clone()).collect::<Vec<_>>();
        assert_eq!(failed.len(), contract::functions::HTTP.http_routes.len(), "{failed:?}");
        assert!(failed.iter().all(|id| id.starts_with("http.route.")), "{failed:?}");
    }

    #[test]
    fn an_authorizer_trusting_another_issuer_or_app_client_fails_with_the_stages_values() {
        let stage = stacks::stages::dev();
        let mut api = healthy(&synthesized(&stage));
        let authorizer = api.authorizers.get_mut("jwt1").expect("authorizer");
        authorizer.issuer = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Other".into();
        authorizer.audiences = vec!["another-client".into()];
        let failed = only_failure(&judged(&stage, &api)).clone();
        assert_eq!(failed.id, "http.authorizer");
        assert!(
            failed
                .message
                .contains("issuer https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Other instead of the stage's"),
            "{}",
            failed.message
        );
        assert!(failed.message.contains("audiences another-client instead of"), "{}", failed.message);
        assert!(failed.fix.contains(&stage.jwt.issuer), "{failed:?}");
    }

    #[test]
    fn cors_without_the_stages_origin_or_a_method_a_route_needs_fails_and_an_extra_origin_warns() {
        let stage = stacks::stages::prod();
        let synthesized = synthesized(&stage);
        let origin = stage.cors.allowed_origins[0].clone();

        let mut api = healthy(&synthesized);
        api.cors.as_mut().expect("cors").allow_origins = vec!["https://elsewhere.example.org".into()];
        let checks = judged(&stage, &api);
        let failed = only_failure(&checks);
        assert_eq!(failed.id, "http.cors");
        assert!(
            failed.message.contains(&format!("pages from {origin} get no Access-Control-Allow-Origin")),
            "{}",
            failed.message
        );

        let mut api = healthy(&synthesized);
        api.cors.as_mut().expect("cors").allow_methods.retain(|method| method != "PATCH");
        let failed = only_failure(&judged(&stage, &api)).clone();
        assert_eq!(failed.id, "http.cors");
        assert!(failed.message.contains("PATCH"), "{}", failed.message);

        let mut api = healthy(&synthesized);
        api.cors = None;
        let failed = only_failure(&judged(&stage, &api)).clone();
        assert!(failed.message.starts_with("the API has no CORS configuration"), "{}", failed.message);

        let mut api = healthy(&synthesized);
        api.cors.as_mut().expect("cors").allow_origins.push("https://unlisted.example.org".into());
        let checks = judged(&stage, &api);
        assert!(failures(&checks).is_empty(), "{checks:#?}");
        let cors = checks.iter().find(|check| check.id == "http.cors").expect("http.cors");
        assert_eq!(cors.status, Status::Warn);
        assert!(
            cors.message.contains("https://unlisted.example.org") && cors.message.contains(stage.settings_file),
            "{}",
            cors.message
        );
    }

    #[test]
    fn no_api_fails_with_the_deploy_command() {
        let stage = stacks::stages::dev();
        let checks = judge(&stage, &synthesized(&stage), None, &physical());
        let failed = only_failure(&checks);
        assert_eq!(failed.id, "http.api");
        assert_eq!(failed.fix, "cargo xtask deploy --stage dev");
    }
}

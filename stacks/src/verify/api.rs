//! The APIs: routes against the route keys the code serves, `$connect` authorization, stage
//! deployments, API Gateway's permission to invoke the functions it integrates, and the HTTP
//! API's CORS configuration ([`cors`]).

mod cors;

use super::template::{
    self, API, AUTHORIZER, DEPLOYMENT, INTEGRATION, LAMBDA, LAMBDA_PERMISSION, ROUTE, STAGE, prop, refers_to,
};
use super::{FindingKind, Report, View};
use crate::{naming, service};
use contract::{CONNECT_ROUTE, DEFAULT_ROUTE, DISCONNECT_ROUTE, Function, HttpAuth};
use serde_json::Value;
use std::collections::BTreeSet;

/// One route of an API.
#[derive(Debug)]
struct Route<'a> {
    id: &'a str,
    /// The route key; `None` when the template's is not a string.
    key: Option<&'a str>,
    properties: &'a Value,
}

impl Route<'_> {
    fn key_text(&self) -> String {
        match self.key {
            Some(key) => key.to_owned(),
            None => prop(self.properties, "RouteKey").to_string(),
        }
    }
}

/// Checks both APIs; answers the authorizers attached to `$connect` of the WebSocket APIs.
pub(super) fn check(view: &View<'_>, report: &mut Report) -> Vec<String> {
    let attached = check_websocket(view, report);
    check_http(view, report);
    attached
}

/// The APIs of a protocol (`WEBSOCKET`, `HTTP`).
fn apis<'a>(view: &View<'a>, protocol: &str) -> Vec<&'a str> {
    view.resources
        .of_type(API)
        .filter(|(_, properties)| prop(properties, "ProtocolType").as_str() == Some(protocol))
        .map(|(id, _)| id)
        .collect()
}

/// The resources of a type that belong to `api` (their `ApiId` refers to it).
fn of_api<'a>(view: &View<'a>, kind: &'a str, api: &str) -> Vec<(&'a str, &'a Value)> {
    view.resources.of_type(kind).filter(|(_, properties)| refers_to(prop(properties, "ApiId"), api)).collect()
}

fn routes<'a>(view: &View<'a>, api: &str) -> Vec<Route<'a>> {
    of_api(view, ROUTE, api)
        .into_iter()
        .map(|(id, properties)| Route { id, key: prop(properties, "RouteKey").as_str(), properties })
        .collect()
}

/// The Lambda function a route reaches: `Target` → integration → `IntegrationUri`.
fn route_function<'a>(view: &View<'a>, route: &Route<'_>) -> Option<&'a str> {
    let integration = view.resources.referenced(Some(prop(route.properties, "Target")), INTEGRATION)?;
    integration_function(view, integration)
}

fn integration_function<'a>(view: &View<'a>, integration: &str) -> Option<&'a str> {
    view.resources.referenced(Some(prop(view.resources.properties(integration), "IntegrationUri")), LAMBDA)
}

fn check_websocket(view: &View<'_>, report: &mut Report) -> Vec<String> {
    let apis = apis(view, "WEBSOCKET");
    if apis.is_empty() {
        if view.contract.functions.iter().any(|function| !function.websocket_routes.is_empty()) {
            report.add(
                FindingKind::ApiMissing,
                API,
                "ProtocolType",
                "the template has no WebSocket API: nobody can connect, speak or listen",
            );
        }
        return Vec::new();
    }
    apis.into_iter().filter_map(|api| check_websocket_api(view, api, report)).collect()
}

fn check_websocket_api(view: &View<'_>, api: &str, report: &mut Report) -> Option<String> {
    check_route_selection(view, api, report);
    let routes = routes(view, api);
    check_websocket_routes(view, api, &routes, report);
    let attached = check_connect(view, &routes, report);
    check_websocket_stages(view, api, &routes, attached, report);
    let authorizer = attached.and_then(|authorizer| authorizer_function(view, authorizer));
    let invoked = authorizer.map(|function| (function, super::AUTHORIZER_OUTAGE.to_owned())).into_iter().collect();
    check_invoke_permissions(view, api, invoked, report);
    attached.map(str::to_owned)
}

/// A route for every route key the code serves, on its function, and no other route.
fn check_websocket_routes(view: &View<'_>, api: &str, routes: &[Route<'_>], report: &mut Report) {
    for function in view.contract.functions {
        for key in function.websocket_routes {
            match routes.iter().find(|route| route.key == Some(*key)) {
                None => {
                    report.add(FindingKind::RouteMissing, api, format!("route {key}"), missing_websocket_route(key))
                }
                Some(route) => check_route_target(view, route, function, &websocket_audience(key), report),
            }
        }
    }
    let unserved = |route: &&Route<'_>| route.key.is_none_or(|key| view.contract.websocket_route_owner(key).is_none());
    for route in routes.iter().filter(unserved) {
        let key = route.key_text();
        report.add(
            FindingKind::RouteUnserved,
            route.id,
            "RouteKey",
            format!(
                "a route whose code was removed: {} reach {}, which no longer serves {key}",
                websocket_audience(&key),
                view.describe(route_function(view, route))
            ),
        );
    }
}

fn check_route_selection(view: &View<'_>, api: &str, report: &mut Report) {
    let expected = view.contract.route_selection_expression;
    let actual = prop(view.resources.properties(api), "RouteSelectionExpression");
    if actual.as_str() != Some(expected) {
        report.add(
            FindingKind::RouteSelectionExpression,
            api,
            "RouteSelectionExpression",
            format!(
                "API Gateway selects routes by {} but the code dispatches on {expected}: action frames run $default \
                 or the wrong route",
                template::render(actual).unwrap_or_else(|| "nothing".to_owned())
            ),
        );
    }
}

/// Who sends a WebSocket route key, in words.
fn websocket_audience(key: &str) -> String {
    match key {
        CONNECT_ROUTE => "new connections".to_owned(),
        DISCONNECT_ROUTE => "closing connections".to_owned(),
        DEFAULT_ROUTE => "frames that match no action".to_owned(),
        action => format!("frames with action \"{action}\""),
    }
}

fn missing_websocket_route(key: &str) -> String {
    match key {
        CONNECT_ROUTE => "connections open without running the $connect function: no connection row is stored, so \
                          listeners never receive broadcasts and speaker tokens are never checked"
            .to_owned(),
        DISCONNECT_ROUTE => "closed connections are never cleaned up: their rows linger until the TTL and listener \
                             counts stay too high"
            .to_owned(),
        DEFAULT_ROUTE => "frames that match no action, and non-JSON frames, get an API Gateway error instead of \
                          the service's error reply"
            .to_owned(),
        action => format!(
            "no route serves it: frames with action \"{action}\" run $default instead (or get an API Gateway \
             error when $default is missing too)"
        ),
    }
}

/// Reports a route that reaches another function than `owner`.
fn check_route_target(view: &View<'_>, route: &Route<'_>, owner: &Function, audience: &str, report: &mut Report) {
    let expected = naming::function(owner.name);
    let actual = route_function(view, route);
    if actual != Some(expected.as_str()) {
        report.add(
            FindingKind::RouteWrongFunction,
            route.id,
            "Target",
            format!(
                "{audience} reach {} instead of `{}` ({expected}), so the code that serves {} never runs",
                view.describe(actual),
                owner.name,
                route.key_text()
            ),
        );
    }
}

/// The authorizer attached to a route: `AuthorizationType` `CUSTOM` and an `AuthorizerId`
/// that refers to an authorizer of the template.
fn attached_authorizer<'a>(view: &View<'a>, route: &Route<'_>) -> Option<&'a str> {
    let custom =
        prop(route.properties, "AuthorizationType").as_str().is_some_and(|kind| kind.eq_ignore_ascii_case("CUSTOM"));
    if !custom {
        return None;
    }
    view.resources.referenced(Some(prop(route.properties, "AuthorizerId")), AUTHORIZER)
}

/// The Lambda function an authorizer invokes.
fn authorizer_function<'a>(view: &View<'a>, authorizer: &str) -> Option<&'a str> {
    view.resources.referenced(Some(prop(view.resources.properties(authorizer), "AuthorizerUri")), LAMBDA)
}

/// Checks `$connect`'s authorization; answers the authorizer attached to it.
fn check_connect<'a>(view: &View<'a>, routes: &[Route<'a>], report: &mut Report) -> Option<&'a str> {
    let route = routes.iter().find(|route| route.key == Some(CONNECT_ROUTE))?;
    let authorization = prop(route.properties, "AuthorizationType").as_str().unwrap_or("NONE");
    if authorization.eq_ignore_ascii_case("AWS_IAM") {
        report.add(
            FindingKind::ConnectIdentitySource,
            route.id,
            "AuthorizationType",
            "$connect requires AWS_IAM signatures, which listeners cannot make: every listener is refused with 403 \
             before any function runs; browsers see close 1006",
        );
    }
    let attached = attached_authorizer(view, route);
    if let Some(authorizer) = attached {
        check_connect_authorizer(view, authorizer, report);
    }
    match (view.connect_auth.as_deref(), attached) {
        (Some("authorizer"), None) => report.add(
            FindingKind::AuthorizerMissing,
            route.id,
            if authorization.eq_ignore_ascii_case("CUSTOM") { "AuthorizerId" } else { "AuthorizationType" },
            "$connect has no authorizer, but the $connect function (CONNECT_AUTH=authorizer) trusts an authorizer \
             context that never arrives: speakers are checked only by its fallback, with a warning on every \
             connection, and the stage no longer runs its reviewed configuration",
        ),
        (Some("self"), Some(authorizer)) => report.add(
            FindingKind::AuthorizerUnexpected,
            route.id,
            "AuthorizerId",
            format!(
                "$connect runs {authorizer}, but the $connect function (CONNECT_AUTH=self) verifies tokens itself: \
                 every connection pays for a second check, and if that authorizer refuses or cannot run, clients get \
                 401 or 500; browsers see close 1006"
            ),
        ),
        _ => {}
    }
    attached
}

/// The authorizer attached to `$connect`: no identity source, REQUEST, the contract's function.
fn check_connect_authorizer(view: &View<'_>, authorizer: &str, report: &mut Report) {
    let properties = view.resources.properties(authorizer);
    let sources: Vec<String> =
        template::strings(prop(properties, "IdentitySource")).into_iter().filter(|source| !source.is_empty()).collect();
    if !sources.is_empty() {
        report.add(
            FindingKind::ConnectIdentitySource,
            authorizer,
            "IdentitySource",
            format!(
                "the $connect authorizer requires {}: listeners without a token are refused with 401 before any \
                 function runs; browsers see close 1006",
                sources.join(", ")
            ),
        );
    }
    let Some(expected) = view.contract.authorizer else {
        return;
    };
    let unread = unread_keys(view, expected.context_keys);
    let kind = prop(properties, "AuthorizerType").as_str();
    if kind != Some("REQUEST") {
        report.add(
            FindingKind::AuthorizerContextKeys,
            authorizer,
            "AuthorizerType",
            format!(
                "is {} instead of REQUEST: {unread}, so speakers are not identified by it",
                kind.unwrap_or("missing")
            ),
        );
    }
    let function = naming::function(expected.function);
    if !refers_to(prop(properties, "AuthorizerUri"), &function) {
        let actual = authorizer_function(view, authorizer);
        report.add(
            FindingKind::AuthorizerContextKeys,
            authorizer,
            "AuthorizerUri",
            format!(
                "invokes {} instead of `{}` ({function}): {unread}; connections get 500 when it does not answer as \
                 an authorizer (browsers see close 1006), and otherwise fall back to verifying tokens in $connect",
                view.describe(actual),
                expected.function
            ),
        );
    }
}

/// "it never emits the context keys a, b that `x` reads", naming the functions that read them.
fn unread_keys(view: &View<'_>, keys: &[&str]) -> String {
    let readers: Vec<String> = view
        .contract
        .functions
        .iter()
        .filter(|function| !function.reads_authorizer_context.is_empty())
        .map(|function| format!("`{}`", function.name))
        .collect();
    let readers = match readers.len() {
        0 => "the handlers read".to_owned(),
        1 => format!("{} reads", readers.join("")),
        _ => format!("{} read", readers.join(", ")),
    };
    format!("it never emits the context keys {} that {readers}", keys.join(", "))
}

/// Every stage of the WebSocket API serves the deployment of the current routes, integrations
/// and `$connect` authorizer, or auto-deploys.
fn check_websocket_stages(
    view: &View<'_>,
    api: &str,
    routes: &[Route<'_>],
    authorizer: Option<&str>,
    report: &mut Report,
) {
    let route_ids: BTreeSet<&str> = routes.iter().map(|route| route.id).collect();
    let fingerprint = deployment_fingerprint(view, api, &route_ids, authorizer);
    let stages = of_api(view, STAGE, api);
    if stages.is_empty() {
        report.add(
            FindingKind::StageStale,
            api,
            "Stage",
            "the API has no stage: there is no URL clients can connect to",
        );
    }
    for (stage, properties) in stages {
        if template::is_true(prop(properties, "AutoDeploy")) {
            continue;
        }
        match view.resources.referenced(Some(prop(properties, "DeploymentId")), DEPLOYMENT) {
            None => report.add(
                FindingKind::StageStale,
                stage,
                "DeploymentId",
                "serves no deployment of this template and does not auto-deploy: route or authorizer changes are \
                 not deployed; clients keep the old routes (AWS_FACTS 12)",
            ),
            Some(deployment) if !refers_to(prop(view.resources.properties(deployment), "ApiId"), api) => report.add(
                FindingKind::StageStale,
                deployment,
                "ApiId",
                format!("is not a deployment of {api}, yet {stage} serves it: clients never get the API's routes"),
            ),
            Some(deployment) if !deployment.ends_with(&fingerprint) => report.add(
                FindingKind::StageStale,
                stage,
                "DeploymentId",
                format!(
                    "serves {deployment}, but the API's settings, routes, integrations and authorizer now \
                     fingerprint as {fingerprint}: those changes are not deployed; clients keep the old routes \
                     (AWS_FACTS 12)"
                ),
            ),
            Some(deployment) => check_waits_for_routes(
                view,
                deployment,
                &route_ids,
                "the deployment may be taken before those routes exist, and clients never reach them",
                report,
            ),
        }
    }
}

/// The fingerprint the synthesizer gives the deployment of these routes, the API's
/// integrations and the `$connect` authorizer: [`service::fingerprint`] of their sorted
/// logical ids, over the template's own resources.
fn deployment_fingerprint(view: &View<'_>, api: &str, routes: &BTreeSet<&str>, authorizer: Option<&str>) -> String {
    let mut inputs: Vec<String> = routes.iter().map(|id| (*id).to_owned()).collect();
    inputs.extend(of_api(view, INTEGRATION, api).into_iter().map(|(id, _)| id.to_owned()));
    inputs.extend(authorizer.map(str::to_owned));
    inputs.sort();
    inputs.dedup();
    service::fingerprint(view.resources.section(), &inputs)
}

/// A deployment taken before a route exists does not contain it: whatever takes one (an
/// explicit deployment, an auto-deploying stage) must depend on every route; `consequence` says
/// what clients see otherwise.
fn check_waits_for_routes(
    view: &View<'_>,
    waiting: &str,
    routes: &BTreeSet<&str>,
    consequence: &str,
    report: &mut Report,
) {
    let waits_for = template::strings(view.resources.attribute(waiting, "DependsOn"));
    let missing: Vec<&str> = routes.iter().copied().filter(|route| !waits_for.iter().any(|id| id == route)).collect();
    if !missing.is_empty() {
        report.add(
            FindingKind::StageStale,
            waiting,
            "DependsOn",
            format!("does not wait for {}: {consequence}", missing.join(", ")),
        );
    }
}

/// API Gateway may invoke every function an integration of `api` reaches, and the `extra`
/// ones (the `$connect` authorizer's), each with the outage users see otherwise.
fn check_invoke_permissions(view: &View<'_>, api: &str, extra: Vec<(&str, String)>, report: &mut Report) {
    let mut targets: Vec<(&str, String)> = of_api(view, INTEGRATION, api)
        .into_iter()
        .filter_map(|(integration, _)| integration_function(view, integration))
        .map(|function| (function, view.outage_of(function)))
        .collect();
    targets.extend(extra);
    targets.sort();
    targets.dedup();
    for (function, outage) in targets {
        let permitted =
            view.resources.of_type(LAMBDA_PERMISSION).any(|(_, properties)| permits(properties, function, api));
        if !permitted {
            report.add(
                FindingKind::InvokePermissionMissing,
                function,
                format!("lambda:InvokeFunction from {api}"),
                format!("no AWS::Lambda::Permission lets API Gateway invoke it: {outage}"),
            );
        }
    }
}

/// Whether a `AWS::Lambda::Permission` lets API Gateway (`api`) invoke `function`.
fn permits(properties: &Value, function: &str, api: &str) -> bool {
    let text = |name: &str| template::render(prop(properties, name)).unwrap_or_default();
    let source = prop(properties, "SourceArn");
    let source_matches = source.is_null() || {
        let references = template::references(source);
        references.is_empty() || references.iter().any(|reference| reference.id == api)
    };
    refers_to(prop(properties, "FunctionName"), function)
        && text("Principal").starts_with("apigateway.")
        && template::glob_ignore_case(&text("Action"), "lambda:InvokeFunction")
        && source_matches
}

fn check_http(view: &View<'_>, report: &mut Report) {
    let apis = apis(view, "HTTP");
    if apis.is_empty() {
        if view.contract.functions.iter().any(|function| !function.http_routes.is_empty()) {
            report.add(
                FindingKind::ApiMissing,
                API,
                "ProtocolType",
                "the template has no HTTP API: speakers cannot create or manage sessions",
            );
        }
        return;
    }
    for api in apis {
        check_http_api(view, api, report);
    }
}

fn check_http_api(view: &View<'_>, api: &str, report: &mut Report) {
    let routes = routes(view, api);
    check_http_routes(view, api, &routes, report);
    cors::check(view, api, &routes, report);
    let route_ids: BTreeSet<&str> = routes.iter().map(|route| route.id).collect();
    check_http_stages(view, api, &route_ids, report);
    check_invoke_permissions(view, api, Vec::new(), report);
}

/// A route for every HTTP route the code serves, on its function and with its authorization,
/// and no other route.
fn check_http_routes(view: &View<'_>, api: &str, routes: &[Route<'_>], report: &mut Report) {
    let mut served = BTreeSet::new();
    for function in view.contract.functions {
        for http_route in function.http_routes {
            let key = http_route.route_key();
            match routes.iter().find(|route| route.key == Some(key.as_str())) {
                None => report.add(
                    FindingKind::RouteMissing,
                    api,
                    format!("route {key}"),
                    format!("no route serves it: requests to {key} get 404 Not Found"),
                ),
                Some(route) => {
                    check_route_target(view, route, function, &format!("requests to {key}"), report);
                    check_http_authorization(view, route, &key, http_route.auth, report);
                }
            }
            served.insert(key);
        }
    }
    for route in routes.iter().filter(|route| route.key.is_none_or(|key| !served.contains(key))) {
        report.add(
            FindingKind::RouteUnserved,
            route.id,
            "RouteKey",
            format!(
                "a route whose code was removed: requests to {} reach {}, which no longer serves them",
                route.key_text(),
                view.describe(route_function(view, route))
            ),
        );
    }
}

/// The HTTP API has a stage, and each auto-deploys or serves a deployment; an auto-deploying
/// stage waits for every route (its first deployment is made when the stage is created).
fn check_http_stages(view: &View<'_>, api: &str, routes: &BTreeSet<&str>, report: &mut Report) {
    let stages = of_api(view, STAGE, api);
    if stages.is_empty() {
        report.add(FindingKind::StageStale, api, "Stage", "the API has no stage: there is no URL speakers can call");
    }
    for (stage, properties) in stages {
        let auto_deploys = template::is_true(prop(properties, "AutoDeploy"));
        if auto_deploys {
            check_waits_for_routes(
                view,
                stage,
                routes,
                "its automatic deployment may be made before those routes exist, silently without them: \
                 speakers get 404 Not Found until the next change redeploys",
                report,
            );
        }
        let deployed =
            auto_deploys || view.resources.referenced(Some(prop(properties, "DeploymentId")), DEPLOYMENT).is_some();
        if !deployed {
            report.add(
                FindingKind::StageStale,
                stage,
                "AutoDeploy",
                "neither auto-deploys nor serves a deployment of this template: route changes never reach clients",
            );
        }
    }
}

/// An HTTP route is behind a JWT authorizer exactly when the code expects it.
fn check_http_authorization(view: &View<'_>, route: &Route<'_>, key: &str, auth: HttpAuth, report: &mut Report) {
    let kind = prop(route.properties, "AuthorizationType").as_str().unwrap_or("NONE");
    let jwt_authorizer = view
        .resources
        .referenced(Some(prop(route.properties, "AuthorizerId")), AUTHORIZER)
        .is_some_and(|id| prop(view.resources.properties(id), "AuthorizerType").as_str() == Some("JWT"));
    match auth {
        HttpAuth::Jwt if !(kind == "JWT" && jwt_authorizer) => report.add(
            FindingKind::RouteAuthorization,
            route.id,
            "AuthorizationType",
            format!(
                "{key} is not behind the JWT authorizer: the function finds no token claims and refuses every call \
                 with 401, even with a valid token"
            ),
        ),
        HttpAuth::None if !kind.eq_ignore_ascii_case("NONE") => report.add(
            FindingKind::RouteAuthorization,
            route.id,
            "AuthorizationType",
            format!("{key} requires {kind} authorization: callers without a bearer token get 401 from API Gateway"),
        ),
        _ => {}
    }
}

impl View<'_> {
    /// What users see when the Lambda function `logical_id` cannot be invoked.
    fn outage_of(&self, logical_id: &str) -> String {
        match self.contract_function(logical_id) {
            Some(function) => self.outage(function),
            None => "the routes it serves answer with 500".to_owned(),
        }
    }
}

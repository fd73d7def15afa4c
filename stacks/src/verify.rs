//! The contract verifier: any template JSON in, every contradiction with the contract out.
//!
//! The template may be freshly synthesized, fetched from a deployed stack (GetTemplate), or
//! edited by hand, so nothing about its shape is assumed: resources are found by `Type` and by
//! the references between them (`Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::Join`), a missing or
//! malformed property is a finding rather than a crash, and the verifier never panics. The
//! only logical ids it knows in advance are the contract's own (each function's, through
//! [`naming::function`], and each table's `logical_id`).
//!
//! What is checked, and why (each [`Finding`] names the resource, the property, and what a
//! user would see):
//!
//! - the WebSocket API: its route selection expression; a route for every route key the code
//!   serves, each reaching the function that serves it, and no route whose code is gone;
//! - `$connect`: no identity source and no IAM authorization (either refuses tokenless
//!   listeners before any code runs, AWS_FACTS 2 and 3); an authorizer exactly when the
//!   connection function's `CONNECT_AUTH` says so; and that authorizer a REQUEST authorizer
//!   invoking the contract's authorizer function, whose context keys the handlers read;
//! - the stages: each serves a deployment of the current API settings, routes, integrations and authorizer
//!   (the deployment's logical id ends with their fingerprint, recomputed here), or
//!   auto-deploys (AWS_FACTS 12); an auto-deploying HTTP stage waits for every route;
//! - the HTTP API: a route per HTTP route of the code, on the right function, behind the JWT
//!   authorizer exactly when the code expects it; and, when it has a CORS configuration, one
//!   that lets browsers call every route (methods, the token and body headers, preflights not
//!   caught by an authorized route);
//! - API Gateway's permission to invoke each function it integrates;
//! - the functions that check speaker tokens themselves: the issuer and audiences of the HTTP
//!   API's JWT authorizer, so every path accepts the same tokens;
//! - every function: present, with every environment variable it reads, pointing at the right
//!   table or stream, `MANAGEMENT_ENDPOINT` in `https` (AWS_FACTS 8), and a role allowing every
//!   action it calls on the right resource, without wildcards;
//! - every table: key schema, key attribute types, indexes and TTL, as the store queries them;
//! - every stage that logs access: JSON lines with every field that tells a request refused
//!   before any function runs apart (the authorizer's and the integration's errors among them),
//!   to a destination;
//! - the contract itself: every authorizer context key a handler reads is one the authorizer
//!   emits, and the authorizer requires no identity source.
//!
//! Limits, on purpose: a role's permissions are read from its inline policies and from the
//! template's `AWS::IAM::Policy`, `ManagedPolicy` and `RolePolicy` resources attached to it
//! (not from managed policies by ARN, nor permission boundaries), and ARNs are compared as
//! `Fn::Sub` text with IAM wildcards, so an equivalent ARN spelled differently (a literal ARN,
//! or `table/${SessionsTable}`) is reported as missing rather than guessed at.

mod access_logs;
mod api;
mod functions;
mod jwt;
mod tables;
pub mod template;

use crate::naming;
use contract::{CONNECT_ROUTE, Contract, Function};
use serde::Serialize;
use serde_json::Value;
use template::Resources;

/// One contradiction between a template and the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// The resource at fault (or, when a resource is missing, the one that should hold it).
    pub logical_id: String,
    /// The property at fault, as a path inside the resource.
    pub property: String,
    /// What is wrong and what a user would see because of it.
    pub consequence: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} — {}", self.logical_id, self.property, self.consequence)
    }
}

/// The kinds of contradiction, most severe first (findings are sorted by kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum FindingKind {
    /// `$connect` refuses tokenless listeners before any code runs: the authorizer has an
    /// identity source, or the route uses IAM authorization.
    ConnectIdentitySource,
    /// `CONNECT_AUTH=authorizer` but `$connect` has no authorizer.
    AuthorizerMissing,
    /// `CONNECT_AUTH=self` but `$connect` has an authorizer.
    AuthorizerUnexpected,
    /// The `$connect` authorizer does not emit the context keys the handlers read.
    AuthorizerContextKeys,
    /// The WebSocket API selects routes by another expression than the code dispatches on.
    RouteSelectionExpression,
    /// The template has no WebSocket (or HTTP) API at all.
    ApiMissing,
    /// A route key the code serves has no route.
    RouteMissing,
    /// A route reaches another function than the one serving it.
    RouteWrongFunction,
    /// A route whose key no function serves.
    RouteUnserved,
    /// An HTTP route is (or is not) behind the JWT authorizer, against the code.
    RouteAuthorization,
    /// The HTTP API's CORS configuration makes browsers refuse a route's cross-origin requests.
    CorsRefused,
    /// API Gateway has no permission to invoke a function it integrates.
    InvokePermissionMissing,
    /// A function of the contract is not in the template.
    FunctionMissing,
    /// A function lacks an environment variable it reads.
    EnvironmentMissing,
    /// An environment variable points at the wrong resource or has an invalid value.
    EnvironmentValue,
    /// A function checks speaker tokens against another issuer or other audiences than the HTTP
    /// API's JWT authorizer.
    JwtSettingsDiffer,
    /// `MANAGEMENT_ENDPOINT` is not an `https://` URL.
    ManagementEndpointNotHttps,
    /// A function's role does not allow an action the function calls.
    RoleMissingAction,
    /// A function's role allows every action of a service, or every resource.
    RoleWildcard,
    /// A table's keys, attribute types, indexes or TTL differ from the store's.
    TableSchema,
    /// A stage serves a deployment older than its routes and authorizer.
    StageStale,
    /// A stage's access log leaves out what tells requests refused before any function runs
    /// apart, or has no destination.
    AccessLogIncomplete,
}

/// Every contradiction between `template` and `contract`, sorted by kind, logical id and
/// property; empty when the template is what the code expects.
pub fn verify(template: &Value, contract: &Contract) -> Vec<Finding> {
    let view = View::new(template, contract);
    let mut report = Report::default();
    let connect_authorizers = api::check(&view, &mut report);
    functions::check(&view, &connect_authorizers, &mut report);
    jwt::check(&view, &mut report);
    tables::check(&view, &mut report);
    access_logs::check(&view, &mut report);
    check_contract(contract, &mut report);
    let mut findings = report.findings;
    findings.sort_by(|a, b| (a.kind, &a.logical_id, &a.property).cmp(&(b.kind, &b.logical_id, &b.property)));
    findings.dedup();
    findings
}

/// The template and the contract, with what several checks need to know.
#[derive(Debug)]
struct View<'a> {
    resources: Resources<'a>,
    contract: &'a Contract,
    /// The literal `CONNECT_AUTH` of the function serving `$connect`, when the template sets one.
    connect_auth: Option<String>,
}

impl<'a> View<'a> {
    fn new(template: &'a Value, contract: &'a Contract) -> View<'a> {
        let resources = Resources::of(template);
        let connect_auth = contract.websocket_route_owner(CONNECT_ROUTE).and_then(|owner| {
            let variables = environment(&resources, &naming::function(owner.name))?;
            template::render(variables.get(contract::env::CONNECT_AUTH)?)
        });
        View { resources, contract, connect_auth }
    }

    /// The contract function deployed as the Lambda function `logical_id`.
    fn contract_function(&self, logical_id: &str) -> Option<&'static Function> {
        self.contract.functions.iter().find(|function| naming::function(function.name) == logical_id)
    }

    /// The contract's authorizer function, if the contract has an authorizer.
    fn authorizer_function(&self) -> Option<&'static str> {
        self.contract.authorizer.map(|authorizer| authorizer.function)
    }

    /// How a Lambda function is named in findings: its contract name when it has one.
    fn describe(&self, logical_id: Option<&str>) -> String {
        match logical_id {
            None => "no function".to_owned(),
            Some(id) => match self.contract_function(id) {
                Some(function) => format!("`{}` ({id})", function.name),
                None => id.to_owned(),
            },
        }
    }

    /// What users see when `function` cannot run at all.
    fn outage(&self, function: &Function) -> String {
        outage(self.contract, function)
    }
}

/// What users see when `function` of `contract` cannot run at all (it is missing, fails to
/// start, or API Gateway may not invoke it).
pub fn outage(contract: &Contract, function: &Function) -> String {
    if contract.authorizer.map(|authorizer| authorizer.function) == Some(function.name) {
        AUTHORIZER_OUTAGE.to_owned()
    } else if function.websocket_routes.contains(&CONNECT_ROUTE) {
        "every connection is refused with 500; browsers see close 1006".to_owned()
    } else if !function.websocket_routes.is_empty() {
        "every frame it serves gets \"Internal server error\" and no reply".to_owned()
    } else if !function.http_routes.is_empty() {
        "every request to its HTTP routes gets 500".to_owned()
    } else {
        "every invocation fails".to_owned()
    }
}

/// What users see when the `$connect` authorizer cannot run.
const AUTHORIZER_OUTAGE: &str = "every connection is refused with 500 before $connect runs; browsers see close 1006";

/// The `Environment.Variables` of a resource, when it is an object.
fn environment<'a>(resources: &Resources<'a>, logical_id: &str) -> Option<&'a serde_json::Map<String, Value>> {
    template::prop(template::prop(resources.properties(logical_id), "Environment"), "Variables").as_object()
}

/// The findings collected so far.
#[derive(Debug, Default)]
struct Report {
    findings: Vec<Finding>,
}

impl Report {
    fn add(
        &mut self,
        kind: FindingKind,
        logical_id: impl Into<String>,
        property: impl Into<String>,
        consequence: impl Into<String>,
    ) {
        self.findings.push(Finding {
            kind,
            logical_id: logical_id.into(),
            property: property.into(),
            consequence: consequence.into(),
        });
    }
}

/// The contract's own consistency: what the handlers read from the authorizer, it emits, and
/// it never requires an identity source.
fn check_contract(contract: &Contract, report: &mut Report) {
    let emitted = contract.authorizer.map(|authorizer| authorizer.context_keys).unwrap_or_default();
    for function in contract.functions {
        for key in function.reads_authorizer_context.iter().filter(|key| !emitted.contains(key)) {
            report.add(
                FindingKind::AuthorizerContextKeys,
                naming::function(function.name),
                format!("requestContext.authorizer.{key}"),
                format!(
                    "`{}` reads the authorizer context key {key}, which the contract's authorizer never emits: \
                     it never identifies a caller through it",
                    function.name
                ),
            );
        }
    }
    if let Some(authorizer) = contract.authorizer.filter(|authorizer| !authorizer.identity_sources.is_empty()) {
        report.add(
            FindingKind::ConnectIdentitySource,
            naming::function(authorizer.function),
            "identity_sources",
            format!(
                "the contract requires {}: listeners without a token are refused with 401 before any function runs; \
                 browsers see close 1006",
                authorizer.identity_sources.join(", ")
            ),
        );
    }
}

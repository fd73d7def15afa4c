//! The HTTP API's CORS configuration against its routes: what a page in a browser can call.
//!
//! With a `CorsConfiguration`, API Gateway answers preflight `OPTIONS` requests itself, before
//! any route and its authorizer ("Configure CORS for HTTP APIs in API Gateway"), listing the
//! configured methods and headers; the browser then sends the request only if they cover it.
//! So, when the API has one:
//!
//! - its `AllowMethods` covers the method of every route (else browsers refuse that route's
//!   cross-origin requests after the preflight);
//! - its `AllowHeaders` covers `Authorization` when a route is behind the JWT authorizer, and
//!   `Content-Type` when a route takes a body (a JSON body's type needs a preflight);
//! - no route catches preflights with an authorizer: a `$default`, `ANY` or `OPTIONS` route
//!   requiring authorization receives the `OPTIONS` requests (the guide: "The `$default` route
//!   catches requests for all methods and routes that you haven't explicitly defined, including
//!   `OPTIONS` requests"), and a preflight carries no token, so it gets 401; unless an
//!   `OPTIONS /{proxy+}` route without authorization is there to take them first.
//!
//! An API without `CorsConfiguration` is not checked: it serves no browser page on another
//! origin, which is a stage's choice rather than a contradiction with the code.

use super::super::template::{prop, strings};
use super::super::{FindingKind, Report, View};
use super::Route;
use crate::service::TOKEN_HEADER;

/// Checks the CORS configuration of the HTTP API `api` against its `routes`.
pub(super) fn check(view: &View<'_>, api: &str, routes: &[Route<'_>], report: &mut Report) {
    let cors = prop(view.resources.properties(api), "CorsConfiguration");
    if cors.is_null() {
        return;
    }
    let methods = strings(prop(cors, "AllowMethods"));
    let headers = strings(prop(cors, "AllowHeaders"));
    let allows =
        |list: &[String], wanted: &str| list.iter().any(|item| item == "*" || item.eq_ignore_ascii_case(wanted));
    let keyed = || routes.iter().filter_map(|route| Some((route, route.key?.split_once(' ')?)));
    for (route, (method, path)) in keyed() {
        let key = format!("{method} {path}");
        // `ANY` covers what is allowed; `OPTIONS` routes answer what preflights leave to them.
        if !matches!(method, "ANY" | "OPTIONS") && !allows(&methods, method) {
            report.add(
                FindingKind::CorsRefused,
                api,
                "CorsConfiguration.AllowMethods",
                format!(
                    "{method} is not allowed: browsers refuse every cross-origin {key} after the preflight, \
                     though the route serves it"
                ),
            );
        }
        if requires_authorization(route) && !allows(&headers, TOKEN_HEADER) {
            report.add(
                FindingKind::CorsRefused,
                api,
                "CorsConfiguration.AllowHeaders",
                format!(
                    "{TOKEN_HEADER} is not allowed: browsers refuse to send a token to {key} from a page of \
                     another origin, so speakers' pages cannot call it"
                ),
            );
        }
        if matches!(method, "POST" | "PUT" | "PATCH") && !allows(&headers, "Content-Type") {
            report.add(
                FindingKind::CorsRefused,
                api,
                "CorsConfiguration.AllowHeaders",
                format!(
                    "Content-Type is not allowed: browsers refuse to send {key} a JSON body from a page of \
                     another origin"
                ),
            );
        }
    }
    let preflights_answered_openly = keyed()
        .any(|(route, (method, path))| method == "OPTIONS" && path == "/{proxy+}" && !requires_authorization(route));
    if preflights_answered_openly {
        return;
    }
    for route in routes.iter().filter(|route| catches_preflights(route) && requires_authorization(route)) {
        report.add(
            FindingKind::CorsRefused,
            route.id,
            "AuthorizationType",
            format!(
                "{} requires authorization and receives the preflight OPTIONS requests, which carry no token: \
                 they get 401 and browsers refuse every cross-origin request it covers (add an OPTIONS \
                 /{{proxy+}} route without authorization)",
                route.key_text()
            ),
        );
    }
}

/// Whether a route requires any authorization.
fn requires_authorization(route: &Route<'_>) -> bool {
    !prop(route.properties, "AuthorizationType").as_str().unwrap_or("NONE").eq_ignore_ascii_case("NONE")
}

/// Whether a route receives `OPTIONS` requests: `$default`, or a route for `ANY` or `OPTIONS`.
fn catches_preflights(route: &Route<'_>) -> bool {
    match route.key {
        Some("$default") => true,
        Some(key) => key.split_once(' ').is_some_and(|(method, _)| matches!(method, "ANY" | "OPTIONS")),
        None => false,
    }
}

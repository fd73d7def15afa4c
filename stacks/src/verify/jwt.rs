//! One set of accepted speaker tokens: every function that checks tokens itself (the `$connect`
//! authorizer, `connection` with `CONNECT_AUTH=self`) is configured with the issuer and
//! audiences of the HTTP API's JWT authorizer.
//!
//! The functions apply API Gateway's own rules (`session_core::jwt`), so with the same issuer,
//! audiences and keys they accept exactly the tokens `POST /sessions` accepts. With others, a
//! speaker whose session was just created over HTTP is refused on `$connect` (or the reverse).
//! Where the keys come from (`JWKS_SOURCE`) is checked in the stage files instead (on the
//! issuer's host): a template run locally points it at the local identity provider.

use super::template::{AUTHORIZER, prop, render, strings};
use super::{FindingKind, Report, View, environment};
use crate::naming;
use contract::{EnvSource, env};
use std::collections::BTreeSet;

/// What the refusal looks like to a speaker.
const SPLIT: &str = "a speaker whose token the HTTP API accepts (and who just created a session with it) is \
                     refused on $connect with 401, browsers seeing close 1006, or a token the HTTP API refuses \
                     connects";

pub(super) fn check(view: &View<'_>, report: &mut Report) {
    let jwt_authorizers: Vec<(&str, String, BTreeSet<String>)> = view
        .resources
        .of_type(AUTHORIZER)
        .filter(|(_, properties)| prop(properties, "AuthorizerType").as_str() == Some("JWT"))
        .filter_map(|(id, properties)| {
            let configuration = prop(properties, "JwtConfiguration");
            let issuer = render(prop(configuration, "Issuer"))?;
            Some((id, issuer, strings(prop(configuration, "Audience")).into_iter().collect()))
        })
        .collect();
    for function in view.contract.functions {
        let reads_issuer = function
            .environment
            .iter()
            .any(|var| var.name == env::JWT_ISSUER && var.source == EnvSource::StageSetting(env::JWT_ISSUER));
        if !reads_issuer {
            continue;
        }
        let id = naming::function(function.name);
        let Some(variables) = environment(&view.resources, &id) else {
            continue;
        };
        let value = |name: &str| variables.get(name).and_then(render);
        let issuer = value(env::JWT_ISSUER);
        let audiences: Option<BTreeSet<String>> = value(env::JWT_AUDIENCE).map(|list| {
            list.split(env::LIST_SEPARATOR)
                .map(str::trim)
                .filter(|audience| !audience.is_empty())
                .map(str::to_owned)
                .collect()
        });
        for (authorizer, http_issuer, http_audiences) in &jwt_authorizers {
            if let Some(issuer) = issuer.as_deref().filter(|issuer| issuer != http_issuer) {
                report.add(
                    FindingKind::JwtSettingsDiffer,
                    &id,
                    format!("Environment.Variables.{}", env::JWT_ISSUER),
                    format!(
                        "`{}` trusts tokens of {issuer}, the HTTP API's JWT authorizer ({authorizer}) those of \
                         {http_issuer}: {SPLIT}",
                        function.name
                    ),
                );
            }
            if let Some(audiences) = audiences.as_ref().filter(|audiences| *audiences != http_audiences) {
                report.add(
                    FindingKind::JwtSettingsDiffer,
                    &id,
                    format!("Environment.Variables.{}", env::JWT_AUDIENCE),
                    format!(
                        "`{}` accepts the app clients {}, the HTTP API's JWT authorizer ({authorizer}) {}: {SPLIT}",
                        function.name,
                        listed(audiences),
                        listed(http_audiences)
                    ),
                );
            }
        }
    }
}

fn listed(audiences: &BTreeSet<String>) -> String {
    if audiences.is_empty() { "(none)".to_owned() } else { audiences.iter().cloned().collect::<Vec<_>>().join(", ") }
}

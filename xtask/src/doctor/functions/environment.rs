//! `functions.<name>.environment`: every variable the contract declares for the function is
//! set, and its value is checked where the contract knows it: a table name must be the
//! stack's table, `AUDIO_STREAM` the stack's stream, `MANAGEMENT_ENDPOINT` the `https://`
//! @connections endpoint of this API and stage (without a live API, at least of this region
//! and stage), a stage setting the template's literal. A wrong value that hurts clients (a
//! table, the stream, the endpoint, who may speak) fails; another stage setting only warns.
//! The fix is the whole corrected environment, as `update-function-configuration` takes it.

use super::{Check, Expected, GROUP, LiveFunction, region_of};
use crate::doctor::live::url_suffix;
use contract::{EnvSource, EnvVar, Function, env};
use serde_json::json;
use stacks::naming;
use stacks::template;

/// One thing wrong with a function's environment.
#[derive(Debug)]
struct Problem {
    /// What is wrong and what clients see.
    message: String,
    /// Whether clients are hurt (a failure), rather than a setting drifting (a warning).
    breaks_clients: bool,
    /// The right value, when it is known.
    right: Option<String>,
}

/// Settings that decide who may speak: a wrong value refuses speakers or accepts strangers.
const AUTH_SETTINGS: [&str; 4] = [env::CONNECT_AUTH, env::JWT_ISSUER, env::JWT_AUDIENCE, env::JWKS_SOURCE];

/// `https://{api}.execute-api.{region}.{suffix}/{stage}` of the live WebSocket API.
fn management_endpoint(expected: &Expected<'_>, region: &str) -> Option<String> {
    let api = expected.websocket_api.as_ref().ok()?.as_ref()?;
    Some(format!("https://{api}.execute-api.{region}.{}/{}", url_suffix(region), expected.stage.name))
}

/// Whether `url` is `https://{api id}.execute-api.{region}.{suffix}/{stage}` for some API id.
fn is_management_endpoint(url: &str, region: &str, stage: &str) -> bool {
    let Some((host, path)) = url.strip_prefix("https://").and_then(|rest| rest.split_once('/')) else {
        return false;
    };
    let Some(api) = host.strip_suffix(&format!(".execute-api.{region}.{}", url_suffix(region))) else {
        return false;
    };
    !api.is_empty() && api.chars().all(|c| c.is_ascii_alphanumeric()) && path.trim_end_matches('/') == stage
}

/// What is wrong with the value `var` is set to, if anything.
fn value_problem(
    expected: &Expected<'_>,
    function: &Function,
    var: &EnvVar,
    value: &str,
    region: &str,
) -> Option<Problem> {
    let name = var.name;
    match var.source {
        EnvSource::TableName(table) => {
            let schema = contract::CONTRACT.tables.iter().find(|schema| schema.id == table)?;
            let physical = expected.physical.get(schema.logical_id)?;
            (value != physical).then(|| Problem {
                message: format!(
                    "{name} is {value}, not this stack's {} ({physical}): `{}` reads and writes another table, so its \
                     requests fail (ResourceNotFoundException, AccessDenied) or see another stage's data",
                    schema.logical_id, function.name
                ),
                breaks_clients: true,
                right: Some(physical.clone()),
            })
        }
        EnvSource::StreamName(_) => {
            let declared = &expected.properties(&naming::function(function.name))["Environment"]["Variables"][name];
            let stream = template::references(declared).into_iter().next()?;
            let physical = expected.physical.get(&stream.id)?;
            (value != physical).then(|| Problem {
                message: format!(
                    "{name} is {value}, not this stack's {} ({physical}): speakers' audio chunks go to another stream \
                     or are refused, so listeners hear nothing",
                    stream.id
                ),
                breaks_clients: true,
                right: Some(physical.clone()),
            })
        }
        EnvSource::ManagementEndpoint => {
            let right = management_endpoint(expected, region);
            if !value.starts_with("https://") {
                return Some(Problem {
                    message: format!(
                        "{name} is {value}, not an https:// URL: @connections calls fail: listeners never receive \
                         audio/controls, and no client gets a reply"
                    ),
                    breaks_clients: true,
                    right,
                });
            }
            let Some(right) = right else {
                // No live API to name: at least the shape of this region's and stage's endpoints.
                return (!is_management_endpoint(value, region, &expected.stage.name)).then(|| Problem {
                    message: format!(
                        "{name} is {value}, not the @connections endpoint of an API of this region and stage \
                         (https://{{api id}}.execute-api.{region}.{}/{}): @connections calls fail: listeners never \
                         receive audio/controls, and no client gets a reply",
                        url_suffix(region),
                        expected.stage.name
                    ),
                    breaks_clients: true,
                    right: None,
                });
            };
            (value.trim_end_matches('/') != right).then(|| Problem {
                message: format!(
                    "{name} is {value}, not this API and stage ({right}): @connections calls go to another API or \
                     stage and fail (GoneException, Forbidden): listeners never receive audio/controls, and no \
                     client gets a reply"
                ),
                breaks_clients: true,
                right: Some(right),
            })
        }
        EnvSource::StageSetting(_) => {
            let declared =
                expected.properties(&naming::function(function.name))["Environment"]["Variables"][name].as_str()?;
            if value == declared {
                return None;
            }
            let breaks_clients = AUTH_SETTINGS.contains(&name);
            let meaning = if name == env::CONNECT_AUTH {
                "`$connect` and the stage's authorizer disagree on who verifies speaker tokens: speakers are refused, \
                 or connect unverified"
                    .to_owned()
            } else if breaks_clients {
                "speaker tokens are checked against another issuer, audience or key set than the stage's: valid \
                 speakers are refused (close 1006, or 401 from the HTTP API), or other tokens accepted"
                    .to_owned()
            } else {
                format!("`{}` runs with another limit than the stage declares", function.name)
            };
            Some(Problem {
                message: format!("{name} is {value}, the stage declares {declared}: {meaning}"),
                breaks_clients,
                right: Some(declared.to_owned()),
            })
        }
    }
}

/// `functions.<name>.environment`: every variable the contract declares, with its value where
/// the contract knows it.
pub(super) fn check(expected: &Expected<'_>, function: &Function, live: &LiveFunction) -> Check {
    let id = format!("functions.{}.environment", function.name);
    let name = &live.function_name;
    let region = region_of(expected, live);
    let outage = stacks::verify::outage(&contract::CONTRACT, function);
    if let Some(error) = &live.environment.error {
        return Check::fail(
            GROUP,
            id,
            format!(
                "Lambda cannot apply {name}'s environment ({}: {}): the function cannot start, so {outage}",
                error.error_code, error.message
            ),
            format!(
                "fix the cause (usually the function's KMS key or its role's access to it), then {}",
                expected.deploy()
            ),
        );
    }
    let variables = &live.environment.variables;
    let mut problems: Vec<(&str, Problem)> = Vec::new();
    for var in function.environment {
        let problem = match variables.get(var.name) {
            None => Some(Problem {
                message: format!("{} is not set: the cold start of `{}` fails, so {outage}", var.name, function.name),
                breaks_clients: true,
                right: right_value(expected, function, var, &region),
            }),
            Some(value) => value_problem(expected, function, var, value, &region),
        };
        problems.extend(problem.map(|problem| (var.name, problem)));
    }
    if problems.is_empty() {
        let endpoint = variables.get(env::MANAGEMENT_ENDPOINT).map(|url| format!(", MANAGEMENT_ENDPOINT {url}"));
        let unread = match &expected.websocket_api {
            Err(unreadable) => {
                format!(" (the WebSocket API could not be read, {}: its id is not compared)", unreadable.call)
            }
            Ok(None) if endpoint.is_some() => {
                " (no live WebSocket API to compare MANAGEMENT_ENDPOINT's id with)".to_owned()
            }
            Ok(_) => String::new(),
        };
        return Check::pass(
            GROUP,
            id,
            format!(
                "the {} the contract declares, with this stack's resources{}{unread}",
                match function.environment.len() {
                    1 => "1 variable".to_owned(),
                    count => format!("{count} variables"),
                },
                endpoint.unwrap_or_default()
            ),
        );
    }
    let message = problems.iter().map(|(_, problem)| problem.message.as_str()).collect::<Vec<_>>().join("; ");
    let corrections: Option<Vec<(&str, &String)>> =
        problems.iter().map(|(name, problem)| problem.right.as_ref().map(|right| (*name, right))).collect();
    let fix = match corrections {
        Some(corrections) => {
            let mut corrected = variables.clone();
            for (name, right) in corrections {
                corrected.insert(name.to_owned(), right.clone());
            }
            // `update-function-configuration` replaces the whole environment: every variable is given.
            let document = json!({ "Variables": corrected }).to_string().replace('\'', "'\\''");
            expected.deploy_or_live(&format!(
                "aws lambda update-function-configuration --function-name {name} --region {region} --environment '{document}'"
            ))
        }
        None => expected.deploy(),
    };
    let breaks_clients = problems.iter().any(|(_, problem)| problem.breaks_clients);
    if breaks_clients { Check::fail(GROUP, id, message, fix) } else { Check::warn(GROUP, id, message, fix) }
}

/// The value `var` must have, when the contract and the stack say it.
fn right_value(expected: &Expected<'_>, function: &Function, var: &EnvVar, region: &str) -> Option<String> {
    match var.source {
        EnvSource::TableName(table) => {
            let schema = contract::CONTRACT.tables.iter().find(|schema| schema.id == table)?;
            expected.physical.get(schema.logical_id).cloned()
        }
        EnvSource::ManagementEndpoint => management_endpoint(expected, region),
        EnvSource::StreamName(_) | EnvSource::StageSetting(_) => {
            let declared = &expected.properties(&naming::function(function.name))["Environment"]["Variables"][var.name];
            match declared.as_str() {
                Some(literal) => Some(literal.to_owned()),
                None => expected.physical.get(&template::references(declared).into_iter().next()?.id).cloned(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;
    use crate::doctor::functions::fixtures::{
        API, Synthesized, healthy, judged_with_healthy_policy, only_failure, physical_name,
    };

    #[test]
    fn a_wss_or_foreign_management_endpoint_a_missing_variable_and_a_wrong_table_fail() {
        let dev = Synthesized::dev();
        let expected = dev.expected();
        let function = &contract::functions::MESSAGES;
        let right = format!("https://{API}.execute-api.eu-west-1.amazonaws.com/dev");

        let mut live = healthy(&expected, function);
        live.environment.variables.insert(env::MANAGEMENT_ENDPOINT.into(), right.replace("https://", "wss://"));
        let checks = judged_with_healthy_policy(&expected, function, &live);
        let check = only_failure(&checks, "functions.messages.environment");
        assert!(check.message.contains("not an https:// URL"), "{}", check.message);
        assert!(check.message.contains("@connections calls fail: listeners never receive audio/controls"));
        assert!(check.fix.contains(&format!("\"MANAGEMENT_ENDPOINT\":\"{right}\"")), "{}", check.fix);
        assert!(check.fix.contains("aws lambda update-function-configuration"), "{}", check.fix);

        live.environment.variables.insert(env::MANAGEMENT_ENDPOINT.into(), right.replace(API, "otherapi99"));
        let checks = judged_with_healthy_policy(&expected, function, &live);
        assert!(only_failure(&checks, "functions.messages.environment").message.contains("not this API and stage"));

        // Without a live API to name, the endpoint's shape is still judged (moto leaves `${WebSocketApi}` in it).
        let unknown = Expected { websocket_api: Ok(None), ..dev.expected() };
        live.environment.variables.insert(
            env::MANAGEMENT_ENDPOINT.into(),
            "https://${WebSocketApi}.execute-api.eu-west-1.amazonaws.com/dev".into(),
        );
        let check = super::check(&unknown, function, &live);
        assert_eq!(check.status, Status::Fail, "{check:?}");
        assert!(check.message.contains("not the @connections endpoint of an API of this region and stage"));
        live.environment.variables.insert(env::MANAGEMENT_ENDPOINT.into(), right.clone());
        assert_eq!(super::check(&unknown, function, &live).status, Status::Pass);

        let mut live = healthy(&expected, function);
        live.environment.variables.remove(env::AUDIO_STREAM);
        live.environment.variables.insert(env::SESSIONS_TABLE.into(), "session-service-prod-SessionsTable-X".into());
        let checks = judged_with_healthy_policy(&expected, function, &live);
        let check = only_failure(&checks, "functions.messages.environment");
        assert!(
            check.message.contains("AUDIO_STREAM is not set: the cold start of `messages` fails"),
            "{}",
            check.message
        );
        assert!(check.message.contains("not this stack's SessionsTable"), "{}", check.message);
        assert!(check.fix.contains(&physical_name("AudioStream")), "{}", check.fix);

        let mut live = healthy(&expected, function);
        live.environment.variables.insert(env::MAX_LISTENERS_PER_SESSION.into(), "7".into());
        let check = super::check(&expected, function, &live);
        assert_eq!(check.status, Status::Warn, "{check:?}");

        let mut live = healthy(&expected, &contract::functions::CONNECTION);
        live.environment.variables.insert(env::CONNECT_AUTH.into(), "self".into());
        assert_eq!(super::check(&expected, &contract::functions::CONNECTION, &live).status, Status::Fail);
    }
}

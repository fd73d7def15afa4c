//! `functions.<name>.invoke-permission`: the function's resource policy (`GetPolicy`) lets API
//! Gateway invoke it from every source it serves: each WebSocket route on this stack's API
//! and stage, the `$connect` authorizer, each HTTP route, named by the source ARNs API Gateway
//! invokes with. A statement counts when it allows (and no statement denies)
//! `lambda:InvokeFunction` to API Gateway under conditions that hold for that source; the fix
//! is the `add-permission` commands that grant what is missing, as the template grants it.

use super::{Check, Expected, GROUP, LiveFunction};
use crate::doctor::live::{ArnParts, Unreadable};
use contract::Function;
use serde_json::Value;
use stacks::naming;
use stacks::template::{self, glob, glob_ignore_case};

/// Reads a function's resource policy; `None` when it has none.
pub(super) async fn read_policy(client: &aws_sdk_lambda::Client, name: &str) -> Result<Option<Value>, Unreadable> {
    let call = format!("GetPolicy({name})");
    match client.get_policy().function_name(name).send().await {
        Ok(output) => match output.policy {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text).map(Some).map_err(|error| {
                Unreadable::new(&call, "lambda:GetPolicy", format!("the policy is not JSON: {error}"))
            }),
        },
        Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(None),
        Err(error) => {
            Err(Unreadable::new(&call, "lambda:GetPolicy", aws_sdk_lambda::error::DisplayErrorContext(error)))
        }
    }
}

/// One source API Gateway invokes a function from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Source {
    /// What it is, for messages (`$connect`, `the $connect authorizer`, `GET /health`).
    what: String,
    /// The `SourceArn` API Gateway invokes with.
    arn: String,
    /// The `--source-arn` that lets every source of its kind invoke the function, as the template grants it.
    grant: String,
}

/// Every source API Gateway invokes `function` from; `Err` is the check to report instead.
fn sources(expected: &Expected<'_>, function: &Function, arn: &ArnParts, id: &str) -> Result<Vec<Source>, Check> {
    let mut sources = Vec::new();
    let stage = &expected.stage.name;
    let api_id = |lookup: &Result<Option<String>, Unreadable>, what: &str, check: &str| match lookup {
        Ok(Some(api)) => Ok(api.clone()),
        Ok(None) => Err(Check::skip(GROUP, id, format!("no live {what} to compare with (see {check})"))),
        Err(unreadable) => Err(unreadable.check(GROUP, id, what)),
    };
    if !function.websocket_routes.is_empty() {
        let api = api_id(&expected.websocket_api, "WebSocket API", "websocket.api")?;
        for route in function.websocket_routes {
            sources.push(Source {
                what: (*route).to_owned(),
                arn: arn.execute_api(&format!("{api}/{stage}/{route}")),
                grant: arn.execute_api(&format!("{api}/{stage}/*")),
            });
        }
    }
    if contract::CONTRACT.authorizer.is_some_and(|authorizer| authorizer.function == function.name) {
        let api = api_id(&expected.websocket_api, "WebSocket API", "websocket.api")?;
        let Some(authorizer) = &expected.connect_authorizer else {
            return Err(Check::skip(
                GROUP,
                id,
                "the live $connect route names no authorizer to compare with (see websocket.connect-authorizer)",
            ));
        };
        let arn = arn.execute_api(&format!("{api}/authorizers/{authorizer}"));
        sources.push(Source { what: "the $connect authorizer".to_owned(), arn: arn.clone(), grant: arn });
    }
    if !function.http_routes.is_empty() {
        let api = api_id(&expected.http_api, "HTTP API", "the stack's HttpUrl output")?;
        let http_stage = expected.properties(naming::HTTP_STAGE)["StageName"].as_str().unwrap_or("$default");
        for route in function.http_routes {
            sources.push(Source {
                what: route.route_key(),
                arn: arn.execute_api(&format!("{api}/{http_stage}/{}{}", route.method.as_str(), route.path)),
                grant: arn.execute_api(&format!("{api}/*")),
            });
        }
    }
    Ok(sources)
}

/// The statements of a policy document (`Statement` may be one object or a list).
fn statements(document: &Value) -> Vec<&Value> {
    match &document["Statement"] {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![&document["Statement"]],
        _ => Vec::new(),
    }
}

/// Whether a resource policy statement's principal includes API Gateway.
fn names_api_gateway(principal: &Value) -> bool {
    match principal {
        Value::String(text) => text == "*",
        Value::Object(map) => {
            map.get("Service").is_some_and(|services| {
                template::strings(services).iter().any(|service| service == "apigateway.amazonaws.com")
            }) || map.get("AWS").is_some_and(|aws| template::strings(aws).iter().any(|who| who == "*"))
        }
        _ => false,
    }
}

/// Whether every condition of a statement holds for an invocation from `source` in `account`.
/// Only the conditions `add-permission` writes are understood; any other makes the statement
/// count as not applying (the check stays on the safe side).
fn conditions_hold(conditions: &Value, source: &str, account: &str) -> bool {
    let Some(operators) = conditions.as_object() else {
        return conditions.is_null();
    };
    operators.iter().all(|(operator, keys)| {
        keys.as_object().is_some_and(|keys| {
            keys.iter().all(|(key, values)| {
                let values = template::strings(values);
                let subject = match key.to_ascii_lowercase().as_str() {
                    "aws:sourcearn" => source,
                    "aws:sourceaccount" => account,
                    _ => return false,
                };
                match operator.as_str() {
                    "ArnLike" | "ArnEquals" | "StringLike" => values.iter().any(|pattern| glob(pattern, subject)),
                    "StringEquals" => values.iter().any(|value| value == subject),
                    _ => false,
                }
            })
        })
    })
}

/// Whether a function's resource policy lets API Gateway invoke it from `source`.
fn policy_allows(policy: &Value, source: &str, account: &str) -> bool {
    let applies = |effect: &str| {
        statements(policy).into_iter().any(|statement| {
            statement["Effect"] == effect
                && names_api_gateway(&statement["Principal"])
                && template::strings(&statement["Action"])
                    .iter()
                    .any(|action| glob_ignore_case(action, "lambda:InvokeFunction"))
                && conditions_hold(&statement["Condition"], source, account)
        })
    };
    applies("Allow") && !applies("Deny")
}

/// The source ARNs a policy lets API Gateway invoke from, for messages.
fn granted_sources(policy: &Value) -> Vec<String> {
    statements(policy)
        .into_iter()
        .filter(|statement| statement["Effect"] == "Allow" && names_api_gateway(&statement["Principal"]))
        .flat_map(|statement| {
            let conditions = statement["Condition"].as_object().cloned().unwrap_or_default();
            let arns: Vec<String> = conditions
                .values()
                .filter_map(Value::as_object)
                .flat_map(|keys| keys.iter().filter(|(key, _)| key.eq_ignore_ascii_case("aws:SourceArn")))
                .flat_map(|(_, values)| template::strings(values))
                .collect();
            if arns.is_empty() { vec!["any source".to_owned()] } else { arns }
        })
        .collect()
}

/// `its 1 source`, `all 5 of its sources`.
fn all_of_its_sources(count: usize) -> String {
    if count == 1 { "its 1 source".to_owned() } else { format!("all {count} of its sources") }
}

/// `functions.<name>.invoke-permission`: the resource policy lets API Gateway invoke the
/// function from every source it serves.
pub(super) fn check(
    expected: &Expected<'_>,
    function: &Function,
    live: &LiveFunction,
    policy: &Result<Option<Value>, Unreadable>,
) -> Check {
    let id = format!("functions.{}.invoke-permission", function.name);
    let name = &live.function_name;
    let Some(arn) = ArnParts::of(&live.function_arn) else {
        return Check::skip(
            GROUP,
            id,
            format!("{name}: its ARN {:?} names no account to build source ARNs with", live.function_arn),
        );
    };
    let sources = match sources(expected, function, &arn, &id) {
        Ok(sources) if sources.is_empty() => {
            return Check::skip(GROUP, id, format!("`{}` is not invoked by API Gateway", function.name));
        }
        Ok(sources) => sources,
        Err(check) => return check,
    };
    let policy = match policy {
        Ok(policy) => policy.clone().unwrap_or(Value::Null),
        Err(unreadable) => return unreadable.check(GROUP, id, &format!("{name}'s resource policy")),
    };
    let denied: Vec<&Source> =
        sources.iter().filter(|source| !policy_allows(&policy, &source.arn, &arn.account)).collect();
    if denied.is_empty() {
        let grants = granted_sources(&policy);
        return Check::pass(
            GROUP,
            id,
            format!("API Gateway may invoke it from {} ({})", all_of_its_sources(sources.len()), grants.join(", ")),
        );
    }
    let outage = stacks::verify::outage(&contract::CONTRACT, function);
    let whats: Vec<&str> = denied.iter().map(|source| source.what.as_str()).collect();
    let grants = granted_sources(&policy);
    let allowed = if grants.is_empty() {
        "lets API Gateway invoke it from no source".to_owned()
    } else {
        format!("lets API Gateway invoke it only from {}", grants.join(", "))
    };
    let mut grant: Vec<&str> = denied.iter().map(|source| source.grant.as_str()).collect();
    grant.dedup();
    let commands: Vec<String> = grant
        .iter()
        .enumerate()
        .map(|(index, source)| {
            format!(
                "aws lambda add-permission --function-name {name} --statement-id apigateway-invoke-{} --action \
                 lambda:InvokeFunction --principal apigateway.amazonaws.com --source-arn '{source}' --region {}",
                index + 1,
                arn.region
            )
        })
        .collect();
    Check::fail(
        GROUP,
        id,
        format!(
            "API Gateway may not invoke {name} for {} (for example from {}): its resource policy {allowed}; \
             API Gateway gets AccessDenied invoking it, so {outage}",
            whats.join(", "),
            denied[0].arn
        ),
        format!(
            "{} (a permission removed or changed live: `{}` does not restore it, CloudFormation does not see it)",
            commands.join(" && "),
            expected.deploy()
        ),
    )
}

#[cfg(test)]
mod tests {
    use crate::doctor::functions::fixtures::{
        ACCOUNT, API, Synthesized, failures, healthy, healthy_policy, judged, judged_with_healthy_policy, only_failure,
        policy_from,
    };
    use serde_json::json;

    #[test]
    fn a_policy_for_another_api_or_none_at_all_fails_with_the_add_permission_command() {
        let dev = Synthesized::dev();
        let expected = dev.expected();
        let function = &contract::functions::CONNECTION;
        let live = healthy(&expected, function);
        let other = format!("arn:aws:execute-api:eu-west-1:{ACCOUNT}:otherapi99/dev/*");
        let checks = judged(&expected, function, &live, Some(policy_from(&other)));
        let check = only_failure(&checks, "functions.connection.invoke-permission");
        assert!(check.message.contains("$connect, $disconnect"), "{}", check.message);
        assert!(check.message.contains(&other), "{}", check.message);
        assert!(check.message.contains("AccessDenied"), "{}", check.message);
        assert!(check.fix.contains("aws lambda add-permission"), "{}", check.fix);
        assert!(
            check.fix.contains(&format!("--source-arn 'arn:aws:execute-api:eu-west-1:{ACCOUNT}:{API}/dev/*'")),
            "{}",
            check.fix
        );

        let healthy_checks = judged_with_healthy_policy(&expected, function, &live);
        let passed = healthy_checks.iter().find(|check| check.id == "functions.connection.invoke-permission");
        let passed = passed.expect("judged");
        assert!(passed.message.starts_with("API Gateway may invoke it from all 2 of its sources ("), "{passed:?}");

        let checks = judged(&expected, function, &live, None);
        assert!(only_failure(&checks, "functions.connection.invoke-permission").message.contains("from no source"));

        // Wider grants are fine; another stage of the API, another account or a deny are not.
        for (source, allowed) in [
            (format!("arn:aws:execute-api:eu-west-1:{ACCOUNT}:{API}/*"), true),
            (format!("arn:aws:execute-api:*:{ACCOUNT}:*"), true),
            (format!("arn:aws:execute-api:eu-west-1:{ACCOUNT}:{API}/prod/*"), false),
            (format!("arn:aws:execute-api:eu-west-1:999999999999:{API}/dev/*"), false),
        ] {
            let checks = judged(&expected, function, &live, Some(policy_from(&source)));
            assert_eq!(failures(&checks).is_empty(), allowed, "{source}: {checks:#?}");
        }
        let mut denied = healthy_policy(function);
        let mut deny = denied["Statement"][0].clone();
        deny["Effect"] = json!("Deny");
        denied["Statement"].as_array_mut().expect("statements").push(deny);
        assert_eq!(failures(&judged(&expected, function, &live, Some(denied))).len(), 1);

        let authorizer = &contract::functions::AUTHORIZER;
        let live = healthy(&expected, authorizer);
        let checks = judged_with_healthy_policy(&expected, authorizer, &live);
        let passed = checks.iter().find(|check| check.id == "functions.authorizer.invoke-permission");
        assert!(
            passed.expect("judged").message.starts_with("API Gateway may invoke it from its 1 source ("),
            "{checks:?}"
        );
        let wrong = format!("arn:aws:execute-api:eu-west-1:{ACCOUNT}:{API}/authorizers/zzz999");
        let checks = judged(&expected, authorizer, &live, Some(policy_from(&wrong)));
        let check = only_failure(&checks, "functions.authorizer.invoke-permission");
        assert!(check.message.contains("before $connect runs"), "{}", check.message);
    }
}

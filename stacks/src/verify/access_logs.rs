//! Access logs that can answer the incident's question. Requests API Gateway refuses before any
//! function runs (an authorizer's 401, an integration that cannot be invoked) leave no trace in
//! the functions' logs; a stage's access log is the only record of them. So a stage that logs
//! access must write one JSON object per line (CloudWatch Logs Insights reads its fields without
//! parsing rules) to a destination, with every `$context` variable the synthesizer writes
//! (`service::ACCESS_LOG_FIELDS`, plus the connection and event type on a WebSocket API).
//!
//! A stage without access logging is not a finding: whether a stage logs access is a stage
//! setting (`StageConfig::access_logs`, which needs the account's API Gateway logging role).

use super::template::{API, STAGE, prop, render};
use super::{FindingKind, Report, View};
use crate::service::{ACCESS_LOG_FIELDS, WEBSOCKET_ACCESS_LOG_FIELDS};
use serde_json::Value;

pub(super) fn check(view: &View<'_>, report: &mut Report) {
    for (stage, properties) in view.resources.of_type(STAGE) {
        let settings = prop(properties, "AccessLogSettings");
        if settings.is_null() {
            continue;
        }
        if render(prop(settings, "DestinationArn")).is_none_or(|arn| arn.is_empty()) {
            report.add(
                FindingKind::AccessLogIncomplete,
                stage,
                "AccessLogSettings.DestinationArn",
                "access logging has no destination: API Gateway refuses to create or update the stage",
            );
        }
        let websocket = view
            .resources
            .referenced(Some(prop(properties, "ApiId")), API)
            .is_some_and(|api| prop(view.resources.properties(api), "ProtocolType").as_str() == Some("WEBSOCKET"));
        let format = prop(settings, "Format").as_str().unwrap_or_default();
        let Some(line) = serde_json::from_str::<Value>(format).ok().filter(Value::is_object) else {
            report.add(
                FindingKind::AccessLogIncomplete,
                stage,
                "AccessLogSettings.Format",
                "is not one JSON object: CloudWatch Logs Insights cannot read the fields of the requests refused \
                 before any function runs",
            );
            continue;
        };
        let written: Vec<&str> =
            line.as_object().into_iter().flat_map(|object| object.values()).filter_map(Value::as_str).collect();
        let wanted = ACCESS_LOG_FIELDS.iter().chain(if websocket { &WEBSOCKET_ACCESS_LOG_FIELDS[..] } else { &[] });
        let missing: Vec<&str> =
            wanted.map(|(_, variable)| *variable).filter(|variable| !written.contains(variable)).collect();
        if !missing.is_empty() {
            report.add(
                FindingKind::AccessLogIncomplete,
                stage,
                "AccessLogSettings.Format",
                format!(
                    "leaves out {}: a request refused before any function runs (an authorizer's 401, an integration \
                     API Gateway cannot invoke) cannot be told apart in the access log, its only record",
                    missing.join(", ")
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::naming;
    use crate::verify::{Finding, FindingKind, verify};
    use serde_json::Value;

    fn prod() -> Value {
        crate::synthesize(&contract::CONTRACT, &crate::stages::prod()).expect("prod").to_value()
    }

    fn access_log_findings(template: &Value) -> Vec<Finding> {
        verify(template, &contract::CONTRACT)
            .into_iter()
            .filter(|f| f.kind == FindingKind::AccessLogIncomplete)
            .collect()
    }

    fn format_of<'a>(template: &'a mut Value, stage: &str) -> &'a mut Value {
        &mut template["Resources"][stage]["Properties"]["AccessLogSettings"]["Format"]
    }

    #[test]
    fn the_synthesized_stages_log_every_field_and_dev_logs_nothing_without_a_finding() {
        assert_eq!(access_log_findings(&prod()), []);
        let dev = crate::synthesize(&contract::CONTRACT, &crate::stages::dev()).expect("dev").to_value();
        assert_eq!(access_log_findings(&dev), []);
    }

    #[test]
    fn a_format_without_the_authorizers_error_is_named_with_what_is_lost() {
        for stage in [naming::WEBSOCKET_STAGE, naming::HTTP_STAGE] {
            let mut template = prod();
            let format = format_of(&mut template, stage);
            let text = format.as_str().expect("format").replace("$context.authorizer.error", "$context.path");
            *format = Value::from(text);
            let findings = access_log_findings(&template);
            assert_eq!(findings.len(), 1, "{findings:#?}");
            assert_eq!(findings[0].logical_id, stage);
            assert!(findings[0].consequence.starts_with("leaves out $context.authorizer.error:"), "{}", findings[0]);
        }
    }

    #[test]
    fn only_a_websocket_stage_must_log_the_connection() {
        let mut template = prod();
        let format = format_of(&mut template, naming::WEBSOCKET_STAGE);
        let text = format.as_str().expect("format").replace("\"$context.connectionId\"", "\"-\"");
        *format = Value::from(text);
        let findings = access_log_findings(&template);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert!(findings[0].consequence.starts_with("leaves out $context.connectionId:"), "{}", findings[0]);
    }

    #[test]
    fn a_common_log_format_line_or_no_destination_is_a_finding() {
        let mut template = prod();
        *format_of(&mut template, naming::HTTP_STAGE) = Value::from("$context.requestId $context.status");
        template["Resources"][naming::WEBSOCKET_STAGE]["Properties"]["AccessLogSettings"]
            .as_object_mut()
            .expect("settings")
            .remove("DestinationArn");
        let findings = access_log_findings(&template);
        let at: Vec<(&str, &str)> = findings.iter().map(|f| (f.logical_id.as_str(), f.property.as_str())).collect();
        assert_eq!(
            at,
            [
                (naming::HTTP_STAGE, "AccessLogSettings.Format"),
                (naming::WEBSOCKET_STAGE, "AccessLogSettings.DestinationArn")
            ]
        );
    }
}

//! CloudFormation change sets: what CloudFormation itself will do to a stack, the authority on
//! what a release changes.
//!
//! [`create`] makes a change set (never executing it) and waits until CloudFormation has worked
//! it out; [`describe`] reads every page of it (`NextToken`) into a [`ChangeSetSummary`], plain
//! data independent of the SDK's types; [`execute`] or [`delete`] ends it.

use crate::step;
use anyhow::{Result, bail};
use aws_sdk_cloudformation::types::{Capability, Change, ChangeSetStatus, ChangeSetType, Parameter};
use stacks::diff::Replacement;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// A change set that exists and has not been executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pending {
    /// Its name, for messages.
    pub(super) name: String,
    /// Its ARN, which names it in every later call.
    pub(super) id: String,
    /// The id of the stack it belongs to (for a new stack, the stack it creates).
    pub(super) stack_id: String,
}

/// What a change set is made from.
#[derive(Debug)]
pub(super) struct Request<'a> {
    pub(super) stack: &'a str,
    pub(super) kind: ChangeSetType,
    /// `TemplateURL`: where on S3 CloudFormation reads the template.
    pub(super) template_url: &'a str,
    pub(super) parameters: &'a BTreeMap<String, String>,
    /// `RoleARN`: the service role CloudFormation creates and updates the stack's resources
    /// with; `None` leaves it as it is (the caller's credentials, or the role the stack was
    /// last given).
    pub(super) role_arn: Option<&'a str>,
}

/// Creates a change set and waits until CloudFormation has worked it out; `None` when it holds
/// no changes (it is deleted then).
pub(super) async fn create(client: &aws_sdk_cloudformation::Client, request: &Request<'_>) -> Result<Option<Pending>> {
    let name = format!("xtask-{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs());
    step(format!("creating change set {name}"));
    let mut call = client
        .create_change_set()
        .stack_name(request.stack)
        .change_set_name(&name)
        .template_url(request.template_url)
        .capabilities(Capability::CapabilityIam)
        .set_role_arn(request.role_arn.map(str::to_owned))
        .change_set_type(request.kind.clone());
    for (key, value) in request.parameters {
        call = call.parameters(Parameter::builder().parameter_key(key).parameter_value(value).build());
    }
    let created = call.send().await.map_err(cloudformation_error)?;
    let pending = Pending {
        id: created.id.unwrap_or_else(|| name.clone()),
        stack_id: created.stack_id.unwrap_or_else(|| request.stack.to_owned()),
        name,
    };
    for _ in 0..300 {
        let described = client
            .describe_change_set()
            .stack_name(&pending.stack_id)
            .change_set_name(&pending.id)
            .send()
            .await
            .map_err(cloudformation_error)?;
        match described.status {
            Some(ChangeSetStatus::CreateComplete) => return Ok(Some(pending)),
            Some(ChangeSetStatus::Failed) => {
                let reason = described.status_reason.unwrap_or_default();
                if reason.contains("didn't contain changes") || reason.contains("No updates") {
                    delete(client, &pending).await;
                    return Ok(None);
                }
                delete(client, &pending).await;
                bail!("CloudFormation could not make the change set: {reason}");
            }
            _ => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
    delete(client, &pending).await;
    bail!("the change set {} was not ready after 5 minutes; look at it in the console, then deploy again", pending.name)
}

/// Every resource change of the change set, all pages of it.
pub(super) async fn describe(client: &aws_sdk_cloudformation::Client, pending: &Pending) -> Result<ChangeSetSummary> {
    let mut pages =
        client.describe_change_set().stack_name(&pending.stack_id).change_set_name(&pending.id).into_paginator().send();
    let mut summary = ChangeSetSummary::default();
    while let Some(page) = pages.next().await {
        summary.extend(page.map_err(cloudformation_error)?.changes());
    }
    Ok(summary)
}

/// Executes the change set.
pub(super) async fn execute(client: &aws_sdk_cloudformation::Client, pending: &Pending) -> Result<()> {
    step(format!("executing change set {}", pending.name));
    client
        .execute_change_set()
        .stack_name(&pending.stack_id)
        .change_set_name(&pending.id)
        .send()
        .await
        .map_err(cloudformation_error)?;
    Ok(())
}

/// Deletes the change set, saying so; a failure to delete is reported, not raised (the
/// release stops anyway, and a change set left behind is harmless: it expires unexecuted).
pub(super) async fn delete(client: &aws_sdk_cloudformation::Client, pending: &Pending) {
    let deleted = client.delete_change_set().stack_name(&pending.stack_id).change_set_name(&pending.id).send().await;
    match deleted {
        Ok(_) => step(format!("deleted change set {} (nothing was executed)", pending.name)),
        Err(error) => step(format!(
            "could not delete change set {} ({}); nothing was executed, delete it in the console",
            pending.name,
            aws_sdk_cloudformation::error::DisplayErrorContext(error)
        )),
    }
}

fn cloudformation_error<E: std::error::Error + Send + Sync + 'static, R: fmt::Debug>(
    error: aws_sdk_cloudformation::error::SdkError<E, R>,
) -> anyhow::Error {
    anyhow::anyhow!("{}", aws_sdk_cloudformation::error::DisplayErrorContext(error))
}

/// What a change set does, resource by resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ChangeSetSummary {
    pub(super) changes: Vec<PlannedChange>,
}

/// One resource change (`ResourceChange`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PlannedChange {
    pub(super) logical_id: String,
    pub(super) resource_type: String,
    /// `Add`, `Modify`, `Remove`, `Import`, `Dynamic`, ... as CloudFormation spells it.
    pub(super) action: String,
    /// `Replacement` on our diff's scale (`False` never, `Conditional`, `True` always); `None`
    /// when the change set does not say (it never does for `Add` and `Remove`; moto never does).
    pub(super) replacement: Option<Replacement>,
    /// `Scope`: `Properties`, `Tags`, ...
    pub(super) scope: Vec<String>,
    pub(super) details: Vec<PlannedDetail>,
}

/// One `ResourceChangeDetail`: a change to one attribute, and what causes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PlannedDetail {
    /// `Target.Attribute`: `Properties`, `Tags`, ...
    pub(super) attribute: String,
    /// `Target.Name`: the property, for `Properties`.
    pub(super) name: Option<String>,
    /// `Target.RequiresRecreation` on our diff's scale (`Never`, `Conditionally`, `Always`).
    pub(super) requires_recreation: Option<Replacement>,
    /// `Static` (known now) or `Dynamic` (known only while the change set executes).
    pub(super) evaluation: Option<String>,
    /// `DirectModification`, `ParameterReference`, `ResourceReference`, ...
    pub(super) change_source: Option<String>,
    /// What caused it: the parameter or resource named by `ChangeSource`.
    pub(super) causing_entity: Option<String>,
}

impl ChangeSetSummary {
    /// Adds one page of `DescribeChangeSet`'s `Changes` (a change that is not a resource change
    /// has nothing to record).
    pub(super) fn extend(&mut self, changes: &[Change]) {
        self.changes.extend(changes.iter().filter_map(|change| change.resource_change.as_ref()).map(planned));
    }

    /// The change set's change to `logical_id`, if it has one.
    pub(super) fn get(&self, logical_id: &str) -> Option<&PlannedChange> {
        self.changes.iter().find(|change| change.logical_id == logical_id)
    }
}

fn planned(change: &aws_sdk_cloudformation::types::ResourceChange) -> PlannedChange {
    let text = |value: Option<&str>| value.unwrap_or_default().to_owned();
    PlannedChange {
        logical_id: text(change.logical_resource_id()),
        resource_type: text(change.resource_type()),
        action: text(change.action().map(|action| action.as_str())),
        replacement: change.replacement().and_then(|replacement| replacement_of(replacement.as_str())),
        scope: change.scope().iter().map(|attribute| attribute.as_str().to_owned()).collect(),
        details: change
            .details()
            .iter()
            .map(|detail| {
                let target = detail.target();
                PlannedDetail {
                    attribute: text(target.and_then(|target| target.attribute()).map(|attribute| attribute.as_str())),
                    name: target.and_then(|target| target.name()).map(str::to_owned),
                    requires_recreation: target
                        .and_then(|target| target.requires_recreation())
                        .and_then(|recreation| recreation_of(recreation.as_str())),
                    evaluation: detail.evaluation().map(|evaluation| evaluation.as_str().to_owned()),
                    change_source: detail.change_source().map(|source| source.as_str().to_owned()),
                    causing_entity: detail.causing_entity().map(str::to_owned),
                }
            })
            .collect(),
    }
}

/// `ResourceChange.Replacement` on our scale; `None` for a value this tool does not know.
fn replacement_of(value: &str) -> Option<Replacement> {
    match value {
        "False" => Some(Replacement::Never),
        "Conditional" => Some(Replacement::Conditional),
        "True" => Some(Replacement::Always),
        _ => None,
    }
}

/// `ResourceTargetDefinition.RequiresRecreation` on our scale.
fn recreation_of(value: &str) -> Option<Replacement> {
    match value {
        "Never" => Some(Replacement::Never),
        "Conditionally" => Some(Replacement::Conditional),
        "Always" => Some(Replacement::Always),
        _ => None,
    }
}

/// `Replacement` as CloudFormation spells it, for messages.
pub(super) fn replacement_word(replacement: Replacement) -> &'static str {
    match replacement {
        Replacement::Never => "False",
        Replacement::Conditional => "Conditional",
        Replacement::Always => "True",
    }
}

fn recreation_word(replacement: Replacement) -> &'static str {
    match replacement {
        Replacement::Never => "Never",
        Replacement::Conditional => "Conditionally",
        Replacement::Always => "Always",
    }
}

impl fmt::Display for ChangeSetSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\nChange set (what CloudFormation will do)")?;
        if self.changes.is_empty() {
            writeln!(f, "  no resource changes (parameters or outputs only)")?;
        }
        for change in &self.changes {
            let mark = match change.action.as_str() {
                "Add" => "+",
                "Remove" => "-",
                "Modify" => "~",
                _ => "?",
            };
            write!(f, "{mark} {} {} ({})", change.action, change.logical_id, change.resource_type)?;
            match change.replacement {
                Some(replacement) => write!(f, ": Replacement {}", replacement_word(replacement))?,
                None if change.action == "Modify" => write!(f, ": Replacement not given")?,
                None => {}
            }
            if !change.scope.is_empty() {
                write!(f, "; scope {}", change.scope.join(", "))?;
            }
            writeln!(f)?;
            for detail in &change.details {
                let target = match &detail.name {
                    Some(name) => format!("{}.{name}", detail.attribute),
                    None => detail.attribute.clone(),
                };
                let recreation = detail.requires_recreation.map(recreation_word).unwrap_or("not given");
                let cause = [&detail.evaluation, &detail.change_source, &detail.causing_entity]
                    .into_iter()
                    .flatten()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                writeln!(f, "    {target}: requires recreation {recreation} ({cause})")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    //! The recorded responses in `xtask/tests/data/` go through the SDK's own awsQuery
    //! deserializer: a local HTTP server answers `DescribeChangeSet` with them.

    use super::*;
    use serde_json::Value;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::path::PathBuf;

    fn data(name: &str) -> String {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
    }

    /// Serves `responses` in order, one per connection, as `200 text/xml`; the handle gives
    /// back the request bodies received.
    pub(in crate::deploy) fn serve(responses: Vec<String>) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let server = std::thread::spawn(move || {
            let mut requests = Vec::new();
            for response in responses {
                let (mut stream, _) = listener.accept().expect("a request");
                let mut received = Vec::new();
                let mut buffer = [0; 8192];
                let body_start = loop {
                    let read = stream.read(&mut buffer).expect("read");
                    assert!(read > 0, "the request ended early");
                    received.extend_from_slice(&buffer[..read]);
                    if let Some(end) = received.windows(4).position(|window| window == b"\r\n\r\n") {
                        break end + 4;
                    }
                };
                let head = String::from_utf8_lossy(&received[..body_start]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .and_then(|value| value.trim().parse().ok())
                    .unwrap_or(0);
                while received.len() < body_start + length {
                    let read = stream.read(&mut buffer).expect("read");
                    assert!(read > 0, "the request body ended early");
                    received.extend_from_slice(&buffer[..read]);
                }
                requests.push(String::from_utf8_lossy(&received[body_start..]).into_owned());
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{response}",
                    response.len()
                );
                stream.write_all(answer.as_bytes()).expect("answered");
            }
            requests
        });
        (url, server)
    }

    pub(in crate::deploy) fn client(url: &str) -> aws_sdk_cloudformation::Client {
        use aws_sdk_cloudformation::config;
        let config = config::Builder::new()
            .behavior_version(config::BehaviorVersion::latest())
            .region(config::Region::new("us-east-1"))
            .endpoint_url(url)
            .credentials_provider(config::Credentials::new("testing", "testing", None, None, "test"))
            .retry_config(config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_cloudformation::Client::from_conf(config)
    }

    async fn describe_replayed(responses: Vec<String>) -> (ChangeSetSummary, Vec<String>) {
        let (url, server) = serve(responses);
        let pending = Pending {
            name: "SampleChangeSet".into(),
            id: "arn:aws:cloudformation:us-east-1:123456789012:changeSet/SampleChangeSet/1".into(),
            stack_id: "SampleStack".into(),
        };
        let summary = describe(&client(&url), &pending).await.expect("described");
        (summary, server.join().expect("the server ran"))
    }

    /// The awsQuery XML of a `DescribeChangeSet` output as the CLI prints it (JSON): a
    /// structure's members become elements, a list's items `member` elements.
    fn query_xml(output: &Value) -> String {
        fn members(value: &Value) -> String {
            match value {
                Value::Object(fields) => {
                    fields.iter().map(|(name, inner)| format!("<{name}>{}</{name}>", members(inner))).collect()
                }
                Value::Array(items) => items.iter().map(|item| format!("<member>{}</member>", members(item))).collect(),
                Value::String(text) => text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;"),
                other => other.to_string(),
            }
        }
        format!(
            "<DescribeChangeSetResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\">\
             <DescribeChangeSetResult>{}</DescribeChangeSetResult>\
             <ResponseMetadata><RequestId>b9b4b068-3a41-11e5-94eb-example</RequestId></ResponseMetadata>\
             </DescribeChangeSetResponse>",
            members(output)
        )
    }

    fn detail(name: Option<&str>, recreation: Replacement, evaluation: &str, cause: Option<&str>) -> PlannedDetail {
        PlannedDetail {
            attribute: if name.is_some() { "Properties" } else { "Tags" }.to_owned(),
            name: name.map(str::to_owned),
            requires_recreation: Some(recreation),
            evaluation: Some(evaluation.to_owned()),
            change_source: Some(if cause.is_some() { "ParameterReference" } else { "DirectModification" }.to_owned()),
            causing_entity: cause.map(str::to_owned),
        }
    }

    #[tokio::test]
    async fn the_api_references_sample_response_is_read_through_the_sdk() {
        let (summary, requests) = describe_replayed(vec![data("describe-change-set.xml")]).await;
        assert_eq!(
            summary.changes,
            [PlannedChange {
                logical_id: "MyEC2Instance".into(),
                resource_type: "AWS::EC2::Instance".into(),
                action: "Modify".into(),
                replacement: Some(Replacement::Never),
                scope: vec!["Tags".into()],
                details: vec![detail(None, Replacement::Never, "Static", None)],
            }]
        );
        assert_eq!(requests.len(), 1);
        assert!(requests[0].contains("Action=DescribeChangeSet"), "{}", requests[0]);
        let shown = summary.to_string();
        assert!(
            shown.contains("~ Modify MyEC2Instance (AWS::EC2::Instance): Replacement False; scope Tags"),
            "{shown}"
        );
        assert!(shown.contains("Tags: requires recreation Never (Static, DirectModification)"), "{shown}");
    }

    #[tokio::test]
    async fn every_page_is_read_and_replacement_details_are_kept() {
        // Page 1: the API reference's sample, told there is more; page 2: the user guide's
        // replacement sample.
        let first =
            data("describe-change-set.xml").replace("</Changes>", "</Changes>\n    <NextToken>page-2</NextToken>");
        let replacing: Value = serde_json::from_str(&data("describe-change-set-replacement.json")).expect("JSON");
        let (summary, requests) = describe_replayed(vec![first, query_xml(&replacing)]).await;
        assert_eq!(requests.len(), 2);
        assert!(!requests[0].contains("NextToken") && requests[1].contains("NextToken=page-2"), "{requests:?}");
        assert_eq!(summary.changes.len(), 2);
        let replaced = &summary.changes[1];
        assert_eq!(
            (replaced.logical_id.as_str(), replaced.action.as_str(), replaced.replacement),
            ("MyEC2Instance", "Modify", Some(Replacement::Always))
        );
        assert_eq!(replaced.scope, ["Tags", "Properties"]);
        assert_eq!(
            replaced.details,
            [
                detail(Some("KeyName"), Replacement::Always, "Dynamic", None),
                detail(Some("InstanceType"), Replacement::Conditional, "Dynamic", None),
                detail(None, Replacement::Never, "Dynamic", None),
                detail(Some("KeyName"), Replacement::Always, "Static", Some("KeyPairName")),
                detail(Some("InstanceType"), Replacement::Conditional, "Static", Some("InstanceType")),
                detail(None, Replacement::Never, "Static", Some("Purpose")),
            ]
        );
        let shown = summary.to_string();
        assert!(shown.contains("Replacement True; scope Tags, Properties"), "{shown}");
        assert!(
            shown.contains("Properties.KeyName: requires recreation Always (Static, ParameterReference, KeyPairName)"),
            "{shown}"
        );
        assert!(shown.contains("Properties.InstanceType: requires recreation Conditionally"), "{shown}");
    }

    #[test]
    fn values_this_tool_does_not_know_are_unknown() {
        assert_eq!(replacement_of("Maybe"), None);
        assert_eq!(recreation_of(""), None);
        for replacement in [Replacement::Never, Replacement::Conditional, Replacement::Always] {
            assert_eq!(replacement_of(replacement_word(replacement)), Some(replacement));
            assert_eq!(recreation_of(recreation_word(replacement)), Some(replacement));
        }
    }

    #[test]
    fn a_change_without_replacement_says_so_only_for_a_modification() {
        let change = |action: &str| PlannedChange {
            logical_id: "T".into(),
            resource_type: "AWS::DynamoDB::Table".into(),
            action: action.into(),
            replacement: None,
            scope: Vec::new(),
            details: Vec::new(),
        };
        let summary = ChangeSetSummary { changes: vec![change("Add"), change("Modify")] };
        let shown = summary.to_string();
        assert!(shown.contains("+ Add T (AWS::DynamoDB::Table)\n"), "{shown}");
        assert!(shown.contains("~ Modify T (AWS::DynamoDB::Table): Replacement not given\n"), "{shown}");
        assert!(ChangeSetSummary::default().to_string().contains("no resource changes"));
    }
}

//! Replacement verdicts: for each source of a replacement, a deployed template and the
//! synthesized one that differ only there, and what `diff` says.

use serde_json::{Value, json};
use stacks::diff::{ChangeKind, Replacement, ResourceChange, TemplateDiff, diff};

/// The synthesized `dev` template: what would be released.
fn synthesized() -> Value {
    stacks::synthesize(&contract::CONTRACT, &stacks::stages::dev()).expect("dev synthesizes").to_value()
}

/// The deployed template: the synthesized one with `edit` undone, as if the release changed it.
fn deployed_with(edit: impl FnOnce(&mut Value)) -> Value {
    let mut deployed = synthesized();
    edit(&mut deployed);
    deployed
}

fn resource<'a>(template: &'a mut Value, id: &str) -> &'a mut Value {
    template.pointer_mut(&format!("/Resources/{id}")).unwrap_or_else(|| panic!("{id} is in the template"))
}

fn change<'a>(diff: &'a TemplateDiff, id: &str) -> &'a ResourceChange {
    diff.resources.iter().find(|change| change.logical_id == id).unwrap_or_else(|| panic!("{id} changes: {diff:#?}"))
}

#[test]
fn a_create_only_property_replaces_and_a_stateful_replacement_loses_data() {
    let deployed = deployed_with(|template| {
        resource(template, "AudioStream")["Properties"]["Name"] = json!("audio-before");
    });
    let diff = diff(&deployed, &synthesized());
    let stream = change(&diff, "AudioStream");
    assert_eq!(stream.replacement, Replacement::Always);
    assert_eq!(stream.replacement_because, ["Properties.Name"]);
    assert!(stream.data_loss.as_deref().is_some_and(|loss| loss.contains("is replaced")), "{stream:#?}");
}

#[test]
fn a_property_that_is_not_create_only_updates_in_place() {
    let deployed = deployed_with(|template| {
        resource(template, "ConnectionLogs")["Properties"]["RetentionInDays"] = json!(1);
    });
    let diff = diff(&deployed, &synthesized());
    let logs = change(&diff, "ConnectionLogs");
    assert_eq!((logs.kind, logs.replacement), (ChangeKind::Modified, Replacement::Never));
    assert_eq!(diff.resources.len(), 1, "nothing else changes: {diff:#?}");
}

#[test]
fn a_replaced_websocket_api_carries_on_to_what_refers_to_it() {
    let deployed = deployed_with(|template| {
        resource(template, "WebSocketApi")["Properties"]["ProtocolType"] = json!("HTTP");
    });
    let diff = diff(&deployed, &synthesized());
    let api = change(&diff, "WebSocketApi");
    assert_eq!(api.replacement, Replacement::Always);
    assert!(api.notes.iter().any(|note| note.contains("URL") && note.contains("MANAGEMENT_ENDPOINT")), "{api:#?}");
    // Routes take the API's id in `ApiId`, which is create-only: they may be replaced too.
    let route = change(&diff, "RouteConnect");
    assert_eq!((route.kind, route.replacement), (ChangeKind::MayChange, Replacement::Conditional));
    assert!(route.replacement_because[0].contains("ApiId refers to WebSocketApi"), "{route:#?}");
    // The functions read the API's URL from their environment: they change, in place.
    let function = change(&diff, "MessagesFunction");
    assert_eq!((function.kind, function.replacement), (ChangeKind::MayChange, Replacement::Never));
    assert!(function.replacement_because[0].contains("MANAGEMENT_ENDPOINT"), "{function:#?}");
    // The HTTP API does not refer to the WebSocket API.
    assert!(diff.resources.iter().all(|change| change.logical_id != "HttpApi"));
}

#[test]
fn a_table_is_replaced_by_a_new_key_schema_or_a_retyped_attribute_but_not_a_new_attribute() {
    let key_changed = deployed_with(|template| {
        resource(template, "SessionsTable")["Properties"]["KeySchema"][0]["AttributeName"] = json!("id");
    });
    let diff_of_key = diff(&key_changed, &synthesized());
    let table = change(&diff_of_key, "SessionsTable");
    assert_eq!(table.replacement, Replacement::Always);
    assert!(table.data_loss.is_some());

    let retyped = deployed_with(|template| {
        resource(template, "ConnectionsTable")["Properties"]["AttributeDefinitions"][1]["AttributeType"] = json!("N");
    });
    let diff_of_type = diff(&retyped, &synthesized());
    let table = change(&diff_of_type, "ConnectionsTable");
    assert_eq!(table.replacement, Replacement::Always);
    assert!(table.replacement_because[0].contains("sessionId changes type"), "{table:#?}");

    let fewer_attributes = deployed_with(|template| {
        let definitions = &mut resource(template, "ConnectionsTable")["Properties"]["AttributeDefinitions"];
        definitions.as_array_mut().expect("a list").pop();
    });
    let diff_of_added = diff(&fewer_attributes, &synthesized());
    assert_eq!(change(&diff_of_added, "ConnectionsTable").replacement, Replacement::Never);
}

#[test]
fn a_conditionally_create_only_property_may_replace() {
    let synthesized = synthesized();
    let mut released = synthesized.clone();
    resource(&mut released, "MessagesFunction")["Properties"]["DurableConfig"] = json!({"ExecutionTimeout": 60});
    let diff = diff(&synthesized, &released);
    let function = change(&diff, "MessagesFunction");
    assert_eq!(function.replacement, Replacement::Conditional);
    assert_eq!(function.replacement_because, ["Properties.DurableConfig"]);
    // Its permission names the function (create-only there): it may be replaced with it.
    assert_eq!(change(&diff, "MessagesWebSocketPermission").replacement, Replacement::Conditional);
}

#[test]
fn global_secondary_index_changes_cloudformation_would_reject_are_named() {
    let index = |name: &str| {
        json!({"IndexName": name, "KeySchema": [{"AttributeName": "sessionId", "KeyType": "HASH"}],
               "Projection": {"ProjectionType": "KEYS_ONLY"}})
    };
    let synthesized = synthesized();
    let with_indexes = |indexes: Vec<Value>| {
        let mut template = synthesized.clone();
        resource(&mut template, "ConnectionsTable")["Properties"]["GlobalSecondaryIndexes"] = Value::Array(indexes);
        template
    };
    let existing = synthesized.pointer("/Resources/ConnectionsTable/Properties/GlobalSecondaryIndexes/0").cloned();
    let existing = existing.expect("the fan-out index");

    // One index added: fine.
    let one = diff(&synthesized, &with_indexes(vec![existing.clone(), index("a")]));
    assert_eq!(change(&one, "ConnectionsTable").rejected, None);
    // Two at once: rejected, with how to split it.
    let two = diff(&synthesized, &with_indexes(vec![existing.clone(), index("a"), index("b")]));
    let rejected = change(&two, "ConnectionsTable").rejected.clone().expect("rejected");
    assert!(rejected.contains("one at a time"), "{rejected}");
    // One created and one deleted: also two changes.
    let swapped = diff(&synthesized, &with_indexes(vec![index("a")]));
    assert!(change(&swapped, "ConnectionsTable").rejected.is_some());
    // The existing index's projection edited in place: rejected.
    let mut edited = existing;
    edited["Projection"] = json!({"ProjectionType": "KEYS_ONLY"});
    let in_place = diff(&synthesized, &with_indexes(vec![edited]));
    let rejected = change(&in_place, "ConnectionsTable").rejected.clone().expect("rejected");
    assert!(rejected.contains("bySessionAudience") && rejected.contains("new name"), "{rejected}");
    assert_eq!(in_place.rejected().count(), 1);
}

//! The published documents: current, complete, and in agreement with the code they describe.
//!
//! - The committed files are what `cargo xtask synth` writes today.
//! - Every route key of the contract is a client message pinning `action`, every server
//!   message pins `type`, and each message's example validates against its payload.
//! - The derived schema of each client action and the hand-written frame parser agree on every
//!   field: what the schema requires, the parser requires (and names in `MISSING_PARAMETER`);
//!   a field of the wrong type is refused by both.
//! - Every HTTP route of the contract is an operation, behind the JWT scheme exactly when the
//!   contract puts it behind the authorizer.

use contract::functions::HTTP;
use contract::{ACTION_FIELD, Action, HttpAuth};
use protocol_docs::check::{Bodies, Frames};
use protocol_docs::{ASYNCAPI_PATH, OPENAPI_PATH, REGENERATE, asyncapi, examples, openapi};
use serde_json::{Value, json};
use session_core::protocol::http::{ErrorBody, Health, HealthStatus, SessionView};
use session_core::protocol::{ErrorCode, parse_client_frame};
use session_core::validation::MAX_MESSAGE_BYTES;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn asyncapi() -> Value {
    serde_json::to_value(asyncapi::document().expect("the AsyncAPI document generates")).expect("JSON")
}

fn openapi() -> Value {
    serde_json::to_value(openapi::document().expect("the OpenAPI document generates")).expect("JSON")
}

#[test]
fn the_committed_documents_are_current() {
    for document in protocol_docs::documents().expect("the documents generate") {
        assert!(
            document.is_current(&root()),
            "{} is out of date with the code: run `{REGENERATE}` and commit it",
            document.path
        );
    }
}

#[test]
fn the_committed_documents_read_back_as_generated() {
    assert_eq!(protocol_docs::check::read(&root(), ASYNCAPI_PATH).expect("reads"), asyncapi());
    assert_eq!(protocol_docs::check::read(&root(), OPENAPI_PATH).expect("reads"), openapi());
}

#[test]
fn every_route_key_and_server_message_is_a_message_pinning_its_tag() {
    let document = asyncapi();
    let messages = document["components"]["messages"].as_object().expect("messages");
    for key in Action::all_route_keys() {
        assert_eq!(messages[key]["payload"]["properties"][ACTION_FIELD]["const"], key, "{key}");
        assert!(messages[key]["payload"]["required"].as_array().expect("required").contains(&json!(ACTION_FIELD)));
    }
    for frame in examples::server_frames() {
        let kind = frame.kind();
        assert_eq!(messages[&kind]["payload"]["properties"]["type"]["const"], kind.as_str(), "{kind}");
        let required = messages[&kind]["payload"]["required"].as_array().expect("required");
        assert!(required.contains(&json!("type")) && required.contains(&json!("timestamp")), "{kind}");
    }
    let client = Action::all_route_keys().count();
    assert_eq!(
        messages.len(),
        client + examples::server_frames().len(),
        "no message beyond the actions and server messages"
    );
}

#[test]
fn every_example_validates_against_its_message() {
    let document = asyncapi();
    let frames = Frames::of(&document).expect("the validators compile");
    for (name, message) in document["components"]["messages"].as_object().expect("messages") {
        let example = &message["examples"][0]["payload"];
        let checked = if example.get(ACTION_FIELD).is_some() {
            frames.check_client_frame(example)
        } else {
            frames.check_server_frame(example)
        };
        checked.unwrap_or_else(|problem| panic!("the example of {name}: {problem}"));
    }
}

#[test]
fn a_frame_breaking_its_schema_or_naming_no_message_is_refused() {
    let frames = Frames::of(&asyncapi()).expect("the validators compile");
    let bad = [
        json!({"type": "volumeChanged", "timestamp": 1, "volumeLevel": 1.5}),
        json!({"type": "sessionJoined", "timestamp": 1}),
        json!({"type": "volumeChanged", "volumeLevel": 0.5}),
        json!({"type": "somethingNew", "timestamp": 1}),
        json!({"timestamp": 1}),
    ];
    for frame in bad {
        assert!(frames.check_server_frame(&frame).is_err(), "{frame}");
    }
    let problem = frames.check_client_frame(&json!({"action": "setVolume", "volumeLevel": 2})).expect_err("refused");
    assert!(problem.contains(REGENERATE) && problem.contains("volumeLevel"), "{problem}");
}

#[test]
fn the_schema_and_the_parser_agree_on_every_field_of_every_action() {
    let document = asyncapi();
    let frames = Frames::of(&document).expect("the validators compile");
    for message in examples::client_messages() {
        for route_key in message.action().route_keys() {
            let mut frame = message.to_json();
            frame[ACTION_FIELD] = json!(route_key);
            let text = frame.to_string();
            assert_eq!(parse_client_frame(&text, MAX_MESSAGE_BYTES), Ok(message.clone()), "{text}");
            frames.check_client_frame(&frame).unwrap_or_else(|problem| panic!("{problem}"));
            let payload = &document["components"]["messages"][route_key]["payload"];
            let required: Vec<&str> =
                payload["required"].as_array().expect("required").iter().filter_map(Value::as_str).collect();
            let properties = payload["properties"].as_object().expect("properties");
            for field in properties.keys().filter(|field| *field != ACTION_FIELD) {
                let mut without = frame.clone();
                let was_present = without.as_object_mut().expect("object").remove(field).is_some();
                assert!(was_present, "the example of {route_key} must show its optional field `{field}` too");
                let parsed = parse_client_frame(&without.to_string(), MAX_MESSAGE_BYTES);
                let schema_accepts = frames.check_client_frame(&without).is_ok();
                if required.contains(&field.as_str()) {
                    let refusal = parsed.expect_err("the parser requires what the schema requires");
                    assert_eq!(
                        (refusal.code, refusal.field.as_deref()),
                        (ErrorCode::MissingParameter, Some(field.as_str()))
                    );
                    assert!(!schema_accepts, "{route_key}: the schema requires `{field}`");
                } else {
                    assert!(
                        parsed.is_ok(),
                        "{route_key}: the parser requires `{field}`, the schema does not: {parsed:?}"
                    );
                    assert!(schema_accepts, "{route_key}: `{field}` is optional");
                }
                // An array is no field's type.
                let mut wrong = frame.clone();
                wrong[field] = json!([]);
                let refusal = parse_client_frame(&wrong.to_string(), MAX_MESSAGE_BYTES).expect_err("refused");
                assert_eq!(
                    (refusal.code, refusal.field.as_deref()),
                    (ErrorCode::InvalidParameter, Some(field.as_str()))
                );
                assert!(
                    frames.check_client_frame(&wrong).is_err(),
                    "{route_key}: the schema accepts an array as `{field}`"
                );
            }
            let frame_fields: Vec<&String> = frame.as_object().expect("object").keys().collect();
            for field in frame_fields {
                assert!(
                    properties.contains_key(field),
                    "{route_key}: the client writes `{field}`, the schema lacks it"
                );
            }
        }
    }
}

#[test]
fn every_http_route_is_an_operation_with_its_authorization() {
    let document = openapi();
    for route in HTTP.http_routes {
        let operation = &document["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
        assert!(operation.is_object(), "{} is not in {OPENAPI_PATH}", route.route_key());
        let secured = operation["security"] == json!([{openapi::JWT_SCHEME: []}]);
        assert_eq!(secured, route.auth == HttpAuth::Jwt, "{}", route.route_key());
        let refused_401 = operation["responses"].get("401").is_some();
        assert_eq!(refused_401, route.auth == HttpAuth::Jwt, "{}: 401 only behind the authorizer", route.route_key());
    }
}

#[test]
fn the_http_bodies_validate_against_their_schemas() {
    let bodies = Bodies::of(&openapi()).expect("the validators compile");
    let refusal = serde_json::to_value(ErrorBody::from(&examples::refusal())).expect("JSON");
    bodies.check("ErrorBody", &refusal).unwrap_or_else(|problem| panic!("{problem}"));
    let health = serde_json::to_value(Health { status: HealthStatus::Ok }).expect("JSON");
    bodies.check("Health", &health).unwrap_or_else(|problem| panic!("{problem}"));
    let session = json!({
        "sessionId": "quiet-harbor-417", "status": "paused", "sourceLanguage": "en", "qualityTier": "premium",
        "listenerCount": 3, "broadcastState": {"isPaused": true, "isMuted": false, "volume": 1.0},
        "createdAt": 1_795_633_281_000_i64, "expiresAt": 1_795_676_481_000_i64,
    });
    bodies.check("SessionView", &session).unwrap_or_else(|problem| panic!("{problem}"));
    let typed: SessionView = serde_json::from_value(session.clone()).expect("a SessionView");
    assert_eq!(serde_json::to_value(typed).expect("JSON"), session);
    assert!(bodies.check("SessionView", &json!({"sessionId": "quiet-harbor-417"})).is_err());
}

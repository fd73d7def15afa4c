//! Validators of frames and bodies against the committed documents, compiled once (feature
//! `check`, for tests).
//!
//! [`Frames`] picks a frame's schema by the field its messages pin with `const`: a server
//! frame's `type`, a client frame's `action`. A frame whose `type` or `action` names no
//! message of the document is refused like one that breaks its message's schema. [`Bodies`]
//! checks HTTP bodies against the OpenAPI document's named schemas.
//!
//! Every refusal names the document and says how to regenerate it, since a refusal means the
//! code and the committed document disagree.

use crate::asyncapi::{CHANNEL, TYPE_FIELD};
use crate::{ASYNCAPI_PATH, OPENAPI_PATH, REGENERATE};
use contract::ACTION_FIELD;
use jsonschema::{Draft, Validator};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// Reads a committed document (YAML) as JSON.
pub fn read(root: &Path, path: &str) -> Result<Value, String> {
    let text = std::fs::read_to_string(root.join(path))
        .map_err(|error| format!("reading {path}: {error}; run `{REGENERATE}` to write it"))?;
    serde_saphyr::from_str(&text).map_err(|error| format!("{path} is not YAML: {error}"))
}

/// The validator of the schema at `pointer` of `document` (`#/components/...`), whose own
/// references resolve inside the document.
fn compile(document: &Value, pointer: &str, draft: Draft) -> Result<Validator, String> {
    let mut schema = document.clone();
    if let Value::Object(object) = &mut schema {
        object.insert("$ref".to_owned(), json!(pointer));
    }
    jsonschema::options().with_draft(draft).build(&schema).map_err(|error| format!("compiling {pointer}: {error}"))
}

/// Every way `instance` breaks the validator's schema, one line each.
fn problems(validator: &Validator, instance: &Value) -> Vec<String> {
    let place = |path: String| if path.is_empty() { "at the top".to_owned() } else { format!("at `{path}`") };
    validator
        .iter_errors(instance)
        .map(|error| format!("{}: {error}", place(error.instance_path().to_string())))
        .collect()
}

/// The messages of the AsyncAPI document, by the value they pin.
#[derive(Debug)]
pub struct Frames {
    /// Server messages by `type`.
    server: BTreeMap<String, Validator>,
    /// Client messages by `action`.
    client: BTreeMap<String, Validator>,
    handshake_query: Validator,
}

impl Frames {
    /// The validators of the committed `docs/asyncapi.yaml` under `root`.
    pub fn load(root: &Path) -> Result<Frames, String> {
        Frames::of(&read(root, ASYNCAPI_PATH)?)
    }

    /// The validators of an AsyncAPI document.
    pub fn of(document: &Value) -> Result<Frames, String> {
        let messages = document
            .pointer("/components/messages")
            .and_then(Value::as_object)
            .ok_or_else(|| format!("{ASYNCAPI_PATH} has no components.messages"))?;
        let (mut server, mut client) = (BTreeMap::new(), BTreeMap::new());
        for (name, message) in messages {
            let pointer = format!("#/components/messages/{name}/payload");
            let pinned =
                |field: &str| message.pointer(&format!("/payload/properties/{field}/const")).and_then(Value::as_str);
            match (pinned(TYPE_FIELD), pinned(ACTION_FIELD)) {
                (Some(kind), None) => server.insert(kind.to_owned(), compile(document, &pointer, Draft::Draft7)?),
                (None, Some(action)) => client.insert(action.to_owned(), compile(document, &pointer, Draft::Draft7)?),
                _ => return Err(format!("message {name} pins neither `{TYPE_FIELD}` nor `{ACTION_FIELD}` (or both)")),
            };
        }
        let query = format!("#/channels/{CHANNEL}/bindings/ws/query");
        Ok(Frames { server, client, handshake_query: compile(document, &query, Draft::Draft7)? })
    }

    /// Checks a frame the service sent.
    pub fn check_server_frame(&self, frame: &Value) -> Result<(), String> {
        pick(&self.server, frame, TYPE_FIELD, "server message")
    }

    /// Checks a frame a client sends.
    pub fn check_client_frame(&self, frame: &Value) -> Result<(), String> {
        pick(&self.client, frame, ACTION_FIELD, "client action")
    }

    /// Checks the query parameters of a handshake, as a JSON object of strings.
    pub fn check_handshake_query(&self, query: &Value) -> Result<(), String> {
        let found = problems(&self.handshake_query, query);
        if found.is_empty() {
            Ok(())
        } else {
            Err(refusal(&format!("handshake query {query}"), "the ws binding's query", &found))
        }
    }
}

fn pick(validators: &BTreeMap<String, Validator>, frame: &Value, field: &str, what: &str) -> Result<(), String> {
    let Some(name) = frame.get(field).and_then(Value::as_str) else {
        return Err(refusal(&format!("frame {frame}"), what, &[format!("no string `{field}` field")]));
    };
    let Some(validator) = validators.get(name) else {
        let known: Vec<&String> = validators.keys().collect();
        return Err(refusal(
            &format!("frame {frame}"),
            what,
            &[format!("no {what} `{name}` (the document has {known:?})")],
        ));
    };
    let found = problems(validator, frame);
    if found.is_empty() { Ok(()) } else { Err(refusal(&format!("frame {frame}"), &format!("{what} `{name}`"), &found)) }
}

fn refusal(subject: &str, schema: &str, problems: &[String]) -> String {
    format!(
        "{subject} does not match {schema} of {ASYNCAPI_PATH}:\n  {}\n\
         (the service and the published document disagree: if the protocol changed on purpose, run `{REGENERATE}` and commit the documents)",
        problems.join("\n  ")
    )
}

/// The named schemas of the OpenAPI document.
#[derive(Debug)]
pub struct Bodies {
    schemas: BTreeMap<String, Validator>,
}

impl Bodies {
    /// The validators of the committed `docs/openapi.yaml` under `root`.
    pub fn load(root: &Path) -> Result<Bodies, String> {
        Bodies::of(&read(root, OPENAPI_PATH)?)
    }

    /// The validators of an OpenAPI document's `components.schemas`.
    pub fn of(document: &Value) -> Result<Bodies, String> {
        let names = document
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .ok_or_else(|| format!("{OPENAPI_PATH} has no components.schemas"))?;
        let mut schemas = BTreeMap::new();
        for name in names.keys() {
            schemas
                .insert(name.clone(), compile(document, &format!("#/components/schemas/{name}"), Draft::Draft202012)?);
        }
        Ok(Bodies { schemas })
    }

    /// Checks a body against the named schema (`SessionView`, `ErrorBody`...).
    pub fn check(&self, schema: &str, body: &Value) -> Result<(), String> {
        let validator = self.schemas.get(schema).ok_or_else(|| format!("{OPENAPI_PATH} has no schema {schema}"))?;
        let found = problems(validator, body);
        if found.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "body {body} does not match {schema} of {OPENAPI_PATH}:\n  {}\n\
                 (if the HTTP API changed on purpose, run `{REGENERATE}` and commit the documents)",
                found.join("\n  ")
            ))
        }
    }
}

//! The AsyncAPI 3.0 document of the WebSocket API (`docs/asyncapi.yaml`).
//!
//! One channel, the connection. Its messages are every client action, one per route key of the
//! contract (an alias such as `switchLanguage` is a message of its own), and every server
//! message; each message's payload pins its `action` or `type` with `const`, so a client or a
//! validator picks the schema from the frame. The handshake's query parameters and header are
//! the channel's `ws` binding; the statuses of a refused handshake follow from the error codes
//! (`x-handshake-refusals`). Two operations: the service receives the client messages and
//! sends the server messages.

use crate::examples;
use crate::schemas::{Dialect, Schemas, Variant, paragraphs};
use crate::{Error, TITLE, VERSION};
use contract::{ACTION_FIELD, Action};
use serde::Serialize;
use serde_json::{Map, Value, json};
use session_core::protocol::handshake::{HandshakeHeaders, HandshakeQuery};
use session_core::protocol::http::ErrorBody;
use session_core::protocol::{ClientMessage, ErrorCode, ServerFrame};
use std::collections::BTreeMap;

/// The field of a server message that names its type.
pub const TYPE_FIELD: &str = "type";
/// The one channel: a client's connection.
pub const CHANNEL: &str = "connection";
/// The operation receiving every client message.
pub const RECEIVE_OPERATION: &str = "receiveClientMessage";
/// The operation sending every server message.
pub const SEND_OPERATION: &str = "sendServerMessage";

/// The document, fields in the order the specification lists them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AsyncApi {
    asyncapi: &'static str,
    #[serde(serialize_with = "crate::sorted")]
    info: Value,
    #[serde(serialize_with = "crate::sorted")]
    servers: Value,
    default_content_type: &'static str,
    #[serde(serialize_with = "crate::sorted")]
    channels: Value,
    #[serde(serialize_with = "crate::sorted")]
    operations: Value,
    #[serde(serialize_with = "crate::sorted")]
    components: Value,
}

/// Builds the document.
pub fn document() -> Result<AsyncApi, Error> {
    let mut schemas = Schemas::new(Dialect::Draft07);
    let client = client_messages(&mut schemas)?;
    let server = server_messages(&mut schemas)?;
    let mut messages = Map::new();
    for (name, message) in client.iter().chain(&server) {
        if messages.insert(name.clone(), message.clone()).is_some() {
            return Err(Error::Schema(format!("a client action and a server message are both named {name}")));
        }
    }
    let query = schemas.inline::<HandshakeQuery>()?;
    let headers = schemas.inline::<HandshakeHeaders>()?;
    let error_body = schemas.reference::<ErrorBody>();
    let channel_messages: Map<String, Value> =
        messages.keys().map(|name| (name.clone(), json!({"$ref": format!("#/components/messages/{name}")}))).collect();
    let refs = |names: &[(String, Value)]| -> Vec<Value> {
        names.iter().map(|(name, _)| json!({"$ref": format!("#/channels/{CHANNEL}/messages/{name}")})).collect()
    };
    Ok(AsyncApi {
        asyncapi: "3.0.0",
        info: json!({
            "title": format!("{TITLE}: WebSocket API"),
            "version": VERSION,
            "description": paragraphs(INFO),
        }),
        servers: servers(),
        default_content_type: "application/json",
        channels: json!({
            CHANNEL: {
                "title": "A client's connection",
                "description": paragraphs(&connection_description()),
                "messages": channel_messages,
                "bindings": {
                    "ws": {"method": "GET", "query": query, "headers": headers, "bindingVersion": "0.1.0"},
                },
                "x-handshake-refusals": handshake_refusals(&error_body),
            },
        }),
        operations: json!({
            RECEIVE_OPERATION: {
                "action": "receive",
                "channel": {"$ref": format!("#/channels/{CHANNEL}")},
                "summary": format!("What clients send: the `{ACTION_FIELD}` field selects the route (one per action)."),
                "messages": refs(&client),
            },
            SEND_OPERATION: {
                "action": "send",
                "channel": {"$ref": format!("#/channels/{CHANNEL}")},
                "summary": format!("What the service sends: the `{TYPE_FIELD}` field names the message; every message carries `timestamp`."),
                "messages": refs(&server),
            },
        }),
        components: json!({
            "messages": messages,
            "schemas": schemas.definitions()?,
            "securitySchemes": {
                "speakerToken": {
                    "type": "httpApiKey",
                    "in": "query",
                    "name": "token",
                    "description": "A speaker's token (a JWT) in the `token` query parameter, as browsers send it. Listeners connect without one.",
                },
                "speakerBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A speaker's token in `Authorization: Bearer`, for clients that can set headers.",
                },
            },
        }),
    })
}

/// Every client action, one message per route key (aliases included), in the contract's order.
fn client_messages(schemas: &mut Schemas) -> Result<Vec<(String, Value)>, Error> {
    let variants = by_tag(schemas.variants::<ClientMessage>(ACTION_FIELD)?);
    let examples: BTreeMap<String, Value> = examples::client_messages()
        .iter()
        .map(|message| (message.action().name().to_owned(), message.to_json()))
        .collect();
    let mut messages = Vec::new();
    for action in Action::ALL {
        let variant = variants
            .get(action.name())
            .ok_or_else(|| Error::Schema(format!("the contract's action {action} is no variant of ClientMessage")))?;
        for route_key in action.route_keys() {
            let mut payload = variant.clone();
            payload["properties"][ACTION_FIELD]["const"] = json!(route_key);
            let mut example = examples.get(action.name()).cloned().unwrap_or(Value::Null);
            example[ACTION_FIELD] = json!(route_key);
            let description = if route_key == action.name() {
                description(&payload)
            } else {
                format!("An alias of `{action}`: the same message under another route key.")
            };
            messages.push((route_key.to_owned(), message(route_key, description, payload, example)));
        }
    }
    if variants.len() != Action::ALL.len() {
        let known: Vec<&str> = Action::ALL.iter().map(|action| action.name()).collect();
        let extra: Vec<&String> = variants.keys().filter(|name| !known.contains(&name.as_str())).collect();
        return Err(Error::Schema(format!("ClientMessage variants no contract action declares: {extra:?}")));
    }
    Ok(messages)
}

/// Every server message, in the order of `ServerMessage`.
fn server_messages(schemas: &mut Schemas) -> Result<Vec<(String, Value)>, Error> {
    let examples: BTreeMap<String, Value> = examples::server_frames()
        .iter()
        .filter_map(|frame| {
            let value = serde_json::to_value(frame).ok()?;
            Some((value.get(TYPE_FIELD)?.as_str()?.to_owned(), value))
        })
        .collect();
    schemas
        .variants::<ServerFrame>(TYPE_FIELD)?
        .into_iter()
        .map(|Variant { tag_value, schema }| {
            let example = examples.get(&tag_value).cloned().unwrap_or(Value::Null);
            let message = message(&tag_value, description(&schema), schema, example);
            Ok((tag_value, message))
        })
        .collect()
}

fn by_tag(variants: Vec<Variant>) -> BTreeMap<String, Value> {
    variants.into_iter().map(|variant| (variant.tag_value, variant.schema)).collect()
}

fn description(schema: &Value) -> String {
    schema.get("description").and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// A message of the document: its name, a summary (the description's first sentence), its
/// description, its payload and an example.
fn message(name: &str, description: String, payload: Value, example: Value) -> Value {
    let summary = description.split_inclusive(". ").next().unwrap_or_default().trim().to_owned();
    let mut message = json!({"name": name, "title": name, "summary": summary, "payload": payload});
    if summary != description {
        message["description"] = json!(description);
    }
    if !example.is_null() {
        message["examples"] = json!([{"name": "example", "payload": example}]);
    }
    message
}

/// Each HTTP status a refused handshake may carry, with the codes it stands for.
fn handshake_refusals(error_body: &Value) -> Value {
    let mut by_status: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    for code in ErrorCode::ALL {
        by_status.entry(code.http_status()).or_default().push(code.as_str());
    }
    let statuses: Vec<Value> =
        by_status.into_iter().map(|(status, codes)| json!({"status": status, "codes": codes})).collect();
    json!({
        "description": "A refused handshake is answered with an HTTP status and this body; the status is the error code's. Browsers see only close code 1006.",
        "body": error_body,
        "statuses": statuses,
    })
}

fn servers() -> Value {
    let stages: Vec<String> = stacks::stages::all().into_iter().map(|stage| stage.name).collect();
    let mut regions: Vec<String> = stacks::stages::all().into_iter().map(|stage| stage.region).collect();
    regions.dedup();
    json!({
        "aws": {
            "host": "{apiId}.execute-api.{region}.amazonaws.com",
            "pathname": "/{stage}",
            "protocol": "wss",
            "description": "The stage's WebSocket API on API Gateway (`cargo xtask deploy` prints its URL).",
            "variables": {
                "apiId": {"description": "The WebSocket API's id."},
                "region": {"enum": regions.clone(), "default": regions.first().cloned().unwrap_or_default()},
                "stage": {"enum": stages.clone(), "default": stages.first().cloned().unwrap_or_default()},
            },
            "security": [
                {"$ref": "#/components/securitySchemes/speakerToken"},
                {"$ref": "#/components/securitySchemes/speakerBearer"},
            ],
        },
    })
}

const INFO: &str = "What clients and the session service say to each other over the WebSocket API.
A speaker (authenticated by a JWT) owns a session and controls its broadcast; listeners join
anonymously by session id and target language.

Client messages are JSON objects whose `action` field selects the route; fields are camelCase
and fields the service does not know are ignored. Every server message carries `type` and
`timestamp` (milliseconds since the epoch). A message the service cannot act on is answered
with an `error` message naming the code, and the field at fault if any.

Generated from the service's code (the protocol types of `handlers/core` and the contract of
`handlers/contract`) by `cargo xtask synth`; do not edit.";

fn connection_description() -> String {
    let max_kb = contract::limits::MAX_MESSAGE_BYTES / 1024;
    format!(
        "A listener connects with `?sessionId=<id>&targetLanguage=<lang>` and no token; a
speaker with `?sessionId=<id>&token=<jwt>` (or `Authorization: Bearer <jwt>`), or with a token
and no session and then sends `createSession`. A refused handshake is an HTTP status (see
`x-handshake-refusals`).

API Gateway closes a connection after 2 hours, or after 10 minutes without traffic: clients
send `heartbeat` every 30 s, and when told `connectionRefreshRequired` open a new connection
and send `refreshConnection` on it. A message is at most {max_kb} KB and a frame 32 KB; a
larger one closes the connection with code 1009.

When a function fails outright (a crash or a timeout, never a refusal), API Gateway itself
answers the frame with `{{\"message\": \"Internal server error\", \"connectionId\": ..., \"requestId\": ...}}`,
which has no `type`; the connection stays open."
    )
}

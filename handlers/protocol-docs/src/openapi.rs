//! The OpenAPI 3.1 document of the HTTP API (`docs/openapi.yaml`).
//!
//! Every route of the contract's `http` function is an operation, with its authorization from
//! the contract (the JWT security scheme on the routes behind the HTTP API's JWT authorizer).
//! [`OPERATIONS`] pairs each route, by position, with what it takes and answers, as the
//! function does (`handlers/http`), and a compile-time check keeps the pairing honest: as many
//! operations as routes, each with its route's method. A refusal's status is its error code's
//! ([`ErrorCode::http_status`]) unless the operation documents another.

use crate::schemas::{Dialect, Schemas, paragraphs};
use crate::{Error, TITLE, VERSION};
use contract::functions::HTTP;
use contract::{HttpAuth, HttpMethod, HttpRoute};
use serde::Serialize;
use serde_json::{Map, Value, json};
use session_core::ids::SessionId;
use session_core::protocol::ErrorCode;
use session_core::protocol::http::{
    CreateSessionRequest, ErrorBody, GatewayRefusal, Health, SessionView, UpdateSessionRequest,
};
use std::collections::BTreeMap;

/// The name of the JWT security scheme.
pub const JWT_SCHEME: &str = "speakerJwt";

/// The document, fields in the order the specification lists them.
#[derive(Debug, Serialize)]
pub struct OpenApi {
    openapi: &'static str,
    #[serde(serialize_with = "crate::sorted")]
    info: Value,
    #[serde(serialize_with = "crate::sorted")]
    servers: Value,
    #[serde(serialize_with = "crate::sorted")]
    paths: Value,
    #[serde(serialize_with = "crate::sorted")]
    components: Value,
}

/// A schema of the document, generated on demand.
type SchemaOf = fn(&mut Schemas) -> Value;

/// What one route takes and answers.
#[derive(Debug, Clone, Copy)]
struct Operation {
    /// The method the route must have (checked against the contract at compile time).
    method: HttpMethod,
    id: &'static str,
    summary: &'static str,
    /// The schema of each `{placeholder}` of the path, by name.
    path_parameters: &'static [(&'static str, SchemaOf)],
    request: Option<SchemaOf>,
    /// The success status and its body.
    success: (u16, &'static str, SchemaOf),
    /// A `Location` header on success.
    location: bool,
    /// The codes the operation refuses with.
    refusals: &'static [ErrorCode],
    /// Codes answered with another status than their own.
    status_overrides: &'static [(ErrorCode, u16)],
}

const SESSION_ID: (&str, SchemaOf) = ("id", Schemas::reference::<SessionId>);
const BAD_BODY: [ErrorCode; 3] = [ErrorCode::MissingParameter, ErrorCode::InvalidParameter, ErrorCode::InvalidMessage];
const FAILURES: [ErrorCode; 2] = [ErrorCode::InternalError, ErrorCode::ServiceUnavailable];

/// The operations, in the order of the contract's routes.
const OPERATIONS: [Operation; 5] = [
    Operation {
        method: HttpMethod::Post,
        id: "createSession",
        summary: "Create a session; the caller is its speaker.",
        path_parameters: &[],
        request: Some(Schemas::reference::<CreateSessionRequest>),
        success: (201, "The session, created.", Schemas::reference::<SessionView>),
        location: true,
        refusals: &[
            BAD_BODY[0],
            BAD_BODY[1],
            BAD_BODY[2],
            ErrorCode::Unauthorized,
            ErrorCode::RateLimitExceeded,
            FAILURES[0],
            FAILURES[1],
        ],
        status_overrides: &[],
    },
    Operation {
        method: HttpMethod::Get,
        id: "getSession",
        summary: "Read a session's public fields (anyone).",
        path_parameters: &[SESSION_ID],
        request: None,
        success: (
            200,
            "The session; ended first if its speaker's grace period is over.",
            Schemas::reference::<SessionView>,
        ),
        location: false,
        refusals: &[
            ErrorCode::MissingParameter,
            ErrorCode::InvalidParameter,
            ErrorCode::SessionNotFound,
            FAILURES[0],
            FAILURES[1],
        ],
        status_overrides: &[],
    },
    Operation {
        method: HttpMethod::Patch,
        id: "updateSession",
        summary: "Pause or resume a session (its speaker). Every connection of the session is told.",
        path_parameters: &[SESSION_ID],
        request: Some(Schemas::reference::<UpdateSessionRequest>),
        success: (200, "The session, updated.", Schemas::reference::<SessionView>),
        location: false,
        refusals: &[
            BAD_BODY[0],
            BAD_BODY[1],
            BAD_BODY[2],
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::SessionNotFound,
            ErrorCode::SessionInactive,
            FAILURES[0],
            FAILURES[1],
        ],
        // The request is well-formed and the caller owns the session, but it has ended.
        status_overrides: &[(ErrorCode::SessionInactive, 409)],
    },
    Operation {
        method: HttpMethod::Delete,
        id: "endSession",
        summary: "End a session (its speaker). Every connection is told `sessionEnded` and closed.",
        path_parameters: &[SESSION_ID],
        request: None,
        success: (200, "The ended session (also when it had already ended).", Schemas::reference::<SessionView>),
        location: false,
        refusals: &[
            ErrorCode::MissingParameter,
            ErrorCode::InvalidParameter,
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::SessionNotFound,
            FAILURES[0],
            FAILURES[1],
        ],
        status_overrides: &[],
    },
    Operation {
        method: HttpMethod::Get,
        id: "health",
        summary: "Whether the function answers (anyone).",
        path_parameters: &[],
        request: None,
        success: (200, "The function answers.", Schemas::reference::<Health>),
        location: false,
        refusals: &[],
        status_overrides: &[],
    },
];

// The contract and `OPERATIONS` agree: as many operations as routes, each with its method.
const _: () = {
    assert!(HTTP.http_routes.len() == OPERATIONS.len(), "the contract's HTTP routes and OPERATIONS differ in number");
    let mut index = 0;
    while index < OPERATIONS.len() {
        assert!(
            HTTP.http_routes[index].method as u8 == OPERATIONS[index].method as u8,
            "a contract route has another method than its operation"
        );
        index += 1;
    }
};

/// Builds the document.
pub fn document() -> Result<OpenApi, Error> {
    let mut schemas = Schemas::new(Dialect::Draft2020_12);
    let mut paths: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for (route, operation) in HTTP.http_routes.iter().zip(OPERATIONS) {
        let method = route.method.as_str().to_ascii_lowercase();
        paths.entry(route.path).or_default().insert(method, path_operation(route, &operation, &mut schemas)?);
    }
    Ok(OpenApi {
        openapi: "3.1.0",
        info: json!({"title": format!("{TITLE}: HTTP API"), "version": VERSION, "description": paragraphs(INFO)}),
        servers: json!([{
            "url": "https://{apiId}.execute-api.{region}.amazonaws.com",
            "description": "The stage's HTTP API on API Gateway (its `$default` stage; `cargo xtask deploy` prints its URL).",
            "variables": {
                "apiId": {"default": "apiId", "description": "The HTTP API's id."},
                "region": {"default": stacks::stages::dev().region},
            },
        }]),
        paths: json!(paths),
        components: json!({
            "schemas": schemas.definitions()?,
            "securitySchemes": {
                JWT_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A speaker's token, checked by the HTTP API's JWT authorizer (the stage's issuer and audience) before the function runs; the caller is its `sub` claim.",
                },
            },
        }),
    })
}

fn path_operation(route: &HttpRoute, operation: &Operation, schemas: &mut Schemas) -> Result<Value, Error> {
    let mut parameters = Vec::new();
    for name in placeholders(route.path) {
        let (_, schema) = operation.path_parameters.iter().find(|(known, _)| *known == name).ok_or_else(|| {
            Error::Schema(format!("{}: no schema for the path parameter {{{name}}}", route.route_key()))
        })?;
        parameters.push(json!({"name": name, "in": "path", "required": true, "schema": schema(schemas)}));
    }
    let (status, description, body) = operation.success;
    let mut success = json!({"description": description, "content": {"application/json": {"schema": body(schemas)}}});
    if operation.location {
        success["headers"] = json!({"Location": {"description": "The session's path.", "schema": {"type": "string"}}});
    }
    let mut responses = Map::new();
    responses.insert(status.to_string(), success);
    responses.extend(refusals(route, operation, schemas));
    let mut value = json!({
        "operationId": operation.id,
        "summary": operation.summary,
        "responses": responses,
        "security": match route.auth {
            HttpAuth::Jwt => json!([{JWT_SCHEME: []}]),
            HttpAuth::None => json!([]),
        },
    });
    if !parameters.is_empty() {
        value["parameters"] = json!(parameters);
    }
    if let Some(request) = operation.request {
        value["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": request(schemas)}}});
    }
    Ok(value)
}

/// The responses of an operation's refusals, one per status, each naming its codes.
fn refusals(route: &HttpRoute, operation: &Operation, schemas: &mut Schemas) -> Map<String, Value> {
    let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    for code in operation.refusals {
        let status = operation
            .status_overrides
            .iter()
            .find(|(overridden, _)| overridden == code)
            .map_or(code.http_status(), |(_, status)| *status);
        by_status.entry(status).or_default().push(*code);
    }
    let error_body = schemas.reference::<ErrorBody>();
    by_status
        .into_iter()
        .map(|(status, codes)| {
            let listed: Vec<String> = codes.iter().map(|code| format!("`{code}`")).collect();
            let mut description = format!("Refused: {}.", listed.join(", "));
            let mut schema = error_body.clone();
            if status == ErrorCode::Unauthorized.http_status() && route.auth == HttpAuth::Jwt {
                description.push_str(" API Gateway's JWT authorizer refuses a missing or invalid token before the function runs, with `{\"message\":\"Unauthorized\"}`.");
                schema = json!({"anyOf": [error_body.clone(), schemas.reference::<GatewayRefusal>()]});
            }
            let mut response = json!({"description": description, "content": {"application/json": {"schema": schema}}});
            if codes.iter().any(|code| matches!(code, ErrorCode::RateLimitExceeded | ErrorCode::ServiceUnavailable)) {
                response["headers"] = json!({"Retry-After": {
                    "description": "Seconds until a retry may succeed (as `retryAfter` in the body).",
                    "schema": {"type": "integer", "minimum": 0},
                }});
            }
            (status.to_string(), response)
        })
        .collect()
}

/// The names of a path's `{placeholders}`, in order.
fn placeholders(path: &str) -> Vec<&str> {
    path.split('{').skip(1).filter_map(|rest| rest.split_once('}').map(|(name, _)| name)).collect()
}

const INFO: &str = "The HTTP API of the session service: create, read, pause, resume and end sessions.
Every answer is JSON. A session is shown by its public fields, times in milliseconds since the
epoch. A refusal's body is `{code, message, details?, retryAfter?}` and its status is the
code's, except where an operation says otherwise.

Generated from the service's code (the protocol types of `handlers/core` and the contract of
`handlers/contract`) by `cargo xtask synth`; do not edit.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_read_from_paths() {
        assert_eq!(placeholders("/sessions/{id}"), ["id"]);
        assert_eq!(placeholders("/a/{x}/b/{y}"), ["x", "y"]);
        assert!(placeholders("/health").is_empty());
    }
}

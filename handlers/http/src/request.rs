//! Reading an HTTP API request: its route key, the caller, the session id in the path and
//! the JSON body, each with the protocol's refusals.
//!
//! A body is read like a frame: empty, not JSON, or JSON that is not an object is
//! `INVALID_MESSAGE`; its fields are then read through [`session_core::protocol::Fields`], so a
//! missing field is `MISSING_PARAMETER` and a bad one `INVALID_PARAMETER`, both naming it.

use crate::routes::ID_PARAMETER;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use base64::Engine as _;
use serde_json::{Map, Value};
use session_core::ids::SessionId;
use session_core::protocol::{ErrorCode, ProtocolError};
use std::borrow::Cow;

/// The claim of the JWT authorizer that names the caller.
const SUBJECT_CLAIM: &str = "sub";

/// The request's route key (`POST /sessions`), from the event or its request context.
pub(crate) fn route_key(request: &ApiGatewayV2httpRequest) -> &str {
    request.route_key.as_deref().or(request.request_context.route_key.as_deref()).unwrap_or("")
}

/// The caller's user id: the `sub` claim the JWT authorizer verified. A route behind the
/// authorizer always has it; its absence means the API is misconfigured (`UNAUTHORIZED`).
pub(crate) fn subject(request: &ApiGatewayV2httpRequest) -> Result<&str, ProtocolError> {
    request
        .request_context
        .authorizer
        .as_ref()
        .and_then(|authorizer| authorizer.jwt.as_ref())
        .and_then(|jwt| jwt.claims.get(SUBJECT_CLAIM))
        .map(String::as_str)
        .filter(|sub| !sub.is_empty())
        .ok_or_else(|| {
            tracing::error!("a route behind the JWT authorizer received no `sub` claim; check the API's authorizer");
            ProtocolError::new(ErrorCode::Unauthorized, "this route needs a valid bearer token")
        })
}

/// The session id in the path (`/sessions/{id}`).
pub(crate) fn session_id(request: &ApiGatewayV2httpRequest) -> Result<SessionId, ProtocolError> {
    match request.path_parameters.get(ID_PARAMETER).map(String::as_str) {
        None | Some("") => Err(ProtocolError::missing(ID_PARAMETER)),
        Some(text) => SessionId::parse(text).map_err(|rule| ProtocolError::invalid(ID_PARAMETER, rule)),
    }
}

/// The body as a JSON object (decoded first when API Gateway sent it base64-encoded).
pub(crate) fn json_object(request: &ApiGatewayV2httpRequest) -> Result<Map<String, Value>, ProtocolError> {
    let text = request.body.as_deref().unwrap_or("");
    if text.is_empty() {
        return Err(invalid_message("the request needs a JSON object body"));
    }
    let bytes: Cow<'_, [u8]> = if request.is_base64_encoded {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| invalid_message("the body is marked base64-encoded but is not valid base64"))?;
        Cow::Owned(decoded)
    } else {
        Cow::Borrowed(text.as_bytes())
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid_message("the request needs a JSON object body"));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(invalid_message("the body must be a JSON object")),
        Err(error) => Err(invalid_message(&format!("the body is not valid JSON ({error})"))),
    }
}

fn invalid_message(message: &str) -> ProtocolError {
    ProtocolError::new(ErrorCode::InvalidMessage, message)
}

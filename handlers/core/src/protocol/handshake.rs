//! What a client puts in its WebSocket handshake (the `$connect` request), PROTOCOL.md
//! "Connecting".
//!
//! - A listener: `?sessionId=<id>&targetLanguage=<lang>`, no token. A listener's new connection
//!   that replaces one API Gateway is about to close adds `previousConnectionId`.
//! - A speaker: `?sessionId=<id>&token=<jwt>`, or the token in `Authorization: Bearer <jwt>`
//!   for clients that can set headers (browsers cannot). A speaker may connect without
//!   `sessionId` and then send `createSession`.
//!
//! `targetLanguage` makes the connection a listener's; without it a connection with a valid
//! token is the speaker's. A refused handshake is answered with the HTTP status of its error
//! code ([`super::ErrorCode::http_status`]) and the error body; a browser sees only close
//! code 1006, so the status is for the tools that can see it.

use super::ProtocolError;
use crate::ids::SessionId;
use crate::validation::LanguageCode;
use serde::{Deserialize, Serialize};

/// The query parameters' names, as clients send them ([`HandshakeQuery`]'s fields; a test holds
/// the two equal).
pub const SESSION_ID_PARAM: &str = "sessionId";
pub const TARGET_LANGUAGE_PARAM: &str = "targetLanguage";
pub const TOKEN_PARAM: &str = "token";
pub const PREVIOUS_CONNECTION_PARAM: &str = "previousConnectionId";
/// The longest `previousConnectionId` accepted (API Gateway's ids are 16 characters).
pub const MAX_CONNECTION_ID_CHARS: usize = 128;

/// The query parameters of the handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct HandshakeQuery {
    /// The session to join (listeners) or broadcast (speakers, who must own it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    /// A listener's language; its presence makes the connection a listener's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_language: Option<LanguageCode>,
    /// A speaker's token (a JWT). An invalid or expired token is refused with 401, never taken
    /// for a listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub token: Option<String>,
    /// A listener's new connection: the `connectionId` of the connection it replaces (from
    /// `sessionJoined` or `connectionRefreshRequired`), whose place in the session it takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_connection_id: Option<String>,
}

/// The headers of the handshake the service reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HandshakeHeaders {
    /// `Bearer <jwt>`: a speaker's token, for clients that can set headers. The `token` query
    /// parameter wins when both are present.
    #[serde(rename = "Authorization", default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = "^[Bb][Ee][Aa][Rr][Ee][Rr] +[^ ]+")))]
    pub authorization: Option<String>,
}

impl HandshakeQuery {
    /// Reads the handshake's query parameters (`param` answers a parameter's value), refusing a
    /// bad one with the documented code naming it: an empty value is `MISSING_PARAMETER`, one
    /// that breaks its rule `INVALID_PARAMETER`. An empty `token` counts as absent, so an
    /// `Authorization` header may still carry the token.
    pub fn read<'a>(param: impl Fn(&str) -> Option<&'a str>) -> Result<HandshakeQuery, ProtocolError> {
        Ok(HandshakeQuery {
            session_id: parsed(&param, SESSION_ID_PARAM, SessionId::parse)?,
            target_language: parsed(&param, TARGET_LANGUAGE_PARAM, LanguageCode::parse)?,
            token: param(TOKEN_PARAM).filter(|token| !token.is_empty()).map(str::to_owned),
            previous_connection_id: parsed(&param, PREVIOUS_CONNECTION_PARAM, connection_id)?,
        })
    }
}

/// The parameter `name`, when present, read by `parse`.
fn parsed<'a, T, E: std::fmt::Display>(
    param: &impl Fn(&str) -> Option<&'a str>,
    name: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, ProtocolError> {
    match param(name) {
        None => Ok(None),
        Some("") => Err(ProtocolError::missing(name)),
        Some(value) => parse(value).map(Some).map_err(|rule| ProtocolError::invalid(name, rule)),
    }
}

/// What `previousConnectionId` may be: an API Gateway connection id (at most
/// [`MAX_CONNECTION_ID_CHARS`] printable ASCII characters).
fn connection_id(value: &str) -> Result<String, String> {
    if value.len() > MAX_CONNECTION_ID_CHARS || !value.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(format!("must be a connection id (at most {MAX_CONNECTION_ID_CHARS} printable ASCII characters)"));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;
    use std::collections::{BTreeMap, BTreeSet};

    fn read(pairs: &[(&str, &str)]) -> Result<HandshakeQuery, ProtocolError> {
        let query: BTreeMap<&str, &str> = pairs.iter().copied().collect();
        HandshakeQuery::read(|name| query.get(name).copied())
    }

    #[test]
    fn the_parameter_names_are_the_fields_clients_send() {
        let all = HandshakeQuery {
            session_id: Some(SessionId::parse("quiet-harbor-417").expect("id")),
            target_language: Some(LanguageCode::parse("de").expect("language")),
            token: Some("t".into()),
            previous_connection_id: Some("abc=".into()),
        };
        let wire = serde_json::to_value(&all).expect("serializes");
        let names: BTreeSet<&str> = wire.as_object().expect("object").keys().map(String::as_str).collect();
        let constants =
            BTreeSet::from([SESSION_ID_PARAM, TARGET_LANGUAGE_PARAM, TOKEN_PARAM, PREVIOUS_CONNECTION_PARAM]);
        assert_eq!(names, constants);
        let pairs: Vec<(&str, &str)> = vec![
            (SESSION_ID_PARAM, "quiet-harbor-417"),
            (TARGET_LANGUAGE_PARAM, "de"),
            (TOKEN_PARAM, "t"),
            (PREVIOUS_CONNECTION_PARAM, "abc="),
        ];
        assert_eq!(read(&pairs).expect("reads"), all);
    }

    #[test]
    fn absent_parameters_are_none_and_an_empty_token_is_absent() {
        assert_eq!(read(&[]).expect("reads"), HandshakeQuery::default());
        assert_eq!(read(&[(TOKEN_PARAM, "")]).expect("reads").token, None);
    }

    #[test]
    fn an_empty_parameter_is_missing_and_a_bad_one_invalid_each_named() {
        for name in [SESSION_ID_PARAM, TARGET_LANGUAGE_PARAM, PREVIOUS_CONNECTION_PARAM] {
            let error = read(&[(name, "")]).expect_err("refused");
            assert_eq!((error.code, error.field.as_deref()), (ErrorCode::MissingParameter, Some(name)));
        }
        let long = "a".repeat(MAX_CONNECTION_ID_CHARS + 1);
        for (name, value) in [
            (SESSION_ID_PARAM, "not an id"),
            (TARGET_LANGUAGE_PARAM, "xx"),
            (PREVIOUS_CONNECTION_PARAM, long.as_str()),
            (PREVIOUS_CONNECTION_PARAM, "with space"),
        ] {
            let error = read(&[(name, value)]).expect_err("refused");
            assert_eq!((error.code, error.field.as_deref()), (ErrorCode::InvalidParameter, Some(name)), "{value}");
        }
        let longest = "a".repeat(MAX_CONNECTION_ID_CHARS);
        assert!(read(&[(PREVIOUS_CONNECTION_PARAM, &longest)]).is_ok());
    }
}

//! The deployed functions: what each serves, reads and calls.
//!
//! - `authorizer`: the `$connect` REQUEST authorizer. Runs for every connection (no identity
//!   source), allows tokenless listeners as anonymous, allows valid speaker tokens with the
//!   user's id and email, and refuses invalid tokens with `Unauthorized` (401).
//! - `connection`: `$connect` and `$disconnect`.
//! - `messages`: `$default` and every action route.
//! - `http`: the HTTP API (`/sessions`, `/health`).

use crate::actions::{Action, CONNECT_ROUTE, DEFAULT_ROUTE, DISCONNECT_ROUTE, SWITCH_LANGUAGE_ALIAS};
use crate::env;
use crate::model::{
    AuthorizerContract, EnvSource, EnvVar, Function, HttpAuth, HttpMethod, HttpRoute, Permission, Resource, StreamId,
    TableId,
};

/// The keys the authorizer puts in its context (flat strings, AWS_FACTS 4).
pub mod context {
    /// `"true"` when a valid speaker token was presented, `"false"` for anonymous listeners.
    pub const AUTHENTICATED: &str = "authenticated";
    /// The token's subject; empty when anonymous.
    pub const USER_ID: &str = "userId";
    /// The token's email claim; empty when anonymous or absent.
    pub const EMAIL: &str = "email";
    /// Every key, in the order above.
    pub const ALL: &[&str] = &[AUTHENTICATED, USER_ID, EMAIL];
}

const fn var(name: &'static str, source: EnvSource) -> EnvVar {
    EnvVar { name, source }
}

const fn setting(name: &'static str) -> EnvVar {
    var(name, EnvSource::StageSetting(name))
}

const SESSIONS_TABLE: EnvVar = var(env::SESSIONS_TABLE, EnvSource::TableName(TableId::Sessions));
const CONNECTIONS_TABLE: EnvVar = var(env::CONNECTIONS_TABLE, EnvSource::TableName(TableId::Connections));
const RATE_LIMITS_TABLE: EnvVar = var(env::RATE_LIMITS_TABLE, EnvSource::TableName(TableId::RateLimits));
const AUDIO_STREAM: EnvVar = var(env::AUDIO_STREAM, EnvSource::StreamName(StreamId::Audio));
const MANAGEMENT_ENDPOINT: EnvVar = var(env::MANAGEMENT_ENDPOINT, EnvSource::ManagementEndpoint);

/// Reading and writing items of a table.
const ITEM_ACTIONS: &[&str] = &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"];
/// Querying a table's indexes.
const QUERY: &[&str] = &["dynamodb:Query"];
/// Posting to, reading and closing connections through `@connections`.
pub const MANAGE_CONNECTIONS: &[&str] = &["execute-api:ManageConnections"];
/// Appending audio chunks.
const PUT_RECORD: &[&str] = &["kinesis:PutRecord"];

const fn on(actions: &'static [&'static str], resource: Resource) -> Permission {
    Permission { actions, resource }
}

/// The store's access to all three tables and the fan-out index, and `@connections` to tell
/// clients about it: what every function that touches sessions needs.
const SESSION_PERMISSIONS: [Permission; 5] = [
    on(ITEM_ACTIONS, Resource::Table(TableId::Sessions)),
    on(ITEM_ACTIONS, Resource::Table(TableId::Connections)),
    on(QUERY, Resource::TableIndexes(TableId::Connections)),
    on(ITEM_ACTIONS, Resource::Table(TableId::RateLimits)),
    on(MANAGE_CONNECTIONS, Resource::Connections),
];

/// What a speaker token is checked against: the same issuer, audiences and keys as the HTTP
/// API's JWT authorizer, so every path accepts the same tokens.
const JWT_SETTINGS: [EnvVar; 3] = [setting(env::JWT_ISSUER), setting(env::JWT_AUDIENCE), setting(env::JWKS_SOURCE)];

/// The `$connect` authorizer.
pub const AUTHORIZER: Function = Function {
    name: "authorizer",
    websocket_routes: &[],
    http_routes: &[],
    environment: &JWT_SETTINGS,
    permissions: &[],
    reads_authorizer_context: &[],
};

/// `$connect` and `$disconnect`.
pub const CONNECTION: Function = Function {
    name: "connection",
    websocket_routes: &[CONNECT_ROUTE, DISCONNECT_ROUTE],
    http_routes: &[],
    environment: &[
        SESSIONS_TABLE,
        CONNECTIONS_TABLE,
        RATE_LIMITS_TABLE,
        MANAGEMENT_ENDPOINT,
        setting(env::CONNECT_AUTH),
        JWT_SETTINGS[0],
        JWT_SETTINGS[1],
        JWT_SETTINGS[2],
        setting(env::MAX_LISTENERS_PER_SESSION),
        setting(env::CONNECTS_PER_MINUTE_PER_IP),
        setting(env::UNKNOWN_SESSION_CONNECTS_PER_MINUTE_PER_IP),
        setting(env::CONNECTION_TTL_SECONDS),
        setting(env::SPEAKER_GRACE_SECONDS),
    ],
    permissions: &SESSION_PERMISSIONS,
    reads_authorizer_context: context::ALL,
};

/// Route keys of the `messages` function: `$default` and every action (aliases included).
pub const MESSAGE_ROUTES: &[&str] = &[
    DEFAULT_ROUTE,
    Action::CreateSession.name(),
    Action::JoinSession.name(),
    Action::Heartbeat.name(),
    Action::RefreshConnection.name(),
    Action::GetSessionStatus.name(),
    Action::PauseBroadcast.name(),
    Action::ResumeBroadcast.name(),
    Action::MuteBroadcast.name(),
    Action::UnmuteBroadcast.name(),
    Action::SetVolume.name(),
    Action::SpeakerStateChange.name(),
    Action::ChangeLanguage.name(),
    SWITCH_LANGUAGE_ALIAS,
    Action::EndSession.name(),
    Action::SendAudio.name(),
];

/// `$default` and every action route.
pub const MESSAGES: Function = Function {
    name: "messages",
    websocket_routes: MESSAGE_ROUTES,
    http_routes: &[],
    environment: &[
        SESSIONS_TABLE,
        CONNECTIONS_TABLE,
        RATE_LIMITS_TABLE,
        AUDIO_STREAM,
        MANAGEMENT_ENDPOINT,
        setting(env::MAX_LISTENERS_PER_SESSION),
        setting(env::JOINS_PER_MINUTE_PER_CONNECTION),
        setting(env::SESSIONS_PER_HOUR_PER_USER),
        setting(env::SESSION_LIFETIME_SECONDS),
        setting(env::MAX_MESSAGE_BYTES),
        setting(env::SPEAKER_GRACE_SECONDS),
    ],
    permissions: &[
        SESSION_PERMISSIONS[0],
        SESSION_PERMISSIONS[1],
        SESSION_PERMISSIONS[2],
        SESSION_PERMISSIONS[3],
        SESSION_PERMISSIONS[4],
        on(PUT_RECORD, Resource::Stream(StreamId::Audio)),
    ],
    reads_authorizer_context: &[],
};

/// The HTTP session API.
pub const HTTP: Function = Function {
    name: "http",
    websocket_routes: &[],
    http_routes: &[
        HttpRoute { method: HttpMethod::Post, path: "/sessions", auth: HttpAuth::Jwt },
        HttpRoute { method: HttpMethod::Get, path: "/sessions/{id}", auth: HttpAuth::None },
        HttpRoute { method: HttpMethod::Patch, path: "/sessions/{id}", auth: HttpAuth::Jwt },
        HttpRoute { method: HttpMethod::Delete, path: "/sessions/{id}", auth: HttpAuth::Jwt },
        HttpRoute { method: HttpMethod::Get, path: "/health", auth: HttpAuth::None },
    ],
    environment: &[
        SESSIONS_TABLE,
        CONNECTIONS_TABLE,
        RATE_LIMITS_TABLE,
        MANAGEMENT_ENDPOINT,
        setting(env::SESSIONS_PER_HOUR_PER_USER),
        setting(env::SESSION_LIFETIME_SECONDS),
        setting(env::SPEAKER_GRACE_SECONDS),
    ],
    permissions: &SESSION_PERMISSIONS,
    reads_authorizer_context: &[],
};

/// Every function.
pub const ALL: &[Function] = &[AUTHORIZER, CONNECTION, MESSAGES, HTTP];

/// What the code expects of the `$connect` authorizer.
pub const AUTHORIZER_CONTRACT: AuthorizerContract =
    AuthorizerContract { function: AUTHORIZER.name, context_keys: context::ALL, identity_sources: &[] };

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_action_route_key_is_served_by_messages() {
        let served: BTreeSet<&str> = MESSAGES.websocket_routes.iter().copied().collect();
        let expected: BTreeSet<&str> = Action::all_route_keys().chain([DEFAULT_ROUTE]).collect();
        assert_eq!(served, expected);
    }

    #[test]
    fn every_websocket_route_has_exactly_one_function() {
        let mut seen = BTreeSet::new();
        for function in ALL {
            for route in function.websocket_routes {
                assert!(seen.insert(*route), "{route} is served twice");
            }
        }
        for route in [CONNECT_ROUTE, DISCONNECT_ROUTE, DEFAULT_ROUTE] {
            assert!(seen.contains(route), "{route} is served by no function");
        }
    }

    #[test]
    fn environment_names_are_unique_per_function() {
        for function in ALL {
            let names: BTreeSet<&str> = function.environment.iter().map(|var| var.name).collect();
            assert_eq!(names.len(), function.environment.len(), "{}", function.name);
        }
    }

    #[test]
    fn the_authorizer_requires_no_identity_source() {
        // AWS_FACTS 2: any identity source turns a tokenless listener into a 401.
        assert!(AUTHORIZER_CONTRACT.identity_sources.is_empty());
    }

    #[test]
    fn context_keys_read_are_context_keys_emitted() {
        for function in ALL {
            for key in function.reads_authorizer_context {
                assert!(AUTHORIZER_CONTRACT.context_keys.contains(key), "{} reads {key}", function.name);
            }
        }
    }

    #[test]
    fn http_route_keys_are_what_api_gateway_expects() {
        let keys: Vec<String> = HTTP.http_routes.iter().map(HttpRoute::route_key).collect();
        assert_eq!(
            keys,
            ["POST /sessions", "GET /sessions/{id}", "PATCH /sessions/{id}", "DELETE /sessions/{id}", "GET /health"]
        );
    }
}

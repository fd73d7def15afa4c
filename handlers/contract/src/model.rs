//! The types the contract is written in.
//!
//! Everything is `'static` data so the contract is a `const`, readable by the handlers at run
//! time and by `stacks` at synthesis time without any I/O.

use serde::Serialize;

/// Everything the code expects of the infrastructure.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Contract {
    /// The WebSocket API's route selection expression; the message parser dispatches on it.
    pub route_selection_expression: &'static str,
    /// Every deployed function.
    pub functions: &'static [Function],
    /// The `$connect` authorizer the code is written for, when a stage uses one.
    pub authorizer: Option<AuthorizerContract>,
    /// Every DynamoDB table, exactly as the store queries it.
    pub tables: &'static [TableSchema],
}

impl Contract {
    /// The function with this name.
    pub fn function(&self, name: &str) -> Option<&'static Function> {
        self.functions.iter().find(|function| function.name == name)
    }

    /// The function serving a WebSocket route key.
    pub fn websocket_route_owner(&self, route_key: &str) -> Option<&'static Function> {
        self.functions.iter().find(|function| function.websocket_routes.contains(&route_key))
    }

    /// The schema of a table.
    pub fn table(&self, id: TableId) -> &'static TableSchema {
        self.tables
            .iter()
            .find(|table| table.id == id)
            .unwrap_or_else(|| panic!("the contract declares no table {id:?}"))
    }
}

/// One deployed Lambda function.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Function {
    /// The function's name, which is also its crate's binary name.
    pub name: &'static str,
    /// WebSocket route keys this function serves (`$connect`, `$default`, actions).
    pub websocket_routes: &'static [&'static str],
    /// HTTP API routes this function serves.
    pub http_routes: &'static [HttpRoute],
    /// Every environment variable the function reads, and what its value must be.
    pub environment: &'static [EnvVar],
    /// Every AWS action the function calls, and on what.
    pub permissions: &'static [Permission],
    /// Authorizer context keys the function reads from `requestContext.authorizer`.
    pub reads_authorizer_context: &'static [&'static str],
}

/// An HTTP API route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRoute {
    pub method: HttpMethod,
    /// Path with `{param}` placeholders, as API Gateway writes it.
    pub path: &'static str,
    pub auth: HttpAuth,
}

impl HttpRoute {
    /// The route key API Gateway uses, for example `POST /sessions`.
    pub fn route_key(&self) -> String {
        format!("{} {}", self.method.as_str(), self.path)
    }
}

/// HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Post,
    Patch,
    Delete,
}

impl HttpMethod {
    pub const fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }
}

/// How an HTTP route is authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum HttpAuth {
    /// Anyone may call it.
    None,
    /// The HTTP API's JWT authorizer must accept the caller's bearer token.
    Jwt,
}

/// An environment variable a function reads, and where its value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    pub name: &'static str,
    pub source: EnvSource,
}

/// What an environment variable's value must be in a deployed stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "of")]
pub enum EnvSource {
    /// The physical name of a table.
    TableName(TableId),
    /// The physical name of a stream.
    StreamName(StreamId),
    /// The `https` endpoint of the WebSocket API's `@connections` management API.
    ManagementEndpoint,
    /// A per-stage setting, by name (issuer, audience, limits...).
    StageSetting(&'static str),
}

/// AWS actions on one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    pub actions: &'static [&'static str],
    pub resource: Resource,
}

/// A resource a function acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "of")]
pub enum Resource {
    /// A table itself.
    Table(TableId),
    /// The global secondary indexes of a table.
    TableIndexes(TableId),
    /// A Kinesis stream.
    Stream(StreamId),
    /// This WebSocket API's `@connections` (execute-api:ManageConnections).
    Connections,
}

/// What the code expects of the `$connect` authorizer.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerContract {
    /// The function that implements it.
    pub function: &'static str,
    /// The context keys it emits (flat strings, AWS_FACTS 4).
    pub context_keys: &'static [&'static str],
    /// Identity sources API Gateway must require before calling it. Always empty: a listener
    /// has no token, and a missing identity source is a 401 before the authorizer runs
    /// (AWS_FACTS 2).
    pub identity_sources: &'static [&'static str],
}

/// The tables of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum TableId {
    Sessions,
    Connections,
    RateLimits,
}

/// The streams of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum StreamId {
    /// Audio chunks sent by speakers, partitioned by session id.
    Audio,
}

/// A DynamoDB table, as the store reads and writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableSchema {
    pub id: TableId,
    /// The template's logical id for the table.
    pub logical_id: &'static str,
    /// The environment variable that carries the table's physical name to a function.
    pub name_env: &'static str,
    pub partition_key: KeyAttribute,
    pub sort_key: Option<KeyAttribute>,
    pub global_indexes: &'static [GlobalIndex],
    /// The attribute holding the expiry time (epoch seconds), if the table has one.
    pub ttl_attribute: Option<&'static str>,
}

impl TableSchema {
    /// Every attribute used in a key of the table or of one of its indexes, once each.
    pub fn key_attributes(&self) -> Vec<KeyAttribute> {
        let mut attributes: Vec<KeyAttribute> = Vec::new();
        let candidates = std::iter::once(self.partition_key).chain(self.sort_key).chain(
            self.global_indexes.iter().flat_map(|index| std::iter::once(index.partition_key).chain(index.sort_key)),
        );
        for candidate in candidates {
            if !attributes.iter().any(|known| known.name == candidate.name) {
                attributes.push(candidate);
            }
        }
        attributes
    }

    /// The index with this name.
    pub fn index(&self, name: &str) -> Option<&'static GlobalIndex> {
        self.global_indexes.iter().find(|index| index.name == name)
    }
}

/// One key attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyAttribute {
    pub name: &'static str,
    pub kind: AttributeType,
}

/// DynamoDB scalar key types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AttributeType {
    /// `S`
    String,
    /// `N`
    Number,
}

impl AttributeType {
    /// The DynamoDB type letter.
    pub const fn code(self) -> &'static str {
        match self {
            AttributeType::String => "S",
            AttributeType::Number => "N",
        }
    }
}

/// A global secondary index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GlobalIndex {
    pub name: &'static str,
    pub partition_key: KeyAttribute,
    pub sort_key: Option<KeyAttribute>,
    pub projection: Projection,
}

/// Which attributes an index carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Projection {
    All,
    KeysOnly,
}

impl Projection {
    /// The DynamoDB projection type.
    pub const fn code(self) -> &'static str {
        match self {
            Projection::All => "ALL",
            Projection::KeysOnly => "KEYS_ONLY",
        }
    }
}

//! The contract: what the session service's code expects of the infrastructure it runs on.
//!
//! This crate is plain data with no AWS dependencies. The handlers read their table names,
//! route keys and authorizer context keys from it; `stacks` generates the CloudFormation
//! template from it; the verifier checks any template (synthesized or deployed) against it.
//! A route, table or permission declared here is therefore declared exactly once.

pub mod actions;
pub mod env;
pub mod functions;
pub mod limits;
pub mod model;
pub mod tables;

pub use actions::{ACTION_FIELD, Action, CONNECT_ROUTE, DEFAULT_ROUTE, DISCONNECT_ROUTE, ROUTE_SELECTION_EXPRESSION};
pub use model::{
    AttributeType, AuthorizerContract, Contract, EnvSource, EnvVar, Function, GlobalIndex, HttpAuth, HttpMethod,
    HttpRoute, KeyAttribute, Permission, Projection, Resource, StreamId, TableId, TableSchema,
};

/// The whole contract of the service.
///
/// The authorizer is what the code is written for; a stage may run without it, and then the
/// `connection` function verifies tokens itself (its `CONNECT_AUTH` setting says which).
pub const CONTRACT: Contract = Contract {
    route_selection_expression: ROUTE_SELECTION_EXPRESSION,
    functions: functions::ALL,
    authorizer: Some(functions::AUTHORIZER_CONTRACT),
    tables: tables::ALL,
};

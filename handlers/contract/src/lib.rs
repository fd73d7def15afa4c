//! The contract: what the session service's code expects of the infrastructure it runs on.
//!
//! This crate is plain data with no AWS dependencies. The handlers read their table names,
//! route keys and authorizer context keys from it; `stacks` generates the CloudFormation
//! template from it; the verifier checks any template (synthesized or deployed) against it.
//! A route, table or permission declared here is therefore declared exactly once.

pub mod actions;
pub mod model;
pub mod tables;

pub use actions::{Action, ACTION_FIELD, ROUTE_SELECTION_EXPRESSION};
pub use model::{
    AttributeType, AuthorizerContract, Contract, EnvSource, EnvVar, Function, GlobalIndex,
    HttpAuth, HttpMethod, HttpRoute, KeyAttribute, Permission, Projection, Resource, StreamId,
    TableId, TableSchema,
};

/// The whole contract of the service.
///
/// Functions and their routes are declared by the handlers as they are written; the tables are
/// exactly the ones the store in `session-core` reads and writes.
pub const CONTRACT: Contract = Contract {
    route_selection_expression: ROUTE_SELECTION_EXPRESSION,
    functions: &[],
    authorizer: None,
    tables: tables::ALL,
};

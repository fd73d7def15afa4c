//! The session service's domain, shared by every Lambda function.
//!
//! - [`protocol`]: the messages of PROTOCOL.md and the frame parser;
//! - [`ids`] and [`validation`]: session ids, language codes, tiers, volume, sizes;
//! - [`model`]: sessions, connections, roles, broadcast state;
//! - [`store`]: DynamoDB persistence of sessions, connections and rate limits;
//! - [`jwt`]: verification of speaker tokens against a JWKS;
//! - [`events`]: the WebSocket and authorizer events and responses;
//! - [`fanout`]: replies and fan-out through `@connections`;
//! - [`lifecycle`]: pausing, ending and grace periods, shared by every function;
//! - [`auth`]: the caller an authorizer context describes;
//! - [`aws_errors`]: AWS failures told apart (unavailable, so retryable, or not);
//! - [`config`]: function configuration, restricted to the contract's declarations;
//! - [`refusals`]: store and token failures as protocol refusals;
//! - [`setup`]: AWS clients built once per cold start;
//! - [`deadline`]: answering before Lambda's deadline;
//! - [`contract`]: what this code expects of its infrastructure (re-exported).

pub mod auth;
pub mod aws_errors;
pub mod config;
pub mod deadline;
pub mod events;
pub mod fanout;
pub mod ids;
pub mod jwt;
pub mod lifecycle;
pub mod model;
pub mod protocol;
pub mod refusals;
pub mod setup;
pub mod store;
pub mod validation;

pub use contract;

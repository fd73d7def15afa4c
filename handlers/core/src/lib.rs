//! The session service's domain, shared by every Lambda function.
//!
//! - [`protocol`]: the messages of PROTOCOL.md and the frame parser;
//! - [`ids`] and [`validation`]: session ids, language codes, tiers, volume, sizes;
//! - [`model`]: sessions, connections, roles, broadcast state;
//! - [`store`]: DynamoDB persistence of sessions, connections and rate limits;
//! - [`jwt`]: verification of speaker tokens against a JWKS;
//! - [`contract`]: what this code expects of its infrastructure (re-exported).

pub mod ids;
pub mod jwt;
pub mod model;
pub mod protocol;
pub mod store;
pub mod validation;

pub use contract;

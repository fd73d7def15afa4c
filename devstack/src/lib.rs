//! `cargo xtask dev`: the whole service on one machine, driven by the synthesized template.
//!
//! - [`template`]: what the stack reads from a template (and nothing else: no route or
//!   authorization knowledge of its own);
//! - [`resolve`]: template expressions evaluated to local values;
//! - [`resources`]: the template's tables and streams made on the local AWS endpoint (moto);
//! - [`runtime`]: a local Lambda Runtime API running the built binaries;
//! - [`websocket`]: the WebSocket API (authorizer, routes, limits, `@connections`);
//! - [`http_api`]: the HTTP API (routes, JWT authorizer), and [`cors`], its CORS;
//! - [`events`]: the events API Gateway sends, shaped as AWS sends them;
//! - [`identity`]: the local signing key, its JWKS, and speaker tokens;
//! - [`faults`]: DynamoDB and `@connections` faults switched on at run time;
//! - [`proxy`]: the proxy through which the functions reach DynamoDB, where its faults happen;
//! - [`stack`]: all of it assembled from one template;
//! - [`binaries`]: the functions built for this machine;
//! - [`console`]: the browser console (the pages of `console/`, their `config.json`, local tokens).

pub mod binaries;
pub mod console;
pub mod cors;
pub mod events;
pub mod faults;
pub mod http_api;
pub mod identity;
pub mod ids;
pub mod proxy;
pub mod resolve;
pub mod resources;
pub mod runtime;
pub mod stack;
pub mod template;
pub mod websocket;

pub use faults::{ConnectionsFault, DynamoFault, FaultStats, Faults, Outage, Rate};
pub use identity::{LocalIdentity, TokenRequest};
pub use runtime::{LogSink, ProcessInfo};
pub use session_core::jwt::cognito::TokenKind;
pub use stack::{DevConfig, DevStack};
pub use websocket::GatewayLimits;

/// The region of everything local (the local AWS endpoint's).
pub const REGION: &str = testkit::REGION;

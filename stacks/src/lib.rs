//! CloudFormation for the session service, generated from the contract in `handlers/contract`,
//! and the verifier that checks any template against that contract.
//!
//! - [`cdk`]: a stage's stack as a CDK cloud assembly (the CDK bootstrap's bucket and roles);
//! - [`cfn`]: the typed template model;
//! - [`diff`]: what a release would change, security and data loss called out;
//! - [`replacement`]: which changes replace a resource, from [`registry`] (generated);
//! - [`stages`]: `dev` and `prod`, and the configuration without the `$connect` authorizer;
//! - [`service`]: the stack, synthesized from the contract and a stage;
//! - [`naming`]: logical ids shared by the stacks and the verifier;
//! - [`verify`]: the contract verifier (any template JSON in, findings out);
//! - [`yaml`]: CloudFormation YAML (short intrinsic forms), written and read.

pub mod cdk;
pub mod cfn;
pub mod diff;
pub mod naming;
pub mod registry;
pub mod replacement;
pub mod served_routes;
pub mod service;
pub mod stages;
pub mod verify;
pub mod yaml;

pub use service::{SynthError, synthesize};
pub use stages::StageConfig;
pub use verify::{Finding, FindingKind, template, verify};

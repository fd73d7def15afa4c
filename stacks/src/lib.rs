//! CloudFormation for the session service, generated from the contract in `handlers/contract`,
//! and the verifier that checks any template against that contract.
//!
//! The template model, the stacks and the verifier are built on the contract's declarations;
//! until then this crate holds only the workspace's place for them.

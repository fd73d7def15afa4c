//! The published protocol documents, generated from the code: `docs/asyncapi.yaml` (AsyncAPI
//! 3.0, the WebSocket API) and `docs/openapi.yaml` (OpenAPI 3.1, the HTTP API).
//!
//! The JSON Schemas come from the protocol's types in `session-core` (its `schema` feature,
//! which only this crate enables), the actions, route keys and HTTP routes from the contract,
//! and the error codes and their HTTP statuses from `ErrorCode`. Nothing is typed twice: a new
//! action, message, field or route changes the documents by construction.
//!
//! `cargo xtask synth` writes the documents and `cargo xtask synth --check` fails when a
//! committed one differs; the test `the_committed_documents_are_current` does the same on every
//! `cargo test`. The ecosystem's own parsers check both documents
//! (`tests/ecosystem_parsers.rs`), and the end-to-end tests of `devstack` check every frame they
//! exchange against the AsyncAPI document.
//!
//! - [`asyncapi`] and [`openapi`]: the two documents;
//! - [`examples`]: one example of every message;
//! - `schemas`: the JSON Schemas in each document's dialect;
//! - [`render`]: YAML text with a header saying where it comes from;
//! - `check` (feature `check`, for tests): validators of frames and bodies against the
//!   committed documents.

pub mod asyncapi;
#[cfg(feature = "check")]
pub mod check;
pub mod examples;
pub mod openapi;
mod schemas;

use serde::ser::SerializeMap as _;
use serde::{Serialize, Serializer};
use serde_json::Value;
use std::path::Path;

/// The command that regenerates the documents.
pub const REGENERATE: &str = "cargo xtask synth";
/// The AsyncAPI document, relative to the workspace root.
pub const ASYNCAPI_PATH: &str = "docs/asyncapi.yaml";
/// The OpenAPI document, relative to the workspace root.
pub const OPENAPI_PATH: &str = "docs/openapi.yaml";

/// Where the ecosystem's parsers of the documents are pinned (`package.json`,
/// `package-lock.json`) with the script that runs them, relative to the workspace root.
pub const PARSERS_PACKAGE: &str = "xtask/node";
/// The script that runs the parsers over both documents.
pub const PARSERS_SCRIPT: &str = "xtask/node/check-documents.cjs";
/// Where `cargo xtask test` installs the parsers (`npm ci`), relative to the workspace root.
pub const PARSERS_DIR: &str = "target/tools/node";

/// The documents' title (each adds which API).
const TITLE: &str = "Live-translation session service";
/// The documents' version: this crate's.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why a document could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The types and the contract do not fit together (the message says how).
    #[error("{0}")]
    Schema(String),
    #[error("writing YAML: {0}")]
    Yaml(#[from] serde_saphyr::ser::Error),
}

/// One generated document: where it goes and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Relative to the workspace root.
    pub path: &'static str,
    pub text: String,
}

impl Document {
    /// Whether the file under `root` holds exactly this document.
    pub fn is_current(&self, root: &Path) -> bool {
        std::fs::read_to_string(root.join(self.path)).is_ok_and(|on_disk| on_disk == self.text)
    }
}

/// Both documents.
pub fn documents() -> Result<Vec<Document>, Error> {
    Ok(vec![
        Document { path: ASYNCAPI_PATH, text: render(&asyncapi::document()?)? },
        Document { path: OPENAPI_PATH, text: render(&openapi::document()?)? },
    ])
}

/// Serializes `value` with every object's keys in sorted order, whatever order the `Value`
/// holds them in: serde_json keeps maps sorted, unless a crate of the build turns on its
/// `preserve_order` feature (a dev-dependency does, in workspace test builds), and then keeps
/// insertion order. The documents are therefore the same text in every build.
pub(crate) fn sorted<S: Serializer>(value: &Value, serializer: S) -> Result<S::Ok, S::Error> {
    Sorted(value).serialize(serializer)
}

/// A value that serializes its objects' keys in sorted order.
struct Sorted<'a>(&'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                let mut out = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    out.serialize_entry(key, &Sorted(value))?;
                }
                out.end()
            }
            Value::Array(items) => serializer.collect_seq(items.iter().map(Sorted)),
            other => other.serialize(serializer),
        }
    }
}

/// A document as YAML, under a header saying it is generated and how to regenerate it.
pub fn render(document: &impl Serialize) -> Result<String, Error> {
    let yaml = serde_saphyr::to_string(document)?;
    Ok(format!(
        "# GENERATED by `{REGENERATE}` from the protocol's types (handlers/core/src/protocol) and the\n\
         # contract (handlers/contract). Do not edit: change the code, run `{REGENERATE}`, commit.\n{yaml}"
    ))
}

//! The ecosystem's tools the tests run, pinned by `xtask/node/package.json` and its
//! `package-lock.json`, installed with `npm ci` under `target/tools/node`: the parsers of the
//! published protocol documents (`@asyncapi/parser`, `@readme/openapi-parser`) for the tests of
//! `protocol-docs`, and the AWS CDK CLI (`aws-cdk`) for the tests of the CDK cloud assembly
//! (`xtask/tests/cdk.rs`).
//!
//! They are installed on first use and again whenever the package or lock file changes (a stamp
//! file records the hash of both). Install scripts are not run: none of them needs one.

use crate::{project_root, step};
use anyhow::{Context, Result, bail};
use protocol_docs::{PARSERS_DIR, PARSERS_PACKAGE};
use sha2::{Digest, Sha256};
use std::process::Command;

/// The files `npm ci` installs from.
const PINNED: [&str; 2] = ["package.json", "package-lock.json"];

/// Installs the parsers unless the installed ones are those pinned now.
pub(crate) fn ensure() -> Result<()> {
    let package = project_root().join(PARSERS_PACKAGE);
    let tools = project_root().join(PARSERS_DIR);
    let mut hasher = Sha256::new();
    for file in PINNED {
        let path = package.join(file);
        hasher.update(std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?);
    }
    let wanted: String = hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect();
    let stamp = tools.join(".pinned.sha256");
    if std::fs::read_to_string(&stamp).is_ok_and(|found| found.trim() == wanted) && tools.join("node_modules").is_dir()
    {
        return Ok(());
    }
    step(format!("installing the document parsers and the CDK CLI into {} (npm ci)", tools.display()));
    let npm_works = Command::new("npm").arg("--version").output().is_ok_and(|output| output.status.success());
    if !npm_works {
        bail!(
            "npm is not on PATH: install Node.js 20 or newer with npm (on Debian or Ubuntu: `apt-get install nodejs npm`); \
             the tests check the published AsyncAPI and OpenAPI documents with their ecosystem's parsers, and the CDK cloud assembly with the CDK CLI"
        );
    }
    std::fs::create_dir_all(&tools).with_context(|| format!("creating {}", tools.display()))?;
    for file in PINNED {
        std::fs::copy(package.join(file), tools.join(file))
            .with_context(|| format!("copying {file} to {}", tools.display()))?;
    }
    let status = Command::new("npm")
        .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&tools)
        .status()
        .context("starting npm ci")?;
    if !status.success() {
        bail!("npm ci of {PARSERS_PACKAGE} failed ({status}); check that the npm registry is reachable");
    }
    std::fs::write(&stamp, format!("{wanted}\n")).with_context(|| format!("writing {}", stamp.display()))
}

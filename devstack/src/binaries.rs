//! The functions' binaries for this machine: `cargo build` of every function the contract
//! declares (debug unless asked), so the local stack runs exactly the code under test.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds every function's binary; answers the directory holding them.
pub fn build(workspace: &Path, release: bool) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(workspace).args(["build", "--locked", "--quiet"]);
    if release {
        command.arg("--release");
    }
    for function in contract::functions::ALL {
        command.args(["--bin", function.name]);
    }
    let status = command.status().context("running cargo build for the functions")?;
    if !status.success() {
        bail!("building the functions failed ({status}); see cargo's output above");
    }
    Ok(target_directory(workspace).join(if release { "release" } else { "debug" }))
}

/// The workspace's target directory (`CARGO_TARGET_DIR` if set).
pub fn target_directory(workspace: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace.join("target"))
}

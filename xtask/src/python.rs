//! The project's private Python environment under `target/tools/venv`: moto's server (the
//! local AWS endpoint), cfn-lint, cargo-lambda and zig, at the versions pinned in
//! `xtask/python-requirements.txt`.
//!
//! It is created on first use and reinstalled whenever the requirements file changes (a
//! stamp file records the hash of the requirements it was made from).

use crate::{project_root, step};
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::process::Command;

const REQUIREMENTS: &str = "xtask/python-requirements.txt";

/// The private environment.
#[derive(Debug)]
pub(crate) struct PythonEnv {
    root: PathBuf,
}

impl PythonEnv {
    /// The environment's directory.
    pub(crate) fn location() -> PathBuf {
        project_root().join("target/tools/venv")
    }

    /// The environment, created or updated first if it is missing or stale.
    pub(crate) fn ensure() -> Result<PythonEnv> {
        let root = Self::location();
        let requirements_path = project_root().join(REQUIREMENTS);
        let requirements =
            std::fs::read(&requirements_path).with_context(|| format!("reading {}", requirements_path.display()))?;
        let wanted = hex(&Sha256::digest(&requirements));
        let stamp = root.join(".requirements.sha256");
        if std::fs::read_to_string(&stamp).is_ok_and(|found| found.trim() == wanted) && root.join("bin/python").exists()
        {
            return Ok(PythonEnv { root });
        }
        step(format!("creating the Python environment {} (moto's server, cfn-lint)", root.display()));
        let python = find_python()?;
        run(Command::new(&python).args(["-m", "venv", "--clear"]).arg(&root)).context(
            "creating the virtual environment; on Debian or Ubuntu, `apt-get install python3-venv` provides it",
        )?;
        let pip = root.join("bin/pip");
        run(Command::new(&pip)
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements_path))
        .context("installing the pinned Python packages; check that PyPI is reachable")?;
        std::fs::write(&stamp, format!("{wanted}\n")).with_context(|| format!("writing {}", stamp.display()))?;
        Ok(PythonEnv { root })
    }

    /// The environment's Python interpreter.
    pub(crate) fn python(&self) -> PathBuf {
        self.root.join("bin/python")
    }

    /// `PATH` with the environment's programs first (cargo-lambda, zig through python3).
    pub(crate) fn path_with_bin(&self) -> Result<std::ffi::OsString> {
        let mut paths = vec![self.root.join("bin")];
        paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
        Ok(std::env::join_paths(paths)?)
    }

    /// A program installed in the environment, such as `cfn-lint`.
    pub(crate) fn program(&self, name: &str) -> PathBuf {
        self.root.join("bin").join(name)
    }
}

fn find_python() -> Result<PathBuf> {
    for candidate in ["python3", "python"] {
        let works = Command::new(candidate)
            .args(["-c", "import sys, venv; sys.exit(0 if sys.version_info >= (3, 9) else 1)"])
            .output()
            .is_ok_and(|output| output.status.success());
        if works {
            return Ok(PathBuf::from(candidate));
        }
    }
    bail!("no Python 3.9 or newer with the venv module on PATH; install python3 and python3-venv")
}

fn run(command: &mut Command) -> Result<()> {
    let status = command.status().with_context(|| format!("starting {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

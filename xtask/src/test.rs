//! `cargo xtask test`: sets up everything the tests need and runs every test.
//!
//! It makes the private Python environment (moto's server, cfn-lint) if missing, starts one
//! local AWS endpoint for the whole run (tests find it through `TESTKIT_AWS_ENDPOINT`), and
//! runs `cargo test --workspace` (with `INSTA_UPDATE=no`: a snapshot that differs fails and
//! nothing is written), then cfn-lint on every synthesized template. Extra arguments go to `cargo test`, for example
//! `cargo xtask test -- --test store` or `cargo xtask test -- fan_out`.

use crate::python::PythonEnv;
use crate::{cargo, step};
use anyhow::{Context, Result, bail};

/// Runs every test of the workspace with a local AWS endpoint.
#[derive(Debug, clap::Args)]
pub(crate) struct Test {
    /// Arguments passed on to `cargo test` (after `--`).
    #[arg(last = true)]
    cargo_args: Vec<String>,
}

impl Test {
    pub(crate) fn run(self) -> Result<()> {
        let python = PythonEnv::ensure()?;
        let server = testkit::LocalServer::start(&python.python()).map_err(anyhow::Error::msg)?;
        let endpoint = server.url();
        step(format!("local AWS endpoint (moto's server) at {endpoint}"));
        step("cargo test --workspace");
        let status = cargo()
            .args(["test", "--workspace", "--locked"])
            .args(&self.cargo_args)
            .env(testkit::ENDPOINT_ENV, endpoint)
            .env(testkit::PYTHON_ENV, python.python())
            // Snapshots are reviewed and accepted by people, never written by a test run.
            .env("INSTA_UPDATE", std::env::var("INSTA_UPDATE").unwrap_or_else(|_| "no".into()))
            .status()
            .context("starting cargo test")?;
        if !status.success() {
            bail!("tests failed ({status}); the failures are listed above");
        }
        let templates = crate::synth::write_all_for_lint()?;
        crate::synth::lint(&python.program("cfn-lint"), &templates)?;
        step("all tests passed");
        Ok(())
    }
}

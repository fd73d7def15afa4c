//! `cargo xtask test`: sets up everything the tests need and runs every test.
//!
//! It makes the private Python environment (moto's server, cfn-lint) if missing, installs the
//! parsers of the published protocol documents (`document_parsers`, `npm ci`) and the browser
//! of the console's test (`browser`: Chromium and chromedriver, from apt), starts one
//! local AWS endpoint for the whole run (tests find it through `TESTKIT_AWS_ENDPOINT`), and
//! runs `cargo test --workspace`, then cfn-lint on every synthesized template. Extra arguments
//! go to `cargo test`, for example `cargo xtask test -- --test store` or
//! `cargo xtask test -- fan_out`.
//!
//! The tests never see the caller's AWS settings: every `AWS_*` variable is taken out of their
//! environment and the shared config and credentials files are hidden
//! (`testkit::isolate_aws_environment`), so a shell with `AWS_REGION`, `AWS_DEFAULT_REGION` or
//! `AWS_PROFILE` set runs the same tests as CI. Each test states the region and credentials it
//! means.
//!
//! Snapshots are reviewed and accepted by people, never written by a test run: the tests
//! always run with `INSTA_UPDATE=no` (whatever the caller's environment says) and without
//! `INSTA_FORCE_PASS` or `INSTA_FORCE_UPDATE`, so a snapshot that differs fails and nothing is
//! written.

mod browser;
mod document_parsers;

use crate::python::PythonEnv;
use crate::{cargo, step};
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;

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
        document_parsers::ensure()?;
        browser::ensure()?;
        let server = testkit::LocalServer::start(&python.python()).map_err(anyhow::Error::msg)?;
        let endpoint = server.url();
        step(format!("local AWS endpoint (moto's server) at {endpoint}"));
        step("cargo test --workspace");
        let status =
            cargo_test(&self.cargo_args, endpoint, &python.python()).status().context("starting cargo test")?;
        if !status.success() {
            bail!("tests failed ({status}); the failures are listed above");
        }
        let templates = crate::synth::write_all_for_lint()?;
        crate::synth::lint(&python.program("cfn-lint"), &templates)?;
        step("all tests passed");
        Ok(())
    }
}

/// The `cargo test` of the whole workspace, pointed at the local endpoint, blind to the
/// caller's AWS settings, that never writes a snapshot.
fn cargo_test(cargo_args: &[String], endpoint: &str, python: &Path) -> Command {
    let mut command = cargo();
    testkit::isolate_aws_environment(&mut command)
        .args(["test", "--workspace", "--locked"])
        .args(cargo_args)
        .env(testkit::ENDPOINT_ENV, endpoint)
        .env(testkit::PYTHON_ENV, python)
        .env("INSTA_UPDATE", "no")
        .env_remove("INSTA_FORCE_PASS")
        .env_remove("INSTA_FORCE_UPDATE");
    command
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::command_env as env_of;

    #[test]
    fn the_tests_run_with_insta_update_no_and_nothing_forced() {
        let command = cargo_test(&[], "http://127.0.0.1:1", Path::new("python"));
        assert_eq!(env_of(&command, "INSTA_UPDATE"), Some(Some("no".to_owned())));
        assert_eq!(env_of(&command, "INSTA_FORCE_PASS"), Some(None));
        assert_eq!(env_of(&command, "INSTA_FORCE_UPDATE"), Some(None));
        assert_eq!(env_of(&command, "CI"), None, "CI is left as it is");
    }

    #[test]
    fn the_tests_never_see_the_callers_aws_settings() {
        testkit::assert_blind_to_aws(&cargo_test(&[], "http://127.0.0.1:1", Path::new("python")));
    }

    /// The same, from a process whose own environment asks insta to write every snapshot:
    /// the test above, run again in a child with `INSTA_UPDATE=always`.
    #[test]
    fn a_callers_insta_update_does_not_reach_the_tests() {
        let this = std::env::current_exe().expect("the test binary");
        let output = Command::new(this)
            .args(["--exact", "test::tests::the_tests_run_with_insta_update_no_and_nothing_forced"])
            .env("INSTA_UPDATE", "always")
            .env("INSTA_FORCE_UPDATE", "1")
            .output()
            .expect("the test binary runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success() && stdout.contains("1 passed"), "{stdout}");
    }
}

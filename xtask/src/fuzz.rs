//! `cargo xtask fuzz`: a long run of the property tests, the `tests/properties.rs` of every
//! crate that parses outside input (frames, tokens, `$connect` parameters, HTTP requests, the
//! local gateway's template and query strings).
//!
//! `cargo test` runs each property with a few hundred cases; this runs exactly the same tests
//! with `--cases` cases each (20,000 by default), as `cargo test --workspace --test properties`
//! with `PROPTEST_CASES` set. Arguments after `--` go to `cargo test`, for example
//! `cargo xtask fuzz --cases 100000 -- arbitrary_text` for the properties whose name contains
//! `arbitrary_text`.
//!
//! It runs the debug build, for two reasons: overflow checks and debug assertions are on, so an
//! arithmetic overflow on some input is a failure rather than a wrapped value, and the build is
//! the one `cargo xtask test` already made, so a run does not start with a release build of
//! the whole workspace. None of these tests needs the local AWS endpoint; like `cargo xtask
//! test`, the run is blind to the caller's AWS settings (`testkit::isolate_aws_environment`).
//!
//! A failure prints the smallest input proptest found; it is kept as a regression test named
//! after the input, beside the property.

use crate::{cargo, step};
use anyhow::{Context, Result, bail};
use std::process::Command;

/// The test target every crate gives its property tests.
const PROPERTIES_TARGET: &str = "properties";

/// Runs every property test with many more cases than `cargo test` does.
#[derive(Debug, clap::Args)]
pub(crate) struct Fuzz {
    /// Cases per property.
    #[arg(long, default_value_t = 20_000)]
    cases: u32,
    /// Arguments passed on to `cargo test` (after `--`).
    #[arg(last = true)]
    cargo_args: Vec<String>,
}

impl Fuzz {
    pub(crate) fn run(self) -> Result<()> {
        step(format!("cargo test --workspace --test {PROPERTIES_TARGET}, {} cases per property", self.cases));
        let status = cargo_test(self.cases, &self.cargo_args).status().context("starting cargo test")?;
        if !status.success() {
            bail!(
                "a property failed ({status}); the smallest failing input is printed above: add it as a \
                 regression test beside the property, then fix the parser"
            );
        }
        step("every property held");
        Ok(())
    }
}

/// The `cargo test` of every crate's property tests, with `cases` cases per property, blind to
/// the caller's AWS settings.
fn cargo_test(cases: u32, cargo_args: &[String]) -> Command {
    let mut command = cargo();
    testkit::isolate_aws_environment(&mut command)
        .args(["test", "--workspace", "--locked", "--test", PROPERTIES_TARGET])
        .args(cargo_args)
        .env("PROPTEST_CASES", cases.to_string());
    command
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::command_env as env_of;

    #[test]
    fn the_property_tests_run_with_the_cases_asked_for() {
        let command = cargo_test(1234, &["arbitrary_text".to_owned()]);
        let args: Vec<_> = command.get_args().map(|arg| arg.to_string_lossy().into_owned()).collect();
        assert_eq!(args, ["test", "--workspace", "--locked", "--test", "properties", "arbitrary_text"]);
        assert_eq!(env_of(&command, "PROPTEST_CASES"), Some(Some("1234".to_owned())));
    }

    #[test]
    fn the_property_tests_never_see_the_callers_aws_settings() {
        testkit::assert_blind_to_aws(&cargo_test(1, &[]));
    }
}

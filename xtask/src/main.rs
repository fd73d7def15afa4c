//! `cargo xtask`: the project's own tooling, one module per command.
//!
//! Exit codes: 0 success; 1 failure (the message says what to do next); 2 usage errors
//! (from clap) — except `diff`, whose 2 means "differences" (see its docs).

mod aws;
mod bench;
mod build;
mod deploy;
mod dev;
mod diff;
mod doctor;
mod examples;
mod fuzz;
mod logs;
mod progress;
mod python;
mod registry;
mod synth;
mod test;
mod token;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", about = "Tooling of the session service", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build every function as a reproducible Lambda zip.
    Build(build::Build),
    /// Deploy a stage: build, upload, change set, approval where it matters, execute.
    Deploy(deploy::Deploy),
    /// Run the whole service on this machine, from the stage's synthesized template.
    Dev(dev::Dev),
    /// Show what deploying a stage would change (exit 0 none, 2 changes, 1 error or finding).
    Diff(diff::Diff),
    /// Check a live stage against the contract: stack, API, functions, tables, probes, recent errors (exit 1 on a failure).
    Doctor(doctor::Doctor),
    /// Print the stage's function logs interleaved in time order (`--follow` keeps printing).
    Logs(logs::Logs),
    /// Run every property test (`tests/properties.rs`) with many cases (20,000 by default).
    Fuzz(fuzz::Fuzz),
    /// Measure the warm invocation path and each binary's start-to-ready time.
    Bench(bench::Bench),
    /// Regenerate `stacks/src/registry.rs` from the pinned cfn-lint's registry schemas.
    Registry(registry::Registry),
    /// Write each stage's template, verified against the contract.
    Synth(synth::Synth),
    /// Set up what the tests need and run every test.
    Test(test::Test),
    /// Print a speaker token the local stack accepts.
    Token(token::Token),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let done = |result: anyhow::Result<()>| result.map(|()| ExitCode::SUCCESS);
    let result = match cli.command {
        Command::Bench(command) => done(command.run()),
        Command::Build(command) => done(command.run()),
        Command::Deploy(command) => done(command.run()),
        Command::Dev(command) => done(command.run()),
        Command::Diff(command) => command.run(),
        Command::Doctor(command) => command.run(),
        Command::Fuzz(command) => done(command.run()),
        Command::Logs(command) => done(command.run()),
        Command::Registry(command) => done(command.run()),
        Command::Synth(command) => done(command.run()),
        Command::Test(command) => done(command.run()),
        Command::Token(command) => done(command.run()),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace's root directory.
pub(crate) fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."))
}

/// The cargo that runs this xtask (so toolchain overrides are honoured).
pub(crate) fn cargo() -> std::process::Command {
    std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Prints one progress line; these are plain lines so CI logs read well.
pub(crate) fn step(message: impl std::fmt::Display) {
    eprintln!("==> {message}");
}

//! `cargo xtask bench`: measures what docs/benchmarks.md reports.
//!
//! 1. Synthesizing every stage's template (`stacks/benches/synth.rs`), and the CPU cost of a
//!    warm `messages` invocation without network I/O (`handlers/messages/benches/warm.rs`).
//! 2. Each release binary's start-to-ready time: from spawning the process to its first
//!    request for work (`GET /runtime/invocation/next`) on a local stand-in for the Lambda
//!    Runtime API, with the environment the contract declares (sample values). This is the
//!    process's own share of a cold start; Lambda's sandbox start comes on top.
//! 3. The local stack (`devstack/benches/fanout.rs`): connects per second, one speaker control
//!    fanned out to 1,000 listeners, and the gateway's own share of a message.
//! 4. With `--load`, the local stack under a live audience (`devstack/benches/load.rs`): 2,000
//!    listeners over 4 sessions under the `dev` stage's default limits, speakers sending audio
//!    and controls, listeners dropping without a goodbye. Several minutes on a small machine.
//!
//! Timings are printed, never asserted; the load benchmark fails on a lost control message or a
//! listener count that disagrees with the Connections table.

use crate::{cargo, project_root, step};
use anyhow::{Context, Result, bail};
use contract::{EnvSource, Function};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Measures the warm invocation path and the binaries' start-to-ready time.
#[derive(Debug, clap::Args)]
pub(crate) struct Bench {
    /// How many times each binary is started.
    #[arg(long, default_value_t = 20)]
    starts: usize,
    /// Also run the load benchmark (`LOAD_LISTENERS`, `LOAD_SECONDS`, … set its size).
    #[arg(long)]
    load: bool,
}

impl Bench {
    pub(crate) fn run(self) -> Result<()> {
        for (package, bench) in [("stacks", "synth"), ("messages", "warm")] {
            step(format!("cargo bench -p {package} --bench {bench}"));
            let status = cargo().args(["bench", "--locked", "-p", package, "--bench", bench]).status()?;
            if !status.success() {
                bail!("the {bench} benchmark failed ({status})");
            }
        }
        step("cargo build --release (every function)");
        let binaries = devstack::binaries::build(&project_root(), true)?;
        println!("start-to-ready of each release binary ({} starts each)", self.starts);
        for function in contract::functions::ALL {
            let binary = binaries.join(function.name);
            let mut samples =
                (0..self.starts).map(|_| start_to_ready(&binary, function)).collect::<Result<Vec<_>>>()?;
            samples.sort_unstable();
            let size = std::fs::metadata(&binary).map(|meta| meta.len()).unwrap_or(0);
            println!(
                "  {:<12} p50 {:>6.1} ms   p99 {:>6.1} ms   binary {:>5.1} MB",
                function.name,
                millis(samples[samples.len() / 2]),
                millis(samples[(samples.len() * 99 / 100).min(samples.len() - 1)]),
                size as f64 / 1e6
            );
        }
        step("cargo bench -p devstack --bench fanout (the local stack, release binaries)");
        let status = cargo().args(["bench", "--locked", "-p", "devstack", "--bench", "fanout"]).status()?;
        if !status.success() {
            bail!("the local stack benchmark failed ({status}); the functions' output is in target/devstack-bench.log");
        }
        if self.load {
            step("cargo bench -p devstack --bench load (the local stack under a live audience)");
            let status = cargo().args(["bench", "--locked", "-p", "devstack", "--bench", "load"]).status()?;
            if !status.success() {
                bail!(
                    "the load benchmark failed ({status}): a lost message or a count mismatch is a bug, see its output; the functions' output is in target/devstack-load.log"
                );
            }
        }
        Ok(())
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Starts `binary` against a one-shot Runtime API and times its first request for work.
fn start_to_ready(binary: &std::path::Path, function: &Function) -> Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    let started = Instant::now();
    let mut child = Command::new(binary)
        .envs(lambda_environment(function))
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let (stream, _) = listener.accept().context("waiting for the function to ask for work")?;
    let mut request_line = String::new();
    BufReader::new(&stream).read_line(&mut request_line)?;
    let elapsed = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    drop((&stream).write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n"));
    if !request_line.contains("/runtime/invocation/next") {
        bail!("{} asked for {request_line:?} instead of work", function.name);
    }
    Ok(elapsed)
}

/// What Lambda sets, plus the function's declared variables with sample values.
fn lambda_environment(function: &Function) -> Vec<(String, String)> {
    let mut variables: Vec<(String, String)> = [
        ("AWS_LAMBDA_FUNCTION_NAME", function.name),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    for var in function.environment {
        let value = match var.source {
            EnvSource::TableName(table) => format!("bench-{table:?}"),
            EnvSource::StreamName(stream) => format!("bench-{stream:?}"),
            EnvSource::ManagementEndpoint => "https://bench.execute-api.eu-west-1.amazonaws.com/bench".to_owned(),
            EnvSource::StageSetting(name) => sample_setting(name).to_owned(),
        };
        variables.push((var.name.to_owned(), value));
    }
    variables
}

fn sample_setting(name: &str) -> &'static str {
    use contract::env;
    match name {
        env::CONNECT_AUTH => "authorizer",
        env::JWT_ISSUER => "https://issuer.example.com",
        env::JWT_AUDIENCE => "bench",
        env::JWKS_SOURCE => r#"{"keys":[]}"#,
        _ => "60",
    }
}

//! `cargo xtask dev`: the whole service on one machine.
//!
//! Builds the functions for this machine, synthesizes the stage's template (its JWT settings
//! pointed at the local identity provider), starts moto's server from the project's Python
//! environment with the template's tables and streams, and serves the template's WebSocket and
//! HTTP APIs with the functions running as their binaries behind a local Lambda Runtime API,
//! and the browser console (`console/`, `devstack::console`) on a port of its own.
//! Stops everything on Ctrl-C (SIGINT) or SIGTERM.

use crate::python::PythonEnv;
use anyhow::{Context, Result};
use clap::Args;
use devstack::console::{Console, ConsoleConfig, ConsoleListener};
use devstack::{DevConfig, DevStack, GatewayLimits, LocalIdentity, LogSink};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Args)]
pub(crate) struct Dev {
    /// The stage whose template runs locally.
    #[arg(long, default_value = "dev")]
    stage: String,
    /// Port of the WebSocket API (with `@connections` and the local JWKS); 0 picks a free one.
    #[arg(long, default_value_t = 4510)]
    port: u16,
    /// Port of the HTTP API [default: --port + 1, or a free one when --port is 0].
    #[arg(long)]
    http_port: Option<u16>,
    /// Port of the browser console [default: --port + 2 (4512), or a free one when --port is 0].
    #[arg(long)]
    console_port: Option<u16>,
    /// Once everything accepts connections, write a JSON object here: websocket_url, http_url,
    /// dynamodb_endpoint, management_endpoint, jwks_url, console_url, region, tables. Removed on
    /// exit.
    #[arg(long, value_name = "PATH")]
    ready_file: Option<PathBuf>,
    /// Build and run release binaries (slower to build, as deployed).
    #[arg(long)]
    release: bool,
    /// Close connections silent for this many seconds (API Gateway: 600).
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    idle_timeout: u64,
    /// Close connections older than this many seconds (API Gateway: 7200).
    #[arg(long, default_value_t = 7200, value_name = "SECONDS")]
    max_duration: u64,
    /// At most this many processes per function.
    #[arg(long, default_value_t = 16)]
    max_concurrency: usize,
}

/// Where the local signing key lives (shared with `cargo xtask token`).
pub(crate) fn key_path() -> PathBuf {
    devstack::binaries::target_directory(&crate::project_root()).join("dev/local-signing-key.der")
}

impl Dev {
    pub(crate) fn run(self) -> Result<()> {
        let stage = stacks::stages::by_name(&self.stage)
            .with_context(|| format!("no stage named {:?} (try dev or prod)", self.stage))?;
        crate::step("setting up the Python environment (moto)");
        let python = PythonEnv::ensure()?;
        crate::step(format!("building the functions ({})", if self.release { "release" } else { "debug" }));
        let binaries = devstack::binaries::build(&crate::project_root(), self.release)?;
        let http_port = self.http_port.unwrap_or(if self.port == 0 { 0 } else { self.port.saturating_add(1) });
        let console_port = self.console_port.unwrap_or(if self.port == 0 { 0 } else { self.port.saturating_add(2) });
        let config = DevConfig {
            stage,
            edit_template: None,
            binaries,
            websocket_port: self.port,
            http_port,
            limits: GatewayLimits {
                idle_timeout: Duration::from_secs(self.idle_timeout),
                max_duration: Duration::from_secs(self.max_duration),
                ..GatewayLimits::default()
            },
            identity: LocalIdentity::load_or_create(&key_path())?,
            aws_endpoint: None,
            python: python.python(),
            logs: LogSink::Stderr,
            max_concurrency: self.max_concurrency.max(1),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        runtime.block_on(serve(config, console_port, self.ready_file.as_deref()))
    }
}

async fn serve(config: DevConfig, console_port: u16, ready_file: Option<&Path>) -> Result<()> {
    // Listen for signals from the start, so one during start-up stops what started so far.
    let mut signals = Signals::install()?;
    // The console's port first: the stack's HTTP API allows its pages' origins (CORS).
    let console_listener = ConsoleListener::bind(console_port).await?;
    let config =
        DevConfig { stage: devstack::console::allow_origins(config.stage, &console_listener.origins()), ..config };
    crate::step("starting moto, the tables, the functions and the gateways");
    let stack = tokio::select! {
        stack = DevStack::start(config) => stack?,
        stopped_by = signals.next() => {
            eprintln!("\n==> {stopped_by} while starting: stopping");
            return Ok(());
        }
    };
    for finding in stacks::verify(stack.template(), &contract::CONTRACT) {
        eprintln!("warning: the template has a finding: {finding}");
    }
    // The console's local tokens are signed with the stack's key, read again from its file.
    let console_config = ConsoleConfig::for_stack(
        &stack,
        crate::project_root().join("console"),
        LocalIdentity::load_or_create(&key_path())?,
    );
    let console = console_listener.serve(console_config)?;
    print_banner(&stack, &console);
    if let Some(path) = ready_file {
        let mut ready = stack.ready_json();
        ready["console_url"] = console.url().into();
        write_ready_file(path, &ready)?;
    }
    let stopped_by = signals.next().await;
    eprintln!("\n==> {stopped_by}: stopping");
    console.stop().await;
    stack.stop().await;
    if let Some(path) = ready_file {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

fn print_banner(stack: &DevStack, console: &Console) {
    let websocket = stack.websocket_url();
    let http = stack.http_url();
    println!();
    println!("  WebSocket API   {websocket}");
    println!("  HTTP API        {http}");
    println!("  Console         {}  (speaker and listener pages in a browser)", console.url());
    println!("  DynamoDB        {}", stack.dynamodb_endpoint());
    println!("  Fault switch    {} (docs/local-stack.md, \"Faults\")", stack.faults_url());
    println!();
    println!("  A speaker token:    TOKEN=$(cargo xtask token --stage {})", stack.stage().name);
    println!(
        "  A session:          curl -s -X POST {http}/sessions -H \"Authorization: Bearer $TOKEN\" -d '{{\"sourceLanguage\":\"en\"}}'"
    );
    println!("  The speaker:        wscat -c \"{websocket}?sessionId=SESSION&token=$TOKEN\"");
    println!("  A listener:         wscat -c \"{websocket}?sessionId=SESSION&targetLanguage=de\"");
    println!();
    println!("  Ctrl-C stops everything.");
    println!();
}

/// Writes the ready file whole (a temporary file renamed into place), so a reader never sees
/// half of it.
fn write_ready_file(path: &Path, ready: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(ready)?;
    let partial = path.with_extension("partial");
    if let Some(directory) = path.parent().filter(|directory| !directory.as_os_str().is_empty()) {
        std::fs::create_dir_all(directory).with_context(|| format!("creating {}", directory.display()))?;
    }
    std::fs::write(&partial, text).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// SIGINT and SIGTERM, each a request to stop.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    /// Waits for the next one; answers what it was.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "interrupted",
            _ = self.terminate.recv() => "terminated",
        }
    }
}

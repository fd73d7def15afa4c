//! `cargo xtask logs` (to be written): the stage's functions' log lines interleaved in time
//! order, each with its function's name, as `sam logs` prints them.

use crate::aws::AwsArgs;
use anyhow::Result;
use std::time::Duration;

/// Prints the stage's function logs in time order.
#[derive(Debug, clap::Args)]
pub(crate) struct Logs {
    /// The stage (`dev`, `prod`).
    #[arg(long)]
    stage: String,
    /// Only this contract function (`connection`, `messages`, `http`, `authorizer`).
    #[arg(long)]
    function: Option<String>,
    /// How far back to start (`30s`, `10m`, `1h`, `2d`).
    #[arg(long, default_value = "10m", value_parser = crate::doctor::parse_since)]
    since: Duration,
    /// Keep printing new lines as they arrive (Ctrl-C stops).
    #[arg(long)]
    follow: bool,
    #[command(flatten)]
    aws: AwsArgs,
}

impl Logs {
    pub(crate) fn run(self) -> Result<()> {
        anyhow::bail!("cargo xtask logs is not written yet ({self:?})")
    }
}

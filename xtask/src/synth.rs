//! `cargo xtask synth`: writes each stage's template, verified against the contract first (a
//! finding is an error).
//!
//! One `<StackName>.template.json` per stack, under `target/templates` unless `--out` says
//! otherwise. `--check` writes nothing and fails when a file on disk differs from what would be
//! written (rust-analyzer's `ensure_file_contents` pattern), so a committed copy can never go
//! stale unnoticed.
//!
//! `--stage NAME` asks for a stage's template to release, and is refused while its file holds
//! example settings ([`crate::examples`]); without it, every template is written for review,
//! with a warning for each stage that still has them.
//!
//! It also writes the published protocol documents, `docs/asyncapi.yaml` and
//! `docs/openapi.yaml` (`protocol_docs`), which are committed: `--check` fails when either
//! differs from what the code generates.

use crate::{project_root, step};
use anyhow::{Context, Result, bail};
use stacks::stages::{self, StageConfig};
use std::path::{Path, PathBuf};

/// Writes (or checks) the stage templates.
#[derive(Debug, clap::Args)]
pub(crate) struct Synth {
    /// The stage to synthesize (`dev`, `prod`); every stage when omitted.
    #[arg(long)]
    stage: Option<String>,
    /// Where to write the templates.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Compare with the files on disk instead of writing; fail if any differs.
    #[arg(long)]
    check: bool,
}

impl Synth {
    pub(crate) fn run(self) -> Result<()> {
        let stages = match &self.stage {
            Some(name) => vec![crate::examples::released_stage(name)?],
            None => crate::examples::every_stage_for_review(),
        };
        let out = self.out.unwrap_or_else(default_out_dir);
        for stage in &stages {
            let (path, text) = render(stage, &out)?;
            if self.check {
                ensure_unchanged(&path, &text)?;
            } else {
                write(&path, &text)?;
            }
            println!("{}", path.display());
        }
        for document in protocol_docs::documents()? {
            let path = project_root().join(document.path);
            if self.check {
                ensure_unchanged(&path, &document.text)?;
            } else {
                write(&path, &document.text)?;
            }
            println!("{}", path.display());
        }
        Ok(())
    }
}

/// The default output folder.
pub(crate) fn default_out_dir() -> PathBuf {
    project_root().join("target/templates")
}

/// A stage by name, or an error listing the stages.
pub(crate) fn stage_named(name: &str) -> Result<StageConfig> {
    stages::by_name(name).with_context(|| {
        let names: Vec<String> = stages::all().into_iter().map(|stage| stage.name).collect();
        format!("no stage {name:?}; stages: {}", names.join(", "))
    })
}

/// The stage's template text and where it goes; fails on any synthesis error and on any
/// contradiction between the template and the contract.
pub(crate) fn render(stage: &StageConfig, out: &Path) -> Result<(PathBuf, String)> {
    let template = stacks::synthesize(&contract::CONTRACT, stage)?;
    let findings = stacks::verify(&template.to_value(), &contract::CONTRACT);
    if !findings.is_empty() {
        let lines: Vec<String> = findings.iter().map(|finding| format!("  {finding}")).collect();
        bail!("the {} template contradicts the contract:\n{}", stage.name, lines.join("\n"));
    }
    Ok((out.join(format!("{}.template.json", stage.stack_name)), template.to_json()))
}

/// Writes every template the tests lint: each stage, and `dev` without the authorizer.
pub(crate) fn write_all_for_lint() -> Result<Vec<PathBuf>> {
    let out = default_out_dir().join("lint");
    let mut paths = Vec::new();
    for stage in stages::all().into_iter().chain([stages::without_authorizer(stages::dev())]) {
        let (path, text) = render(&stage, &out)?;
        write(&path, &text)?;
        paths.push(path);
    }
    Ok(paths)
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn ensure_unchanged(path: &Path, text: &str) -> Result<()> {
    match std::fs::read_to_string(path) {
        Ok(on_disk) if on_disk == text => Ok(()),
        Ok(_) => bail!("{} is stale: run `cargo xtask synth` and commit the result", path.display()),
        Err(_) => bail!("{} is missing: run `cargo xtask synth` and commit the result", path.display()),
    }
}

/// Runs cfn-lint on the templates; any finding fails.
pub(crate) fn lint(cfn_lint: &Path, templates: &[PathBuf]) -> Result<()> {
    step(format!("cfn-lint on {} templates", templates.len()));
    let output = std::process::Command::new(cfn_lint)
        .args(templates)
        .output()
        .with_context(|| format!("starting {}", cfn_lint.display()))?;
    if !output.status.success() {
        bail!(
            "cfn-lint found problems in the synthesized templates:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

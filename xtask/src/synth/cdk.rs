//! `cargo xtask synth --stage S --cdk-out DIR`: writes the stage as a CDK cloud assembly
//! (`stacks::cdk`), so that `cdk ls`, `cdk diff` and `cdk deploy --app DIR` release it through
//! the account's CDK bootstrap, from a pipeline already set up for the CDK.
//!
//! The directory gets `manifest.json`, `<Stack>.template.json`, `<Stack>.assets.json` and each
//! function's zip as `asset.<sha256>.zip`, taken from the last `cargo xtask build` (its
//! manifest in `--artifacts`, `target/lambda` by default), refused unless every function is
//! there, built for the stage's architecture with the release profile, and unchanged since.
//! The assembly's template is verified against the contract like every template this tool
//! writes.

use crate::build::{self, Arch};
use anyhow::{Context, Result, bail};
use stacks::StageConfig;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Writes the assembly of `stage` into `out` with the zips listed in `artifacts/manifest.json`;
/// returns the paths written.
pub(super) fn write(stage: &StageConfig, artifacts: &Path, out: &Path) -> Result<Vec<PathBuf>> {
    let template = stacks::synthesize(&contract::CONTRACT, stage)?;
    let arch = Arch::from(stage.architecture);
    let functions: Vec<&contract::Function> = contract::CONTRACT.functions.iter().collect();
    let build = match arch {
        Arch::Arm64 => "cargo xtask build".to_owned(),
        other => format!("cargo xtask build --arch {other}"),
    };
    if !artifacts.join("manifest.json").is_file() {
        bail!(
            "--cdk-out packages the release zips of the last build, and {} holds none (no manifest.json): \
             run `{build}` first, or pass --artifacts with the directory of its zips",
            artifacts.display()
        );
    }
    let built = build::read_manifest(artifacts)
        .and_then(|listed| build::check_manifest(&listed, arch, &functions))
        .map_err(|error| {
            // The build's own advice names `deploy`'s --no-build, which synth does not have.
            let problems = format!("{error:#}").replace(" (or drop --no-build)", "");
            anyhow::anyhow!(
                "--cdk-out packages the release zips of the last build, from {}: {problems}\n\
                 run `{build}` first, or pass --artifacts with the directory of its zips",
                artifacts.display()
            )
        })?;
    let zips: BTreeMap<String, String> =
        built.iter().map(|artifact| (artifact.function.clone(), artifact.sha256_hex.clone())).collect();
    let assembly = stacks::cdk::assembly(&contract::CONTRACT, stage, &template.to_value(), &zips)?;
    let findings = stacks::verify(&assembly.template, &contract::CONTRACT);
    if !findings.is_empty() {
        let lines: Vec<String> = findings.iter().map(|finding| format!("  {finding}")).collect();
        bail!("the {} CDK template contradicts the contract:\n{}", stage.name, lines.join("\n"));
    }

    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut written = Vec::new();
    for file in &assembly.files {
        let path = out.join(&file.name);
        std::fs::write(&path, &file.text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    for zip in &assembly.zips {
        let artifact = built.iter().find(|artifact| artifact.function == zip.function).context("a built zip")?;
        let path = out.join(&zip.file);
        std::fs::copy(&artifact.zip, &path)
            .with_context(|| format!("copying {} to {}", artifact.zip.display(), path.display()))?;
        written.push(path);
    }
    Ok(written)
}

//! `cargo xtask synth`: writes each stage's template, verified against the contract first (a
//! finding is an error).
//!
//! One `<StackName>.template.yaml` per stack, under `target/templates` unless `--out` says
//! otherwise: CloudFormation YAML with the short intrinsic forms (`!Ref`, `!GetAtt`, `!Sub`,
//! `!Join`; `stacks::yaml`), for people. `--format json` writes `<StackName>.template.json`, the
//! JSON that `deploy`, `diff` and `doctor` use (they synthesize it themselves, never through
//! these files); both load to the same template. `--check` writes nothing and fails when a file on disk differs from what would be
//! written (rust-analyzer's `ensure_file_contents` pattern), so a committed copy can never go
//! stale unnoticed.
//!
//! `--stage NAME` asks for a stage's template to release, and is refused while its file holds
//! example settings ([`crate::examples`]); without it, every template is written for review,
//! with a warning for each stage that still has them.
//!
//! `--stage NAME --cdk-out DIR` writes instead the stage as a CDK cloud assembly, for `cdk ls`,
//! `cdk diff` and `cdk deploy --app DIR` through the account's CDK bootstrap ([`cdk`]), with
//! the zips of the last `cargo xtask build` (`--artifacts`).
//!
//! It also writes the published protocol documents, `docs/asyncapi.yaml` and
//! `docs/openapi.yaml` (`protocol_docs`), which are committed: `--check` fails when either
//! differs from what the code generates.

mod cdk;

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
    /// The templates' form: CloudFormation YAML with the short intrinsic forms, or JSON.
    #[arg(long, value_enum, default_value_t = Format::Yaml)]
    format: Format,
    /// Write the stage (`--stage`) as a CDK cloud assembly into this directory instead, for
    /// `cdk ls|diff|deploy --app DIR` with the account's CDK bootstrap.
    #[arg(long, value_name = "DIR", requires = "stage", conflicts_with_all = ["out", "check", "format"])]
    cdk_out: Option<PathBuf>,
    /// With --cdk-out: where the built zips and their manifest.json are (default: target/lambda,
    /// where `cargo xtask build` leaves them).
    #[arg(long, value_name = "DIR", requires = "cdk_out")]
    artifacts: Option<PathBuf>,
}

/// The form a template is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// `<StackName>.template.yaml`: `!Ref`, `!GetAtt`, `!Sub`, `!Join`, for people.
    Yaml,
    /// `<StackName>.template.json`: what the deploy path sends to CloudFormation.
    Json,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
        }
    }
}

impl Synth {
    pub(crate) fn run(self) -> Result<()> {
        if let (Some(dir), Some(name)) = (&self.cdk_out, &self.stage) {
            // The assembly is released by the CDK CLI wherever the environment points it: a
            // local endpoint (AWS_ENDPOINT_URL, which the CLI's SDK reads too) takes the examples.
            let stage = stage_named(name)?;
            let endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
            crate::examples::refuse_for_a_real_account(&stage, endpoint.as_deref())?;
            let artifacts = self.artifacts.unwrap_or_else(|| project_root().join("target/lambda"));
            for path in cdk::write(&stage, &artifacts, dir)? {
                println!("{}", path.display());
            }
            return Ok(());
        }
        let stages = match &self.stage {
            Some(name) => vec![crate::examples::released_stage(name)?],
            None => crate::examples::every_stage_for_review(),
        };
        let out = self.out.unwrap_or_else(default_out_dir);
        for stage in &stages {
            let (path, text) = render(stage, &out, self.format)?;
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

/// The stage's template text in `format` and where it goes; fails on any synthesis error and on
/// any contradiction between the template and the contract.
pub(crate) fn render(stage: &StageConfig, out: &Path, format: Format) -> Result<(PathBuf, String)> {
    let template = stacks::synthesize(&contract::CONTRACT, stage)?;
    let findings = stacks::verify(&template.to_value(), &contract::CONTRACT);
    if !findings.is_empty() {
        let lines: Vec<String> = findings.iter().map(|finding| format!("  {finding}")).collect();
        bail!("the {} template contradicts the contract:\n{}", stage.name, lines.join("\n"));
    }
    let text = match format {
        Format::Yaml => template.to_yaml(),
        Format::Json => template.to_json(),
    };
    Ok((out.join(format!("{}.template.{}", stage.stack_name, format.extension())), text))
}

/// Writes every template the tests lint, in both forms: each stage, and `dev` without the
/// authorizer. The JSON is what is deployed; the YAML is what people read, so cfn-lint (whose
/// reader is PyYAML with CloudFormation's tags) must read it too. And each stage's template as
/// a CDK cloud assembly holds it (`--cdk-out`; zips named by a made-up hash).
pub(crate) fn write_all_for_lint() -> Result<Vec<PathBuf>> {
    let out = default_out_dir().join("lint");
    let mut paths = Vec::new();
    for stage in stages::all().into_iter().chain([stages::without_authorizer(stages::dev())]) {
        for format in [Format::Json, Format::Yaml] {
            let (path, text) = render(&stage, &out, format)?;
            write(&path, &text)?;
            paths.push(path);
        }
    }
    for stage in stages::all() {
        let template = stacks::synthesize(&contract::CONTRACT, &stage)?.to_value();
        let zips = contract::CONTRACT.functions.iter().map(|function| (function.name.to_owned(), "0".repeat(64)));
        let cdk = stacks::cdk::template(&contract::CONTRACT, &stage.region, &template, &zips.collect())?;
        let path = out.join(format!("{}.cdk.template.json", stage.stack_name));
        write(&path, &serde_json::to_string_pretty(&cdk)?)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    struct Command {
        #[command(flatten)]
        synth: Synth,
    }

    #[test]
    fn yaml_is_the_default_and_json_is_asked_for() {
        let synth = |args: &[&str]| Command::parse_from([&["synth"], args].concat()).synth.format;
        assert_eq!(synth(&[]), Format::Yaml);
        assert_eq!(synth(&["--out", "somewhere"]), Format::Yaml);
        assert_eq!(synth(&["--format", "json"]), Format::Json);
        assert_eq!(synth(&["--format", "yaml"]), Format::Yaml);
    }

    #[test]
    fn a_cdk_assembly_is_of_one_stage_and_nothing_else() {
        let parse = |args: &[&str]| Command::try_parse_from([&["synth"], args].concat());
        let synth = parse(&["--stage", "dev", "--cdk-out", "cdk.out"]).expect("parses").synth;
        assert_eq!(synth.cdk_out.as_deref(), Some(Path::new("cdk.out")));
        assert!(parse(&["--cdk-out", "cdk.out"]).is_err(), "a stage is required");
        assert!(parse(&["--stage", "dev", "--cdk-out", "d", "--check"]).is_err());
        assert!(parse(&["--stage", "dev", "--cdk-out", "d", "--format", "json"]).is_err());
        assert!(parse(&["--stage", "dev", "--artifacts", "target/lambda"]).is_err(), "only with --cdk-out");
    }

    #[test]
    fn both_forms_are_the_same_template() {
        let out = Path::new("out");
        let (yaml_path, yaml) = render(&stages::dev(), out, Format::Yaml).expect("renders");
        let (json_path, json) = render(&stages::dev(), out, Format::Json).expect("renders");
        assert!(yaml_path.ends_with("session-service-dev.template.yaml"), "{}", yaml_path.display());
        assert!(json_path.ends_with("session-service-dev.template.json"), "{}", json_path.display());
        assert!(yaml.contains("!Ref WebSocketApi"), "{yaml}");
        let json: serde_json::Value = serde_json::from_str(&json).expect("JSON");
        assert_eq!(stacks::yaml::from_yaml(&yaml).expect("YAML"), json);
    }

    /// cfn-lint's own reader (PyYAML with CloudFormation's tags), not only ours, reads every
    /// stage's YAML, and strings a YAML 1.1 reader could misread, as exactly the JSON: same
    /// values, same types.
    #[test]
    fn cfn_lints_reader_reads_the_yaml_as_the_json() {
        const CHECK: &str = r#"
import json, sys
from cfnlint.decode import decode_str
def same(a, b):
    if isinstance(b, dict):
        return isinstance(a, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in b)
    if isinstance(b, list):
        return isinstance(a, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(b, str):
        return isinstance(a, str) and a == b
    return type(a) is type(b) and a == b
for name, text, expected in json.load(sys.stdin):
    loaded, errors = decode_str(text)
    if errors or not same(loaded, expected):
        print(f"{name}: read differently ({errors})")
        sys.exit(1)
print("same")
"#;
        let strings = [
            "yes",
            "no",
            "on",
            "off",
            "true",
            "NO",
            "y",
            "null",
            "~",
            "",
            "10800",
            "0x1F",
            "1e3",
            "012",
            "3.14",
            ".inf",
            "2010-09-09",
            "2026-01-01T00:00:00Z",
            "1:30",
            "*",
            "&a",
            "!Ref",
            "@x",
            "a: b",
            "a #b",
            "#x",
            "[x]",
            "{x}",
            " lead",
            "trail ",
            "two\nlines",
            "two\nlines\n",
            "$connect",
            "${AWS::Region}",
        ];
        let mut cases = vec![
            serde_json::json!(["strings", {"S": strings.as_slice(), "N": [0, 10800, -1, 1.5], "B": [true, false]}]),
        ];
        for stage in stages::all().into_iter().chain([stages::without_authorizer(stages::dev())]) {
            let template = stacks::synthesize(&contract::CONTRACT, &stage).expect("synthesizes");
            cases.push(serde_json::json!([stage.name, template.to_value()]));
        }
        let input: Vec<serde_json::Value> = cases
            .into_iter()
            .map(|case| serde_json::json!([case[0], stacks::yaml::to_yaml(&case[1]), case[1]]))
            .collect();
        let mut child = std::process::Command::new(testkit::venv_python())
            .args(["-c", CHECK])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the project's Python environment (cargo xtask test makes it)");
        serde_json::to_writer(child.stdin.take().expect("stdin"), &input).expect("writes");
        let output = child.wait_with_output().expect("runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success() && stdout.trim() == "same", "{stdout}");
    }
}

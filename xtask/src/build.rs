//! `cargo xtask build`: every function as a Lambda zip, byte-for-byte reproducible.
//!
//! cargo-lambda (with zig as the linker, both from the project's Python environment) builds
//! each function's binary for Linux on arm64 (default) or x86_64; the arm64 Rust target is
//! added with rustup when missing. Each binary is packaged as `bootstrap` in
//! `target/lambda/<function>.zip` with a fixed timestamp (1980-01-01), fixed permissions
//! (0755) and a fixed compression level, so the same binary always gives the same zip. The
//! SHA-256 printed in base64 is what Lambda reports as `CodeSha256` for that zip.
//!
//! `target/lambda/manifest.json` records every zip for `deploy --no-build`: its function, the
//! architecture and profile it was built with, its path, size and hashes. A build of one
//! function (`--function`) replaces that function's entry and keeps the others, so the
//! manifest always describes every zip in the directory. [`check_manifest`] is what
//! `deploy --no-build` asks of it.
//!
//! On a terminal the build shows each function's progress live (waiting, building, done with
//! its zip's size): what cargo lets be seen of one build of every function is in [`progress`].
//! Elsewhere cargo's own output is printed as it always was.

mod progress;

use crate::python::PythonEnv;
use crate::{cargo, project_root, step};
use anyhow::{Context, Result, bail};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds every function (or one) as a Lambda zip.
#[derive(Debug, clap::Args)]
pub(crate) struct Build {
    /// The processor architecture.
    #[arg(long, value_enum, default_value = "arm64")]
    arch: Arch,
    /// Build only this function (`authorizer`, `connection`, `messages`, `http`).
    #[arg(long)]
    function: Option<String>,
    /// A debug build (faster to build, larger and slower to run).
    #[arg(long)]
    debug: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
pub(crate) enum Arch {
    #[serde(rename = "arm64")]
    Arm64,
    #[value(name = "x86_64")]
    #[serde(rename = "x86_64")]
    X86_64,
}

impl From<stacks::stages::Architecture> for Arch {
    fn from(architecture: stacks::stages::Architecture) -> Arch {
        match architecture {
            stacks::stages::Architecture::Arm64 => Arch::Arm64,
            stacks::stages::Architecture::X86_64 => Arch::X86_64,
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Arch::Arm64 => "arm64",
            Arch::X86_64 => "x86_64",
        })
    }
}

/// The cargo profile a function was built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Profile {
    Release,
    Debug,
}

impl Profile {
    fn of(release: bool) -> Profile {
        if release { Profile::Release } else { Profile::Debug }
    }

    fn as_str(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::Debug => "debug",
        }
    }
}

impl Arch {
    fn rust_target(self) -> &'static str {
        match self {
            Arch::Arm64 => "aarch64-unknown-linux-gnu",
            Arch::X86_64 => "x86_64-unknown-linux-gnu",
        }
    }

    fn cargo_lambda_flag(self) -> &'static str {
        match self {
            Arch::Arm64 => "--arm64",
            Arch::X86_64 => "--x86-64",
        }
    }
}

/// One built function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Artifact {
    pub(crate) function: String,
    /// The architecture the binary was built for.
    pub(crate) arch: Arch,
    /// The cargo profile it was built with.
    pub(crate) profile: Profile,
    pub(crate) zip: PathBuf,
    pub(crate) size: u64,
    pub(crate) sha256_hex: String,
    /// Base64 SHA-256 of the zip: Lambda's `CodeSha256`.
    pub(crate) code_sha256: String,
}

impl Artifact {
    /// Where `deploy` uploads the zip in the assets bucket, and so the value of the function's
    /// `<Function>CodeKey` parameter: addressed by content, so the same build is one object.
    pub(crate) fn asset_key(&self) -> String {
        format!("assets/{}/{}.zip", self.function, self.sha256_hex)
    }
}

impl std::fmt::Display for Artifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<11} {:>9.2} MB  sha256 {}  {}",
            self.function,
            self.size as f64 / 1e6,
            self.sha256_hex,
            self.zip.display()
        )
    }
}

impl Build {
    pub(crate) fn run(self) -> Result<()> {
        let functions = selected_functions(self.function.as_deref())?;
        let artifacts = build(self.arch, !self.debug, &functions)?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&artifacts)?);
        } else {
            for artifact in &artifacts {
                println!("{artifact}");
            }
        }
        Ok(())
    }
}

/// The contract functions to build: all, or the named one.
fn selected_functions(name: Option<&str>) -> Result<Vec<&'static contract::Function>> {
    let all = contract::functions::ALL;
    match name {
        None => Ok(all.iter().collect()),
        Some(name) => match contract::CONTRACT.function(name) {
            Some(function) => Ok(vec![function]),
            None => {
                let names: Vec<&str> = all.iter().map(|function| function.name).collect();
                bail!("no function {name:?}; functions: {}", names.join(", "))
            }
        },
    }
}

/// Builds and packages the functions; returns their zips.
pub(crate) fn build(arch: Arch, release: bool, functions: &[&contract::Function]) -> Result<Vec<Artifact>> {
    let python = PythonEnv::ensure()?;
    ensure_rust_target(arch)?;
    let profile = Profile::of(release);
    step(format!("cargo lambda build ({}, {})", arch.rust_target(), profile.as_str()));
    let mut command = cargo();
    command.args(["lambda", "build", "--locked", arch.cargo_lambda_flag()]);
    if release {
        command.arg("--release");
    }
    for function in functions {
        command.args(["--bin", function.name]);
    }
    // cargo finds `cargo-lambda` on PATH, and cargo-zigbuild finds zig through the
    // environment's `python3 -m ziglang`.
    command.env("PATH", python.path_with_bin()?).current_dir(project_root());
    let mut live = crate::progress::live().then(|| {
        let manifests = binary_manifests();
        let functions: Vec<(&str, Option<String>)> =
            functions.iter().map(|function| (function.name, manifests.get(function.name).cloned())).collect();
        let title = format!("building ({arch}, {})", profile.as_str());
        progress::Live::new(progress::Builds::new(&title, &functions, std::time::Instant::now()))
    });
    let status = match &mut live {
        Some(live) => live.run(&mut command)?,
        None => command.status().context("starting cargo lambda")?,
    };
    if !status.success() {
        bail!("cargo lambda build failed ({status}); the errors are above");
    }
    let lambda_dir = project_root().join("target/lambda");
    let mut artifacts = Vec::new();
    for function in functions {
        let binary = lambda_dir.join(function.name).join("bootstrap");
        let bytes = std::fs::read(&binary)
            .with_context(|| format!("reading {} (cargo lambda should have built it)", binary.display()))?;
        let zip = package(&bytes)?;
        let path = lambda_dir.join(format!("{}.zip", function.name));
        std::fs::write(&path, &zip).with_context(|| format!("writing {}", path.display()))?;
        if let Some(live) = &mut live {
            live.packaged(function.name, zip.len() as u64);
        }
        artifacts.push(artifact(function.name, arch, profile, path, &zip));
    }
    if let Some(live) = live {
        live.finish();
    }
    write_manifest(&lambda_dir, &artifacts)?;
    Ok(artifacts)
}

/// The manifest of the package holding each binary of the workspace, by binary name, from
/// `cargo metadata`; empty when it cannot say (the progress then shows no "building" step).
fn binary_manifests() -> std::collections::BTreeMap<String, String> {
    let output = cargo()
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(project_root())
        .stderr(std::process::Stdio::null())
        .output();
    let Some(metadata) =
        output.ok().and_then(|output| serde_json::from_slice::<serde_json::Value>(&output.stdout).ok())
    else {
        return Default::default();
    };
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    packages
        .iter()
        .flat_map(|package| {
            let manifest = package["manifest_path"].as_str().unwrap_or_default().to_owned();
            let targets = package["targets"].as_array().cloned().unwrap_or_default();
            targets
                .into_iter()
                .filter(|target| target["kind"].as_array().is_some_and(|kinds| kinds.iter().any(|kind| kind == "bin")))
                .filter_map(move |target| Some((target["name"].as_str()?.to_owned(), manifest.clone())))
        })
        .collect()
}

pub(crate) fn artifact(function: &str, arch: Arch, profile: Profile, zip: PathBuf, bytes: &[u8]) -> Artifact {
    let digest = Sha256::digest(bytes);
    Artifact {
        function: function.to_owned(),
        arch,
        profile,
        zip,
        size: bytes.len() as u64,
        sha256_hex: hex(&digest),
        code_sha256: base64::engine::general_purpose::STANDARD.encode(digest),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

const MANIFEST: &str = "manifest.json";

/// The zips of the last build, from the manifest in `dir`.
pub(crate) fn read_manifest(dir: &Path) -> Result<Vec<Artifact>> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {}: run `cargo xtask build` first (or drop --no-build)", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a build manifest of this cargo xtask (one from before architectures and profiles \
             were recorded?): run `cargo xtask build`",
            path.display()
        )
    })
}

/// Writes the manifest in `dir`: `built` merged into what it already records.
fn write_manifest(dir: &Path, built: &[Artifact]) -> Result<()> {
    let existing = if dir.join(MANIFEST).exists() {
        read_manifest(dir).unwrap_or_else(|error| {
            step(format!("{error:#}; rewriting it with this build only"));
            Vec::new()
        })
    } else {
        Vec::new()
    };
    let path = dir.join(MANIFEST);
    std::fs::write(&path, serde_json::to_string_pretty(&merge(existing, built))?)
        .with_context(|| format!("writing {}", path.display()))
}

/// The entries of `existing` whose functions were not just built, and `built`; in contract
/// order, then any other function by name.
fn merge(existing: Vec<Artifact>, built: &[Artifact]) -> Vec<Artifact> {
    let mut merged: Vec<Artifact> = existing
        .into_iter()
        .filter(|old| !built.iter().any(|new| new.function == old.function))
        .chain(built.iter().cloned())
        .collect();
    let rank = |name: &str| contract::functions::ALL.iter().position(|function| function.name == name);
    merged.sort_by(|a, b| {
        (rank(&a.function).unwrap_or(usize::MAX), &a.function)
            .cmp(&(rank(&b.function).unwrap_or(usize::MAX), &b.function))
    });
    merged
}

/// Refuses a manifest that does not fit a release for `arch`: every one of `functions` must
/// be there, built for `arch` with the release profile, with its zip unchanged since. Returns
/// the artifacts of `functions`.
pub(crate) fn check_manifest(
    artifacts: &[Artifact],
    arch: Arch,
    functions: &[&contract::Function],
) -> Result<Vec<Artifact>> {
    let mut problems = Vec::new();
    let mut fitting = Vec::new();
    for function in functions {
        let Some(artifact) = artifacts.iter().find(|artifact| artifact.function == function.name) else {
            problems.push(format!("{}: not built", function.name));
            continue;
        };
        if artifact.arch != arch {
            problems.push(format!("{}: built for {}, the stage runs {arch}", function.name, artifact.arch));
        }
        if artifact.profile != Profile::Release {
            problems.push(format!("{}: a {} build, a release needs release", function.name, artifact.profile.as_str()));
        }
        match std::fs::read(&artifact.zip) {
            Ok(bytes) if hex(&Sha256::digest(&bytes)) == artifact.sha256_hex => {}
            Ok(_) => problems.push(format!("{}: {} changed since the build", function.name, artifact.zip.display())),
            Err(error) => problems.push(format!("{}: {} ({error})", function.name, artifact.zip.display())),
        }
        fitting.push(artifact.clone());
    }
    if !problems.is_empty() {
        let build = match arch {
            Arch::Arm64 => "cargo xtask build".to_owned(),
            other => format!("cargo xtask build --arch {other}"),
        };
        bail!(
            "the last build does not fit this release ({arch}, release):\n  {}\nrun `{build}` (or drop --no-build)",
            problems.join("\n  ")
        );
    }
    Ok(fitting)
}

/// A Lambda zip holding `bootstrap`; the same binary always gives the same bytes.
pub(crate) fn package(bootstrap: &[u8]) -> Result<Vec<u8>> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9))
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o755);
    writer.start_file("bootstrap", options)?;
    writer.write_all(bootstrap)?;
    Ok(writer.finish()?.into_inner())
}

/// Adds the Rust target for `arch` with rustup when it is missing.
fn ensure_rust_target(arch: Arch) -> Result<()> {
    let target = arch.rust_target();
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running rustup; the Lambda builds need rustup to add the Linux targets")?;
    if String::from_utf8_lossy(&installed.stdout).lines().any(|line| line.trim() == target) {
        return Ok(());
    }
    step(format!("rustup target add {target}"));
    let status = Command::new("rustup").args(["target", "add", target]).status()?;
    if !status.success() {
        bail!("could not add the Rust target {target}; run `rustup target add {target}` and retry");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_binary_always_gives_the_same_zip() {
        let binary: Vec<u8> = (0..200_000u32).map(|n| (n % 251) as u8).collect();
        let first = package(&binary).expect("packaged");
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let second = package(&binary).expect("packaged");
        assert_eq!(first, second, "time must not leak into the zip");
        assert_ne!(package(b"other").expect("packaged"), first);
    }

    #[test]
    fn the_zip_holds_an_executable_bootstrap() {
        let zip = package(b"#!/bin/sh\n").expect("packaged");
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("a zip");
        assert_eq!(archive.len(), 1);
        let entry = archive.by_index(0).expect("one entry");
        assert_eq!(entry.name().expect("a UTF-8 name"), "bootstrap");
        assert_eq!(entry.unix_mode().map(|mode| mode & 0o777), Some(0o755));
    }

    #[test]
    fn code_sha256_is_base64_of_the_digest() {
        let built = artifact("f", Arch::Arm64, Profile::Release, PathBuf::from("f.zip"), b"abc");
        assert_eq!(built.sha256_hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(built.code_sha256, "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
    }

    #[test]
    fn an_unknown_function_is_refused_with_the_known_ones() {
        let error = selected_functions(Some("nope")).expect_err("unknown");
        assert!(error.to_string().contains("authorizer, connection, messages, http"), "{error}");
        assert_eq!(selected_functions(None).map(|all| all.len()).ok(), Some(4));
    }

    /// A fresh directory under the system's temporary directory.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-build-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    /// A zip of `function` written to `dir`, and its manifest entry.
    fn built(dir: &Path, function: &str, arch: Arch, profile: Profile, content: &str) -> Artifact {
        let bytes = package(content.as_bytes()).expect("packaged");
        let path = dir.join(format!("{function}.zip"));
        std::fs::write(&path, &bytes).expect("zip written");
        artifact(function, arch, profile, path, &bytes)
    }

    fn all(dir: &Path, arch: Arch, profile: Profile) -> Vec<Artifact> {
        contract::functions::ALL
            .iter()
            .map(|function| built(dir, function.name, arch, profile, function.name))
            .collect()
    }

    fn functions() -> Vec<&'static contract::Function> {
        contract::functions::ALL.iter().collect()
    }

    #[test]
    fn the_manifest_records_architecture_and_profile() {
        let entry = artifact("f", Arch::X86_64, Profile::Debug, PathBuf::from("f.zip"), b"abc");
        let json = serde_json::to_value(&entry).expect("json");
        assert_eq!((json["arch"].as_str(), json["profile"].as_str()), (Some("x86_64"), Some("debug")));
        let arm = serde_json::to_value(artifact("f", Arch::Arm64, Profile::Release, PathBuf::from("f.zip"), b""));
        let arm = arm.expect("json");
        assert_eq!((arm["arch"].as_str(), arm["profile"].as_str()), (Some("arm64"), Some("release")));
    }

    #[test]
    fn a_build_of_one_function_merges_into_the_manifest() {
        let dir = temp_dir("merge");
        let everything = all(&dir, Arch::Arm64, Profile::Release);
        write_manifest(&dir, &everything).expect("written");
        let http = built(&dir, "http", Arch::Arm64, Profile::Release, "new http");
        write_manifest(&dir, std::slice::from_ref(&http)).expect("written");
        let manifest = read_manifest(&dir).expect("read");
        let names: Vec<&str> = manifest.iter().map(|entry| entry.function.as_str()).collect();
        assert_eq!(names, ["authorizer", "connection", "messages", "http"]);
        assert_eq!(manifest.iter().find(|entry| entry.function == "http"), Some(&http));
        assert_eq!(manifest[0], everything[0], "the other functions are kept as they were");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_manifest_from_before_architectures_were_recorded_is_replaced_and_refused() {
        let dir = temp_dir("old");
        std::fs::write(
            dir.join(MANIFEST),
            r#"[{"function": "http", "zip": "http.zip", "size": 1,
            "sha256_hex": "00", "code_sha256": "AA=="}]"#,
        )
        .expect("written");
        let error = read_manifest(&dir).expect_err("old manifest");
        assert!(format!("{error:#}").contains("run `cargo xtask build`"), "{error:#}");
        let http = built(&dir, "http", Arch::Arm64, Profile::Release, "http");
        write_manifest(&dir, std::slice::from_ref(&http)).expect("written");
        assert_eq!(read_manifest(&dir).expect("read"), [http]);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_release_build_for_the_stage_fits() {
        let dir = temp_dir("fits");
        let manifest = all(&dir, Arch::Arm64, Profile::Release);
        assert_eq!(check_manifest(&manifest, Arch::Arm64, &functions()).expect("fits"), manifest);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_build_that_does_not_fit_the_stage_is_refused_saying_to_build() {
        let dir = temp_dir("misfit");
        let refused = |manifest: &[Artifact], arch: Arch| {
            let error = check_manifest(manifest, arch, &functions()).expect_err("refused");
            error.to_string()
        };
        let x86 = refused(&all(&dir, Arch::X86_64, Profile::Release), Arch::Arm64);
        assert!(x86.contains("built for x86_64, the stage runs arm64") && x86.contains("`cargo xtask build`"), "{x86}");
        let debug = refused(&all(&dir, Arch::Arm64, Profile::Debug), Arch::Arm64);
        assert!(debug.contains("a debug build") && debug.contains("`cargo xtask build`"), "{debug}");
        let arm_for_x86 = refused(&all(&dir, Arch::Arm64, Profile::Release), Arch::X86_64);
        assert!(arm_for_x86.contains("`cargo xtask build --arch x86_64`"), "{arm_for_x86}");
        let mut partial = all(&dir, Arch::Arm64, Profile::Release);
        partial.retain(|entry| entry.function != "messages");
        assert!(refused(&partial, Arch::Arm64).contains("messages: not built"));
        let changed = all(&dir, Arch::Arm64, Profile::Release);
        std::fs::write(&changed[0].zip, b"rebuilt by hand").expect("written");
        assert!(refused(&changed, Arch::Arm64).contains("changed since the build"));
        std::fs::remove_dir_all(&dir).ok();
    }
}

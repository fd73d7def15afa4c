//! `cargo xtask build`: every function as a Lambda zip, byte-for-byte reproducible.
//!
//! cargo-lambda (with zig as the linker, both from the project's Python environment) builds
//! each function's binary for Linux on arm64 (default) or x86_64; the arm64 Rust target is
//! added with rustup when missing. Each binary is packaged as `bootstrap` in
//! `target/lambda/<function>.zip` with a fixed timestamp (1980-01-01), fixed permissions
//! (0755) and a fixed compression level, so the same binary always gives the same zip. The
//! SHA-256 printed in base64 is what Lambda reports as `CodeSha256` for that zip.
//! `target/lambda/manifest.json` records every zip for `deploy`.

use crate::python::PythonEnv;
use crate::{cargo, project_root, step};
use anyhow::{Context, Result, bail};
use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::PathBuf;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Arch {
    Arm64,
    #[value(name = "x86_64")]
    X86_64,
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
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub(crate) struct Artifact {
    pub(crate) function: String,
    pub(crate) zip: PathBuf,
    pub(crate) size: u64,
    pub(crate) sha256_hex: String,
    /// Base64 SHA-256 of the zip: Lambda's `CodeSha256`.
    pub(crate) code_sha256: String,
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
    step(format!("cargo lambda build ({}, {})", arch.rust_target(), if release { "release" } else { "debug" }));
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
    let status = command
        .env("PATH", python.path_with_bin()?)
        .current_dir(project_root())
        .status()
        .context("starting cargo lambda")?;
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
        artifacts.push(artifact(function.name, path, &zip));
    }
    let manifest = lambda_dir.join("manifest.json");
    std::fs::write(&manifest, serde_json::to_string_pretty(&artifacts)?)?;
    Ok(artifacts)
}

fn artifact(function: &str, zip: PathBuf, bytes: &[u8]) -> Artifact {
    let digest = Sha256::digest(bytes);
    Artifact {
        function: function.to_owned(),
        zip,
        size: bytes.len() as u64,
        sha256_hex: digest.iter().map(|byte| format!("{byte:02x}")).collect(),
        code_sha256: base64::engine::general_purpose::STANDARD.encode(digest),
    }
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
        let built = artifact("f", PathBuf::from("f.zip"), b"abc");
        assert_eq!(built.sha256_hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(built.code_sha256, "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
    }

    #[test]
    fn an_unknown_function_is_refused_with_the_known_ones() {
        let error = selected_functions(Some("nope")).expect_err("unknown");
        assert!(error.to_string().contains("authorizer, connection, messages, http"), "{error}");
        assert_eq!(selected_functions(None).map(|all| all.len()).ok(), Some(4));
    }
}

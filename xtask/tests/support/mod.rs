//! What the xtask test files share: running `cargo xtask` against a local endpoint, and the
//! zips a release of fake functions uploads.

#![allow(dead_code, reason = "each test binary uses the part it needs")]

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `cargo xtask` with `args`, the test's credentials and `endpoint`, blind to the caller's
/// AWS settings: without `--region` in `args`, the stage's region is the one it uses.
pub(crate) fn xtask(endpoint: &str, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    testkit::isolate_aws_environment(&mut command)
        .args(args)
        .args(["--endpoint-url", endpoint])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("xtask runs")
}

/// Everything a run printed, standard output then standard error.
pub(crate) fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// One zip per function, as `cargo xtask build` leaves them, with its manifest.
pub(crate) fn artifacts(dir: &Path) -> Vec<(String, String)> {
    let mut manifest = Vec::new();
    let mut hashes = Vec::new();
    for function in contract::functions::ALL {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        writer.start_file("bootstrap", zip::write::SimpleFileOptions::default()).expect("entry");
        writer.write_all(format!("#!/bin/sh\necho {}\n", function.name).as_bytes()).expect("written");
        let bytes = writer.finish().expect("zip").into_inner();
        let path = dir.join(format!("{}.zip", function.name));
        std::fs::write(&path, &bytes).expect("zip written");
        let digest = Sha256::digest(&bytes);
        let code_sha256 = base64::engine::general_purpose::STANDARD.encode(digest);
        manifest.push(json!({
            "function": function.name, "arch": "arm64", "profile": "release", "zip": path, "size": bytes.len(),
            "sha256_hex": digest.iter().map(|b| format!("{b:02x}")).collect::<String>(), "code_sha256": code_sha256,
        }));
        hashes.push((function.name.to_owned(), code_sha256));
    }
    std::fs::write(dir.join("manifest.json"), Value::from(manifest).to_string()).expect("manifest written");
    hashes
}

/// A fresh directory for one test's zips.
pub(crate) fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

//! What the xtask test files share: running `cargo xtask` against a local endpoint.

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

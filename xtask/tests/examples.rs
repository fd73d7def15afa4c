//! The stage files' example settings are refused for a real account: `synth --stage`, `deploy`
//! and `diff` stop before building, uploading or reading anything, naming the file and each key
//! to change. (The release and doctor tests deploy `dev` with its examples to a local endpoint,
//! which is let through.)

use std::process::{Command, Output};

/// `cargo xtask` with `args`, blind to the caller's AWS settings, with test credentials.
fn xtask(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    testkit::isolate_aws_environment(&mut command)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdin(std::process::Stdio::null());
    command.output().expect("xtask runs")
}

fn assert_refused(output: &Output, stage: &stacks::StageConfig) {
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains(&format!("stage {} still has this repository's example values", stage.name)), "{text}");
    assert!(text.contains(stage.settings_file), "{text}");
    for key in &stage.example_settings {
        assert!(text.contains(key.as_str()), "{key}: {text}");
    }
    assert!(!text.contains("==> building"), "refused before building: {text}");
}

#[test]
fn a_stage_with_example_settings_is_refused_for_a_real_account() {
    let (dev, prod) = (stacks::stages::dev(), stacks::stages::prod());
    assert_refused(&xtask(&["synth", "--stage", "prod", "--check"]), &prod);
    assert_refused(&xtask(&["deploy", "--stage", "dev", "--yes"]), &dev);
    let remote = "https://cloudformation.eu-west-1.amazonaws.com";
    assert_refused(&xtask(&["deploy", "--stage", "prod", "--no-build", "--endpoint-url", remote]), &prod);
    assert_refused(&xtask(&["diff", "--stage", "dev", "--endpoint-url", remote]), &dev);
}

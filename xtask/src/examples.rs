//! The example settings of a stage file, refused for a real account.
//!
//! The stage files ship with example values (a made-up Cognito user pool and app client, a
//! made-up console origin), each listed under `examples` in its file. A release to a real
//! account with those would deploy an HTTP API and authorizers that no real token ever passes,
//! so `cargo xtask synth --stage`, `deploy` and `diff` refuse such a stage, naming the file and
//! every key still to change (docs/infrastructure.md, "Settings a new account must change"). `cargo xtask synth`
//! without `--stage`, the repository's command that regenerates every template for review (and
//! the published documents), writes them and warns.
//!
//! One exception, because the examples are what the tests and local runs use: `deploy` and
//! `diff` against a local endpoint (`--endpoint-url`, or `AWS_ENDPOINT_URL`, naming
//! `localhost`, a `127.x.x.x` address or `[::1]`) go ahead and say so. No real account is
//! reachable there. `cargo xtask dev` never asks: it runs the stage with its own local identity.

use anyhow::{Result, bail};
use stacks::StageConfig;

/// Refuses `stage` while its file lists example settings, unless `endpoint` is a local endpoint.
pub(crate) fn refuse_for_a_real_account(stage: &StageConfig, endpoint: Option<&str>) -> Result<()> {
    if stage.example_settings.is_empty() {
        return Ok(());
    }
    if let Some(endpoint) = endpoint.filter(|endpoint| is_local(endpoint)) {
        crate::step(format!(
            "{endpoint} is a local endpoint: stage {} goes with the example settings of {} ({})",
            stage.name,
            stage.settings_file,
            stage.example_settings.join(", ")
        ));
        return Ok(());
    }
    bail!("{}", refusal(stage))
}

/// The stage `name`, for `cargo xtask synth --stage`: refused while it has example settings.
pub(crate) fn released_stage(name: &str) -> Result<StageConfig> {
    let stage = crate::synth::stage_named(name)?;
    refuse_for_a_real_account(&stage, None)?;
    Ok(stage)
}

/// Every stage, for `cargo xtask synth` to write for review (the repository's own command,
/// which must work on the examples it ships): a warning for each that still has examples.
pub(crate) fn every_stage_for_review() -> Vec<StageConfig> {
    let stages = stacks::stages::all();
    for stage in stages.iter().filter(|stage| !stage.example_settings.is_empty()) {
        eprintln!("warning: {} (its template is written for review only)", refusal(stage));
    }
    stages
}

/// What a stage with example settings is refused with: the file, each key, what to do.
pub(crate) fn refusal(stage: &StageConfig) -> String {
    format!(
        "stage {} still has this repository's example values in {}: {}. Put your account's values \
         there (docs/infrastructure.md, \"Settings a new account must change\") and take each key off the file's \
         `examples` list. A local endpoint (--endpoint-url http://127.0.0.1:PORT) takes the examples; \
         `cargo xtask dev` runs the stage with its local identity",
        stage.name,
        stage.settings_file,
        stage.example_settings.join(", ")
    )
}

/// Whether `endpoint` (a URL) names this machine: `localhost`, a `127.x.x.x` address or `[::1]`.
fn is_local(endpoint: &str) -> bool {
    let Some((_, rest)) = endpoint.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    let host = if authority.starts_with('[') {
        authority.split_once(']').map_or(authority, |(host, _)| host).trim_start_matches('[')
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    match host.parse::<std::net::IpAddr>() {
        Ok(address) => address.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_machine_is_a_local_endpoint() {
        for local in ["http://127.0.0.1:5000", "http://localhost:4566/", "http://[::1]:80", "https://127.1.2.3"] {
            assert!(is_local(local), "{local}");
        }
        for remote in [
            "https://cloudformation.eu-west-1.amazonaws.com",
            "http://localstack:4566",
            "http://localhost.example.com",
            "http://127.0.0.1@example.com",
            "http://10.0.0.5:4566",
            "127.0.0.1:5000",
        ] {
            assert!(!is_local(remote), "{remote}");
        }
    }

    #[test]
    fn a_stage_with_examples_is_refused_naming_the_file_and_every_key() {
        let prod = stacks::stages::prod();
        let error = refuse_for_a_real_account(&prod, None).expect_err("refused").to_string();
        assert!(error.contains("stacks/stages/prod.yaml"), "{error}");
        for key in &prod.example_settings {
            assert!(error.contains(key.as_str()), "{key}: {error}");
        }
        let remote = Some("https://cloudformation.eu-west-1.amazonaws.com");
        assert!(refuse_for_a_real_account(&prod, remote).is_err());
        assert!(refuse_for_a_real_account(&prod, Some("http://127.0.0.1:5000")).is_ok());

        let real = StageConfig { example_settings: Vec::new(), ..prod };
        assert!(refuse_for_a_real_account(&real, None).is_ok(), "an account's own values go");
    }
}

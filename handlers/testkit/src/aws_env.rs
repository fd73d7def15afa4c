//! Commands blind to the caller's AWS settings.
//!
//! A developer's shell usually carries `AWS_REGION`, `AWS_DEFAULT_REGION`, `AWS_PROFILE` and a
//! `~/.aws/config`; the tests must pass with or without them. [`isolate_aws_environment`] takes
//! every `AWS_*` variable of this process out of a child's environment and points the shared
//! config and credentials files at an empty file, so the child sees exactly the region,
//! credentials and endpoints its test gives it. Instance metadata is switched off, so a child
//! without credentials fails at once instead of waiting for a metadata service.

use std::process::Command;

/// The prefix of every variable the AWS SDKs and CLI read.
const AWS_PREFIX: &str = "AWS_";

/// An empty file, where the SDK would read the shared config and credentials files.
const NO_FILE: &str = "/dev/null";

/// Removes this process's `AWS_*` variables from `command`'s environment and hides the shared
/// AWS config and credentials files from it. Variables the caller sets on `command` afterwards
/// are kept.
pub fn isolate_aws_environment(command: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with(AWS_PREFIX) {
            command.env_remove(&name);
        }
    }
    command
        .env("AWS_CONFIG_FILE", NO_FILE)
        .env("AWS_SHARED_CREDENTIALS_FILE", NO_FILE)
        .env("AWS_EC2_METADATA_DISABLED", "true")
}

/// What `command` does with variable `name`: `Some(Some(value))` if it sets it, `Some(None)`
/// if it removes it, `None` if it leaves it as inherited. For tests of command builders.
pub fn command_env(command: &Command, name: &str) -> Option<Option<String>> {
    command
        .get_envs()
        .find(|(key, _)| key.to_string_lossy() == name)
        .map(|(_, value)| value.map(|value| value.to_string_lossy().into_owned()))
}

/// What [`isolate_aws_environment`] sets rather than removes.
const HIDING: [&str; 3] = ["AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_EC2_METADATA_DISABLED"];

/// Asserts that `command` is blind to this process's AWS settings: every `AWS_*` variable of
/// this process is removed from it (or set by the command itself), and the shared files are
/// hidden. For the tests of code that builds commands.
///
/// # Panics
/// When a variable would reach the command; the message names it.
pub fn assert_blind_to_aws(command: &Command) {
    let set_by_command = |name: &str| command_env(command, name).map(|value| value.is_some());
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with(AWS_PREFIX) && !HIDING.contains(&name.as_ref()) {
            assert_eq!(set_by_command(&name), Some(false), "{name} reaches the command");
        }
    }
    for name in HIDING {
        assert_eq!(set_by_command(name), Some(true), "{name} is not set for the command");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_isolated_command_sees_none_of_the_callers_aws_settings() {
        let mut command = Command::new("true");
        isolate_aws_environment(&mut command);
        assert_blind_to_aws(&command);
    }

    /// The test above, run again in a child whose environment carries a developer's AWS
    /// settings: none of them gets through.
    #[test]
    fn a_developers_aws_settings_do_not_get_through() {
        let this = std::env::current_exe().expect("the test binary");
        let output = Command::new(this)
            .args(["--exact", "aws_env::tests::an_isolated_command_sees_none_of_the_callers_aws_settings"])
            .env("AWS_REGION", "ap-south-1")
            .env("AWS_DEFAULT_REGION", "sa-east-1")
            .env("AWS_PROFILE", "someone-elses-profile")
            .env("AWS_ENDPOINT_URL", "http://192.0.2.1:1")
            .output()
            .expect("the test binary runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success() && stdout.contains("1 passed"), "{stdout}");
    }
}

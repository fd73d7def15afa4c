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

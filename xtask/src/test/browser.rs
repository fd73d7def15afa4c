//! The browser of the console's test (`devstack/tests/console.rs`): Debian's `chromium` and
//! `chromium-driver` (`chromium` and `chromedriver` on `PATH`).
//!
//! Installed with `apt-get` when missing and this runs as root (as on CI); otherwise
//! `cargo xtask test` stops and says what to install. The test never skips without them.

use crate::step;
use anyhow::{Context, Result, bail};
use std::os::unix::fs::MetadataExt;
use std::process::Command;

/// The programs the test runs, and the Debian packages that install them.
const PROGRAMS: [(&str, &str); 2] = [("chromium", "chromium"), ("chromedriver", "chromium-driver")];

/// Installs Chromium and chromedriver unless both are on `PATH`.
pub(crate) fn ensure() -> Result<()> {
    let missing: Vec<&str> =
        PROGRAMS.iter().filter(|(program, _)| !on_path(program)).map(|(_, package)| *package).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages = missing.join(" ");
    if !running_as_root() {
        bail!(
            "the console's browser test needs Chromium and chromedriver: install them with \
             `sudo apt-get install -y {packages}` (Debian's packages; `cargo xtask test` installs them itself when run as root)"
        );
    }
    step(format!("installing {packages} (apt-get) for the console's browser test"));
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("starting apt-get")
    };
    if !install()?.success() {
        // A machine that never read the package lists knows no chromium: read them, then again.
        let updated = Command::new("apt-get").args(["update", "-q"]).status().context("starting apt-get update")?;
        if !updated.success() || !install()?.success() {
            bail!("apt-get could not install {packages}; install them by hand (`apt-get install -y {packages}`)");
        }
    }
    Ok(())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|directory| directory.join(program).is_file()))
}

/// Whether this process runs as root (the owner of `/proc/self` is its effective user).
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|metadata| metadata.uid() == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_on_path_only() {
        assert!(on_path("sh"), "sh is on every PATH");
        assert!(!on_path("no-such-program-for-the-console-test"));
    }
}

//! Checks every stage file (`stages/*.yaml`) before the crate builds, with the reader the crate
//! itself uses (`src/stages/account.rs`): a file with an unknown key or an invalid value fails
//! the build, naming the file, the key and what is expected, instead of failing a command later.

#[allow(dead_code, unreachable_pub, reason = "the build script uses only the reader's entry point")]
#[path = "src/stages/account.rs"]
mod account;

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let directory = Path::new("stages");
    println!("cargo::rerun-if-changed={}", directory.display());
    let entries = match std::fs::read_dir(directory) {
        Ok(entries) => entries,
        Err(error) => {
            eprintln!("stacks/stages: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "yaml"))
        .collect();
    files.sort();
    let mut failed = false;
    for path in files {
        println!("cargo::rerun-if-changed={}", path.display());
        let name = format!("stacks/{}", path.display());
        let checked = std::fs::read_to_string(&path)
            .map_err(|error| format!("{name}: {error}"))
            .and_then(|text| account::parse(&name, &text).map(drop).map_err(|error| error.to_string()));
        if let Err(problem) = checked {
            eprintln!("error: {problem}");
            failed = true;
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

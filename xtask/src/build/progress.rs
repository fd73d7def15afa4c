//! The progress of `cargo xtask build`, function by function, as far as cargo lets it be seen.
//!
//! One `cargo lambda build` builds every function at once, so there is no process per
//! function to watch. What can be observed is what cargo reports with
//! `--message-format json-render-diagnostics` (cargo-lambda passes it on): a
//! `compiler-artifact` message each time a crate is compiled (or found fresh), on standard
//! output. [`Builds`] reads those messages and nothing else:
//!
//! - a function is **waiting** while its dependencies compile;
//! - it is **building** from the moment its own package's library is compiled: all that is
//!   left is its binary, the long step of a release build (fat LTO, one codegen unit);
//! - it is **built** when its binary's artifact arrives, and **done** once packaged as a zip,
//!   with the zip's size.
//!
//! What is not observable is not guessed: no percentage of a binary's compilation, no total
//! of crates (cargo does not announce one), only the crates compiled so far. The model takes
//! the moment as an argument, so the elapsed times it shows are the tests' to choose.
//!
//! [`Live`] runs the build that way on a terminal: cargo quiet (`--quiet`, no progress bar of
//! its own), its standard output read for the messages, its standard error (warnings, errors,
//! cargo-lambda's own words) printed above the board as it comes. Without a terminal the
//! build runs as it always has, cargo's output as cargo prints it.

use crate::progress::{Board, View, elapsed};
use anyhow::{Context, Result};
use serde_json::Value;
use std::io::BufRead;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One message of cargo's, as far as the progress needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CargoMessage {
    /// A crate compiled or found fresh: its target's name and kinds (`lib`, `bin`, ...) and
    /// the manifest of its package.
    Artifact { name: String, kinds: Vec<String>, manifest: String },
    /// Any other message (`build-script-executed`, `build-finished`, ...).
    Other,
}

impl CargoMessage {
    /// Reads one line of cargo's standard output; `None` when it is not a cargo message.
    pub(crate) fn parse(line: &str) -> Option<CargoMessage> {
        let message: Value = serde_json::from_str(line).ok()?;
        let reason = message.get("reason")?.as_str()?;
        if reason != "compiler-artifact" {
            return Some(CargoMessage::Other);
        }
        let target = message.get("target")?;
        Some(CargoMessage::Artifact {
            name: target.get("name")?.as_str()?.to_owned(),
            kinds: target.get("kind")?.as_array()?.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            manifest: message.get("manifest_path")?.as_str()?.to_owned(),
        })
    }
}

/// Where one function is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Building { since: Instant },
    Built { took: std::time::Duration },
    Packaged { size: u64 },
}

#[derive(Debug, Clone)]
struct Function {
    /// The manifest of the package that holds its binary, when known.
    manifest: Option<String>,
    state: State,
}

/// The build of the functions; see the module's docs.
#[derive(Debug, Clone)]
pub(crate) struct Builds {
    title: String,
    started: Instant,
    /// By binary name, in the order given.
    functions: Vec<(String, Function)>,
    /// Crates compiled or found fresh so far.
    crates: usize,
}

impl Builds {
    /// The build of `functions` (binary name, manifest of its package when known), started
    /// at `started`.
    pub(crate) fn new(title: &str, functions: &[(&str, Option<String>)], started: Instant) -> Builds {
        Builds {
            title: title.to_owned(),
            started,
            functions: functions
                .iter()
                .map(|(name, manifest)| {
                    ((*name).to_owned(), Function { manifest: manifest.clone(), state: State::Waiting })
                })
                .collect(),
            crates: 0,
        }
    }

    /// Takes in cargo's next message, received at `now`.
    pub(crate) fn apply(&mut self, message: &CargoMessage, now: Instant) {
        let CargoMessage::Artifact { name, kinds, manifest } = message else {
            return;
        };
        self.crates += 1;
        let started = self.started;
        for (function, progress) in &mut self.functions {
            let its_binary = function == name && kinds.iter().any(|kind| kind == "bin");
            let its_library = progress.manifest.as_deref() == Some(manifest.as_str())
                && kinds.iter().any(|kind| kind == "lib" || kind == "rlib");
            match progress.state {
                State::Waiting | State::Building { .. } if its_binary => {
                    let since = match progress.state {
                        State::Building { since } => since,
                        _ => started,
                    };
                    progress.state = State::Built { took: now.saturating_duration_since(since) };
                }
                State::Waiting if its_library => progress.state = State::Building { since: now },
                _ => {}
            }
        }
    }

    /// Records the zip of `function`, `size` bytes.
    pub(crate) fn packaged(&mut self, function: &str, size: u64) {
        if let Some((_, progress)) = self.functions.iter_mut().find(|(name, _)| name == function) {
            progress.state = State::Packaged { size };
        }
    }

    /// What a person sees at `now`.
    pub(crate) fn view(&self, now: Instant) -> View {
        let width = self.functions.iter().map(|(name, _)| name.chars().count()).max().unwrap_or(0);
        let lines = self
            .functions
            .iter()
            .map(|(name, progress)| {
                let state = match progress.state {
                    State::Waiting => "waiting for its dependencies".to_owned(),
                    State::Building { since } => {
                        format!("building its binary, {}", elapsed(now.saturating_duration_since(since)))
                    }
                    State::Built { took } => format!("built ({}), packaging", elapsed(took)),
                    State::Packaged { size } => format!("done, {:.2} MB", size as f64 / 1e6),
                };
                format!("{name:<width$}  {state}")
            })
            .collect();
        let done = self
            .functions
            .iter()
            .filter(|(_, progress)| !matches!(progress.state, State::Waiting | State::Building { .. }));
        View {
            title: self.title.clone(),
            done: done.count() as u64,
            total: self.functions.len() as u64,
            unit: format!(
                "functions, {} {} compiled, {}",
                self.crates,
                if self.crates == 1 { "crate" } else { "crates" },
                elapsed(now.saturating_duration_since(self.started))
            ),
            lines,
        }
    }
}

/// The live display of a build on a terminal.
#[derive(Debug)]
pub(crate) struct Live {
    builds: Builds,
    board: Board,
}

/// A line of the build's output.
enum Line {
    Out(String),
    Err(String),
}

impl Live {
    pub(crate) fn new(builds: Builds) -> Live {
        Live::on(builds, Board::stderr())
    }

    fn on(builds: Builds, board: Board) -> Live {
        Live { builds, board }
    }

    /// Runs `command` (a `cargo lambda build`), showing its progress; returns how it ended.
    pub(crate) fn run(&mut self, command: &mut Command) -> Result<ExitStatus> {
        let mut child = command
            .args(["--quiet", "--message-format", "json-render-diagnostics", "--color", "always"])
            .env("CARGO_TERM_PROGRESS_WHEN", "never")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting cargo lambda")?;
        let (sender, lines) = mpsc::channel();
        let readers = [
            child.stdout.take().map(|out| forward(out, sender.clone(), Line::Out)),
            child.stderr.take().map(|err| forward(err, sender, Line::Err)),
        ];
        loop {
            self.board.show(&self.builds.view(Instant::now()));
            match lines.recv_timeout(Duration::from_secs(1)) {
                Ok(Line::Out(line)) => match CargoMessage::parse(&line) {
                    Some(message) => self.builds.apply(&message, Instant::now()),
                    None => self.board.println(&line),
                },
                Ok(Line::Err(line)) => self.board.println(&line),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        for reader in readers.into_iter().flatten() {
            reader.join().ok();
        }
        child.wait().context("waiting for cargo lambda")
    }

    /// Records the zip of `function`, `size` bytes.
    pub(crate) fn packaged(&mut self, function: &str, size: u64) {
        self.builds.packaged(function, size);
        self.board.show(&self.builds.view(Instant::now()));
    }

    /// Leaves the last view's header on screen.
    pub(crate) fn finish(self) {
        self.board.finish(&self.builds.view(Instant::now()));
    }
}

/// Sends each line read from `from`, made a [`Line`] by `kind`, until it ends.
fn forward(
    from: impl std::io::Read + Send + 'static,
    to: mpsc::Sender<Line>,
    kind: fn(String) -> Line,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if to.send(kind(line)).is_err() {
                break;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::tests::board_in_memory;

    /// A `compiler-artifact` line as cargo 1.94 prints it (abridged to the fields read, in
    /// cargo's order), for a crate of the workspace at `dir`.
    fn artifact(name: &str, kind: &str, dir: &str) -> String {
        format!(
            r#"{{"reason":"compiler-artifact","package_id":"path+file:///w/{dir}#0.1.0","manifest_path":"/w/{dir}/Cargo.toml","target":{{"kind":["{kind}"],"crate_types":["{kind}"],"name":"{name}","src_path":"/w/{dir}/src/main.rs","edition":"2024","doc":true,"doctest":false,"test":true}},"features":[],"filenames":[],"executable":null,"fresh":false}}"#
        )
    }

    fn builds(start: Instant) -> Builds {
        Builds::new(
            "building (arm64, release)",
            &[
                ("authorizer", Some("/w/handlers/authorizer/Cargo.toml".to_owned())),
                ("http", Some("/w/handlers/http/Cargo.toml".to_owned())),
            ],
            start,
        )
    }

    #[test]
    fn cargos_messages_are_read_and_anything_else_is_not_one() {
        assert_eq!(
            CargoMessage::parse(&artifact("http", "bin", "handlers/http")),
            Some(CargoMessage::Artifact {
                name: "http".into(),
                kinds: vec!["bin".into()],
                manifest: "/w/handlers/http/Cargo.toml".into()
            })
        );
        assert_eq!(CargoMessage::parse(r#"{"reason":"build-finished","success":true}"#), Some(CargoMessage::Other));
        assert_eq!(CargoMessage::parse("Finished `release` profile"), None);
    }

    #[test]
    fn a_function_waits_builds_once_its_library_is_compiled_and_is_done_when_packaged() {
        let start = Instant::now();
        let at = |seconds| start + Duration::from_secs(seconds);
        let mut builds = builds(start);
        for (seconds, line) in [
            (3, artifact("serde", "lib", ".cargo/serde")),
            (40, artifact("session_core", "lib", "handlers/core")),
            (41, artifact("authorizer_function", "lib", "handlers/authorizer")),
            (50, artifact("http_function", "lib", "handlers/http")),
            (95, artifact("authorizer", "bin", "handlers/authorizer")),
        ] {
            builds.apply(&CargoMessage::parse(&line).expect("a message"), at(seconds));
        }
        let view = builds.view(at(100));
        assert_eq!((view.done, view.total), (1, 2));
        assert_eq!(view.unit, "functions, 5 crates compiled, 1m 40s");
        assert_eq!(view.lines, ["authorizer  built (54s), packaging", "http        building its binary, 50s"]);
        builds.packaged("authorizer", 2_345_678);
        assert_eq!(builds.view(at(100)).lines[0], "authorizer  done, 2.35 MB");
        assert_eq!(
            Builds::new("b", &[("http", None)], start).view(start).lines,
            ["http  waiting for its dependencies"]
        );
    }

    /// The build's output is read as it comes: cargo's messages move the functions on, its
    /// standard error stays on screen above the board, its exit status is returned.
    #[test]
    fn a_live_build_reads_cargos_messages_and_keeps_its_errors_on_screen() {
        let script = format!(
            "echo '{}'; echo 'warning: unused variable: `x`' >&2; echo '{}'; echo 'not a message'; exit 3",
            artifact("http_function", "lib", "handlers/http"),
            artifact("http", "bin", "handlers/http")
        );
        let (board, terminal) = board_in_memory();
        let mut live = Live::on(builds(Instant::now()), board);
        // The arguments a live build adds to cargo's become the script's own, unused.
        let status = live.run(Command::new("sh").args(["-c", &script, "sh"])).expect("ran");
        assert_eq!(status.code(), Some(3));
        live.packaged("http", 1_500_000);
        let shown = terminal.contents();
        assert!(shown.contains("warning: unused variable: `x`\n"), "{shown}");
        assert!(shown.contains("not a message\n"), "{shown}");
        assert!(shown.contains("building (arm64, release): 1/2 functions, 2 crates compiled, "), "{shown}");
        assert!(shown.contains("authorizer  waiting for its dependencies"), "{shown}");
        assert!(shown.contains("http        done, 1.50 MB"), "{shown}");
    }

    #[test]
    fn a_person_sees_each_function_and_how_far_the_build_is() {
        let start = Instant::now();
        let mut builds = builds(start);
        builds.apply(
            &CargoMessage::parse(&artifact("http_function", "lib", "handlers/http")).expect("a message"),
            start + Duration::from_secs(61),
        );
        let (mut board, terminal) = board_in_memory();
        board.show(&builds.view(start + Duration::from_secs(75)));
        assert_eq!(
            terminal.contents(),
            "building (arm64, release): 0/2 functions, 1 crate compiled, 1m 15s [                        ]\n  \
             authorizer  waiting for its dependencies\n  \
             http        building its binary, 14s"
        );
    }
}

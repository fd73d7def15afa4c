//! Live progress on a terminal, plain lines everywhere else: what `build` and `deploy` share.
//!
//! A command keeps a model of its work (a pure state machine: `deploy::progress`,
//! `build::progress`) and asks it for a [`View`] at a given moment: a header with done / total
//! and one line per piece of work worth watching (a resource being created, a function being
//! built), elapsed times included. The model takes the moment as an argument, so what it says
//! never depends on the clock of the machine that tests it.
//!
//! [`live`] decides how that is shown. On a terminal a [`Board`] draws each view in place with
//! indicatif: the header as a bar, the lines beneath it, and [`Board::println`] for what must
//! stay on screen (a failure). Anywhere else (standard error not a terminal, or `TERM=dumb`:
//! CI logs, pipes, the tests that run `cargo xtask`) the commands print the plain lines they
//! always have, and no view is drawn.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// Whether progress is drawn live: standard error is a terminal that can move its cursor.
pub(crate) fn live() -> bool {
    live_for(std::io::stderr().is_terminal(), std::env::var("TERM").ok().as_deref())
}

fn live_for(stderr_is_terminal: bool, term: Option<&str>) -> bool {
    stderr_is_terminal && term != Some("dumb")
}

/// A duration as a person reads it: `7s`, `3m 05s`, `1h 02m`.
pub(crate) fn elapsed(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m {:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h {:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}

/// What a live display shows at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct View {
    /// What is going on: `deploying session-service-dev`, `rolling back session-service-dev`.
    pub(crate) title: String,
    pub(crate) done: u64,
    pub(crate) total: u64,
    /// What is counted (`resources`), and anything else for the end of the header.
    pub(crate) unit: String,
    /// One line per piece of work worth watching, in the order shown.
    pub(crate) lines: Vec<String>,
}

/// A live display on a terminal: a header bar and the lines of a [`View`] beneath it.
#[derive(Debug)]
pub(crate) struct Board {
    multi: MultiProgress,
    header: ProgressBar,
    lines: Vec<ProgressBar>,
}

impl Board {
    /// A board drawn on standard error.
    pub(crate) fn stderr() -> Board {
        Board::new(ProgressDrawTarget::stderr())
    }

    /// A board drawn on `target` (the tests' terminal in memory).
    pub(crate) fn new(target: ProgressDrawTarget) -> Board {
        let multi = MultiProgress::with_draw_target(target);
        let style = ProgressStyle::with_template("{prefix:.bold}: {pos}/{len} {msg} [{bar:24}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let header = multi.add(ProgressBar::new(0).with_style(style));
        Board { multi, header, lines: Vec::new() }
    }

    /// Shows `view` in place of the one before.
    pub(crate) fn show(&mut self, view: &View) {
        // Each setter draws: the counts first, so that no draw shows an empty bar as full.
        self.header.set_length(view.total.max(view.done));
        self.header.set_position(view.done);
        self.header.set_message(view.unit.clone());
        self.header.set_prefix(view.title.clone());
        while self.lines.len() > view.lines.len() {
            if let Some(line) = self.lines.pop() {
                line.finish_and_clear();
                self.multi.remove(&line);
            }
        }
        while self.lines.len() < view.lines.len() {
            let style = ProgressStyle::with_template("  {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner());
            self.lines.push(self.multi.add(ProgressBar::new(0).with_style(style)));
        }
        for (bar, text) in self.lines.iter().zip(&view.lines) {
            bar.set_message(text.clone());
        }
    }

    /// Prints `line` above the board, where it stays.
    pub(crate) fn println(&self, line: &str) {
        // Printing fails only when the terminal went away; there is nobody to tell then.
        self.multi.println(line).ok();
    }

    /// Shows `view` a last time and leaves its header on screen, without its lines.
    pub(crate) fn finish(mut self, view: &View) {
        self.show(&View { lines: Vec::new(), ..view.clone() });
        self.header.abandon();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use indicatif::InMemoryTerm;

    /// A board drawn on a terminal in memory of 100 columns, and that terminal.
    pub(crate) fn board_in_memory() -> (Board, InMemoryTerm) {
        let terminal = InMemoryTerm::new(24, 100);
        (Board::new(ProgressDrawTarget::term_like(Box::new(terminal.clone()))), terminal)
    }

    #[test]
    fn progress_is_live_only_on_a_terminal_that_is_not_dumb() {
        assert!(live_for(true, Some("xterm-256color")));
        assert!(live_for(true, None));
        assert!(!live_for(true, Some("dumb")));
        assert!(!live_for(false, Some("xterm-256color")));
    }

    #[test]
    fn durations_read_as_a_person_says_them() {
        assert_eq!(elapsed(Duration::from_millis(7_900)), "7s");
        assert_eq!(elapsed(Duration::from_secs(185)), "3m 05s");
        assert_eq!(elapsed(Duration::from_secs(3_720)), "1h 02m");
    }

    #[test]
    fn a_board_draws_the_header_and_lines_and_keeps_printed_lines() {
        let (mut board, terminal) = board_in_memory();
        let view = |done, lines: &[&str]| View {
            title: "deploying s".into(),
            done,
            total: 4,
            unit: "resources".into(),
            lines: lines.iter().map(|line| line.to_string()).collect(),
        };
        board.show(&view(1, &["A creating 3s", "B updating 1s"]));
        assert_eq!(
            terminal.contents(),
            "deploying s: 1/4 resources [======>                 ]\n  A creating 3s\n  B updating 1s"
        );
        board.println("✗ B failed");
        board.show(&view(2, &["A creating 4s"]));
        assert_eq!(
            terminal.contents(),
            "✗ B failed\ndeploying s: 2/4 resources [============>           ]\n  A creating 4s"
        );
        board.finish(&view(4, &[]));
        assert_eq!(terminal.contents(), "✗ B failed\ndeploying s: 4/4 resources [========================]");
    }
}

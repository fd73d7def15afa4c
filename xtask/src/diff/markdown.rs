//! `cargo xtask diff --format markdown`: the report as the body of a pull-request comment,
//! which a workflow posts and then updates in place (`.github/workflows/release.yml`).
//!
//! The body, in the order a reviewer needs it:
//!
//! 1. a hidden marker naming the stage ([`marker`]): the workflow finds its own comment by it;
//! 2. a heading and a summary line: the verdict (no changes, N changes, or what blocks the
//!    release), how many resources are added, modified and removed, the replacements, the
//!    functions whose code differs, and the exit code;
//! 3. what must be read before anything else: security-relevant changes, stateful resources
//!    replaced or removed (data loss), updates CloudFormation would reject;
//! 4. a table of the changed resources (logical id, type, action, replacement);
//! 5. the contract findings on both sides, deployed and synthesized;
//! 6. per function, the deployed code against the local build (short content hashes);
//! 7. every property change, with why a resource is replaced and what else a change means,
//!    in a collapsed `<details>` block.
//!
//! Everything that comes from a template is escaped, since a value may hold a `|` (which would
//! split a table cell), a newline (which would end a table row), a backtick, or text that
//! GitHub would otherwise turn into a mention (`@connections`), an issue link (`#1`), math
//! (`$connect … $default`) or HTML: [`text`] for prose and [`code`] for table cells.
//!
//! A GitHub comment holds at most [`LIMIT`] characters: the details are cut to fit, row by
//! row, and a note after them says how many lines were left out and which command shows them
//! all. Long values are shortened to [`VALUE_LIMIT`] characters in the details table.

use super::{CodeChange, CodeStatus, Report};
use stacks::diff::{ChangeKind, PropertyChange, Replacement, ResourceChange};
use std::fmt::Write as _;

/// The most characters a GitHub comment (issue or pull request) may hold.
pub(crate) const LIMIT: usize = 65_536;

/// The most characters of one value shown in the details table.
pub(crate) const VALUE_LIMIT: usize = 300;

/// The hidden first line of the comment for `stage`: a workflow looks for it to update its own
/// comment instead of adding one per push.
pub(crate) fn marker(stage: &str) -> String {
    // Only characters that cannot close the HTML comment.
    let stage: String = stage.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).collect();
    format!("<!-- session-service diff: {stage} -->")
}

/// The comment body for `report` of `stage`, at most [`LIMIT`] characters.
pub(crate) fn render(report: &Report, stage: &str) -> String {
    let mut head = String::new();
    summary(&mut head, report, stage);
    must_read(&mut head, report);
    resources(&mut head, report);
    findings(&mut head, report);
    code_table(&mut head, report);
    fit(head, &details(report), stage)
}

/// U+2060, invisible: breaks GitHub's mention and issue-reference patterns.
const WORD_JOINER: char = '\u{2060}';

/// `s` as markdown text that reads literally in a paragraph, a list item or a table cell:
/// every character markdown (or GitHub: mentions, issue links, math) could read as syntax is
/// backslash-escaped, and line breaks become `<br>` so that a table row stays one line.
pub(crate) fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("<br>");
            }
            '\n' => out.push_str("<br>"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '!' | '&' | '$' => {
                out.push('\\');
                out.push(c);
            }
            // GitHub links mentions and issue references in the rendered text, after the
            // backslash is gone: an invisible word joiner after the sign keeps `@connections`
            // from notifying a user and `#1` from linking an issue.
            '#' | '@' => {
                out.push('\\');
                out.push(c);
                out.push(WORD_JOINER);
            }
            c => out.push(c),
        }
    }
    out
}

/// `s` as an inline code span for a table cell: a fence one backtick longer than any run of
/// backticks inside, padded when `s` starts or ends with one; `|` escaped (GitHub's tables
/// split cells before reading code spans); line breaks as spaces.
pub(crate) fn code(s: &str) -> String {
    let flat = s.replace("\r\n", " ").replace(['\n', '\r'], " ").replace('|', "\\|");
    if flat.trim().is_empty() {
        return "*(empty)*".to_owned();
    }
    let longest = flat.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if flat.starts_with('`') || flat.ends_with('`') { " " } else { "" };
    format!("{fence}{pad}{flat}{pad}{fence}")
}

/// At most `limit` characters of `s`, with `…` when it was cut.
fn shorten(s: &str, limit: usize) -> String {
    if s.chars().count() <= limit {
        return s.to_owned();
    }
    let mut cut: String = s.chars().take(limit.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// How many resources change in each way.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) added: usize,
    pub(crate) modified: usize,
    pub(crate) removed: usize,
    /// Unchanged in the template, but referring to a replaced resource.
    pub(crate) may_change: usize,
    pub(crate) replaced: usize,
    pub(crate) may_be_replaced: usize,
    /// Parameters and outputs that differ.
    pub(crate) other: usize,
    /// Functions whose deployed code is not the local build.
    pub(crate) code: usize,
}

impl Counts {
    pub(crate) fn of(report: &Report) -> Counts {
        let mut counts = Counts { other: report.diff.other.len(), ..Counts::default() };
        for change in &report.diff.resources {
            match change.kind {
                ChangeKind::Added => counts.added += 1,
                ChangeKind::Modified => counts.modified += 1,
                ChangeKind::Removed => counts.removed += 1,
                ChangeKind::MayChange => counts.may_change += 1,
            }
            match change.replacement {
                Replacement::Always => counts.replaced += 1,
                Replacement::Conditional => counts.may_be_replaced += 1,
                Replacement::Never => {}
            }
        }
        counts.code = report.code.iter().filter(|change| change.status == CodeStatus::Differs).count();
        counts
    }

    /// Every change a release would make.
    pub(crate) fn total(&self) -> usize {
        self.added + self.modified + self.removed + self.may_change + self.other + self.code
    }
}

fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

fn summary(out: &mut String, report: &Report, stage: &str) {
    let counts = Counts::of(report);
    let verdict = match report.exit_code {
        0 => "✅ No changes".to_owned(),
        2 => format!("🔶 {}", plural(counts.total(), "change", "changes")),
        _ if report.diff.rejected().next().is_some() => {
            "⛔ CloudFormation would reject this update: split it into releases".to_owned()
        }
        _ => "⛔ Contract findings block the release".to_owned(),
    };
    let _ = writeln!(out, "{}", marker(stage));
    let _ = writeln!(out, "### Release diff of stage {}: {verdict}\n", text(stage));
    let mut parts = vec![
        format!("Stack **{}** ({})", text(&report.stack), report.state()),
        format!("{} added", counts.added),
        format!("{} modified", counts.modified),
        format!("{} removed", counts.removed),
    ];
    if counts.may_change > 0 {
        parts.push(format!("{} may change", counts.may_change));
    }
    parts.push(format!(
        "{}{}",
        plural(counts.replaced, "replacement", "replacements"),
        if counts.may_be_replaced > 0 { format!(" ({} more possible)", counts.may_be_replaced) } else { String::new() }
    ));
    if counts.other > 0 {
        parts.push(plural(counts.other, "parameter or output", "parameters or outputs"));
    }
    if counts.code > 0 {
        parts.push(format!("code of {} differs", plural(counts.code, "function", "functions")));
    }
    parts.push(format!("exit {}", report.exit_code));
    let _ = writeln!(out, "{}", parts.join(" · "));
}

fn resource_label(change: &ResourceChange) -> String {
    format!("**{}** ({})", text(&change.logical_id), text(&change.resource_type))
}

/// Security, data loss and rejected updates: what a reviewer reads first.
fn must_read(out: &mut String, report: &Report) {
    let security: Vec<&ResourceChange> = report.diff.security().collect();
    if !security.is_empty() {
        let _ = writeln!(out, "\n#### ⚠️ Security-relevant changes (review before release)\n");
        for change in security {
            for reason in &change.security {
                let _ = writeln!(out, "- {}: {}", resource_label(change), text(reason));
            }
        }
    }
    let losses: Vec<&ResourceChange> = report.diff.data_loss().collect();
    if !losses.is_empty() {
        let _ = writeln!(out, "\n#### 🗑️ Data loss: stateful resources replaced or removed\n");
        for change in losses {
            let _ = writeln!(
                out,
                "- {}: {}",
                resource_label(change),
                text(change.data_loss.as_deref().unwrap_or_default())
            );
        }
    }
    let rejected: Vec<&ResourceChange> = report.diff.rejected().collect();
    if !rejected.is_empty() {
        let _ = writeln!(out, "\n#### ⛔ Updates CloudFormation would reject (split them into releases)\n");
        for change in rejected {
            let _ =
                writeln!(out, "- {}: {}", resource_label(change), text(change.rejected.as_deref().unwrap_or_default()));
        }
    }
}

fn action(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Added => "add",
        ChangeKind::Modified => "modify",
        ChangeKind::Removed => "remove",
        ChangeKind::MayChange => "may change",
    }
}

fn replacement(replacement: Replacement) -> &'static str {
    match replacement {
        Replacement::Always => "**replace**",
        Replacement::Conditional => "may replace",
        Replacement::Never => "no",
    }
}

fn resources(out: &mut String, report: &Report) {
    let _ = writeln!(out, "\n#### Resources\n");
    if report.diff.resources.is_empty() {
        let _ = writeln!(out, "No resource differs.");
        return;
    }
    let _ = writeln!(out, "| Resource | Type | Action | Replacement |\n|---|---|---|---|");
    for change in &report.diff.resources {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            code(&change.logical_id),
            code(&change.resource_type),
            action(change.kind),
            replacement(change.replacement)
        );
    }
}

fn findings(out: &mut String, report: &Report) {
    let _ = writeln!(out, "\n#### Contract findings\n");
    let sides = [("deployed", &report.findings.deployed), ("synthesized", &report.findings.synthesized)];
    if sides.iter().all(|(_, findings)| findings.is_empty()) {
        let _ = writeln!(out, "None, in the deployed template or in the synthesized one.");
        return;
    }
    for (side, findings) in sides {
        if findings.is_empty() {
            let _ = writeln!(out, "In the {side} template: none.\n");
            continue;
        }
        let _ = writeln!(out, "In the **{side}** template ({}):\n", findings.len());
        for finding in findings {
            let _ = writeln!(out, "- ✗ {}", text(&finding.to_string()));
        }
        let _ = writeln!(out);
    }
    // One blank line before the next section, not two.
    while out.ends_with("\n\n") {
        out.pop();
    }
}

/// The short form of an asset key `assets/<function>/<sha256>.zip`: the first 12 hex digits
/// (the key itself when it is not of that form).
pub(crate) fn short_key(key: &str) -> String {
    let name = key.rsplit('/').next().unwrap_or(key);
    let stem = name.strip_suffix(".zip").unwrap_or(name);
    if stem.len() >= 12 && stem.chars().all(|c| c.is_ascii_hexdigit()) { stem[..12].to_owned() } else { key.to_owned() }
}

fn code_status(change: &CodeChange) -> &'static str {
    match change.status {
        CodeStatus::Same => "same",
        CodeStatus::Differs => "**differs**",
        CodeStatus::NotBuilt => "not built here",
        CodeStatus::NotDeployed => "not deployed yet",
    }
}

fn code_table(out: &mut String, report: &Report) {
    let _ = writeln!(out, "\n#### Code\n");
    if report.code.is_empty() {
        let _ = writeln!(out, "Not compared.");
        return;
    }
    let _ = writeln!(out, "| Function | Deployed | Local build | Status |\n|---|---|---|---|");
    for change in &report.code {
        let key = |key: &Option<String>| key.as_deref().map(|key| code(&short_key(key))).unwrap_or("—".to_owned());
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            code(&change.function),
            key(&change.deployed_key),
            key(&change.local_key),
            code_status(change)
        );
    }
    if report.code.iter().any(|change| change.status == CodeStatus::NotBuilt) {
        let _ = writeln!(out, "\nFunctions not built here were not compared: run `cargo xtask build` first.");
    }
}

fn value(value: &Option<serde_json::Value>) -> String {
    match value {
        None => "*(absent)*".to_owned(),
        Some(serde_json::Value::String(string)) => code(&shorten(string, VALUE_LIMIT)),
        Some(other) => code(&shorten(&other.to_string(), VALUE_LIMIT)),
    }
}

/// The lines of the details block: a table of every property change, then why resources are
/// replaced and what else the changes mean.
fn details(report: &Report) -> Vec<String> {
    let row = |resource: &str, property: &PropertyChange| {
        format!(
            "| {} | {} | {} | {} |",
            code(resource),
            code(&property.path),
            value(&property.old),
            value(&property.new)
        )
    };
    let mut rows: Vec<String> = report
        .diff
        .resources
        .iter()
        .filter(|change| change.kind == ChangeKind::Modified)
        .flat_map(|change| change.properties.iter().map(|property| row(&change.logical_id, property)))
        .collect();
    rows.extend(report.diff.other.iter().map(|property| row("(template)", property)));
    let mut lines = Vec::new();
    if !rows.is_empty() {
        lines.push("| Resource | Property | Deployed | Synthesized |".to_owned());
        lines.push("|---|---|---|---|".to_owned());
        lines.extend(rows);
    }
    let mut notes = Vec::new();
    for change in &report.diff.resources {
        let verdict = match (change.kind, change.replacement) {
            (_, Replacement::Always) => "replaced",
            (_, Replacement::Conditional) => "may be replaced",
            (ChangeKind::MayChange, Replacement::Never) => "may change",
            _ => "changes",
        };
        for because in &change.replacement_because {
            notes.push(format!("- {} {verdict} because {}", resource_label(change), text(because)));
        }
        for note in &change.notes {
            notes.push(format!("- {}: {}", resource_label(change), text(note)));
        }
    }
    if !notes.is_empty() {
        if !lines.is_empty() {
            lines.push(String::new());
        }
        lines.extend(notes);
    }
    lines
}

/// `head`, then as many `details` lines as fit under [`LIMIT`] in a `<details>` block, then a
/// note naming what was left out.
fn fit(mut head: String, details: &[String], stage: &str) -> String {
    let note = |left: usize| {
        format!(
            "\n> ✂️ {} left out: a GitHub comment holds at most {LIMIT} characters. \
             `cargo xtask diff --stage {}` shows everything.\n",
            plural(left, "line", "lines"),
            text(stage)
        )
    };
    // Room for the closing tag and the longest note.
    let reserve = "\n</details>\n".len() + note(usize::MAX).chars().count();
    let size = |s: &str| s.chars().count();
    let property_rows =
        details.iter().filter(|line| line.starts_with("| ") && !line.starts_with("| Resource |")).count();
    let summary = match details {
        [] => String::new(),
        _ => format!(
            "\n<details><summary>Details: {}</summary>\n\n",
            plural(property_rows, "property change", "property changes")
        ),
    };
    if size(&head) + size(&summary) + reserve > LIMIT {
        // Only a report of thousands of resources gets here: cut at a line.
        let lines: Vec<&str> = head.lines().collect();
        let mut cut = String::new();
        let kept = append_lines(&mut cut, &lines, LIMIT - reserve);
        cut.push_str(&note(lines.len() - kept + details.len()));
        return cut;
    }
    if details.is_empty() {
        return head;
    }
    head.push_str(&summary);
    let written = append_lines(&mut head, details, LIMIT - reserve);
    head.push_str("\n</details>\n");
    if written < details.len() {
        head.push_str(&note(details.len() - written));
    }
    head
}

/// Appends `lines` to `out`, each with its newline, while `out` stays within `room`
/// characters; returns how many it appended.
fn append_lines(out: &mut String, lines: &[impl AsRef<str>], room: usize) -> usize {
    let mut size = out.chars().count();
    for (appended, line) in lines.iter().enumerate() {
        let line = line.as_ref();
        let grown = size + line.chars().count() + 1;
        if grown > room {
            return appended;
        }
        out.push_str(line);
        out.push('\n');
        size = grown;
    }
    lines.len()
}

#[cfg(test)]
mod tests;

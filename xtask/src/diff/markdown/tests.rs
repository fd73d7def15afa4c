//! The pull-request comment's structure, on reports built from real templates, read back with a
//! CommonMark/GFM parser (pulldown-cmark, tables on): headings in review order, table rows and
//! cells, escaping that survives hostile values, and the comment size limit.

use super::*;
use crate::build;
use crate::diff::{Findings, code_changes, report, with_two_indexes_more};
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use serde_json::{Value, json};
use stacks::diff::TemplateDiff;
use stacks::naming;
use std::collections::BTreeMap;

fn dev() -> Value {
    stacks::synthesize(&contract::CONTRACT, &stacks::stages::dev()).expect("synthesizes").to_value()
}

/// What a GFM reader sees: the headings' text, and per table its rows (header first) of cells.
#[derive(Debug, Default)]
struct Read {
    headings: Vec<String>,
    tables: Vec<Vec<Vec<String>>>,
}

fn read(body: &str) -> Read {
    let mut read = Read::default();
    let (mut heading, mut row, mut cell): (Option<String>, Vec<String>, Option<String>) = (None, Vec::new(), None);
    for event in Parser::new_ext(body, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::End(TagEnd::Heading(_)) => read.headings.extend(heading.take()),
            Event::Start(Tag::Table(_)) => read.tables.push(Vec::new()),
            Event::Start(Tag::TableHead | Tag::TableRow) => row = Vec::new(),
            Event::End(TagEnd::TableHead | TagEnd::TableRow) => {
                read.tables.last_mut().expect("in a table").push(std::mem::take(&mut row));
            }
            Event::Start(Tag::TableCell) => cell = Some(String::new()),
            Event::End(TagEnd::TableCell) => row.extend(cell.take()),
            Event::Text(piece) | Event::Code(piece) | Event::InlineHtml(piece) => {
                if let Some(open) = cell.as_mut().or(heading.as_mut()) {
                    open.push_str(&piece);
                }
            }
            _ => {}
        }
    }
    read
}

/// The table that follows the heading `title`.
fn table_after<'a>(body: &str, read: &'a Read, title: &str) -> &'a Vec<Vec<String>> {
    let start = body.find(&format!("#### {title}")).unwrap_or_else(|| panic!("no {title} in {body}"));
    let index = body[..start].matches("\n|---").count();
    &read.tables[index]
}

fn the_seed_incident_and_a_renamed_table() -> Value {
    let mut deployed = dev();
    deployed["Resources"]["ConnectAuthorizer"]["Properties"]["IdentitySource"] =
        json!(["route.request.querystring.token"]);
    let table = contract::CONTRACT.tables[0].logical_id;
    deployed["Resources"][table]["Properties"]["TableName"] = json!("renamed-by-hand");
    deployed
}

fn code_of_messages_changed() -> Vec<CodeChange> {
    let zip = |function: &str, content: &[u8]| {
        let dir = std::env::temp_dir();
        build::artifact(function, build::Arch::Arm64, build::Profile::Release, dir.join("x.zip"), content)
    };
    let (connection, messages) = (zip("connection", b"c"), zip("messages", b"m"));
    let deployed = BTreeMap::from([
        (naming::code_key("authorizer"), "assets/authorizer/old.zip".to_owned()),
        (naming::code_key("connection"), connection.asset_key()),
        (naming::code_key("messages"), format!("assets/messages/{}.zip", "ab".repeat(32))),
    ]);
    code_changes(&deployed, &[connection, messages])
}

#[test]
fn no_change_is_the_marker_a_verdict_and_empty_sections() {
    let body = render(&report("session-service-prod", Some(&dev()), &dev()), "prod");
    assert_eq!(body.lines().next(), Some("<!-- session-service diff: prod -->"));
    assert_eq!(marker("prod"), "<!-- session-service diff: prod -->");
    let read = read(&body);
    assert_eq!(read.headings, ["Release diff of stage prod: ✅ No changes", "Resources", "Contract findings", "Code"]);
    assert!(body.contains("No resource differs.") && body.contains("Not compared."), "{body}");
    assert!(body.contains("0 added · 0 modified · 0 removed · 0 replacements · exit 0"), "{body}");
    assert!(!body.contains("<details>"), "{body}");
    assert!(!body.contains("\n\n\n"), "{body}");
}

#[test]
fn what_must_be_read_comes_first_then_resources_findings_code_and_details() {
    let mut report = report("session-service-prod", Some(&the_seed_incident_and_a_renamed_table()), &dev());
    report.with_code(code_of_messages_changed());
    assert_eq!(report.exit_code, 1);
    let body = render(&report, "prod");
    let read = read(&body);
    assert_eq!(
        read.headings,
        [
            "Release diff of stage prod: ⛔ Contract findings block the release",
            "⚠️ Security-relevant changes (review before release)",
            "🗑️ Data loss: stateful resources replaced or removed",
            "Resources",
            "Contract findings",
            "Code"
        ]
    );
    let details = body.find("<details><summary>Details:").expect("details");
    assert!(body.find("#### Code").expect("code") < details && body.trim_end().ends_with("</details>"), "{body}");
    let summary = body.lines().find(|line| line.starts_with("Stack ")).expect("summary line");
    let counts = Counts::of(&report);
    assert!(counts.modified >= 2 && counts.replaced >= 1, "{counts:?}");
    for part in [
        format!("{} modified", counts.modified),
        format!("{} replacement", counts.replaced),
        "code of 1 function differs".to_owned(),
        "exit 1".to_owned(),
    ] {
        assert!(summary.contains(&part), "{part} in {summary}");
    }
    // The finding on the deployed side, escaped ($connect is not math, nor @ a mention).
    let deployed = report.findings.deployed.len();
    assert!(deployed >= 1 && body.contains(&format!("In the **deployed** template ({deployed}):")), "{body}");
    assert_eq!(body.lines().filter(|line| line.starts_with("- ✗ ")).count(), deployed, "{body}");
    assert!(body.contains("\\$connect"), "{body}");
    assert!(body.contains("In the synthesized template: none.\n\n#### Code"), "{body}");
    assert!(!body.contains("\n\n\n"), "{body}");
}

#[test]
fn the_resources_table_has_one_row_per_changed_resource() {
    let mut bigger = stacks::stages::dev();
    bigger.limits.max_listeners_per_session = 800;
    let synthesized = stacks::synthesize(&contract::CONTRACT, &bigger).expect("synthesizes").to_value();
    let report = report("s", Some(&dev()), &synthesized);
    let body = render(&report, "dev");
    assert!(read(&body).headings[0].ends_with("🔶 2 changes"), "{body}");
    let read = read(&body);
    let function = |id: &str| [id, "AWS::Lambda::Function", "modify", "no"].map(str::to_owned).to_vec();
    assert_eq!(
        table_after(&body, &read, "Resources"),
        &[
            ["Resource", "Type", "Action", "Replacement"].map(str::to_owned).to_vec(),
            function("ConnectionFunction"),
            function("MessagesFunction")
        ]
    );
    let path = "Properties.Environment.Variables.MAX_LISTENERS_PER_SESSION";
    let change = |id: &str| [id, path, "500", "800"].map(str::to_owned).to_vec();
    // The details table is the last one.
    assert_eq!(&read.tables[read.tables.len() - 1][1..], &[change("ConnectionFunction"), change("MessagesFunction")]);
}

#[test]
fn code_shows_each_function_with_short_hashes() {
    let mut report = report("s", Some(&dev()), &dev());
    report.with_code(code_of_messages_changed());
    let body = render(&report, "dev");
    let read = read(&body);
    let rows: Vec<Vec<String>> = table_after(&body, &read, "Code")[1..].to_vec();
    let local = |function: &str| {
        let key = report.code.iter().find(|change| change.function == function).and_then(|c| c.local_key.clone());
        short_key(&key.expect("built"))
    };
    assert_eq!(local("messages").len(), 12);
    assert_eq!(
        rows,
        [
            vec![
                "authorizer".to_owned(),
                "assets/authorizer/old.zip".to_owned(),
                "—".to_owned(),
                "not built here".to_owned()
            ],
            vec!["connection".to_owned(), local("connection"), local("connection"), "same".to_owned()],
            vec!["messages".to_owned(), "ab".repeat(6), local("messages"), "differs".to_owned()],
            vec!["http".to_owned(), "—".to_owned(), "—".to_owned(), "not deployed yet".to_owned()],
        ]
    );
    assert!(body.contains("run `cargo xtask build` first"), "{body}");
}

#[test]
fn a_rejected_update_is_named_before_the_table() {
    let deployed = dev();
    let body = render(&report("s", Some(&deployed), &with_two_indexes_more(&deployed)), "dev");
    let read = read(&body);
    assert!(read.headings[0].contains("CloudFormation would reject this update"), "{body}");
    let rejected = read.headings.iter().position(|h| h.starts_with("⛔ Updates CloudFormation would reject"));
    let resources = read.headings.iter().position(|h| h == "Resources");
    assert!(rejected.is_some() && rejected < resources, "{:?}", read.headings);
}

#[test]
fn text_escapes_what_markdown_or_github_would_read_as_syntax() {
    assert_eq!(text("plain words, 42."), "plain words, 42.");
    assert_eq!(text("a|b"), "a\\|b");
    assert_eq!(
        text("`x` *y* _z_ [l](u) <b> #1 @connections $connect ~s~ &amp; \\"),
        "\\`x\\` \\*y\\* \\_z\\_ \\[l\\](u) \\<b\\> \\#\u{2060}1 \\@\u{2060}connections \\$connect \\~s\\~ \\&amp; \\\\"
    );
    assert_eq!(text("one\ntwo\r\nthree\rfour"), "one<br>two<br>three<br>four");
}

#[test]
fn code_spans_hold_backticks_pipes_and_newlines() {
    assert_eq!(code("AWS::Lambda::Function"), "`AWS::Lambda::Function`");
    assert_eq!(code("a|b"), "`a\\|b`");
    assert_eq!(code("x`y"), "``x`y``");
    assert_eq!(code("``x"), "``` ``x ```");
    assert_eq!(code("one\ntwo"), "`one two`");
    assert_eq!(code(""), "*(empty)*");
}

#[test]
fn a_hostile_value_stays_in_its_cell() {
    let hostile = "a|b`c\nd <!-- x --> | e";
    let mut deployed = dev();
    deployed["Resources"]["MessagesFunction"]["Properties"]["Environment"]["Variables"]["MAX_LISTENERS_PER_SESSION"] =
        json!(hostile);
    let body = render(&report("s", Some(&deployed), &dev()), "dev");
    let read = read(&body);
    let details = &read.tables[read.tables.len() - 1];
    assert!(details.iter().all(|row| row.len() == 4), "{details:?}");
    let row = details.iter().find(|row| row[1].ends_with("MAX_LISTENERS_PER_SESSION")).expect("the row");
    assert_eq!(row[2], "a|b`c d <!-- x --> | e");
    assert_eq!(row[3], "500");
}

/// A report with `count` property changes of `width` characters each.
fn huge(count: usize, width: usize) -> Report {
    let property = |index: usize| PropertyChange {
        path: format!("Properties.Value{index}"),
        old: Some(json!("o".repeat(width))),
        new: Some(json!("n".repeat(width))),
    };
    let change = ResourceChange {
        logical_id: "Big".to_owned(),
        resource_type: "AWS::Lambda::Function".to_owned(),
        kind: ChangeKind::Modified,
        replacement: Replacement::Never,
        replacement_because: Vec::new(),
        properties: (0..count).map(property).collect(),
        security: Vec::new(),
        data_loss: None,
        rejected: None,
        notes: Vec::new(),
    };
    Report {
        stack: "s".to_owned(),
        stack_exists: true,
        released_through_cdk: false,
        diff: TemplateDiff { resources: vec![change], other: Vec::new() },
        code: Vec::new(),
        findings: Findings { deployed: Vec::new(), synthesized: Vec::new() },
        exit_code: 2,
    }
}

#[test]
fn the_details_are_cut_to_fit_a_comment_and_say_so() {
    let body = render(&huge(2_000, 100), "prod");
    assert!(body.chars().count() <= LIMIT, "{} characters", body.chars().count());
    let shown = read(&body).tables.last().expect("details").len() - 1;
    assert!(shown > 100 && shown < 2_000, "{shown} rows shown");
    let note = format!("{} lines left out", 2_000 - shown);
    assert!(body.contains(&note), "{note}");
    assert!(body.contains("`cargo xtask diff --stage prod` shows everything"));
    // The block is closed before the note, so the note is seen without opening it.
    assert!(body.find("</details>") < body.find(&note));
    // Long values are shortened.
    let long = render(&huge(1, 5_000), "prod");
    assert!(long.contains(&format!("{}…", "o".repeat(VALUE_LIMIT - 1))), "{long}");
    assert!(!long.contains("left out"));
}

#[test]
fn a_report_that_fits_is_whole() {
    let body = render(&huge(50, 100), "prod");
    assert_eq!(read(&body).tables.last().expect("details").len(), 51);
    assert!(!body.contains("left out"));
}

/// A head that fits with the closing tag and the note, but not with the details' summary line
/// too, is cut: the body never passes the limit, whatever its head's length.
#[test]
fn no_head_length_takes_the_body_past_the_limit() {
    let details = vec!["| `R` | `Properties.X` | `1` | `2` |".to_owned()];
    for length in (LIMIT - 400)..=LIMIT {
        let head: String = "x\n".repeat(length / 2);
        let body = fit(head, &details, "prod");
        assert!(body.chars().count() <= LIMIT, "a head of {length} characters: {} characters", body.chars().count());
    }
}

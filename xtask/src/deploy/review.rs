//! What a release decides from its two views of itself: our diff ([`stacks::diff`]) and the
//! change set CloudFormation made ([`ChangeSetSummary`]).
//!
//! - **Stateful replacements are refused** unless `--allow-replacement` names them: a DynamoDB
//!   table or Kinesis stream that either view says is replaced (`Replacement` `True` or
//!   `Conditional` in the change set; `replacement` other than `Never` in our diff) takes its
//!   data with the old resource. Either view is enough: the change set is the authority, and
//!   our diff is what we have where the change set says nothing.
//! - **Disagreements are warnings**: where one view says a resource is replaced and the other
//!   says it is not, our replacement table is wrong there and must be fixed. A change set that
//!   does not say is unknown, not a disagreement (moto's change sets never say; CloudFormation
//!   says only for `Modify`).

use super::change_set::{ChangeSetSummary, replacement_word};
use anyhow::{Result, bail};
use stacks::diff::{Replacement, ResourceChange, STATEFUL, TemplateDiff};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// The decisions about one release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Review {
    /// Stateful resources this release replaces, allowed or not.
    pub(super) replacements: Vec<StatefulReplacement>,
    pub(super) disagreements: Vec<Disagreement>,
    /// `--allow-replacement` ids that name no stateful replacement of this release.
    pub(super) unused_allowances: Vec<String>,
}

/// A stateful resource that one view or both say is replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StatefulReplacement {
    pub(super) logical_id: String,
    pub(super) resource_type: String,
    /// Our diff's verdict (`Never` when our diff does not change the resource).
    pub(super) diff: Replacement,
    /// The change set's verdict, `None` when it does not say.
    pub(super) change_set: Option<Replacement>,
    /// What is lost (our diff's words when it has them).
    pub(super) loss: String,
    /// Named by `--allow-replacement`.
    pub(super) allowed: bool,
}

/// A resource the two views disagree on: one says it is replaced, the other that it is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Disagreement {
    pub(super) logical_id: String,
    pub(super) resource_type: String,
    pub(super) diff: Replacement,
    pub(super) change_set: Replacement,
}

fn replaces(replacement: Replacement) -> bool {
    replacement != Replacement::Never
}

/// Reviews a release: `diff` is ours, `plan` CloudFormation's, `allowed` the logical ids of
/// `--allow-replacement`.
pub(super) fn review(diff: &TemplateDiff, plan: &ChangeSetSummary, allowed: &[String]) -> Review {
    let ids: BTreeSet<&str> = diff
        .resources
        .iter()
        .map(|change| change.logical_id.as_str())
        .chain(plan.changes.iter().map(|change| change.logical_id.as_str()))
        .collect();
    let mut replacements = Vec::new();
    let mut disagreements = Vec::new();
    for id in ids {
        let ours = diff.resources.iter().find(|change| change.logical_id == id);
        let theirs = plan.get(id);
        let resource_type = ours
            .map(|change| change.resource_type.as_str())
            .or(theirs.map(|change| change.resource_type.as_str()))
            .unwrap_or("?")
            .to_owned();
        let diff_verdict = ours.map(|change| change.replacement).unwrap_or(Replacement::Never);
        let change_set_verdict = theirs.and_then(|change| change.replacement);
        if let Some(verdict) = change_set_verdict.filter(|verdict| replaces(*verdict) != replaces(diff_verdict)) {
            disagreements.push(Disagreement {
                logical_id: id.to_owned(),
                resource_type: resource_type.clone(),
                diff: diff_verdict,
                change_set: verdict,
            });
        }
        let replaced = replaces(diff_verdict) || change_set_verdict.is_some_and(replaces);
        if replaced && STATEFUL.contains(&resource_type.as_str()) {
            replacements.push(StatefulReplacement {
                logical_id: id.to_owned(),
                loss: loss(id, &resource_type, ours),
                resource_type,
                diff: diff_verdict,
                change_set: change_set_verdict,
                allowed: allowed.iter().any(|allowed| allowed == id),
            });
        }
    }
    let unused_allowances = allowed
        .iter()
        .filter(|id| !replacements.iter().any(|replacement| &replacement.logical_id == *id))
        .cloned()
        .collect();
    Review { replacements, disagreements, unused_allowances }
}

/// What replacing `id` loses, in our diff's words when it has them.
fn loss(id: &str, resource_type: &str, ours: Option<&ResourceChange>) -> String {
    if let Some(words) = ours.and_then(|change| change.data_loss.clone()) {
        return words;
    }
    let what = if resource_type == "AWS::Kinesis::Stream" { "record" } else { "item" };
    format!("{id} is replaced: every {what} in it is lost")
}

/// Our diff's verdict and the change set's, side by side.
fn verdicts(diff: Replacement, change_set: Option<Replacement>) -> String {
    let theirs = match change_set {
        Some(verdict) => format!("Replacement {}", replacement_word(verdict)),
        None => "no Replacement given".to_owned(),
    };
    format!("change set: {theirs}; our diff: {}", word(diff))
}

fn word(replacement: Replacement) -> &'static str {
    match replacement {
        Replacement::Never => "never",
        Replacement::Conditional => "conditional",
        Replacement::Always => "always",
    }
}

impl Review {
    /// Refuses the release when it replaces a stateful resource that `--allow-replacement`
    /// does not name; the message says what is lost and how to go ahead deliberately.
    pub(super) fn check(&self) -> Result<()> {
        let refused: Vec<&StatefulReplacement> =
            self.replacements.iter().filter(|replacement| !replacement.allowed).collect();
        if refused.is_empty() {
            return Ok(());
        }
        let mut message = "refusing to replace stateful resources (nothing was executed):".to_owned();
        for replacement in &refused {
            let _ = write!(
                message,
                "\n  {} ({}): {}\n    {}",
                replacement.logical_id,
                replacement.resource_type,
                verdicts(replacement.diff, replacement.change_set),
                replacement.loss
            );
        }
        let flags: Vec<String> =
            refused.iter().map(|replacement| format!("--allow-replacement {}", replacement.logical_id)).collect();
        let _ = write!(
            message,
            "\nA replacement creates a new, empty resource and then deletes the old one with its data. The old one is \
             kept (orphaned: the service no longer reads it) only if the deployed template already gives it \
             `UpdateReplacePolicy: Retain`.\nTo replace deliberately: back up or export the data; if the old resource \
             must survive, deploy `UpdateReplacePolicy: Retain` on its own first; then deploy again with {}.",
            flags.join(" ")
        );
        bail!(message)
    }

    /// Whether the release replaces a stateful resource (allowed, once [`Review::check`] passed).
    pub(super) fn replaces_stateful(&self) -> bool {
        !self.replacements.is_empty()
    }

    /// The warnings to print: disagreements between the two views, and allowances that name
    /// nothing this release replaces.
    pub(super) fn warnings(&self) -> Vec<String> {
        let mut warnings: Vec<String> = self
            .disagreements
            .iter()
            .map(|disagreement| {
                format!(
                    "our diff and the change set disagree on whether {} ({}) is replaced ({}): our replacement \
                     table is wrong for it; the change set is what will happen",
                    disagreement.logical_id,
                    disagreement.resource_type,
                    verdicts(disagreement.diff, Some(disagreement.change_set)),
                )
            })
            .collect();
        warnings.extend(self.unused_allowances.iter().map(|id| {
            format!("--allow-replacement {id}: this release replaces no stateful resource {id}; nothing to allow")
        }));
        warnings
    }
}

#[cfg(test)]
mod tests {
    use super::super::change_set::PlannedChange;
    use super::*;
    use serde_json::{Value, json};

    /// A table keyed by `key`, with `extra` properties.
    fn table(key: &str, extra: Value) -> Value {
        let mut properties = json!({"KeySchema": [{"AttributeName": key, "KeyType": "HASH"}]});
        if let (Some(properties), Some(extra)) = (properties.as_object_mut(), extra.as_object()) {
            properties.extend(extra.clone());
        }
        json!({"Type": "AWS::DynamoDB::Table", "Properties": properties})
    }

    fn our_diff(before: Value, after: Value) -> TemplateDiff {
        stacks::diff::diff(&json!({"Resources": {"T": before}}), &json!({"Resources": {"T": after}}))
    }

    /// Our diff of table `T` getting a new key: replaced, always.
    fn rekeyed() -> TemplateDiff {
        let diff = our_diff(table("id", json!({})), table("key", json!({})));
        assert_eq!(diff.resources[0].replacement, Replacement::Always, "{diff:?}");
        diff
    }

    /// Our diff of table `T` getting a TTL: updated in place.
    fn ttl_added() -> TemplateDiff {
        let diff = our_diff(
            table("id", json!({})),
            table("id", json!({"TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": true}})),
        );
        assert_eq!(diff.resources[0].replacement, Replacement::Never, "{diff:?}");
        diff
    }

    fn plan(id: &str, resource_type: &str, replacement: Option<Replacement>) -> ChangeSetSummary {
        ChangeSetSummary {
            changes: vec![PlannedChange {
                logical_id: id.into(),
                resource_type: resource_type.into(),
                action: "Modify".into(),
                replacement,
                scope: vec!["Properties".into()],
                details: Vec::new(),
            }],
        }
    }

    const TABLE: &str = "AWS::DynamoDB::Table";

    #[test]
    fn a_stateful_replacement_is_refused_without_allow_replacement() {
        let review = review(&rekeyed(), &plan("T", TABLE, Some(Replacement::Always)), &[]);
        let error = review.check().expect_err("refused").to_string();
        assert!(error.contains("T (AWS::DynamoDB::Table): change set: Replacement True; our diff: always"), "{error}");
        assert!(error.contains("every item in it is lost"), "what is lost: {error}");
        assert!(
            error.contains("only if the deployed template already gives it `UpdateReplacePolicy: Retain`"),
            "{error}"
        );
        assert!(error.contains("deploy again with --allow-replacement T."), "{error}");
        assert!(error.contains("nothing was executed"), "{error}");
        assert!(review.warnings().is_empty(), "the views agree: {:?}", review.warnings());
    }

    #[test]
    fn a_stateful_replacement_named_by_allow_replacement_goes_ahead() {
        let review = review(&rekeyed(), &plan("T", TABLE, Some(Replacement::Always)), &["T".to_owned()]);
        assert!(review.check().is_ok());
        // It still replaces a stateful resource: the approval question is asked.
        assert!(review.replaces_stateful());
        assert!(review.warnings().is_empty());
    }

    #[test]
    fn either_view_alone_is_enough_to_refuse() {
        // The change set says it may replace the table; our diff says never.
        let conditional = review(&ttl_added(), &plan("T", TABLE, Some(Replacement::Conditional)), &[]);
        let error = conditional.check().expect_err("refused").to_string();
        assert!(error.contains("change set: Replacement Conditional; our diff: never"), "{error}");
        // Our diff says it replaces the table; the change set does not say (moto).
        let unsaid = review(&rekeyed(), &plan("T", TABLE, None), &[]);
        let error = unsaid.check().expect_err("refused").to_string();
        assert!(error.contains("change set: no Replacement given; our diff: always"), "{error}");
        // A kinesis stream replaced only by the change set's word.
        let stream =
            review(&TemplateDiff::default(), &plan("S", "AWS::Kinesis::Stream", Some(Replacement::Always)), &[]);
        let error = stream.check().expect_err("refused").to_string();
        assert!(error.contains("S is replaced: every record in it is lost"), "{error}");
    }

    #[test]
    fn an_update_in_place_or_a_stateless_replacement_is_not_refused() {
        let in_place = review(&ttl_added(), &plan("T", TABLE, Some(Replacement::Never)), &[]);
        assert!(in_place.check().is_ok() && !in_place.replaces_stateful());
        let function =
            review(&TemplateDiff::default(), &plan("Fn", "AWS::Lambda::Function", Some(Replacement::Always)), &[]);
        assert!(function.check().is_ok() && !function.replaces_stateful());
    }

    #[test]
    fn a_disagreement_names_the_resource_and_both_verdicts() {
        // The change set replaces what our diff says it updates in place.
        let function =
            review(&TemplateDiff::default(), &plan("Fn", "AWS::Lambda::Function", Some(Replacement::Always)), &[]);
        let warnings = function.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("Fn (AWS::Lambda::Function)"), "{warnings:?}");
        assert!(warnings[0].contains("change set: Replacement True; our diff: never"), "{warnings:?}");
        assert!(warnings[0].contains("our replacement table is wrong"), "{warnings:?}");
        // And the other way: our diff replaces what the change set updates in place.
        let table = review(&rekeyed(), &plan("T", TABLE, Some(Replacement::Never)), &["T".to_owned()]);
        let warnings = table.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("T (AWS::DynamoDB::Table)"), "{warnings:?}");
        assert!(warnings[0].contains("change set: Replacement False; our diff: always"), "{warnings:?}");
    }

    #[test]
    fn a_change_set_that_does_not_say_is_no_disagreement() {
        assert!(review(&rekeyed(), &plan("T", TABLE, None), &["T".to_owned()]).warnings().is_empty());
        // Conditional and always both replace: no disagreement either.
        let conditional = review(&rekeyed(), &plan("T", TABLE, Some(Replacement::Conditional)), &["T".to_owned()]);
        assert!(conditional.warnings().is_empty(), "{:?}", conditional.warnings());
    }

    #[test]
    fn an_allowance_that_names_nothing_replaced_is_a_warning() {
        let review = review(&ttl_added(), &plan("T", TABLE, Some(Replacement::Never)), &["Other".to_owned()]);
        assert!(review.check().is_ok());
        assert_eq!(
            review.warnings(),
            ["--allow-replacement Other: this release replaces no stateful resource Other; nothing to allow"]
        );
    }
}

//! A change set's execution as the stack's events tell it: how far it is, what is in progress
//! and since when, what failed first, and the rollback.
//!
//! [`Execution`] is a pure state machine, fed the stack's `StackEvent`s in time order. It knows:
//!
//! - the resources done out of the change set's resource changes: a resource is done once it
//!   reaches a terminal status (`*_COMPLETE`, `*_FAILED`, `DELETE_SKIPPED`), counted once even
//!   when it reaches one again (a replacement is created, then its old copy deleted);
//! - the resources in progress (latest status `*_IN_PROGRESS`), each since its first event in
//!   that status (CloudFormation repeats `CREATE_IN_PROGRESS` with "Resource creation
//!   Initiated": the clock does not restart);
//! - the root cause: the earliest `*_FAILED` event that is not a cascade. Once one resource
//!   fails, CloudFormation cancels what is in flight and reports each as failed with a reason
//!   that says nothing of why ("Resource creation cancelled", "Resource update cancelled"), and
//!   the stack's own event lists the failed ones ("The following resource(s) failed to create:
//!   [A, B]."); [`is_cascade`] knows these. Only when every failure is a cascade is the
//!   earliest of them taken;
//! - the rollback: from the stack's `ROLLBACK_IN_PROGRESS` or `UPDATE_ROLLBACK_IN_PROGRESS`
//!   event on, a second count, of the resources the release had touched, each done once it
//!   is back (deleted, or updated to what it was).
//!
//! [`Execution::view`] is what a person sees at a moment, for the live display
//! ([`crate::progress`]); [`Execution::root_cause`] heads the error of a failed release.

use crate::progress::{View, elapsed};
use aws_sdk_cloudformation::types::StackEvent;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::SystemTime;

/// Where the execution is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Creating, updating and deleting what the change set says (the update's clean-up too).
    Applying,
    /// Undoing it after a failure (the rollback's clean-up too).
    RollingBack,
}

/// One failed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) event_id: String,
    pub(crate) logical_id: String,
    pub(crate) resource_type: String,
    /// `CREATE_FAILED`, `UPDATE_FAILED`, ...
    pub(crate) status: String,
    pub(crate) reason: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}) {}: {}", self.logical_id, self.resource_type, self.status, self.reason)
    }
}

/// What the events said last of one resource.
#[derive(Debug, Clone)]
struct Resource {
    resource_type: String,
    status: String,
    /// When its current status began (its first event in that status).
    since: Option<SystemTime>,
}

/// The state of a change set's execution; see the module's docs.
#[derive(Debug, Clone)]
pub(crate) struct Execution {
    stack: String,
    /// The change set's resource changes: what there is to do.
    total: usize,
    started: SystemTime,
    phase: Phase,
    /// Whether the stack's own event said it settled (`*_COMPLETE`, `*_FAILED`).
    settled: bool,
    /// Whether it settled as it should: every change applied (`CREATE_COMPLETE`,
    /// `UPDATE_COMPLETE`, whatever the events of single resources said).
    applied_all: bool,
    resources: BTreeMap<String, Resource>,
    /// The resources the release touched (an event while applying).
    touched: BTreeSet<String>,
    /// The resources done while applying.
    applied: BTreeSet<String>,
    /// The resources done while rolling back.
    restored: BTreeSet<String>,
    /// Every failed event, in the order seen.
    failures: Vec<Failure>,
}

impl Execution {
    /// The execution of a change set with `total` resource changes on `stack` (its name),
    /// started at `started`.
    pub(crate) fn new(stack: &str, total: usize, started: SystemTime) -> Execution {
        Execution {
            stack: stack.to_owned(),
            total,
            started,
            phase: Phase::Applying,
            settled: false,
            applied_all: false,
            resources: BTreeMap::new(),
            touched: BTreeSet::new(),
            applied: BTreeSet::new(),
            restored: BTreeSet::new(),
            failures: Vec::new(),
        }
    }

    /// Takes in the next event (in time order).
    pub(crate) fn apply(&mut self, event: &StackEvent) {
        let status = event.resource_status().map(|status| status.as_str()).unwrap_or_default().to_owned();
        let logical_id = event.logical_resource_id().unwrap_or_default().to_owned();
        let resource_type = event.resource_type().unwrap_or_default().to_owned();
        let at = event.timestamp().and_then(|at| SystemTime::try_from(*at).ok());
        if status.ends_with("_FAILED") {
            self.failures.push(Failure {
                event_id: event.event_id().unwrap_or_default().to_owned(),
                logical_id: logical_id.clone(),
                resource_type: resource_type.clone(),
                status: status.clone(),
                reason: event.resource_status_reason().unwrap_or_default().to_owned(),
            });
        }
        if self.is_stack(event) {
            if status.contains("ROLLBACK") && status.ends_with("_IN_PROGRESS") {
                self.phase = Phase::RollingBack;
            }
            self.settled = terminal(&status);
            self.applied_all = self.phase == Phase::Applying && status.ends_with("_COMPLETE");
            return;
        }
        match self.phase {
            Phase::Applying => {
                self.touched.insert(logical_id.clone());
                if terminal(&status) {
                    self.applied.insert(logical_id.clone());
                }
            }
            Phase::RollingBack if terminal(&status) => {
                self.restored.insert(logical_id.clone());
            }
            Phase::RollingBack => {}
        }
        let resource =
            self.resources.entry(logical_id).or_insert(Resource { resource_type, status: String::new(), since: at });
        if resource.status != status {
            resource.status = status;
            resource.since = at;
        }
    }

    /// Whether `event` is the stack's own (its status, not a resource's).
    fn is_stack(&self, event: &StackEvent) -> bool {
        event.resource_type() == Some("AWS::CloudFormation::Stack")
            && (event.logical_resource_id() == Some(self.stack.as_str())
                || event.physical_resource_id().is_some_and(|id| Some(id) == event.stack_id()))
    }

    #[cfg(test)]
    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    /// Resources done and resources to do, in the current phase. While rolling back, what
    /// there is to undo is what the release touched. A stack that settled as it should has
    /// done it all, whichever events were missed (a local endpoint sends none of resources).
    pub(crate) fn progress(&self) -> (usize, usize) {
        match self.phase {
            Phase::Applying if self.applied_all => (self.total, self.total),
            Phase::Applying => (self.applied.len(), self.total.max(self.applied.len())),
            Phase::RollingBack => (self.restored.len(), self.touched.len().max(self.restored.len())),
        }
    }

    /// The resources in progress, longest first: logical id, type, status, since when.
    pub(crate) fn in_progress(&self) -> Vec<(&str, &str, &str, Option<SystemTime>)> {
        let mut busy: Vec<_> = self
            .resources
            .iter()
            .filter(|(_, resource)| resource.status.ends_with("_IN_PROGRESS"))
            .map(|(id, resource)| {
                (id.as_str(), resource.resource_type.as_str(), resource.status.as_str(), resource.since)
            })
            .collect();
        busy.sort_by_key(|&(id, _, _, since)| (since, id));
        busy
    }

    /// The failure that caused the others: the earliest that is not a cascade (see the
    /// module's docs), or the earliest of all when every one is.
    pub(crate) fn root_cause(&self) -> Option<&Failure> {
        self.failures.iter().find(|failure| !is_cascade(&failure.reason)).or_else(|| self.failures.first())
    }

    /// Every failure, the root cause first, then the others in the order seen.
    pub(crate) fn failures(&self) -> Vec<&Failure> {
        let root = self.root_cause();
        root.into_iter().chain(self.failures.iter().filter(|failure| Some(*failure) != root)).collect()
    }

    /// What a person sees at `now`.
    pub(crate) fn view(&self, now: SystemTime) -> View {
        let since = |at: Option<SystemTime>| elapsed(at.and_then(|at| now.duration_since(at).ok()).unwrap_or_default());
        let busy = self.in_progress();
        let id_width = busy.iter().map(|(id, ..)| id.chars().count()).max().unwrap_or(0);
        let type_width = busy.iter().map(|(_, kind, ..)| kind.chars().count()).max().unwrap_or(0);
        let lines = busy
            .iter()
            .map(|&(id, kind, status, at)| {
                format!("{id:<id_width$}  {kind:<type_width$}  {:<12} {}", self.doing(status), since(at))
            })
            .collect();
        let (done, total) = self.progress();
        let doing = match (self.phase, self.settled) {
            (Phase::Applying, false) => "deploying",
            (Phase::Applying, true) => "deployed",
            (Phase::RollingBack, false) => "rolling back",
            (Phase::RollingBack, true) => "rolled back",
        };
        let title = format!("{doing} {}", self.stack);
        View {
            title,
            done: done as u64,
            total: total as u64,
            unit: format!("resources, {}", since(Some(self.started))),
            lines,
        }
    }

    /// A resource status in progress as an activity.
    fn doing(&self, status: &str) -> &'static str {
        match (status, self.phase) {
            ("CREATE_IN_PROGRESS", _) => "creating",
            ("UPDATE_IN_PROGRESS", Phase::Applying) => "updating",
            ("UPDATE_IN_PROGRESS", Phase::RollingBack) => "restoring",
            ("DELETE_IN_PROGRESS", _) => "deleting",
            ("IMPORT_IN_PROGRESS", _) => "importing",
            _ => "in progress",
        }
    }
}

/// A terminal resource status: the resource is done with, for this phase.
fn terminal(status: &str) -> bool {
    status.ends_with("_COMPLETE") || status.ends_with("_FAILED") || status == "DELETE_SKIPPED"
}

/// Whether a failure's reason only follows from another failure: an operation CloudFormation
/// cancelled because another resource failed ("Resource creation cancelled", "Resource update
/// cancelled", the same of a deletion), or the stack's summary of the failed resources ("The
/// following resource(s) failed to create: [A, B]."). An empty reason says nothing either.
pub(crate) fn is_cascade(reason: &str) -> bool {
    let reason = reason.trim().trim_end_matches('.');
    reason.is_empty()
        || (reason.starts_with("Resource ") && reason.ends_with(" cancelled"))
        || reason.starts_with("The following resource(s) failed to ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::tests::board_in_memory;
    use aws_sdk_cloudformation::primitives::DateTime;
    use aws_sdk_cloudformation::types::ResourceStatus;
    use std::time::Duration;

    const STACK: &str = "session-service-dev";
    const STACK_ID: &str =
        "arn:aws:cloudformation:eu-west-1:123456789012:stack/session-service-dev/6a1b2c30-5f2e-11f0-9d3c-0a1b2c3d4e5f";

    /// The time `seconds` after `started`.
    fn after(started: SystemTime, seconds: u64) -> SystemTime {
        started + Duration::from_secs(seconds)
    }

    /// 2026-11-28 10:00:00 UTC: when the change set was executed.
    fn started() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_860_000)
    }

    /// An event as `DescribeStackEvents` gives it, `seconds` after the start.
    fn event(seconds: u64, logical_id: &str, kind: &str, status: &str, reason: Option<&str>) -> StackEvent {
        let physical = if kind == "AWS::CloudFormation::Stack" { STACK_ID.to_owned() } else { String::new() };
        StackEvent::builder()
            .stack_id(STACK_ID)
            .event_id(format!("{logical_id}-{status}-{seconds}"))
            .stack_name(STACK)
            .logical_resource_id(logical_id)
            .physical_resource_id(physical)
            .resource_type(kind)
            .timestamp(DateTime::from(after(started(), seconds)))
            .resource_status(ResourceStatus::from(status))
            .set_resource_status_reason(reason.map(str::to_owned))
            .build()
    }

    fn stack(seconds: u64, status: &str, reason: Option<&str>) -> StackEvent {
        event(seconds, STACK, "AWS::CloudFormation::Stack", status, reason)
    }

    const TABLE: &str = "AWS::DynamoDB::Table";
    const ROLE: &str = "AWS::IAM::Role";
    const FUNCTION: &str = "AWS::Lambda::Function";
    const ROOT_CAUSE: &str = "Resource handler returned message: \"Uploaded file must be a non-empty zip \
        (Service: Lambda, Status Code: 400, Request ID: 5f0c1d2e-8a9b-4c3d-9e8f-7a6b5c4d3e2f)\" \
        (RequestToken: 0b7e6c1a-2d3f-4e5a-8b9c-1d2e3f4a5b6c, HandlerErrorCode: InvalidRequest)";

    /// A first creation of four resources: a table and a role done, the function failing, the
    /// second table cancelled because of it, then the rollback deleting what was made.
    fn failed_creation() -> Vec<StackEvent> {
        vec![
            stack(0, "CREATE_IN_PROGRESS", Some("User Initiated")),
            event(2, "ConnectionsTable", TABLE, "CREATE_IN_PROGRESS", None),
            event(2, "MessagesRole", ROLE, "CREATE_IN_PROGRESS", None),
            event(3, "ConnectionsTable", TABLE, "CREATE_IN_PROGRESS", Some("Resource creation Initiated")),
            event(3, "MessagesRole", ROLE, "CREATE_IN_PROGRESS", Some("Resource creation Initiated")),
            event(12, "ConnectionsTable", TABLE, "CREATE_COMPLETE", None),
            event(13, "SessionsTable", TABLE, "CREATE_IN_PROGRESS", None),
            event(14, "SessionsTable", TABLE, "CREATE_IN_PROGRESS", Some("Resource creation Initiated")),
            event(19, "MessagesRole", ROLE, "CREATE_COMPLETE", None),
            event(20, "MessagesFunction", FUNCTION, "CREATE_IN_PROGRESS", None),
            event(21, "MessagesFunction", FUNCTION, "CREATE_FAILED", Some(ROOT_CAUSE)),
            event(22, "SessionsTable", TABLE, "CREATE_FAILED", Some("Resource creation cancelled")),
            stack(
                23,
                "ROLLBACK_IN_PROGRESS",
                Some(
                    "The following resource(s) failed to create: [SessionsTable, MessagesFunction]. \
                     Rollback requested by user.",
                ),
            ),
            event(24, "MessagesFunction", FUNCTION, "DELETE_COMPLETE", None),
            event(24, "SessionsTable", TABLE, "DELETE_IN_PROGRESS", None),
            event(25, "MessagesRole", ROLE, "DELETE_IN_PROGRESS", None),
            event(25, "ConnectionsTable", TABLE, "DELETE_IN_PROGRESS", None),
            event(27, "MessagesRole", ROLE, "DELETE_COMPLETE", None),
            event(31, "SessionsTable", TABLE, "DELETE_COMPLETE", None),
            event(33, "ConnectionsTable", TABLE, "DELETE_COMPLETE", None),
            stack(34, "ROLLBACK_COMPLETE", None),
        ]
    }

    fn fed(events: &[StackEvent]) -> Execution {
        let mut execution = Execution::new(STACK, 4, started());
        for event in events {
            execution.apply(event);
        }
        execution
    }

    #[test]
    fn resources_are_counted_once_done_and_watched_while_in_progress() {
        let events = failed_creation();
        let execution = fed(&events[..9]);
        assert_eq!(execution.phase(), Phase::Applying);
        assert_eq!(execution.progress(), (2, 4), "the first table and the role");
        let busy = execution.in_progress();
        // The second table, since its first event (the repeated one does not restart it).
        assert_eq!(busy, [("SessionsTable", TABLE, "CREATE_IN_PROGRESS", Some(after(started(), 13)))]);
        let view = execution.view(after(started(), 20));
        assert_eq!(view.title, "deploying session-service-dev");
        assert_eq!((view.done, view.total), (2, 4));
        assert_eq!(view.lines, ["SessionsTable  AWS::DynamoDB::Table  creating     7s"]);
        assert_eq!(view.unit, "resources, 20s");
        assert_eq!(execution.root_cause(), None);
    }

    #[test]
    fn the_root_cause_is_the_first_failure_that_is_not_a_cascade() {
        let mut events = failed_creation();
        // The cancellation is reported in the same second, ahead of the failure it follows from.
        events.swap(10, 11);
        let execution = fed(&events[..13]);
        let root = execution.root_cause().expect("a failure");
        assert_eq!((root.logical_id.as_str(), root.status.as_str()), ("MessagesFunction", "CREATE_FAILED"));
        assert_eq!(root.reason, ROOT_CAUSE);
        assert_eq!(root.to_string(), format!("MessagesFunction (AWS::Lambda::Function) CREATE_FAILED: {ROOT_CAUSE}"));
        let failures: Vec<&str> = execution.failures().iter().map(|failure| failure.logical_id.as_str()).collect();
        assert_eq!(failures, ["MessagesFunction", "SessionsTable"], "the root cause first");
    }

    #[test]
    fn a_stack_that_settled_as_it_should_did_everything() {
        let execution = fed(&[
            stack(0, "UPDATE_IN_PROGRESS", Some("User Initiated")),
            event(1, "MessagesFunction", FUNCTION, "UPDATE_IN_PROGRESS", None),
        ]);
        assert_eq!(execution.progress(), (0, 4));
        let mut settled = execution.clone();
        settled.apply(&stack(9, "UPDATE_COMPLETE", None));
        assert_eq!(settled.progress(), (4, 4));
        assert_eq!(settled.view(after(started(), 9)).title, "deployed session-service-dev");
        let mut rolled_back = fed(&failed_creation());
        rolled_back.apply(&stack(40, "ROLLBACK_COMPLETE", None));
        assert_eq!(rolled_back.progress(), (4, 4), "what was undone, not what was applied");
    }

    #[test]
    fn when_every_failure_is_a_cascade_the_earliest_is_taken() {
        let execution = fed(&[
            event(1, "A", TABLE, "UPDATE_FAILED", Some("Resource update cancelled")),
            event(2, "B", TABLE, "UPDATE_FAILED", Some("Resource update cancelled")),
        ]);
        assert_eq!(execution.root_cause().map(|failure| failure.logical_id.as_str()), Some("A"));
    }

    #[test]
    fn cloudformations_cascade_reasons_are_known() {
        for cascade in [
            "Resource creation cancelled",
            "Resource update cancelled",
            "Resource deletion cancelled",
            "The following resource(s) failed to create: [MessagesFunction]. Rollback requested by user.",
            "The following resource(s) failed to update: [ConnectionsTable]. ",
            "",
        ] {
            assert!(is_cascade(cascade), "{cascade:?}");
        }
        for cause in [
            ROOT_CAUSE,
            "ConnectionsTable already exists in stack arn:aws:cloudformation:eu-west-1:123456789012:stack/other/1",
            "Embedded stack arn:aws:cloudformation:eu-west-1:123456789012:stack/n/1 was not successfully created: \
             The following resource(s) failed to create: [Queue].",
        ] {
            assert!(!is_cascade(cause), "{cause:?}");
        }
    }

    #[test]
    fn the_rollback_is_a_second_phase_counting_what_the_release_touched() {
        let events = failed_creation();
        let execution = fed(&events[..17]);
        assert_eq!(execution.phase(), Phase::RollingBack);
        // Four resources were touched; the failed function is deleted already.
        assert_eq!(execution.progress(), (1, 4));
        let view = execution.view(after(started(), 28));
        assert_eq!(view.title, "rolling back session-service-dev");
        assert_eq!(
            view.lines,
            [
                "SessionsTable     AWS::DynamoDB::Table  deleting     4s",
                "ConnectionsTable  AWS::DynamoDB::Table  deleting     3s",
                "MessagesRole      AWS::IAM::Role        deleting     3s",
            ]
        );
        let settled = fed(&events);
        assert_eq!(settled.progress(), (4, 4));
        assert_eq!(settled.view(after(started(), 34)).title, "rolled back session-service-dev");
        assert!(settled.in_progress().is_empty());
        // The rollback's events do not change what failed first.
        assert_eq!(settled.root_cause().map(|failure| failure.logical_id.as_str()), Some("MessagesFunction"));
    }

    #[test]
    fn an_update_rollback_restores_what_was_updated() {
        let events = [
            stack(0, "UPDATE_IN_PROGRESS", Some("User Initiated")),
            event(1, "MessagesFunction", FUNCTION, "UPDATE_IN_PROGRESS", None),
            event(2, "ConnectionsTable", TABLE, "UPDATE_IN_PROGRESS", None),
            event(9, "MessagesFunction", FUNCTION, "UPDATE_COMPLETE", None),
            event(10, "ConnectionsTable", TABLE, "UPDATE_FAILED", Some("Resource handler returned message: \"No")),
            stack(
                11,
                "UPDATE_ROLLBACK_IN_PROGRESS",
                Some("The following resource(s) failed to update: [ConnectionsTable]. "),
            ),
            event(12, "MessagesFunction", FUNCTION, "UPDATE_IN_PROGRESS", None),
        ];
        let execution = fed(&events);
        assert_eq!(execution.phase(), Phase::RollingBack);
        assert_eq!(execution.progress(), (0, 2));
        assert_eq!(
            execution.view(after(started(), 15)).lines,
            ["MessagesFunction  AWS::Lambda::Function  restoring    3s"]
        );
    }

    #[test]
    fn a_person_sees_done_of_total_what_is_in_progress_and_the_failure_first() {
        let events = failed_creation();
        let (mut board, terminal) = board_in_memory();
        board.show(&fed(&events[..9]).view(after(started(), 20)));
        assert_eq!(
            terminal.contents(),
            "deploying session-service-dev: 2/4 resources, 20s [============>           ]\n  \
             SessionsTable  AWS::DynamoDB::Table  creating     7s"
        );
        let failing = fed(&events[..17]);
        for failure in failing.failures() {
            board.println(&format!("✗ {failure}"));
        }
        board.show(&failing.view(after(started(), 28)));
        let shown = terminal.contents();
        let lines: Vec<&str> = shown.lines().collect();
        assert!(
            lines[0].starts_with("✗ MessagesFunction (AWS::Lambda::Function) CREATE_FAILED: Resource handler"),
            "{shown}"
        );
        assert_eq!(
            lines[lines.len() - 5..],
            [
                "✗ SessionsTable (AWS::DynamoDB::Table) CREATE_FAILED: Resource creation cancelled",
                "rolling back session-service-dev: 1/4 resources, 28s [======>                 ]",
                "  SessionsTable     AWS::DynamoDB::Table  deleting     4s",
                "  ConnectionsTable  AWS::DynamoDB::Table  deleting     3s",
                "  MessagesRole      AWS::IAM::Role        deleting     3s",
            ]
        );
    }
}

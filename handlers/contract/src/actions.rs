//! The WebSocket actions clients send, and how API Gateway selects a route from them.
//!
//! Every action is a route key: API Gateway matches the value at the route selection
//! expression exactly (AWS_FACTS 6), so an alias such as `switchLanguage` is a route key of its
//! own. Anything that matches no route key runs `$default`.

use serde::Serialize;

/// Expands to the JSON field that carries the action, so the parser and the route selection
/// expression are derived from one literal.
macro_rules! action_field {
    () => {
        "action"
    };
}

/// The JSON field of a client frame that selects its route.
pub const ACTION_FIELD: &str = action_field!();

/// The route selection expression of the WebSocket API: the value of [`ACTION_FIELD`].
pub const ROUTE_SELECTION_EXPRESSION: &str = concat!("$request.body.", action_field!());

/// The route key API Gateway runs when a connection opens.
pub const CONNECT_ROUTE: &str = "$connect";
/// The route key API Gateway runs (best effort) when a connection closes.
pub const DISCONNECT_ROUTE: &str = "$disconnect";
/// The route key API Gateway runs for frames that match no other route key.
pub const DEFAULT_ROUTE: &str = "$default";

/// The alias clients may send instead of `changeLanguage`.
pub const SWITCH_LANGUAGE_ALIAS: &str = "switchLanguage";

/// One client-to-server action of PROTOCOL.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Action {
    CreateSession,
    JoinSession,
    Heartbeat,
    RefreshConnection,
    GetSessionStatus,
    PauseBroadcast,
    ResumeBroadcast,
    MuteBroadcast,
    UnmuteBroadcast,
    SetVolume,
    SpeakerStateChange,
    ChangeLanguage,
    EndSession,
    SendAudio,
}

impl Action {
    /// Every action, in the order of PROTOCOL.md.
    pub const ALL: [Action; 14] = [
        Action::CreateSession,
        Action::JoinSession,
        Action::Heartbeat,
        Action::RefreshConnection,
        Action::GetSessionStatus,
        Action::PauseBroadcast,
        Action::ResumeBroadcast,
        Action::MuteBroadcast,
        Action::UnmuteBroadcast,
        Action::SetVolume,
        Action::SpeakerStateChange,
        Action::ChangeLanguage,
        Action::EndSession,
        Action::SendAudio,
    ];

    /// The canonical name clients send in the `action` field.
    pub const fn name(self) -> &'static str {
        match self {
            Action::CreateSession => "createSession",
            Action::JoinSession => "joinSession",
            Action::Heartbeat => "heartbeat",
            Action::RefreshConnection => "refreshConnection",
            Action::GetSessionStatus => "getSessionStatus",
            Action::PauseBroadcast => "pauseBroadcast",
            Action::ResumeBroadcast => "resumeBroadcast",
            Action::MuteBroadcast => "muteBroadcast",
            Action::UnmuteBroadcast => "unmuteBroadcast",
            Action::SetVolume => "setVolume",
            Action::SpeakerStateChange => "speakerStateChange",
            Action::ChangeLanguage => "changeLanguage",
            Action::EndSession => "endSession",
            Action::SendAudio => "sendAudio",
        }
    }

    /// Other names accepted for this action (each is a route key too).
    pub const fn aliases(self) -> &'static [&'static str] {
        match self {
            Action::ChangeLanguage => &[SWITCH_LANGUAGE_ALIAS],
            _ => &[],
        }
    }

    /// Every route key that selects this action: its name, then its aliases.
    pub fn route_keys(self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.name()).chain(self.aliases().iter().copied())
    }

    /// The action a route key (the value of the `action` field) selects, if any.
    pub fn from_route_key(key: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|action| action.route_keys().any(|candidate| candidate == key))
    }

    /// Every action route key of the API, aliases included.
    pub fn all_route_keys() -> impl Iterator<Item = &'static str> {
        Action::ALL.into_iter().flat_map(Action::route_keys)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn route_selection_reads_the_action_field() {
        assert_eq!(ROUTE_SELECTION_EXPRESSION, "$request.body.action");
        assert_eq!(ACTION_FIELD, "action");
    }

    #[test]
    fn every_route_key_selects_exactly_one_action() {
        let keys: Vec<_> = Action::all_route_keys().collect();
        let unique: BTreeSet<_> = keys.iter().collect();
        assert_eq!(keys.len(), unique.len(), "a route key is declared twice: {keys:?}");
        for key in keys {
            let action = Action::from_route_key(key).expect("declared key resolves");
            assert!(action.route_keys().any(|k| k == key));
        }
    }

    #[test]
    fn switch_language_is_an_alias_of_change_language() {
        assert_eq!(Action::from_route_key("switchLanguage"), Some(Action::ChangeLanguage));
        assert_eq!(Action::from_route_key("changeLanguage"), Some(Action::ChangeLanguage));
    }

    #[test]
    fn route_keys_are_case_sensitive_and_reserved_keys_are_not_actions() {
        assert_eq!(Action::from_route_key("CreateSession"), None);
        assert_eq!(Action::from_route_key(DEFAULT_ROUTE), None);
        assert_eq!(Action::from_route_key(CONNECT_ROUTE), None);
        assert_eq!(Action::from_route_key(""), None);
    }
}

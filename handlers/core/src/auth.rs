//! Who is calling: the caller a `$connect` authorizer context describes, and the context an
//! authorizer emits for a caller. Keys and values are the contract's (flat strings).

use contract::functions::context;
use serde_json::{Map, Value};

/// The caller behind a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No token: a listener.
    Anonymous,
    /// A verified speaker token.
    User { user_id: String, email: Option<String> },
}

impl Caller {
    /// The authorizer context describing this caller.
    pub fn to_context(&self) -> Map<String, Value> {
        let (authenticated, user_id, email) = match self {
            Caller::Anonymous => ("false", "", ""),
            Caller::User { user_id, email } => ("true", user_id.as_str(), email.as_deref().unwrap_or("")),
        };
        [(context::AUTHENTICATED, authenticated), (context::USER_ID, user_id), (context::EMAIL, email)]
            .into_iter()
            .map(|(key, value)| (key.to_owned(), Value::from(value)))
            .collect()
    }

    /// The caller an authorizer context describes, or `None` when there is no context or it
    /// is not ours (then the caller must be established another way).
    pub fn from_context(context_map: Option<&Map<String, Value>>) -> Option<Caller> {
        let map = context_map?;
        let text = |key: &str| map.get(key).and_then(Value::as_str).filter(|value| !value.is_empty());
        let authenticated = match map.get(context::AUTHENTICATED)? {
            Value::String(flag) => flag.parse::<bool>().ok()?,
            Value::Bool(flag) => *flag,
            _ => return None,
        };
        if !authenticated {
            return Some(Caller::Anonymous);
        }
        Some(Caller::User {
            user_id: text(context::USER_ID)?.to_owned(),
            email: text(context::EMAIL).map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_round_trips_for_both_callers() {
        let user = Caller::User { user_id: "u-1".into(), email: Some("a@example.com".into()) };
        for caller in [Caller::Anonymous, user, Caller::User { user_id: "u-2".into(), email: None }] {
            let context = caller.to_context();
            assert!(context.values().all(Value::is_string), "context values are flat strings");
            assert_eq!(Caller::from_context(Some(&context)), Some(caller));
        }
    }

    #[test]
    fn no_context_or_a_foreign_one_identifies_nobody() {
        assert_eq!(Caller::from_context(None), None);
        let foreign: Map<String, Value> = [("principalId".to_owned(), Value::from("x"))].into_iter().collect();
        assert_eq!(Caller::from_context(Some(&foreign)), None);
        let no_user: Map<String, Value> = [("authenticated".to_owned(), Value::from("true"))].into_iter().collect();
        assert_eq!(Caller::from_context(Some(&no_user)), None);
    }
}

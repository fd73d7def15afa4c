//! Function configuration from the environment, restricted to what the contract declares.
//!
//! A [`FunctionEnv`] reads only the variables its function declares in the contract: reading
//! any other is an error, so a handler cannot come to depend on a variable the template does
//! not set. Every declared variable is required (the template always sets them); a missing or
//! malformed one fails the cold start with a message naming it.

use crate::jwt::{JwksSource, JwtConfig};
use crate::store::TableNames;
use contract::{Function, env};
use std::collections::HashMap;
use std::str::FromStr;

/// Why a function cannot be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "function `{function}` reads {name}, which the contract does not declare for it; declare it in handlers/contract"
    )]
    Undeclared { function: &'static str, name: String },
    #[error("environment variable {0} is not set; the stack template sets it for every function that reads it")]
    Missing(String),
    #[error("environment variable {name} = {value:?} is invalid: {problem}")]
    Invalid { name: String, value: String, problem: String },
}

/// Looks up one variable by name.
type Lookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The environment of one function, as the contract declares it.
pub struct FunctionEnv {
    function: &'static Function,
    lookup: Lookup,
}

impl std::fmt::Debug for FunctionEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionEnv").field("function", &self.function.name).finish_non_exhaustive()
    }
}

impl FunctionEnv {
    /// The process environment.
    pub fn from_process(function: &'static Function) -> FunctionEnv {
        FunctionEnv { function, lookup: Box::new(|name| std::env::var(name).ok()) }
    }

    /// A fixed set of variables (tests, the local stack).
    pub fn from_map(function: &'static Function, variables: HashMap<String, String>) -> FunctionEnv {
        FunctionEnv { function, lookup: Box::new(move |name| variables.get(name).cloned()) }
    }

    pub fn function(&self) -> &'static Function {
        self.function
    }

    /// The value of a declared variable; an empty value counts as set.
    pub fn get_allow_empty(&self, name: &str) -> Result<String, ConfigError> {
        if !self.function.environment.iter().any(|var| var.name == name) {
            return Err(ConfigError::Undeclared { function: self.function.name, name: name.to_owned() });
        }
        (self.lookup)(name).ok_or_else(|| ConfigError::Missing(name.to_owned()))
    }

    /// The value of a declared variable, which must not be empty.
    pub fn get(&self, name: &str) -> Result<String, ConfigError> {
        let value = self.get_allow_empty(name)?;
        if value.is_empty() { Err(ConfigError::Missing(name.to_owned())) } else { Ok(value) }
    }

    /// A declared variable parsed as `T`.
    pub fn parse<T>(&self, name: &str) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        let value = self.get(name)?;
        value.parse().map_err(|problem: T::Err| ConfigError::Invalid {
            name: name.to_owned(),
            value: value.clone(),
            problem: problem.to_string(),
        })
    }

    /// The table names, from the variables the contract declares for them.
    pub fn table_names(&self) -> Result<TableNames, ConfigError> {
        Ok(TableNames {
            sessions: self.get(env::SESSIONS_TABLE)?,
            connections: self.get(env::CONNECTIONS_TABLE)?,
            rate_limits: self.get(env::RATE_LIMITS_TABLE)?,
        })
    }

    /// The speaker-token verification settings.
    pub fn jwt(&self) -> Result<JwtConfig, ConfigError> {
        let source = self.get(env::JWKS_SOURCE)?;
        let jwks = JwksSource::from_spec(&source).map_err(|problem| ConfigError::Invalid {
            name: env::JWKS_SOURCE.to_owned(),
            value: source.clone(),
            problem: problem.to_string(),
        })?;
        Ok(JwtConfig::new(self.get(env::JWT_ISSUER)?, self.audiences()?, jwks))
    }

    /// The audiences of `JWT_AUDIENCE`, split at `contract::env::LIST_SEPARATOR`, each trimmed,
    /// empty ones dropped; at least one.
    fn audiences(&self) -> Result<Vec<String>, ConfigError> {
        let value = self.get(env::JWT_AUDIENCE)?;
        let audiences: Vec<String> = value
            .split(env::LIST_SEPARATOR)
            .map(str::trim)
            .filter(|audience| !audience.is_empty())
            .map(str::to_owned)
            .collect();
        if audiences.is_empty() {
            return Err(ConfigError::Invalid {
                name: env::JWT_AUDIENCE.to_owned(),
                value,
                problem: format!("no audience: expected app client ids separated by '{}'", env::LIST_SEPARATOR),
            });
        }
        Ok(audiences)
    }

    /// The management endpoint override, if set to a non-empty value.
    pub fn management_endpoint(&self) -> Result<Option<String>, ConfigError> {
        let value = self.get_allow_empty(env::MANAGEMENT_ENDPOINT)?;
        Ok((!value.is_empty()).then_some(value))
    }
}

/// Per-stage limits (PROTOCOL.md defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_listeners_per_session: u32,
    pub connects_per_minute_per_ip: u32,
    /// Handshakes per address per minute that name no live session; past it, the address is
    /// refused at the cost of its counter alone.
    pub unknown_session_connects_per_minute_per_ip: u32,
    pub joins_per_minute_per_connection: u32,
    pub sessions_per_hour_per_user: u32,
    pub max_message_bytes: usize,
    /// How long a session lives before its row expires.
    pub session_lifetime_seconds: i64,
    /// How long a connection row lives (past API Gateway's 2 h maximum, as a backstop for a
    /// `$disconnect` that never arrives).
    pub connection_ttl_seconds: i64,
    /// How long a session waits for a speaker who left without refreshing.
    pub speaker_grace_seconds: i64,
}

impl Default for Limits {
    /// The contract's defaults (`contract::limits`).
    fn default() -> Self {
        use contract::limits;
        Limits {
            max_listeners_per_session: limits::MAX_LISTENERS_PER_SESSION,
            connects_per_minute_per_ip: limits::CONNECTS_PER_MINUTE_PER_IP,
            unknown_session_connects_per_minute_per_ip: limits::UNKNOWN_SESSION_CONNECTS_PER_MINUTE_PER_IP,
            joins_per_minute_per_connection: limits::JOINS_PER_MINUTE_PER_CONNECTION,
            sessions_per_hour_per_user: limits::SESSIONS_PER_HOUR_PER_USER,
            max_message_bytes: limits::MAX_MESSAGE_BYTES as usize,
            session_lifetime_seconds: i64::from(limits::SESSION_LIFETIME_SECONDS),
            connection_ttl_seconds: i64::from(limits::CONNECTION_TTL_SECONDS),
            speaker_grace_seconds: i64::from(limits::SPEAKER_GRACE_SECONDS),
        }
    }
}

impl Limits {
    /// The limits a function declares, read from its environment; limits it does not declare
    /// keep their defaults (they do not apply to it).
    pub fn from_env(env: &FunctionEnv) -> Result<Limits, ConfigError> {
        let mut limits = Limits::default();
        let declared = |name: &str| env.function().environment.iter().any(|var| var.name == name);
        macro_rules! read {
            ($field:ident, $name:expr) => {
                if declared($name) {
                    limits.$field = env.parse($name)?;
                }
            };
        }
        read!(max_listeners_per_session, env::MAX_LISTENERS_PER_SESSION);
        read!(connects_per_minute_per_ip, env::CONNECTS_PER_MINUTE_PER_IP);
        read!(unknown_session_connects_per_minute_per_ip, env::UNKNOWN_SESSION_CONNECTS_PER_MINUTE_PER_IP);
        read!(joins_per_minute_per_connection, env::JOINS_PER_MINUTE_PER_CONNECTION);
        read!(sessions_per_hour_per_user, env::SESSIONS_PER_HOUR_PER_USER);
        read!(max_message_bytes, env::MAX_MESSAGE_BYTES);
        read!(session_lifetime_seconds, env::SESSION_LIFETIME_SECONDS);
        read!(connection_ttl_seconds, env::CONNECTION_TTL_SECONDS);
        read!(speaker_grace_seconds, env::SPEAKER_GRACE_SECONDS);
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::functions;

    fn declared(function: &'static Function) -> HashMap<String, String> {
        function.environment.iter().map(|var| (var.name.to_owned(), "7".to_owned())).collect()
    }

    #[test]
    fn an_undeclared_variable_cannot_be_read() {
        let env = FunctionEnv::from_map(&functions::AUTHORIZER, HashMap::new());
        let error = env.get(contract::env::SESSIONS_TABLE).expect_err("undeclared");
        assert!(matches!(error, ConfigError::Undeclared { function: "authorizer", .. }), "{error}");
    }

    #[test]
    fn a_declared_variable_must_be_set_and_valid() {
        let mut variables = declared(&functions::HTTP);
        variables.remove(contract::env::SESSIONS_PER_HOUR_PER_USER);
        let env = FunctionEnv::from_map(&functions::HTTP, variables.clone());
        assert_eq!(
            Limits::from_env(&env),
            Err(ConfigError::Missing(contract::env::SESSIONS_PER_HOUR_PER_USER.to_owned()))
        );
        variables.insert(contract::env::SESSIONS_PER_HOUR_PER_USER.to_owned(), "many".to_owned());
        let env = FunctionEnv::from_map(&functions::HTTP, variables);
        assert!(matches!(Limits::from_env(&env), Err(ConfigError::Invalid { .. })));
    }

    #[test]
    fn the_audiences_are_a_list_in_one_variable() {
        let jwt = |audience: &str| {
            let mut variables = declared(&functions::AUTHORIZER);
            variables.insert(contract::env::JWKS_SOURCE.to_owned(), "file:/keys.json".to_owned());
            variables.insert(contract::env::JWT_AUDIENCE.to_owned(), audience.to_owned());
            FunctionEnv::from_map(&functions::AUTHORIZER, variables).jwt()
        };
        assert_eq!(jwt("one").map(|config| config.audiences), Ok(vec!["one".to_owned()]));
        assert_eq!(jwt("one, two,").map(|config| config.audiences), Ok(vec!["one".to_owned(), "two".to_owned()]));
        assert!(matches!(jwt(" , "), Err(ConfigError::Invalid { .. })));
    }

    #[test]
    fn limits_read_only_what_the_function_declares() {
        let env = FunctionEnv::from_map(&functions::HTTP, declared(&functions::HTTP));
        let limits = Limits::from_env(&env).expect("valid");
        assert_eq!(limits.sessions_per_hour_per_user, 7);
        assert_eq!(limits.session_lifetime_seconds, 7);
        // Not declared for `http`: the default stays.
        assert_eq!(limits.max_listeners_per_session, Limits::default().max_listeners_per_session);
    }

    #[test]
    fn an_empty_management_endpoint_means_derive_it_from_the_event() {
        let mut variables = declared(&functions::MESSAGES);
        variables.insert(contract::env::MANAGEMENT_ENDPOINT.to_owned(), String::new());
        let env = FunctionEnv::from_map(&functions::MESSAGES, variables);
        assert_eq!(env.management_endpoint(), Ok(None));
    }
}

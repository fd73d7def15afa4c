//! Stage configurations: everything that differs between `dev` and `prod`, reviewed like code.
//! What belongs to an AWS account (region, identity provider, the web console's origins) is in
//! one YAML file per stage, `stacks/stages/<stage>.yaml` ([`account`]), built into the binary;
//! limits, sizes and every other default are here. A stage supplies every per-stage setting the
//! contract's functions read; a setting it does not supply is a synthesis error, not a silent
//! default.

pub mod account;

pub use account::{AccountSettings, JwtSettings, SETTING_KEYS, SettingsError};
use contract::{env, limits};
use std::sync::LazyLock;

/// The processor architecture of the functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    Arm64,
    X86_64,
}

impl Architecture {
    /// Lambda's name for it.
    pub const fn lambda_name(self) -> &'static str {
        match self {
            Architecture::Arm64 => "arm64",
            Architecture::X86_64 => "x86_64",
        }
    }
}

/// Which web pages may call the HTTP API from a browser (its CORS configuration). The headers
/// and methods allowed are not settings: they follow from the contract (`service`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsSettings {
    /// Origins as browsers send them (`https://console.example.org`), from the stage file.
    pub allowed_origins: Vec<String>,
    /// How long a browser may reuse a preflight answer.
    pub max_age_seconds: u32,
}

/// How long browsers keep a preflight answer: two hours, the most Chromium honours (Firefox
/// takes up to a day), so a page makes one preflight per route and session of work.
pub const CORS_MAX_AGE_SECONDS: u32 = 7200;

/// A stage file: where it is, for messages, and its text, built into the binary.
#[derive(Debug, Clone, Copy)]
struct StageFile {
    path: &'static str,
    text: &'static str,
}

const DEV_FILE: StageFile = StageFile { path: "stacks/stages/dev.yaml", text: include_str!("../stages/dev.yaml") };
const PROD_FILE: StageFile = StageFile { path: "stacks/stages/prod.yaml", text: include_str!("../stages/prod.yaml") };

impl StageFile {
    /// Its settings. The crate's build script runs the same checks on the same file and refuses
    /// to build with one that fails them, so a file built in always reads.
    fn read(self) -> AccountSettings {
        match account::parse(self.path, self.text) {
            Ok(settings) => settings,
            Err(error) => unreachable!("{error} (stacks' build script checks this file before the crate builds)"),
        }
    }
}

static DEV_ACCOUNT: LazyLock<AccountSettings> = LazyLock::new(|| DEV_FILE.read());
static PROD_ACCOUNT: LazyLock<AccountSettings> = LazyLock::new(|| PROD_FILE.read());

/// Per-stage limits (PROTOCOL.md defaults in `dev` and `prod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageLimits {
    pub max_listeners_per_session: u32,
    pub connects_per_minute_per_ip: u32,
    pub unknown_session_connects_per_minute_per_ip: u32,
    pub joins_per_minute_per_connection: u32,
    pub sessions_per_hour_per_user: u32,
    pub max_message_bytes: u32,
    pub session_lifetime_seconds: u32,
    pub connection_ttl_seconds: u32,
    pub speaker_grace_seconds: u32,
}

/// One deployable stage.
#[derive(Debug, Clone, PartialEq)]
pub struct StageConfig {
    pub name: String,
    pub stack_name: String,
    pub region: String,
    pub architecture: Architecture,
    pub memory_mb: u32,
    pub timeout_seconds: u32,
    pub log_retention_days: u32,
    /// Whether API Gateway writes an access log line for every request of the stage's APIs
    /// (WebSocket: every connect, message and disconnect; HTTP: every request) to a log group
    /// per API, kept `log_retention_days`. Those lines are the only record of what API Gateway
    /// refused or failed before any function's code ran: a `$connect` the authorizer answered
    /// 401/403/500, a throttled 429, an integration API Gateway could not invoke. Function logs
    /// never see them, and a browser reports a refused `$connect` only as close 1006.
    ///
    /// Off in `dev`, which must deploy to any account and region without prerequisites (see
    /// below) and is debugged with `cargo xtask dev`; on in `prod`, where such a refusal is an
    /// outage to explain after the fact, and the retention bounds what the lines cost.
    ///
    /// A WebSocket API writes access logs with the account's API Gateway CloudWatch Logs role:
    /// `AWS::ApiGateway::Account` `CloudWatchRoleArn` must be set once per account and region
    /// (it is account-wide, so not in this stack), or creating the stage fails with "CloudWatch
    /// Logs role ARN must be set in account settings to enable logging". An HTTP API needs no
    /// such role; the principal that deploys needs CloudWatch Logs' log-delivery permissions
    /// (`logs:CreateLogDelivery` and the like) instead.
    pub access_logs: bool,
    pub throttling_burst_limit: u32,
    pub throttling_rate_limit: f64,
    /// Whether `$connect` has the REQUEST authorizer. Without it, the `connection` function
    /// verifies speaker tokens itself (`CONNECT_AUTH=self`).
    pub connect_authorizer: bool,
    /// Who issues speaker tokens (from the stage file).
    pub jwt: JwtSettings,
    pub cors: CorsSettings,
    pub limits: StageLimits,
    /// The stage file this stage's account settings come from.
    pub settings_file: &'static str,
    /// The settings ([`SETTING_KEYS`]) still holding this repository's example values: a real
    /// account's release of the stage is refused until each is replaced
    /// (docs/infrastructure.md, "Settings a new account must change").
    pub example_settings: Vec<String>,
}

/// The contract's defaults (`contract::limits`, where docs/audiences.md explains them).
const DEFAULT_LIMITS: StageLimits = StageLimits {
    max_listeners_per_session: limits::MAX_LISTENERS_PER_SESSION,
    connects_per_minute_per_ip: limits::CONNECTS_PER_MINUTE_PER_IP,
    unknown_session_connects_per_minute_per_ip: limits::UNKNOWN_SESSION_CONNECTS_PER_MINUTE_PER_IP,
    joins_per_minute_per_connection: limits::JOINS_PER_MINUTE_PER_CONNECTION,
    sessions_per_hour_per_user: limits::SESSIONS_PER_HOUR_PER_USER,
    max_message_bytes: limits::MAX_MESSAGE_BYTES,
    session_lifetime_seconds: limits::SESSION_LIFETIME_SECONDS,
    connection_ttl_seconds: limits::CONNECTION_TTL_SECONDS,
    speaker_grace_seconds: limits::SPEAKER_GRACE_SECONDS,
};

/// The development stage.
pub fn dev() -> StageConfig {
    let account = &*DEV_ACCOUNT;
    StageConfig {
        name: "dev".into(),
        stack_name: "session-service-dev".into(),
        region: account.region.clone(),
        architecture: Architecture::Arm64,
        memory_mb: 256,
        timeout_seconds: 10,
        log_retention_days: 14,
        access_logs: false,
        throttling_burst_limit: 100,
        throttling_rate_limit: 50.0,
        connect_authorizer: true,
        jwt: account.identity.clone(),
        cors: cors(account),
        limits: DEFAULT_LIMITS,
        settings_file: DEV_FILE.path,
        example_settings: account.examples.clone(),
    }
}

/// The production stage.
pub fn prod() -> StageConfig {
    let account = &*PROD_ACCOUNT;
    StageConfig {
        name: "prod".into(),
        stack_name: "session-service-prod".into(),
        memory_mb: 512,
        log_retention_days: 90,
        access_logs: true,
        throttling_burst_limit: 1000,
        throttling_rate_limit: 500.0,
        region: account.region.clone(),
        jwt: account.identity.clone(),
        cors: cors(account),
        settings_file: PROD_FILE.path,
        example_settings: account.examples.clone(),
        ..dev()
    }
}

/// The CORS settings of a stage file: its origins, the maximum age in code.
fn cors(account: &AccountSettings) -> CorsSettings {
    CorsSettings { allowed_origins: account.cors.allowed_origins.clone(), max_age_seconds: CORS_MAX_AGE_SECONDS }
}

/// `stage` without the `$connect` authorizer (the configuration in which `$connect` verifies
/// tokens itself); kept synthesized and verified so it stays deployable.
pub fn without_authorizer(stage: StageConfig) -> StageConfig {
    StageConfig {
        name: stage.name.clone(),
        stack_name: format!("{}-noauth", stage.stack_name),
        connect_authorizer: false,
        ..stage
    }
}

/// Every named stage.
pub fn all() -> Vec<StageConfig> {
    vec![dev(), prod()]
}

/// A named stage (`dev`, `prod`).
pub fn by_name(name: &str) -> Option<StageConfig> {
    all().into_iter().find(|stage| stage.name == name)
}

impl StageConfig {
    /// The value of a per-stage setting a function reads, by its variable name.
    pub fn setting(&self, name: &str) -> Option<String> {
        let limits = &self.limits;
        let value = match name {
            env::CONNECT_AUTH => (if self.connect_authorizer { "authorizer" } else { "self" }).to_owned(),
            env::JWT_ISSUER => self.jwt.issuer.clone(),
            env::JWT_AUDIENCE => self.jwt.audiences.join(&env::LIST_SEPARATOR.to_string()),
            env::JWKS_SOURCE => self.jwt.jwks_url.clone(),
            env::MAX_LISTENERS_PER_SESSION => limits.max_listeners_per_session.to_string(),
            env::CONNECTS_PER_MINUTE_PER_IP => limits.connects_per_minute_per_ip.to_string(),
            env::UNKNOWN_SESSION_CONNECTS_PER_MINUTE_PER_IP => {
                limits.unknown_session_connects_per_minute_per_ip.to_string()
            }
            env::JOINS_PER_MINUTE_PER_CONNECTION => limits.joins_per_minute_per_connection.to_string(),
            env::SESSIONS_PER_HOUR_PER_USER => limits.sessions_per_hour_per_user.to_string(),
            env::MAX_MESSAGE_BYTES => limits.max_message_bytes.to_string(),
            env::SESSION_LIFETIME_SECONDS => limits.session_lifetime_seconds.to_string(),
            env::CONNECTION_TTL_SECONDS => limits.connection_ttl_seconds.to_string(),
            env::SPEAKER_GRACE_SECONDS => limits.speaker_grace_seconds.to_string(),
            _ => return None,
        };
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::EnvSource;

    #[test]
    fn every_stage_supplies_every_setting_the_functions_read() {
        for stage in all().into_iter().chain([without_authorizer(dev())]) {
            for function in contract::functions::ALL {
                for var in function.environment {
                    if let EnvSource::StageSetting(name) = var.source {
                        assert!(stage.setting(name).is_some(), "{} does not set {name}", stage.name);
                    }
                }
            }
        }
    }

    #[test]
    fn the_stage_files_hold_the_account_settings() {
        let dev = dev();
        assert_eq!(dev.settings_file, "stacks/stages/dev.yaml");
        assert!(dev.jwt.issuer.starts_with("https://cognito-idp.eu-west-1.amazonaws.com/"), "{}", dev.jwt.issuer);
        assert_eq!(dev.cors.allowed_origins, ["http://localhost:4512", "http://127.0.0.1:4512"], "the local console");
        assert_eq!(dev.cors.max_age_seconds, CORS_MAX_AGE_SECONDS);
        let prod = prod();
        assert_eq!((prod.settings_file, prod.region.as_str()), ("stacks/stages/prod.yaml", "eu-west-1"));
        assert_ne!(prod.jwt, dev.jwt);
        for stage in all() {
            assert!(!stage.example_settings.is_empty(), "{}: this repository's values are examples", stage.name);
            assert!(stage.example_settings.iter().all(|key| SETTING_KEYS.contains(&key.as_str())));
        }
        assert!(prod.example_settings.contains(&"cors.allowed_origins".to_owned()));
        assert!(!dev.example_settings.contains(&"cors.allowed_origins".to_owned()), "the local console is real");
    }

    #[test]
    fn the_audiences_reach_the_functions_as_one_list() {
        let mut stage = dev();
        stage.jwt.audiences = vec!["web".into(), "ios".into()];
        assert_eq!(stage.setting(env::JWT_AUDIENCE).as_deref(), Some("web,ios"));
    }

    #[test]
    fn the_authorizer_setting_follows_the_stage() {
        assert_eq!(dev().setting(env::CONNECT_AUTH).as_deref(), Some("authorizer"));
        assert_eq!(without_authorizer(dev()).setting(env::CONNECT_AUTH).as_deref(), Some("self"));
        assert_eq!(by_name("prod").map(|stage| stage.memory_mb), Some(512));
        assert!(by_name("staging").is_none());
    }
}

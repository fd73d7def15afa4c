//! What every function builds once per cold start: AWS configuration from the standard
//! credential chain, the store over its tables, and the `@connections` notifier.

use crate::config::{ConfigError, FunctionEnv};
use crate::fanout::Notifier;
use crate::store::Store;

/// The shared AWS configuration (credentials, region) from the standard chain.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// The store over the tables the function's environment names.
pub fn store(env: &FunctionEnv, sdk: &aws_config::SdkConfig) -> Result<Store, ConfigError> {
    Ok(Store::new(aws_sdk_dynamodb::Client::new(sdk), env.table_names()?))
}

/// The `@connections` notifier, with the configured endpoint override if any.
pub fn notifier(env: &FunctionEnv, sdk: &aws_config::SdkConfig) -> Result<Notifier, ConfigError> {
    let base = aws_sdk_apigatewaymanagement::config::Builder::from(sdk).build();
    Ok(Notifier::new(base, env.management_endpoint()?))
}

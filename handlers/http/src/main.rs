//! The `http` Lambda function (the HTTP session API).

use http_function::HttpFunction;
use lambda_runtime::{LambdaEvent, service_fn};
use session_core::config::{ConfigError, FunctionEnv, Limits};
use session_core::deadline::Deadline;
use session_core::setup;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = FunctionEnv::from_process(&contract::functions::HTTP);
    let sdk = setup::aws_config().await;
    let connections = setup::notifier(&env, &sdk)?
        .configured()
        .ok_or_else(|| ConfigError::Missing(contract::env::MANAGEMENT_ENDPOINT.to_owned()))?;
    let function = HttpFunction { store: setup::store(&env, &sdk)?, connections, limits: Limits::from_env(&env)? };
    let function = &function;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let deadline = Deadline::at_epoch_millis(event.context.deadline);
        Ok::<_, std::convert::Infallible>(function.handle_payload_by(event.payload, deadline).await)
    }))
    .await
}

//! The `connection` Lambda function (`$connect`, `$disconnect`).

use connection_function::ConnectionFunction;
use lambda_runtime::{LambdaEvent, service_fn};
use session_core::config::FunctionEnv;
use session_core::deadline::Deadline;
use session_core::events::WebSocketEvent;
use session_core::setup;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = FunctionEnv::from_process(&contract::functions::CONNECTION);
    let sdk = setup::aws_config().await;
    let (limits, auth, verifier) = ConnectionFunction::settings(&env)?;
    let function = ConnectionFunction {
        store: setup::store(&env, &sdk)?,
        notifier: setup::notifier(&env, &sdk)?,
        limits,
        auth,
        verifier,
    };
    let function = &function;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<WebSocketEvent>| async move {
        let deadline = Deadline::at_epoch_millis(event.context.deadline);
        Ok::<_, std::convert::Infallible>(function.handle_by(&event.payload, deadline).await)
    }))
    .await
}

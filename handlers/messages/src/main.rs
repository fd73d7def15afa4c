//! The `messages` Lambda function (`$default` and every action route).

use lambda_runtime::{LambdaEvent, service_fn};
use messages_function::{AudioSink, MessagesFunction, RecentSessions};
use session_core::config::FunctionEnv;
use session_core::deadline::Deadline;
use session_core::events::WebSocketEvent;
use session_core::setup;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = FunctionEnv::from_process(&contract::functions::MESSAGES);
    let sdk = setup::aws_config().await;
    let (limits, stream) = MessagesFunction::settings(&env)?;
    let audio = AudioSink::new(aws_sdk_kinesis::Client::new(&sdk), stream);
    let function = MessagesFunction {
        store: setup::store(&env, &sdk)?,
        notifier: setup::notifier(&env, &sdk)?,
        limits,
        audio,
        recent: RecentSessions::default(),
    };
    let function = &function;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<WebSocketEvent>| async move {
        let deadline = Deadline::at_epoch_millis(event.context.deadline);
        Ok::<_, std::convert::Infallible>(function.handle_by(&event.payload, deadline).await)
    }))
    .await
}

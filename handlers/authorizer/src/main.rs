//! The `authorizer` Lambda function: configuration once per cold start, then every `$connect`.

use authorizer_function::Authorizer;
use lambda_runtime::{LambdaEvent, service_fn};
use session_core::config::FunctionEnv;
use session_core::events::AuthorizerRequest;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let authorizer = Authorizer::from_env(&FunctionEnv::from_process(&contract::functions::AUTHORIZER))?;
    let authorizer = &authorizer;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<AuthorizerRequest>| async move {
        authorizer.handle(&event.payload).await
    }))
    .await
}

//! A record of every AWS SDK call a client makes, and the IAM actions those calls need.
//!
//! [`OperationRecorder`] is an SDK interceptor. Attach it to any client of the AWS SDK for
//! Rust (`Config::builder().interceptor(recorder.clone())`), run the code under test, then ask
//! it which operations were called ([`OperationRecorder::calls`]) or which IAM actions the
//! function's role must allow for them ([`OperationRecorder::iam_actions`]). Clones share one
//! record, so a test keeps one clone and gives the others to clients.
//!
//! The service and operation names come from the operation's
//! [`Metadata`], which every generated operation stores in the
//! config bag. The service names are the SDK's own: `"DynamoDB"`,
//! `"ApiGatewayManagementApi"` and `"Kinesis"`.
//!
//! It is also a fault switch: [`OperationRecorder::make_unreachable`] sends every attempt of
//! one operation to a port where nothing listens, so the real SDK meets a real connection
//! failure (an outage of that call) against the otherwise real local endpoint; and
//! [`OperationRecorder::lose_answers`] lets the endpoint apply a request but turns its answer
//! into a 500, as when a response is lost on the way back (the case that makes a retried
//! write apply twice).

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextMut, BeforeSerializationInterceptorContextRef,
    BeforeTransmitInterceptorContextMut,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

/// The service name the DynamoDB SDK stores in its operations' metadata.
pub const DYNAMODB_SERVICE: &str = "DynamoDB";
/// The service name the API Gateway management API SDK stores in its operations' metadata.
pub const APIGATEWAY_MANAGEMENT_SERVICE: &str = "ApiGatewayManagementApi";
/// The service name the Kinesis SDK stores in its operations' metadata.
pub const KINESIS_SERVICE: &str = "Kinesis";

/// Records `(service, operation)` for every SDK call made by the clients it is attached to.
#[derive(Debug, Clone, Default)]
pub struct OperationRecorder {
    calls: Arc<Mutex<Vec<(String, String)>>>,
    unreachable: Arc<Mutex<BTreeSet<String>>>,
    /// Per operation, how many more answers to lose.
    lost_answers: Arc<Mutex<BTreeMap<String, usize>>>,
}

/// Where requests go while their operation is unreachable: the discard port of this machine,
/// where nothing listens, so every attempt fails to connect as it would in an outage.
const NOWHERE: &str = "http://127.0.0.1:9/";

impl OperationRecorder {
    /// A recorder with an empty record.
    pub fn new() -> OperationRecorder {
        OperationRecorder::default()
    }

    /// Every recorded call as `(service, operation)`, in the order the calls started.
    pub fn calls(&self) -> Vec<(String, String)> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The IAM actions the recorded calls need, such as `dynamodb:GetItem` or
    /// `execute-api:ManageConnections`. A service this table does not know shows as
    /// `unknown:{service}:{operation}`, so a test comparing against a policy fails loudly.
    pub fn iam_actions(&self) -> BTreeSet<String> {
        self.calls().iter().map(|(service, operation)| iam_action(service, operation)).collect()
    }

    /// Forgets every recorded call.
    pub fn clear(&self) {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// A fault for tests: from now on, every attempt of `operation` (for example `Query`) by
    /// the clients this recorder is attached to fails to connect, as in an outage, until
    /// [`OperationRecorder::reachable_again`]. The calls are still recorded.
    pub fn make_unreachable(&self, operation: &str) {
        self.unreachable.lock().unwrap_or_else(PoisonError::into_inner).insert(operation.to_owned());
    }

    /// Ends every fault [`OperationRecorder::make_unreachable`] set.
    pub fn reachable_again(&self) {
        self.unreachable.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// A fault for tests: the next `count` attempts of `operation` reach the endpoint, which
    /// applies them, but the caller gets a DynamoDB `InternalServerError` (500) instead of the
    /// answer.
    pub fn lose_answers(&self, operation: &str, count: usize) {
        self.lost_answers.lock().unwrap_or_else(PoisonError::into_inner).insert(operation.to_owned(), count);
    }

    /// Whether this attempt's answer is one to lose (and one fewer is left to lose).
    fn answer_lost(&self, operation: &str) -> bool {
        let mut lost = self.lost_answers.lock().unwrap_or_else(PoisonError::into_inner);
        match lost.get_mut(operation) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    }
}

/// The IAM action one SDK operation needs.
pub fn iam_action(service: &str, operation: &str) -> String {
    match service {
        DYNAMODB_SERVICE => format!("dynamodb:{operation}"),
        // Every operation of the @connections API is authorised by this one action.
        APIGATEWAY_MANAGEMENT_SERVICE => "execute-api:ManageConnections".to_owned(),
        KINESIS_SERVICE => format!("kinesis:{operation}"),
        _ => format!("unknown:{service}:{operation}"),
    }
}

impl Intercept for OperationRecorder {
    fn name(&self) -> &'static str {
        "OperationRecorder"
    }

    // An interceptor attached to a client's configuration runs `read_before_execution` before
    // the operation's own configuration (and so its metadata) is in the config bag; the
    // operation's metadata is there from `read_before_serialization` on, which also runs once
    // per call (retries repeat only the later hooks).
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let call = match cfg.load::<Metadata>() {
            Some(metadata) => (metadata.service().to_owned(), metadata.name().to_owned()),
            None => ("unknown".to_owned(), "unknown".to_owned()),
        };
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).push(call);
        Ok(())
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg.load::<Metadata>().map(|metadata| metadata.name().to_owned()).unwrap_or_default();
        if self.unreachable.lock().unwrap_or_else(PoisonError::into_inner).contains(&operation) {
            context.request_mut().set_uri(NOWHERE)?;
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg.load::<Metadata>().map(|metadata| metadata.name().to_owned()).unwrap_or_default();
        if self.answer_lost(&operation) {
            let body =
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"the answer was lost"}"#;
            let status = StatusCode::try_from(500_u16)?;
            *context.response_mut() = HttpResponse::new(status, SdkBody::from(body));
        }
        Ok(())
    }
}

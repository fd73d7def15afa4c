//! Test support: real AWS APIs on this machine (moto's server), tables made from the contract,
//! a recording `@connections` API, and a recorder of SDK calls.
//!
//! [`local_endpoint`] answers the URL of moto's server. When the variable
//! `TESTKIT_AWS_ENDPOINT` is set (`cargo xtask test` starts one server for the whole run and
//! sets it), that server is used; otherwise the first call starts one for this test process,
//! on a free port, from the project's private Python environment (`target/tools/venv`, made by
//! `cargo xtask test`). The server stops when the test process exits.
//!
//! [`create_tables`] creates every table of the contract under a fresh name prefix, so tests
//! running in parallel never see each other's rows. Tests that need the endpoint fail with a
//! message that says what to run; they never skip.
//!
//! Beyond DynamoDB:
//! - [`ConnectionsApi`] (module [`connections_api`]) is a local, recording stand-in for API
//!   Gateway's `@connections` API, for the real `aws-sdk-apigatewaymanagement` client.
//! - [`OperationRecorder`] (module [`recorder`]) records every SDK call of the clients it is
//!   attached to, and the IAM actions those calls need.
//! - [`kinesis_client`], [`create_stream`] and [`read_all_records`] (module [`kinesis`]) use
//!   Kinesis on the same local endpoint.
//! - [`isolate_aws_environment`] (module [`aws_env`]) keeps the caller's AWS settings away from
//!   a child process.

pub mod aws_env;
pub mod connections_api;
pub mod kinesis;
pub mod recorder;

pub use aws_env::{assert_blind_to_aws, command_env, isolate_aws_environment};
pub use connections_api::ConnectionsApi;
pub use kinesis::{create_stream, kinesis_client, read_all_records};
pub use recorder::OperationRecorder;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection as DynamoProjection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use contract::{AttributeType, KeyAttribute, Projection, TableId, TableSchema};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// The environment variable naming an already running endpoint.
pub const ENDPOINT_ENV: &str = "TESTKIT_AWS_ENDPOINT";
/// The environment variable naming the Python interpreter that has moto installed.
pub const PYTHON_ENV: &str = "TESTKIT_PYTHON";
/// The region every local client uses.
pub const REGION: &str = "us-east-1";

const LAUNCHER: &str = include_str!("moto_launcher.py");

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The Python interpreter of the project's private environment.
pub fn venv_python() -> PathBuf {
    std::env::var_os(PYTHON_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/tools/venv/bin/python"))
}

/// A moto server owned by this process. It stops when dropped, and also when this process
/// exits however it exits (its standard input closes).
#[derive(Debug)]
pub struct LocalServer {
    url: String,
    child: Child,
}

impl LocalServer {
    /// Starts moto's server from `python`'s environment on a free port and waits until it
    /// accepts connections.
    pub fn start(python: &Path) -> Result<LocalServer, String> {
        if !python.exists() {
            return Err(format!(
                "moto's server is not installed ({} is missing): run `cargo xtask test`, which \
                 creates the project's Python environment and runs every test",
                python.display()
            ));
        }
        let mut command = Command::new(python);
        let mut child = isolate_aws_environment(&mut command)
            .args(["-c", LAUNCHER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|error| format!("could not start {}: {error}", python.display()))?;
        let stdout = child.stdout.take().ok_or("moto's server has no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|error| format!("could not read from moto's server: {error}"))?;
        let Some(port) = line.trim().strip_prefix("READY ") else {
            let _ = child.kill();
            return Err(format!("moto's server did not start (it said {line:?}); see its output above"));
        };
        Ok(LocalServer { url: format!("http://127.0.0.1:{port}"), child })
    }

    /// The server's base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        // Closing its standard input asks the server to stop; waiting reaps the process.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The URL of a local AWS-compatible endpoint (moto's server), started once per process.
///
/// # Panics
/// When no endpoint is configured and none can be started; the message says what to run.
pub fn local_endpoint() -> String {
    if let Ok(url) = std::env::var(ENDPOINT_ENV) {
        return url;
    }
    static SERVER: OnceLock<Result<LocalServer, String>> = OnceLock::new();
    match SERVER.get_or_init(|| LocalServer::start(&venv_python())) {
        Ok(server) => server.url.clone(),
        Err(problem) => panic!("no local DynamoDB endpoint: {problem}"),
    }
}

/// A DynamoDB client for the local endpoint, with fixed test credentials.
pub fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(dynamodb_config().build())
}

/// A DynamoDB client for the local endpoint, with fixed test credentials, whose calls
/// `recorder` records.
pub fn dynamodb_client_recording(recorder: &OperationRecorder) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(dynamodb_config().interceptor(recorder.clone()).build())
}

fn dynamodb_config() -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new(REGION))
        .endpoint_url(local_endpoint())
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "testkit"))
}

/// Physical table names of one test's tables.
#[derive(Debug, Clone)]
pub struct TestTables {
    pub names: BTreeMap<TableId, String>,
}

impl TestTables {
    pub fn name(&self, id: TableId) -> &str {
        self.names.get(&id).map(String::as_str).unwrap_or_default()
    }

    /// The table names as a function's environment would carry them: looked up by each
    /// table's `name_env` variable.
    pub fn env_lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |variable| {
            contract::CONTRACT
                .tables
                .iter()
                .find(|table| table.name_env == variable)
                .map(|table| self.name(table.id).to_owned())
        }
    }
}

/// Creates every table of the contract, named `<prefix>-<logical id>` with a random prefix.
///
/// # Panics
/// When the endpoint refuses a table; the message names the table and the reason.
pub async fn create_tables(client: &aws_sdk_dynamodb::Client) -> TestTables {
    let prefix = format!("t{:016x}", rand::random::<u64>());
    let mut names = BTreeMap::new();
    for schema in contract::CONTRACT.tables {
        let name = format!("{prefix}-{}", schema.logical_id);
        if let Err(problem) = create_table(client, schema, &name).await {
            panic!("could not create table {name} from the contract: {problem}");
        }
        names.insert(schema.id, name);
    }
    TestTables { names }
}

/// Creates one table exactly as its schema declares it: keys, indexes, on-demand billing, TTL.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, schema: &TableSchema, name: &str) -> Result<(), String> {
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(schema.partition_key, schema.sort_key)?))
        .set_attribute_definitions(Some(
            schema.key_attributes().into_iter().map(attribute_definition).collect::<Result<_, _>>()?,
        ));
    for index in schema.global_indexes {
        let projection = DynamoProjection::builder()
            .projection_type(match index.projection {
                Projection::All => ProjectionType::All,
                Projection::KeysOnly => ProjectionType::KeysOnly,
            })
            .build();
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .set_key_schema(Some(key_schema(index.partition_key, index.sort_key)?))
                .projection(projection)
                .build()
                .map_err(|error| error.to_string())?,
        );
    }
    request.send().await.map_err(show_error)?;
    if let Some(attribute) = schema.ttl_attribute {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(attribute)
                    .build()
                    .map_err(|error| error.to_string())?,
            )
            .send()
            .await
            .map_err(show_error)?;
    }
    Ok(())
}

fn show_error(error: impl std::error::Error) -> String {
    aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string()
}

fn key_schema(partition: KeyAttribute, sort: Option<KeyAttribute>) -> Result<Vec<KeySchemaElement>, String> {
    std::iter::once((partition, KeyType::Hash))
        .chain(sort.map(|key| (key, KeyType::Range)))
        .map(|(key, kind)| {
            KeySchemaElement::builder()
                .attribute_name(key.name)
                .key_type(kind)
                .build()
                .map_err(|error| error.to_string())
        })
        .collect()
}

fn attribute_definition(key: KeyAttribute) -> Result<AttributeDefinition, String> {
    AttributeDefinition::builder()
        .attribute_name(key.name)
        .attribute_type(match key.kind {
            AttributeType::String => ScalarAttributeType::S,
            AttributeType::Number => ScalarAttributeType::N,
        })
        .build()
        .map_err(|error| error.to_string())
}

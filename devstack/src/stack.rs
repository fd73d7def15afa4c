//! The local stack, assembled from one template: the local AWS endpoint with the template's
//! tables and streams, one local Lambda per function, and the two gateways.
//!
//! The functions reach DynamoDB through the fault proxy ([`crate::proxy`]), so
//! [`DevStack::faults`] can make it slow, unreachable or throttling at run time; the stack's own
//! calls and [`DevStack::dynamodb_endpoint`] go to the local endpoint directly.

use crate::faults::Faults;
use crate::identity::{LocalIdentity, local_stage};
use crate::proxy::DynamoProxy;
use crate::resolve::{ACCOUNT, Resolver};
use crate::runtime::{Function, FunctionConfig, FunctionStats, LogSink, ProcessInfo};
use crate::template::ServiceTemplate;
use crate::websocket::{GatewayLimits, WebSocketGateway};
use crate::{REGION, http_api::HttpGateway};
use anyhow::{Context, Result};
use serde_json::{Value, json};
use session_core::jwt::JwksSource;
use stacks::StageConfig;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A change to the synthesized template before the stack reads it (tests use it to build
/// configurations no stage has, such as the seed incident's identity source).
pub type TemplateEdit = Box<dyn FnOnce(&mut Value) + Send>;

/// How to run the stack.
pub struct DevConfig {
    /// The stage whose template runs (its JWT settings are pointed at the local identity).
    pub stage: StageConfig,
    pub edit_template: Option<TemplateEdit>,
    /// Where the functions' binaries are (`target/debug`).
    pub binaries: PathBuf,
    /// 0 picks a free port.
    pub websocket_port: u16,
    /// 0 picks a free port.
    pub http_port: u16,
    pub limits: GatewayLimits,
    pub identity: LocalIdentity,
    /// An already running local AWS endpoint; `None` starts moto's server from `python`.
    pub aws_endpoint: Option<String>,
    pub python: PathBuf,
    pub logs: LogSink,
    /// Processes per function at most.
    pub max_concurrency: usize,
}

impl DevConfig {
    /// A stack of `stage` from `binaries`, logging to `logs`: free ports, the gateway's
    /// default limits, a new local identity, its own moto started from the project's Python
    /// environment, and at most 16 processes per function. Tests and benchmarks start from
    /// this and change what they need.
    pub fn local(stage: StageConfig, binaries: PathBuf, logs: LogSink) -> Result<DevConfig> {
        Ok(DevConfig {
            stage,
            edit_template: None,
            binaries,
            websocket_port: 0,
            http_port: 0,
            limits: GatewayLimits::default(),
            identity: LocalIdentity::generate()?,
            aws_endpoint: None,
            python: testkit::venv_python(),
            logs,
            max_concurrency: 16,
        })
    }
}

impl std::fmt::Debug for DevConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("DevConfig").field("stage", &self.stage.name).field("binaries", &self.binaries).finish()
    }
}

/// The running stack. Dropping it stops the function processes; [`DevStack::stop`] also waits
/// for the servers and the local AWS endpoint to stop.
#[derive(Debug)]
pub struct DevStack {
    stage: StageConfig,
    websocket_address: SocketAddr,
    http_address: SocketAddr,
    dynamodb_endpoint: String,
    template: Value,
    functions: BTreeMap<String, Function>,
    gateway: Arc<WebSocketGateway>,
    stop: watch::Sender<bool>,
    servers: Vec<tokio::task::JoinHandle<()>>,
    moto: Option<testkit::LocalServer>,
    table_names: BTreeMap<String, String>,
    identity: LocalIdentity,
    faults: Faults,
}

impl DevStack {
    /// Starts everything; once this returns, both gateways accept connections.
    pub async fn start(config: DevConfig) -> Result<DevStack> {
        let websocket_listener = TcpListener::bind(("127.0.0.1", config.websocket_port))
            .await
            .with_context(|| format!("port {} is taken: choose another with --port", config.websocket_port))?;
        let http_listener = TcpListener::bind(("127.0.0.1", config.http_port))
            .await
            .with_context(|| format!("port {} is taken: choose another with --http-port", config.http_port))?;
        let websocket_address = websocket_listener.local_addr()?;
        let http_address = http_listener.local_addr()?;
        let websocket_base = format!("http://{websocket_address}");
        let jwks_url = format!("{websocket_base}/.well-known/jwks.json");
        let stage = local_stage(config.stage, &jwks_url);

        let mut template = stacks::synthesize(&contract::CONTRACT, &stage)?.to_value();
        if let Some(edit) = config.edit_template {
            edit(&mut template);
        }
        let service = ServiceTemplate::read(&template).context("reading the synthesized template")?;

        let (moto, endpoint) = match config.aws_endpoint {
            Some(endpoint) => (None, endpoint),
            None => {
                let python = config.python.clone();
                let server = tokio::task::spawn_blocking(move || testkit::LocalServer::start(&python))
                    .await?
                    .map_err(anyhow::Error::msg)?;
                let url = server.url().to_owned();
                (Some(server), url)
            }
        };

        let prefix = format!("{}-{:08x}", stage.stack_name, rand::random::<u32>());
        let mut resolver =
            Resolver { region: REGION.to_owned(), stack_name: stage.stack_name.clone(), ..Resolver::default() };
        let mut table_names = BTreeMap::new();
        for (id, _) in &service.tables {
            let name = format!("{prefix}-{id}");
            resolver.arns.insert(id.clone(), format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"));
            resolver.refs.insert(id.clone(), name.clone());
            table_names.insert(id.clone(), name);
        }
        for id in &service.streams {
            let name = format!("{prefix}-{id}");
            resolver.arns.insert(id.clone(), format!("arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"));
            resolver.refs.insert(id.clone(), name);
        }
        for id in service.functions.keys() {
            resolver.arns.insert(id.clone(), format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{prefix}-{id}"));
        }
        // Each function's code is its binary: the code-key parameters name them.
        for function in contract::functions::ALL {
            resolver.refs.insert(stacks::naming::code_key(function.name), function.name.to_owned());
        }
        resolver.refs.insert(stacks::naming::ASSETS_BUCKET.to_owned(), "local-assets".to_owned());
        let websocket_api_id = api_id(&service.websocket.logical_id);
        resolver.refs.insert(service.websocket.logical_id.clone(), websocket_api_id.clone());
        resolver.route_api(&websocket_api_id, &websocket_base);
        let http_api_id = service.http.as_ref().map(|api| api_id(&api.logical_id));
        if let (Some(api), Some(id)) = (&service.http, &http_api_id) {
            resolver.refs.insert(api.logical_id.clone(), id.clone());
            resolver.route_api(id, &format!("http://{http_address}"));
        }

        let sdk = local_sdk_config(&endpoint);
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        for (id, properties) in &service.tables {
            crate::resources::create_table(&dynamodb, &table_names[id], properties).await?;
        }
        let kinesis = aws_sdk_kinesis::Client::new(&sdk);
        for id in &service.streams {
            crate::resources::create_stream(&kinesis, &resolver.refs[id]).await?;
        }

        let (stop, stopping) = watch::channel(false);
        let faults = Faults::default();
        let proxy = DynamoProxy::start(&endpoint, faults.clone(), stopping.clone()).await?;
        let mut functions = BTreeMap::new();
        for (id, spec) in &service.functions {
            let binary_name = resolver.resolve(&spec.code_key).with_context(|| format!("{id}'s code"))?;
            let binary = config.binaries.join(&binary_name);
            if !binary.exists() {
                anyhow::bail!("{} is missing: build the functions first (cargo build --bins)", binary.display());
            }
            let mut environment = Vec::new();
            for (name, value) in &spec.environment {
                let value = resolver.resolve(value).with_context(|| format!("{id}'s variable {name}"))?;
                environment.push((name.clone(), value));
            }
            environment.extend(local_aws_environment(&proxy.url(), &endpoint));
            let function = FunctionConfig {
                name: id.clone(),
                binary,
                environment,
                timeout: Duration::from_secs(spec.timeout_seconds),
                memory_mb: spec.memory_mb,
                max_concurrency: config.max_concurrency,
                logs: config.logs.clone(),
            };
            functions.insert(id.clone(), Function::new(function, stopping.clone()));
        }

        let gateway = WebSocketGateway::new(
            service.websocket.clone(),
            websocket_api_id,
            functions.clone(),
            config.limits,
            config.identity.jwks_json(),
            faults.clone(),
        );
        let mut servers = vec![serve(websocket_listener, gateway.router(), stopping.clone()), proxy.into_task()];
        if let (Some(api), Some(id)) = (service.http.clone(), http_api_id) {
            let http = HttpGateway::new(api, id, functions.clone(), JwksSource::Url(jwks_url));
            servers.push(serve(http_listener, http.router(), stopping.clone()));
        }
        Ok(DevStack {
            stage,
            websocket_address,
            http_address,
            dynamodb_endpoint: endpoint,
            template,
            functions,
            gateway,
            stop,
            servers,
            moto,
            table_names,
            identity: config.identity,
            faults,
        })
    }

    /// `ws://127.0.0.1:PORT/{stage}`.
    pub fn websocket_url(&self) -> String {
        format!("ws://{}/{}", self.websocket_address, self.stage.name)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http_address)
    }

    /// The local AWS endpoint (DynamoDB and Kinesis) itself, without the fault proxy the
    /// functions go through: what it answers is the state behind any fault.
    pub fn dynamodb_endpoint(&self) -> &str {
        &self.dynamodb_endpoint
    }

    /// A DynamoDB client for the local endpoint itself (not the fault proxy), with the stack's
    /// local credentials: for reading the state behind the functions.
    pub fn dynamodb_client(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&local_sdk_config(&self.dynamodb_endpoint))
    }

    /// The local gateway's `@connections` API, reached as the functions reach it: for asking
    /// which connections are still open, as the service's recount does.
    pub fn connections(&self) -> session_core::fanout::Connections {
        let endpoint = self.management_endpoint();
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(&local_sdk_config(&endpoint)).build();
        let notifier = session_core::fanout::Notifier::new(config, Some(endpoint));
        notifier.configured().expect("an endpoint is configured")
    }

    /// Where the fault switch is served (`faults`): GET shows it, POST sets faults, DELETE clears them.
    pub fn faults_url(&self) -> String {
        format!("http://{}/_local/faults", self.websocket_address)
    }

    fn management_endpoint(&self) -> String {
        format!("http://{}/{}", self.websocket_address, self.stage.name)
    }

    /// The stage as it runs locally (JWT settings pointed at the local identity).
    pub fn stage(&self) -> &StageConfig {
        &self.stage
    }

    /// The template the stack runs.
    pub fn template(&self) -> &Value {
        &self.template
    }

    /// Table logical id → local table name.
    pub fn table_names(&self) -> &BTreeMap<String, String> {
        &self.table_names
    }

    /// How many WebSocket connections are open.
    pub fn open_connections(&self) -> usize {
        self.gateway.open_connections()
    }

    /// The fault switch: DynamoDB as the functions reach it, and `@connections`.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The running processes of a function (by logical id; none for an unknown one).
    pub fn processes(&self, function: &str) -> Vec<ProcessInfo> {
        self.functions.get(function).map(Function::processes).unwrap_or_default()
    }

    /// What each function has done, by logical id.
    pub fn function_stats(&self) -> BTreeMap<String, FunctionStats> {
        self.functions.iter().map(|(id, function)| (id.clone(), function.stats())).collect()
    }

    /// A speaker token this stack accepts.
    pub fn token(&self, request: &crate::TokenRequest) -> Result<String> {
        self.identity.token(&self.stage, request)
    }

    /// `claims` (a JSON object) signed with the stack's local key: a token of any shape, which
    /// this stack checks as the deployed one would.
    pub fn sign(&self, claims: &Value) -> Result<String> {
        self.identity.sign(claims)
    }

    /// What `--ready-file` holds.
    pub fn ready_json(&self) -> Value {
        json!({
            "stage": self.stage.name,
            "websocket_url": self.websocket_url(),
            "http_url": self.http_url(),
            "dynamodb_endpoint": self.dynamodb_endpoint,
            "management_endpoint": self.management_endpoint(),
            "faults_url": self.faults_url(),
            "jwks_url": self.stage.jwt.jwks_url,
            "region": REGION,
            "tables": self.table_names,
        })
    }

    /// Closes every connection (1001), then stops the function processes, the servers, and the
    /// local AWS endpoint if it started one.
    pub async fn stop(mut self) {
        self.gateway.close_all();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while self.gateway.open_connections() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = self.stop.send(true);
        for server in self.servers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
        }
        // Give the processes' tasks a moment to kill and reap them.
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(moto) = self.moto.take() {
            let _ = tokio::task::spawn_blocking(move || drop(moto)).await;
        }
    }
}

impl Drop for DevStack {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// A local API id from a logical id (`WebSocketApi` → `websocketapi`).
fn api_id(logical_id: &str) -> String {
    logical_id.to_ascii_lowercase()
}

fn serve(
    listener: TcpListener,
    router: axum::Router,
    mut stopping: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        };
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(error) = axum::serve(listener, service).with_graceful_shutdown(shutdown).await {
            eprintln!("a local gateway stopped: {error}");
        }
    })
}

/// Credentials, region and endpoints every local function gets, as Lambda gives its own.
fn local_aws_environment(dynamodb: &str, kinesis: &str) -> Vec<(String, String)> {
    let mut environment: Vec<(String, String)> = [
        ("AWS_REGION", REGION),
        ("AWS_DEFAULT_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_SESSION_TOKEN", "local"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb),
        ("AWS_ENDPOINT_URL_KINESIS", kinesis),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    if let Ok(filter) = std::env::var("RUST_LOG") {
        environment.push(("RUST_LOG".to_owned(), filter));
    }
    environment
}

fn local_sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    let credentials = aws_sdk_dynamodb::config::Credentials::new("local", "local", None, None, "devstack");
    aws_config::SdkConfig::builder()
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(credentials))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build()
}

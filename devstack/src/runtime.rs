//! A local Lambda Runtime API: each function runs as its built binary, one process per
//! concurrent invocation, reused while warm, as Lambda runs them.
//!
//! Every process gets its own Runtime API endpoint (`AWS_LAMBDA_RUNTIME_API`), so the stack
//! always knows which invocation a process holds: when a process exits while it holds one, that
//! invocation fails with `Runtime.ExitError`; when it runs past the function's timeout (counted
//! from hand-off, as Lambda counts it), the invocation fails with `Sandbox.Timedout` and the
//! process is killed; when it exits, or does not ask for work within 10 s, the invocation it was
//! started for fails with `Runtime.InitError` and no new process is started for it. The gateway
//! turns each of these into the status API Gateway would answer, and stays up.
//!
//! [`Function::processes`] lists a function's running processes with the invocation each holds,
//! so a test can kill one in the middle of an invocation and watch the stack report it.
//!
//! Invocations wait in one queue per function. A process that asks for work (`GET .../next`)
//! takes the next one; a new process starts when more invocations wait than processes do, up to
//! the function's concurrency limit.

use crate::events::epoch_ms;
use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::{Notify, mpsc, oneshot, watch};

/// Where the functions' standard output and error go.
#[derive(Debug, Clone)]
pub enum LogSink {
    /// This process's standard error, each line prefixed with the function's name.
    Stderr,
    /// Appended to a file, each line prefixed with the function's name.
    File(Arc<Mutex<std::fs::File>>),
}

impl LogSink {
    /// A sink appending to `path` (created with its directory).
    pub fn file(path: &std::path::Path) -> Result<LogSink> {
        if let Some(directory) = path.parent() {
            std::fs::create_dir_all(directory)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(LogSink::File(Arc::new(Mutex::new(file))))
    }

    fn line(&self, function: &str, line: &str) {
        match self {
            LogSink::Stderr => eprintln!("[{function}] {line}"),
            LogSink::File(file) => {
                let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
                let _ = writeln!(file, "[{function}] {line}");
            }
        }
    }
}

/// How to run one function.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    /// The function's name (its logical id).
    pub name: String,
    pub binary: PathBuf,
    /// Its environment: the template's variables resolved, and the local endpoints.
    pub environment: Vec<(String, String)>,
    pub timeout: Duration,
    pub memory_mb: u32,
    /// At most this many processes at once.
    pub max_concurrency: usize,
    pub logs: LogSink,
}

/// Why an invocation failed, as Lambda reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeError {
    /// `Runtime.ExitError`, `Sandbox.Timedout`, `Runtime.InitError`, or the function's own.
    pub error_type: String,
    pub error_message: String,
}

impl std::fmt::Display for InvokeError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}: {}", self.error_type, self.error_message)
    }
}

impl InvokeError {
    fn new(error_type: &str, error_message: impl Into<String>) -> InvokeError {
        InvokeError { error_type: error_type.to_owned(), error_message: error_message.into() }
    }
}

type Outcome = Result<Vec<u8>, InvokeError>;

#[derive(Debug)]
struct Invocation {
    request_id: String,
    payload: Vec<u8>,
    reply: oneshot::Sender<Outcome>,
}

/// How long a process may take to ask for its first invocation (Lambda's init limit).
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// A running process of a function, for tests that need to act on one (kill it mid-invocation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// The operating system's process id.
    pub pid: u32,
    /// The request id of the invocation the process holds, if it holds one.
    pub invocation: Option<String>,
}

/// Counts of what a function did, for tests and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FunctionStats {
    pub invocations: u64,
    pub cold_starts: u64,
}

/// One function: its queue and its processes. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Function {
    pool: Arc<Pool>,
}

#[derive(Debug)]
struct Pool {
    config: FunctionConfig,
    queue: mpsc::UnboundedSender<Invocation>,
    next: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    queued: AtomicUsize,
    waiting: AtomicUsize,
    processes: AtomicUsize,
    invocations: AtomicU64,
    cold_starts: AtomicU64,
    /// The processes running now, by process id.
    running: Mutex<BTreeMap<u32, Weak<Process>>>,
    stop: watch::Receiver<bool>,
}

impl Function {
    /// A function whose processes stop when `stop` turns true.
    pub fn new(config: FunctionConfig, stop: watch::Receiver<bool>) -> Function {
        let (queue, next) = mpsc::unbounded_channel();
        Function {
            pool: Arc::new(Pool {
                config,
                queue,
                next: tokio::sync::Mutex::new(next),
                queued: AtomicUsize::new(0),
                waiting: AtomicUsize::new(0),
                processes: AtomicUsize::new(0),
                invocations: AtomicU64::new(0),
                cold_starts: AtomicU64::new(0),
                running: Mutex::default(),
                stop,
            }),
        }
    }

    /// The function's name.
    pub fn name(&self) -> &str {
        &self.pool.config.name
    }

    /// What it has done so far.
    pub fn stats(&self) -> FunctionStats {
        FunctionStats {
            invocations: self.pool.invocations.load(Ordering::Relaxed),
            cold_starts: self.pool.cold_starts.load(Ordering::Relaxed),
        }
    }

    /// The processes running now, in process id order.
    pub fn processes(&self) -> Vec<ProcessInfo> {
        let running = self.pool.running.lock().unwrap_or_else(PoisonError::into_inner);
        running
            .iter()
            .filter_map(|(pid, process)| {
                let process = process.upgrade()?;
                let current = process.current.lock().unwrap_or_else(PoisonError::into_inner);
                Some(ProcessInfo { pid: *pid, invocation: current.as_ref().map(|(id, _)| id.clone()) })
            })
            .collect()
    }

    /// Invokes the function with `event` and answers its result, or how it failed.
    pub async fn invoke(&self, event: &Value) -> Result<Value, InvokeError> {
        let pool = &self.pool;
        pool.invocations.fetch_add(1, Ordering::Relaxed);
        let (reply, outcome) = oneshot::channel();
        let timeout = pool.config.timeout;
        let invocation = Invocation {
            request_id: crate::ids::request_id(),
            payload: serde_json::to_vec(event).unwrap_or_default(),
            reply,
        };
        pool.queued.fetch_add(1, Ordering::SeqCst);
        if pool.queue.send(invocation).is_err() {
            return Err(InvokeError::new("Runtime.Unavailable", "the local stack is stopping"));
        }
        if pool.queued.load(Ordering::SeqCst) > pool.waiting.load(Ordering::SeqCst) {
            start_process(pool);
        }
        // The process enforces the function's timeout from hand-off; this bound covers waiting
        // for a process (start-up and queue) as well. An invocation given up here is dropped
        // from the queue unrun (`next` skips it).
        let bound = INIT_TIMEOUT + timeout * 2;
        let bytes = match tokio::time::timeout(bound, outcome).await {
            Ok(Ok(outcome)) => outcome?,
            Ok(Err(_)) => return Err(InvokeError::new("Runtime.ExitError", "the invocation was lost")),
            Err(_) => {
                let busy = pool.processes.load(Ordering::SeqCst);
                let message = format!(
                    "no process took an invocation within {} s ({busy} processes busy): the client gets Internal server error",
                    bound.as_secs()
                );
                pool.config.logs.line(&pool.config.name, &message);
                return Err(InvokeError::new("Sandbox.Timedout", "no process took the invocation in time"));
            }
        };
        serde_json::from_slice(&bytes)
            .map_err(|error| InvokeError::new("Runtime.InvalidResponse", format!("the response is not JSON: {error}")))
    }
}

/// Starts one more process unless the function is at its concurrency limit.
fn start_process(pool: &Arc<Pool>) {
    let count = pool.processes.fetch_add(1, Ordering::SeqCst);
    if count >= pool.config.max_concurrency {
        pool.processes.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    pool.cold_starts.fetch_add(1, Ordering::Relaxed);
    let pool = Arc::clone(pool);
    tokio::spawn(async move {
        if let Err(error) = run_process(Arc::clone(&pool)).await {
            pool.processes.fetch_sub(1, Ordering::SeqCst);
            pool.config.logs.line(&pool.config.name, &format!("could not start: {error:#}"));
            fail_waiting(&pool, InvokeError::new("Runtime.InitError", format!("{error:#}"))).await;
        }
    });
}

/// What one process's Runtime API endpoint knows.
#[derive(Debug)]
struct Process {
    pool: Arc<Pool>,
    current: Mutex<Option<(String, oneshot::Sender<Outcome>)>>,
    asked_for_work: AtomicBool,
    init_error: Mutex<Option<InvokeError>>,
    kill: Notify,
}

impl Process {
    fn take_current(&self, request_id: Option<&str>) -> Option<oneshot::Sender<Outcome>> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        match (&*current, request_id) {
            (Some((id, _)), Some(wanted)) if id != wanted => None,
            _ => current.take().map(|(_, reply)| reply),
        }
    }
}

async fn run_process(pool: Arc<Pool>) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let address = listener.local_addr()?;
    let config = &pool.config;
    let mut child = Command::new(&config.binary)
        .env_clear()
        .envs(config.environment.iter().map(|(name, value)| (name, value)))
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", &config.name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", config.memory_mb.to_string())
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", config.name))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("local/{}", address.port()))
        .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
        .env("_HANDLER", "bootstrap")
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("TZ", ":UTC")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", config.binary.display()))?;
    forward_lines(child.stdout.take(), &pool);
    forward_lines(child.stderr.take(), &pool);

    let process = Arc::new(Process {
        pool: Arc::clone(&pool),
        current: Mutex::new(None),
        asked_for_work: AtomicBool::new(false),
        init_error: Mutex::new(None),
        kill: Notify::new(),
    });
    let router = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(Arc::clone(&process));
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    watch_start(&process);
    let _registered = child.id().map(|pid| Registered::new(&pool, pid, &process));

    let mut stop = pool.stop.clone();
    let stopping = async move {
        let _ = stop.wait_for(|stopping| *stopping).await;
    };
    let status = tokio::select! {
        status = child.wait() => status.ok(),
        () = process.kill.notified() => {
            let _ = child.kill().await;
            None
        }
        () = stopping => {
            let _ = child.kill().await;
            server.abort();
            return Ok(());
        }
    };
    server.abort();
    pool.processes.fetch_sub(1, Ordering::SeqCst);
    let exit = status.map(|status| status.to_string()).unwrap_or_else(|| "killed".to_owned());
    if let Some(reply) = process.take_current(None) {
        let failure = InvokeError::new("Runtime.ExitError", format!("the runtime exited ({exit})"));
        pool.config.logs.line(&pool.config.name, &failure.to_string());
        let _ = reply.send(Err(failure));
    }
    if !process.asked_for_work.load(Ordering::SeqCst) {
        // A start that failed fails the invocation it was for, and no new process starts for
        // it (a binary that cannot start would otherwise be restarted forever). With no
        // process left, everything waiting fails the same way.
        let failure =
            process.init_error.lock().unwrap_or_else(PoisonError::into_inner).take().unwrap_or_else(|| {
                InvokeError::new("Runtime.InitError", format!("the runtime did not start ({exit})"))
            });
        pool.config.logs.line(&pool.config.name, &failure.to_string());
        fail_waiting(&pool, failure).await;
    } else if pool.queued.load(Ordering::SeqCst) > pool.waiting.load(Ordering::SeqCst) {
        // Invocations that queued behind this process still need one.
        start_process(&pool);
    }
    Ok(())
}

/// A process listed in its pool's `running` while this lives.
struct Registered<'a> {
    pool: &'a Pool,
    pid: u32,
    process: Weak<Process>,
}

impl<'a> Registered<'a> {
    fn new(pool: &'a Pool, pid: u32, process: &Arc<Process>) -> Registered<'a> {
        let process = Arc::downgrade(process);
        pool.running.lock().unwrap_or_else(PoisonError::into_inner).insert(pid, Weak::clone(&process));
        Registered { pool, pid, process }
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let mut running = self.pool.running.lock().unwrap_or_else(PoisonError::into_inner);
        // The id may already name a newer process (ids are reused); only this one is removed.
        if running.get(&self.pid).is_some_and(|listed| listed.ptr_eq(&self.process)) {
            running.remove(&self.pid);
        }
    }
}

/// Fails the oldest waiting invocation (the one a failed start was for), or every waiting one
/// when no process is left to take them.
async fn fail_waiting(pool: &Pool, failure: InvokeError) {
    let mut queue = pool.next.lock().await;
    while let Ok(invocation) = queue.try_recv() {
        pool.queued.fetch_sub(1, Ordering::SeqCst);
        if invocation.reply.is_closed() {
            continue;
        }
        let _ = invocation.reply.send(Err(failure.clone()));
        if pool.processes.load(Ordering::SeqCst) > 0 {
            break;
        }
    }
}

/// Kills a process that has not asked for work within [`INIT_TIMEOUT`].
fn watch_start(process: &Arc<Process>) {
    let process = Arc::clone(process);
    tokio::spawn(async move {
        tokio::time::sleep(INIT_TIMEOUT).await;
        if !process.asked_for_work.load(Ordering::SeqCst) {
            let seconds = INIT_TIMEOUT.as_secs();
            *process.init_error.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(InvokeError::new("Runtime.InitError", format!("the runtime did not start within {seconds} s")));
            process.kill.notify_one();
        }
    });
}

fn forward_lines(stream: Option<impl AsyncRead + Unpin + Send + 'static>, pool: &Arc<Pool>) {
    let Some(stream) = stream else { return };
    let pool = Arc::clone(pool);
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            pool.config.logs.line(&pool.config.name, &line);
        }
    });
}

/// Decrements a counter when dropped (a long poll may be abandoned at any await).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn next(State(process): State<Arc<Process>>) -> Response {
    process.asked_for_work.store(true, Ordering::SeqCst);
    let pool = &process.pool;
    let invocation = {
        pool.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&pool.waiting);
        let mut queue = pool.next.lock().await;
        loop {
            match queue.recv().await {
                Some(invocation) => {
                    pool.queued.fetch_sub(1, Ordering::SeqCst);
                    // Nobody waits for an invocation given up on: it is not run.
                    if !invocation.reply.is_closed() {
                        break Some(invocation);
                    }
                }
                None => break None,
            }
        }
    };
    let Some(Invocation { request_id, payload, reply }) = invocation else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    // Lambda's clock starts at hand-off, not when the invocation was queued.
    let deadline_ms = epoch_ms() + u64::try_from(pool.config.timeout.as_millis()).unwrap_or(u64::MAX);
    *process.current.lock().unwrap_or_else(PoisonError::into_inner) = Some((request_id.clone(), reply));
    watch_deadline(&process, &request_id, deadline_ms);
    let arn = format!("arn:aws:lambda:us-east-1:{}:function:{}", crate::resolve::ACCOUNT, pool.config.name);
    (
        [
            ("lambda-runtime-aws-request-id", request_id),
            ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
            ("lambda-runtime-invoked-function-arn", arn),
            ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned()),
            ("content-type", "application/json".to_owned()),
        ],
        payload,
    )
        .into_response()
}

/// At the deadline, if the process still holds `request_id`: the invocation fails with
/// `Sandbox.Timedout` and the process is killed (taking the invocation and answering happen
/// under one lock, so a later invocation of the same process is never blamed).
fn watch_deadline(process: &Arc<Process>, request_id: &str, deadline_ms: u64) {
    let process = Arc::clone(process);
    let request_id = request_id.to_owned();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(deadline_ms.saturating_sub(epoch_ms()))).await;
        if let Some(reply) = process.take_current(Some(&request_id)) {
            let seconds = process.pool.config.timeout.as_secs_f64();
            let failure = InvokeError::new("Sandbox.Timedout", format!("Task timed out after {seconds:.2} seconds"));
            process.pool.config.logs.line(&process.pool.config.name, &failure.to_string());
            let _ = reply.send(Err(failure));
            process.kill.notify_one();
        }
    });
}

async fn response(State(process): State<Arc<Process>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    match process.take_current(Some(&id)) {
        Some(reply) => {
            let _ = reply.send(Ok(body.to_vec()));
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn error(State(process): State<Arc<Process>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    match process.take_current(Some(&id)) {
        Some(reply) => {
            let _ = reply.send(Err(reported_error(&body)));
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn init_error(State(process): State<Arc<Process>>, body: Bytes) -> StatusCode {
    *process.init_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(reported_error(&body));
    StatusCode::ACCEPTED
}

/// `{"errorType": ..., "errorMessage": ...}` as the runtime posts it.
fn reported_error(body: &[u8]) -> InvokeError {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let field = |name: &str| value.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    InvokeError { error_type: field("errorType"), error_message: field("errorMessage") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_errors_keep_type_and_message() {
        let error = reported_error(br#"{"errorType":"&authorizer::Error","errorMessage":"Unauthorized"}"#);
        assert_eq!(error.error_message, "Unauthorized");
        assert_eq!(error.error_type, "&authorizer::Error");
        assert_eq!(reported_error(b"garbage").error_message, "");
    }
}

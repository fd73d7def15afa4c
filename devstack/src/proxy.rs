//! The proxy between the functions and the local DynamoDB endpoint: it forwards every request
//! unchanged, over a fresh connection to the endpoint, unless the [`Faults`] switch says to
//! delay, throttle, hang or refuse it (what each does is described in [`crate::faults`]).
//!
//! Refusing is real: the proxy's listening socket is closed while the fault lasts (connecting is
//! then `ECONNREFUSED`) and bound again, on the same port, once it clears.

use crate::faults::{DynamoAction, DynamoFault, Faults, Outage};
use anyhow::{Context, Result, anyhow, bail};
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, Uri, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What DynamoDB answers when a request is throttled.
const THROTTLED: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#;

/// How often binding the port again is tried when something else holds it.
const REBIND_INTERVAL: Duration = Duration::from_millis(100);

/// A running proxy.
#[derive(Debug)]
pub struct DynamoProxy {
    address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl DynamoProxy {
    /// Starts a proxy on a free loopback port in front of `upstream` (an `http://` URL), until
    /// `stop` turns true.
    pub async fn start(upstream: &str, faults: Faults, stop: watch::Receiver<bool>) -> Result<DynamoProxy> {
        let authority = upstream_authority(upstream)?;
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.context("binding the DynamoDB fault proxy")?;
        let address = listener.local_addr()?;
        let task = tokio::spawn(accept(listener, address, Arc::from(authority), faults, stop));
        Ok(DynamoProxy { address, task })
    }

    /// `http://127.0.0.1:PORT`, the endpoint the functions are given.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The task serving it, which ends when the stack stops.
    pub fn into_task(self) -> tokio::task::JoinHandle<()> {
        self.task
    }
}

/// `host:port` of an `http://` endpoint.
fn upstream_authority(upstream: &str) -> Result<String> {
    let uri: Uri = upstream.parse().with_context(|| format!("the local AWS endpoint {upstream:?} is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        bail!("the local AWS endpoint {upstream} must be plain http:// for the fault proxy");
    }
    let authority = uri.authority().ok_or_else(|| anyhow!("the local AWS endpoint {upstream} names no host"))?;
    Ok(match authority.port_u16() {
        Some(_) => authority.to_string(),
        None => format!("{authority}:80"),
    })
}

/// Accepts connections while the endpoint is not refused; closes the port while it is.
async fn accept(
    listener: TcpListener,
    address: SocketAddr,
    upstream: Arc<str>,
    faults: Faults,
    mut stop: watch::Receiver<bool>,
) {
    let mut listener = Some(listener);
    let mut changes = faults.watch_dynamodb();
    let mut warned = false;
    let connections_stop = stop.clone();
    loop {
        let refusing = matches!(*changes.borrow_and_update(), DynamoFault::Down(Outage::Refuse));
        if refusing {
            listener = None;
        } else if listener.is_none() {
            match TcpListener::bind(address).await {
                Ok(bound) => listener = Some(bound),
                Err(error) if !warned => {
                    eprintln!("the DynamoDB fault proxy cannot listen on {address} again yet: {error}");
                    warned = true;
                }
                Err(_) => {}
            }
        }
        let rebinding = !refusing && listener.is_none();
        tokio::select! {
            accepted = next_connection(listener.as_ref()) => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(serve(stream, Arc::clone(&upstream), faults.clone(), connections_stop.clone()));
                }
            }
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep(REBIND_INTERVAL), if rebinding => {}
            _ = stop.wait_for(|stopping| *stopping) => return,
        }
    }
}

async fn next_connection(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// Serves one client connection until it ends, the endpoint is refused, or the stack stops.
async fn serve(stream: TcpStream, upstream: Arc<str>, faults: Faults, mut stop: watch::Receiver<bool>) {
    let mut changes = faults.watch_dynamodb();
    let handler = faults.clone();
    let service = service_fn(move |request| handle(request, Arc::clone(&upstream), handler.clone()));
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = connection => {}
        _ = changes.wait_for(|fault| *fault == DynamoFault::Down(Outage::Refuse)) => {}
        _ = stop.wait_for(|stopping| *stopping) => {}
    }
}

/// One request: answered by the fault, or forwarded.
async fn handle(request: Request<Incoming>, upstream: Arc<str>, faults: Faults) -> Result<Response<Body>> {
    match faults.dynamodb_action() {
        DynamoAction::Forward { delay } => {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            forward(request, &upstream).await
        }
        DynamoAction::Throttle => Ok(throttled()),
        DynamoAction::Hang => {
            let mut changes = faults.watch_dynamodb();
            let _ = changes.wait_for(|fault| *fault != DynamoFault::Down(Outage::Hang)).await;
            // Never forwarded: the caller may have given up on it long ago.
            Err(anyhow!("a hung request is dropped when the fault clears"))
        }
        DynamoAction::Refuse => Err(anyhow!("the endpoint is refused")),
    }
}

async fn forward(request: Request<Incoming>, upstream: &str) -> Result<Response<Body>> {
    let stream = TcpStream::connect(upstream).await.with_context(|| format!("connecting to {upstream}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    Ok(response.map(Body::new))
}

fn throttled() -> Response<Body> {
    let mut response = Response::new(Body::from(THROTTLED));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/x-amz-json-1.0"));
    if let Ok(id) = header::HeaderValue::from_str(&crate::ids::request_id()) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_endpoints_are_proxied() {
        assert_eq!(upstream_authority("http://127.0.0.1:5000").ok().as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(upstream_authority("http://localhost").ok().as_deref(), Some("localhost:80"));
        assert!(upstream_authority("https://dynamodb.us-east-1.amazonaws.com").is_err());
        assert!(upstream_authority("not a url").is_err());
    }
}

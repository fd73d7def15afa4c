//! The browser console that `cargo xtask dev` serves on a port of its own: a speaker page and a
//! listener page that talk to the stage's APIs exactly as the published documents describe.
//!
//! - The pages are plain HTML, JavaScript and CSS in the workspace's `console/` directory, read
//!   from disk on every request (no build step; an edited page shows on reload). Only files
//!   directly in that directory with a name like `speaker.html` are served.
//! - `GET /config.json` tells the pages where the stage's WebSocket and HTTP APIs are, and the
//!   stage's listener cap (so a refused join can be explained, see `console/common.js`).
//! - `POST /local-token` is **local only**: a speaker token signed by the local identity
//!   ([`LocalIdentity`]), for the speaker page's "Get a local token" button. A deployed stage
//!   has no such endpoint (its tokens come from its identity provider); the console server is
//!   part of `devstack` and never deployed. The endpoint answers only the console's own pages:
//!   it sets no CORS headers, and refuses a request whose `Origin` is another page's.
//!
//! The pages call the stage's HTTP API from the console's origin, so the stack must allow it
//! (CORS): the port is bound first ([`ConsoleListener::bind`]) and the stage run with the
//! console's origins allowed ([`allow_origins`]), whatever port the console got.

use crate::identity::{LocalIdentity, TokenRequest};
use crate::stack::DevStack;
use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use stacks::StageConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How long a token from `POST /local-token` is valid: a long talk, refreshes included.
pub const LOCAL_TOKEN_SECONDS: u64 = 12 * 60 * 60;
/// The speaker a local token names when the page asks for none.
pub const DEFAULT_SPEAKER: &str = "console-speaker";

/// What the console serves.
#[derive(Debug)]
pub struct ConsoleConfig {
    /// The directory of the pages (the workspace's `console/`).
    pub directory: PathBuf,
    /// The stage's name, shown by the pages.
    pub stage: String,
    /// `ws://…/{stage}`.
    pub websocket_url: String,
    /// `http://…`.
    pub http_url: String,
    /// The stage's listener cap.
    pub max_listeners_per_session: u32,
    /// Where `POST /local-token` gets its tokens; `None` serves no such endpoint.
    pub local_tokens: Option<LocalTokens>,
}

impl ConsoleConfig {
    /// The console of a running local stack, serving `directory`, its tokens signed by
    /// `identity` (the stack's own key, loaded again from its file).
    pub fn for_stack(stack: &DevStack, directory: PathBuf, identity: LocalIdentity) -> ConsoleConfig {
        ConsoleConfig {
            directory,
            stage: stack.stage().name.clone(),
            websocket_url: stack.websocket_url(),
            http_url: stack.http_url(),
            max_listeners_per_session: stack.stage().limits.max_listeners_per_session,
            local_tokens: Some(LocalTokens { identity, stage: stack.stage().clone() }),
        }
    }
}

/// The local identity and the stage (as it runs locally) whose tokens `POST /local-token`
/// issues.
#[derive(Debug)]
pub struct LocalTokens {
    pub identity: LocalIdentity,
    pub stage: StageConfig,
}

/// `stage` with its HTTP API allowing `origins` as well (CORS), as the console's pages need.
pub fn allow_origins(stage: StageConfig, origins: &[String]) -> StageConfig {
    let mut stage = stage;
    for origin in origins {
        if !stage.cors.allowed_origins.contains(origin) {
            stage.cors.allowed_origins.push(origin.clone());
        }
    }
    stage
}

/// The console's port, bound before the stack starts, so the stack can allow its origins.
#[derive(Debug)]
pub struct ConsoleListener {
    listener: TcpListener,
    address: SocketAddr,
}

impl ConsoleListener {
    /// Binds `port` on 127.0.0.1 (0 picks a free one).
    pub async fn bind(port: u16) -> Result<ConsoleListener> {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("port {port} is taken: choose another with --console-port"))?;
        let address = listener.local_addr()?;
        Ok(ConsoleListener { listener, address })
    }

    /// The origins of the console's pages, as browsers send them: by address and as `localhost`.
    pub fn origins(&self) -> Vec<String> {
        let port = self.address.port();
        vec![format!("http://127.0.0.1:{port}"), format!("http://localhost:{port}")]
    }

    /// Starts serving `config`; once this returns, the console answers.
    pub fn serve(self, config: ConsoleConfig) -> Result<Console> {
        let page = config.directory.join("speaker.html");
        anyhow::ensure!(
            page.is_file(),
            "{} is missing: the console's pages live in the workspace's console/ directory",
            page.display()
        );
        let served = Arc::new(Served { own_origins: self.origins(), config });
        let router = Router::new()
            .route("/", get(index))
            .route("/config.json", get(configuration))
            .route("/local-token", post(local_token))
            .route("/{file}", get(page_file))
            .with_state(served);
        let (stop, mut stopping) = watch::channel(false);
        let listener = self.listener;
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            };
            if let Err(error) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
                eprintln!("the console stopped: {error}");
            }
        });
        Ok(Console { address: self.address, stop, server: Some(server) })
    }
}

/// The running console. Dropping it stops the server; [`Console::stop`] also waits for it.
#[derive(Debug)]
pub struct Console {
    address: SocketAddr,
    stop: watch::Sender<bool>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Console {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// What the handlers share.
#[derive(Debug)]
struct Served {
    config: ConsoleConfig,
    /// The origins of the console's own pages.
    own_origins: Vec<String>,
}

impl Served {
    /// Whether a request comes from one of the console's own pages, or from no page at all (a
    /// command-line client sends no `Origin`).
    fn is_from_own_page(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else { return true };
        self.own_origins.iter().any(|own| origin.as_bytes() == own.as_bytes())
    }
}

fn answer(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body.to_string())
        .into_response()
}

async fn configuration(State(served): State<Arc<Served>>) -> Response {
    let config = &served.config;
    answer(
        StatusCode::OK,
        &json!({
            "stage": config.stage,
            "websocketUrl": config.websocket_url,
            "httpUrl": config.http_url,
            "maxListenersPerSession": config.max_listeners_per_session,
            "localTokens": config.local_tokens.is_some(),
        }),
    )
}

/// `POST /local-token` with an optional body `{"sub": "..."}`: `{token, sub, expiresIn}`.
async fn local_token(State(served): State<Arc<Served>>, headers: HeaderMap, body: Bytes) -> Response {
    let refused = |status: StatusCode, message: &str| answer(status, &json!({ "message": message }));
    if !served.is_from_own_page(&headers) {
        return refused(StatusCode::FORBIDDEN, "local tokens are for the console's own pages");
    }
    let Some(tokens) = &served.config.local_tokens else {
        return refused(
            StatusCode::NOT_FOUND,
            "this console issues no tokens: paste one from the stage's identity provider",
        );
    };
    let sub = if body.iter().all(u8::is_ascii_whitespace) {
        DEFAULT_SPEAKER.to_owned()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(fields)) => match fields.get("sub") {
                None | Some(Value::Null) => DEFAULT_SPEAKER.to_owned(),
                Some(Value::String(sub)) if is_speaker_name(sub) => sub.clone(),
                Some(_) => {
                    return refused(StatusCode::BAD_REQUEST, "sub must be 1 to 64 letters, digits or . _ @ -");
                }
            },
            _ => {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "the body must be a JSON object, {\"sub\": \"...\"}, or empty",
                );
            }
        }
    };
    // An access token: what speakers send (docs/protocol.md, "Speaker tokens"), with no email to carry
    // in the WebSocket URL's query.
    match tokens.identity.token(&tokens.stage, &TokenRequest::id(&sub, LOCAL_TOKEN_SECONDS).access()) {
        Ok(token) => answer(StatusCode::OK, &json!({ "token": token, "sub": sub, "expiresIn": LOCAL_TOKEN_SECONDS })),
        Err(error) => refused(StatusCode::INTERNAL_SERVER_ERROR, &format!("{error:#}")),
    }
}

/// A `sub` the page may ask for.
fn is_speaker_name(sub: &str) -> bool {
    (1..=64).contains(&sub.len())
        && sub.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'@' | b'-'))
}

async fn index(state: State<Arc<Served>>) -> Response {
    page_file(state, Path("index.html".to_owned())).await
}

/// A page, script or style sheet of the console directory.
async fn page_file(State(served): State<Arc<Served>>, Path(file): Path<String>) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "not a file of the console\n").into_response();
    let Some(content_type) = content_type(&file) else { return not_found() };
    match tokio::fs::read(served.config.directory.join(&file)).await {
        Ok(bytes) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "no-store"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => not_found(),
    }
}

/// The content type of a file the console serves, or `None` for a name it does not serve:
/// lowercase letters, digits and dashes, then `.html`, `.js` or `.css` (so no path, no
/// hidden file, nothing outside the directory).
fn content_type(file: &str) -> Option<&'static str> {
    let (stem, extension) = file.rsplit_once('.')?;
    let plain_stem =
        !stem.is_empty() && stem.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
    if !plain_stem {
        return None;
    }
    match extension {
        "html" => Some("text/html; charset=utf-8"),
        "js" => Some("text/javascript; charset=utf-8"),
        "css" => Some("text/css; charset=utf-8"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_of_pages_scripts_and_styles_are_served() {
        assert_eq!(content_type("speaker.html"), Some("text/html; charset=utf-8"));
        assert_eq!(content_type("capture-worklet.js"), Some("text/javascript; charset=utf-8"));
        assert_eq!(content_type("console.css"), Some("text/css; charset=utf-8"));
        for refused in ["../Cargo.toml", ".hidden.js", "speaker.HTML", "a/b.js", "notes.md", ".js", "speaker", "x.y.js"]
        {
            assert_eq!(content_type(refused), None, "{refused}");
        }
    }

    /// The claims of a compact JWT (unverified: the signature is the identity's own test).
    fn claims(token: &str) -> Value {
        use base64::Engine;
        let payload = token.split('.').nth(1).expect("a compact JWT");
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url");
        serde_json::from_slice(&json).expect("JSON claims")
    }

    #[tokio::test]
    async fn the_console_serves_its_pages_its_configuration_and_tokens_for_its_own_pages_only() {
        let listener = ConsoleListener::bind(0).await.expect("a free port");
        let own_origin = listener.origins()[1].clone();
        let stage = crate::identity::local_stage(stacks::stages::dev(), "http://127.0.0.1:1/.well-known/jwks.json");
        let config = ConsoleConfig {
            directory: testkit::workspace_root().join("console"),
            stage: "dev".into(),
            websocket_url: "ws://127.0.0.1:1/dev".into(),
            http_url: "http://127.0.0.1:2".into(),
            max_listeners_per_session: 500,
            local_tokens: Some(LocalTokens { identity: LocalIdentity::generate().expect("a key"), stage }),
        };
        let console = listener.serve(config).expect("the console serves");
        let client = reqwest::Client::new();
        let get = |path: &str| client.get(format!("{}{path}", console.url())).send();

        let index = get("/").await.expect("answered");
        assert_eq!(index.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(index.text().await.expect("a page").contains("speaker.html"), "the start page links the speaker's");
        let script = get("/speaker.js").await.expect("answered");
        assert_eq!(script.status(), 200);
        assert_eq!(script.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        for missing in ["/missing.js", "/..%2FCargo.toml", "/.gitignore"] {
            assert_eq!(get(missing).await.expect("answered").status(), 404, "{missing}");
        }
        let config: Value = get("/config.json").await.expect("answered").json().await.expect("JSON");
        assert_eq!(
            config,
            json!({"stage": "dev", "websocketUrl": "ws://127.0.0.1:1/dev", "httpUrl": "http://127.0.0.1:2",
                   "maxListenersPerSession": 500, "localTokens": true})
        );

        let token = |origin: Option<&str>, body: &str| {
            let request = client.post(format!("{}/local-token", console.url())).body(body.to_owned());
            match origin {
                Some(origin) => request.header(header::ORIGIN, origin),
                None => request,
            }
            .send()
        };
        let issued: Value = token(Some(&own_origin), "").await.expect("answered").json().await.expect("JSON");
        let issued_claims = claims(issued["token"].as_str().expect("a token"));
        assert_eq!(issued_claims["sub"], DEFAULT_SPEAKER);
        assert_eq!(issued_claims["iss"], crate::identity::LOCAL_ISSUER);
        assert_eq!(issued_claims["token_use"], "access", "speakers send access tokens");
        assert!(issued_claims.get("aud").is_none() && issued_claims.get("email").is_none(), "{issued_claims}");
        assert_eq!(issued["expiresIn"], LOCAL_TOKEN_SECONDS);
        let named: Value = token(None, r#"{"sub":"ada"}"#).await.expect("answered").json().await.expect("JSON");
        assert_eq!(claims(named["token"].as_str().expect("a token"))["sub"], "ada");
        let elsewhere = token(Some("http://evil.example"), "").await.expect("answered");
        assert_eq!(elsewhere.status(), 403, "another page's request is refused");
        assert!(elsewhere.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(), "no CORS for tokens");
        assert_eq!(token(None, r#"{"sub":"a b"}"#).await.expect("answered").status(), 400);
        assert_eq!(token(None, "[]").await.expect("answered").status(), 400);
        console.stop().await;
    }

    #[test]
    fn speaker_names_are_short_and_plain() {
        assert!(is_speaker_name("console-speaker"));
        assert!(is_speaker_name("ada@example.com"));
        assert!(!is_speaker_name(""));
        assert!(!is_speaker_name("a b"));
        assert!(!is_speaker_name(&"x".repeat(65)));
    }
}

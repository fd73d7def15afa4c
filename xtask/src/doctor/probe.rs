//! Check group `probe`: what a real client gets from the live stage, over the network. The
//! three probes run at the same time, every network step under a timeout, so no stage can
//! make doctor hang; `--no-probe` skips them all.
//!
//! - `probe.listener` ([`listener`]): a tokenless listener of a session that cannot exist must
//!   be refused with 404 by the `$connect` function; any other answer says where the handshake
//!   stopped;
//! - `probe.speaker` ([`speaker`], only with `--token`): a speaker connects with the token,
//!   naming no session, heartbeats, must get `heartbeatAck`, and closes cleanly; it leaves
//!   nothing behind, and the token is never printed;
//! - `probe.http` ([`http`]): the HTTP API's `GET /health` answers 200, with no token.
//!
//! The WebSocket URL is `--websocket-url`, else the stack's `WebSocketUrl` output; the HTTP
//! API's base URL is `--http-url`, else its `HttpUrl` output.

mod http;
mod listener;
mod speaker;

use super::live;
use super::{Check, Context, stack};
use stacks::StageConfig;
use std::time::Duration;

const GROUP: &str = "probe";

/// What the probes reach, and with what: doctor's flags.
#[derive(Clone, Copy)]
pub(super) struct Targets<'a> {
    /// `--websocket-url` (else the stack's `WebSocketUrl` output).
    pub(super) websocket_url: Option<&'a str>,
    /// `--http-url` (else the stack's `HttpUrl` output).
    pub(super) http_url: Option<&'a str>,
    /// `--token`: a speaker token. Without it the speaker probe is skipped.
    pub(super) token: Option<&'a str>,
    /// `--no-probe`: every probe skipped.
    pub(super) skip: bool,
}

impl std::fmt::Debug for Targets<'_> {
    /// As derived, but never showing the token.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Targets")
            .field("websocket_url", &self.websocket_url)
            .field("http_url", &self.http_url)
            .field("token", &self.token.map(|_| "…"))
            .field("skip", &self.skip)
            .finish()
    }
}

/// The group's checks: listener, speaker, HTTP, in that order.
pub(super) async fn checks(context: &Context, targets: &Targets<'_>) -> Vec<Check> {
    let stage = &context.stage;
    if targets.skip {
        return [listener::ID, speaker::ID, http::ID]
            .into_iter()
            .map(|id| Check::skip(GROUP, id, "skipped (--no-probe)"))
            .collect();
    }
    let websocket_url = targets.websocket_url.or_else(|| context.output(stack::WEBSOCKET_URL));
    let http_url = targets.http_url.or_else(|| context.output(stack::HTTP_URL));
    let listener_probe = async {
        match websocket_url {
            Some(url) => listener::probe(stage, url).await,
            None => no_websocket_url(stage, listener::ID),
        }
    };
    let speaker_probe = async {
        match (targets.token, websocket_url) {
            (None, _) => Check::skip(GROUP, speaker::ID, "skipped: pass --token to probe a speaker"),
            (Some(_), None) => no_websocket_url(stage, speaker::ID),
            (Some(token), Some(url)) => speaker::probe(stage, url, token, speaker::Timeouts::DEFAULT).await,
        }
    };
    let http_probe = async {
        match http_url {
            Some(url) => http::probe(stage, url, http::TIMEOUT).await,
            None => Check::fail(
                GROUP,
                http::ID,
                "no HTTP URL to probe: the stack has no HttpUrl output",
                format!("pass --http-url, or deploy the stage: {}", deploy(stage)),
            ),
        }
    };
    let (listener, speaker, http) = tokio::join!(listener_probe, speaker_probe, http_probe);
    vec![listener, speaker, http]
}

/// The failed check of a WebSocket probe that has no URL to open.
fn no_websocket_url(stage: &StageConfig, id: &str) -> Check {
    Check::fail(
        GROUP,
        id,
        "no WebSocket URL to probe: the stack has no WebSocketUrl output",
        format!("pass --websocket-url, or deploy the stage: {}", deploy(stage)),
    )
}

/// The command that deploys `stage` from the synthesized template.
fn deploy(stage: &StageConfig) -> String {
    live::deploy_command(stage)
}

/// The command that shows a contract function's recent log lines.
fn function_logs(stage: &StageConfig, function: &str) -> String {
    format!("cargo xtask logs --stage {} --function {function}", stage.name)
}

/// `10s`, `0.5s`: a timeout as the report states it.
fn seconds(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

/// What the probes' unit tests share: local servers to talk to, and the judgment of each way a
/// probe can end.
#[cfg(test)]
mod test_support {
    use super::Check;
    use crate::doctor::Status;
    use std::fmt::Debug;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A server that answers every request (a WebSocket handshake, `GET /health`) with
    /// `status`, or holds every connection unanswered when `None`; its address.
    pub(super) async fn answering(status: Option<u16>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut stream, _)) = listener.accept().await {
                let Some(status) = status else {
                    held.push(stream);
                    continue;
                };
                let mut buffer = [0_u8; 4096];
                let _ = stream.read(&mut buffer).await;
                let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        });
        address
    }

    /// An address nothing listens on: a connection to it is refused.
    pub(super) async fn closed_port() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
        listener.local_addr().expect("address")
    }

    /// Asserts that `judge` fails check `id` for each outcome, with a message containing the
    /// text given with it, and a fix.
    pub(super) fn assert_each_fails<O: Clone + Debug>(id: &str, cases: &[(O, &str)], judge: impl Fn(O) -> Check) {
        for (outcome, expected) in cases {
            let check = judge(outcome.clone());
            assert_eq!(check.status, Status::Fail, "{outcome:?}");
            assert_eq!(check.id, id);
            assert!(check.message.contains(expected), "{outcome:?}: {}", check.message);
            assert!(!check.fix.is_empty(), "{outcome:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;
    use crate::doctor::stack::LiveStack;
    use test_support::closed_port;

    fn context(outputs: &[(&str, &str)]) -> Context {
        let stack = LiveStack {
            status: "UPDATE_COMPLETE".into(),
            status_reason: None,
            outputs: outputs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect(),
            resources: Default::default(),
        };
        Context {
            stage: stacks::stages::dev(),
            synthesized: serde_json::Value::Null,
            sdk: aws_config::SdkConfig::builder().build(),
            stack: Some(stack),
            websocket: Ok(None),
            since: Duration::from_secs(3600),
            artifacts: std::path::PathBuf::new(),
        }
    }

    fn ids_and_statuses(checks: &[Check]) -> Vec<(&str, Status)> {
        checks.iter().map(|check| (check.id.as_str(), check.status)).collect()
    }

    #[tokio::test]
    async fn no_probe_skips_all_three() {
        let targets = Targets { websocket_url: None, http_url: None, token: Some("secret.jwt"), skip: true };
        assert!(!format!("{targets:?}").contains("secret"), "{targets:?}");
        let probed = checks(&context(&[]), &targets).await;
        assert_eq!(
            ids_and_statuses(&probed),
            [("probe.listener", Status::Skip), ("probe.speaker", Status::Skip), ("probe.http", Status::Skip)]
        );
        assert!(probed.iter().all(|check| check.message == "skipped (--no-probe)"));
    }

    #[tokio::test]
    async fn without_urls_or_a_token_each_probe_says_what_it_needs() {
        let targets = Targets { websocket_url: None, http_url: None, token: None, skip: false };
        let probed = checks(&context(&[]), &targets).await;
        assert_eq!(
            ids_and_statuses(&probed),
            [("probe.listener", Status::Fail), ("probe.speaker", Status::Skip), ("probe.http", Status::Fail)]
        );
        assert!(probed[0].message.contains("no WebSocketUrl output"), "{}", probed[0].message);
        assert!(probed[1].message.contains("pass --token to probe a speaker"), "{}", probed[1].message);
        assert!(probed[2].message.contains("no HttpUrl output"), "{}", probed[2].message);
        assert!(probed[2].fix.contains("--http-url"), "{}", probed[2].fix);

        let targets = Targets { token: Some("t"), ..targets };
        let probed = checks(&context(&[]), &targets).await;
        assert_eq!(probed[1].status, Status::Fail);
        assert!(probed[1].message.contains("no WebSocketUrl output"), "{}", probed[1].message);
    }

    #[tokio::test]
    async fn the_stack_outputs_are_the_default_urls() {
        // Closed ports: each probe fails at once, naming the URL it took from the outputs.
        let websocket_url = format!("ws://{}/dev", closed_port().await);
        let http_url = format!("http://{}", closed_port().await);
        let context = context(&[("WebSocketUrl", &websocket_url), ("HttpUrl", &http_url)]);
        let targets = Targets { websocket_url: None, http_url: None, token: None, skip: false };
        let probed = checks(&context, &targets).await;
        assert!(probed[0].message.contains(&websocket_url), "{}", probed[0].message);
        assert!(probed[2].message.contains(&format!("{http_url}/health")), "{}", probed[2].message);
    }
}

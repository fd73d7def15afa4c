//! `probe.http`: the HTTP API's `GET {base}/health` must answer 200 within [`TIMEOUT`],
//! with no token (PROTOCOL.md: anyone). Redirects are not followed: a 3xx is reported as
//! it is.

use super::{Check, GROUP, deploy, function_logs, seconds};
use stacks::StageConfig;
use std::time::Duration;

/// This probe's check id.
pub(super) const ID: &str = "probe.http";

/// How long the request may take, connection and TLS included.
pub(super) const TIMEOUT: Duration = Duration::from_secs(10);

/// How the request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The HTTP status it was answered with.
    Status(u16),
    /// No answer in time.
    Timeout,
    /// No HTTP answer at all (DNS, TCP, TLS), with the error.
    Unreachable(String),
}

/// `{base}/health` (the `HttpUrl` output has no trailing slash; a typed one may).
fn url(base: &str) -> String {
    format!("{}/health", base.trim_end_matches('/'))
}

/// Requests `GET {base}/health` and judges the answer.
pub(super) async fn probe(stage: &StageConfig, base: &str, timeout: Duration) -> Check {
    let url = url(base);
    let outcome = request(&url, timeout).await;
    diagnose(stage, &url, timeout, &outcome)
}

/// An error with its causes, as one line (library errors often keep the useful part, such as
/// "dns error" or "invalid peer certificate", in a source).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `GET url`, under `timeout`: the status it was answered with, or why there was none.
async fn request(url: &str, timeout: Duration) -> Outcome {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build();
    let client = match client {
        Ok(client) => client,
        Err(error) => return Outcome::Unreachable(error_chain(&error)),
    };
    // The client's own timeouts end the request; this one is the guarantee.
    match tokio::time::timeout(timeout + Duration::from_secs(1), client.get(url).send()).await {
        Err(_) => Outcome::Timeout,
        Ok(Ok(response)) => Outcome::Status(response.status().as_u16()),
        Ok(Err(error)) if error.is_timeout() => Outcome::Timeout,
        Ok(Err(error)) => Outcome::Unreachable(error_chain(&error)),
    }
}

/// What `outcome` means for clients, and the fix.
fn diagnose(stage: &StageConfig, url: &str, timeout: Duration, outcome: &Outcome) -> Check {
    let fail = |message: String, fix: String| Check::fail(GROUP, ID, message, fix);
    let deploy = deploy(stage);
    let logs = function_logs(stage, "http");
    match outcome {
        Outcome::Status(200) => Check::pass(GROUP, ID, format!("GET /health answered 200 ({url})")),
        Outcome::Status(status @ (401 | 403)) => fail(
            format!(
                "GET /health answered {status} ({url}): the health route asks for authorization (its \
                 authorization is no longer NONE: a console edit?); health checks and uptime monitors see the \
                 service as down"
            ),
            format!("the route `GET /health` must have authorization NONE: `{deploy}` restores it"),
        ),
        Outcome::Status(404) => fail(
            format!(
                "GET /health answered 404 ({url}): the HTTP API has no route `GET /health`, or the URL is not \
                 the stage's HTTP API (its base is the HttpUrl output, with no stage path)"
            ),
            format!("check the URL (--http-url, else the stack's HttpUrl output); `{deploy}` restores the route"),
        ),
        Outcome::Status(429) => Check::warn(
            GROUP,
            ID,
            format!("GET /health answered 429 ({url}): the HTTP API is throttling this address or the stage"),
            "wait a minute and run doctor again; if it persists, see the stage's throttling limits",
        ),
        Outcome::Status(status @ 500..=599) => fail(
            format!(
                "GET /health answered {status} ({url}): the http function failed, timed out or could not be \
                 invoked; the whole HTTP API (sessions) is likely failing too"
            ),
            format!("`{logs}`; check its environment and invoke permission (see the functions checks)"),
        ),
        Outcome::Status(status) => fail(
            format!("GET /health answered {status} instead of 200 ({url})"),
            format!("check the URL (--http-url, else the stack's HttpUrl output) and `{logs}`"),
        ),
        Outcome::Timeout => fail(
            format!("GET /health got no answer within {} ({url}): HTTP clients hang", seconds(timeout)),
            "check the URL (--http-url), the network path and the stage's throttling".to_owned(),
        ),
        Outcome::Unreachable(error) => fail(
            format!("GET /health failed before any HTTP answer ({url}): {error}"),
            "check the URL (--http-url, else the stack's HttpUrl output), DNS and TLS".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;
    use crate::doctor::probe::test_support::{self, assert_each_fails};

    fn judged(outcome: Outcome) -> Check {
        diagnose(&stacks::stages::dev(), "https://x/health", TIMEOUT, &outcome)
    }

    #[test]
    fn each_answer_says_what_broke() {
        assert_eq!(judged(Outcome::Status(200)).status, Status::Pass);
        let cases = [
            (Outcome::Status(401), "asks for authorization"),
            (Outcome::Status(403), "asks for authorization"),
            (Outcome::Status(404), "no route `GET /health`"),
            (Outcome::Status(500), "the http function failed"),
            (Outcome::Status(503), "answered 503"),
            (Outcome::Status(301), "301 instead of 200"),
            (Outcome::Timeout, "no answer within 10s"),
            (Outcome::Unreachable("dns error".into()), "dns error"),
        ];
        assert_each_fails("probe.http", &cases, judged);
        assert!(judged(Outcome::Status(401)).fix.contains("authorization NONE"));
        assert!(judged(Outcome::Status(500)).fix.contains("cargo xtask logs --stage dev --function http"));
        assert_eq!(judged(Outcome::Status(429)).status, Status::Warn);
    }

    #[test]
    fn the_health_url_is_the_base_and_health() {
        assert_eq!(
            url("https://a.execute-api.eu-west-1.amazonaws.com"),
            "https://a.execute-api.eu-west-1.amazonaws.com/health"
        );
        assert_eq!(url("http://127.0.0.1:1/"), "http://127.0.0.1:1/health");
    }

    /// `http://` of a server that answers every request with `status`, or never when `None`.
    async fn answering(status: Option<u16>) -> String {
        format!("http://{}", test_support::answering(status).await)
    }

    #[tokio::test]
    async fn the_request_reports_the_status_a_timeout_or_no_answer() {
        for status in [200, 401, 404, 500] {
            let health = url(&answering(Some(status)).await);
            assert_eq!(request(&health, TIMEOUT).await, Outcome::Status(status));
        }
        let silent = url(&answering(None).await);
        assert_eq!(request(&silent, Duration::from_millis(300)).await, Outcome::Timeout);
        let closed = format!("http://{}/health", test_support::closed_port().await);
        let outcome = request(&closed, TIMEOUT).await;
        assert!(matches!(outcome, Outcome::Unreachable(_)), "{outcome:?}");
        let check = probe(&stacks::stages::dev(), &answering(Some(200)).await, TIMEOUT).await;
        assert_eq!(check.status, Status::Pass, "{check:?}");
    }
}

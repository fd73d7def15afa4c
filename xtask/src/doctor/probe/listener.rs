//! `probe.listener`: a tokenless listener opens a WebSocket to the stage for a session id that
//! cannot exist ([`MISSING_SESSION`]). On a healthy stage the `$connect` authorizer lets it
//! through and the connection function refuses it with 404; any other answer says where the
//! handshake stopped (AWS_FACTS 2, 3 and 15): 401 the identity source refused it before any
//! function ran, 403 the authorizer denied it, 500 the authorizer failed, 502 `$connect`
//! failed; an accepted handshake means `$connect` did not run or did not look the session up.

use super::{Check, GROUP, deploy};
use stacks::StageConfig;
use std::time::Duration;
use tokio_tungstenite::tungstenite;

/// This probe's check id.
pub(super) const ID: &str = "probe.listener";

/// A session id in the valid format that no session is ever given (the id words never include
/// these two).
const MISSING_SESSION: &str = "doctor-probe-999";

/// How long the handshake may take before it is reported as a timeout.
const TIMEOUT: Duration = Duration::from_secs(10);

/// How the probe's handshake ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The server answered the upgrade with this HTTP status.
    Status(u16),
    /// The upgrade was accepted (101).
    Accepted,
    /// No answer within [`TIMEOUT`].
    Timeout,
    /// The connection failed before any HTTP answer (DNS, TCP, TLS), with the error.
    Unreachable(String),
}

/// The URL a listener of [`MISSING_SESSION`] opens.
fn url(base: &str) -> String {
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}sessionId={MISSING_SESSION}&targetLanguage=de")
}

/// Opens a tokenless listener handshake to `base` and judges the answer.
pub(super) async fn probe(stage: &StageConfig, base: &str) -> Check {
    let url = url(base);
    let outcome = match tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(url.as_str())).await {
        Err(_) => Outcome::Timeout,
        Ok(Ok((mut stream, _))) => {
            // Best effort: the verdict is already known.
            let _ = tokio::time::timeout(TIMEOUT, stream.close(None)).await;
            Outcome::Accepted
        }
        Ok(Err(tungstenite::Error::Http(response))) => Outcome::Status(response.status().as_u16()),
        Ok(Err(error)) => Outcome::Unreachable(error.to_string()),
    };
    diagnose(stage, &url, &outcome)
}

/// What `outcome` means for clients, and the fix.
fn diagnose(stage: &StageConfig, url: &str, outcome: &Outcome) -> Check {
    let logs = format!("read the function's recent logs (CloudWatch Logs, stack {})", stage.stack_name);
    let deploy = deploy(stage);
    match outcome {
        Outcome::Status(404) => {
            Check::pass(GROUP, ID, format!("a tokenless listener of a missing session got 404 from $connect ({url})"))
        }
        Outcome::Status(401) => Check::fail(
            GROUP,
            ID,
            format!(
                "a tokenless listener got 401 ({url}): the $connect authorizer's identity source refused it before \
                 any function ran; every listener without a token is refused (browsers see close 1006)"
            ),
            format!(
                "remove the IdentitySource from the $connect authorizer (websocket.connect-authorizer names it): \
                 `{deploy}` deploys the synthesized template, which has none"
            ),
        ),
        Outcome::Status(403) => Check::fail(
            GROUP,
            ID,
            format!(
                "a tokenless listener got 403 ({url}): the authorizer denied it (or $connect requires IAM \
                 signatures); listeners are refused (browsers see close 1006)"
            ),
            format!("the authorizer must allow anonymous listeners: check its deployed code and {logs}"),
        ),
        Outcome::Status(500) => Check::fail(
            GROUP,
            ID,
            format!(
                "a tokenless listener got 500 ({url}): the authorizer failed (crashed, timed out or answered \
                 malformed); every connection is refused (browsers see close 1006)"
            ),
            format!("{logs} for the authorizer; check its environment and its invoke permission"),
        ),
        Outcome::Status(502) => Check::fail(
            GROUP,
            ID,
            format!(
                "a tokenless listener got 502 ({url}): the $connect function failed or could not be invoked; \
                 every connection is refused (browsers see close 1006)"
            ),
            format!("{logs} for the connection function; check its environment, role and invoke permission"),
        ),
        Outcome::Status(429) => Check::warn(
            GROUP,
            ID,
            format!("a tokenless listener got 429 ({url}): this address is rate limited (too many probes?)"),
            "wait a minute and run doctor again",
        ),
        Outcome::Status(status) => Check::fail(
            GROUP,
            ID,
            format!(
                "a tokenless listener of a missing session got {status} instead of 404 ({url}): $connect did not \
                 answer as the code does"
            ),
            logs,
        ),
        Outcome::Accepted => Check::fail(
            GROUP,
            ID,
            format!(
                "a listener of a session that does not exist was accepted ({url}): $connect does not run the \
                 connection function (route or integration missing), so listeners are connected to nothing"
            ),
            format!("see the websocket.route.$connect check; `{deploy}` restores the route"),
        ),
        Outcome::Timeout => Check::fail(
            GROUP,
            ID,
            format!(
                "no answer to the WebSocket handshake within {}s ({url}): clients hang, then see close 1006",
                TIMEOUT.as_secs()
            ),
            "check the URL (--websocket-url), the network path and the stage's throttling",
        ),
        Outcome::Unreachable(error) => Check::fail(
            GROUP,
            ID,
            format!("the WebSocket handshake failed before any HTTP answer ({url}): {error}"),
            "check the URL (--websocket-url, else the stack's WebSocketUrl output), DNS and TLS",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;
    use crate::doctor::probe::test_support::assert_each_fails;

    fn judged(outcome: Outcome) -> Check {
        diagnose(&stacks::stages::dev(), "wss://x/dev", &outcome)
    }

    #[test]
    fn each_answer_names_where_the_handshake_stopped() {
        assert_eq!(judged(Outcome::Status(404)).status, Status::Pass);
        let cases = [
            (Outcome::Status(401), "identity source refused it before any function ran"),
            (Outcome::Status(403), "the authorizer denied it"),
            (Outcome::Status(500), "the authorizer failed"),
            (Outcome::Status(502), "the $connect function failed"),
            (Outcome::Status(418), "got 418 instead of 404"),
            (Outcome::Accepted, "was accepted"),
            (Outcome::Timeout, "no answer to the WebSocket handshake within 10s"),
            (Outcome::Unreachable("tls: bad certificate".into()), "tls: bad certificate"),
        ];
        assert_each_fails("probe.listener", &cases, judged);
        assert!(judged(Outcome::Status(401)).fix.contains("remove the IdentitySource"));
        assert_eq!(judged(Outcome::Status(429)).status, Status::Warn);
    }

    #[test]
    fn the_listener_url_names_a_missing_session_and_a_language() {
        assert_eq!(url("wss://a/dev"), "wss://a/dev?sessionId=doctor-probe-999&targetLanguage=de");
        assert_eq!(url("ws://a/?x=1"), "ws://a/?x=1&sessionId=doctor-probe-999&targetLanguage=de");
    }
}

//! Property tests of `$connect`'s reading of its query string and token, through the
//! function's public entry point (`ConnectionFunction::handle`), without a database: every
//! DynamoDB call fails at once in an interceptor that counts it.
//!
//! Arbitrary `sessionId`, `targetLanguage`, `previousConnectionId` and `token` parameters (and
//! `Authorization` headers) are refused before the store is asked anything when the client got
//! them wrong, with the status and code PROTOCOL.md and docs/protocol.md give: 401 `UNAUTHORIZED` for a
//! token that does not verify, then 400 `MISSING_PARAMETER` (empty or absent, when the role
//! needs it) or `INVALID_PARAMETER` naming the parameter. Parameters that are right reach the
//! store. Every answer is a documented status with a JSON `{code, message}` body.
//!
//! Each property runs [`DEFAULT_CASES`] cases unless `PROPTEST_CASES` says otherwise
//! (`cargo xtask fuzz` runs many more). Failures are not persisted to files: a failure prints
//! the smallest input found, and it becomes a named regression test.

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use connection_function::{ConnectAuth, ConnectionFunction, MAX_CONNECTION_ID_CHARS, PREVIOUS_CONNECTION_PARAM};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Value, json};
use session_core::config::Limits;
use session_core::events::{RequestContext, WebSocketEvent, WebSocketResponse};
use session_core::fanout::Notifier;
use session_core::ids::SessionId;
use session_core::jwt::signing::LocalSigner;
use session_core::jwt::{JwksSource, JwtConfig, Verifier};
use session_core::protocol::ErrorCode;
use session_core::store::{Store, TableNames};
use session_core::validation::LanguageCode;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// Cases per property when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 256;

/// The configuration of every property: `PROPTEST_CASES` (and proptest's other variables)
/// when set, else [`DEFAULT_CASES`]; no failure files. `ProptestConfig::default()` reads the
/// environment and a field set afterwards overrides it, so the default is set only when the
/// variable is absent.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = DEFAULT_CASES;
    }
    config.failure_persistence = None;
    config
}

const ISSUER: &str = "https://issuer.example.com";
const AUDIENCE: &str = "session-service";
const REGION: &str = "eu-west-1";

/// Fails every DynamoDB call before it is sent, and counts them.
#[derive(Debug, Clone, Default)]
struct NoDatabase {
    calls: Arc<AtomicUsize>,
}

impl Intercept for NoDatabase {
    fn name(&self) -> &'static str {
        "NoDatabase"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err("the property tests have no database".into())
    }
}

static SIGNER: LazyLock<LocalSigner> =
    LazyLock::new(|| LocalSigner::generate("property-key").expect("an RSA key is generated"));

static RUNTIME: LazyLock<tokio::runtime::Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime"));

/// The function, verifying tokens itself, with a store whose every call fails and is counted.
fn function(database: &NoDatabase) -> ConnectionFunction {
    let dynamodb = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new(REGION))
        .endpoint_url("http://127.0.0.1:9")
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "test"))
        .interceptor(database.clone())
        .build();
    let tables = TableNames {
        sessions: "sessions".to_owned(),
        connections: "connections".to_owned(),
        rate_limits: "rate-limits".to_owned(),
    };
    let management = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(aws_sdk_apigatewaymanagement::config::BehaviorVersion::latest())
        .region(aws_sdk_apigatewaymanagement::config::Region::new(REGION))
        .credentials_provider(aws_sdk_apigatewaymanagement::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .build();
    ConnectionFunction {
        store: Store::new(aws_sdk_dynamodb::Client::from_conf(dynamodb), tables),
        notifier: Notifier::new(management, Some("http://127.0.0.1:9".to_owned())),
        limits: Limits::default(),
        auth: ConnectAuth::SelfVerify,
        verifier: Verifier::new(JwtConfig::new(ISSUER, [AUDIENCE], JwksSource::Inline(SIGNER.jwks_json()))),
    }
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(0))
}

/// A token that verifies, for `user`.
fn good_token(user: &str) -> String {
    let claims = json!({"sub": user, "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 3600});
    SIGNER.sign(&claims).expect("signed")
}

/// A parameter's value: a valid one, empty, close to valid, or anything.
fn value(valid: BoxedStrategy<String>) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => valid,
        1 => Just(String::new()),
        2 => select(vec![" ", "EN", "xx", "e", "quiet-harbor-099", "quiet--417", "a b", "\u{0}", "é", "🦀"])
            .prop_map(str::to_owned),
        2 => ".{0,20}",
        1 => "[!-~]{120,135}",
    ]
}

fn session_ids() -> BoxedStrategy<String> {
    "[a-z]{1,10}-[a-z]{1,10}-[1-9][0-9]{2}".boxed()
}

fn languages() -> BoxedStrategy<String> {
    select(vec!["en", "de", "fr", "ja", "zu"]).prop_map(str::to_owned).boxed()
}

fn connection_ids() -> BoxedStrategy<String> {
    "[A-Za-z0-9=_-]{1,20}".boxed()
}

/// How the caller presents a token: none, a valid one, or anything, in the query or a header.
#[derive(Debug, Clone)]
enum Token {
    None,
    Valid { in_header: bool },
    Other { token: String, in_header: bool },
}

fn token() -> impl Strategy<Value = Token> {
    prop_oneof![
        3 => Just(Token::None),
        2 => any::<bool>().prop_map(|in_header| Token::Valid { in_header }),
        2 => ("[A-Za-z0-9._-]{1,60}|.{1,20}", any::<bool>())
            .prop_map(|(token, in_header)| Token::Other { token, in_header }),
    ]
}

/// A `$connect` event as generated: its parameters (absent or a value) and its token.
#[derive(Debug, Clone)]
struct Connect {
    session_id: Option<String>,
    language: Option<String>,
    previous: Option<String>,
    token: Token,
    extras: HashMap<String, String>,
}

impl Connect {
    fn event(&self) -> WebSocketEvent {
        let mut query: HashMap<String, String> = self.extras.clone();
        let mut headers = HashMap::from([("Host".to_owned(), "abc.execute-api.eu-west-1.amazonaws.com".to_owned())]);
        for (name, value) in [
            ("sessionId", &self.session_id),
            ("targetLanguage", &self.language),
            (PREVIOUS_CONNECTION_PARAM, &self.previous),
        ] {
            match value {
                Some(value) => query.insert(name.to_owned(), value.clone()),
                None => query.remove(name),
            };
        }
        query.remove("token");
        let (token, in_header) = match &self.token {
            Token::None => (None, false),
            Token::Valid { in_header } => (Some(good_token("user-42")), *in_header),
            Token::Other { token, in_header } => (Some(token.clone()), *in_header),
        };
        match (token, in_header) {
            (Some(token), true) => {
                headers.insert("Authorization".to_owned(), format!("Bearer {token}"));
            }
            (Some(token), false) => {
                query.insert("token".to_owned(), token);
            }
            (None, _) => {}
        }
        let mut context = RequestContext {
            route_key: "$connect".to_owned(),
            event_type: "CONNECT".to_owned(),
            connection_id: "TnPsB5lcASOizOQ=".to_owned(),
            domain_name: "abc.execute-api.eu-west-1.amazonaws.com".to_owned(),
            stage: "dev".to_owned(),
            api_id: "abc".to_owned(),
            request_id: "req".to_owned(),
            ..RequestContext::default()
        };
        context.identity.source_ip = "198.51.100.7".to_owned();
        WebSocketEvent {
            request_context: context,
            headers: Some(headers),
            query_string_parameters: Some(query),
            ..WebSocketEvent::default()
        }
    }

    /// Whether the token, as presented, verifies (a token that is only whitespace, or empty,
    /// counts as none).
    fn token_refused(&self) -> bool {
        match &self.token {
            Token::None | Token::Valid { .. } => false,
            Token::Other { token, in_header } => !(*in_header && token.trim().is_empty()),
        }
    }

    fn is_user(&self) -> bool {
        matches!(self.token, Token::Valid { .. })
    }

    /// The parameters the client got wrong, with the code each is refused with.
    fn bad_parameters(&self) -> Vec<(&'static str, ErrorCode)> {
        let judge = |name: &'static str, value: &Option<String>, valid: &dyn Fn(&str) -> bool| match value {
            Some(value) if value.is_empty() => Some((name, ErrorCode::MissingParameter)),
            Some(value) if !valid(value) => Some((name, ErrorCode::InvalidParameter)),
            _ => None,
        };
        let connection_id =
            |id: &str| id.len() <= MAX_CONNECTION_ID_CHARS && id.bytes().all(|byte| byte.is_ascii_graphic());
        [
            judge("sessionId", &self.session_id, &|id| SessionId::parse(id).is_ok()),
            judge("targetLanguage", &self.language, &|code| LanguageCode::parse(code).is_ok()),
            judge(PREVIOUS_CONNECTION_PARAM, &self.previous, &connection_id),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The parameter the role needs and lacks, once every parameter given is right.
    fn missing_for_role(&self) -> Option<&'static str> {
        match (&self.language, self.is_user(), &self.session_id) {
            (Some(_), _, None) => Some("sessionId"),
            (Some(_), _, Some(_)) | (None, true, _) => None,
            (None, false, None) => Some("sessionId"),
            (None, false, Some(_)) => Some("targetLanguage"),
        }
    }
}

fn connect() -> impl Strategy<Value = Connect> {
    (
        prop::option::of(value(session_ids())),
        prop::option::of(value(languages())),
        prop::option::weighted(0.3, value(connection_ids())),
        token(),
        prop::collection::hash_map("[a-zA-Z]{1,8}", ".{0,10}", 0..3),
    )
        .prop_map(|(session_id, language, previous, token, extras)| Connect {
            session_id,
            language,
            previous,
            token,
            extras,
        })
}

/// A refusal's status, code and field, after checking it is JSON `{code, message, details?,
/// retryAfter?}` with a documented code at its documented status.
fn refusal(response: &WebSocketResponse) -> Result<(u16, ErrorCode, Option<String>), TestCaseError> {
    let body: Value = serde_json::from_str(response.body.as_deref().unwrap_or(""))
        .map_err(|error| TestCaseError::fail(format!("not JSON ({error}): {response:?}")))?;
    let code: ErrorCode =
        serde_json::from_value(body["code"].clone()).map_err(|_| TestCaseError::fail(format!("code: {body}")))?;
    prop_assert!(body["message"].as_str().is_some_and(|message| !message.is_empty()), "{}", body);
    prop_assert_eq!(response.status_code, code.http_status(), "{}", body);
    Ok((response.status_code, code, body["details"]["field"].as_str().map(str::to_owned)))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn connect_parameters_are_refused_as_documented_before_the_store(connect in connect()) {
        let database = NoDatabase::default();
        let response = RUNTIME.block_on(function(&database).handle(&connect.event()));
        let calls = database.calls.load(Ordering::SeqCst);
        prop_assert_ne!(response.status_code, 200, "nothing is admitted without a database");
        let (status, code, field) = refusal(&response)?;
        let bad = connect.bad_parameters();
        if connect.token_refused() {
            prop_assert_eq!((status, code), (401, ErrorCode::Unauthorized));
            prop_assert_eq!(calls, 0);
        } else if !bad.is_empty() {
            let field = field.unwrap_or_default();
            prop_assert!(bad.contains(&(field.as_str(), code)), "{:?} {} but the bad parameters are {:?}", code, field, bad);
            prop_assert_eq!(calls, 0, "the store was asked about a request refused for its parameters");
        } else if let Some(missing) = connect.missing_for_role() {
            prop_assert_eq!((code, field.as_deref()), (ErrorCode::MissingParameter, Some(missing)));
            prop_assert_eq!(calls, 0);
        } else {
            prop_assert!(calls > 0, "right parameters reach the store");
            prop_assert!(status >= 500, "a store that fails is not the client's fault: {:?}", code);
        }
    }
}

#[test]
fn the_default_case_count_applies_only_without_proptest_cases() {
    let expected = std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(DEFAULT_CASES);
    assert_eq!(config().cases, expected);
}

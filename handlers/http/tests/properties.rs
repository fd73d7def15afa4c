//! Property tests of the HTTP function's request reading (`read_request`, the part of
//! `HttpFunction::handle` before the store): arbitrary route keys, methods, paths, path
//! parameters, headers, bodies (plain and base64) and authorizer claims are a request or a
//! documented refusal, never a panic and never a 500 for what a client sent.
//!
//! A refusal is JSON `{code, message, details?}` with a documented code and the status docs/protocol.md
//! gives it (the code's status; 404 for a route this function does not serve), and
//! names the field where the code is about one. The event itself is built as JSON and read
//! with serde, as the runtime reads it, so arbitrary headers also go through its reader.
//!
//! Each property runs [`DEFAULT_CASES`] cases unless `PROPTEST_CASES` says otherwise
//! (`cargo xtask fuzz` runs many more). Failures are not persisted to files: a failure prints
//! the smallest input found, and it becomes a named regression test.

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use aws_lambda_events::encodings::Body;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http_function::{Request, read_event, read_request};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value, json};
use session_core::ids::SessionId;
use session_core::protocol::ErrorCode;
use session_core::validation::{LanguageCode, QualityTier};

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

/// The route keys the function serves (the contract's).
fn served() -> Vec<String> {
    contract::functions::HTTP.http_routes.iter().map(|route| route.route_key()).collect()
}

/// Text that reaches the readers' rules more often than random text does.
fn interesting() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "",
            " ",
            "en",
            "de",
            "xx",
            "EN",
            "standard",
            "premium",
            "active",
            "paused",
            "ended",
            "quiet-harbor-417",
            "quiet-harbor-099",
            "null",
            "{}",
            "[]",
            "\u{0}",
            "🦀",
        ])
        .prop_map(str::to_owned),
        "[a-z]{1,8}-[a-z]{1,8}-[0-9]{3}",
        ".{0,40}",
    ]
}

/// Any JSON value, a few levels deep.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |float| serde_json::Number::from_f64(float).map(Value::Number)),
        interesting().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(interesting(), inner, 0..5)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A route key: one served, a method and path close to one, or anything.
fn route_key() -> impl Strategy<Value = String> {
    let method = select(vec!["GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS", "ANY", "get", ""]);
    let path = prop_oneof![
        select(vec!["/sessions", "/sessions/{id}", "/health", "/sessions/", "/", "/sessions/{proxy+}", ""])
            .prop_map(str::to_owned),
        "/[a-z{}/+-]{0,20}",
    ];
    prop_oneof![
        4 => select(served()),
        2 => (method, path).prop_map(|(method, path)| format!("{method} {path}")),
        1 => Just("$default".to_owned()),
        1 => ".{0,30}",
    ]
}

/// A body field's value: valid for one of the routes, near it, or anything.
fn body_field() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        1 => Just(None),
        4 => interesting().prop_map(|text| Some(Value::from(text))),
        2 => arb_json().prop_map(Some),
    ]
}

/// A body: none, text, JSON, or an object with the routes' fields; sometimes base64-encoded
/// (correctly or not) with the flag set.
fn body() -> impl Strategy<Value = (Option<String>, bool)> {
    let object =
        (body_field(), body_field(), body_field(), prop::collection::btree_map("[a-zA-Z]{1,8}", arb_json(), 0..3))
            .prop_map(|(source, tier, status, extras)| {
                let mut object: Map<String, Value> = extras.into_iter().collect();
                for (name, value) in [("sourceLanguage", source), ("qualityTier", tier), ("status", status)] {
                    if let Some(value) = value {
                        object.insert(name.to_owned(), value);
                    }
                }
                Value::Object(object).to_string()
            });
    let text = prop_oneof![
        4 => object,
        1 => arb_json().prop_map(|value| value.to_string()),
        1 => ".{0,60}",
        1 => Just(String::new()),
        1 => " {0,3}",
    ];
    (prop::option::of(text), 0..4u8).prop_map(|(text, encoding)| match (text, encoding) {
        (Some(text), 0) => (Some(STANDARD.encode(text)), true),
        (Some(text), 1) => (Some(text), true),
        (text, _) => (text, false),
    })
}

/// Headers as API Gateway passes them: lowercase names, printable values; and any text.
fn headers() -> impl Strategy<Value = Map<String, Value>> {
    let name = prop_oneof!["[a-z][a-z0-9-]{0,15}", Just("authorization".to_owned()), ".{0,10}"];
    let value = prop_oneof!["[ -~]{0,40}", ".{0,20}"];
    prop::collection::btree_map(name, value, 0..5)
        .prop_map(|headers| headers.into_iter().map(|(name, value)| (name, Value::from(value))).collect())
}

/// The JWT authorizer's claims, with or without `sub`.
fn claims() -> impl Strategy<Value = Option<Map<String, Value>>> {
    let sub = prop_oneof![Just(None), Just(Some(String::new())), "[a-z0-9-]{1,24}".prop_map(Some)];
    prop::option::of((sub, prop::collection::btree_map("[a-z_]{1,10}", "[ -~]{0,20}", 0..3))).prop_map(|claims| {
        claims.map(|(sub, extras)| {
            let mut claims: Map<String, Value> = extras.into_iter().map(|(k, v)| (k, Value::from(v))).collect();
            claims.remove("sub");
            if let Some(sub) = sub {
                claims.insert("sub".to_owned(), Value::from(sub));
            }
            claims
        })
    })
}

/// The `id` path parameter and others.
fn path_parameters() -> impl Strategy<Value = Option<Map<String, Value>>> {
    let id = prop_oneof![
        Just(None),
        "[a-z]{1,12}-[a-z]{1,12}-[1-9][0-9]{2}".prop_map(Some),
        interesting().prop_map(Some),
        ".{60,70}".prop_map(Some),
    ];
    prop::option::of((id, prop::collection::btree_map("[a-z]{1,6}", ".{0,10}", 0..2))).prop_map(|parameters| {
        parameters.map(|(id, extras)| {
            let mut parameters: Map<String, Value> = extras.into_iter().map(|(k, v)| (k, Value::from(v))).collect();
            parameters.remove("id");
            if let Some(id) = id {
                parameters.insert("id".to_owned(), Value::from(id));
            }
            parameters
        })
    })
}

/// What a generated event holds, for the oracle.
#[derive(Debug, Clone)]
struct Event {
    key: String,
    method: String,
    path: String,
    headers: Map<String, Value>,
    path_parameters: Option<Map<String, Value>>,
    body: Option<String>,
    base64: bool,
    claims: Option<Map<String, Value>>,
}

impl Event {
    fn to_json(&self) -> Value {
        let mut context = json!({
            "accountId": "123456789012",
            "apiId": "h7k2p9q4r1",
            "domainName": "h7k2p9q4r1.execute-api.eu-west-1.amazonaws.com",
            "http": {"method": self.method, "path": self.path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.24"},
            "requestId": "Bx3kdTM8joEEQ2w=",
            "routeKey": self.key,
            "stage": "$default",
            "timeEpoch": 1_795_633_281_000_i64,
        });
        if let Some(claims) = &self.claims {
            context["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
        }
        let mut event = json!({
            "version": "2.0",
            "routeKey": self.key,
            "rawPath": self.path,
            "rawQueryString": "",
            "headers": self.headers,
            "requestContext": context,
            "isBase64Encoded": self.base64,
        });
        if let Some(parameters) = &self.path_parameters {
            event["pathParameters"] = Value::Object(parameters.clone());
        }
        if let Some(body) = &self.body {
            event["body"] = Value::from(body.as_str());
        }
        event
    }

    fn sub(&self) -> Option<&str> {
        self.claims.as_ref()?.get("sub")?.as_str().filter(|sub| !sub.is_empty())
    }

    fn id(&self) -> Option<&str> {
        self.path_parameters.as_ref()?.get("id")?.as_str()
    }

    /// The body as the function must read it: `None` when it is not a JSON object.
    fn object(&self) -> Option<Map<String, Value>> {
        let text = self.body.as_deref().filter(|text| !text.is_empty())?;
        let bytes = if self.base64 { STANDARD.decode(text).ok()? } else { text.as_bytes().to_vec() };
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(object)) => Some(object),
            _ => None,
        }
    }
}

/// An HTTP method as a client may send it: a standard one or any other token.
fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec!["GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS"]).prop_map(str::to_owned),
        "[A-Za-z!#$%&'*+.^_`|~-]{1,12}",
    ]
}

fn event() -> impl Strategy<Value = Event> {
    (route_key(), method(), ".{0,20}", headers(), path_parameters(), body(), claims()).prop_map(
        |(key, method, path, headers, path_parameters, (body, base64), claims)| Event {
            key,
            method,
            path,
            headers,
            path_parameters,
            body,
            base64,
            claims,
        },
    )
}

/// A refusal as a client reads it.
#[derive(Debug)]
struct Refused {
    status: i64,
    code: ErrorCode,
    field: Option<String>,
}

/// Reads a refusal's status and body, checking it is JSON `{code, message, details?}` with a
/// documented code, `application/json`, and the documented status.
fn refused(response: &ApiGatewayV2httpResponse) -> Result<Refused, TestCaseError> {
    let content_type = response.headers.get("content-type").and_then(|value| value.to_str().ok());
    prop_assert_eq!(content_type, Some("application/json"));
    let Some(Body::Text(text)) = &response.body else {
        return Err(TestCaseError::fail(format!("no text body: {response:?}")));
    };
    let body: Value = serde_json::from_str(text).map_err(|error| TestCaseError::fail(error.to_string()))?;
    let code: ErrorCode =
        serde_json::from_value(body["code"].clone()).map_err(|_| TestCaseError::fail(format!("code: {body}")))?;
    prop_assert!(body["message"].as_str().is_some_and(|message| !message.is_empty()), "{}", body);
    let keys: Vec<&str> =
        body.as_object().map(|object| object.keys().map(String::as_str).collect()).unwrap_or_default();
    prop_assert!(keys.iter().all(|key| ["code", "message", "details"].contains(key)), "{}", body);
    let expected_status = if code == ErrorCode::UnknownAction { 404 } else { i64::from(code.http_status()) };
    prop_assert_eq!(response.status_code, expected_status, "{}", body);
    prop_assert!(response.status_code < 500, "a client's request answered {}: {}", response.status_code, body);
    let field = body["details"]["field"].as_str().map(str::to_owned);
    let about_a_field = matches!(code, ErrorCode::MissingParameter | ErrorCode::InvalidParameter);
    prop_assert_eq!(field.is_some(), about_a_field, "{}", body);
    Ok(Refused { status: response.status_code, code, field })
}

/// The fields each route reads.
fn fields_of(key: &str) -> &'static [&'static str] {
    match key {
        "POST /sessions" => &["sourceLanguage", "qualityTier"],
        "GET /sessions/{id}" | "DELETE /sessions/{id}" => &["id"],
        "PATCH /sessions/{id}" => &["id", "status"],
        _ => &[],
    }
}

fn check(event: &Event) -> Result<(), TestCaseError> {
    let request = read_event(event.to_json())
        .map_err(|error| TestCaseError::fail(format!("the event does not read: {error}")))?;
    let served = served().contains(&event.key);
    let needs_user = served && !event.key.starts_with("GET ");
    match read_request(&request) {
        Ok(read) => {
            prop_assert!(served, "{} was served", event.key);
            prop_assert!(!needs_user || event.sub().is_some(), "no caller on {}", event.key);
            let id_ok = || event.id().and_then(|id| SessionId::parse(id).ok());
            match read {
                Request::Health => prop_assert_eq!(event.key.as_str(), "GET /health"),
                Request::GetSession { id } => prop_assert_eq!(Some(id), id_ok()),
                Request::EndSession { user, id } => {
                    prop_assert_eq!(Some(user), event.sub());
                    prop_assert_eq!(Some(id), id_ok());
                }
                Request::UpdateSession { user, id, paused } => {
                    prop_assert_eq!(Some(user), event.sub());
                    prop_assert_eq!(Some(id), id_ok());
                    let status = event.object().and_then(|object| object.get("status").cloned());
                    prop_assert_eq!(status, Some(Value::from(if paused { "paused" } else { "active" })));
                }
                Request::CreateSession { user, source_language, quality_tier } => {
                    prop_assert_eq!(Some(user), event.sub());
                    let object = event.object().unwrap_or_default();
                    prop_assert_eq!(object.get("sourceLanguage"), Some(&Value::from(source_language.as_str())));
                    let tier = object.get("qualityTier").filter(|tier| !tier.is_null());
                    let expected = tier.and_then(Value::as_str).and_then(|tier| QualityTier::parse(tier).ok());
                    prop_assert_eq!(quality_tier, expected.unwrap_or_default());
                    prop_assert!(LanguageCode::parse(source_language.as_str()).is_ok());
                }
            }
        }
        Err(response) => {
            let refusal = refused(&response)?;
            match refusal.code {
                ErrorCode::UnknownAction => prop_assert!(!served, "{} is served", event.key),
                ErrorCode::Unauthorized => prop_assert!(needs_user && event.sub().is_none()),
                ErrorCode::InvalidMessage => {
                    prop_assert!(served && fields_of(&event.key).iter().any(|field| *field != "id"));
                    prop_assert!(event.object().is_none(), "a JSON object body was refused");
                }
                ErrorCode::MissingParameter | ErrorCode::InvalidParameter => {
                    let field = refusal.field.as_deref().unwrap_or("");
                    prop_assert!(fields_of(&event.key).contains(&field), "{} on {}", field, event.key);
                    if field == "id" {
                        let missing = event.id().is_none_or(str::is_empty);
                        prop_assert_eq!(refusal.code == ErrorCode::MissingParameter, missing);
                        prop_assert!(missing || SessionId::parse(event.id().unwrap_or("")).is_err());
                    }
                }
                other => prop_assert!(false, "{:?} ({}) for a request read without the store", other, refusal.status),
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_requests_are_read_or_refused_as_documented(event in event()) {
        check(&event)?;
    }

    /// Requests on the served routes with the caller present, so the body and the path are
    /// what decides.
    #[test]
    fn requests_on_served_routes_are_read_or_refused_naming_the_field(
        mut event in event(),
        key in select(served()),
        sub in "[a-z0-9-]{1,24}",
    ) {
        event.key = key;
        event.claims.get_or_insert_with(Map::new).insert("sub".to_owned(), Value::from(sub));
        check(&event)?;
    }

    /// Any JSON is read as an event or refused by serde; what is read is read or refused by
    /// the function, never a panic.
    #[test]
    fn arbitrary_json_events_never_panic(
        value in arb_json(),
        fields in prop::collection::btree_map(
            select(vec!["routeKey", "pathParameters", "body", "isBase64Encoded", "headers", "requestContext"]),
            arb_json(),
            0..6,
        ),
    ) {
        for candidate in [value, Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())] {
            if let Ok(request) = read_event(candidate)
                && let Err(response) = read_request(&request)
            {
                refused(&response)?;
            }
        }
    }
}

#[test]
fn the_default_case_count_applies_only_without_proptest_cases() {
    let expected = std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(DEFAULT_CASES);
    assert_eq!(config().cases, expected);
}

/// Regression: a header value with a control character (`http::HeaderValue` refuses it) made
/// the whole event unreadable, and the request was answered 500. It is left out instead.
#[test]
fn a_header_value_with_a_nul_character_does_not_make_the_event_unreadable() {
    let event = json!({
        "version": "2.0",
        "routeKey": "GET /health",
        "headers": {"a": "\u{0}", "accept": "application/json"},
        "requestContext": {"routeKey": "GET /health", "http": {"method": "GET", "path": "/health"}},
        "isBase64Encoded": false,
    });
    let request = read_event(event).expect("the event reads");
    assert_eq!(request.headers.get("accept").and_then(|value| value.to_str().ok()), Some("application/json"));
    assert!(request.headers.get("a").is_none());
    assert!(matches!(read_request(&request), Ok(Request::Health)));
}

/// The function reads no URI, so parts of the event that do not form one never make it fail:
/// a `rawPath` without its leading slash, a raw query with a space, a `Host` or
/// `X-Forwarded-Proto` that cannot stand in a URL. (`lambda_http` builds a URI from these
/// before a handler runs, and panics on each; the crate doc says why the function does not
/// use it.) A body flagged base64 that is not base64 is the client's error, 400.
#[test]
fn parts_of_the_event_that_do_not_form_a_uri_do_not_matter() {
    let event = |path: &str, query: &str, headers: Value| {
        json!({
            "version": "2.0",
            "routeKey": "GET /health",
            "rawPath": path,
            "rawQueryString": query,
            "headers": headers,
            "requestContext": {
                "domainName": "h7k2p9q4r1.execute-api.eu-west-1.amazonaws.com",
                "http": {"method": "GET", "path": path},
                "routeKey": "GET /health",
                "stage": "$default",
            },
            "isBase64Encoded": false,
        })
    };
    let cases = [
        ("a path without its slash", event("health now", "", json!({}))),
        ("a path starting with a colon", event(":x", "", json!({}))),
        ("a query with a space", event("/health", "a b", json!({}))),
        ("a host with a space", event("/health", "", json!({"host": "a b"}))),
        ("a scheme with a space", event("/health", "", json!({"x-forwarded-proto": "h t"}))),
    ];
    for (name, event) in cases {
        let request = read_event(event).unwrap_or_else(|error| panic!("{name}: the event does not read: {error}"));
        assert!(matches!(read_request(&request), Ok(Request::Health)), "{name}");
    }

    let mut post = event("/sessions", "", json!({}));
    post["routeKey"] = json!("POST /sessions");
    post["requestContext"]["authorizer"] = json!({"jwt": {"claims": {"sub": "user-42"}, "scopes": null}});
    post["body"] = json!("{\"sourceLanguage\":\"en\"}");
    post["isBase64Encoded"] = json!(true);
    let request = read_event(post).expect("the event reads");
    let response = read_request(&request).expect_err("not base64");
    let refusal = refused(&response).expect("a documented refusal");
    assert_eq!((refusal.status, refusal.code), (400, ErrorCode::InvalidMessage));
}

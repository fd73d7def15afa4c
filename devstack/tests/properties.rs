//! Property tests of the local stack's readers of outside input: the template reader
//! (`template::ServiceTemplate::read`) on arbitrary mutations of the synthesized dev template,
//! the route selection expression on arbitrary expressions and bodies, and the query-string
//! reader (`http_api::query_pairs`) on arbitrary query strings.
//!
//! A damaged template is an error value naming what is wrong, never a panic, and a template
//! that still reads only routes to functions it defines. A query string decodes exactly as
//! `application/x-www-form-urlencoded` says: `+` is a space, `%XX` with two hex digits is that
//! byte, anything else stays as written.
//!
//! Each property runs [`DEFAULT_CASES`] cases unless `PROPTEST_CASES` says otherwise
//! (`cargo xtask fuzz` runs many more). Failures are not persisted to files: a failure prints
//! the smallest input found, and it becomes a named regression test.

use devstack::http_api::query_pairs;
use devstack::template::{HttpAuthorization, SelectionExpression, ServiceTemplate};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Value, json};
use std::sync::LazyLock;

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

/// The dev stage's template, as `cargo xtask dev` reads it.
static DEV: LazyLock<Value> = LazyLock::new(|| {
    stacks::synthesize(&contract::CONTRACT, &stacks::stages::dev()).expect("dev synthesizes").to_value()
});

/// Any JSON value, a few levels deep, with the words a template uses.
fn arb_json() -> impl Strategy<Value = Value> {
    let text = prop_oneof![
        select(vec![
            "Ref",
            "Fn::GetAtt",
            "Fn::Sub",
            "Fn::Join",
            "Fn::If",
            "Type",
            "Properties",
            "WEBSOCKET",
            "HTTP",
            "NONE",
            "CUSTOM",
            "JWT",
            "AWS_IAM",
            "REQUEST",
            "$connect",
            "$default",
            "AWS::Lambda::Function",
            "AWS::ApiGatewayV2::Route",
            "AWS::ApiGatewayV2::Integration",
            "AWS::ApiGatewayV2::Authorizer",
            "MessagesFunction",
            "ConnectionFunction",
            "WebSocketApi",
            "HttpApi",
            "$request.body.action",
            "$request.body.",
            "route.request.querystring.token",
            "route.request.header.Authorization",
            "context.x",
            "${WebSocketApi}",
            "${",
            "}",
            "",
            "2.0",
        ])
        .prop_map(str::to_owned),
        ".{0,16}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        text.clone().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(text.clone(), inner, 0..5)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// One change to a template: at the place a path of choices leads to, replace the value,
/// remove it, or add a key beside it.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(Vec<usize>, Value),
    Remove(Vec<usize>),
    Insert(Vec<usize>, String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let path = prop::collection::vec(any::<usize>(), 0..8);
    prop_oneof![
        3 => (path.clone(), arb_json()).prop_map(|(path, value)| Mutation::Replace(path, value)),
        2 => path.clone().prop_map(Mutation::Remove),
        1 => (path, "[A-Za-z:]{1,12}", arb_json()).prop_map(|(path, key, value)| Mutation::Insert(path, key, value)),
    ]
}

/// Follows `choices` down `value` (each choice picks a key or an item, modulo their number)
/// for as long as there are choices and containers, and returns the place it ends at.
fn place<'a>(value: &'a mut Value, choices: &[usize]) -> &'a mut Value {
    let Some((&choice, rest)) = choices.split_first() else {
        return value;
    };
    let is_leaf = match value {
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => true,
    };
    if is_leaf {
        return value;
    }
    match value {
        Value::Object(map) => {
            let index = choice % map.len();
            match map.values_mut().nth(index) {
                Some(child) => place(child, rest),
                None => unreachable!("index is below the map's length"),
            }
        }
        Value::Array(items) => {
            let index = choice % items.len();
            place(&mut items[index], rest)
        }
        _ => unreachable!("leaves returned above"),
    }
}

fn apply(template: &mut Value, mutation: &Mutation) {
    match mutation {
        Mutation::Replace(path, value) => *place(template, path) = value.clone(),
        Mutation::Remove(path) => {
            let (last, parent) = path.split_last().map_or((0, &[][..]), |(last, parent)| (*last, parent));
            match place(template, parent) {
                Value::Object(map) if !map.is_empty() => {
                    let key = map.keys().nth(last % map.len()).cloned().unwrap_or_default();
                    map.remove(&key);
                }
                Value::Array(items) if !items.is_empty() => {
                    items.remove(last % items.len());
                }
                other => *other = Value::Null,
            }
        }
        Mutation::Insert(path, key, value) => match place(template, path) {
            Value::Object(map) => {
                map.insert(key.clone(), value.clone());
            }
            Value::Array(items) => items.push(value.clone()),
            other => *other = json!({ key.clone(): value.clone() }),
        },
    }
}

/// A template that reads routes only to functions it defines, with a usable selection
/// expression and an authorizer whose function exists.
fn check_read(template: &Value) -> Result<(), TestCaseError> {
    match ServiceTemplate::read(template) {
        Ok(service) => {
            prop_assert!(!service.websocket.route_selection.body_path.is_empty());
            prop_assert!(service.websocket.route_selection.body_path.iter().all(|segment| !segment.is_empty()));
            for function in service.websocket.routes.values() {
                prop_assert!(service.functions.contains_key(function), "a route invokes {} it lacks", function);
            }
            if let Some(authorizer) = &service.websocket.connect_authorizer {
                prop_assert!(service.functions.contains_key(&authorizer.function));
            }
            for route in service.http.iter().flat_map(|http| &http.routes) {
                prop_assert!(
                    service.functions.contains_key(&route.function),
                    "{} invokes a missing function",
                    route.key
                );
                if let HttpAuthorization::Jwt { issuer, .. } = &route.authorization {
                    prop_assert!(!issuer.is_empty() || template.to_string().contains("\"Issuer\":\"\""));
                }
            }
        }
        Err(error) => prop_assert!(!error.to_string().is_empty()),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_mutated_dev_template_reads_or_is_refused_with_an_error(mutations in prop::collection::vec(mutation(), 1..4)) {
        let mut template = DEV.clone();
        for mutation in &mutations {
            apply(&mut template, mutation);
        }
        check_read(&template)?;
    }

    /// Mutations aimed at the resources the gateway reads (APIs, routes, integrations,
    /// authorizers, stages, functions), where a damaged property matters most.
    #[test]
    fn a_mutated_gateway_resource_reads_or_is_refused_with_an_error(
        resource in select(gateway_resources()),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut template = DEV.clone();
        for mutation in &mutations {
            apply(&mut template["Resources"][&resource], mutation);
        }
        check_read(&template)?;
    }

    #[test]
    fn arbitrary_json_is_not_a_template(value in arb_json()) {
        check_read(&value)?;
        check_read(&json!({ "Resources": value }))?;
    }

    #[test]
    fn selection_expressions_and_bodies_never_panic(expression in ".{0,30}", path in "[a-z.]{0,12}", body in ".{0,60}") {
        let _ = SelectionExpression::parse(&expression);
        if let Ok(selection) = SelectionExpression::parse(&format!("$request.body.{path}")) {
            prop_assert!(!path.is_empty() && path.split('.').all(|segment| !segment.is_empty()));
            let _ = selection.select(&body);
        }
    }

    /// Pairs encoded as a browser encodes a form decode to themselves.
    #[test]
    fn encoded_pairs_decode_to_themselves(
        pairs in prop::collection::vec((any::<String>(), any::<String>()), 0..5),
        space_as_plus in any::<bool>(),
    ) {
        let query = pairs
            .iter()
            .map(|(key, value)| format!("{}={}", encode(key, space_as_plus), encode(value, space_as_plus)))
            .collect::<Vec<_>>()
            .join("&");
        prop_assert_eq!(query_pairs(&query), pairs);
    }

    /// Any query string decodes as the form encoding says, escapes that are not two hex digits
    /// left as written.
    #[test]
    fn any_query_string_decodes_as_the_form_encoding_says(query in prop_oneof![
        ".{0,60}",
        "[a-zA-Z0-9=&%+ -]{0,40}",
        "(%[0-9a-fA-F+-]{0,3}|[a-z=&+]){0,20}",
    ]) {
        let expected: Vec<(String, String)> = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(key), decode(value))
            })
            .collect();
        prop_assert_eq!(query_pairs(&query), expected);
    }
}

/// The resources of the dev template the local gateway reads.
fn gateway_resources() -> Vec<String> {
    let gateway = |kind: &str| kind.starts_with("AWS::ApiGatewayV2::") || kind == "AWS::Lambda::Function";
    DEV["Resources"]
        .as_object()
        .map(|resources| {
            resources
                .iter()
                .filter(|(_, resource)| resource["Type"].as_str().is_some_and(gateway))
                .map(|(id, _)| id.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Form encoding: unreserved bytes as they are, a space as `+` or `%20`, every other byte
/// as `%XX`.
fn encode(text: &str, space_as_plus: bool) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(byte).to_string(),
            b' ' if space_as_plus => "+".to_owned(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The form decoding of one part, written independently of the one under test.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|byte| char::from(*byte).to_digit(16));
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' => {
                if let (Some(high), Some(low)) = (hex(index + 1), hex(index + 2)) {
                    out.push(u8::try_from(high * 16 + low).unwrap_or(0));
                    index += 2;
                } else {
                    out.push(b'%');
                }
            }
            other => out.push(other),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn the_default_case_count_applies_only_without_proptest_cases() {
    let expected = std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(DEFAULT_CASES);
    assert_eq!(config().cases, expected);
}

#[test]
fn the_dev_template_itself_reads() {
    let service = ServiceTemplate::read(&DEV).expect("dev reads");
    assert!(!gateway_resources().is_empty());
    assert!(service.websocket.routes.contains_key("$connect"));
}

/// Regression: `%+1` decoded to the byte 1, since `u8::from_str_radix` accepts a sign; an
/// escape is two hex digits, so `%+1` stays as written.
#[test]
fn an_escape_with_a_sign_is_not_decoded() {
    assert_eq!(query_pairs("a=%+1&b=%+f"), vec![("a".into(), "% 1".into()), ("b".into(), "% f".into())]);
}

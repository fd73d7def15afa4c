//! Property tests of every parser in `session-core` that reads what a client sends: arbitrary
//! input is a value or a documented refusal, never a panic.
//!
//! - Frames (`protocol::parse_client_frame`): arbitrary text, mutated valid frames, arbitrary
//!   JSON values, and objects with a valid action and arbitrary field values. The refusal is
//!   the code docs/protocol.md documents for the input, with `details.field` naming the field
//!   where it says so; a frame over the limit is `MESSAGE_TOO_LARGE`.
//! - Speaker tokens (`jwt::Verifier`): arbitrary text, dot-separated segments, a valid token
//!   with one segment replaced, and tokens signed by the local signer with arbitrary headers and
//!   claims. Every refusal is a `JwtError` the client is to blame for, and the variant matches
//!   what was wrong.
//! - `$connect` query strings and headers (`events::WebSocketEvent::query` and `token`).
//!
//! Each property runs [`DEFAULT_CASES`] cases unless `PROPTEST_CASES` says otherwise
//! (`cargo xtask fuzz` runs many more). Failures are not persisted to files: a failure prints
//! the smallest input found, and it becomes a named regression test.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use contract::Action;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value, json};
use session_core::events::WebSocketEvent;
use session_core::jwt::signing::LocalSigner;
use session_core::jwt::{JwksSource, JwtConfig, JwtError, Verifier};
use session_core::protocol::{ErrorCode, ProtocolError, parse_client_frame};
use session_core::validation::MAX_MESSAGE_BYTES;
use std::collections::HashMap;
use std::sync::LazyLock;

/// Cases per property when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 256;

/// The configuration of every property: `PROPTEST_CASES` (and proptest's other variables)
/// when set, else [`DEFAULT_CASES`]; no failure files.
///
/// `ProptestConfig::default()` reads the environment, and any field set explicitly afterwards
/// (as `ProptestConfig::with_cases` does) overrides it, so the default is only applied when
/// the variable is absent.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = DEFAULT_CASES;
    }
    config.failure_persistence = None;
    config
}

// ---------------------------------------------------------------------------------------------
// Arbitrary JSON.

/// Strings that are more likely than random text to reach a parser's deeper rules.
fn interesting_string() -> impl Strategy<Value = String> {
    prop_oneof![
        select(Action::all_route_keys().collect::<Vec<_>>()).prop_map(str::to_owned),
        select(vec![
            "",
            " ",
            "en",
            "de",
            "xx",
            "EN",
            "e",
            "eng",
            "standard",
            "premium",
            "speaker",
            "listener",
            "null",
            "0",
            "-1",
            "1e400",
            "AAAA",
            "AAA=",
            "AA==",
            "quiet-harbor-417",
            "quiet-harbor-099",
            "a-b-100",
            "\u{0}",
            "\u{feff}",
            "ß",
            "🦀",
        ])
        .prop_map(str::to_owned),
        "[a-z]{1,8}-[a-z]{1,8}-[0-9]{3}",
        "[A-Za-z0-9+/=]{0,16}",
        ".{0,40}",
    ]
}

/// Any JSON number serde_json can hold, including extremes.
fn arb_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-2.0f64..2.0).prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |float| serde_json::Number::from_f64(float).map(Value::Number)),
        select(vec![json!(0), json!(-0.0), json!(1), json!(1.0), json!(u64::MAX), json!(i64::MIN), json!(1e308)]),
    ]
}

/// Any JSON value, a few levels deep.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        arb_number(),
        interesting_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(interesting_string(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Any JSON object.
fn arb_object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(interesting_string(), arb_json(), 0..8).prop_map(|map| map.into_iter().collect())
}

// ---------------------------------------------------------------------------------------------
// Frames.

/// Every code a frame can be refused with by the parser.
const FRAME_CODES: [ErrorCode; 5] = [
    ErrorCode::MessageTooLarge,
    ErrorCode::InvalidMessage,
    ErrorCode::MissingParameter,
    ErrorCode::InvalidParameter,
    ErrorCode::UnknownAction,
];

/// What docs/protocol.md says the parser decides before it reads an action's fields.
#[derive(Debug, Clone, PartialEq)]
enum Expected {
    /// This code, naming this field (or none).
    Refused(ErrorCode, Option<&'static str>),
    /// The frame selects this action; its fields decide the rest.
    Action(Action),
}

fn expected(frame: &str, limit: usize) -> Expected {
    if frame.len() > limit {
        return Expected::Refused(ErrorCode::MessageTooLarge, None);
    }
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(frame) else {
        return Expected::Refused(ErrorCode::InvalidMessage, None);
    };
    match object.get("action") {
        None | Some(Value::Null) => Expected::Refused(ErrorCode::MissingParameter, Some("action")),
        Some(Value::String(name)) => match Action::from_route_key(name) {
            Some(action) => Expected::Action(action),
            None => Expected::Refused(ErrorCode::UnknownAction, None),
        },
        Some(_) => Expected::Refused(ErrorCode::InvalidParameter, Some("action")),
    }
}

/// The documented fields of an action, dotted for nested ones.
fn fields_of(action: Action) -> &'static [&'static str] {
    match action {
        Action::CreateSession => &["sourceLanguage", "qualityTier"],
        Action::JoinSession => &["sessionId", "targetLanguage"],
        Action::Heartbeat => &["timestamp"],
        Action::RefreshConnection => &["sessionId", "role"],
        Action::SetVolume => &["volumeLevel"],
        Action::SpeakerStateChange => &["state", "state.isPaused", "state.isMuted", "state.volume"],
        Action::ChangeLanguage => &["targetLanguage"],
        Action::EndSession => &["reason"],
        Action::SendAudio => &["audioData", "chunkId", "timestamp"],
        Action::GetSessionStatus
        | Action::PauseBroadcast
        | Action::ResumeBroadcast
        | Action::MuteBroadcast
        | Action::UnmuteBroadcast => &[],
    }
}

/// A refusal is a documented frame code, names a field exactly when the code is about one,
/// and reports itself as the `error` message of PROTOCOL.md.
fn check_refusal(error: &ProtocolError) -> Result<(), TestCaseError> {
    prop_assert!(FRAME_CODES.contains(&error.code), "undocumented code {:?}", error.code);
    let about_a_field = matches!(error.code, ErrorCode::MissingParameter | ErrorCode::InvalidParameter);
    prop_assert_eq!(error.field.is_some(), about_a_field, "{:?}", error);
    prop_assert!(!error.message.is_empty());
    prop_assert_eq!(error.retry_after, None);
    let message = serde_json::to_value(error.to_message()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&message["type"], "error");
    prop_assert_eq!(&message["code"], error.code.as_str());
    match &error.field {
        Some(field) => prop_assert_eq!(&message["details"]["field"], field.as_str()),
        None => prop_assert!(message.get("details").is_none()),
    }
    Ok(())
}

/// The parser's answer to `frame` is what [`expected`] says, and an accepted message or a
/// refusal about a field is consistent with the action the frame names.
fn check_frame(frame: &str, limit: usize) -> Result<(), TestCaseError> {
    let result = parse_client_frame(frame, limit);
    if let Err(error) = &result {
        check_refusal(error)?;
    }
    match (expected(frame, limit), result) {
        (Expected::Refused(code, field), Err(error)) => {
            prop_assert_eq!(error.code, code, "{}", error);
            prop_assert_eq!(error.field.as_deref(), field);
        }
        (Expected::Refused(code, _), Ok(message)) => {
            prop_assert!(false, "expected {:?}, got {:?}", code, message);
        }
        (Expected::Action(action), Ok(message)) => {
            prop_assert_eq!(message.action(), action);
            // What was accepted is accepted again as the service would write it.
            let again = parse_client_frame(&message.to_json().to_string(), MAX_MESSAGE_BYTES);
            prop_assert_eq!(again, Ok(message));
        }
        (Expected::Action(action), Err(error)) => {
            let field = error.field.as_deref().unwrap_or("");
            prop_assert!(fields_of(action).contains(&field), "{} refused for field {:?}: {}", action, field, error);
        }
    }
    Ok(())
}

/// A valid frame of every action, to mutate.
fn valid_frames() -> Vec<String> {
    [
        json!({"action": "createSession", "sourceLanguage": "en", "qualityTier": "premium"}),
        json!({"action": "joinSession", "sessionId": "quiet-harbor-417", "targetLanguage": "de"}),
        json!({"action": "heartbeat", "timestamp": 1_764_000_000_000_u64}),
        json!({"action": "refreshConnection", "sessionId": "quiet-harbor-417", "role": "listener"}),
        json!({"action": "getSessionStatus"}),
        json!({"action": "pauseBroadcast"}),
        json!({"action": "setVolume", "volumeLevel": 0.5}),
        json!({"action": "speakerStateChange", "state": {"isPaused": true, "isMuted": false, "volume": 0.25}}),
        json!({"action": "switchLanguage", "targetLanguage": "fr"}),
        json!({"action": "endSession", "reason": "done"}),
        json!({"action": "sendAudio", "audioData": "AAECAw==", "chunkId": "c-1", "timestamp": 5}),
    ]
    .iter()
    .map(Value::to_string)
    .collect()
}

/// One edit of a frame's bytes.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, u8),
    Delete(usize),
    Replace(usize, u8),
}

/// A valid frame with a few byte edits, read as UTF-8 (invalid sequences replaced).
fn mutated_frame() -> impl Strategy<Value = String> {
    let byte = prop_oneof![select(b"{}[]\":,.-+0123456789eE \\ntruefalsnul".to_vec()), any::<u8>()];
    let edit = prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(at, byte)| Edit::Insert(at, byte)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), byte).prop_map(|(at, byte)| Edit::Replace(at, byte)),
    ];
    (select(valid_frames()), prop::collection::vec(edit, 1..4)).prop_map(|(frame, edits)| {
        let mut bytes = frame.into_bytes();
        for edit in edits {
            let len = bytes.len().max(1);
            match edit {
                Edit::Insert(at, byte) => bytes.insert(at % (bytes.len() + 1), byte),
                Edit::Delete(at) if !bytes.is_empty() => {
                    bytes.remove(at % len);
                }
                Edit::Replace(at, byte) if !bytes.is_empty() => bytes[at % len] = byte,
                Edit::Delete(_) | Edit::Replace(..) => {}
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// How one field of a generated frame was drawn.
#[derive(Debug, Clone)]
enum Slot {
    Absent,
    Null,
    /// A value the field's rule accepts.
    Valid(Value),
    /// Anything else (which may happen to be acceptable).
    Other(Value),
    /// An object built from its own fields' slots.
    Object(Vec<Drawn>),
}

/// One documented field and how it was drawn.
#[derive(Debug, Clone)]
struct Drawn {
    path: String,
    required: bool,
    slot: Slot,
}

impl Drawn {
    /// Whether the parser must accept this field as drawn.
    fn acceptable(&self) -> bool {
        match &self.slot {
            Slot::Absent | Slot::Null => !self.required,
            Slot::Valid(_) => true,
            Slot::Other(_) => false,
            Slot::Object(children) => children.iter().all(Drawn::acceptable),
        }
    }

    /// The field's JSON value, if it is present.
    fn value(&self) -> Option<Value> {
        match &self.slot {
            Slot::Absent => None,
            Slot::Null => Some(Value::Null),
            Slot::Valid(value) | Slot::Other(value) => Some(value.clone()),
            Slot::Object(children) => Some(Value::Object(object_of(children))),
        }
    }

    /// The drawn field at this dotted path, this one or a nested one.
    fn find(&self, path: &str) -> Option<&Drawn> {
        if self.path == path {
            return Some(self);
        }
        match &self.slot {
            Slot::Object(children) => children.iter().find_map(|child| child.find(path)),
            _ => None,
        }
    }
}

fn object_of(drawn: &[Drawn]) -> Map<String, Value> {
    drawn
        .iter()
        .filter_map(|field| {
            let name = field.path.rsplit('.').next().unwrap_or(&field.path).to_owned();
            field.value().map(|value| (name, value))
        })
        .collect()
}

/// Values that break a rule in a way close to the rule.
fn near_miss() -> impl Strategy<Value = Value> {
    prop_oneof![
        interesting_string().prop_map(Value::from),
        arb_number(),
        any::<bool>().prop_map(Value::from),
        prop::collection::vec(any::<char>(), 495..=505)
            .prop_map(|chars| Value::from(chars.into_iter().collect::<String>())),
        prop::collection::vec(any::<char>(), 126..=130)
            .prop_map(|chars| Value::from(chars.into_iter().collect::<String>())),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(|bytes| Value::from(STANDARD.encode(bytes))),
        arb_json(),
    ]
}

type Valid = fn() -> BoxedStrategy<Value>;

fn language() -> BoxedStrategy<Value> {
    select(vec!["en", "de", "fr", "es", "ja", "zh", "ar", "pt", "zu"]).prop_map(Value::from).boxed()
}

fn tier() -> BoxedStrategy<Value> {
    select(vec!["standard", "premium"]).prop_map(Value::from).boxed()
}

fn session_id() -> BoxedStrategy<Value> {
    "[a-z]{1,12}-[a-z]{1,12}-[1-9][0-9]{2}".prop_map(Value::from).boxed()
}

fn role() -> BoxedStrategy<Value> {
    select(vec!["speaker", "listener"]).prop_map(Value::from).boxed()
}

fn timestamp() -> BoxedStrategy<Value> {
    any::<u64>().prop_map(Value::from).boxed()
}

fn volume() -> BoxedStrategy<Value> {
    prop_oneof![0.0f64..=1.0, Just(0.0), Just(1.0)].prop_map(Value::from).boxed()
}

fn boolean() -> BoxedStrategy<Value> {
    any::<bool>().prop_map(Value::from).boxed()
}

fn reason() -> BoxedStrategy<Value> {
    prop_oneof![".{0,40}".boxed(), prop::collection::vec(any::<char>(), 500).prop_map(String::from_iter).boxed()]
        .prop_map(Value::from)
        .boxed()
}

fn audio() -> BoxedStrategy<Value> {
    prop::collection::vec(any::<[u8; 2]>(), 1..40)
        .prop_map(|samples| Value::from(STANDARD.encode(samples.concat())))
        .boxed()
}

fn chunk_id() -> BoxedStrategy<Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        prop::collection::vec(any::<char>(), 1..=128).prop_map(|c| Value::from(String::from_iter(c)))
    ]
    .boxed()
}

/// A field of an action: its name, whether it is required, its valid values, its own fields.
struct FieldSpec {
    name: &'static str,
    required: bool,
    valid: Valid,
    children: &'static [FieldSpec],
}

const fn field(name: &'static str, required: bool, valid: Valid) -> FieldSpec {
    FieldSpec { name, required, valid, children: &[] }
}

const STATE: [FieldSpec; 3] =
    [field("isPaused", true, boolean), field("isMuted", true, boolean), field("volume", true, volume)];

fn specs(action: Action) -> Vec<FieldSpec> {
    match action {
        Action::CreateSession => vec![field("sourceLanguage", true, language), field("qualityTier", false, tier)],
        Action::JoinSession => vec![field("sessionId", true, session_id), field("targetLanguage", true, language)],
        Action::Heartbeat => vec![field("timestamp", false, timestamp)],
        Action::RefreshConnection => vec![field("sessionId", true, session_id), field("role", true, role)],
        Action::SetVolume => vec![field("volumeLevel", true, volume)],
        Action::SpeakerStateChange => {
            vec![FieldSpec { name: "state", required: true, valid: boolean, children: &STATE }]
        }
        Action::ChangeLanguage => vec![field("targetLanguage", true, language)],
        Action::EndSession => vec![field("reason", false, reason)],
        Action::SendAudio => {
            vec![field("audioData", true, audio), field("chunkId", true, chunk_id), field("timestamp", true, timestamp)]
        }
        Action::GetSessionStatus
        | Action::PauseBroadcast
        | Action::ResumeBroadcast
        | Action::MuteBroadcast
        | Action::UnmuteBroadcast => Vec::new(),
    }
}

fn drawn(spec: &FieldSpec, prefix: &str) -> BoxedStrategy<Drawn> {
    let path = if prefix.is_empty() { spec.name.to_owned() } else { format!("{prefix}.{}", spec.name) };
    let valid = if spec.children.is_empty() {
        (spec.valid)().prop_map(Slot::Valid).boxed()
    } else {
        let children: Vec<_> = spec.children.iter().map(|child| drawn(child, &path)).collect();
        children.prop_map(Slot::Object).boxed()
    };
    let slot = prop_oneof![
        1 => Just(Slot::Absent),
        1 => Just(Slot::Null),
        6 => valid,
        3 => near_miss().prop_map(Slot::Other),
    ];
    let required = spec.required;
    slot.prop_map(move |slot| Drawn { path: path.clone(), required, slot }).boxed()
}

/// An action, one of its route keys, its fields as drawn, and unknown extra fields.
fn action_frame() -> impl Strategy<Value = (Action, String, Vec<Drawn>, Map<String, Value>)> {
    select(Action::ALL.to_vec()).prop_flat_map(|action| {
        let fields: Vec<_> = specs(action).iter().map(|spec| drawn(spec, "")).collect();
        let extras = prop::collection::btree_map("[a-zA-Z_]{1,12}", arb_json(), 0..3).prop_map(move |extras| {
            extras
                .into_iter()
                .filter(|(name, _)| name != "action" && !fields_of(action).contains(&name.as_str()))
                .collect::<Map<_, _>>()
        });
        (Just(action), select(action.route_keys().collect::<Vec<_>>()).prop_map(str::to_owned), fields, extras)
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_text_is_a_message_or_a_documented_refusal(frame in prop_oneof![".{0,200}", any::<String>()]) {
        check_frame(&frame, MAX_MESSAGE_BYTES)?;
    }

    #[test]
    fn arbitrary_bytes_read_as_text_are_a_message_or_a_documented_refusal(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        check_frame(&String::from_utf8_lossy(&bytes), MAX_MESSAGE_BYTES)?;
    }

    #[test]
    fn mutated_valid_frames_are_a_message_or_a_documented_refusal(frame in mutated_frame()) {
        check_frame(&frame, MAX_MESSAGE_BYTES)?;
    }

    #[test]
    fn arbitrary_json_values_are_refused_with_the_documented_code(value in arb_json()) {
        check_frame(&value.to_string(), MAX_MESSAGE_BYTES)?;
    }

    #[test]
    fn objects_with_an_arbitrary_action_are_refused_with_the_documented_code(
        mut object in arb_object(),
        action in prop_oneof![arb_json(), interesting_string().prop_map(Value::from)],
    ) {
        object.insert("action".to_owned(), action);
        check_frame(&Value::Object(object).to_string(), MAX_MESSAGE_BYTES)?;
    }

    /// A frame over the limit is `MESSAGE_TOO_LARGE` whatever it holds; one within it never is.
    #[test]
    fn the_size_limit_is_counted_in_bytes(frame in prop_oneof![".{0,80}", mutated_frame()], limit in 0usize..160) {
        let result = parse_client_frame(&frame, limit);
        let too_large = matches!(&result, Err(error) if error.code == ErrorCode::MessageTooLarge);
        prop_assert_eq!(too_large, frame.len() > limit, "{} bytes, limit {}: {:?}", frame.len(), limit, result);
        check_frame(&frame, limit)?;
    }

    /// A valid action with arbitrary field values: accepted when every field is acceptable;
    /// otherwise `MISSING_PARAMETER` naming a required field that is absent or `null`, or
    /// `INVALID_PARAMETER` naming a field that is present and broke its rule.
    #[test]
    fn a_valid_action_with_arbitrary_fields_is_accepted_or_refused_naming_the_field(
        (action, key, fields, extras) in action_frame(),
    ) {
        let mut object = extras;
        object.extend(object_of(&fields));
        object.insert("action".to_owned(), Value::from(key));
        let frame = Value::Object(object).to_string();
        check_frame(&frame, MAX_MESSAGE_BYTES)?;
        let result = parse_client_frame(&frame, MAX_MESSAGE_BYTES);
        match result {
            Ok(message) => {
                prop_assert_eq!(message.action(), action);
                for field in &fields {
                    prop_assert!(
                        !(field.required && matches!(field.slot, Slot::Absent | Slot::Null)),
                        "accepted without {}", field.path
                    );
                }
            }
            Err(error) => {
                prop_assert!(!fields.iter().all(Drawn::acceptable), "refused acceptable fields: {}", error);
                let path = error.field.clone().unwrap_or_default();
                let field = fields.iter().find_map(|field| field.find(&path)).map(|field| field.slot.clone());
                // A nested field of an object drawn whole as an arbitrary value is judged by what
                // that value holds.
                let field = field.or_else(|| {
                    let (parent, name) = path.rsplit_once('.')?;
                    match fields.iter().find_map(|field| field.find(parent)).map(|field| &field.slot) {
                        Some(Slot::Other(Value::Object(object))) => {
                            Some(object.get(name).map_or(Slot::Absent, |value| Slot::Other(value.clone())))
                        }
                        _ => None,
                    }
                });
                prop_assert!(field.is_some(), "the refusal names {:?}, not a field of {}", path, action);
                match error.code {
                    ErrorCode::MissingParameter => {
                        prop_assert!(
                            matches!(field, Some(Slot::Absent | Slot::Null | Slot::Other(Value::Null))),
                            "{} is present", path
                        );
                    }
                    ErrorCode::InvalidParameter => prop_assert!(
                        matches!(field, Some(Slot::Other(ref value)) if !value.is_null()),
                        "{} was drawn valid: {}", path, error
                    ),
                    other => prop_assert!(false, "{:?} for a frame with a valid action", other),
                }
            }
        }
    }
}

#[test]
fn the_default_case_count_applies_only_without_proptest_cases() {
    let expected = std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(DEFAULT_CASES);
    assert_eq!(config().cases, expected);
    assert!(config().failure_persistence.is_none());
}

// ---------------------------------------------------------------------------------------------
// Speaker tokens.

const ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TestPool";
const AUDIENCE: &str = "speaker-app-client";
const NOW: i64 = 1_764_000_000;

static SIGNER: LazyLock<LocalSigner> =
    LazyLock::new(|| LocalSigner::generate("property-key").expect("an RSA key is generated"));

/// A verifier trusting exactly [`SIGNER`], for the one app client [`AUDIENCE`].
static VERIFIER: LazyLock<Verifier> =
    LazyLock::new(|| Verifier::new(JwtConfig::new(ISSUER, [AUDIENCE], JwksSource::Inline(SIGNER.jwks_json()))));

static RUNTIME: LazyLock<tokio::runtime::Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_current_thread().build().expect("a runtime"));

fn verify(token: &str) -> Result<session_core::jwt::Claims, JwtError> {
    RUNTIME.block_on(VERIFIER.verify(token, NOW))
}

fn good_claims() -> Value {
    json!({"sub": "user-1", "iss": ISSUER, "aud": AUDIENCE, "token_use": "id", "exp": NOW + 3600})
}

/// A token that passes every check.
static GOOD_TOKEN: LazyLock<String> = LazyLock::new(|| SIGNER.sign(&good_claims()).expect("signed"));

/// Whether a refusal is one decided from the token's shape, header or signature (no claim has
/// been read yet), which is every refusal of a token not signed by the trusted key.
fn is_token_level(error: &JwtError) -> bool {
    matches!(
        error,
        JwtError::Malformed(_)
            | JwtError::UnsupportedAlgorithm(_)
            | JwtError::MissingKeyId
            | JwtError::UnknownKey(_)
            | JwtError::BadSignature
    )
}

/// Text of one segment: base64url of bytes or of JSON, base64url-ish text, or anything.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|bytes| URL_SAFE_NO_PAD.encode(bytes)),
        arb_json().prop_map(|value| URL_SAFE_NO_PAD.encode(value.to_string())),
        arb_object().prop_map(|object| URL_SAFE_NO_PAD.encode(Value::Object(object).to_string())),
        "[A-Za-z0-9_=+/-]{0,24}",
        ".{0,12}",
    ]
}

/// How a claim of a generated token was drawn: absent, valid, or anything.
#[derive(Debug, Clone)]
enum Claim {
    Absent,
    Valid(Value),
    Other(Value),
}

/// One claim as drawn: its name, whether the verifier requires it, and its value.
#[derive(Debug, Clone)]
struct DrawnClaim {
    name: &'static str,
    required: bool,
    claim: Claim,
}

impl DrawnClaim {
    /// Whether the verifier must accept the claim as drawn.
    fn acceptable(&self) -> bool {
        match self.claim {
            Claim::Absent => !self.required,
            Claim::Valid(_) => true,
            Claim::Other(_) => false,
        }
    }
}

/// A claim this service reads, with its valid values and whether it is required.
fn claim(name: &'static str) -> BoxedStrategy<DrawnClaim> {
    let valid: BoxedStrategy<Value> = match name {
        "sub" => "[a-z0-9-]{1,36}".prop_map(Value::from).boxed(),
        "iss" => Just(Value::from(ISSUER)).boxed(),
        "aud" => prop_oneof![
            Just(Value::from(AUDIENCE)),
            prop::collection::vec("[a-z-]{0,12}", 0..3).prop_map(|mut audiences| {
                audiences.push(AUDIENCE.to_owned());
                Value::from(audiences)
            }),
        ]
        .boxed(),
        "client_id" => Just(Value::from(AUDIENCE)).boxed(),
        "exp" => prop_oneof![(NOW + 31..NOW + 10_000_000).prop_map(Value::from), Just(json!(i64::MAX))].boxed(),
        "nbf" | "iat" => (0..NOW + 30).prop_map(Value::from).boxed(),
        _ => "[a-z@.]{0,20}".prop_map(Value::from).boxed(),
    };
    // `aud` and `client_id` are required as a pair ([`audience_acceptable`]); `token_use` is
    // any text, as API Gateway does not look at it.
    let required = matches!(name, "sub" | "iss" | "exp");
    let other = prop_oneof![near_miss(), arb_number(), (NOW - 100..NOW + 100).prop_map(Value::from)];
    prop_oneof![
        1 => Just(Claim::Absent),
        6 => valid.prop_map(Claim::Valid),
        3 => other.prop_map(Claim::Other),
    ]
    .prop_map(move |claim| DrawnClaim { name, required, claim })
    .boxed()
}

fn claims() -> impl Strategy<Value = Vec<DrawnClaim>> {
    ["sub", "iss", "aud", "client_id", "token_use", "exp", "nbf", "iat", "email"]
        .into_iter()
        .map(claim)
        .collect::<Vec<_>>()
}

/// Whether the drawn `aud` and `client_id` name the app client as API Gateway reads them: a
/// valid `aud`, or no `aud` and a valid `client_id`.
fn audience_acceptable(drawn: &[DrawnClaim]) -> bool {
    let claim = |name: &str| drawn.iter().find(|drawn| drawn.name == name).map(|drawn| &drawn.claim);
    match claim("aud") {
        Some(Claim::Valid(_)) => true,
        Some(Claim::Absent) | None => matches!(claim("client_id"), Some(Claim::Valid(_))),
        Some(Claim::Other(_)) => false,
    }
}

/// Whether every drawn claim is one the verifier must accept.
fn all_acceptable(drawn: &[DrawnClaim]) -> bool {
    drawn.iter().all(DrawnClaim::acceptable) && audience_acceptable(drawn)
}

/// What a refusal for the app client is about: `aud`, or `client_id` when there is no `aud`.
const AUDIENCE_PAIR: &str = "aud or client_id";

/// The claim a claims-level refusal is about.
fn claim_of(error: &JwtError) -> Option<&'static str> {
    match error {
        JwtError::MissingClaim(name) => Some(name),
        JwtError::Expired => Some("exp"),
        JwtError::NotYetValid => Some("nbf"),
        JwtError::IssuedInFuture => Some("iat"),
        JwtError::WrongIssuer => Some("iss"),
        JwtError::WrongAudience => Some(AUDIENCE_PAIR),
        _ => None,
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_text_is_refused_as_a_bad_token(token in prop_oneof![".{0,300}", any::<String>()]) {
        let error = verify(&token).expect_err("nothing unsigned is accepted");
        prop_assert!(error.is_client_fault() && is_token_level(&error), "{:?}", error);
    }

    #[test]
    fn dot_separated_segments_are_refused_as_a_bad_token(segments in prop::collection::vec(segment(), 0..6)) {
        let error = verify(&segments.join(".")).expect_err("nothing unsigned is accepted");
        prop_assert!(error.is_client_fault() && is_token_level(&error), "{:?}", error);
        if segments.len() != 3 {
            prop_assert!(matches!(error, JwtError::Malformed(_)), "{} segments: {:?}", segments.len(), error);
        }
    }

    /// A valid token with one segment replaced is refused, for what that segment now says.
    #[test]
    fn a_valid_token_with_a_segment_replaced_is_refused(index in 0usize..3, replacement in segment()) {
        let mut segments: Vec<String> = GOOD_TOKEN.split('.').map(str::to_owned).collect();
        prop_assume!(segments[index] != replacement);
        segments[index] = replacement;
        let error = verify(&segments.join(".")).expect_err("a changed token is refused");
        prop_assert!(error.is_client_fault() && is_token_level(&error), "{:?}", error);
        if index == 2 {
            prop_assert!(matches!(error, JwtError::BadSignature | JwtError::Malformed(_)), "{:?}", error);
        }
    }

    /// Tokens signed by the trusted key with an arbitrary header: accepted only with `alg`
    /// RS256, no `crit`, and the key's `kid`; otherwise refused for exactly that.
    #[test]
    fn signed_tokens_with_arbitrary_headers_are_judged_by_alg_crit_and_kid(
        mut header in arb_object(),
        alg in prop_oneof![Just(Some(Value::from("RS256"))), Just(None), arb_json().prop_map(Some)],
        kid in prop_oneof![Just(Some(Value::from("property-key"))), Just(None), arb_json().prop_map(Some)],
        crit in prop_oneof![3 => Just(None), 1 => arb_json().prop_map(Some)],
    ) {
        for (name, value) in [("alg", alg), ("kid", kid), ("crit", crit)] {
            match value {
                Some(value) => header.insert(name.to_owned(), value),
                None => header.remove(name),
            };
        }
        let header = Value::Object(header);
        let token = SIGNER.sign_with_header(&header, &good_claims()).expect("signed");
        let result = verify(&token);
        let present = |name: &str| header.get(name).filter(|value| !value.is_null());
        let not_a_string = |name: &str| present(name).is_some_and(|value| !value.is_string());
        let expected_error = if not_a_string("alg") || not_a_string("kid") {
            // The header does not read as a JOSE header at all.
            Some("Malformed")
        } else {
            match (present("alg").and_then(Value::as_str), present("crit"), present("kid").and_then(Value::as_str)) {
                (None, _, _) => Some("Malformed"),
                (Some(alg), _, _) if alg != "RS256" => Some("UnsupportedAlgorithm"),
                (Some(_), Some(_), _) => Some("Malformed"),
                (Some(_), None, None | Some("")) => Some("MissingKeyId"),
                (Some(_), None, Some("property-key")) => None,
                (Some(_), None, Some(_)) => Some("UnknownKey"),
            }
        };
        match (expected_error, result) {
            (None, Ok(claims)) => prop_assert_eq!(claims.sub, "user-1"),
            (Some(expected), Err(error)) => {
                let variant = format!("{error:?}");
                prop_assert!(variant.starts_with(expected), "expected {}, got {:?} for {}", expected, error, header);
            }
            (expected, result) => prop_assert!(false, "expected {:?}, got {:?} for {}", expected, result, header),
        }
    }

    /// Tokens signed by the trusted key with arbitrary claims: accepted when every claim is
    /// valid; otherwise refused for a claim that was not drawn valid (a claim of the wrong
    /// JSON type makes the claims unreadable: `Malformed`). Never a signature or key error.
    #[test]
    fn signed_tokens_with_arbitrary_claims_are_refused_for_a_bad_claim(
        drawn in claims(),
        extras in prop::collection::btree_map("[a-z_]{1,10}", arb_json(), 0..3),
    ) {
        let mut claims: Map<String, Value> = extras.into_iter().collect();
        for drawn in &drawn {
            match &drawn.claim {
                Claim::Absent => claims.remove(drawn.name),
                Claim::Valid(value) | Claim::Other(value) => claims.insert(drawn.name.to_owned(), value.clone()),
            };
        }
        let token = SIGNER.sign(&Value::Object(claims.clone())).expect("signed");
        let not_valid = |name: &str| match name {
            AUDIENCE_PAIR => !audience_acceptable(&drawn),
            _ => drawn.iter().any(|drawn| drawn.name == name && !drawn.acceptable()),
        };
        match verify(&token) {
            Ok(accepted) => {
                prop_assert_eq!(Some(&Value::from(accepted.sub.clone())), claims.get("sub"));
                prop_assert!(accepted.exp.saturating_add(30) > NOW);
            }
            Err(error) => {
                prop_assert!(error.is_client_fault(), "{:?}", error);
                prop_assert!(!all_acceptable(&drawn), "valid claims refused: {:?}", error);
                match claim_of(&error) {
                    Some(name) => prop_assert!(not_valid(name), "{:?} but {} was drawn valid: {}", error, name, Value::Object(claims)),
                    None => prop_assert!(matches!(error, JwtError::Malformed(_)), "{:?}", error),
                }
            }
        }
    }

    /// Whole claim sets that are arbitrary objects are judged as claims, never as a bad token.
    #[test]
    fn signed_tokens_with_arbitrary_claim_objects_are_judged_by_their_claims(claims in arb_object()) {
        let token = SIGNER.sign(&Value::Object(claims)).expect("signed");
        if let Err(error) = verify(&token) {
            prop_assert!(error.is_client_fault(), "{:?}", error);
            prop_assert!(claim_of(&error).is_some() || matches!(error, JwtError::Malformed(_)), "{:?}", error);
        }
    }

    /// A key set that is not one (an issuer's outage or misconfiguration) is our fault, never
    /// the token's, and never accepts it.
    #[test]
    fn an_arbitrary_key_set_is_unavailable_not_a_client_fault(jwks in prop_oneof![
        arb_json().prop_map(|value| value.to_string()),
        arb_json().prop_map(|keys| json!({"keys": [keys]}).to_string()),
        ".{0,40}",
    ]) {
        let verifier = Verifier::new(JwtConfig::new(ISSUER, [AUDIENCE], JwksSource::Inline(jwks)));
        let result = RUNTIME.block_on(verifier.verify(&GOOD_TOKEN, NOW));
        prop_assert!(matches!(result, Err(JwtError::JwksUnavailable(_) | JwtError::UnknownKey(_))), "{:?}", result);
    }
}

// ---------------------------------------------------------------------------------------------
// `$connect` query strings and headers.

fn parameter_map(names: Vec<&'static str>) -> impl Strategy<Value = HashMap<String, String>> {
    prop::collection::hash_map(
        prop_oneof![select(names).prop_map(str::to_owned), "[a-zA-Z]{1,8}"],
        prop_oneof![Just(String::new()), interesting_string(), ".{0,30}"],
        0..5,
    )
}

proptest! {
    #![proptest_config(config())]

    /// `query` is the parameter as sent; `token` is the `token` parameter, else a bearer
    /// `Authorization` header (any case, trimmed); empty values count as absent.
    #[test]
    fn the_token_is_the_query_parameter_else_the_bearer_header(
        query in prop::option::of(parameter_map(vec!["token", "sessionId", "targetLanguage"])),
        authorization in prop::option::of((
            select(vec!["authorization", "Authorization", "AUTHORIZATION"]),
            select(vec!["Bearer", "bearer", "BEARER", "Basic", "", "Bearer:"]),
            prop_oneof![Just(String::new()), " *[A-Za-z0-9._-]{0,20} *", ".{0,20}"],
        )),
        other_headers in parameter_map(vec!["Host", "Sec-WebSocket-Key"]),
    ) {
        let mut headers: HashMap<String, String> =
            other_headers.into_iter().filter(|(name, _)| !name.eq_ignore_ascii_case("authorization")).collect();
        if let Some((name, scheme, token)) = &authorization {
            headers.insert((*name).to_owned(), format!("{scheme} {token}"));
        }
        let event = WebSocketEvent {
            headers: Some(headers),
            query_string_parameters: query.clone(),
            ..WebSocketEvent::default()
        };
        for name in ["token", "sessionId", "targetLanguage", "previousConnectionId"] {
            prop_assert_eq!(event.query(name), query.as_ref().and_then(|query| query.get(name)).map(String::as_str));
        }
        let from_query = query.as_ref().and_then(|query| query.get("token")).filter(|token| !token.is_empty());
        let from_header = authorization.as_ref().and_then(|(_, scheme, token)| {
            let value = format!("{scheme} {token}");
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
        }).filter(|token| !token.is_empty());
        let expected = from_query.cloned().or(from_header);
        prop_assert_eq!(event.token().map(str::to_owned), expected);
    }

    /// An event of any shape is read or refused by serde, never a panic.
    #[test]
    fn arbitrary_events_are_read_or_refused(value in arb_json(), context in arb_object()) {
        let _ = serde_json::from_value::<WebSocketEvent>(value);
        let _ = serde_json::from_value::<WebSocketEvent>(json!({"requestContext": context}));
    }
}

/// Regression: an empty `token` parameter counts as absent, so a bearer header still counts.
#[test]
fn an_empty_token_parameter_leaves_the_bearer_header() {
    let event = WebSocketEvent {
        headers: Some([("Authorization".to_owned(), "Bearer abc".to_owned())].into()),
        query_string_parameters: Some([("token".to_owned(), String::new())].into()),
        ..WebSocketEvent::default()
    };
    assert_eq!(event.token(), Some("abc"));
}

/// Regression: serde_json's default number reader was one bit off for this volume, so the
/// volume the service wrote differed from the one the speaker sent. The workspace enables
/// serde_json's `float_roundtrip`.
#[test]
fn a_volume_reads_as_the_nearest_double() {
    let frame = r#"{"action":"setVolume","volumeLevel":6.439342363442948e-159}"#;
    let Ok(session_core::protocol::ClientMessage::SetVolume { volume_level }) =
        parse_client_frame(frame, MAX_MESSAGE_BYTES)
    else {
        panic!("setVolume is accepted");
    };
    assert_eq!(volume_level.get().to_bits(), 6.439342363442948e-159_f64.to_bits());
}

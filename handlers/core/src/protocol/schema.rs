//! JSON Schemas of the validated values the protocol carries, written by hand because each of
//! these types is a string or number with a rule that a derive cannot see (`schema` feature).
//!
//! Each schema states the rule its type's parser enforces, from the same constants where the
//! parser has one, so a client validating against the published documents refuses what the
//! service refuses. The tests below hold each schema to its parser.

use crate::ids::{NUMBER_RANGE, SessionId};
use crate::validation::{ISO_639_1, LanguageCode, Volume};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use std::borrow::Cow;

/// The longest session id the parser accepts, in bytes.
const MAX_SESSION_ID_LENGTH: usize = 64;

/// `adjective-noun-NNN` with the number in [`NUMBER_RANGE`] (100–999: a first digit of 1–9).
const SESSION_ID_PATTERN: &str = "^[a-z]+-[a-z]+-[1-9][0-9]{2}$";

/// Two lowercase letters.
const LANGUAGE_PATTERN: &str = "^[a-z]{2}$";

impl JsonSchema for LanguageCode {
    fn schema_name() -> Cow<'static, str> {
        "LanguageCode".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An ISO 639-1 language code: two lowercase letters naming a language.",
            "type": "string",
            "pattern": LANGUAGE_PATTERN,
            "enum": ISO_639_1,
        })
    }
}

impl JsonSchema for SessionId {
    fn schema_name() -> Cow<'static, str> {
        "SessionId".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": format!(
                "A session id: two lowercase words and a number {}-{}, for example `quiet-harbor-417`.",
                NUMBER_RANGE.start(),
                NUMBER_RANGE.end()
            ),
            "type": "string",
            "pattern": SESSION_ID_PATTERN,
            "maxLength": MAX_SESSION_ID_LENGTH,
            "examples": ["quiet-harbor-417"],
        })
    }
}

impl JsonSchema for Volume {
    fn schema_name() -> Cow<'static, str> {
        "Volume".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A playback volume from 0.0 (silent) to 1.0 (full).",
            "type": "number",
            "minimum": 0.0,
            "maximum": 1.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `value` matches a pattern of the form `^[a-z]+-[a-z]+-[1-9][0-9]{2}$` or
    /// `^[a-z]{2}$`: the two patterns above, checked by hand so the test needs no regex engine.
    fn matches_session_pattern(value: &str) -> bool {
        let parts: Vec<&str> = value.split('-').collect();
        let word = |word: &str| !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase());
        let number = |n: &str| {
            let digits = n.as_bytes();
            digits.len() == 3 && (b'1'..=b'9').contains(&digits[0]) && digits[1..].iter().all(u8::is_ascii_digit)
        };
        parts.len() == 3 && word(parts[0]) && word(parts[1]) && number(parts[2]) && value.len() <= MAX_SESSION_ID_LENGTH
    }

    #[test]
    fn the_session_id_schema_states_the_parsers_rule() {
        assert_eq!(NUMBER_RANGE, 100..=999, "SESSION_ID_PATTERN spells the number range out");
        let long_word = "a".repeat(MAX_SESSION_ID_LENGTH);
        for candidate in [
            "quiet-harbor-417",
            "quiet-harbor-100",
            "quiet-harbor-999",
            "quiet-harbor-099",
            "quiet-harbor-1000",
            "quiet-harbor-41",
            "Quiet-harbor-417",
            "quiet--417",
            "quiet-harbor",
            "quiet-harbor-417-x",
            "",
            &format!("{long_word}-b-417"),
            &format!("{}-b-417", &long_word[..MAX_SESSION_ID_LENGTH - 6]),
        ] {
            assert_eq!(
                SessionId::parse(candidate).is_ok(),
                matches_session_pattern(candidate),
                "{candidate:?}: the parser and the published pattern disagree"
            );
        }
    }

    #[test]
    fn the_language_schema_lists_exactly_the_codes_the_parser_accepts() {
        for code in ISO_639_1 {
            assert!(LanguageCode::parse(code).is_ok(), "{code}");
            assert!(
                code.len() == 2 && code.bytes().all(|b| b.is_ascii_lowercase()),
                "{code} breaks {LANGUAGE_PATTERN}"
            );
        }
        assert!(LanguageCode::parse("xx").is_err() && !ISO_639_1.contains(&"xx"));
    }

    #[test]
    fn the_volume_schema_has_the_parsers_bounds() {
        let schema = serde_json::to_value(Volume::json_schema(&mut SchemaGenerator::default())).expect("a schema");
        let (minimum, maximum) = (schema["minimum"].as_f64(), schema["maximum"].as_f64());
        assert_eq!((minimum, maximum), (Some(0.0), Some(1.0)));
        assert!(Volume::new(0.0).is_ok() && Volume::new(1.0).is_ok());
        assert!(Volume::new(-f64::EPSILON).is_err() && Volume::new(1.0 + f64::EPSILON).is_err());
    }
}

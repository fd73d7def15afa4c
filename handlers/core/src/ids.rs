//! Session ids: `adjective-noun-NNN`, for example `quiet-harbor-417`.
//!
//! Words come from two curated lists written for this project (`ids/adjectives.txt`,
//! `ids/nouns.txt`: 121 adjectives and 122 nouns, lowercase ASCII) and the number is
//! 100–999. A blocklist removes combinations that read badly: numbers with unfortunate
//! meanings, and terms that would appear across the joint of two words (lists are edited over
//! time; the check keeps an edit from producing an offensive pair). With today's lists the id
//! space is 121 × 122 × 896 = 13,226,752 ids ([`IdGenerator::id_space`] computes it).
//! Uniqueness is not the generator's job: the store creates sessions with a conditional write
//! and retries with a fresh id on collision.

use rand::Rng;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Numbers never used in a session id.
pub const BLOCKED_NUMBERS: &[u16] = &[187, 420, 666, 911];

/// Terms that must not be a word of either list, nor be readable across the joint of the
/// adjective and the noun. A term inside one word ("ass" in "compass") is not a match: the
/// word reads as itself.
pub const BLOCKED_TERMS: &[&str] = &[
    "anal", "ass", "cock", "coon", "cum", "damn", "dick", "die", "fag", "fuck", "gay", "hate", "hell", "hoe", "jew",
    "kill", "kkk", "nazi", "nig", "piss", "porn", "rape", "sex", "shit", "slut", "spic", "tit",
];

const ADJECTIVES: &str = include_str!("ids/adjectives.txt");
const NOUNS: &str = include_str!("ids/nouns.txt");

/// The smallest and largest number of a session id.
pub const NUMBER_RANGE: std::ops::RangeInclusive<u16> = 100..=999;

/// A syntactically valid session id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionId(String);

/// Why a string is not a session id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session ids look like `quiet-harbor-417`: two lowercase words and a number 100-999")]
pub struct InvalidSessionId;

impl SessionId {
    /// Checks the format `^[a-z]+-[a-z]+-[0-9]{3}$` with the number in 100–999.
    ///
    /// Words are not checked against today's lists, so ids stay valid when a list changes.
    pub fn parse(value: &str) -> Result<SessionId, InvalidSessionId> {
        let mut parts = value.split('-');
        let (Some(adjective), Some(noun), Some(number), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(InvalidSessionId);
        };
        let is_word = |word: &str| !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase());
        let number_ok = number.len() == 3
            && number.bytes().all(|b| b.is_ascii_digit())
            && number.parse::<u16>().is_ok_and(|n| NUMBER_RANGE.contains(&n));
        if is_word(adjective) && is_word(noun) && number_ok && value.len() <= 64 {
            Ok(SessionId(value.to_owned()))
        } else {
            Err(InvalidSessionId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SessionId {
    type Error = InvalidSessionId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        SessionId::parse(&value)
    }
}

impl From<SessionId> for String {
    fn from(id: SessionId) -> String {
        id.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Generates random session ids from two word lists, honouring the blocklist.
#[derive(Debug, Clone)]
pub struct IdGenerator {
    adjectives: Vec<&'static str>,
    nouns: Vec<&'static str>,
}

impl Default for IdGenerator {
    fn default() -> Self {
        IdGenerator::new(words(ADJECTIVES), words(NOUNS))
    }
}

fn words(list: &'static str) -> Vec<&'static str> {
    list.lines().map(str::trim).filter(|line| !line.is_empty()).collect()
}

impl IdGenerator {
    /// A generator over the given lists; words that are themselves blocked terms are dropped.
    pub fn new(adjectives: Vec<&'static str>, nouns: Vec<&'static str>) -> Self {
        let allowed = |word: &&str| !BLOCKED_TERMS.contains(word);
        IdGenerator {
            adjectives: adjectives.into_iter().filter(allowed).collect(),
            nouns: nouns.into_iter().filter(allowed).collect(),
        }
    }

    pub fn adjectives(&self) -> &[&'static str] {
        &self.adjectives
    }

    pub fn nouns(&self) -> &[&'static str] {
        &self.nouns
    }

    /// A fresh random id that is not blocked.
    pub fn generate(&self, rng: &mut impl Rng) -> SessionId {
        loop {
            let adjective = self.adjectives[rng.random_range(0..self.adjectives.len())];
            let noun = self.nouns[rng.random_range(0..self.nouns.len())];
            let number = rng.random_range(NUMBER_RANGE);
            if !is_blocked(adjective, noun, number) {
                return SessionId(format!("{adjective}-{noun}-{number}"));
            }
        }
    }

    /// How many distinct ids [`IdGenerator::generate`] can return.
    pub fn id_space(&self) -> u64 {
        let allowed_pairs = self
            .adjectives
            .iter()
            .flat_map(|adjective| self.nouns.iter().map(move |noun| (adjective, noun)))
            .filter(|(adjective, noun)| !joint_is_blocked(adjective, noun))
            .count() as u64;
        let numbers = NUMBER_RANGE.count() as u64 - BLOCKED_NUMBERS.len() as u64;
        allowed_pairs * numbers
    }
}

/// Whether the combination is on the blocklist.
pub fn is_blocked(adjective: &str, noun: &str, number: u16) -> bool {
    BLOCKED_NUMBERS.contains(&number) || joint_is_blocked(adjective, noun)
}

/// Whether either word is a blocked term, or a blocked term spans the joint of the two.
fn joint_is_blocked(adjective: &str, noun: &str) -> bool {
    let joined = format!("{adjective}{noun}");
    let joint = adjective.len();
    BLOCKED_TERMS.iter().any(|term| {
        *term == adjective
            || *term == noun
            || joined.match_indices(term).any(|(start, _)| start < joint && start + term.len() > joint)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};
    use std::collections::BTreeSet;

    #[test]
    fn the_lists_are_curated_lowercase_unique_and_large_enough() {
        let generator = IdGenerator::default();
        for list in [generator.adjectives(), generator.nouns()] {
            assert!(list.len() > 100, "a list has only {} words", list.len());
            let unique: BTreeSet<_> = list.iter().collect();
            assert_eq!(unique.len(), list.len(), "duplicate word");
            for word in list {
                assert!(word.bytes().all(|b| b.is_ascii_lowercase()), "{word:?}");
            }
        }
        // No list word was dropped by the blocklist: the lists are clean as written.
        assert_eq!(generator.adjectives().len(), words(ADJECTIVES).len());
        assert_eq!(generator.nouns().len(), words(NOUNS).len());
    }

    #[test]
    fn generated_ids_have_the_documented_format() {
        let generator = IdGenerator::default();
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..10_000 {
            let id = generator.generate(&mut rng);
            assert_eq!(SessionId::parse(id.as_str()), Ok(id.clone()));
            let parts: Vec<_> = id.as_str().split('-').collect();
            assert!(generator.adjectives().contains(&parts[0]));
            assert!(generator.nouns().contains(&parts[1]));
        }
    }

    #[test]
    fn generated_ids_never_use_a_blocked_number() {
        let generator = IdGenerator::default();
        let mut rng = StdRng::seed_from_u64(11);
        let mut numbers = BTreeSet::new();
        for _ in 0..200_000 {
            let id = generator.generate(&mut rng);
            let number: u16 = id.as_str().rsplit('-').next().unwrap_or("").parse().unwrap_or(0);
            numbers.insert(number);
        }
        for blocked in BLOCKED_NUMBERS {
            assert!(!numbers.contains(blocked), "{blocked} was generated");
        }
        // The sample covers the whole number range otherwise, so the check above is meaningful.
        assert_eq!(numbers.len(), 900 - BLOCKED_NUMBERS.len());
    }

    #[test]
    fn a_term_across_the_joint_of_two_words_is_blocked() {
        // Neither "shi" nor "tide" is blocked, but read together they are.
        let generator = IdGenerator::new(vec!["sunny", "shi"], vec!["tide", "maple"]);
        assert!(is_blocked("shi", "tide", 417));
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..2_000 {
            assert!(!generator.generate(&mut rng).as_str().starts_with("shi-tide-"));
        }
        assert_eq!(generator.id_space(), 3 * 896);
    }

    #[test]
    fn a_blocked_word_is_dropped_from_its_list() {
        let generator = IdGenerator::new(vec!["sunny", "hate"], vec!["tide"]);
        assert_eq!(generator.adjectives(), ["sunny"]);
        assert!(is_blocked("hate", "tide", 417));
    }

    #[test]
    fn a_term_inside_one_word_is_not_a_match() {
        // "compass" contains a blocked term but reads as itself.
        assert!(!is_blocked("quiet", "compass", 417));
        assert!(IdGenerator::default().nouns().contains(&"compass"));
    }

    #[test]
    fn the_id_space_is_as_documented() {
        assert_eq!(IdGenerator::default().id_space(), 121 * 122 * 896);
        assert_eq!(IdGenerator::default().id_space(), 13_226_752);
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "quiet",
            "quiet-harbor",
            "quiet-harbor-41",
            "quiet-harbor-4170",
            "quiet-harbor-099",
            "Quiet-harbor-417",
            "quiet-harbor-417-x",
            "quiet_harbor_417",
            "quiet--417",
            "-harbor-417",
            "quiet-harb0r-417",
            "quiet-harbor-4a7",
            "quiet-harbor-+17",
            "quiet-harbor-417 ",
            "qüiet-harbor-417",
        ] {
            assert_eq!(SessionId::parse(bad), Err(InvalidSessionId), "{bad:?}");
        }
        assert!(SessionId::parse("quiet-harbor-100").is_ok());
        assert!(SessionId::parse("quiet-harbor-999").is_ok());
    }

    #[test]
    fn session_ids_serialize_as_strings_and_refuse_bad_ones() {
        let id: SessionId = serde_json::from_str("\"quiet-harbor-417\"").expect("valid");
        assert_eq!(serde_json::to_string(&id).expect("serializes"), "\"quiet-harbor-417\"");
        assert!(serde_json::from_str::<SessionId>("\"nope\"").is_err());
    }
}

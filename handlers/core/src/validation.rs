//! Validated values of the protocol: language codes, quality tiers, volume, message size.
//!
//! Each type can only hold a valid value, so code that has one never re-checks it. Each
//! parse error says the rule that was broken, in words a client author can act on.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The largest message API Gateway delivers or accepts on a WebSocket (AWS_FACTS 11), and the
/// default per-stage limit.
pub const MAX_MESSAGE_BYTES: usize = contract::limits::MAX_MESSAGE_BYTES as usize;

/// ISO 639-1 two-letter codes.
pub(crate) const ISO_639_1: &[&str] = &[
    "aa", "ab", "ae", "af", "ak", "am", "an", "ar", "as", "av", "ay", "az", "ba", "be", "bg", "bi", "bm", "bn", "bo",
    "br", "bs", "ca", "ce", "ch", "co", "cr", "cs", "cu", "cv", "cy", "da", "de", "dv", "dz", "ee", "el", "en", "eo",
    "es", "et", "eu", "fa", "ff", "fi", "fj", "fo", "fr", "fy", "ga", "gd", "gl", "gn", "gu", "gv", "ha", "he", "hi",
    "ho", "hr", "ht", "hu", "hy", "hz", "ia", "id", "ie", "ig", "ii", "ik", "io", "is", "it", "iu", "ja", "jv", "ka",
    "kg", "ki", "kj", "kk", "kl", "km", "kn", "ko", "kr", "ks", "ku", "kv", "kw", "ky", "la", "lb", "lg", "li", "ln",
    "lo", "lt", "lu", "lv", "mg", "mh", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "na", "nb", "nd", "ne", "ng",
    "nl", "nn", "no", "nr", "nv", "ny", "oc", "oj", "om", "or", "os", "pa", "pi", "pl", "ps", "pt", "qu", "rm", "rn",
    "ro", "ru", "rw", "sa", "sc", "sd", "se", "sg", "si", "sk", "sl", "sm", "sn", "so", "sq", "sr", "ss", "st", "su",
    "sv", "sw", "ta", "te", "tg", "th", "ti", "tk", "tl", "tn", "to", "tr", "ts", "tt", "tw", "ty", "ug", "uk", "ur",
    "uz", "ve", "vi", "vo", "wa", "wo", "xh", "yi", "yo", "za", "zh", "zu",
];

/// A language code: two lowercase letters (`^[a-z]{2}$`) naming an ISO 639-1 language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LanguageCode([u8; 2]);

/// Why a value is not a language code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidLanguage {
    #[error("must be two lowercase letters (ISO 639-1), for example \"de\"")]
    Format,
    #[error("\"{0}\" is not an ISO 639-1 language code")]
    Unknown(String),
}

impl LanguageCode {
    pub fn parse(value: &str) -> Result<LanguageCode, InvalidLanguage> {
        let bytes = value.as_bytes();
        if bytes.len() != 2 || !bytes.iter().all(u8::is_ascii_lowercase) {
            return Err(InvalidLanguage::Format);
        }
        if !ISO_639_1.contains(&value) {
            return Err(InvalidLanguage::Unknown(value.to_owned()));
        }
        Ok(LanguageCode([bytes[0], bytes[1]]))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII lowercase letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl TryFrom<String> for LanguageCode {
    type Error = InvalidLanguage;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        LanguageCode::parse(&value)
    }
}

impl From<LanguageCode> for String {
    fn from(code: LanguageCode) -> String {
        code.as_str().to_owned()
    }
}

impl fmt::Display for LanguageCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The translation quality a speaker pays for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum QualityTier {
    #[default]
    Standard,
    Premium,
}

/// Why a value is not a quality tier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be \"standard\" or \"premium\"")]
pub struct InvalidQualityTier;

impl QualityTier {
    pub fn parse(value: &str) -> Result<QualityTier, InvalidQualityTier> {
        match value {
            "standard" => Ok(QualityTier::Standard),
            "premium" => Ok(QualityTier::Premium),
            _ => Err(InvalidQualityTier),
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            QualityTier::Standard => "standard",
            QualityTier::Premium => "premium",
        }
    }
}

/// A playback volume between 0.0 and 1.0 inclusive.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Volume(f64);

/// Why a number is not a volume.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be a number from 0.0 to 1.0")]
pub struct InvalidVolume;

impl Volume {
    pub const FULL: Volume = Volume(1.0);

    pub fn new(level: f64) -> Result<Volume, InvalidVolume> {
        if level.is_finite() && (0.0..=1.0).contains(&level) { Ok(Volume(level)) } else { Err(InvalidVolume) }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Volume {
    type Error = InvalidVolume;
    fn try_from(level: f64) -> Result<Self, Self::Error> {
        Volume::new(level)
    }
}

impl From<Volume> for f64 {
    fn from(volume: Volume) -> f64 {
        volume.0
    }
}

/// Why a message is refused for its size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("message is {size} bytes; the limit is {limit} bytes")]
pub struct MessageTooLarge {
    pub size: usize,
    pub limit: usize,
}

/// Checks a raw message against a size limit in bytes.
pub fn check_message_size(message: &str, limit: usize) -> Result<(), MessageTooLarge> {
    if message.len() > limit { Err(MessageTooLarge { size: message.len(), limit }) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_iso_list_is_sorted_unique_and_complete() {
        let mut sorted = ISO_639_1.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, ISO_639_1, "keep the list sorted and without duplicates");
        assert_eq!(ISO_639_1.len(), 183);
    }

    #[test]
    fn languages_parse_and_refuse_with_the_rule() {
        for good in ["de", "en", "zh", "zu", "aa"] {
            assert_eq!(LanguageCode::parse(good).map(|code| code.to_string()), Ok(good.to_owned()));
        }
        for bad in ["", "d", "deu", "DE", "De", "d1", "é", "  "] {
            assert_eq!(LanguageCode::parse(bad), Err(InvalidLanguage::Format), "{bad:?}");
        }
        assert_eq!(LanguageCode::parse("xx"), Err(InvalidLanguage::Unknown("xx".into())));
        assert_eq!(LanguageCode::parse("qq"), Err(InvalidLanguage::Unknown("qq".into())));
    }

    #[test]
    fn quality_tiers_parse_exactly() {
        assert_eq!(QualityTier::parse("standard"), Ok(QualityTier::Standard));
        assert_eq!(QualityTier::parse("premium"), Ok(QualityTier::Premium));
        for bad in ["Premium", "gold", "", " standard"] {
            assert_eq!(QualityTier::parse(bad), Err(InvalidQualityTier));
        }
        assert_eq!(QualityTier::default(), QualityTier::Standard);
    }

    #[test]
    fn volume_is_bounded_and_finite() {
        for good in [0.0, 0.5, 1.0] {
            assert_eq!(Volume::new(good).map(Volume::get), Ok(good));
        }
        for bad in [-0.01, 1.0001, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(Volume::new(bad), Err(InvalidVolume), "{bad}");
        }
    }

    #[test]
    fn message_size_is_measured_in_bytes() {
        assert!(check_message_size(&"a".repeat(MAX_MESSAGE_BYTES), MAX_MESSAGE_BYTES).is_ok());
        let err = check_message_size(&"a".repeat(MAX_MESSAGE_BYTES + 1), MAX_MESSAGE_BYTES);
        assert_eq!(err, Err(MessageTooLarge { size: MAX_MESSAGE_BYTES + 1, limit: MAX_MESSAGE_BYTES }));
        // Four bytes in UTF-8, one char: the limit is on bytes.
        assert!(check_message_size("🎧🎧", 7).is_err());
    }
}

//! Typed access to the fields of a JSON object, with refusals that name the field: a missing
//! or `null` required field is `MISSING_PARAMETER`, a wrong type or broken rule is
//! `INVALID_PARAMETER`. Frames and HTTP bodies are both read through it.

use super::ProtocolError;
use super::client::{ChunkId, MAX_CHUNK_ID_CHARS};
use crate::validation::Volume;
use serde_json::{Map, Value};

#[derive(Debug)]
/// Typed access to the fields of one JSON object, producing [`ProtocolError`]s that name the
/// field by its full dotted path.
pub struct Fields<'a> {
    object: &'a Map<String, Value>,
    prefix: String,
}

impl<'a> Fields<'a> {
    /// The fields of a top-level object.
    pub fn new(object: &'a Map<String, Value>) -> Fields<'a> {
        Fields { object, prefix: String::new() }
    }

    fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() { name.to_owned() } else { format!("{}.{name}", self.prefix) }
    }

    /// The field's value; `null` counts as absent.
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.object.get(name).filter(|value| !value.is_null())
    }

    fn present(&self, name: &str) -> Result<&'a Value, ProtocolError> {
        self.get(name).ok_or_else(|| ProtocolError::missing(&self.path(name)))
    }

    pub fn required_str(&self, name: &str) -> Result<&'a str, ProtocolError> {
        self.present(name)?.as_str().ok_or_else(|| ProtocolError::invalid(&self.path(name), "must be a string"))
    }

    pub fn required<T, E: std::fmt::Display>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, ProtocolError> {
        let text = self.required_str(name)?;
        parse(text).map_err(|rule| ProtocolError::invalid(&self.path(name), rule))
    }

    pub fn optional<T, E: std::fmt::Display>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, ProtocolError> {
        if self.get(name).is_none() {
            return Ok(None);
        }
        self.required(name, parse).map(Some)
    }

    pub fn required_bool(&self, name: &str) -> Result<bool, ProtocolError> {
        self.present(name)?.as_bool().ok_or_else(|| ProtocolError::invalid(&self.path(name), "must be true or false"))
    }

    pub fn required_u64(&self, name: &str) -> Result<u64, ProtocolError> {
        self.present(name)?.as_u64().ok_or_else(|| {
            ProtocolError::invalid(&self.path(name), "must be a non-negative integer (milliseconds since the epoch)")
        })
    }

    pub fn optional_u64(&self, name: &str) -> Result<Option<u64>, ProtocolError> {
        if self.get(name).is_none() {
            return Ok(None);
        }
        self.required_u64(name).map(Some)
    }

    pub fn required_volume(&self, name: &str) -> Result<Volume, ProtocolError> {
        let level = self
            .present(name)?
            .as_f64()
            .ok_or_else(|| ProtocolError::invalid(&self.path(name), "must be a number from 0.0 to 1.0"))?;
        Volume::new(level).map_err(|rule| ProtocolError::invalid(&self.path(name), rule))
    }

    pub fn required_chunk_id(&self, name: &str) -> Result<ChunkId, ProtocolError> {
        match self.present(name)? {
            Value::Number(number) => number.as_u64().map(ChunkId::Number),
            Value::String(text) if !text.is_empty() && text.chars().count() <= MAX_CHUNK_ID_CHARS => {
                Some(ChunkId::Text(text.clone()))
            }
            _ => None,
        }
        .ok_or_else(|| {
            ProtocolError::invalid(
                &self.path(name),
                format!("must be a non-negative integer or a string of 1 to {MAX_CHUNK_ID_CHARS} characters"),
            )
        })
    }

    pub fn required_object(&self, name: &str) -> Result<Fields<'a>, ProtocolError> {
        match self.present(name)? {
            Value::Object(object) => Ok(Fields { object, prefix: self.path(name) }),
            _ => Err(ProtocolError::invalid(&self.path(name), "must be an object")),
        }
    }
}

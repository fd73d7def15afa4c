//! Reading and writing DynamoDB attribute maps, with errors that name the bad attribute.

use super::StoreError;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The item's string key attribute, for naming it in errors (`?` if it has none).
pub(super) fn key_of<'a>(item: &'a Item, name: &str) -> &'a str {
    match item.get(name) {
        Some(AttributeValue::S(key)) => key,
        _ => "?",
    }
}

/// Reads attributes of one item, reporting problems as [`StoreError::Corrupt`].
pub(super) struct Reader<'a> {
    pub(super) item: &'a Item,
    pub(super) table: &'a str,
    pub(super) key: &'a str,
}

impl<'a> Reader<'a> {
    pub(super) fn corrupt(&self, problem: impl Into<String>) -> StoreError {
        StoreError::Corrupt { table: self.table.to_owned(), key: self.key.to_owned(), problem: problem.into() }
    }

    pub(super) fn opt_string(&self, name: &str) -> Result<Option<&'a str>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(text)) => Ok(Some(text)),
            Some(_) => Err(self.corrupt(format!("`{name}` is not a string"))),
        }
    }

    pub(super) fn string(&self, name: &str) -> Result<&'a str, StoreError> {
        self.opt_string(name)?.ok_or_else(|| self.corrupt(format!("`{name}` is missing")))
    }

    pub(super) fn parsed<T, E: std::fmt::Display>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, StoreError> {
        let text = self.string(name)?;
        parse(text).map_err(|problem| self.corrupt(format!("`{name}` = {text:?}: {problem}")))
    }

    pub(super) fn opt_number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(text)) => {
                text.parse().map(Some).map_err(|_| self.corrupt(format!("`{name}` = {text} is out of range")))
            }
            Some(_) => Err(self.corrupt(format!("`{name}` is not a number"))),
        }
    }

    pub(super) fn number<T: std::str::FromStr>(&self, name: &str) -> Result<T, StoreError> {
        self.opt_number(name)?.ok_or_else(|| self.corrupt(format!("`{name}` is missing")))
    }

    pub(super) fn opt_bool(&self, name: &str) -> Result<Option<bool>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::Bool(value)) => Ok(Some(*value)),
            Some(_) => Err(self.corrupt(format!("`{name}` is not a boolean"))),
        }
    }

    pub(super) fn bool(&self, map: &Item, name: &str) -> Result<bool, StoreError> {
        match map.get(name) {
            Some(AttributeValue::Bool(value)) => Ok(*value),
            _ => Err(self.corrupt(format!("`{name}` is not a boolean"))),
        }
    }

    pub(super) fn map(&self, name: &str) -> Result<&'a Item, StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::M(map)) => Ok(map),
            _ => Err(self.corrupt(format!("`{name}` is not a map"))),
        }
    }
}

//! What every way of starting a run takes besides its workflow and input: the additional
//! metadata runs are found by, and a priority.

use std::num::NonZeroU32;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::{Error, Result};

/// Additional metadata and priority of the runs a trigger, cron or schedule starts.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `key`/`value` pairs the runs carry (and can be listed by).
    pub metadata: Vec<(String, String)>,
    /// 1 (lowest) to 3 (highest); the engine's default (1) when `None`.
    pub priority: Option<i32>,
}

impl RunOptions {
    /// The runs carry `key` = `value`.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    /// The runs' priority, 1 to 3.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = Some(priority);
        self
    }

    /// The metadata as the JSON object the engine takes.
    pub(crate) fn metadata_object(&self) -> Map<String, Value> {
        self.metadata
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect()
    }

    /// The priority, refused before the call when the engine would refuse it.
    pub(crate) fn checked_priority(&self) -> Result<Option<NonZeroU32>> {
        match self.priority {
            None => Ok(None),
            Some(p @ 1..=3) => Ok(NonZeroU32::new(p.unsigned_abs())),
            Some(p) => Err(Error::Input(format!("priority {p} is not between 1 and 3"))),
        }
    }
}

/// `value` as the JSON object a run's input (or a filter's payload) must be, `null` as an
/// empty one; `what` names it in the [`Error::Input`] otherwise.
pub fn object(value: &impl Serialize, what: &str) -> Result<Map<String, Value>> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(other) => Err(Error::Input(format!(
            "{what} must be a JSON object, not {}",
            kind(&other)
        ))),
        Err(e) => Err(Error::Input(format!("{what} does not serialize to JSON: {e}"))),
    }
}

/// `pairs` as the `key:value` strings the engine's list filters take.
pub(crate) fn pairs(pairs: &[(String, String)]) -> Vec<String> {
    pairs.iter().map(|(k, v)| format!("{k}:{v}")).collect()
}

/// `values` as the contract's constrained strings (`what` names them in the error).
pub(crate) fn items<T>(values: &[String], what: &str) -> Result<Vec<T>>
where
    T: TryFrom<String>,
    T::Error: std::fmt::Display,
{
    values
        .iter()
        .map(|v| T::try_from(v.clone()).map_err(|e| Error::Input(format!("{what} {v:?}: {e}"))))
        .collect()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inputs_are_objects_or_nothing() {
        assert_eq!(object(&json!({"a": 1}), "input").unwrap()["a"], json!(1));
        assert!(object(&(), "input").unwrap().is_empty());
        let e = object(&json!([1, 2]), "the input").unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad input: the input must be a JSON object, not an array"
        );
    }

    #[test]
    fn priorities_outside_the_engines_range_are_refused() {
        assert_eq!(RunOptions::default().checked_priority().unwrap(), None);
        assert_eq!(
            RunOptions::default().priority(3).checked_priority().unwrap(),
            NonZeroU32::new(3)
        );
        assert!(RunOptions::default().priority(4).checked_priority().is_err());
        assert!(RunOptions::default().priority(0).checked_priority().is_err());
    }

    #[test]
    fn metadata_becomes_an_object_and_filter_pairs() {
        let o = RunOptions::default().metadata("team", "a").metadata("batch", "7");
        assert_eq!(Value::Object(o.metadata_object()), json!({"team": "a", "batch": "7"}));
        assert_eq!(pairs(&o.metadata), ["team:a", "batch:7"]);
    }
}

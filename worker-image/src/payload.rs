//! The JSON that travels with assignments and results: parsing an action's payload and
//! formatting a failure the way the official clients parse it.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The parsed `action_payload` of a START_STEP_RUN.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ActionPayload {
    /// The run's input (`{}` when absent).
    #[serde(default = "empty_object")]
    pub input: Value,
    /// Outputs of completed parent tasks, keyed by task name.
    #[serde(default)]
    pub parents: BTreeMap<String, Value>,
    /// Errors of failed tasks of the run, keyed by task name (for on-failure tasks).
    #[serde(default)]
    pub step_run_errors: BTreeMap<String, String>,
    /// What triggered the run (e.g. an event's payload).
    #[serde(default)]
    pub triggers: BTreeMap<String, Value>,
    /// How the run was started (e.g. `manual`, `event`, `cron`), when the engine says.
    #[serde(default)]
    pub triggered_by: Option<String>,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// Parses an action payload; an empty string is an empty payload.
pub fn parse_action_payload(raw: &str) -> Result<ActionPayload, String> {
    if raw.trim().is_empty() {
        return Ok(ActionPayload {
            input: empty_object(),
            ..ActionPayload::default()
        });
    }
    let depth = nesting_depth(raw);
    if depth > MAX_PAYLOAD_DEPTH {
        return Err(format!(
            "action payload is nested {depth} levels deep, more than the {MAX_PAYLOAD_DEPTH} this worker reads"
        ));
    }
    let mut de = serde_json::Deserializer::from_str(raw);
    // serde_json stops at 128 levels; the depth was bounded above instead.
    de.disable_recursion_limit();
    let mut p = ActionPayload::deserialize(&mut de)
        .and_then(|p| de.end().map(|()| p))
        .map_err(|e| format!("action payload is not the expected JSON: {e}"))?;
    if p.input.is_null() {
        p.input = empty_object();
    }
    Ok(p)
}

/// The deepest nesting of objects and arrays a payload may have (serde_json alone allows 128,
/// which inputs other SDKs read fine can exceed; far deeper would risk the worker's stack).
pub const MAX_PAYLOAD_DEPTH: usize = 512;

/// How deeply `raw` nests objects and arrays (brackets inside strings do not count).
fn nesting_depth(raw: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in raw.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Parses `additional_metadata`; absent or empty is an empty map.
pub fn parse_metadata(raw: Option<&str>) -> Result<serde_json::Map<String, Value>, String> {
    match raw.map(str::trim) {
        None | Some("") | Some("null") => Ok(Default::default()),
        Some(s) => serde_json::from_str(s).map_err(|e| format!("additional metadata is not a JSON object: {e}")),
    }
}

/// The FAILED event payload: `<type>: <message>` then the metadata trailer the official
/// clients look for. Never empty.
pub fn failure_payload(error_type: &str, message: &str, task_run_external_id: &str) -> String {
    let message = if message.trim().is_empty() {
        "task failed without a message"
    } else {
        message
    };
    let trailer = serde_json::json!({ "__hatchet_error_metadata__": { "task_run_external_id": task_run_external_id } });
    format!("{error_type}: {message}\n\n\n{trailer}")
}

/// An error as the engine stores it, without the metadata trailer [`failure_payload`] adds.
pub fn error_message(stored: &str) -> &str {
    match stored.find("__hatchet_error_metadata__") {
        Some(at) => stored[..at].trim_end_matches(['{', '"']).trim_end(),
        None => stored.trim_end(),
    }
}

/// A COMPLETED payload: JSON without NUL characters (the engine refuses `\u0000`), or empty
/// when the task returned nothing.
pub fn completion_payload(output: &Value) -> Result<String, String> {
    // Nothing returned: an empty payload, as the official SDKs send (not the text `null`).
    if output.is_null() {
        return Ok(String::new());
    }
    if has_nul(output) {
        return Err("output contains a NUL character (\\u0000), which the engine refuses".into());
    }
    serde_json::to_string(output).map_err(|e| format!("output is not JSON: {e}"))
}

/// Whether a string anywhere in `v` (key or value) holds a NUL character.
fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(levels: usize) -> String {
        format!(
            r#"{{"input":{{"keep":1,"deep":{}{}}}}}"#,
            "[".repeat(levels),
            "]".repeat(levels)
        )
    }

    #[test]
    fn deep_inputs_are_read_up_to_the_limit_and_refused_clearly_past_it() {
        let p =
            parse_action_payload(&nested(MAX_PAYLOAD_DEPTH - 2)).expect("512 levels (serde_json alone stops at 128)");
        assert_eq!(p.input["keep"], 1);
        let err = parse_action_payload(&nested(MAX_PAYLOAD_DEPTH + 1)).unwrap_err();
        assert!(
            err.contains(&format!("nested {} levels deep", MAX_PAYLOAD_DEPTH + 3)),
            "{err}"
        );
        let tricky = r#"{"s": "[[[{{{ \" [", "a": [1]}"#;
        assert!(serde_json::from_str::<Value>(tricky).is_ok());
        assert_eq!(nesting_depth(tricky), 2, "brackets in strings do not count");
        assert!(
            parse_action_payload(r#"{"input": {}} trailing"#).is_err(),
            "one JSON value only"
        );
    }

    #[test]
    fn nothing_returned_is_an_empty_payload() {
        assert_eq!(completion_payload(&Value::Null).unwrap(), "");
        assert_eq!(completion_payload(&json!({"a": null})).unwrap(), r#"{"a":null}"#);
    }

    #[test]
    fn payload_with_parents_and_errors() {
        let p = parse_action_payload(
            r#"{"input":{"n":1},"parents":{"a":{"x":2}},"step_run_errors":{"b":"boom"},"triggered_by":"manual","user_data":{}}"#,
        )
        .unwrap();
        assert_eq!(p.input, json!({"n":1}));
        assert_eq!(p.parents["a"], json!({"x":2}));
        assert_eq!(p.step_run_errors["b"], "boom");
    }

    #[test]
    fn empty_and_null_inputs_become_objects() {
        assert_eq!(parse_action_payload("").unwrap().input, json!({}));
        assert_eq!(parse_action_payload(r#"{"input":null}"#).unwrap().input, json!({}));
        assert!(
            parse_action_payload("{not json")
                .unwrap_err()
                .contains("action payload")
        );
    }

    #[test]
    fn metadata_parsing() {
        assert!(parse_metadata(None).unwrap().is_empty());
        assert_eq!(parse_metadata(Some(r#"{"k":"v"}"#)).unwrap()["k"], "v");
        assert!(parse_metadata(Some("[1]")).is_err());
    }

    #[test]
    fn failure_payload_parses_like_the_official_clients() {
        let p = failure_payload("ValueError", "bad thing", "run-1");
        assert!(p.starts_with("ValueError: bad thing\n"));
        let trailer: Value = serde_json::from_str(p.rsplit("\n\n").next().unwrap()).unwrap();
        assert_eq!(trailer["__hatchet_error_metadata__"]["task_run_external_id"], "run-1");
        assert!(failure_payload("E", "", "r").contains("without a message"));
        assert_eq!(error_message(&p), "ValueError: bad thing");
        assert_eq!(error_message("plain error\n"), "plain error");
    }

    #[test]
    fn completion_refuses_nul() {
        assert_eq!(completion_payload(&json!({"a":1})).unwrap(), r#"{"a":1}"#);
        assert!(completion_payload(&json!({"a":"x\u{0}y"})).is_err());
        assert!(completion_payload(&json!({"deep": [{"k\u{0}": 1}]})).is_err());
        let text = r"a literal backslash-u0000 is text, not a NUL: \u0000";
        assert!(completion_payload(&json!({ "a": text })).is_ok());
    }
}

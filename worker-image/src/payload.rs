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

/// Room an assignment takes besides its input and metadata: ids, names, the payload's keys.
const ASSIGNMENT_ENVELOPE_BYTES: usize = 16 * 1024;

/// How many bytes `json` may take once the engine hands it on: its database renders a space
/// after every `:` and `,`, and Go's encoder writes `<`, `>`, `&`, U+2028 and U+2029 as
/// six-byte escapes. An upper bound, so a run that passes [`check_deliverable`] can reach
/// a worker.
pub fn delivered_len(json: &[u8]) -> usize {
    let (mut extra, mut in_string, mut escaped) = (0, false, false);
    for (i, &b) in json.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                b'<' | b'>' | b'&' => extra += 5,
                // U+2028 and U+2029 are E2 80 A8 and E2 80 A9: three bytes become six.
                0xE2 if json.get(i + 1) == Some(&0x80) && matches!(json.get(i + 2), Some(0xA8 | 0xA9)) => extra += 3,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b':' | b',' => extra += 1,
                _ => {}
            }
        }
    }
    json.len() + extra
}

/// Refuses a run whose assignment could not reach a worker: its input (`copies` times: an
/// event's payload is both the input and the trigger) and metadata, as the engine delivers
/// them, plus the envelope, must fit the `limit` the engine sends messages within.
pub fn check_deliverable(input: &[u8], copies: usize, metadata: &[u8], limit: usize) -> Result<(), String> {
    let size = delivered_len(input) * copies + delivered_len(metadata) * 2 + ASSIGNMENT_ENVELOPE_BYTES;
    if size <= limit {
        return Ok(());
    }
    Err(format!(
        "input of {} bytes (with its metadata {} bytes as the engine delivers it) would make an assignment \
         of about {size} bytes, over the {limit}-byte message limit within which the engine delivers runs to \
         workers; the run could never start. Pass a reference to large data instead, or raise the engine's \
         SERVER_GRPC_MAX_MSG_SIZE together with the workers' HATCHET_CLIENT_GRPC_MAX_RECV_MESSAGE_LENGTH and \
         this client's HATCHET_CLIENT_GRPC_MAX_SEND_MESSAGE_LENGTH",
        input.len(),
        size - ASSIGNMENT_ENVELOPE_BYTES,
    ))
}

/// The key of the JSON line that ends a failure payload, naming the task run it belongs to.
const ERROR_METADATA_KEY: &str = "__hatchet_error_metadata__";

/// The FAILED event payload in the shape the official SDKs write and parse: a header
/// `Type: message` (a `": "` inside the type written `":::"`, each newline of the message
/// escaped with a backslash), the trace on the next lines, a blank line, then the
/// `__hatchet_error_metadata__` JSON naming the task run. Never empty: a blank message,
/// type or trace is replaced by one that says so.
pub fn failure_payload(error_type: &str, message: &str, trace: &str, task_run_external_id: &str) -> String {
    let error_type = match error_type.trim() {
        "" => "Error".to_owned(),
        t => t.replace('\n', " ").replace(": ", ":::"),
    };
    let message = match message.trim() {
        "" => "task failed without a message".to_owned(),
        _ => message.replace('\n', "\\\n"),
    };
    let trace = match trace.trim_end() {
        "" => "(no trace)",
        t => t,
    };
    let id = serde_json::to_string(task_run_external_id).expect("a string serialises");
    format!("{error_type}: {message}\n{trace}\n\n{{\"{ERROR_METADATA_KEY}\": {{\"task_run_external_id\": {id}}}}}")
}

/// A failure as the engine stored it, split back into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The error type (`ValueError`, `TaskError`, ...); empty when the text had no header.
    pub error_type: String,
    /// The message, newlines restored.
    pub message: String,
    /// What followed the header.
    pub trace: String,
    /// The task run the metadata line names, when there is one.
    pub task_run_external_id: Option<String>,
}

impl Failure {
    /// `Type: message`, or the message alone when there is no type.
    pub fn headline(&self) -> String {
        if self.error_type.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.error_type, self.message)
        }
    }
}

/// Parses what [`failure_payload`] (or an official SDK) wrote. Unlike the Python parser, a
/// multi-line message comes back whole: the header ends at the first newline that is not
/// escaped. Text of another shape comes back as the message.
pub fn parse_failure(stored: &str) -> Failure {
    let (body, task_run_external_id) = match stored.trim_end().rsplit_once('\n') {
        Some((body, last)) => match serde_json::from_str::<Value>(last) {
            Ok(v) if v.get(ERROR_METADATA_KEY).is_some() => {
                let id = v[ERROR_METADATA_KEY]["task_run_external_id"]
                    .as_str()
                    .map(str::to_owned);
                (body.trim(), id)
            }
            _ => (stored.trim(), None),
        },
        None => (stored.trim(), None),
    };
    let header_end = body
        .char_indices()
        .find(|&(i, c)| c == '\n' && !body[..i].ends_with('\\'))
        .map_or(body.len(), |(i, _)| i);
    let (header, trace) = (&body[..header_end], body.get(header_end + 1..).unwrap_or(""));
    match header.split_once(": ") {
        Some((ty, msg)) if !ty.is_empty() && !ty.contains(char::is_whitespace) => Failure {
            error_type: ty.replace(":::", ": "),
            message: msg.replace("\\\n", "\n"),
            trace: trace.to_owned(),
            task_run_external_id,
        },
        _ => Failure {
            error_type: String::new(),
            message: body.to_owned(),
            trace: String::new(),
            task_run_external_id,
        },
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
    fn failure_payload_has_the_official_shape_and_parses_back() {
        let p = failure_payload("ValueError", "bad thing", "in task a", "run-1");
        assert_eq!(
            p,
            "ValueError: bad thing\nin task a\n\n{\"__hatchet_error_metadata__\": {\"task_run_external_id\": \"run-1\"}}"
        );
        let f = parse_failure(&p);
        assert_eq!(f.headline(), "ValueError: bad thing");
        assert_eq!(
            (f.trace.as_str(), f.task_run_external_id.as_deref()),
            ("in task a", Some("run-1"))
        );

        let p = failure_payload("My: Type", "line 1\nline 2: more", "t1\nt2\n", "r");
        assert!(p.starts_with("My:::Type: line 1\\\nline 2: more\nt1\nt2\n\n{"), "{p:?}");
        let f = parse_failure(&p);
        assert_eq!(
            (f.error_type.as_str(), f.message.as_str()),
            ("My: Type", "line 1\nline 2: more")
        );
        assert_eq!(f.trace, "t1\nt2");

        let blank = failure_payload(" ", "", "", "r");
        assert!(
            blank.starts_with("Error: task failed without a message\n(no trace)\n\n"),
            "{blank:?}"
        );
    }

    #[test]
    fn failures_of_other_shapes_come_back_as_the_message() {
        let go = parse_failure("\"my go error: bad\"");
        assert_eq!(
            (go.error_type.as_str(), go.message.as_str()),
            ("", "\"my go error: bad\"")
        );
        assert_eq!(parse_failure("plain error\n").headline(), "plain error");
        assert_eq!(parse_failure("").headline(), "");
    }

    #[test]
    fn delivered_length_counts_what_the_engine_adds() {
        assert_eq!(delivered_len(br#"{"a":1,"b":[1,2]}"#), 17 + 4);
        assert_eq!(delivered_len(br#"{"s":"a:b,<&>"}"#), 15 + 1 + 15);
        assert_eq!(
            delivered_len(br#"["\"<"]"#),
            7 + 5,
            "an escaped quote does not end the string"
        );
        assert_eq!(delivered_len("[\"\u{2028}\"]".as_bytes()), 7 + 3);
    }

    #[test]
    fn undeliverable_inputs_are_refused_with_the_sizes() {
        let limit = 4 * 1024 * 1024;
        let fits = serde_json::to_vec(&json!({"s": "x".repeat(limit - 20 * 1024)})).unwrap();
        assert!(check_deliverable(&fits, 1, b"{}", limit).is_ok());
        let near = serde_json::to_vec(&json!({"s": "x".repeat(limit - 1024)})).unwrap();
        let e = check_deliverable(&near, 1, b"{}", limit).unwrap_err();
        assert!(
            e.contains(&format!("input of {} bytes", near.len())) && e.contains("4194304-byte"),
            "{e}"
        );
        assert!(
            check_deliverable(&fits, 2, b"{}", limit).is_err(),
            "an event's payload counts twice"
        );
        let html = serde_json::to_vec(&json!({"s": "<".repeat(limit / 4)})).unwrap();
        assert!(check_deliverable(&html, 1, b"{}", limit).is_err(), "escapes count");
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

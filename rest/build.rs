//! Generates the typed REST client from `contracts/openapi.json` with progenitor, after the
//! few fix-ups the engine's document needs. Each fix-up checks that the defect it mends is
//! still there exactly as known, so an engine that fixes one fails this build until the
//! fix-up is removed, instead of the fix-up silently changing something else.

use std::collections::BTreeSet;
use std::path::PathBuf;

use progenitor_impl::{GenerationSettings, Generator, InterfaceStyle, TagStyle};
use serde_json::{Value, json};

const CONTRACT: &str = "contracts/openapi.json";

fn main() {
    println!("cargo:rerun-if-changed={CONTRACT}");
    let text = std::fs::read_to_string(CONTRACT).unwrap_or_else(|e| panic!("{CONTRACT}: {e}"));
    let mut doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{CONTRACT}: {e}"));
    as_openapi_30(&mut doc);
    drop_webhook_receiver(&mut doc);
    drop_undefined_required(&mut doc);
    one_error_body(&mut doc);
    let spec: openapiv3::OpenAPI = serde_json::from_value(doc)
        .unwrap_or_else(|e| panic!("{CONTRACT} is not an OpenAPI document progenitor reads: {e}"));
    let mut settings = GenerationSettings::new();
    settings
        .with_interface(InterfaceStyle::Builder)
        .with_tag(TagStyle::Separate);
    let tokens = Generator::new(&settings)
        .generate_tokens(&spec)
        .unwrap_or_else(|e| panic!("generating the REST client: {e}"));
    let file: syn3::File = syn3::parse2(tokens).expect("the generated client parses");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("hatchet_rest.rs");
    std::fs::write(&out, null_lists_are_empty(&prettyplease::unparse(&file))).expect("write the generated client");
}

/// The engine's Go handlers send an empty list or map as `null` (a nil slice), where the
/// document promises a list: every list and map field of the models reads `null` as empty.
fn null_lists_are_empty(code: &str) -> String {
    const COLLECTIONS: &[&str] = &[
        ": ::std::vec::Vec<",
        ": ::serde_json::Map<",
        ": ::std::collections::HashMap<",
    ];
    assert!(
        !code.contains("deserialize_with"),
        "the generated models read fields their own way now: revisit this fix-up"
    );
    let mut out = String::with_capacity(code.len() + code.len() / 8);
    let mut patched = 0;
    for line in code.lines() {
        let t = line.trim_start();
        // A model's public field (the builders' fields are private and wrapped in `Result`).
        if t.starts_with("pub ") && !t.contains('(') && COLLECTIONS.iter().any(|c| t.contains(c)) {
            let indent = &line[..line.len() - t.len()];
            out.push_str(indent);
            out.push_str("#[serde(deserialize_with = \"crate::nulls::empty_if_null\")]\n");
            patched += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    assert!(
        patched > 100,
        "the generated models changed shape: {patched} list fields found"
    );
    out
}

/// The engine declares OpenAPI 3.1 but uses nothing 3.0 lacks (progenitor reads 3.0 only):
/// checked, then declared 3.0.3.
fn as_openapi_30(doc: &mut Value) {
    assert_eq!(doc["openapi"], "3.1.0", "the engine's document changed version");
    let mut found = Vec::new();
    walk(doc, "", &mut |at, v| {
        if let Some(map) = v.as_object() {
            if map.get("type").is_some_and(|t| t.is_array() || t == "null") {
                found.push(format!("{at}: type {}", map["type"]));
            }
            for k in [
                "const",
                "prefixItems",
                "$defs",
                "if",
                "unevaluatedProperties",
                "dependentSchemas",
            ] {
                if map.contains_key(k) && !at.ends_with("/properties") {
                    found.push(format!("{at}: {k}"));
                }
            }
        }
    });
    assert!(
        found.is_empty(),
        "the engine's document uses OpenAPI 3.1 features progenitor cannot read: {found:?}"
    );
    doc["openapi"] = json!("3.0.3");
}

/// `v1-webhook:receive` (the endpoint outside senders post webhooks to, not one an SDK calls)
/// has a null request `content` with its media type beside it, and both 200 and 204: dropped.
fn drop_webhook_receiver(doc: &mut Value) {
    let path = "/api/v1/stable/tenants/{tenant}/webhooks/{v1-webhook}";
    let item = doc["paths"][path].as_object_mut().expect("the webhook path");
    let op = item.get("post").expect("the webhook receiver");
    assert_eq!(op["operationId"], "v1-webhook:receive");
    assert!(
        op["requestBody"]["content"].is_null(),
        "v1-webhook:receive's request body was fixed in the engine: remove this fix-up"
    );
    item.remove("post");
}

/// Five schemas require properties they do not define (the engine never sends them): a
/// generated model would refuse every response without them.
fn drop_undefined_required(doc: &mut Value) {
    let expected: BTreeSet<(&str, &str)> = [
        ("Step", "nextId"),
        ("TenantResourceLimit", "tenantId"),
        ("V1TaskSummary", "id"),
        ("V1WorkflowRun", "id"),
        ("WorkflowWorkersCount", "count"),
    ]
    .into();
    let mut found = BTreeSet::new();
    let schemas = doc["components"]["schemas"].as_object_mut().expect("schemas");
    for (name, schema) in schemas.iter_mut() {
        let Some(props) = schema.get("properties").and_then(Value::as_object).cloned() else {
            continue;
        };
        if let Some(required) = schema.get_mut("required").and_then(Value::as_array_mut) {
            required.retain(|r| {
                let defined = r.as_str().is_some_and(|r| props.contains_key(r));
                if !defined {
                    found.insert((name.clone(), r.as_str().unwrap_or_default().to_owned()));
                }
                defined
            });
        }
    }
    let found: BTreeSet<(&str, &str)> = found.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(
        found, expected,
        "the schemas requiring undefined properties changed: update this fix-up"
    );
}

/// Operations answer errors as `APIErrors` or `APIError` (both, in places), and the engine's
/// middleware and resource lookups answer `{"message": ...}` or `null` under the same statuses;
/// progenitor wants one error type per operation, and an error answer must never fail to
/// decode, so every JSON error response is any JSON value (the crate reads what it says).
fn one_error_body(doc: &mut Value) {
    let schemas = doc["components"]["schemas"].as_object_mut().expect("schemas");
    assert!(schemas.contains_key("APIErrors") && schemas.contains_key("APIError"));
    schemas.insert("APIErrorBody".into(), json!({}));
    for item in doc["paths"].as_object_mut().expect("paths").values_mut() {
        for op in item.as_object_mut().expect("path item").values_mut() {
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            for (code, response) in responses.iter_mut() {
                if !(code.starts_with('4') || code.starts_with('5')) {
                    continue;
                }
                if let Some(schema) = response.pointer_mut("/content/application~1json/schema") {
                    *schema = json!({"$ref": "#/components/schemas/APIErrorBody"});
                }
            }
        }
    }
}

fn walk(v: &Value, at: &str, f: &mut impl FnMut(&str, &Value)) {
    f(at, v);
    match v {
        Value::Object(map) => map.iter().for_each(|(k, c)| walk(c, &format!("{at}/{k}"), f)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, c)| walk(c, &format!("{at}/{i}"), f)),
        _ => {}
    }
}

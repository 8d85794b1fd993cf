//! Contract test: `contracts/openapi.json` must be the engine's REST contract.
//!
//! The engine's OpenAPI document (Hatchet v0.104.7, `api-contracts/openapi/`, 50 YAML files)
//! is bundled here the way the engine's own tooling bundles it — every path inlined, every
//! schema named once under `components.schemas`, references rewritten to point there — and
//! reduced to the wire facts (descriptions, summaries and examples dropped; a response's
//! required description left empty). The result must equal the vendored file exactly; any
//! difference is listed. `HATCHET_UPDATE_OPENAPI=1` writes the file instead (after an engine
//! upgrade).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value};

use hatchet_e2e::hatchet::ENGINE_VERSION;
const VENDORED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contracts/openapi.json");

#[test]
fn the_vendored_contract_is_the_engines() {
    let root = engine_openapi_dir();
    let bundled = Bundler::new(&root).bundle();
    let text = serde_json::to_string_pretty(&bundled).expect("JSON") + "\n";
    if std::env::var_os("HATCHET_UPDATE_OPENAPI").is_some() {
        std::fs::write(VENDORED, &text).expect("write the vendored contract");
        return;
    }
    let vendored: Value = serde_json::from_str(&std::fs::read_to_string(VENDORED).expect("the vendored contract"))
        .expect("the vendored contract is JSON");
    let differences = diff("", &bundled, &vendored);
    assert!(
        differences.is_empty(),
        "{} difference(s) between engine {ENGINE_VERSION}'s OpenAPI ({}) and contracts/openapi.json \
         (HATCHET_UPDATE_OPENAPI=1 rewrites it):\n  {}",
        differences.len(),
        root.display(),
        differences.join("\n  ")
    );
    let paths = vendored["paths"].as_object().map_or(0, Map::len);
    let schemas = vendored["components"]["schemas"].as_object().map_or(0, Map::len);
    println!("the REST contract matches engine {ENGINE_VERSION}: {paths} paths, {schemas} schemas");
}

/// The comparison is not vacuous: it names what changed.
#[test]
fn the_comparison_names_what_changed() {
    let vendored: Value = serde_json::from_str(&std::fs::read_to_string(VENDORED).expect("vendored")).expect("JSON");
    assert!(diff("", &vendored, &vendored).is_empty());
    let mut changed = vendored.clone();
    changed["components"]["schemas"]["V1TaskSummary"]["properties"]["status"] = Value::Null;
    changed["paths"]
        .as_object_mut()
        .expect("paths")
        .remove("/api/v1/stable/tasks/{task}");
    let d = diff("", &vendored, &changed);
    assert!(
        d.iter().any(|l| l.contains("V1TaskSummary/properties/status")),
        "{d:#?}"
    );
    assert!(
        d.iter()
            .any(|l| l.contains("/api/v1/stable/tasks/{task}") && l.contains("only in")),
        "{d:#?}"
    );
}

/// Every difference between `engine` and `ours` under `at`, as JSON-pointer-like lines.
fn diff(at: &str, engine: &Value, ours: &Value) -> Vec<String> {
    match (engine, ours) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter()
                .flat_map(|k| {
                    let here = format!("{at}/{k}");
                    match (a.get(k), b.get(k)) {
                        (Some(x), Some(y)) => diff(&here, x, y),
                        (Some(_), None) => vec![format!("{here}: only in the engine's")],
                        (None, _) => vec![format!("{here}: only in ours")],
                    }
                })
                .collect()
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .flat_map(|(i, (x, y))| diff(&format!("{at}/{i}"), x, y))
            .collect(),
        (a, b) if a == b => Vec::new(),
        (a, b) => vec![format!("{at}: engine {a}, ours {b}")],
    }
}

/// The engine's OpenAPI directory.
fn engine_openapi_dir() -> PathBuf {
    let dir = hatchet_e2e::hatchet::engine_contracts().join("openapi");
    assert!(
        dir.join("openapi.yaml").is_file(),
        "{} holds no openapi.yaml",
        dir.display()
    );
    dir
}

/// Object keys whose values are maps keyed by names (property names, status codes, media
/// types, ...), not objects with annotations of their own.
const NAME_MAPS: &[&str] = &[
    "properties",
    "schemas",
    "paths",
    "responses",
    "content",
    "securitySchemes",
    "headers",
    "mapping",
    "encoding",
    "links",
    "callbacks",
    "patternProperties",
    "variables",
];

/// Annotations: prose and examples, not wire facts.
const ANNOTATIONS: &[&str] = &["description", "summary", "example", "examples", "externalDocs"];

/// Where a `$ref` points: a file of the tree and a JSON pointer in it.
type Target = (PathBuf, String);

/// Bundles the split document into one, naming each schema once.
struct Bundler {
    root: PathBuf,
    files: HashMap<PathBuf, Value>,
    /// The name each schema target gets under `components.schemas`.
    names: HashMap<Target, String>,
    /// The schemas to emit, by name.
    schemas: BTreeMap<String, Value>,
}

impl Bundler {
    fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
            files: HashMap::new(),
            names: HashMap::new(),
            schemas: BTreeMap::new(),
        }
    }

    fn load(&mut self, file: &Path) -> Value {
        if let Some(v) = self.files.get(file) {
            return v.clone();
        }
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let v: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        self.files.insert(file.to_owned(), v.clone());
        v
    }

    fn lookup(&mut self, (file, pointer): &Target) -> Value {
        let doc = self.load(file);
        doc.pointer(pointer)
            .cloned()
            .unwrap_or_else(|| panic!("{}#{pointer} does not exist", file.display()))
    }

    fn is_schema_file(&self, file: &Path) -> bool {
        file.starts_with(self.root.join("components/schemas"))
    }

    fn bundle(mut self) -> Value {
        let root_file = self.root.join("openapi.yaml");
        let mut doc = self.load(&root_file);
        let index = self.root.join("components/schemas/_index.yaml");
        // Every alias of the index is a schema of its own name.
        let aliases: Vec<String> = self
            .load(&index)
            .as_object()
            .expect("the schema index is a map")
            .keys()
            .cloned()
            .collect();
        for name in &aliases {
            self.schema_ref(&(index.clone(), format!("/{name}")));
        }
        let paths: Vec<(String, Value)> = doc["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut out_paths = Map::new();
        for (path, item) in paths {
            let resolved = self.resolve(&root_file, &item);
            out_paths.insert(path, resolved);
        }
        doc["paths"] = Value::Object(out_paths);
        doc["components"]["schemas"] = Value::Object(std::mem::take(&mut self.schemas).into_iter().collect());
        strip(&mut doc, None);
        doc
    }

    /// The `$ref` to the named schema `target` is, emitting it the first time. An index alias
    /// of the same name is that schema; one of another name is a schema referring to it.
    fn schema_ref(&mut self, target: &Target) -> Value {
        if let Some(name) = self.names.get(target) {
            return reference(name);
        }
        let name = tail(&target.1);
        if target.0.ends_with("_index.yaml") {
            let real = match self.lookup(target).get("$ref") {
                Some(Value::String(r)) => self.target(&target.0, r),
                _ => panic!("index entry {name:?} is not a reference"),
            };
            if tail(&real.1) == name {
                let r = self.schema_ref(&real);
                self.names.insert(target.clone(), name);
                return r;
            }
            self.claim(target, &name);
            let inner = self.schema_ref(&real);
            self.schemas.insert(name.clone(), inner);
            return reference(&name);
        }
        self.claim(target, &name);
        let raw = self.lookup(target);
        let body = self.resolve(&target.0, &raw);
        self.schemas.insert(name.clone(), body);
        reference(&name)
    }

    fn claim(&mut self, target: &Target, name: &str) {
        assert!(
            !self.schemas.contains_key(name),
            "two schemas are named {name:?}; the second is {}#{}",
            target.0.display(),
            target.1
        );
        self.names.insert(target.clone(), name.to_owned());
        self.schemas.insert(name.to_owned(), Value::Null);
    }

    /// `value` of `file` with its references rewritten: named schemas by name, the rest inlined.
    fn resolve(&mut self, file: &Path, value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let Some(Value::String(r)) = map.get("$ref") else {
                    return Value::Object(map.iter().map(|(k, v)| (k.clone(), self.resolve(file, v))).collect());
                };
                let target = self.target(file, r);
                let resolved = if self.is_schema_file(&target.0) {
                    self.schema_ref(&target)
                } else {
                    let raw = self.lookup(&target);
                    self.resolve(&target.0, &raw)
                };
                // OpenAPI 3.0 ignores a reference's siblings: what they say besides prose is kept
                // by wrapping the reference.
                let siblings: Map<String, Value> = map
                    .iter()
                    .filter(|(k, _)| *k != "$ref" && !ANNOTATIONS.contains(&k.as_str()) && !k.starts_with("x-"))
                    .map(|(k, v)| (k.clone(), self.resolve(file, v)))
                    .collect();
                if siblings.is_empty() {
                    return resolved;
                }
                let mut wrapped = siblings;
                wrapped.insert("allOf".into(), Value::Array(vec![resolved]));
                Value::Object(wrapped)
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| self.resolve(file, v)).collect()),
            other => other.clone(),
        }
    }

    fn target(&self, file: &Path, r: &str) -> Target {
        let (path, pointer) = r.split_once('#').unwrap_or((r, ""));
        let file = if path.is_empty() {
            file.to_owned()
        } else {
            normalize(&file.parent().expect("a file has a directory").join(path))
        };
        (file, pointer.to_owned())
    }
}

fn tail(pointer: &str) -> String {
    pointer.rsplit('/').next().unwrap_or_default().to_owned()
}

fn reference(name: &str) -> Value {
    serde_json::json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// `a/b/../c` as `a/c`.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Drops annotations and extensions (keeping a response's required description, empty).
/// `parent` is the key `v` sits under.
fn strip(v: &mut Value, parent: Option<&str>) {
    match v {
        Value::Object(map) => {
            let name_map = parent.is_some_and(|p| NAME_MAPS.contains(&p));
            if !name_map {
                map.retain(|k, _| !ANNOTATIONS.contains(&k.as_str()) && !k.starts_with("x-"));
                if parent == Some("response") {
                    map.insert("description".into(), Value::String(String::new()));
                }
            }
            for (k, child) in map.iter_mut() {
                let child_parent = if name_map && parent == Some("responses") {
                    "response"
                } else if name_map {
                    "named"
                } else {
                    k.as_str()
                };
                strip(child, Some(child_parent));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| strip(i, None)),
        _ => {}
    }
}

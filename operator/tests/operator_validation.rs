//! The apiserver refuses malformed HatchetWorkers at admission (schema and CEL rules from the
//! generated CRD), each with a message that names the offending field, and applies defaults.

mod common;

use common::*;

/// (what, spec YAML under `spec:`, text the error must contain).
const CASES: &[(&str, &str, &str)] = &[
    ("zero slots", "slots: 0", "spec.slots"),
    ("negative slots", "slots: -4", "spec.slots"),
    ("negative replicas", "replicas: -1", "spec.replicas"),
    (
        "unknown TLS strategy",
        "connection: {tokenSecretRef: {name: t, key: token}, tls: {strategy: ssl}}",
        "spec.connection.tls.strategy",
    ),
    (
        "mtls without a client certificate",
        "connection: {tokenSecretRef: {name: t, key: token}, tls: {strategy: mtls}}",
        "spec.connection.tls.clientCertSecretRef",
    ),
    (
        "empty secret name",
        "connection: {tokenSecretRef: {name: '', key: token}}",
        "spec.connection.tokenSecretRef.name",
    ),
    (
        "empty secret key",
        "connection: {tokenSecretRef: {name: t, key: ''}}",
        "spec.connection.tokenSecretRef.key",
    ),
    (
        "negative drain timeout",
        "drain: {timeoutSeconds: -1}",
        "spec.drain.timeoutSeconds",
    ),
    (
        "hostPort without a port",
        "connection: {tokenSecretRef: {name: t, key: token}, hostPort: engine.example}",
        "spec.connection.hostPort",
    ),
    ("invalid worker label key", "labels: {'bad key!': x}", "spec.labels"),
    (
        "reserved fleet label",
        "labels: {hatchet.run/fleet: other}",
        "spec.labels",
    ),
    (
        "PDB with both minAvailable and maxUnavailable",
        "disruptionBudget: {minAvailable: 1, maxUnavailable: 1}",
        "spec.disruptionBudget",
    ),
    (
        "serverUrl that is not a URL",
        "connection: {tokenSecretRef: {name: t, key: token}, serverUrl: 'ftp:/x'}",
        "spec.connection.serverUrl",
    ),
    (
        "no containers",
        "template: {spec: {containers: []}}",
        "spec.template.spec.containers",
    ),
    ("slots not a number", "slots: many", "spec.slots"),
];

fn manifest(ns: &str, name: &str, spec: &str) -> String {
    // The case's own keys replace the base ones (a YAML mapping may not repeat a key).
    let mut base = serde_yaml_base();
    let over: serde_json::Value = serde_json::from_str(&yaml_to_json(spec)).expect("case YAML");
    for (k, v) in over.as_object().unwrap() {
        base[k] = v.clone();
    }
    serde_json::json!({
        "apiVersion": "hatchet.run/v1alpha1",
        "kind": "HatchetWorker",
        "metadata": {"name": name, "namespace": ns},
        "spec": base,
    })
    .to_string()
}

fn serde_yaml_base() -> serde_json::Value {
    serde_json::json!({
        "connection": {"tokenSecretRef": {"name": "t", "key": "token"}},
        "template": {"spec": {"containers": [{"name": "worker", "image": "example.invalid/w:1"}]}},
    })
}

/// The cases are flow-style YAML one-liners; kubectl turns them into JSON for us.
fn yaml_to_json(spec: &str) -> String {
    let v: serde_json::Value = serde_yaml::from_str(spec).expect("case YAML");
    v.to_string()
}

#[test]
fn malformed_hatchet_workers_are_refused_naming_the_field() {
    let world = world();
    install_crd(&world);
    let ns = Namespace::create(&world, "op-validate");
    let mut failures = Vec::new();
    for (i, (what, spec, field)) in CASES.iter().enumerate() {
        let name = format!("bad-{i}");
        match kubectl_stdin(&world, &["apply", "-f", "-"], &manifest(&ns.name, &name, spec)) {
            Ok(out) => failures.push(format!("{what}: accepted ({out})")),
            Err(err) if err.contains(field) => {}
            Err(err) => failures.push(format!("{what}: refused, but the message does not name {field}: {err}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );

    // A well-formed minimal one is accepted and defaulted by the apiserver.
    kubectl_stdin(&world, &["apply", "-f", "-"], &manifest(&ns.name, "good", "{}")).expect("a valid HatchetWorker");
    let hw = get_json(&world, &["hw", "good", "-n", &ns.name]).unwrap();
    assert_eq!(hw["spec"]["slots"], 100, "{hw}");
    assert_eq!(hw["spec"]["replicas"], 1, "{hw}");
    assert_eq!(hw["spec"]["drain"]["timeoutSeconds"], 3600, "{hw}");
    assert_eq!(hw["spec"]["connection"]["tls"]["strategy"], "tls", "{hw}");
}

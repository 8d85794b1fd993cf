//! The apiserver refuses malformed HatchetWorkers at admission (schema and CEL rules from the
//! generated CRD), each with a message that names the offending field, and applies defaults.

mod common;

use common::*;
use hatchet_operator::crd::TlsStrategy;

/// (what, spec YAML under `spec:`, text the error must contain). For CEL rules the text is the
/// rule's own message, which names the field (the apiserver's path prefix alone would not
/// prove that); for schema checks (types, enums) it is the path the apiserver reports.
const CASES: &[(&str, &str, &str)] = &[
    ("zero slots", "slots: 0", "spec.slots must be between 1 and 10000"),
    ("negative slots", "slots: -4", "spec.slots must be between 1 and 10000"),
    (
        "too many slots",
        "slots: 10001",
        "spec.slots must be between 1 and 10000",
    ),
    (
        "negative replicas",
        "replicas: -1",
        "spec.replicas must be between 0 and 10000",
    ),
    (
        "too many replicas",
        "replicas: 10001",
        "spec.replicas must be between 0 and 10000",
    ),
    (
        "hostPort with port 0",
        "connection: {tokenSecretRef: {name: t, key: token}, hostPort: 'engine:0'}",
        "spec.connection.hostPort must be host:port, with a port from 1 to 65535",
    ),
    (
        "hostPort with port 99999",
        "connection: {tokenSecretRef: {name: t, key: token}, hostPort: 'engine:99999'}",
        "spec.connection.hostPort must be host:port, with a port from 1 to 65535",
    ),
    (
        "serverUrl with a space",
        "connection: {tokenSecretRef: {name: t, key: token}, serverUrl: 'https://h/a b'}",
        "spec.connection.serverUrl must be an http:// or https:// URL without spaces",
    ),
    (
        "worker label key of slashes",
        "labels: {'//': x}",
        "spec.labels keys must be",
    ),
    (
        "maxUnavailable over 100%",
        "disruptionBudget: {maxUnavailable: 150%}",
        "spec.disruptionBudget.maxUnavailable must be a non-negative number or a percentage from 0% to 100%",
    ),
    (
        "unknown TLS strategy",
        "connection: {tokenSecretRef: {name: t, key: token}, tls: {strategy: ssl}}",
        "spec.connection.tls.strategy: Unsupported value",
    ),
    (
        "mtls without a client certificate",
        "connection: {tokenSecretRef: {name: t, key: token}, tls: {strategy: mtls}}",
        "spec.connection.tls.clientCertSecretRef is required",
    ),
    (
        "empty secret name",
        "connection: {tokenSecretRef: {name: '', key: token}}",
        "spec.connection.tokenSecretRef.name must be",
    ),
    (
        "empty secret key",
        "connection: {tokenSecretRef: {name: t, key: ''}}",
        "spec.connection.tokenSecretRef.key must be",
    ),
    (
        "CA Secret name with capitals",
        "connection: {tokenSecretRef: {name: t, key: token}, tls: {caSecretRef: {name: MyCA}}}",
        "spec.connection.tls.caSecretRef.name must be",
    ),
    (
        "negative drain timeout",
        "drain: {timeoutSeconds: -1}",
        "spec.drain.timeoutSeconds must be between",
    ),
    (
        "hostPort without a port",
        "connection: {tokenSecretRef: {name: t, key: token}, hostPort: engine.example}",
        "spec.connection.hostPort must be host:port",
    ),
    (
        "invalid worker label key",
        "labels: {'bad key!': x}",
        "spec.labels keys must be",
    ),
    (
        "reserved fleet label",
        "labels: {hatchet.run/fleet: other}",
        "spec.labels must not set hatchet.run/fleet",
    ),
    (
        "PDB with both minAvailable and maxUnavailable",
        "disruptionBudget: {minAvailable: 1, maxUnavailable: 1}",
        "spec.disruptionBudget takes maxUnavailable or minAvailable, not both",
    ),
    (
        "PDB maxUnavailable that is neither a number nor a percentage",
        "disruptionBudget: {maxUnavailable: abc}",
        "spec.disruptionBudget.maxUnavailable must be",
    ),
    (
        "negative PDB minAvailable",
        "disruptionBudget: {minAvailable: -1}",
        "spec.disruptionBudget.minAvailable must be",
    ),
    (
        "serverUrl that is not a URL",
        "connection: {tokenSecretRef: {name: t, key: token}, serverUrl: 'ftp:/x'}",
        "spec.connection.serverUrl must be",
    ),
    (
        "no containers",
        "template: {spec: {containers: []}}",
        "spec.template.spec.containers must hold",
    ),
    ("slots not a number", "slots: many", "spec.slots: Invalid value"),
    (
        "autoscaling min above max",
        "autoscaling: {minReplicas: 5, maxReplicas: 2}",
        "spec.autoscaling.minReplicas must not exceed spec.autoscaling.maxReplicas",
    ),
    (
        "autoscaling without maxReplicas",
        "autoscaling: {minReplicas: 0}",
        "spec.autoscaling.maxReplicas: Required value",
    ),
    (
        "autoscaling maxReplicas zero",
        "autoscaling: {minReplicas: 0, maxReplicas: 0}",
        "spec.autoscaling.maxReplicas must be between 1 and 10000",
    ),
    (
        "autoscaling negative minReplicas",
        "autoscaling: {minReplicas: -1, maxReplicas: 2}",
        "spec.autoscaling.minReplicas must be between 0 and 10000",
    ),
    (
        "autoscaling target zero",
        "autoscaling: {maxReplicas: 2, targetUtilization: 0}",
        "spec.autoscaling.targetUtilization must be greater than 0 and at most 1",
    ),
    (
        "autoscaling target above one",
        "autoscaling: {maxReplicas: 2, targetUtilization: 1.5}",
        "spec.autoscaling.targetUtilization must be greater than 0 and at most 1",
    ),
    (
        "autoscaling tolerance one",
        "autoscaling: {maxReplicas: 2, tolerance: 1}",
        "spec.autoscaling.tolerance must be at least 0 and below 1",
    ),
    (
        "autoscaling poll interval zero",
        "autoscaling: {maxReplicas: 2, pollIntervalSeconds: 0}",
        "spec.autoscaling.pollIntervalSeconds must be between 1 and 300",
    ),
    (
        "autoscaling negative idle period",
        "autoscaling: {maxReplicas: 2, idleSecondsBeforeZero: -5}",
        "spec.autoscaling.idleSecondsBeforeZero must be between 0 and 86400",
    ),
    (
        "autoscaling window too long",
        "autoscaling: {maxReplicas: 2, scaleDown: {stabilizationWindowSeconds: 7200}}",
        "stabilizationWindowSeconds must be between 0 and 3600",
    ),
    (
        "autoscaling policy of zero pods",
        "autoscaling: {maxReplicas: 2, scaleUp: {policies: [{type: Pods, value: 0, periodSeconds: 15}]}}",
        "policies' value must be between 1 and 10000",
    ),
    (
        "autoscaling policy without a period",
        "autoscaling: {maxReplicas: 2, scaleUp: {policies: [{type: Percent, value: 50, periodSeconds: 0}]}}",
        "policies' periodSeconds must be between 1 and 1800",
    ),
    (
        "autoscaling unknown policy type",
        "autoscaling: {maxReplicas: 2, scaleDown: {policies: [{type: Nodes, value: 1, periodSeconds: 15}]}}",
        "Unsupported value: \"Nodes\"",
    ),
    (
        "autoscaling unknown select policy",
        "autoscaling: {maxReplicas: 2, scaleDown: {selectPolicy: Fastest}}",
        "Unsupported value: \"Fastest\"",
    ),
];

fn manifest(ns: &str, name: &str, spec: &str) -> String {
    // The case's own keys replace the base ones (a YAML mapping may not repeat a key).
    let mut base = base_spec();
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

fn base_spec() -> serde_json::Value {
    serde_json::json!({
        "connection": {"tokenSecretRef": {"name": "t", "key": "token"}},
        "template": {"spec": {"containers": [{"name": "worker", "image": "example.invalid/w:1"}]}},
    })
}

/// The cases are flow-style YAML one-liners.
fn yaml_to_json(spec: &str) -> String {
    let v: serde_json::Value = serde_saphyr::from_str(spec).expect("case YAML");
    v.to_string()
}

#[test]
fn malformed_hatchet_workers_are_refused_naming_the_field() {
    let world = world();
    let kube = kube(&world);
    install_crd(&kube);
    let ns = Namespace::create(&kube, "op-validate");
    let mut failures = Vec::new();
    // Through kubectl, as a user meets it: the apiserver's refusal as the CLI prints it.
    for (i, (what, spec, field)) in CASES.iter().enumerate() {
        let name = format!("bad-{i}");
        match kubectl_stdin(&world, &["apply", "-f", "-"], &manifest(&ns.name, &name, spec)) {
            Ok(out) => failures.push(format!("{what}: accepted ({out})")),
            Err(err) if err.contains(field) => {}
            Err(err) => failures.push(format!("{what}: refused, but the message does not name {field}: {err}")),
        }
    }
    // The name becomes the Service's name and a label value: it must be a DNS-1035 label.
    for bad in ["pay.v2", "1fleet", &"x".repeat(64)] {
        match kubectl_stdin(&world, &["apply", "-f", "-"], &manifest(&ns.name, bad, "{}")) {
            Ok(out) => failures.push(format!("name {bad:?}: accepted ({out})")),
            Err(err) if err.contains("metadata.name must be a DNS-1035 label") => {}
            Err(err) => failures.push(format!("name {bad:?}: refused, but not for its name: {err}")),
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
    let workers = kube.namespaced::<HatchetWorker>(&ns.name);
    let hw = workers.get("good").unwrap();
    assert_eq!(hw.spec.slots, 100, "{hw:?}");
    assert_eq!(hw.spec.replicas, 1, "{hw:?}");
    assert_eq!(hw.spec.drain.timeout_seconds, 3600, "{hw:?}");
    assert_eq!(hw.spec.connection.tls.strategy, TlsStrategy::Tls, "{hw:?}");

    // An autoscaling block is defaulted too (the README's defaults, as the apiserver stores them).
    kubectl_stdin(
        &world,
        &["apply", "-f", "-"],
        &manifest(&ns.name, "scaled", "autoscaling: {minReplicas: 0, maxReplicas: 8}"),
    )
    .expect("a valid autoscaled HatchetWorker");
    let a = workers.get("scaled").unwrap().spec.autoscaling;
    // Compared as the apiserver stored it (JSON of the typed field, which names every field).
    assert_eq!(
        serde_json::to_value(&a).unwrap(),
        serde_json::json!({
            "minReplicas": 0, "maxReplicas": 8, "targetUtilization": 0.75, "tolerance": 0.1,
            "countQueued": true, "pollIntervalSeconds": 5, "idleSecondsBeforeZero": 120,
            "scaleUp": {"stabilizationWindowSeconds": 0, "policies": [], "selectPolicy": "Max"},
            "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max",
                          "policies": [{"type": "Percent", "value": 50, "periodSeconds": 30}]}
        })
    );
}

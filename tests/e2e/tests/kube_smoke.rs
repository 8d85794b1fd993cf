//! The local Kubernetes control plane is the real one at the pinned version, its controllers and
//! scheduler work with the kwok node, and Helm (built for the same minor) lints and renders charts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hatchet_e2e::kube::{Namespace, condition_true, list};
use hatchet_e2e::{World, run, run_with_stdin, wait_for};
use serde_json::Value;

const KUBE_VERSION: &str = "v1.37.2";
const HELM_VERSION: &str = "v3.22.0";
const POLL: Duration = Duration::from_millis(500);
const SETTLE: Duration = Duration::from_secs(90);

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap_or("?").to_owned())
        .collect()
}

#[test]
fn kubectl_and_apiserver_report_the_pinned_version() {
    let world = World::load().expect("local world");
    let out = run(world.kubectl().unwrap().args(["version", "-o", "json"])).expect("kubectl version");
    let v: Value = serde_json::from_str(&out).expect("kubectl version JSON");
    assert_eq!(v["serverVersion"]["gitVersion"], KUBE_VERSION, "{v}");
    assert_eq!(v["serverVersion"]["minor"], "37", "{v}");
    assert_eq!(v["clientVersion"]["gitVersion"], KUBE_VERSION, "{v}");
}

#[test]
fn deployment_runs_on_the_kwok_node_and_is_garbage_collected() {
    let world = World::load().expect("local world");
    let node = world.var("KWOK_NODE").expect("KWOK_NODE").to_owned();
    let namespace = Namespace::create(&world, "smoke-deploy");
    let ns = namespace.name.as_str();
    let replicas = 2;
    let manifest = format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: smoke
  namespace: {ns}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: smoke}}
  template:
    metadata:
      labels: {{app: smoke}}
    spec:
      containers:
        - name: app
          image: example.invalid/smoke:1
          resources:
            requests: {{cpu: 100m, memory: 64Mi}}
"#
    );
    run_with_stdin(world.kubectl().unwrap().args(["apply", "-f", "-"]), manifest.as_bytes())
        .expect("kubectl apply the Deployment");

    // Deployment controller: one ReplicaSet owned by the Deployment.
    let rs = wait_for("a ReplicaSet owned by deployment/smoke", SETTLE, POLL, || {
        let items = list(&world, ns, "replicasets", "app=smoke")?;
        items
            .into_iter()
            .find(|rs| {
                rs["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|o| o.iter().any(|o| o["kind"] == "Deployment" && o["name"] == "smoke"))
            })
            .ok_or_else(|| "no ReplicaSet owned by the Deployment yet".to_owned())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let rs_name = rs["metadata"]["name"].as_str().expect("ReplicaSet name").to_owned();

    // ReplicaSet controller, scheduler and kwok: the pods exist, are bound to the fake node and Ready.
    let pods = wait_for(
        &format!("{replicas} Ready pods of {rs_name} bound to {node}"),
        SETTLE,
        POLL,
        || {
            let pods = list(&world, ns, "pods", "app=smoke")?;
            let state: Vec<String> = pods
                .iter()
                .map(|p| {
                    format!(
                        "{} node={} phase={} ready={}",
                        p["metadata"]["name"].as_str().unwrap_or("?"),
                        p["spec"]["nodeName"].as_str().unwrap_or("-"),
                        p["status"]["phase"].as_str().unwrap_or("-"),
                        condition_true(p, "Ready")
                    )
                })
                .collect();
            let good = pods
                .iter()
                .filter(|p| p["spec"]["nodeName"] == node.as_str() && condition_true(p, "Ready"))
                .count();
            if pods.len() == replicas && good == replicas {
                Ok(pods)
            } else {
                Err(format!("pods: {state:?}"))
            }
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for p in &pods {
        let owners = &p["metadata"]["ownerReferences"];
        assert!(
            owners.as_array().is_some_and(|o| o
                .iter()
                .any(|o| o["kind"] == "ReplicaSet" && o["name"] == rs_name.as_str())),
            "pod owned by {rs_name}: {owners}"
        );
        assert_eq!(p["status"]["phase"], "Running", "pod phase");
    }

    wait_for("deployment/smoke Available", SETTLE, POLL, || {
        let out = run(world
            .kubectl()
            .unwrap()
            .args(["get", "deployment", "smoke", "-n", ns, "-o", "json"]))
        .map_err(|e| e.to_string())?;
        let d: Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
        if condition_true(&d, "Available") && d["status"]["availableReplicas"] == replicas {
            Ok(())
        } else {
            Err(format!("status: {}", d["status"]))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));

    // Garbage collector: deleting the Deployment (without waiting) removes its ReplicaSet and pods.
    run(world
        .kubectl()
        .unwrap()
        .args(["delete", "deployment", "smoke", "-n", ns, "--wait=false"]))
    .expect("delete the Deployment");
    wait_for("the ReplicaSet and pods to be garbage-collected", SETTLE, POLL, || {
        let rs = list(&world, ns, "replicasets", "app=smoke")?;
        let pods = list(&world, ns, "pods", "app=smoke")?;
        if rs.is_empty() && pods.is_empty() {
            Ok(())
        } else {
            Err(format!("replicasets {:?}, pods {:?}", names(&rs), names(&pods)))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));

    // Namespace controller: a deleted namespace is emptied and goes away (not stuck Terminating).
    run(world
        .kubectl()
        .unwrap()
        .args(["delete", "namespace", ns, "--wait=false"]))
    .expect("delete the namespace");
    wait_for(&format!("namespace {ns} to be deleted"), SETTLE, POLL, || {
        let out = run(world.kubectl().unwrap().args([
            "get",
            "namespace",
            ns,
            "--ignore-not-found",
            "-o",
            "jsonpath={.status.phase}",
        ]))
        .map_err(|e| e.to_string())?;
        if out.trim().is_empty() {
            Ok(())
        } else {
            Err(format!("phase {}", out.trim()))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
}

fn trivial_chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/trivial-chart")
}

#[test]
fn helm_lints_renders_and_the_apiserver_accepts_the_trivial_chart() {
    let world = World::load().expect("local world");
    let chart = trivial_chart();
    let chart = chart.to_str().expect("UTF-8 chart path");

    let version = run(world.helm().unwrap().args(["version", "--template", "{{.Version}}"])).expect("helm version");
    assert_eq!(version.trim(), HELM_VERSION);

    run(world.helm().unwrap().args(["lint", "--strict", chart])).expect("helm lint --strict");

    let ns = Namespace::create(&world, "smoke-helm");
    let rendered = run(world
        .helm()
        .unwrap()
        .args(["template", "smoke", chart, "--namespace", &ns.name]))
    .expect("helm template");
    assert!(rendered.contains("kind: Deployment"), "{rendered}");
    assert!(rendered.contains("kind: ConfigMap"), "{rendered}");
    // The chart's kubeVersion constraint passed, and this is the minor helm was built for.
    assert!(
        rendered.contains("kubeVersion: \"v1.37."),
        "helm's built-in Kubernetes version should be 1.37: {rendered}"
    );

    // The real apiserver validates the rendered objects (schema, defaulting, admission).
    run_with_stdin(
        world
            .kubectl()
            .unwrap()
            .args(["apply", "--dry-run=server", "-n", &ns.name, "-f", "-"]),
        rendered.as_bytes(),
    )
    .expect("server-side dry run of the rendered chart");
}

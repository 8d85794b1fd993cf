//! The local Kubernetes control plane is the real one at the pinned version, its controllers and
//! scheduler work with the kwok node, and Helm (built for the same minor) lints and renders charts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hatchet_e2e::kube::{Kube, Namespace};
use hatchet_e2e::{World, run, run_with_stdin, wait_for};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Namespace as NamespaceObject, Pod};
use kube::ResourceExt as _;
use serde_json::Value;

const KUBE_VERSION: &str = "v1.37.2";
const HELM_VERSION: &str = "v3.22.0";
const POLL: Duration = Duration::from_millis(500);
const SETTLE: Duration = Duration::from_secs(90);

fn names<K: kube::Resource>(items: &[K]) -> Vec<String> {
    items.iter().map(|i| i.name_any()).collect()
}

fn owned_by<K: kube::Resource>(obj: &K, kind: &str, name: &str) -> bool {
    obj.owner_references().iter().any(|o| o.kind == kind && o.name == name)
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[test]
fn kubectl_and_apiserver_report_the_pinned_version() {
    let world = World::load().expect("local world");
    // kubectl's own version is the point here: the CLI users get is the pinned one.
    let out = run(world.kubectl().unwrap().args(["version", "-o", "json"])).expect("kubectl version");
    let v: Value = serde_json::from_str(&out).expect("kubectl version JSON");
    assert_eq!(v["serverVersion"]["gitVersion"], KUBE_VERSION, "{v}");
    assert_eq!(v["serverVersion"]["minor"], "37", "{v}");
    assert_eq!(v["clientVersion"]["gitVersion"], KUBE_VERSION, "{v}");
}

#[test]
fn deployment_runs_on_the_kwok_node_and_is_garbage_collected() {
    let world = World::load().expect("local world");
    let kube = Kube::admin(&world).expect("admin client");
    let node = world.var("KWOK_NODE").expect("KWOK_NODE").to_owned();
    let namespace = Namespace::create(&kube, "smoke-deploy");
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
    let deployments = kube.namespaced::<Deployment>(ns);
    let replicasets = kube.namespaced::<ReplicaSet>(ns);
    let pods = kube.namespaced::<Pod>(ns);
    deployments.apply_yaml(&manifest).expect("apply the Deployment");

    // Deployment controller: one ReplicaSet owned by the Deployment.
    let rs = replicasets
        .wait_all("a ReplicaSet owned by deployment/smoke", "app=smoke", SETTLE, |items| {
            items
                .iter()
                .find(|rs| owned_by(*rs, "Deployment", "smoke"))
                .cloned()
                .ok_or_else(|| "no ReplicaSet owned by the Deployment yet".to_owned())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let rs_name = rs.name_any();

    // ReplicaSet controller, scheduler and kwok: the pods exist, are bound to the fake node and Ready.
    let on_node = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node.as_str());
    let running = pods
        .wait_all(
            &format!("{replicas} Ready pods of {rs_name} bound to {node}"),
            "app=smoke",
            SETTLE,
            |pods| {
                let state: Vec<String> = pods
                    .iter()
                    .map(|p| {
                        format!(
                            "{} node={} phase={} ready={}",
                            p.name_any(),
                            p.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("-"),
                            p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("-"),
                            pod_ready(p)
                        )
                    })
                    .collect();
                let good = pods.iter().filter(|p| on_node(p) && pod_ready(p)).count();
                if pods.len() == replicas && good == replicas {
                    Ok(pods.to_vec())
                } else {
                    Err(format!("pods: {state:?}"))
                }
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
    for p in &running {
        assert!(
            owned_by(p, "ReplicaSet", &rs_name),
            "pod owned by {rs_name}: {:?}",
            p.owner_references()
        );
        assert_eq!(
            p.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Running"),
            "pod phase"
        );
    }

    let available = |d: Option<&Deployment>| {
        d.and_then(|d| d.status.as_ref()).is_some_and(|s| {
            s.available_replicas == Some(replicas as i32)
                && s.conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True"))
        })
    };
    deployments
        .wait("deployment/smoke Available", "smoke", SETTLE, available)
        .unwrap_or_else(|e| panic!("{e}"));

    // Garbage collector: deleting the Deployment (without waiting) removes its ReplicaSet and pods.
    deployments.delete("smoke").expect("delete the Deployment");
    wait_for("the ReplicaSet and pods to be garbage-collected", SETTLE, POLL, || {
        let rs = replicasets.list("app=smoke")?;
        let pods = pods.list("app=smoke")?;
        if rs.is_empty() && pods.is_empty() {
            Ok(())
        } else {
            Err(format!("replicasets {:?}, pods {:?}", names(&rs), names(&pods)))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));

    // Namespace controller: a deleted namespace is emptied and goes away (not stuck Terminating).
    let namespaces = kube.cluster::<NamespaceObject>();
    namespaces.delete(ns).expect("delete the namespace");
    namespaces.wait_deleted(ns, SETTLE).unwrap_or_else(|e| panic!("{e}"));
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

    let kube = Kube::admin(&world).expect("admin client");
    let ns = Namespace::create(&kube, "smoke-helm");
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

    // The real apiserver validates the rendered objects (schema, defaulting, admission), fed
    // to it the way a user checks a chart: kubectl's server-side dry run.
    run_with_stdin(
        world
            .kubectl()
            .unwrap()
            .args(["apply", "--dry-run=server", "-n", &ns.name, "-f", "-"]),
        rendered.as_bytes(),
    )
    .expect("server-side dry run of the rendered chart");
}

//! The Helm chart `charts/hatchet-operator`: `helm lint --strict`; its values schema refuses
//! bad values naming them; `helm template` (cluster-wide, namespaced, with a ServiceMonitor)
//! accepted by the real apiserver in a server-side dry run (the ServiceMonitor against
//! prometheus-operator's real CRD); and on the local control plane `helm install --wait` runs
//! two operator pods from the operator image on the real node, which elect a leader and run a
//! fleet; killing the leader hands over to the other; `helm upgrade` leaves the fleet
//! untouched; `helm uninstall` leaves the CRD and the HatchetWorker.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use hatchet_e2e::{CommandFailed, prometheus};
use serde_json::Value;

fn chart() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/hatchet-operator")
}

fn helm(world: &World, args: &[&str]) -> Result<String, CommandFailed> {
    hatchet_e2e::run(world.helm().expect("helm in the world").args(args))
}

#[test]
fn the_chart_lints_strictly_and_its_schema_refuses_bad_values_by_name() {
    let world = world();
    let chart = chart();
    let chart = chart.to_str().unwrap();
    helm(&world, &["lint", "--strict", chart]).unwrap_or_else(|e| panic!("helm lint --strict: {e}"));
    for (value, want) in [
        ("replicaCount=0", "at '/replicaCount': minimum: got 0, want 1"),
        (
            "watchNamespaces[0]=Team_A",
            "at '/watchNamespaces/0': 'Team_A' does not match pattern",
        ),
        ("image.pullPolicy=Sometimes", "at '/image/pullPolicy'"),
        ("logFormat=xml", "at '/logFormat'"),
        ("serviceMonitor.interval=often", "at '/serviceMonitor/interval'"),
        ("replicas=2", "additional properties 'replicas' not allowed"),
    ] {
        let err = helm(&world, &["template", "r", chart, "--set", value])
            .err()
            .unwrap_or_else(|| panic!("--set {value} was accepted"));
        assert!(err.to_string().contains(want), "--set {value}: {err}");
    }
}

#[test]
fn the_rendered_chart_is_accepted_by_the_apiserver_in_every_mode() {
    let world = world();
    install_crd(&world);
    let crd = world.var("SERVICEMONITOR_CRD").unwrap().to_owned();
    kubectl(&world, &["apply", "--server-side", "--force-conflicts", "-f", &crd]).expect("the ServiceMonitor CRD");
    wait_for("the ServiceMonitor CRD established", SETTLE, POLL, || {
        kubectl(
            &world,
            &[
                "wait",
                "--for=condition=Established",
                "crd/servicemonitors.monitoring.coreos.com",
                "--timeout=1s",
            ],
        )
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let ns = Namespace::create(&world, "chart-dry");
    let watched = Namespace::create(&world, "chart-dry-team");
    let chart = chart();
    let chart = chart.to_str().unwrap();
    let modes: [&[&str]; 3] = [
        &[],
        &["--set", &format!("watchNamespaces[0]={}", watched.name)],
        &[
            "--set",
            "serviceMonitor.enabled=true",
            "--set",
            "leaderElection.enabled=false",
            "--set",
            "replicaCount=1",
        ],
    ];
    for extra in modes {
        let mut args = vec!["template", "dry", chart, "--namespace", ns.name.as_str()];
        args.extend_from_slice(extra);
        let rendered = helm(&world, &args).unwrap_or_else(|e| panic!("helm template {extra:?}: {e}"));
        kubectl_stdin(
            &world,
            &[
                "apply",
                "--server-side",
                "--dry-run=server",
                "--force-conflicts",
                "--field-manager=chart-dry",
                "-f",
                "-",
            ],
            &rendered,
        )
        .unwrap_or_else(|e| panic!("the apiserver refused the chart rendered with {extra:?}: {e}"));
        let kinds: Vec<&str> = rendered.lines().filter_map(|l| l.strip_prefix("kind: ")).collect();
        match extra {
            [] => assert!(
                kinds.contains(&"ClusterRole") && kinds.contains(&"PodDisruptionBudget"),
                "{kinds:?}"
            ),
            [_, ns_value] if ns_value.starts_with("watchNamespaces") => {
                assert!(!kinds.contains(&"ClusterRole"), "namespaced: no ClusterRole: {kinds:?}");
                assert_eq!(kinds.iter().filter(|k| **k == "Role").count(), 2, "{kinds:?}");
                assert!(rendered.contains(&format!("--namespaces={}", watched.name)));
            }
            _ => {
                assert!(kinds.contains(&"ServiceMonitor"), "{kinds:?}");
                assert!(
                    !kinds.contains(&"PodDisruptionBudget"),
                    "one replica: no PDB: {kinds:?}"
                );
            }
        }
    }
}

/// The Lease holder, if any.
fn leader(world: &World, ns: &str, lease: &str) -> Option<String> {
    get_json(world, &["lease", lease, "-n", ns])
        .ok()?
        .pointer("/spec/holderIdentity")?
        .as_str()
        .map(str::to_owned)
}

fn operator_pods(world: &World, ns: &str) -> Vec<String> {
    ready_pods(world, ns, "app.kubernetes.io/name=hatchet-operator")
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
        .collect()
}

fn fleet_deployment(world: &World, ns: &str) -> Value {
    get_json(world, &["deployment", "payments", "-n", ns]).unwrap_or(Value::Null)
}

#[test]
fn helm_install_runs_the_operator_on_the_real_node_and_upgrade_and_uninstall_spare_the_fleets() {
    let world = world();
    let sys = Namespace::create(&world, "chart-sys");
    let team = Namespace::create(&world, "chart-team");
    let (sys, team) = (sys.name.as_str(), team.name.as_str());
    let var = |n: &'static str| world.var(n).unwrap().to_owned();
    let image = var("OPERATOR_IMAGE");
    let (repository, tag) = image.rsplit_once(':').expect("image:tag");
    let chart = chart();
    let chart = chart.to_str().unwrap();
    let node = var("REAL_NODE");
    let taint = var("REAL_NODE_TAINT");
    let values = [
        format!("image.repository={repository}"),
        format!("image.tag={tag}"),
        "image.pullPolicy=Never".to_owned(),
        format!("watchNamespaces[0]={team}"),
        format!("nodeSelector.kubernetes\\.io/hostname={node}"),
        format!("tolerations[0].key={taint}"),
        "tolerations[0].operator=Exists".to_owned(),
        "tolerations[0].effect=NoSchedule".to_owned(),
        "logFormat=text".to_owned(),
    ];
    let mut install = vec![
        "install",
        "op",
        chart,
        "-n",
        sys,
        "--wait",
        "--timeout",
        "180s",
        "--take-ownership",
    ];
    for v in &values {
        install.extend(["--set", v.as_str()]);
    }
    helm(&world, &install).unwrap_or_else(|e| panic!("helm install: {e}"));
    let pods = operator_pods(&world, sys);
    assert_eq!(pods.len(), 2, "two Ready operator pods: {pods:?}");
    for pod in &pods {
        let p = get_json(&world, &["pod", pod, "-n", sys]).unwrap();
        assert_eq!(p["spec"]["nodeName"], node.as_str(), "{pod} on the real node");
    }
    let lease = "op-hatchet-operator";
    let first = wait_for("a leader", SETTLE, POLL, || {
        leader(&world, sys, lease).ok_or_else(|| "no holder".to_owned())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(pods.contains(&first), "the leader {first} is one of {pods:?}");

    // The world's Prometheus finds both operator pods by the chart's pod annotations; exactly
    // one of them says it leads.
    wait_for("Prometheus to scrape both operator pods", SETTLE, POLL, || {
        let leaders = prometheus::query(&world, &format!(r#"hatchet_operator_leader{{namespace="{sys}"}}"#))?;
        let scraped: BTreeSet<&str> = leaders.iter().map(|s| s.label("pod")).collect();
        let leading: Vec<&str> = leaders
            .iter()
            .filter(|s| s.value == 1.0)
            .map(|s| s.label("pod"))
            .collect();
        if scraped == pods.iter().map(String::as_str).collect() && leading == [first.as_str()] {
            Ok(())
        } else {
            Err(format!("scraped {scraped:?}, leading {leading:?}"))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));

    // The in-cluster operator runs a fleet (kwok pods) in the watched namespace.
    token_secret(&world, team, "hatchet-token");
    kubectl_stdin(
        &world,
        &["apply", "-f", "-"],
        &hatchet_worker(team, "payments", "hatchet-token", "  replicas: 2\n"),
    )
    .expect("apply the HatchetWorker");
    wait_for("the fleet Ready", SETTLE, POLL, || {
        let hw = get_json(&world, &["hw", "payments", "-n", team])?;
        if condition(&hw, "Ready").is_some_and(|c| c["status"] == "True") {
            Ok(())
        } else {
            Err(format!("{}", hw["status"]))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));

    // Deleting the leader pod (SIGTERM: it releases the Lease on its way out; a SIGKILLed leader
    // is replaced once the Lease expires, as operator_leader.rs shows): the other replica takes
    // the Lease and reconciles.
    let t = std::time::Instant::now();
    kubectl(&world, &["delete", "pod", &first, "-n", sys, "--wait=false"]).expect("delete the leader pod");
    let second = wait_for("another leader", Duration::from_secs(90), POLL, || {
        match leader(&world, sys, lease) {
            Some(h) if h != first && h.starts_with("op-hatchet-operator-") => Ok(h),
            other => {
                let log = kubectl(&world, &["logs", &first, "-n", sys, "--tail=8"]).unwrap_or_else(|e| e);
                Err(format!("holder {other:?}; the deleted leader's last lines:\n{log}"))
            }
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "leader hand-over: {second} holds the Lease {:.1}s after the delete",
        t.elapsed().as_secs_f64()
    );
    kubectl(&world, &["scale", "hw", "payments", "-n", team, "--replicas=3"]).expect("kubectl scale");
    wait_for("the new leader applies the scale", SETTLE, POLL, || {
        let d = fleet_deployment(&world, team);
        if d["spec"]["replicas"] == 3 {
            Ok(())
        } else {
            Err(format!("{}", d["spec"]["replicas"]))
        }
    })
    .unwrap_or_else(|e| panic!("{e} (leader {second})"));

    // An upgrade rolls the operator, not the fleet.
    let before = fleet_deployment(&world, team);
    let mut upgrade = vec!["upgrade", "op", chart, "-n", sys, "--wait", "--timeout", "180s"];
    for v in &values {
        upgrade.extend(["--set", v.as_str()]);
    }
    upgrade.extend(["--set", "logLevel=debug"]);
    helm(&world, &upgrade).unwrap_or_else(|e| panic!("helm upgrade: {e}"));
    let dep = get_json(&world, &["deployment", "op-hatchet-operator", "-n", sys]).unwrap();
    assert!(
        dep["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "--log-level=debug")),
        "the upgrade applied"
    );
    std::thread::sleep(Duration::from_secs(5));
    let after = fleet_deployment(&world, team);
    for field in ["/metadata/uid", "/metadata/generation", "/spec/replicas"] {
        assert_eq!(
            before.pointer(field),
            after.pointer(field),
            "{field} of the fleet's Deployment"
        );
    }

    // Uninstall: the operator goes, the CRD and the user's objects stay.
    helm(&world, &["uninstall", "op", "-n", sys, "--wait"]).unwrap_or_else(|e| panic!("helm uninstall: {e}"));
    assert!(
        kubectl(&world, &["get", "crd", "hatchetworkers.hatchet.run"]).is_ok(),
        "the CRD stays"
    );
    assert!(
        get_json(&world, &["hw", "payments", "-n", team]).is_ok(),
        "the HatchetWorker stays"
    );
    assert_eq!(
        fleet_deployment(&world, team)["metadata"]["uid"],
        after["metadata"]["uid"],
        "its fleet stays"
    );
    assert!(
        get_json(&world, &["deployment", "op-hatchet-operator", "-n", sys]).is_err(),
        "the operator is gone"
    );
}

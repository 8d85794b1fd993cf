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
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::runtime::wait::conditions::is_crd_established;

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
    let kube = kube(&world);
    install_crd(&kube);
    let crd = world.var("SERVICEMONITOR_CRD").unwrap().to_owned();
    let crds = kube.cluster::<CustomResourceDefinition>();
    let yaml = std::fs::read_to_string(&crd).unwrap_or_else(|e| panic!("{crd}: {e}"));
    crds.apply_yaml(&yaml).expect("the ServiceMonitor CRD");
    crds.wait(
        "the ServiceMonitor CRD established",
        "servicemonitors.monitoring.coreos.com",
        SETTLE,
        is_crd_established(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ns = Namespace::create(&kube, "chart-dry");
    let watched = Namespace::create(&kube, "chart-dry-team");
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
        // The rendered chart as a user checks it (kubectl, every kind of the chart at once):
        // the apiserver's admission is what is tested.
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
fn leader(kube: &Kube, ns: &str, lease: &str) -> Option<String> {
    kube.namespaced::<Lease>(ns).get(lease).ok()?.spec?.holder_identity
}

fn operator_pods(kube: &Kube, ns: &str) -> Vec<String> {
    ready_pods(kube, ns, "app.kubernetes.io/name=hatchet-operator")
        .unwrap_or_default()
        .iter()
        .map(|p| p.name_any())
        .collect()
}

fn fleet_deployment(kube: &Kube, ns: &str) -> Option<Deployment> {
    kube.namespaced::<Deployment>(ns).get("payments").ok()
}

/// What an upgrade of the operator must leave alone on a fleet's Deployment.
fn identity(d: &Option<Deployment>) -> (Option<String>, Option<i64>, Option<i32>) {
    let d = d.as_ref();
    (
        d.and_then(|d| d.metadata.uid.clone()),
        d.and_then(|d| d.metadata.generation),
        d.and_then(|d| d.spec.replicas),
    )
}

#[test]
fn helm_install_runs_the_operator_on_the_real_node_and_upgrade_and_uninstall_spare_the_fleets() {
    let world = world();
    let kube = kube(&world);
    let sys = Namespace::create(&kube, "chart-sys");
    let team = Namespace::create(&kube, "chart-team");
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
    let pods = operator_pods(&kube, sys);
    assert_eq!(pods.len(), 2, "two Ready operator pods: {pods:?}");
    for pod in &pods {
        let p = kube.namespaced::<Pod>(sys).get(pod).unwrap();
        assert_eq!(
            p.spec.and_then(|s| s.node_name).as_deref(),
            Some(node.as_str()),
            "{pod} on the real node"
        );
    }
    let lease = "op-hatchet-operator";
    let first = wait_for("a leader", SETTLE, POLL, || {
        leader(&kube, sys, lease).ok_or_else(|| "no holder".to_owned())
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
    token_secret(&kube, team, "hatchet-token");
    apply_worker(
        &kube,
        &hatchet_worker(team, "payments", "hatchet-token", "  replicas: 2\n"),
    );
    let workers = kube.namespaced::<HatchetWorker>(team);
    workers
        .wait("the fleet Ready", "payments", SETTLE, |hw: Option<&HatchetWorker>| {
            hw.is_some_and(|hw| condition_true(hw, "Ready"))
        })
        .unwrap_or_else(|e| panic!("{e}"));

    // Deleting the leader pod (SIGTERM: it releases the Lease on its way out; a SIGKILLed leader
    // is replaced once the Lease expires, as operator_leader.rs shows): the other replica takes
    // the Lease and reconciles.
    let t = std::time::Instant::now();
    kube.namespaced::<Pod>(sys)
        .delete(&first)
        .expect("delete the leader pod");
    let second = wait_for("another leader", Duration::from_secs(90), POLL, || {
        match leader(&kube, sys, lease) {
            Some(h) if h != first && h.starts_with("op-hatchet-operator-") => Ok(h),
            other => {
                let log = kube.pod_logs(sys, &first, 8);
                Err(format!("holder {other:?}; the deleted leader's last lines:\n{log}"))
            }
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "leader hand-over: {second} holds the Lease {:.1}s after the delete",
        t.elapsed().as_secs_f64()
    );
    // Scaled as a user scales it: kubectl through /scale.
    kubectl(&world, &["scale", "hw", "payments", "-n", team, "--replicas=3"]).expect("kubectl scale");
    kube.namespaced::<Deployment>(team)
        .wait(
            "the new leader applies the scale",
            "payments",
            SETTLE,
            |d: Option<&Deployment>| d.and_then(|d| d.spec.replicas) == Some(3),
        )
        .unwrap_or_else(|e| panic!("{e} (leader {second})"));

    // An upgrade rolls the operator, not the fleet.
    let before = fleet_deployment(&kube, team);
    let mut upgrade = vec!["upgrade", "op", chart, "-n", sys, "--wait", "--timeout", "180s"];
    for v in &values {
        upgrade.extend(["--set", v.as_str()]);
    }
    upgrade.extend(["--set", "logLevel=debug"]);
    helm(&world, &upgrade).unwrap_or_else(|e| panic!("helm upgrade: {e}"));
    let dep = kube.namespaced::<Deployment>(sys).get("op-hatchet-operator").unwrap();
    let args = dep
        .spec
        .template
        .spec
        .and_then(|s| s.containers.into_iter().next())
        .and_then(|c| c.args)
        .unwrap_or_default();
    assert!(
        args.iter().any(|x| x == "--log-level=debug"),
        "the upgrade applied: {args:?}"
    );
    std::thread::sleep(Duration::from_secs(5));
    let after = fleet_deployment(&kube, team);
    assert_eq!(
        identity(&before),
        identity(&after),
        "uid, generation and replicas of the fleet's Deployment"
    );

    // Uninstall: the operator goes, the CRD and the user's objects stay.
    helm(&world, &["uninstall", "op", "-n", sys, "--wait"]).unwrap_or_else(|e| panic!("helm uninstall: {e}"));
    assert!(
        kube.cluster::<CustomResourceDefinition>()
            .get_opt("hatchetworkers.hatchet.run")
            .unwrap()
            .is_some(),
        "the CRD stays"
    );
    assert!(
        workers.get_opt("payments").unwrap().is_some(),
        "the HatchetWorker stays"
    );
    assert_eq!(
        identity(&fleet_deployment(&kube, team)).0,
        identity(&after).0,
        "its fleet stays"
    );
    assert!(
        kube.namespaced::<Deployment>(sys)
            .get_opt("op-hatchet-operator")
            .unwrap()
            .is_none(),
        "the operator is gone"
    );
}

//! The operator against the real apiserver, controller-manager, scheduler and kwok node, running
//! with the shipped RBAC (a ServiceAccount token, not admin): a HatchetWorker becomes a fleet
//! with every injected field, reports Ready status, follows `kubectl scale` and template edits,
//! reports a missing Secret and recovers, garbage-collects on deletion, and a restart of the
//! operator writes nothing.

mod common;

use common::*;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec, Probe};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

fn env_of<'a>(container: &'a Container, name: &str) -> Option<&'a EnvVar> {
    container.env.as_ref()?.iter().find(|e| e.name == name)
}

fn worker_container(pod_spec: &PodSpec) -> &Container {
    pod_spec
        .containers
        .iter()
        .find(|c| c.name == "worker")
        .expect("a worker container")
}

/// The path and port a probe GETs.
fn http_probe(probe: &Option<Probe>) -> Option<(String, IntOrString)> {
    let get = probe.as_ref()?.http_get.as_ref()?;
    Some((get.path.clone().unwrap_or_default(), get.port.clone()))
}

#[test]
fn hatchet_worker_becomes_a_fleet_scales_rolls_and_is_garbage_collected() {
    let world = world();
    let kube = kube(&world);
    install_crd(&kube);
    let ns = Namespace::create(&kube, "op-fleet");
    let ns = ns.name.as_str();
    let scratch = tempdir(ns);
    let kubeconfig = operator_kubeconfig(&kube, &scratch.path);
    let mut op = Operator::start(&kubeconfig, ns, "fleet-a", &[]);
    op.wait_ready();

    token_secret(&kube, ns, "hatchet-token");
    let manifest = hatchet_worker(
        ns,
        "payments",
        "hatchet-token",
        "  replicas: 2\n  slots: 25\n  labels: {gpu: a100}\n  drain: {timeoutSeconds: 120}\n",
    );
    apply_worker(&kube, &manifest);
    let hw = wait_ready(&kube, ns, "payments", 2, &op);
    let status = hw.status.clone().unwrap_or_default();
    assert_eq!(status.observed_generation, Some(1), "{status:?}");
    // The reconcile's lines are inside its span, which names the object.
    let log = std::fs::read_to_string(&op.log).unwrap();
    let applying: Vec<&str> = log.lines().filter(|l| l.contains("applying")).collect();
    assert!(!applying.is_empty(), "{log}");
    for line in applying {
        assert!(
            line.contains(&format!("reconcile{{namespace={ns} name=payments}}")),
            "not in the reconcile's span: {line}"
        );
    }
    assert_eq!(status.slots.as_ref().map(|s| s.total), Some(50), "{status:?}");
    assert_eq!(
        status.selector.as_deref(),
        Some("app.kubernetes.io/name=hatchet-worker,hatchet.run/fleet=payments"),
        "{status:?}"
    );
    for t in ["Progressing", "Degraded"] {
        assert_eq!(condition(&hw, t).unwrap().status, "False", "{t}: {status:?}");
    }

    // Every child exists and is controlled by the HatchetWorker.
    let uid = hw.uid().unwrap();
    let deployments = kube.namespaced::<Deployment>(ns);
    let services = kube.namespaced::<Service>(ns);
    let pdbs = kube.namespaced::<PodDisruptionBudget>(ns);
    let accounts = kube.namespaced::<ServiceAccount>(ns);
    let children = [
        ("deployment", deployments.get("payments").map(|o| o.metadata)),
        ("service", services.get("payments").map(|o| o.metadata)),
        ("pdb", pdbs.get("payments").map(|o| o.metadata)),
        ("serviceaccount", accounts.get("payments").map(|o| o.metadata)),
    ];
    for (kind, meta) in children {
        let meta = meta.unwrap_or_else(|e| panic!("{kind}: {e}"));
        let owner = meta
            .owner_references
            .as_ref()
            .and_then(|o| o.first())
            .unwrap_or_else(|| panic!("{kind} has no owner: {meta:?}"));
        assert_eq!(owner.uid, uid, "{kind} owner: {owner:?}");
        assert_eq!(owner.controller, Some(true), "{kind}");
    }
    let svc = services.get("payments").unwrap().spec.unwrap();
    let port = &svc.ports.as_ref().unwrap()[0];
    assert_eq!(port.name.as_deref(), Some("health"), "{svc:?}");
    assert_eq!(port.port, 8001, "{svc:?}");
    assert_eq!(port.target_port, Some(IntOrString::Int(8001)), "{svc:?}");
    assert_eq!(svc.cluster_ip.as_deref(), Some("None"), "headless: {svc:?}");
    let pdb = pdbs.get("payments").unwrap().spec.unwrap();
    assert_eq!(pdb.max_unavailable, Some(IntOrString::Int(1)), "{pdb:?}");

    // The pods carry every injected field and are Ready on the kwok node.
    let selector = "app.kubernetes.io/name=hatchet-worker,hatchet.run/fleet=payments";
    let pods = kube
        .namespaced::<Pod>(ns)
        .wait_all("2 Ready worker pods", selector, SETTLE, |pods| {
            let ready: Vec<Pod> = pods.iter().filter(|p| is_ready(p)).cloned().collect();
            if ready.len() == 2 {
                Ok(ready)
            } else {
                Err(format!("{} ready", ready.len()))
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let node = world.var("KWOK_NODE").unwrap();
    for pod in &pods {
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some(node));
        assert_eq!(spec.service_account_name.as_deref(), Some("payments"));
        assert_eq!(spec.termination_grace_period_seconds, Some(150));
        let labels = pod.labels();
        assert_eq!(labels["app.kubernetes.io/instance"], "payments");
        assert_eq!(labels["team"], "payments", "the template's own labels are kept");
        let c = worker_container(spec);
        let token = env_of(c, "HATCHET_CLIENT_TOKEN").expect("token env");
        assert!(token.value.is_none(), "the token is never inlined: {token:?}");
        let secret_ref = token
            .value_from
            .as_ref()
            .and_then(|f| f.secret_key_ref.as_ref())
            .expect("the token comes from a Secret");
        assert_eq!(secret_ref.name, "hatchet-token");
        assert_eq!(secret_ref.key, "token");
        assert_eq!(
            env_of(c, "HATCHET_WORKER_NAME")
                .and_then(|e| e.value_from.as_ref()?.field_ref.as_ref())
                .map(|f| f.field_path.as_str()),
            Some("metadata.name")
        );
        for (name, value) in [
            ("HATCHET_CLIENT_HOST_PORT", "127.0.0.1:17077"),
            ("HATCHET_CLIENT_TLS_STRATEGY", "none"),
            ("HATCHET_WORKER_SLOTS", "25"),
            ("HATCHET_CLIENT_WORKER_HEALTHCHECK_PORT", "8001"),
            ("HATCHET_WORKER_DRAIN_TIMEOUT_SECONDS", "120"),
        ] {
            assert_eq!(env_of(c, name).and_then(|e| e.value.as_deref()), Some(value), "{name}");
        }
        let labels: std::collections::BTreeMap<String, String> = serde_json::from_str(
            env_of(c, "HATCHET_CLIENT_WORKER_PRESET_LABELS")
                .and_then(|e| e.value.as_deref())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(labels["hatchet.run/fleet"], format!("{ns}.payments"));
        assert_eq!(labels["gpu"], "a100");
        let port = &c.ports.as_ref().unwrap()[0];
        assert_eq!(port.name.as_deref(), Some("health"));
        assert_eq!(port.container_port, 8001);
        assert_eq!(
            http_probe(&c.readiness_probe),
            Some(("/readyz".into(), IntOrString::Int(8001)))
        );
        assert_eq!(http_probe(&c.liveness_probe).map(|p| p.0).as_deref(), Some("/livez"));
        assert_eq!(http_probe(&c.startup_probe).map(|p| p.0).as_deref(), Some("/livez"));
        assert!(
            c.lifecycle.is_none(),
            "SIGTERM drains, no preStop hook: {:?}",
            c.lifecycle
        );
    }

    // kubectl scale goes through the /scale subresource to the Deployment. Run as users run
    // it: the CLI's path to /scale is what is tested.
    kubectl(&world, &["scale", "hw/payments", "-n", ns, "--replicas=3"]).expect("kubectl scale hw");
    let wants = |n: i32| move |d: Option<&Deployment>| d.and_then(|d| d.spec.replicas) == Some(n);
    deployments
        .wait("the Deployment to want 3 replicas", "payments", SETTLE, wants(3))
        .unwrap_or_else(|e| panic!("{e}"));
    let hw = wait_ready(&kube, ns, "payments", 3, &op);
    assert_eq!(hw.status.as_ref().and_then(|s| s.observed_generation), Some(2));
    // The /scale subresource reports the same numbers.
    let workers = kube.namespaced::<HatchetWorker>(ns);
    let scale = workers.scale("payments").expect("GET the scale subresource");
    assert_eq!(scale.spec.as_ref().and_then(|s| s.replicas), Some(3), "{scale:?}");
    let scale_status = scale.status.as_ref().expect("the scale subresource's status");
    assert_eq!(scale_status.replicas, 3, "{scale:?}");
    assert!(
        scale_status.selector.as_deref().is_some_and(|s| s.contains("payments")),
        "{scale:?}"
    );

    // A hand edit of a child is drift: the operator puts its own spec back.
    deployments
        .patch("payments", &Patch::Merge(json!({"spec": {"replicas": 5}})))
        .expect("hand-edit the Deployment");
    deployments
        .wait("the operator to revert the hand edit", "payments", SETTLE, wants(3))
        .unwrap_or_else(|e| panic!("{e}"));

    // A template edit rolls the Deployment: new pods carry the new template.
    let edit = json!({"spec": {"template": {"metadata": {"annotations": {"rollout": "two"}}}}});
    workers
        .patch("payments", &Patch::Merge(edit))
        .expect("edit the template");
    wait_for("the rollout to finish with the new template", SETTLE, POLL, || {
        let pods = ready_pods(&kube, ns, selector)?;
        let new = pods
            .iter()
            .filter(|p| p.annotations().get("rollout").map(String::as_str) == Some("two"))
            .count();
        let hw = workers.get("payments")?;
        let generation = hw.status.as_ref().and_then(|s| s.observed_generation);
        if new == 3 && pods.len() == 3 && condition_true(&hw, "Ready") && generation == Some(3) {
            Ok(())
        } else {
            Err(format!(
                "{new}/3 new of {} ready pods; status {}",
                pods.len(),
                status_of(&hw)
            ))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));

    // Deleting the HatchetWorker garbage-collects every child.
    workers.delete("payments").expect("delete hw");
    let fleet = "hatchet.run/fleet=payments";
    let replicasets = kube.namespaced::<ReplicaSet>(ns);
    let pods = kube.namespaced::<Pod>(ns);
    wait_for("every child to be garbage-collected", SETTLE, POLL, || {
        let left = [
            ("deployments", deployments.list(fleet)?.len()),
            ("services", services.list(fleet)?.len()),
            ("pdbs", pdbs.list(fleet)?.len()),
            ("serviceaccounts", accounts.list(fleet)?.len()),
            ("replicasets", replicasets.list(fleet)?.len()),
            ("pods", pods.list(fleet)?.len()),
        ];
        if left.iter().all(|(_, n)| *n == 0) {
            Ok(())
        } else {
            Err(format!("left: {left:?}"))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    op.terminate();
}

/// A `wait_for` probe: hw/`name`'s `Degraded` condition has `status` and `reason` (the object is
/// returned); otherwise the operator's log tail says why not.
fn degraded_probe<'a>(
    kube: &'a Kube,
    ns: &'a str,
    name: &'a str,
    op: &'a Operator,
    status: &'a str,
    reason: &'a str,
) -> impl FnMut() -> Result<HatchetWorker, String> + 'a {
    move || {
        let hw = kube.namespaced::<HatchetWorker>(ns).get(name)?;
        match condition(&hw, "Degraded") {
            Some(c) if c.status == status && c.reason == reason => Ok(hw),
            other => Err(format!("Degraded: {other:?}; log:\n{}", op.log_tail())),
        }
    }
}

#[test]
fn a_missing_secret_is_reported_as_degraded_and_recovers() {
    let world = world();
    let kube = kube(&world);
    install_crd(&kube);
    let ns = Namespace::create(&kube, "op-secret");
    let ns = ns.name.as_str();
    // Secret checks need the namespaced RBAC (the cluster-wide one grants no Secret access).
    let sys = Namespace::create(&kube, "op-secret-sys");
    let sys = sys.name.as_str();
    let scratch = tempdir(ns);
    let (_, kubeconfig) = namespaced_operator_kubeconfig(&kube, &scratch.path, ns, sys);
    let mut op = Operator::start(&kubeconfig, ns, "secret-a", &["--lease-namespace", sys]);
    op.wait_ready();
    token_secret(&kube, ns, "tok");
    apply_worker(&kube, &hatchet_worker(ns, "billing", "tok", ""));
    wait_ready(&kube, ns, "billing", 1, &op);

    kube.namespaced::<Secret>(ns).delete("tok").expect("delete the Secret");
    let degraded = |want, reason| degraded_probe(&kube, ns, "billing", &op, want, reason);
    let hw = wait_for(
        "Degraded=True, SecretNotFound",
        SETTLE,
        POLL,
        degraded("True", "SecretNotFound"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let msg = condition(&hw, "Degraded").unwrap().message.clone();
    assert!(msg.contains("tok") && msg.contains("tokenSecretRef"), "{msg}");
    let events = |reason: &'static str| {
        let events = kube.namespaced::<Event>(ns);
        move || -> Result<(), String> {
            let list = events.list("")?;
            let found = list.iter().any(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.regarding.as_ref().is_some_and(|r| {
                        r.kind.as_deref() == Some("HatchetWorker") && r.name.as_deref() == Some("billing")
                    })
            });
            if found {
                Ok(())
            } else {
                let seen: Vec<_> = list.iter().map(|e| (e.reason.clone(), e.note.clone())).collect();
                Err(format!("no {reason} event among {seen:?}"))
            }
        }
    };
    wait_for("a SecretNotFound Warning event", SETTLE, POLL, events("SecretNotFound"))
        .unwrap_or_else(|e| panic!("{e}"));
    let failures = op.metric_sum("hatchet_operator_reconcile_errors_total").unwrap();
    assert!(failures >= 1.0, "errors counted: {failures}");

    token_secret(&kube, ns, "tok");
    wait_for(
        "Degraded=False after the Secret is back",
        SETTLE,
        POLL,
        degraded("False", "AsExpected"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    wait_for("a Recovered event", SETTLE, POLL, events("Recovered")).unwrap_or_else(|e| panic!("{e}"));
    wait_ready(&kube, ns, "billing", 1, &op);
    op.terminate();
}

#[test]
fn a_template_the_apiserver_refuses_is_reported_and_an_edit_recovers() {
    let world = world();
    let kube = kube(&world);
    install_crd(&kube);
    let ns = Namespace::create(&kube, "op-template");
    let ns = ns.name.as_str();
    let scratch = tempdir(ns);
    let kubeconfig = operator_kubeconfig(&kube, &scratch.path);
    let mut op = Operator::start(&kubeconfig, ns, "template-a", &[]);
    op.wait_ready();
    token_secret(&kube, ns, "tok");
    // Valid for the CRD's schema, refused by Deployment validation (pods of a Deployment
    // must restart Always).
    let good = hatchet_worker(ns, "ledger", "tok", "");
    let broken = good.replace(
        "    spec:\n      containers:",
        "    spec:\n      restartPolicy: Never\n      containers:",
    );
    assert_ne!(good, broken, "the manifest carries the broken field");
    apply_worker(&kube, &broken);
    let degraded = |want, reason| degraded_probe(&kube, ns, "ledger", &op, want, reason);
    let hw = wait_for(
        "Degraded=True, InvalidTemplate",
        SETTLE,
        POLL,
        degraded("True", "InvalidTemplate"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let msg = condition(&hw, "Degraded").unwrap().message.clone();
    assert!(
        msg.contains("restartPolicy"),
        "the apiserver's reason is passed on: {msg}"
    );
    assert!(
        kube.namespaced::<Deployment>(ns).get_opt("ledger").unwrap().is_none(),
        "no Deployment from a refused template"
    );

    apply_worker(&kube, &good);
    wait_for(
        "Degraded=False after the edit",
        SETTLE,
        POLL,
        degraded("False", "AsExpected"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    wait_ready(&kube, ns, "ledger", 1, &op);
    op.terminate();
}

#[test]
fn restarting_the_operator_writes_nothing_when_nothing_changed() {
    let world = world();
    let kube = kube(&world);
    install_crd(&kube);
    let ns = Namespace::create(&kube, "op-restart");
    let ns = ns.name.as_str();
    let scratch = tempdir(ns);
    let kubeconfig = operator_kubeconfig(&kube, &scratch.path);
    let mut op = Operator::start(&kubeconfig, ns, "restart-a", &[]);
    op.wait_ready();
    token_secret(&kube, ns, "tok");
    for name in ["one", "two", "three"] {
        let extra = "  replicas: 2\n  disruptionBudget: {minAvailable: 1}\n";
        apply_worker(&kube, &hatchet_worker(ns, name, "tok", extra));
    }
    for name in ["one", "two", "three"] {
        wait_ready(&kube, ns, name, 2, &op);
    }
    let writes = op.metric_sum("hatchet_operator_write_calls_total").unwrap();
    assert!(
        writes >= 12.0,
        "the first operator created the children: {writes} writes"
    );
    op.terminate();

    let mut op = Operator::start(&kubeconfig, ns, "restart-b", &[]);
    op.wait_ready();
    // Only the leader counts reconciles, and a reconcile is observed in the duration histogram
    // once it has ended (its writes, if any, done): wait for one finished reconcile of each
    // HatchetWorker under the new leader.
    wait_for("a finished reconcile of each HatchetWorker", SETTLE, POLL, || {
        let n = op.metric_sum("hatchet_operator_reconcile_duration_seconds_count")?;
        if n >= 3.0 {
            Ok(())
        } else {
            Err(format!("{n} reconciles; log:\n{}", op.log_tail()))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let (_, body) = op.http_get("/metrics").unwrap();
    assert_eq!(
        metric_sum(&body, "hatchet_operator_write_calls_total"),
        0.0,
        "a restart over an unchanged cluster must not write:\n{body}\nlog:\n{}",
        op.log_tail()
    );
    assert_eq!(metric_sum(&body, "hatchet_operator_leader"), 1.0, "{body}");

    // A steady fleet is left alone until the resync (600 s): no reconciles while nothing
    // changes (the leader's Lease checks every second are not news).
    let settled = op.metric_sum("hatchet_operator_reconciles_total").unwrap();
    std::thread::sleep(std::time::Duration::from_secs(6));
    let later = op.metric_sum("hatchet_operator_reconciles_total").unwrap();
    assert_eq!(later, settled, "reconciles at steady state; log:\n{}", op.log_tail());
    op.terminate();
}

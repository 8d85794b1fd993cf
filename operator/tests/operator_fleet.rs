//! The operator against the real apiserver, controller-manager, scheduler and kwok node, running
//! with the shipped RBAC (a ServiceAccount token, not admin): a HatchetWorker becomes a fleet
//! with every injected field, reports Ready status, follows `kubectl scale` and template edits,
//! reports a missing Secret and recovers, garbage-collects on deletion, and a restart of the
//! operator writes nothing.

mod common;

use common::*;
use serde_json::Value;

fn env_of<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"].as_array()?.iter().find(|e| e["name"] == name)
}

fn worker_container(pod_spec: &Value) -> Value {
    pod_spec["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "worker"))
        .cloned()
        .unwrap_or(Value::Null)
}

#[test]
fn hatchet_worker_becomes_a_fleet_scales_rolls_and_is_garbage_collected() {
    let world = world();
    install_crd(&world);
    let ns = Namespace::create(&world, "op-fleet");
    let ns = ns.name.as_str();
    let scratch = tempdir(ns);
    let kubeconfig = operator_kubeconfig(&world, &scratch.path);
    let mut op = Operator::start(&kubeconfig, ns, "fleet-a", &[]);
    op.wait_ready();

    token_secret(&world, ns, "hatchet-token");
    let manifest = hatchet_worker(
        ns,
        "payments",
        "hatchet-token",
        "  replicas: 2\n  slots: 25\n  labels: {gpu: a100}\n  drain: {timeoutSeconds: 120}\n",
    );
    kubectl_stdin(&world, &["apply", "-f", "-"], &manifest).expect("apply the HatchetWorker");
    let hw = wait_ready(&world, ns, "payments", 2, &op);
    assert_eq!(hw["status"]["observedGeneration"], 1, "{hw}");
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
    assert_eq!(hw["status"]["slots"]["total"], 50, "{hw}");
    assert_eq!(
        hw["status"]["selector"], "app.kubernetes.io/name=hatchet-worker,hatchet.run/fleet=payments",
        "{hw}"
    );
    for t in ["Progressing", "Degraded"] {
        assert_eq!(condition(&hw, t).unwrap()["status"], "False", "{t}: {hw}");
    }

    // Every child exists and is controlled by the HatchetWorker.
    let uid = hw["metadata"]["uid"].as_str().unwrap().to_owned();
    for kind in ["deployment", "service", "pdb", "serviceaccount"] {
        let obj = get_json(&world, &[kind, "payments", "-n", ns]).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let owner = &obj["metadata"]["ownerReferences"][0];
        assert_eq!(owner["uid"], uid.as_str(), "{kind} owner: {obj}");
        assert_eq!(owner["controller"], true, "{kind}");
    }
    let svc = get_json(&world, &["service", "payments", "-n", ns]).unwrap();
    assert_eq!(svc["spec"]["ports"][0]["name"], "health", "{svc}");
    assert_eq!(svc["spec"]["ports"][0]["port"], 8001, "{svc}");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8001, "{svc}");
    assert_eq!(svc["spec"]["clusterIP"], "None", "headless: {svc}");
    let pdb = get_json(&world, &["pdb", "payments", "-n", ns]).unwrap();
    assert_eq!(pdb["spec"]["maxUnavailable"], 1, "{pdb}");

    // The pods carry every injected field and are Ready on the kwok node.
    let selector = "app.kubernetes.io/name=hatchet-worker,hatchet.run/fleet=payments";
    let pods = wait_for("2 Ready worker pods", SETTLE, POLL, || {
        let pods = ready_pods(&world, ns, selector)?;
        if pods.len() == 2 {
            Ok(pods)
        } else {
            Err(format!("{} ready", pods.len()))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let node = world.var("KWOK_NODE").unwrap();
    for pod in &pods {
        let spec = &pod["spec"];
        assert_eq!(spec["nodeName"], node);
        assert_eq!(spec["serviceAccountName"], "payments");
        assert_eq!(spec["terminationGracePeriodSeconds"], 150);
        let labels = &pod["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/instance"], "payments");
        assert_eq!(labels["team"], "payments", "the template's own labels are kept");
        let c = worker_container(spec);
        let token = env_of(&c, "HATCHET_CLIENT_TOKEN").expect("token env");
        assert!(token.get("value").is_none(), "the token is never inlined: {token}");
        assert_eq!(token["valueFrom"]["secretKeyRef"]["name"], "hatchet-token");
        assert_eq!(token["valueFrom"]["secretKeyRef"]["key"], "token");
        assert_eq!(
            env_of(&c, "HATCHET_WORKER_NAME").unwrap()["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.name"
        );
        for (name, value) in [
            ("HATCHET_CLIENT_HOST_PORT", "127.0.0.1:17077"),
            ("HATCHET_CLIENT_TLS_STRATEGY", "none"),
            ("HATCHET_WORKER_SLOTS", "25"),
            ("HATCHET_CLIENT_WORKER_HEALTHCHECK_PORT", "8001"),
            ("HATCHET_WORKER_DRAIN_TIMEOUT_SECONDS", "120"),
        ] {
            assert_eq!(
                env_of(&c, name).map(|e| e["value"].clone()),
                Some(Value::from(value)),
                "{name}"
            );
        }
        let labels: Value = serde_json::from_str(
            env_of(&c, "HATCHET_CLIENT_WORKER_PRESET_LABELS").unwrap()["value"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(labels["hatchet.run/fleet"], format!("{ns}.payments"));
        assert_eq!(labels["gpu"], "a100");
        assert_eq!(c["ports"][0]["name"], "health");
        assert_eq!(c["ports"][0]["containerPort"], 8001);
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/livez");
        assert_eq!(c["startupProbe"]["httpGet"]["path"], "/livez");
        assert!(
            c["lifecycle"].is_null(),
            "SIGTERM drains, no preStop hook: {}",
            c["lifecycle"]
        );
        assert_eq!(c["readinessProbe"]["httpGet"]["port"], 8001);
    }

    // kubectl scale goes through the /scale subresource to the Deployment.
    kubectl(&world, &["scale", "hw/payments", "-n", ns, "--replicas=3"]).expect("kubectl scale hw");
    wait_for("the Deployment to want 3 replicas", SETTLE, POLL, || {
        let d = get_json(&world, &["deployment", "payments", "-n", ns])?;
        if d["spec"]["replicas"] == 3 {
            Ok(())
        } else {
            Err(format!("{}", d["spec"]["replicas"]))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let hw = wait_ready(&world, ns, "payments", 3, &op);
    assert_eq!(hw["status"]["observedGeneration"], 2);
    // The /scale subresource reports the same numbers (read raw: `get --raw` prints JSON as is).
    let url = format!("/apis/hatchet.run/v1alpha1/namespaces/{ns}/hatchetworkers/payments/scale");
    let raw = kubectl(&world, &["get", "--raw", &url]).expect("GET the scale subresource");
    let scale: serde_json::Value = serde_json::from_str(&raw).expect("scale subresource is JSON");
    assert_eq!(scale["kind"], "Scale", "{scale}");
    assert_eq!(scale["spec"]["replicas"], 3, "{scale}");
    assert_eq!(scale["status"]["replicas"], 3, "{scale}");
    assert!(
        scale["status"]["selector"]
            .as_str()
            .is_some_and(|s| s.contains("payments")),
        "{scale}"
    );

    // A hand edit of a child is drift: the operator puts its own spec back.
    kubectl(
        &world,
        &[
            "patch",
            "deployment",
            "payments",
            "-n",
            ns,
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":5}}"#,
        ],
    )
    .expect("hand-edit the Deployment");
    wait_for("the operator to revert the hand edit", SETTLE, POLL, || {
        let d = get_json(&world, &["deployment", "payments", "-n", ns])?;
        if d["spec"]["replicas"] == 3 {
            Ok(())
        } else {
            Err(format!("replicas {}", d["spec"]["replicas"]))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));

    // A template edit rolls the Deployment: new pods carry the new template.
    kubectl(
        &world,
        &[
            "patch",
            "hw",
            "payments",
            "-n",
            ns,
            "--type=merge",
            "-p",
            r#"{"spec":{"template":{"metadata":{"annotations":{"rollout":"two"}}}}}"#,
        ],
    )
    .expect("edit the template");
    wait_for("the rollout to finish with the new template", SETTLE, POLL, || {
        let pods = ready_pods(&world, ns, selector)?;
        let new = pods
            .iter()
            .filter(|p| p["metadata"]["annotations"]["rollout"] == "two")
            .count();
        let hw = get_json(&world, &["hw", "payments", "-n", ns])?;
        let ready = condition(&hw, "Ready").is_some_and(|c| c["status"] == "True");
        if new == 3 && pods.len() == 3 && ready && hw["status"]["observedGeneration"] == 3 {
            Ok(())
        } else {
            Err(format!(
                "{new}/3 new of {} ready pods; status {}",
                pods.len(),
                hw["status"]
            ))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));

    // Deleting the HatchetWorker garbage-collects every child.
    kubectl(&world, &["delete", "hw", "payments", "-n", ns, "--wait=false"]).expect("delete hw");
    wait_for("every child to be garbage-collected", SETTLE, POLL, || {
        let left = kubectl(
            &world,
            &[
                "get",
                "deployment,service,pdb,serviceaccount,replicaset,pod",
                "-n",
                ns,
                "-l",
                "hatchet.run/fleet=payments",
                "-o",
                "name",
            ],
        )?;
        if left.trim().is_empty() { Ok(()) } else { Err(left) }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    op.terminate();
}

/// A `wait_for` probe: hw/`name`'s `Degraded` condition has `status` and `reason` (the object is
/// returned); otherwise the operator's log tail says why not.
fn degraded_probe<'a>(
    world: &'a World,
    ns: &'a str,
    name: &'a str,
    op: &'a Operator,
    status: &'a str,
    reason: &'a str,
) -> impl FnMut() -> Result<Value, String> + 'a {
    move || {
        let hw = get_json(world, &["hw", name, "-n", ns])?;
        match condition(&hw, "Degraded") {
            Some(c) if c["status"] == status && c["reason"] == reason => Ok(hw),
            other => Err(format!("Degraded: {other:?}; log:\n{}", op.log_tail())),
        }
    }
}

#[test]
fn a_missing_secret_is_reported_as_degraded_and_recovers() {
    let world = world();
    install_crd(&world);
    let ns = Namespace::create(&world, "op-secret");
    let ns = ns.name.as_str();
    // Secret checks need the namespaced RBAC (the cluster-wide one grants no Secret access).
    let sys = Namespace::create(&world, "op-secret-sys");
    let sys = sys.name.as_str();
    let scratch = tempdir(ns);
    let (_, kubeconfig) = namespaced_operator_kubeconfig(&world, &scratch.path, ns, sys);
    let mut op = Operator::start(&kubeconfig, ns, "secret-a", &["--lease-namespace", sys]);
    op.wait_ready();
    token_secret(&world, ns, "tok");
    kubectl_stdin(&world, &["apply", "-f", "-"], &hatchet_worker(ns, "billing", "tok", "")).expect("apply");
    wait_ready(&world, ns, "billing", 1, &op);

    kubectl(&world, &["delete", "secret", "tok", "-n", ns]).expect("delete the Secret");
    let degraded = |want, reason| degraded_probe(&world, ns, "billing", &op, want, reason);
    let hw = wait_for(
        "Degraded=True, SecretNotFound",
        SETTLE,
        POLL,
        degraded("True", "SecretNotFound"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let msg = condition(&hw, "Degraded").unwrap()["message"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(msg.contains("tok") && msg.contains("tokenSecretRef"), "{msg}");
    let events = |reason: &'static str| {
        let world = &world;
        move || -> Result<(), String> {
            let list = get_json(world, &["events.events.k8s.io", "-n", ns])?;
            let found = list["items"].as_array().into_iter().flatten().any(|e| {
                e["reason"] == reason
                    && e["regarding"]["kind"] == "HatchetWorker"
                    && e["regarding"]["name"] == "billing"
            });
            if found {
                Ok(())
            } else {
                Err(format!("no {reason} event among {}", list["items"]))
            }
        }
    };
    wait_for("a SecretNotFound Warning event", SETTLE, POLL, events("SecretNotFound"))
        .unwrap_or_else(|e| panic!("{e}"));
    let failures = op.metric_sum("hatchet_operator_reconcile_errors_total").unwrap();
    assert!(failures >= 1.0, "errors counted: {failures}");

    token_secret(&world, ns, "tok");
    wait_for(
        "Degraded=False after the Secret is back",
        SETTLE,
        POLL,
        degraded("False", "AsExpected"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    wait_for("a Recovered event", SETTLE, POLL, events("Recovered")).unwrap_or_else(|e| panic!("{e}"));
    wait_ready(&world, ns, "billing", 1, &op);
    op.terminate();
}

#[test]
fn a_template_the_apiserver_refuses_is_reported_and_an_edit_recovers() {
    let world = world();
    install_crd(&world);
    let ns = Namespace::create(&world, "op-template");
    let ns = ns.name.as_str();
    let scratch = tempdir(ns);
    let kubeconfig = operator_kubeconfig(&world, &scratch.path);
    let mut op = Operator::start(&kubeconfig, ns, "template-a", &[]);
    op.wait_ready();
    token_secret(&world, ns, "tok");
    // Valid for the CRD's schema, refused by Deployment validation (pods of a Deployment
    // must restart Always).
    let good = hatchet_worker(ns, "ledger", "tok", "");
    let broken = good.replace(
        "    spec:\n      containers:",
        "    spec:\n      restartPolicy: Never\n      containers:",
    );
    assert_ne!(good, broken, "the manifest carries the broken field");
    kubectl_stdin(&world, &["apply", "-f", "-"], &broken).expect("the HatchetWorker itself is admitted");
    let degraded = |want, reason| degraded_probe(&world, ns, "ledger", &op, want, reason);
    let hw = wait_for(
        "Degraded=True, InvalidTemplate",
        SETTLE,
        POLL,
        degraded("True", "InvalidTemplate"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let msg = condition(&hw, "Degraded").unwrap()["message"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(
        msg.contains("restartPolicy"),
        "the apiserver's reason is passed on: {msg}"
    );
    assert!(
        get_json(&world, &["deployment", "ledger", "-n", ns]).is_err(),
        "no Deployment from a refused template"
    );

    kubectl_stdin(&world, &["apply", "-f", "-"], &good).expect("fix the template");
    wait_for(
        "Degraded=False after the edit",
        SETTLE,
        POLL,
        degraded("False", "AsExpected"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    wait_ready(&world, ns, "ledger", 1, &op);
    op.terminate();
}

#[test]
fn restarting_the_operator_writes_nothing_when_nothing_changed() {
    let world = world();
    install_crd(&world);
    let ns = Namespace::create(&world, "op-restart");
    let ns = ns.name.as_str();
    let scratch = tempdir(ns);
    let kubeconfig = operator_kubeconfig(&world, &scratch.path);
    let mut op = Operator::start(&kubeconfig, ns, "restart-a", &[]);
    op.wait_ready();
    token_secret(&world, ns, "tok");
    for name in ["one", "two", "three"] {
        let extra = "  replicas: 2\n  disruptionBudget: {minAvailable: 1}\n";
        kubectl_stdin(&world, &["apply", "-f", "-"], &hatchet_worker(ns, name, "tok", extra)).expect("apply");
    }
    for name in ["one", "two", "three"] {
        wait_ready(&world, ns, name, 2, &op);
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

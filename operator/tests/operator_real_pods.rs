//! HatchetWorker fleets on the real node (kubelet + containerd): the pods run the real
//! `hatchet-worker` image against the real engine, reached on the node's bridge address. Checked
//! from the outside: readiness follows registration, the engine sees one worker per pod, runs
//! complete on the pods, `kubectl logs`/`exec` work, a wrong token is reported in the pod's log
//! and the HatchetWorker's status, and rolling updates, scale-ins and drain deadlines lose no
//! run (every run counted: all complete, none failed, none run twice except the ones a drain
//! deadline handed back, which ran exactly twice, on another pod). The operator image itself
//! runs in a pod too, reaching the apiserver through the `kubernetes` Service.

mod common;

use std::collections::BTreeSet;

use common::real_fleet::*;
use common::*;
use serde_json::json;

#[test]
fn real_pods_register_serve_runs_and_drain_through_rollouts_and_scale_in() {
    let world = world();
    let f = RealFleet::start(&world, "real-fleet", world.token().unwrap());
    f.apply("echo", "  replicas: 2\n  slots: 2\n  drain: {timeoutSeconds: 60}", &[]);
    let pods = wait_fleet(&f, "echo", 2);
    let names = pod_names(&pods);

    // The restricted profile's settings came from the operator, and no API token is mounted.
    for pod in &pods {
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.automount_service_account_token, Some(false), "{spec:?}");
        let psc = spec.security_context.as_ref().unwrap();
        assert_eq!(psc.run_as_non_root, Some(true), "{psc:?}");
        assert_eq!(
            psc.seccomp_profile.as_ref().map(|p| p.type_.as_str()),
            Some("RuntimeDefault"),
            "{psc:?}"
        );
        let sc = spec.containers[0].security_context.as_ref().unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{sc:?}");
        assert_eq!(
            sc.capabilities.as_ref().and_then(|c| c.drop.clone()),
            Some(vec!["ALL".to_owned()]),
            "{sc:?}"
        );
        let mounts = spec.containers[0].volume_mounts.clone().unwrap_or_default();
        assert!(
            !mounts.iter().any(|m| m.mount_path.contains("serviceaccount")),
            "{mounts:?}"
        );
    }

    // Each pod is on the real node, runs the image, and was Ready only after its worker
    // registered: the engine's worker is older than the pod's Ready transition.
    let workers = f.engine_workers();
    for pod in &pods {
        let name = pod.name_any();
        let name = name.as_str();
        assert_eq!(
            pod.spec.as_ref().and_then(|s| s.node_name.as_deref()),
            Some(world.var("REAL_NODE").unwrap()),
            "{name}"
        );
        let status = &pod.status.as_ref().unwrap().container_statuses.as_ref().unwrap()[0];
        assert!(status.ready, "{status:?}");
        assert!(status.image_id.contains("sha256:"), "{status:?}");
        let w = workers
            .get(name)
            .unwrap_or_else(|| panic!("no engine worker for pod {name}; workers: {workers:?}"));
        assert_eq!(w["slotConfig"]["default"]["limit"], 2, "slots: {w}");
        let labels = w["labels"].as_array().cloned().unwrap_or_default();
        assert!(
            labels
                .iter()
                .any(|l| l["key"] == "hatchet.run/fleet" && l["value"] == format!("{}.echo", f.ns())),
            "fleet label: {w}"
        );
        let registered = w["metadata"]["createdAt"].as_str().unwrap_or_default();
        let ready_at = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0.to_string())
            .expect("the pod's Ready transition");
        // Both RFC 3339 in UTC; the pod's has whole seconds, so compare to the second.
        assert!(
            ready_at.as_str() >= &registered[..19.min(registered.len())],
            "pod {name} Ready at {ready_at}, worker registered at {registered}"
        );
    }
    assert_eq!(
        workers.keys().filter(|k| names.contains(*k)).count(),
        2,
        "one engine worker per pod: {workers:?}"
    );

    // Nothing a pod sends can leave the machine: its only routes are the pod subnet and the
    // service range through the node, and the host forwards nothing from the bridge.
    let node_ip = world.var("NODE_IP").unwrap();
    for netns in std::fs::read_dir("/run/netns")
        .expect("pods' network namespaces")
        .flatten()
    {
        let name = netns.file_name().to_string_lossy().into_owned();
        let routes = hatchet_e2e::run(std::process::Command::new("ip").args(["-n", &name, "route"])).expect("ip route");
        assert!(!routes.contains("default"), "{name} has a default route: {routes}");
        for route in routes.lines() {
            assert!(
                route.contains("dev eth0 proto kernel") || route.contains(&format!("via {node_ip}")),
                "{name}: unexpected route {route}"
            );
        }
    }
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap().trim(),
        "0"
    );

    // No stranger stops a worker: /drain over the pod network is refused, the pod stays Ready.
    let ip = pods[0].status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap();
    let code = hatchet_e2e::run(std::process::Command::new("curl").args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "5",
        &format!("http://{ip}:8001/drain"),
    ]))
    .expect("curl the pod's /drain");
    assert_eq!(code, "403", "/drain from outside the pod");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let again = f.kube.namespaced::<Pod>(f.ns()).get(&pods[0].name_any()).unwrap();
    assert!(
        is_ready(&again),
        "still Ready after the refused drain: {:?}",
        again.status
    );

    // kubectl logs and exec reach the real containers.
    let first = names.iter().next().unwrap().clone();
    let logs = kubectl(&world, &["logs", "-n", f.ns(), &first]).expect("kubectl logs");
    assert!(logs.contains("worker registered"), "{logs}");
    let version = kubectl(
        &world,
        &[
            "exec",
            "-n",
            f.ns(),
            &first,
            "--",
            "/usr/local/bin/hatchet-worker",
            "--version",
        ],
    )
    .expect("kubectl exec");
    assert!(version.starts_with("hatchet-worker "), "{version}");

    // Runs triggered through the engine complete on those pods.
    let ids = f.trigger("fleet-echo", 8, json!({"hello": "pods"}));
    let outputs = f.outcomes_once(&ids, "echo");
    assert_ran_on(&outputs, &names);

    // A rolling update while every slot runs a 10-s task: old pods drain, nothing is lost.
    let ids = f.trigger("fleet-sleep", 4, json!({"ms": 10_000}));
    f.wait_running(&ids);
    f.apply(
        "echo",
        "  replicas: 2\n  slots: 2\n  drain: {timeoutSeconds: 60}",
        &[("ROLLOUT", "two")],
    );
    let outputs = f.outcomes_once(&ids, "sleep");
    assert_ran_on(&outputs, &names);
    let rolled = wait_fleet(&f, "echo", 2);
    let rolled_names = pod_names(&rolled);
    assert!(
        rolled_names.is_disjoint(&names),
        "every pod replaced: {names:?} -> {rolled_names:?}"
    );

    // A scale-in from 3 to 1 while every slot runs a 10-s task: the two leaving pods drain.
    // Scaled as users scale it: kubectl through /scale.
    kubectl(&world, &["scale", "hw/echo", "-n", f.ns(), "--replicas=3"]).expect("scale to 3");
    let three = pod_names(&wait_fleet(&f, "echo", 3));
    let ids = f.trigger("fleet-sleep", 6, json!({"ms": 10_000}));
    f.wait_running(&ids);
    kubectl(&world, &["scale", "hw/echo", "-n", f.ns(), "--replicas=1"]).expect("scale to 1");
    let outputs = f.outcomes_once(&ids, "sleep");
    assert_ran_on(&outputs, &three);
    let used: BTreeSet<&str> = outputs.iter().filter_map(|o| o["worker"].as_str()).collect();
    assert_eq!(used.len(), 3, "all three pods had work: {outputs:?}");
    wait_fleet(&f, "echo", 1);
}

#[test]
fn tasks_outlasting_the_drain_deadline_are_handed_back_and_run_on_another_pod() {
    let world = world();
    let f = RealFleet::start(&world, "real-handback", world.token().unwrap());
    f.apply("slow", "  replicas: 1\n  slots: 2\n  drain: {timeoutSeconds: 3}", &[]);
    let first = pod_names(&wait_fleet(&f, "slow", 1));
    let ids = f.trigger("fleet-sleep", 2, json!({"ms": 15_000}));
    f.wait_running(&ids);
    kubectl(&world, &["scale", "hw/slow", "-n", f.ns(), "--replicas=2"]).expect("scale to 2");
    let both = pod_names(&wait_fleet(&f, "slow", 2));
    let gone = first.iter().next().unwrap().clone();
    // The pod holding both runs goes; its drain deadline (3 s) passes long before the tasks end.
    f.kube
        .namespaced::<Pod>(f.ns())
        .delete(&gone)
        .expect("delete the busy pod");
    let outputs = f.outcomes(&ids, "sleep");
    let mut fleet = both.clone();
    fleet.extend(pod_names(&wait_fleet(&f, "slow", 2)));
    fleet.remove(&gone);
    for out in &outputs {
        assert_eq!(out["attempt"], 2, "handed back once, then run to completion: {out}");
        let w = out["worker"].as_str().unwrap_or_default();
        assert!(
            fleet.contains(w),
            "the retry ran on another pod of the fleet ({fleet:?}), not {gone}: {out}"
        );
    }
}

/// The cluster-wide RBAC grants no Secret access, so the operator cannot look a Secret up: a
/// missing one shows in the Ready message as the kubelet's waiting reason, and the fleet
/// recovers once the Secret exists.
#[test]
fn without_secret_access_a_missing_secret_shows_in_the_ready_message_and_recovers() {
    let world = world();
    let f = RealFleet::start(&world, "real-nosecret", world.token().unwrap());
    f.apply_with_secret("lost", "absent-token", "  replicas: 1\n  slots: 1", &[]);
    let names_secret = |hw: Option<&HatchetWorker>| {
        hw.and_then(|hw| condition(hw, "Ready")).is_some_and(|c| {
            c.status == "False"
                && c.message.contains("CreateContainerConfigError")
                && c.message.contains("absent-token")
        })
    };
    f.workers()
        .wait("hw/lost to name the missing Secret", "lost", ROLLOUT, names_secret)
        .unwrap_or_else(|e| panic!("{e}"));
    secret(&f.kube, f.ns(), "absent-token", world.token().unwrap());
    wait_fleet(&f, "lost", 1);
}

#[test]
fn a_wrong_token_keeps_pods_unready_with_the_reason_in_log_and_status() {
    let world = world();
    // A well-formed token (same claims) whose signature the engine rejects.
    let good = world.token().unwrap();
    let (head, _sig) = good.rsplit_once('.').unwrap();
    let wrong = format!("{head}.c2lnbmF0dXJlLW1hZGUtdXAtYnktdGhlLXRlc3Q");
    let f = RealFleet::start(&world, "real-badtoken", &wrong);
    f.apply("denied", "  replicas: 1\n  slots: 1", &[]);

    let pod = wait_for("the pod to have failed at least once", ROLLOUT, POLL, || {
        let pods = f.pods("denied");
        match pods.first() {
            Some(p)
                if p.status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref()?.first().map(|c| c.restart_count))
                    .unwrap_or(0)
                    >= 1 =>
            {
                Ok(p.clone())
            }
            Some(p) => Err(format!("{:?}", p.status)),
            None => Err("no pod yet".into()),
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !is_ready(&pod),
        "a worker the engine refuses is never Ready: {:?}",
        pod.status
    );
    let name = pod.name_any();
    let name = name.as_str();
    // kubectl logs on purpose: the user's way to the real container's log, --previous included.
    // The kubelet may be replacing the dead container while we read (its log is then briefly
    // unavailable): read the previous and the current container until one of them is there.
    wait_for("the worker's log to say why", ROLLOUT, POLL, || {
        let previous = kubectl(&world, &["logs", "-n", f.ns(), name, "--previous"]).unwrap_or_else(|e| e);
        let current = kubectl(&world, &["logs", "-n", f.ns(), name]).unwrap_or_else(|e| e);
        if previous.contains("Unauthenticated") || current.contains("Unauthenticated") {
            Ok(())
        } else {
            Err(format!("previous: {previous}\ncurrent: {current}"))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));

    let says_why = |hw: Option<&HatchetWorker>| {
        hw.and_then(|hw| condition(hw, "Ready"))
            .is_some_and(|c| c.status == "False" && c.message.contains("Unauthenticated"))
    };
    let hw = f
        .workers()
        .wait(
            "hw/denied to say why its pods are not ready",
            "denied",
            ROLLOUT,
            says_why,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let ready = condition(&hw, "Ready").unwrap();
    assert_eq!(ready.reason, "ReplicasNotReady", "{ready:?}");
    assert!(ready.message.contains(name), "names the pod: {ready:?}");
    assert!(f.engine_workers().is_empty(), "the engine never registered it");
}

#[test]
fn the_operator_image_in_a_pod_runs_a_real_fleet_through_the_in_cluster_apiserver() {
    let world = world();
    let f = RealFleet::start_with(&world, "real-inpod", world.token().unwrap(), true);
    let OperatorAt::Pod(op_pod, _) = &f.op else {
        unreachable!("started in a pod")
    };
    // On the pod network (not the host's): the apiserver is reached as in any cluster.
    let op = f.kube.namespaced::<Pod>(OPERATOR_NS).get(op_pod).unwrap();
    let host_network = op.spec.as_ref().and_then(|s| s.host_network);
    assert!(!host_network.unwrap_or(false), "{:?}", op.spec);
    let subnet_prefix = world.var("NODE_IP").unwrap().rsplit_once('.').unwrap().0.to_owned() + ".";
    assert!(
        op.status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .is_some_and(|ip| ip.starts_with(&subnet_prefix)),
        "{:?}",
        op.status
    );

    f.apply("inpod", "  replicas: 1\n  slots: 2", &[]);
    let pods = wait_fleet(&f, "inpod", 1);
    let ids = f.trigger("fleet-echo", 4, json!({"from": "an operator in a pod"}));
    assert_ran_on(&f.outcomes_once(&ids, "echo"), &pod_names(&pods));
    let log = f.operator_log();
    assert!(!log.contains("ERROR"), "{log}");
}

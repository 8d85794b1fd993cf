//! The built-in autoscaler on the real node, end to end: a fleet with `minReplicas: 0` starts
//! one worker to learn its actions and goes to zero when idle; queued work scales it from zero;
//! a burst fills the slots and scales it out (the operator is killed and restarted in the
//! middle); when the burst is done it scales in idle-first (the pod still running a task has
//! the highest deletion cost and survives); the slot figures in the status match what the
//! engine and the worker pods report; an engine outage of 30 s holds the size with
//! `ScalingActive=False`; a `kubectl scale` is ignored with an Event; after another operator
//! restart the remembered actions scale the empty fleet from zero again. Every run is counted:
//! all complete, each started once (the engine's STARTED events). Engine fact: a task the
//! engine assigns to a worker in the moment between its registration and its assignment
//! stream is failed as "could not send" and retried, never having run; that is the one
//! second attempt scale-from-zero can show.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::real_fleet::*;
use common::*;
use hatchet_e2e::hatchet::{EngineBack, engine_ctl};
use hatchet_operator::crd::HatchetWorkerStatus;
use k8s_openapi::api::events::v1::Event;
use serde_json::json;

const FLEET: &str = "auto";
/// Two slots per worker, sized at 100 %: demand in tasks / 2 = pods. Polls every 2 s, zero
/// after 15 s idle, shrinks after a 10 s window.
const SPEC: &str = "  slots: 2
  drain: {timeoutSeconds: 300}
  autoscaling:
    minReplicas: 0
    maxReplicas: 3
    targetUtilization: 1.0
    pollIntervalSeconds: 2
    idleSecondsBeforeZero: 15
    scaleDown: {stabilizationWindowSeconds: 10}";
/// The task that outlives the burst, on the fleet's first pod.
const LONG_MS: u64 = 75_000;
const SHORT_MS: u64 = 8_000;

fn fleet_object(f: &RealFleet<'_>) -> Option<HatchetWorker> {
    f.workers().get(FLEET).ok()
}

fn status(f: &RealFleet<'_>) -> HatchetWorkerStatus {
    fleet_object(f).and_then(|hw| hw.status).unwrap_or_default()
}

/// Status, reason and message of a `ScalingActive` condition (empty when there is none).
#[derive(Debug, Default)]
struct Active {
    status: String,
    reason: String,
    message: String,
}

/// The `ScalingActive` condition of a HatchetWorker.
fn scaling_active_of(hw: Option<&HatchetWorker>) -> Active {
    hw.and_then(|hw| condition(hw, "ScalingActive"))
        .map(|c| Active {
            status: c.status.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
        })
        .unwrap_or_default()
}

fn deployment_replicas(f: &RealFleet<'_>) -> Option<i32> {
    f.kube.namespaced::<Deployment>(f.ns()).get(FLEET).ok()?.spec.replicas
}

/// Waits until `status.desiredReplicas` is `n`; how long that took.
fn wait_desired(f: &RealFleet<'_>, n: i32, within: Duration) -> Duration {
    let start = Instant::now();
    let desired = |hw: Option<&HatchetWorker>| hw.and_then(|hw| hw.status.as_ref()?.desired_replicas) == Some(n);
    f.workers()
        .wait(&format!("desiredReplicas {n}"), FLEET, within, desired)
        .unwrap_or_else(|e| panic!("{e}; operator log:\n{}", f.operator_log()));
    start.elapsed()
}

/// Waits until the fleet has no pod at all.
fn wait_no_pods(f: &RealFleet<'_>) {
    f.kube
        .namespaced::<Pod>(f.ns())
        .wait_all("no pods", &format!("hatchet.run/fleet={FLEET}"), ROLLOUT, |all| {
            if all.is_empty() {
                Ok(())
            } else {
                Err(format!("{} pods", all.len()))
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Reasons and messages of the HatchetWorker's Events.
fn events(f: &RealFleet<'_>) -> Vec<(String, String)> {
    f.kube
        .namespaced::<Event>(f.ns())
        .list("")
        .unwrap_or_default()
        .into_iter()
        .filter(|e| {
            e.regarding
                .as_ref()
                .is_some_and(|r| r.kind.as_deref() == Some("HatchetWorker") && r.name.as_deref() == Some(FLEET))
        })
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

fn restart_operator(f: &mut RealFleet<'_>, graceful: bool) {
    let OperatorAt::Host(op) = &mut f.op else {
        panic!("the operator runs on the host in this test")
    };
    if graceful {
        op.terminate();
    } else {
        op.kill();
    }
    let mut again = Operator::start(&f.kubeconfig, &f.ns.name, "autoscale-op", &[]);
    again.wait_ready();
    f.op = OperatorAt::Host(again);
}

#[test]
fn a_fleet_scales_from_zero_out_idle_first_in_and_back_to_zero_losing_no_run() {
    let world = world();
    let mut f = RealFleet::start(&world, "autoscale", world.token().unwrap());
    f.apply(FLEET, SPEC, &[]);

    // 1. No worker has told the fleet's actions yet: one starts, registers, and once idle for
    // 15 s the fleet goes to zero, remembering its actions.
    wait_desired(&f, 1, ROLLOUT);
    wait_desired(&f, 0, ROLLOUT);
    wait_no_pods(&f);
    let s = status(&f);
    assert!(
        s.actions.iter().any(|a| a.ends_with("fleet-sleep:sleep")),
        "actions remembered: {s:?}"
    );
    assert_eq!(deployment_replicas(&f), Some(0));
    // The reason of the latest decision: the scale to zero, or a later poll keeping zero. That
    // poll may still have seen the last pod on its way out (its idle slots counted, as in
    // "0/2 slots used, 0 queued: 0 kept") if the ReplicaSet had not yet deleted it.
    assert!(
        s.scale_reason
            .as_deref()
            .is_some_and(|r| r.contains("1 → 0 (idle for")
                || (r.starts_with("0/") && r.ends_with(" slots used, 0 queued: 0 kept"))),
        "{s:?}"
    );
    let evs = events(&f);
    assert!(
        evs.iter()
            .any(|(r, m)| r == "Scaled" && m.starts_with("0/2 slots used, 0 queued: 1 → 0 (idle for")),
        "a Scaled Event says why: {evs:?}"
    );
    assert_eq!(
        scaling_active_of(fleet_object(&f).as_ref()).reason,
        "SignalsRead",
        "{s:?}"
    );

    // 2. Queued work scales the fleet from zero.
    let t0 = Instant::now();
    let long = f.trigger("fleet-sleep", 1, json!({"ms": LONG_MS}));
    let to_one = wait_desired(&f, 1, ROLLOUT);
    f.wait_running(&long);
    eprintln!(
        "scale from zero: desiredReplicas 1 {:.1}s after the trigger, the run started after {:.1}s",
        to_one.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    let first_pod = pod_names(&f.pods(FLEET)).into_iter().next().expect("the first pod");

    // 3. A burst: 6 tasks for 3 pods of 2 slots. Scale-out follows in about one poll; the
    // operator is killed as it happens and its successor neither shrinks nor forgets.
    let t1 = Instant::now();
    let short = f.trigger("fleet-sleep", 5, json!({"ms": SHORT_MS}));
    let to_three = wait_desired(&f, 3, ROLLOUT);
    eprintln!(
        "scale out: desiredReplicas 3 {:.1}s after the burst",
        to_three.as_secs_f64()
    );
    restart_operator(&mut f, false);
    assert_eq!(
        status(&f).desired_replicas,
        Some(3),
        "the restarted operator keeps the size"
    );
    let pods = wait_fleet(&f, FLEET, 3);
    eprintln!("3 pods Ready {:.1}s after the burst", t1.elapsed().as_secs_f64());
    let burst_outputs = f.outcomes_once(&short, "sleep");
    assert_ran_on(&burst_outputs, &pod_names(&pods));

    // 4. Idle-first scale-in: demand is the one long task, so 3 → 1 once the window passed;
    // before shrinking, the operator marked the busy pod with the highest deletion cost.
    // Watched from the end of the burst: the costs are set before the size changes and the
    // pods stay visible while they drain.
    let mut costs: BTreeMap<String, i64> = BTreeMap::new();
    wait_for("desiredReplicas 1", ROLLOUT, Duration::from_millis(200), || {
        let pods = f
            .kube
            .namespaced::<Pod>(f.ns())
            .list(&format!("hatchet.run/fleet={FLEET}"))?;
        for p in &pods {
            let cost = p.annotations().get("controller.kubernetes.io/pod-deletion-cost");
            if let Some(cost) = cost.and_then(|c| c.parse().ok()) {
                costs.insert(p.name_any(), cost);
            }
        }
        let s = status(&f);
        if s.desired_replicas == Some(1) && costs.len() == 3 {
            Ok(())
        } else {
            Err(format!("status {s:?}, costs {costs:?}"))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        costs.get(&first_pod),
        Some(&1),
        "the busy pod's cost is its slot use: {costs:?}"
    );
    assert!(
        costs.iter().filter(|(p, _)| **p != first_pod).all(|(_, c)| *c <= 0),
        "the others are idle: {costs:?}"
    );
    let survivors = wait_fleet(&f, FLEET, 1);
    assert_eq!(
        pod_names(&survivors),
        std::collections::BTreeSet::from([first_pod.clone()]),
        "the busy pod survives"
    );

    // 5. The status's slot figures are the engine's and the pod's own.
    wait_for("status, engine and pod agree on the slots", SETTLE, POLL, || {
        let s = status(&f);
        let engine = engine_slots(&f, &first_pod);
        let pod = pod_slots(&survivors[0]);
        let status_slots = s.slots.as_ref().map(|slots| (slots.used, slots.total));
        if status_slots == Some((Some(1), 2))
            && engine == Some((1, 2))
            && pod == Ok((1, 2))
            && s.utilization == Some(0.5)
        {
            Ok(())
        } else {
            Err(format!(
                "status {status_slots:?} (utilization {:?}), engine {engine:?}, pod {pod:?}",
                s.utilization
            ))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    // The printer columns, as a user sees them: only kubectl prints them.
    let table = kubectl(f.world, &["get", "hw", FLEET, "-n", f.ns()]).unwrap();
    let (header, row) = table.split_once('\n').unwrap_or_default();
    for column in ["DESIRED", "SLOTS USED", "SLOTS TOTAL", "UTILIZATION", "QUEUED"] {
        assert!(header.contains(column), "{table}");
    }
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[1..7], ["1", "1", "1", "2", "0.5", "0"], "{table}");
    let OperatorAt::Host(op) = &f.op else {
        unreachable!("host operator")
    };
    assert_eq!(op.metric_sum("hatchet_operator_fleet_slots_used").unwrap(), 1.0);
    let long_outputs = f.outcomes_once(&long, "sleep");
    assert_ran_on(&long_outputs, &[first_pod.clone()].into());

    // 6. The engine unreachable for 30 s: the idle fleet would go to zero after 15 s, but
    // without figures it keeps its size, and says why.
    let back = EngineBack;
    engine_ctl("stop");
    let outage = Instant::now();
    let mut saw_inactive = None;
    while outage.elapsed() < Duration::from_secs(30) {
        let hw = fleet_object(&f);
        assert_eq!(
            deployment_replicas(&f),
            Some(1),
            "held during the outage: {:?}",
            hw.as_ref().map(status_of)
        );
        let active = scaling_active_of(hw.as_ref());
        if active.status == "False" {
            saw_inactive = Some(active);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let inactive = saw_inactive.expect("ScalingActive=False during the outage");
    assert_eq!(inactive.reason, "EngineUnreachable", "{inactive:?}");
    assert!(
        inactive.message.contains("/api/v1/tenants/") && inactive.message.ends_with("the fleet keeps 1 workers"),
        "{inactive:?}"
    );
    engine_ctl("start");
    drop(back);
    wait_desired(&f, 0, ROLLOUT);
    wait_no_pods(&f);
    assert_eq!(scaling_active_of(fleet_object(&f).as_ref()).status, "True");

    // 7. `kubectl scale` while the autoscaler owns the size: ignored, with an Event (the CLI
    // as users run it, through /scale).
    kubectl(f.world, &["scale", "hw", FLEET, "-n", f.ns(), "--replicas=4"]).expect("kubectl scale");
    wait_for("a ScaleIgnored Event", SETTLE, POLL, || {
        let evs = events(&f);
        evs.iter()
            .find(|(r, _)| r == "ScaleIgnored")
            .map(|_| ())
            .ok_or(format!("{evs:?}"))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(deployment_replicas(&f), Some(0), "the autoscaler keeps the size");

    // 8. A restarted operator scales the empty fleet from zero on the remembered actions.
    restart_operator(&mut f, true);
    let again = f.trigger("fleet-sleep", 3, json!({"ms": 3000}));
    wait_desired(&f, 2, ROLLOUT);
    let outputs = f.outcomes_once(&again, "sleep");
    wait_desired(&f, 0, ROLLOUT);

    // Every run: 1 long + 5 short + 3, all completed, each run once.
    assert_eq!(long_outputs.len() + burst_outputs.len() + outputs.len(), 9);
    let scaled = events(&f).into_iter().filter(|(r, _)| r == "Scaled").count();
    assert!(scaled >= 6, "an Event per scale decision: {:?}", events(&f));
}

/// Server-side applies the Secret `name` holding `token` under `token`.
fn put_token(kube: &Kube, ns: &str, name: &str, token: &str) {
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            ..Default::default()
        },
        string_data: Some([("token".to_owned(), token.to_owned())].into()),
        ..Default::default()
    };
    kube.namespaced::<Secret>(ns).apply(&secret).expect("apply the Secret");
}

/// The `ScalingActive` condition of `hw/name`, as (status, reason, message).
fn scaling_active(kube: &Kube, ns: &str, name: &str) -> (String, String, String) {
    let hw = kube.namespaced::<HatchetWorker>(ns).get(name).ok();
    let c = scaling_active_of(hw.as_ref());
    (c.status, c.reason, c.message)
}

fn wait_scaling_active(kube: &Kube, ns: &str, name: &str, status: &str, reason: &str) -> String {
    let holds = |hw: Option<&HatchetWorker>| {
        let c = scaling_active_of(hw);
        c.status == status && c.reason == reason
    };
    let hw = kube
        .namespaced::<HatchetWorker>(ns)
        .wait(
            &format!("hw/{name} ScalingActive={status} ({reason})"),
            name,
            SETTLE,
            holds,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    scaling_active_of(Some(&hw)).message
}

#[test]
fn a_missing_wrong_or_refused_token_or_a_silent_engine_holds_the_size_and_says_why_without_stalling_others() {
    use base64::Engine as _;
    let world = world();
    let kube = kube(&world);
    install_crd(&kube);
    let ns = Namespace::create(&kube, "op-scale-signals");
    let ns = ns.name.as_str();
    let scratch = tempdir(ns);
    let kubeconfig = operator_kubeconfig(&kube, &scratch.path);
    let mut op = Operator::start(&kubeconfig, ns, "signals-a", &[]);
    op.wait_ready();

    // An "engine" that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in silent.incoming().flatten() {
            held.push(conn);
        }
    });
    let autoscaling = "  autoscaling: {minReplicas: 2, maxReplicas: 4, pollIntervalSeconds: 1}";
    let fleet = |name: &str, secret: &str, url: &str| {
        let manifest = hatchet_worker(ns, name, secret, autoscaling).replace(
            "    tls: {strategy: none}",
            &format!("    serverUrl: {url}\n    tls: {{strategy: none}}"),
        );
        apply_worker(&kube, &manifest);
    };
    put_token(&kube, ns, "real", world.token().unwrap());
    let engine = world.server_url().unwrap().to_owned();
    fleet("hung", "real", &silent_url);
    fleet("ok", "real", &engine);
    fleet("tok", "tok", &engine);

    // The healthy fleet reads its signals while the hung one still waits for its first answer.
    wait_scaling_active(&kube, ns, "ok", "True", "SignalsRead");
    let (hung_status, ..) = scaling_active(&kube, ns, "hung");
    assert_ne!(
        hung_status, "False",
        "the hung engine's 10 s timeout has not passed yet"
    );
    let m = wait_scaling_active(&kube, ns, "hung", "False", "EngineUnreachable");
    assert!(m.contains(&silent_url) && m.contains("no answer within 10s"), "{m}");

    // A missing Secret, then one that holds no token, then a token the engine refuses.
    let m = wait_scaling_active(&kube, ns, "tok", "False", "TokenSecretNotFound");
    assert!(m.contains(&format!("Secret {ns}/tok not found")), "{m}");
    put_token(&kube, ns, "tok", "not-a-jwt");
    let m = wait_scaling_active(&kube, ns, "tok", "False", "InvalidToken");
    assert!(m.contains("not a Hatchet API token"), "{m}");
    let claims =
        json!({"sub": world.tenant_id().unwrap(), "server_url": engine, "grpc_broadcast_address": "127.0.0.1:17077"});
    let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let forged = format!(
        "{}.{}.{}",
        b64(r#"{"alg":"ES256","typ":"JWT"}"#),
        b64(&claims.to_string()),
        b64("forged")
    );
    put_token(&kube, ns, "tok", &forged);
    let m = wait_scaling_active(&kube, ns, "tok", "False", "EngineRefusedToken");
    assert!(m.contains("the fleet's token"), "{m}");
    assert!(
        !m.contains(&forged) && !op.log_tail().contains(&forged),
        "the token is never shown"
    );

    // None of them was resized: they keep minReplicas (their start) while blind.
    for name in ["hung", "ok", "tok"] {
        let d = kube.namespaced::<Deployment>(ns).get(name).unwrap();
        assert_eq!(d.spec.replicas, Some(2), "{name}");
    }
    // And a good token brings scaling back.
    put_token(&kube, ns, "tok", world.token().unwrap());
    wait_scaling_active(&kube, ns, "tok", "True", "SignalsRead");
}

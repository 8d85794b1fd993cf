//! The operator across a one-minute apiserver outage: `/readyz` reports the failing watches
//! while the apiserver is away, and once it is back a HatchetWorker change reaches its
//! Deployment within seconds (the watches retry with a capped backoff). In a binary of its
//! own: it stops the apiserver every other test needs. Prints what it measured.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hatchet_e2e::hatchet::env_ctl;
use k8s_openapi::api::core::v1::Node;

const OUTAGE: Duration = Duration::from_secs(60);

/// Starts the apiserver again when dropped, so a failing test cannot leave it down.
struct ApiserverBack;

impl Drop for ApiserverBack {
    fn drop(&mut self) {
        env_ctl("start", "kube-apiserver");
    }
}

fn replicas(kube: &Kube, ns: &str) -> Option<i32> {
    kube.namespaced::<Deployment>(ns).get("fleet").ok()?.spec.replicas
}

#[test]
fn after_an_apiserver_outage_readiness_and_changes_follow_within_seconds() {
    let world = world();
    let kube = kube(&world);
    install_crd(&kube);
    let ns = Namespace::create(&kube, "op-outage");
    let ns = ns.name.as_str();
    let scratch = tempdir(ns);
    let kubeconfig = operator_kubeconfig(&kube, &scratch.path);
    // Without leader election: this measures the watches. (A Lease lost in the outage is won
    // back on kube-lease-manager's own schedule, whose watcher backs off up to 30 s.)
    let mut op = Operator::start(&kubeconfig, ns, "outage", &["--leader-elect=false"]);
    op.wait_ready();
    token_secret(&kube, ns, "tok");
    apply_worker(&kube, &hatchet_worker(ns, "fleet", "tok", "  replicas: 1\n"));
    wait_ready(&kube, ns, "fleet", 1, &op);

    let back = ApiserverBack;
    let stopped = Instant::now();
    env_ctl("stop", "kube-apiserver");
    let stop_took = stopped.elapsed();
    let unready = wait_for(
        "operator /readyz not ready during the outage",
        Duration::from_secs(30),
        POLL,
        || match op.http_get("/readyz") {
            Ok((503, body)) => Ok(body),
            other => Err(format!("{other:?}")),
        },
    )
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", op.log_tail()));
    let unready_after = stopped.elapsed();
    assert!(unready.contains("watches failing"), "{unready}");
    std::thread::sleep(OUTAGE.saturating_sub(stopped.elapsed()));
    drop(back);
    let restarted = Instant::now();

    kube.namespaced::<HatchetWorker>(ns)
        .patch("fleet", &Patch::Merge(serde_json::json!({"spec": {"replicas": 3}})))
        .expect("patch the HatchetWorker right after the apiserver is back");
    let patched = restarted.elapsed();
    wait_for(
        "the change reaches the Deployment",
        Duration::from_secs(30),
        POLL,
        || match replicas(&kube, ns) {
            Some(3) => Ok(()),
            other => Err(format!("Deployment replicas {other:?}")),
        },
    )
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", op.log_tail()));
    let followed = restarted.elapsed();
    wait_for(
        "operator /readyz 200 again",
        Duration::from_secs(30),
        POLL,
        || match op.http_get("/readyz") {
            Ok((200, _)) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", op.log_tail()));
    let ready_again = restarted.elapsed();
    eprintln!(
        "apiserver down {OUTAGE:?} (its stop took {stop_took:?}): /readyz 503 after {unready_after:?} ({unready}); after its return: patched at \
         {patched:?}, Deployment followed at {followed:?}, /readyz 200 at {ready_again:?}"
    );
    // The world's nodes are Ready again before the next test binary uses them.
    wait_for("every node Ready", Duration::from_secs(90), POLL, || {
        let nodes = kube.cluster::<Node>().list("")?;
        let ready = |n: &Node| {
            n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        };
        match nodes.iter().find(|n| !ready(n)) {
            None => Ok(()),
            Some(n) => Err(format!("node {} not Ready", n.name_any())),
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    op.terminate();
}

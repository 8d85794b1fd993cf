//! The operator across a one-minute apiserver outage: `/readyz` reports the failing watches
//! while the apiserver is away, and once it is back a HatchetWorker change reaches its
//! Deployment within seconds (the watches retry with a capped backoff). In a binary of its
//! own: it stops the apiserver every other test needs. Prints what it measured.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hatchet_e2e::hatchet::env_ctl;

const OUTAGE: Duration = Duration::from_secs(60);

/// Starts the apiserver again when dropped, so a failing test cannot leave it down.
struct ApiserverBack;

impl Drop for ApiserverBack {
    fn drop(&mut self) {
        env_ctl("start", "kube-apiserver");
    }
}

fn replicas(world: &World, ns: &str) -> Option<i64> {
    get_json(world, &["-n", ns, "deployment", "fleet"]).ok()?["spec"]["replicas"].as_i64()
}

#[test]
fn after_an_apiserver_outage_readiness_and_changes_follow_within_seconds() {
    let world = world();
    install_crd(&world);
    let ns = Namespace::create(&world, "op-outage");
    let ns = ns.name.as_str();
    let scratch = tempdir(ns);
    let kubeconfig = operator_kubeconfig(&world, &scratch.path);
    // Without leader election: this measures the watches. (A Lease lost in the outage is won
    // back on kube-lease-manager's own schedule, whose watcher backs off up to 30 s.)
    let mut op = Operator::start(&kubeconfig, ns, "outage", &["--leader-elect=false"]);
    op.wait_ready();
    token_secret(&world, ns, "tok");
    kubectl_stdin(
        &world,
        &["apply", "-f", "-"],
        &hatchet_worker(ns, "fleet", "tok", "  replicas: 1\n"),
    )
    .expect("apply");
    wait_ready(&world, ns, "fleet", 1, &op);

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

    kubectl(
        &world,
        &[
            "-n",
            ns,
            "patch",
            "hatchetworker",
            "fleet",
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":3}}"#,
        ],
    )
    .expect("patch the HatchetWorker right after the apiserver is back");
    let patched = restarted.elapsed();
    wait_for(
        "the change reaches the Deployment",
        Duration::from_secs(30),
        POLL,
        || match replicas(&world, ns) {
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
        let nodes = get_json(&world, &["nodes"])?;
        let items = nodes["items"].as_array().cloned().unwrap_or_default();
        match items.iter().find(|n| !hatchet_e2e::kube::condition_true(n, "Ready")) {
            None => Ok(()),
            Some(n) => Err(format!("node {} not Ready", n["metadata"]["name"])),
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    op.terminate();
}

//! Two operator replicas with a short Lease: only the leader writes, and killing the leader
//! (SIGKILL, so the Lease is not released) hands over within the lease duration.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hatchet_e2e::Scratch;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

const LEASE_SECONDS: u64 = 15;

fn leader_of(ops: &[&Operator]) -> Result<usize, String> {
    let flags: Vec<f64> = ops
        .iter()
        .map(|o| o.metric_sum("hatchet_operator_leader").unwrap_or(-1.0))
        .collect();
    match flags.iter().filter(|f| **f == 1.0).count() {
        1 => Ok(flags.iter().position(|f| *f == 1.0).unwrap()),
        _ => Err(format!("leader gauges {flags:?}")),
    }
}

/// Holder and times of the test's Lease, in milliseconds since the epoch.
struct LeaseTimes {
    holder: String,
    renewed_ms: i64,
    acquired_ms: i64,
}

fn lease_times(kube: &Kube, name: &str) -> LeaseTimes {
    let lease = kube
        .namespaced::<Lease>("hatchet-system")
        .get(name)
        .unwrap_or_else(|e| panic!("{e}"));
    let spec = lease.spec.unwrap_or_default();
    let ms = |field: &str, t: Option<MicroTime>| {
        t.unwrap_or_else(|| panic!("no {field} in the Lease {name}"))
            .0
            .as_millisecond()
    };
    LeaseTimes {
        holder: spec.holder_identity.unwrap_or_default(),
        renewed_ms: ms("renewTime", spec.renew_time),
        acquired_ms: ms("acquireTime", spec.acquire_time),
    }
}

#[test]
fn only_the_leader_writes_and_a_dead_leader_is_replaced_within_the_lease() {
    let world = world();
    let kube = kube(&world);
    install_crd(&kube);
    let ns = Namespace::create(&kube, "op-leader");
    let ns = ns.name.as_str();
    let scratch = Scratch::new(&format!("hatchet-operator-e2e-{ns}"));
    let kubeconfig = operator_kubeconfig(&kube, &scratch.path);
    let lease = ["--lease-duration-seconds", "15", "--lease-renew-grace-seconds", "5"];
    let mut a = Operator::start(&kubeconfig, ns, "replica-a", &lease);
    let mut b = Operator::start(&kubeconfig, ns, "replica-b", &lease);
    a.wait_ready();
    b.wait_ready();
    let first = wait_for("exactly one leader", Duration::from_secs(40), POLL, || {
        leader_of(&[&a, &b])
    })
    .unwrap_or_else(|e| panic!("{e}"));

    token_secret(&kube, ns, "tok");
    apply_worker(&kube, &hatchet_worker(ns, "one", "tok", ""));
    let workers = kube.namespaced::<HatchetWorker>(ns);
    let ready = |hw: Option<&HatchetWorker>| hw.is_some_and(|hw| condition_true(hw, "Ready"));
    workers
        .wait("hw/one Ready", "one", SETTLE, ready)
        .unwrap_or_else(|e| panic!("{e}"));
    let (leader, follower) = if first == 0 { (&mut a, &mut b) } else { (&mut b, &mut a) };
    let leader_writes = leader.metric_sum("hatchet_operator_write_calls_total").unwrap();
    let follower_writes = follower.metric_sum("hatchet_operator_write_calls_total").unwrap();
    assert!(
        leader_writes >= 5.0,
        "the leader made the fleet: {leader_writes} writes"
    );
    assert_eq!(
        follower_writes,
        0.0,
        "the follower never writes:\n{}",
        follower.log_tail()
    );
    assert_eq!(
        follower.metric_sum("hatchet_operator_reconciles_total").unwrap(),
        0.0,
        "a follower only keeps its caches warm"
    );

    // Kill the leader without releasing its Lease: the follower takes over once it expires.
    let lease_name = format!("hatchet-operator-{ns}");
    leader.kill();
    let killed = Instant::now();
    // Read after the kill: the dead leader can no longer renew, and the follower cannot take
    // the Lease before it runs out, so this is the dead leader's last renewal.
    let held = lease_times(&kube, &lease_name);
    wait_for(
        "the follower to lead",
        Duration::from_secs(LEASE_SECONDS + 15),
        Duration::from_millis(250),
        || match follower.metric_sum("hatchet_operator_leader")? {
            1.0 => Ok(()),
            v => Err(format!("leader gauge {v}")),
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let handover = killed.elapsed();
    eprintln!("leader handover after SIGKILL: {handover:?}");
    // Judged on the Lease's own clock: the follower takes it once the dead leader's last renewal
    // has run out, never before (that would be two writers), and promptly after.
    let taken = lease_times(&kube, &lease_name);
    assert_ne!(taken.holder, held.holder, "the Lease changed hands");
    let expired_ms = held.renewed_ms + 1000 * LEASE_SECONDS as i64;
    let late_ms = taken.acquired_ms - expired_ms;
    assert!(
        late_ms >= -1000,
        "taken {late_ms} ms before the dead leader's Lease ran out"
    );
    assert!(
        late_ms <= 5000,
        "taken {late_ms} ms after the dead leader's Lease ran out"
    );

    // The new leader reconciles: a new HatchetWorker becomes a Ready fleet.
    apply_worker(&kube, &hatchet_worker(ns, "two", "tok", ""));
    workers
        .wait("hw/two Ready under the new leader", "two", SETTLE, ready)
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", follower.log_tail()));
    let writes = follower.metric_sum("hatchet_operator_write_calls_total").unwrap();
    assert!(writes >= 5.0, "the new leader writes: {writes}");
    follower.terminate();
}

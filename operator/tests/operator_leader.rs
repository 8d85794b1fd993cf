//! Two operator replicas with a short Lease: only the leader writes, and killing the leader
//! (SIGKILL, so the Lease is not released) hands over within the lease duration.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hatchet_e2e::Scratch;

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

fn lease_times(world: &World, name: &str) -> LeaseTimes {
    let lease = get_json(world, &["lease", name, "-n", "hatchet-system"]).unwrap_or_else(|e| panic!("{e}"));
    let ms = |field: &str| {
        let t = lease["spec"][field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} in {lease}"));
        t.parse::<k8s_openapi::jiff::Timestamp>()
            .unwrap_or_else(|e| panic!("{field} {t}: {e}"))
            .as_millisecond()
    };
    LeaseTimes {
        holder: lease["spec"]["holderIdentity"].as_str().unwrap_or_default().to_owned(),
        renewed_ms: ms("renewTime"),
        acquired_ms: ms("acquireTime"),
    }
}

#[test]
fn only_the_leader_writes_and_a_dead_leader_is_replaced_within_the_lease() {
    let world = world();
    install_crd(&world);
    let ns = Namespace::create(&world, "op-leader");
    let ns = ns.name.as_str();
    let scratch = Scratch::new(&format!("hatchet-operator-e2e-{ns}"));
    let kubeconfig = operator_kubeconfig(&world, &scratch.path);
    let lease = ["--lease-duration-seconds", "15", "--lease-renew-grace-seconds", "5"];
    let mut a = Operator::start(&kubeconfig, ns, "replica-a", &lease);
    let mut b = Operator::start(&kubeconfig, ns, "replica-b", &lease);
    a.wait_ready();
    b.wait_ready();
    let first = wait_for("exactly one leader", Duration::from_secs(40), POLL, || {
        leader_of(&[&a, &b])
    })
    .unwrap_or_else(|e| panic!("{e}"));

    token_secret(&world, ns, "tok");
    kubectl_stdin(&world, &["apply", "-f", "-"], &hatchet_worker(ns, "one", "tok", "")).expect("apply one");
    wait_for("hw/one Ready", SETTLE, POLL, || {
        let hw = get_json(&world, &["hw", "one", "-n", ns])?;
        match condition(&hw, "Ready") {
            Some(c) if c["status"] == "True" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
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
    let held = lease_times(&world, &lease_name);
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
    let taken = lease_times(&world, &lease_name);
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
    kubectl_stdin(&world, &["apply", "-f", "-"], &hatchet_worker(ns, "two", "tok", "")).expect("apply two");
    wait_for("hw/two Ready under the new leader", SETTLE, POLL, || {
        let hw = get_json(&world, &["hw", "two", "-n", ns])?;
        match condition(&hw, "Ready") {
            Some(c) if c["status"] == "True" => Ok(()),
            other => Err(format!("{other:?}; log:\n{}", follower.log_tail())),
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let writes = follower.metric_sum("hatchet_operator_write_calls_total").unwrap();
    assert!(writes >= 5.0, "the new leader writes: {writes}");
    follower.terminate();
}

//! Benchmark (a program, not a test): creates 1,000 HatchetWorkers (replicas 0, so the kwok
//! node's pod capacity is not the limit) against the local control plane, and prints the time
//! until the operator has reconciled all of them (status Ready at their generation), the
//! operator's peak RSS (VmHWM), and what a restart over the settled fleet costs.
//!
//! ```sh
//! tests/env/up
//! cargo build --release -p hatchet-operator
//! cargo run --release -p hatchet-operator --example bench_reconcile [-- COUNT]
//! ```
//! The operator binary is taken from the same target directory (override with
//! `HATCHET_OPERATOR_BIN`); it runs with the shipped RBAC, like the e2e tests.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;

fn operator_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("HATCHET_OPERATOR_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(|p| p.parent())
        .expect("target dir")
        .join("hatchet-operator")
}

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// HatchetWorkers whose Ready condition is True at their current generation.
fn reconciled(kube: &Kube, ns: &str) -> Result<usize, String> {
    let list = kube.namespaced::<HatchetWorker>(ns).list("")?;
    Ok(list
        .iter()
        .filter(|hw| {
            hw.status.as_ref().and_then(|s| s.observed_generation) == hw.metadata.generation
                && condition_true(hw, "Ready")
        })
        .count())
}

fn main() {
    let count: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let bin = operator_bin();
    assert!(
        bin.exists(),
        "{} missing: cargo build --release -p hatchet-operator",
        bin.display()
    );
    let world = world();
    let kube = kube(&world);
    install_crd(&kube);
    let ns = Namespace::create(&kube, "bench");
    let nsn = ns.name.clone();
    let dir = std::env::temp_dir().join(format!("hatchet-operator-bench-{nsn}"));
    let kubeconfig = operator_kubeconfig(&kube, &dir);
    token_secret(&kube, &nsn, "tok");

    let start_op = |identity: &str| {
        let mut op = Operator::start_bin(&bin, &kubeconfig, &nsn, identity, &["--log-level", "warn"]);
        op.wait_ready();
        op
    };
    let mut op = start_op("bench-a");
    let pid = op.child.id();
    println!(
        "operator {} (pid {pid}), {count} HatchetWorkers in {nsn}",
        bin.display()
    );

    let t0 = Instant::now();
    let names: Vec<String> = (0..count).map(|i| format!("w{i:04}")).collect();
    for name in &names {
        apply_worker(&kube, &hatchet_worker(&nsn, name, "tok", "  replicas: 0\n"));
    }
    let created = t0.elapsed();
    println!("created {count} HatchetWorkers in {created:.1?}");
    let mut last = 0;
    wait_for(
        "all HatchetWorkers reconciled",
        Duration::from_secs(900),
        Duration::from_secs(2),
        || {
            let n = reconciled(&kube, &nsn)?;
            if n != last {
                last = n;
            }
            if n >= count {
                Ok(())
            } else {
                Err(format!("{n}/{count}"))
            }
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let all = t0.elapsed();
    let writes = op.metric_sum("hatchet_operator_write_calls_total").unwrap_or(-1.0);
    let reconciles = op.metric_sum("hatchet_operator_reconciles_total").unwrap_or(-1.0);
    let hwm = vm_hwm_kib(pid);
    println!("all {count} reconciled {all:.1?} after the first create ({reconciles} reconciles, {writes} write calls)");
    println!("operator peak RSS (VmHWM): {:.1} MiB", hwm as f64 / 1024.0);
    op.terminate();

    let t1 = Instant::now();
    let op = start_op("bench-b");
    let ready = t1.elapsed();
    wait_for(
        "a reconcile of each after restart",
        Duration::from_secs(300),
        Duration::from_millis(500),
        || {
            let n = op.metric_sum("hatchet_operator_reconciles_total")?;
            if n >= count as f64 { Ok(()) } else { Err(format!("{n}")) }
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let resync = t1.elapsed();
    let writes = op.metric_sum("hatchet_operator_write_calls_total").unwrap_or(-1.0);
    println!(
        "restart: ready (caches synced) in {ready:.1?}, {count} reconciles in {resync:.1?}, {writes} write calls, peak RSS {:.1} MiB",
        vm_hwm_kib(op.child.id()) as f64 / 1024.0
    );
    drop(op);
    println!("cleaning up namespace {nsn}");
}

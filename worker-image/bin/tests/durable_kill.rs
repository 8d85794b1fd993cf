//! A durable run outlives a worker killed in the middle of its sleep (SIGKILL: no drain, no
//! eviction): the engine gives the run to another worker once the first one's heartbeats stop,
//! and the new worker replays the run's event log (the memoized first worker's name comes
//! back from the log) and sleeps only what is left.

#[allow(dead_code)] // shared with the other binary tests; this one uses part of it
mod support;

use std::time::{Duration, Instant};

use hatchet_e2e::World;
use hatchet_e2e::hatchet::{client_in, unique};
use hatchet_worker::TriggerOptions;
use serde_json::json;
use support::spawn_worker;
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_durable_sleep_outlives_a_killed_worker() {
    let world = World::load().unwrap();
    let ns = unique("durable-kill");
    let client = client_in(&world, &ns);
    let a = spawn_worker(&world, &ns, 4, &[]).await;
    let first = a.name.clone();
    let t0 = Instant::now();
    let run = client
        .trigger("fleet-durable-sleep", &json!({"ms": 20_000}), TriggerOptions::default())
        .await
        .unwrap();
    a.wait_running(1).await;
    // Past the memo and into the sleep, which the engine has logged.
    tokio::time::sleep(Duration::from_secs(3)).await;
    a.signal("KILL");
    let _ = a.wait_exit(Duration::from_secs(10)).await;

    let b = spawn_worker(&world, &ns, 4, &[]).await;
    let out = timeout(Duration::from_secs(240), client.wait_for_run(&run.id))
        .await
        .expect("the run ends within 240 s")
        .expect("the run completes");
    let r = &out["sleep"];
    assert_eq!(r["worker"], json!(b.name), "the second worker finished it: {out:?}");
    assert_eq!(
        r["first_worker"],
        json!(first),
        "the memo came back from the log: {out:?}"
    );
    assert!(r["invocation"].as_i64().unwrap_or(0) >= 2, "{out:?}");
    assert!(t0.elapsed() >= Duration::from_secs(20), "{:?}", t0.elapsed());
    let details = client.run_details(&run.id).await.unwrap();
    assert_eq!(details.tasks.len(), 1, "one task run: {details:?}");
    b.signal("TERM");
    let _ = b.wait_exit(Duration::from_secs(60)).await;
}

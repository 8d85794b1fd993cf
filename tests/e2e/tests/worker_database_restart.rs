//! A restart of the engine's database under load: while Postgres is away the engine answers
//! `Unauthenticated` (it cannot look the token up). The worker takes that for an outage of a
//! token it had been accepted with: it keeps running, keeps its finished results and sends them
//! once the engine can take them, so every run completes exactly once. In its own test binary
//! because it stops the shared database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hatchet_e2e::World;
use hatchet_e2e::hatchet::{DatabaseBack, client, env_ctl, start, unique};
use hatchet_worker::{Context, RunStatus, Task, TriggerOptions, Worker, Workflow};
use serde_json::{Value, json};

const RUNS: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_restart_loses_no_run_and_stops_no_worker() {
    let client = client(&World::load().expect("local world"));
    let wf = unique("dbrestart");
    let executions: Arc<Mutex<HashMap<u64, usize>>> = Arc::default();
    let seen = Arc::clone(&executions);
    let flow = Workflow::new(&wf).task(
        Task::new("work", move |i: Value, _c: Context| {
            let seen = Arc::clone(&seen);
            async move {
                let n = i["n"].as_u64().unwrap_or(u64::MAX);
                *seen.lock().unwrap().entry(n).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(1500)).await;
                Ok(json!({"n": n}))
            }
        })
        .retries(3),
    );
    let w = start(
        Worker::builder(client.clone(), unique("w"))
            .slots(8)
            .workflow(flow)
            .build()
            .unwrap(),
    )
    .await;

    let mut ids = Vec::new();
    for n in 0..RUNS {
        let run = client
            .trigger(&wf, &json!({"n": n}), TriggerOptions::default())
            .await
            .expect("trigger");
        ids.push(run.id);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let back = DatabaseBack;
    tokio::task::spawn_blocking(|| env_ctl("stop", "postgres"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(!w.is_finished(), "the worker stopped while the database was away");
    tokio::task::spawn_blocking(|| env_ctl("start", "postgres"))
        .await
        .unwrap();
    drop(back);

    for id in &ids {
        let out = tokio::time::timeout(Duration::from_secs(300), client.wait_for_run(id))
            .await
            .unwrap_or_else(|_| panic!("run {id} did not finish within 300 s"))
            .unwrap_or_else(|e| panic!("run {id} did not complete: {e}"));
        assert!(out.contains_key("work"), "{out:?}");
        let d = client.run_details(id).await.expect("run details");
        assert_eq!(d.status, RunStatus::Completed, "{id}: {d:?}");
    }
    let executions = executions.lock().unwrap().clone();
    for n in 0..RUNS as u64 {
        assert_eq!(
            executions.get(&n),
            Some(&1),
            "run {n} executed {:?} times",
            executions.get(&n)
        );
    }
    assert!(!w.is_finished(), "the worker stopped");
    w.stop().await;
}

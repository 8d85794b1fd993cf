//! The engine restarts mid-load; the worker reconnects on its own and no run is lost or
//! stuck. In its own test binary so the restart cannot disturb other tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hatchet_e2e::World;
use hatchet_e2e::hatchet::{EngineBack, client, engine_ctl, start, unique};
use hatchet_worker::{Context, Task, TriggerOptions, Worker, Workflow};
use serde_json::{Value, json};
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_survives_an_engine_restart_without_losing_runs() {
    let client = client(&World::load().expect("local world"));
    let wf = unique("restart");
    let started = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&started);
    let w = start(
        Worker::builder(client.clone(), unique("w"))
            .slots(5)
            .workflow(
                Workflow::new(&wf).task(Task::new("slow-echo", move |i: Value, _c: Context| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async move {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        Ok(i)
                    }
                })),
            )
            .build()
            .unwrap(),
    )
    .await;

    let mut runs = Vec::new();
    for i in 0..10 {
        runs.push((
            i,
            client
                .trigger(&wf, &json!({"i": i}), TriggerOptions::default())
                .await
                .unwrap(),
        ));
    }
    // Once the first five run (all slots busy), take the engine away under them.
    timeout(Duration::from_secs(60), async {
        while started.load(Ordering::SeqCst) < 5 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("five runs started");
    let _engine_back = EngineBack;
    tokio::task::spawn_blocking(|| engine_ctl("restart")).await.unwrap();

    for i in 10..15 {
        runs.push((
            i,
            client
                .trigger(&wf, &json!({"i": i}), TriggerOptions::default())
                .await
                .unwrap(),
        ));
    }
    let mut set = tokio::task::JoinSet::new();
    for (i, run) in runs {
        let c = client.clone();
        set.spawn(async move { (i, timeout(Duration::from_secs(180), c.wait_for_run(&run.id)).await) });
    }
    let mut done = 0;
    for (i, r) in set.join_all().await {
        let out = r
            .unwrap_or_else(|_| panic!("run {i} stuck"))
            .unwrap_or_else(|e| panic!("run {i} lost: {e}"));
        assert_eq!(out["slow-echo"], json!({"i": i}));
        done += 1;
    }
    assert_eq!(done, 15);
    assert!(!w.is_finished(), "the worker must not exit on an engine restart");
    let ready = timeout(Duration::from_secs(30), w.handle.wait_ready())
        .await
        .expect("worker ready again");
    assert!(ready, "the worker stopped instead of reconnecting");
    w.stop().await;
}

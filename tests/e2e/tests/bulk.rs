//! Bulk triggering against the real engine: many runs from a client in one call, and many
//! children from a task, each with its own input, awaited over the client's one subscription.

use std::collections::BTreeSet;
use std::time::Duration;

use hatchet_e2e::World;
use hatchet_e2e::hatchet::{client, start, unique};
use hatchet_worker::{Context, Task, TaskError, TriggerOptions, Worker, Workflow};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::timeout;

#[derive(Deserialize)]
struct N {
    n: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_and_a_task_start_many_runs_in_one_call_each() {
    let client = client(&World::load().expect("local world"));
    let square = unique("square");
    let parent = unique("fan-out");
    let child = square.clone();
    let worker = Worker::builder(client.clone(), unique("w"))
        .slots(20)
        .workflow(
            Workflow::new(&square).task(Task::new("square", |i: N, _c: Context| async move {
                Ok::<_, TaskError>(json!({ "square": i.n * i.n }))
            })),
        )
        .workflow(Workflow::new(&parent).task(Task::new("sum", move |i: N, c: Context| {
            let child = child.clone();
            async move {
                let items = (0..i.n).map(|n| (json!({ "n": n }), TriggerOptions::default().key(format!("n{n}"))));
                let outs = c
                    .run_many(&child, items.collect())
                    .await
                    .map_err(TaskError::retryable)?;
                let squares: Vec<Value> = outs.iter().map(|o| o["square"]["square"].clone()).collect();
                Ok(json!({ "squares": squares }))
            }
        })))
        .build()
        .unwrap();
    let running = start(worker).await;

    let runs = client
        .trigger_many(
            &square,
            (0..20).map(|n| (json!({ "n": n }), TriggerOptions::default().metadata("n", n))),
        )
        .await
        .unwrap();
    assert_eq!(runs.len(), 20);
    assert_eq!(
        runs.iter().map(|r| &r.id).collect::<BTreeSet<_>>().len(),
        20,
        "20 distinct runs"
    );
    for (n, run) in runs.iter().enumerate() {
        let out = timeout(Duration::from_secs(90), client.wait_for_run(&run.id))
            .await
            .expect("finishes")
            .expect("completes");
        let n = n as i64;
        assert_eq!(out["square"]["square"], json!(n * n), "run {n} got its own input");
    }

    let out = timeout(
        Duration::from_secs(90),
        client.run(&parent, &json!({"n": 5}), TriggerOptions::default()),
    )
    .await
    .expect("finishes")
    .expect("completes");
    assert_eq!(
        out["sum"]["squares"],
        json!([0, 1, 4, 9, 16]),
        "children's outputs in order"
    );
    running.stop().await;
}

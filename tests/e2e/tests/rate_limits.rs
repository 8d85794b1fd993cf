//! Static rate limits against the real engine: `put_rate_limit` creates the key a task
//! consumes, the engine then spaces out its runs; keys are listed, and deleted once no
//! registered task consumes them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use hatchet_e2e::World;
use hatchet_e2e::hatchet::{client, start, unique};
use hatchet_worker::{Context, RateLimit, RateLimitWindow, Task, TaskError, TriggerOptions, Worker, Workflow};
use serde_json::{Value, json};
use tokio::time::timeout;

const RUNS: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_static_limit_of_two_per_second_spaces_out_ten_runs() {
    let client = client(&World::load().expect("local world (run tests/env/up)"));
    let key = unique("limit");
    let rest = client.rest().unwrap();
    let limits = |search: String| {
        let rest = rest.clone();
        async move {
            let listed: Vec<_> = rest.rate_limits().list(Some(&search)).try_collect().await.unwrap();
            listed
        }
    };
    client.put_rate_limit(&key, 2, RateLimitWindow::Second).await.unwrap();
    let listed = limits(key.clone()).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!((listed[0].key.as_str(), listed[0].limit_value), (key.as_str(), 2));

    let starts = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&starts);
    let wf = unique("limited");
    let task = Task::new("limited", move |_: Value, _ctx: Context| {
        seen.lock().unwrap().push(Instant::now());
        async { Ok::<_, TaskError>(json!({})) }
    })
    .rate_limit(RateLimit::fixed(&key, 1));
    let worker = Worker::builder(client.clone(), unique("w"))
        .slots(RUNS)
        .workflow(Workflow::new(&wf).task(task))
        .build()
        .unwrap();
    let running = start(worker).await;

    let mut runs = Vec::new();
    for _ in 0..RUNS {
        runs.push(
            client
                .trigger(&wf, &json!({}), TriggerOptions::default())
                .await
                .unwrap(),
        );
    }
    for run in &runs {
        timeout(Duration::from_secs(60), client.wait_for_run(&run.id))
            .await
            .expect("the run finishes")
            .expect("the run completes");
    }
    running.stop().await;

    let mut starts = starts.lock().unwrap().clone();
    starts.sort();
    assert_eq!(starts.len(), RUNS, "each run started once");
    let spread = starts[RUNS - 1] - starts[0];
    // Two per second: the tenth cannot start before the fifth window; unlimited, all ten
    // start within a few milliseconds.
    assert!(spread >= Duration::from_secs(3), "10 runs started within {spread:?}");
    let most_in_a_second = starts
        .iter()
        .map(|t| {
            starts
                .iter()
                .filter(|u| **u >= *t && **u - *t < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap();
    assert!(
        most_in_a_second <= 4,
        "{most_in_a_second} runs started within one second"
    );

    // The workflow's task still consumes the key, so the engine keeps it.
    let refused = rest.rate_limits().delete(&key).await.unwrap_err().to_string();
    assert!(refused.contains("a registered workflow's task consumes"), "{refused}");
    let unused = unique("unused");
    client
        .put_rate_limit(&unused, 5, RateLimitWindow::Minute)
        .await
        .unwrap();
    assert_eq!(limits(unused.clone()).await.len(), 1);
    rest.rate_limits().delete(&unused).await.unwrap();
    assert!(limits(unused).await.is_empty(), "deleted");
}

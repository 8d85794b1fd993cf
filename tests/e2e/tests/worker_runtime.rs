//! hatchet-worker against the real engine: every run is triggered through the engine and
//! executed by an in-process worker; handlers report what they saw through channels.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use hatchet_e2e::World;
use hatchet_e2e::hatchet::{client, rest_json, serve, start, unique};
use hatchet_worker::{
    Client, Concurrency, ConcurrencyStrategy, Context, DesiredLabel, Error, Exit, RunStatus, Task, TaskError,
    TriggerOptions, Worker, Workflow,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::timeout;

const RUN_TIMEOUT: Duration = Duration::from_secs(90);

fn setup() -> Client {
    client(&World::load().expect("local world (run tests/env/up)"))
}

async fn run(client: &Client, wf: &str, input: Value) -> Result<BTreeMap<String, Value>, Error> {
    timeout(RUN_TIMEOUT, client.run(wf, &input, TriggerOptions::default()))
        .await
        .unwrap_or_else(|_| panic!("run of {wf} did not finish within {RUN_TIMEOUT:?}"))
}

fn run_failure(r: Result<BTreeMap<String, Value>, Error>) -> (String, String) {
    match r {
        Err(Error::RunFailed { status, error, .. }) => (status, error),
        other => panic!("expected the run to fail, got {other:?}"),
    }
}

#[derive(Deserialize)]
struct Numbers {
    n: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simple_task_round_trip_with_metadata() {
    let client = setup();
    let wf = unique("simple");
    let worker = Worker::builder(client.clone(), unique("w"))
        .slots(4)
        .workflow(
            Workflow::new(&wf).task(Task::new("double", |i: Numbers, ctx: Context| async move {
                Ok(json!({
                    "doubled": i.n * 2,
                    "meta": ctx.additional_metadata().get("origin").cloned(),
                    "retry": ctx.retry_count(),
                    "task": ctx.task_name(),
                }))
            })),
        )
        .build()
        .unwrap();
    let w = start(worker).await;
    let out = timeout(
        RUN_TIMEOUT,
        client.run(
            &wf,
            &json!({"n": 21}),
            TriggerOptions::default().metadata("origin", "e2e"),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        out["double"],
        json!({"doubled": 42, "meta": "e2e", "retry": 0, "task": "double"})
    );
    assert_eq!(w.stop().await, Exit::Drained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dag_passes_parent_outputs() {
    let client = setup();
    let wf = unique("dag");
    let flow = Workflow::new(&wf)
        .task(Task::new("first", |i: Numbers, _c: Context| async move {
            Ok(json!({"v": i.n + 1}))
        }))
        .task(
            Task::new("second", |i: Numbers, c: Context| async move {
                let first: Value = c.parent_output("first")?;
                Ok(json!({"v": first["v"].as_i64().unwrap() * 10 + i.n}))
            })
            .parents(["first"]),
        )
        .task(
            Task::new("join", |_i: Value, c: Context| async move {
                let a: Value = c.parent_output("first")?;
                let b: Value = c.parent_output("second")?;
                Ok(json!({"sum": a["v"].as_i64().unwrap() + b["v"].as_i64().unwrap()}))
            })
            .parents(["first", "second"]),
        );
    let w = start(
        Worker::builder(client.clone(), unique("w"))
            .slots(4)
            .workflow(flow)
            .build()
            .unwrap(),
    )
    .await;
    let out = run(&client, &wf, json!({"n": 1})).await.unwrap();
    assert_eq!(out["first"], json!({"v": 2}));
    assert_eq!(out["second"], json!({"v": 21}));
    assert_eq!(out["join"], json!({"sum": 23}));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn event_triggers_a_run_and_cron_is_registered() {
    let client = setup();
    let wf = unique("evt");
    let key = format!("{wf}:created");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let flow =
        Workflow::new(&wf)
            .on_event(&key)
            .on_cron("0 0 1 1 *")
            .task(Task::new("seen", move |i: Value, _c: Context| {
                let tx = tx.clone();
                async move {
                    tx.send(i).unwrap();
                    Ok(json!({}))
                }
            }));
    let w = serve(&client, flow).await;

    // The cron is visible through the REST API once the workflow is registered.
    let tenant = client.config().tenant_id.clone();
    let found = timeout(Duration::from_secs(60), async {
        loop {
            if let Ok(v) = rest_json(&client, &format!("/api/v1/tenants/{tenant}/workflows/crons?limit=500")).await {
                let rows = v["rows"].as_array().cloned().unwrap_or_default();
                if let Some(r) = rows.iter().find(|r| r["workflowName"] == wf.as_str()) {
                    return r.clone();
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await
    .expect("cron listed within 60s");
    assert_eq!(found["cron"], "0 0 1 1 *", "{found}");

    // An event pushed after registration starts a run with the event's payload as input.
    let payload = json!({"order": 7});
    let got = timeout(Duration::from_secs(60), async {
        loop {
            client.push_event(&key, &payload, None).await.unwrap();
            if let Ok(Some(v)) = timeout(Duration::from_secs(5), rx.recv()).await {
                return v;
            }
        }
    })
    .await
    .expect("event run within 60s");
    assert_eq!(got, payload);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retries_until_success_and_non_retryable_stops() {
    let client = setup();
    let flaky = unique("flaky");
    let fatal = unique("fatal");
    let flaky_calls = Arc::new(AtomicU32::new(0));
    let fatal_calls = Arc::new(AtomicU32::new(0));
    let fc = Arc::clone(&flaky_calls);
    let xc = Arc::clone(&fatal_calls);
    let w = start(
        Worker::builder(client.clone(), unique("w"))
            .workflow(
                Workflow::new(&flaky).task(
                    Task::new("try", move |_: Value, c: Context| {
                        let fc = Arc::clone(&fc);
                        async move {
                            fc.fetch_add(1, Ordering::SeqCst);
                            if c.retry_count() < 2 {
                                return Err(TaskError::retryable(format!("attempt {} fails", c.retry_count())));
                            }
                            Ok(json!({"succeeded_on_retry": c.retry_count()}))
                        }
                    })
                    .retries(3),
                ),
            )
            .workflow(
                Workflow::new(&fatal).task(
                    Task::new("never", move |_: Value, _c: Context| {
                        let xc = Arc::clone(&xc);
                        async move {
                            xc.fetch_add(1, Ordering::SeqCst);
                            Err::<Value, _>(TaskError::non_retryable("this cannot work"))
                        }
                    })
                    .retries(3),
                ),
            )
            .build()
            .unwrap(),
    )
    .await;
    let out = run(&client, &flaky, json!({})).await.unwrap();
    assert_eq!(out["try"], json!({"succeeded_on_retry": 2}));
    assert_eq!(flaky_calls.load(Ordering::SeqCst), 3);

    let (status, error) = run_failure(run(&client, &fatal, json!({})).await);
    assert_eq!(status, "FAILED");
    assert!(error.contains("this cannot work"), "{error}");
    // The engine would have retried within a few seconds if it were going to.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        fatal_calls.load(Ordering::SeqCst),
        1,
        "a non-retryable failure must not be retried"
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn timeout_and_cancel_stop_the_handler_and_free_the_slot() {
    let client = setup();
    let wf_timeout = unique("tmo");
    let wf_cancel = unique("cxl");
    let wf_quick = unique("quick");
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, &'static str)>();
    let waiting = move |tx: mpsc::UnboundedSender<(String, &'static str)>| {
        move |_: Value, c: Context| {
            let tx = tx.clone();
            async move {
                tx.send((c.workflow_run_id().to_owned(), "started")).unwrap();
                tokio::select! {
                    _ = c.cancelled() => { tx.send((c.workflow_run_id().to_owned(), "cancelled")).unwrap(); }
                    _ = tokio::time::sleep(Duration::from_secs(120)) => { tx.send((c.workflow_run_id().to_owned(), "finished")).unwrap(); }
                }
                Ok(json!({}))
            }
        }
    };
    let w = start(
        Worker::builder(client.clone(), unique("w"))
            .slots(1)
            .workflow(
                Workflow::new(&wf_timeout).task(Task::new("slow", waiting(tx.clone())).timeout(Duration::from_secs(3))),
            )
            .workflow(Workflow::new(&wf_cancel).task(Task::new("slow", waiting(tx.clone()))))
            .workflow(
                Workflow::new(&wf_quick).task(Task::new("quick", |_: Value, _c: Context| async { Ok(json!("ok")) })),
            )
            .build()
            .unwrap(),
    )
    .await;
    let mut expect = async |run: &str, what: &str| {
        let got = timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("handler report")
            .unwrap();
        assert_eq!((got.0.as_str(), got.1), (run, what));
    };

    // Timeout: the engine times the run out; the handler sees it as cancellation.
    let t = client
        .trigger(&wf_timeout, &json!({}), TriggerOptions::default())
        .await
        .unwrap();
    expect(&t.id, "started").await;
    expect(&t.id, "cancelled").await;
    let (status, error) = run_failure(timeout(RUN_TIMEOUT, client.wait_for_run(&t.id)).await.unwrap());
    eprintln!("timed-out run ended {status}: {error}");
    assert!(matches!(status.as_str(), "FAILED" | "CANCELLED"), "{status}");
    // The single slot is free again.
    assert_eq!(run(&client, &wf_quick, json!({})).await.unwrap()["quick"], "ok");

    // Cancellation through the API.
    let c = client
        .trigger(&wf_cancel, &json!({}), TriggerOptions::default())
        .await
        .unwrap();
    expect(&c.id, "started").await;
    client.cancel(&c.id).await.unwrap();
    expect(&c.id, "cancelled").await;
    let (status, _) = run_failure(timeout(RUN_TIMEOUT, client.wait_for_run(&c.id)).await.unwrap());
    assert_eq!(status, "CANCELLED");
    assert_eq!(client.run_details(&c.id).await.unwrap().status, RunStatus::Cancelled);
    assert_eq!(run(&client, &wf_quick, json!({})).await.unwrap()["quick"], "ok");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn panic_and_malformed_input_fail_only_their_run() {
    let client = setup();
    let typed = unique("typed");
    let boom = unique("boom");
    let w = start(
        Worker::builder(client.clone(), unique("w"))
            .slots(1)
            .workflow(Workflow::new(&typed).task(Task::new("typed", |i: Numbers, _c: Context| async move { Ok(i.n) })))
            .workflow(
                Workflow::new(&boom).task(Task::new("boom", |_: Value, _c: Context| async move {
                    if true {
                        panic!("kaboom in handler");
                    }
                    Ok(json!({}))
                })),
            )
            .build()
            .unwrap(),
    )
    .await;
    let (_, error) = run_failure(run(&client, &typed, json!({"n": "not a number"})).await);
    assert!(
        error.contains("does not match its type") && error.contains("invalid type"),
        "{error}"
    );
    let (_, error) = run_failure(run(&client, &boom, json!({})).await);
    assert!(
        error.contains("panicked") && error.contains("kaboom in handler"),
        "{error}"
    );
    // The worker still serves.
    assert_eq!(run(&client, &typed, json!({"n": 5})).await.unwrap()["typed"], 5);
    assert!(!w.is_finished());
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_slots_never_run_more_than_two_handlers() {
    let client = setup();
    let wf = unique("slots");
    let now = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let (n, m) = (Arc::clone(&now), Arc::clone(&max));
    let w = start(
        Worker::builder(client.clone(), unique("w"))
            .slots(2)
            .workflow(Workflow::new(&wf).task(Task::new("hold", move |_: Value, _c: Context| {
                let (n, m) = (Arc::clone(&n), Arc::clone(&m));
                async move {
                    let cur = n.fetch_add(1, Ordering::SeqCst) + 1;
                    m.fetch_max(cur, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(700)).await;
                    n.fetch_sub(1, Ordering::SeqCst);
                    Ok(json!({}))
                }
            })))
            .build()
            .unwrap(),
    )
    .await;
    let runs: Vec<_> = futures_join(&client, &wf, 8).await;
    for r in runs {
        r.unwrap();
    }
    assert_eq!(
        max.load(Ordering::SeqCst),
        2,
        "two slots should be used, and never more"
    );
    w.stop().await;
}

async fn futures_join(client: &Client, wf: &str, n: usize) -> Vec<Result<BTreeMap<String, Value>, Error>> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let (c, wf) = (client.clone(), wf.to_owned());
        set.spawn(async move { run(&c, &wf, json!({"i": i})).await });
    }
    set.join_all().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn child_runs_and_on_failure() {
    let client = setup();
    let child = unique("child");
    let parent = unique("parent");
    let failing = unique("failing");
    let child_name = child.clone();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let w = start(
        Worker::builder(client.clone(), unique("w"))
            .slots(4)
            .workflow(
                Workflow::new(&child).task(Task::new("square", |i: Numbers, c: Context| async move {
                    Ok(json!({"sq": i.n * i.n, "parent": c.parent_workflow_run_id().is_some()}))
                })),
            )
            .workflow(
                Workflow::new(&parent).task(Task::new("fan", move |i: Numbers, c: Context| {
                    let child = child_name.clone();
                    async move {
                        let mut total = 0;
                        for k in 1..=i.n {
                            let out = c
                                .run_workflow(&child, &json!({"n": k}), TriggerOptions::default())
                                .await?;
                            assert_eq!(out["square"]["parent"], true);
                            total += out["square"]["sq"].as_i64().unwrap();
                        }
                        Ok(json!({"total": total}))
                    }
                })),
            )
            .workflow(
                Workflow::new(&failing)
                    .task(Task::new("breaks", |_: Value, _c: Context| async {
                        Err::<Value, _>(TaskError::non_retryable("disk on fire"))
                    }))
                    .on_failure(Task::new("cleanup", move |_: Value, c: Context| {
                        let tx = tx.clone();
                        async move {
                            tx.send(c.task_errors().clone()).unwrap();
                            Ok(json!({"cleaned": true}))
                        }
                    })),
            )
            .build()
            .unwrap(),
    )
    .await;
    let out = run(&client, &parent, json!({"n": 3})).await.unwrap();
    assert_eq!(out["fan"]["total"], 14);

    let r = client
        .trigger(&failing, &json!({}), TriggerOptions::default())
        .await
        .unwrap();
    let errors = timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("on-failure ran")
        .unwrap();
    assert!(
        errors.get("breaks").is_some_and(|e| e.contains("disk on fire")),
        "{errors:?}"
    );
    // The on-failure task succeeding does not turn the run into a success.
    match timeout(RUN_TIMEOUT, client.wait_for_run(&r.id)).await.unwrap() {
        Err(hatchet_worker::Error::RunFailed { status, error, .. }) => {
            assert_eq!(status, "FAILED");
            assert!(error.contains("disk on fire"), "{error}");
        }
        other => panic!("the failing workflow must end FAILED: {other:?}"),
    }
    let details = client.run_details(&r.id).await.unwrap();
    assert!(
        details
            .tasks
            .iter()
            .any(|t| t.output.as_ref().is_some_and(|o| o["cleaned"] == true)),
        "the on-failure task's output is recorded: {details:?}"
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cel_concurrency_limit_is_respected() {
    let client = setup();
    let wf = unique("conc");
    let now = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let (n, m) = (Arc::clone(&now), Arc::clone(&max));
    let flow = Workflow::new(&wf)
        .concurrency(
            Concurrency::new("input.group")
                .max_runs(1)
                .strategy(ConcurrencyStrategy::GroupRoundRobin),
        )
        .task(Task::new("one-at-a-time", move |_: Value, _c: Context| {
            let (n, m) = (Arc::clone(&n), Arc::clone(&m));
            async move {
                let cur = n.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(cur, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(500)).await;
                n.fetch_sub(1, Ordering::SeqCst);
                Ok(json!({}))
            }
        }));
    let w = start(
        Worker::builder(client.clone(), unique("w"))
            .slots(10)
            .workflow(flow)
            .build()
            .unwrap(),
    )
    .await;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (c, wf) = (client.clone(), wf.clone());
        set.spawn(async move { run(&c, &wf, json!({"group": "same"})).await });
    }
    for r in set.join_all().await {
        r.unwrap();
    }
    assert_eq!(max.load(Ordering::SeqCst), 1, "runs of one group must not overlap");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn desired_labels_route_to_the_matching_worker() {
    let client = setup();
    let wf = unique("labels");
    let mk = |who: &'static str| {
        Workflow::new(&wf).task(
            Task::new("where", move |_: Value, _c: Context| async move { Ok(json!(who)) })
                .desired_label("model", DesiredLabel::required("b")),
        )
    };
    let a = start(
        Worker::builder(client.clone(), unique("wa"))
            .label("model", "a")
            .workflow(mk("a"))
            .build()
            .unwrap(),
    )
    .await;
    let b = start(
        Worker::builder(client.clone(), unique("wb"))
            .label("model", "b")
            .workflow(mk("b"))
            .build()
            .unwrap(),
    )
    .await;
    for r in futures_join(&client, &wf, 6).await {
        assert_eq!(
            r.unwrap()["where"],
            "b",
            "every run must go to the worker labelled model=b"
        );
    }
    a.stop().await;
    b.stop().await;
}

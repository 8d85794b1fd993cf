//! Durable tasks against the real engine: a 30 s durable sleep survives its worker stopping
//! in the middle (the drain evicts it, another worker replays its log: the memoized step and
//! the code before the sleep run again from the log, the code after it once); a durable wait
//! receives the event's payload; durable children return their results; an eviction policy's
//! TTL frees the slot and the engine restores the run when its sleep is over; and code that
//! changed between invocations fails with the engine's non-determinism error.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hatchet_e2e::World;
use hatchet_e2e::hatchet::{client, serve, start, unique};
use hatchet_worker::{
    AnyOf, Client, Condition, Context, DurableContext, Error, EvictionPolicy, Exit, RunStatus, Task, TaskError,
    TriggerOptions, Worker, Workflow,
};
use serde_json::{Value, json};

/// How often each part of a durable handler ran.
#[derive(Clone, Default)]
struct Counts {
    before: Arc<AtomicUsize>,
    step: Arc<AtomicUsize>,
    after: Arc<AtomicUsize>,
}

impl Counts {
    fn get(c: &AtomicUsize) -> usize {
        c.load(Ordering::SeqCst)
    }
}

fn durable_worker(client: &Client, flow: Workflow) -> Worker {
    Worker::builder(client.clone(), unique("dw"))
        .workflow(flow)
        .build()
        .unwrap_or_else(|e| panic!("worker definition: {e}"))
}

/// Waits until `f` holds, for up to `within`.
async fn until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < within, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How run `id` ended, within `within` (a run that hangs fails the test).
async fn ended(client: &Client, id: &str, within: Duration) -> Result<BTreeMap<String, Value>, Error> {
    tokio::time::timeout(within, client.wait_for_run(id))
        .await
        .unwrap_or_else(|_| panic!("run {id} ends within {within:?}"))
}

/// Pushes event `key` with `payload` every 3 s until run `id` ends (the engine matches only
/// events pushed after it created the wait), for up to 90 s; how it ended.
async fn pushing_until_ended(
    client: &Client,
    id: &str,
    key: &str,
    payload: Value,
) -> Result<BTreeMap<String, Value>, Error> {
    let pushing = async {
        loop {
            client.push_event(key, &payload, None).await.expect("push");
            if let Ok(r) = tokio::time::timeout(Duration::from_secs(3), client.wait_for_run(id)).await {
                return r;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(90), pushing)
        .await
        .unwrap_or_else(|_| panic!("run {id} ends within 90 s of events"))
}

/// A durable task: a memoized step, then a sleep of `sleep`, counting each part.
fn sleeper(counts: &Counts, sleep: Duration) -> Task {
    let counts = counts.clone();
    Task::durable("sleeper", move |_: Value, ctx: DurableContext| {
        let counts = counts.clone();
        async move {
            let token: String = ctx
                .memo("token", || async {
                    counts.step.fetch_add(1, Ordering::SeqCst);
                    Ok(format!("token-{}", ctx.task_run_id()))
                })
                .await?;
            counts.before.fetch_add(1, Ordering::SeqCst);
            ctx.sleep_for(sleep).await.map_err(TaskError::retryable)?;
            counts.after.fetch_add(1, Ordering::SeqCst);
            Ok(json!({"invocation": ctx.invocation_count(), "token": token}))
        }
    })
    .timeout(Duration::from_secs(300))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_durable_sleep_survives_its_worker_stopping_and_completes_once() {
    let client = client(&World::load().expect("local world"));
    let wf = unique("durable-restart");
    let counts = Counts::default();
    let flow = || Workflow::new(&wf).task(sleeper(&counts, Duration::from_secs(30)));

    let first = start(durable_worker(&client, flow())).await;
    let t0 = Instant::now();
    let run = client
        .trigger(&wf, &json!({}), TriggerOptions::default())
        .await
        .expect("trigger");
    until("the first worker reaches the sleep", Duration::from_secs(30), || {
        Counts::get(&counts.before) == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        first.handle.durable_slots_used(),
        1,
        "the sleeping run holds a durable slot"
    );

    let stopping = Instant::now();
    assert_eq!(first.stop().await, Exit::Drained);
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "the drain evicts the sleeping run instead of waiting for it: {:?}",
        stopping.elapsed()
    );
    let details = client.run_details(&run.id).await.expect("run details");
    assert!(!details.done, "the run is not over: {details:?}");
    assert!(
        details.tasks.iter().all(|t| t.evicted),
        "the engine holds the run evicted: {details:?}"
    );
    assert_eq!(Counts::get(&counts.after), 0, "the code after the sleep has not run");

    let second = start(durable_worker(&client, flow())).await;
    let out = ended(&client, &run.id, Duration::from_secs(120))
        .await
        .expect("the run completes");
    let elapsed = t0.elapsed();
    let result = &out["sleeper"];
    assert!(
        result["invocation"].as_i64().unwrap_or(0) >= 2,
        "the run started again: {out:?}"
    );
    assert_eq!(
        result["token"],
        json!(format!("token-{}", details.tasks[0].external_id))
    );
    assert_eq!(
        Counts::get(&counts.step),
        1,
        "the memoized step ran once; the replay read its result"
    );
    assert_eq!(Counts::get(&counts.before), 2, "the code before the sleep replayed");
    assert_eq!(Counts::get(&counts.after), 1, "the code after the sleep ran once");
    assert!(elapsed >= Duration::from_secs(30), "slept its 30 s: {elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(60),
        "the replay slept only what was left: {elapsed:?}"
    );
    let details = client.run_details(&run.id).await.expect("run details");
    assert_eq!(details.tasks.len(), 1);
    assert_eq!(details.tasks[0].status, RunStatus::Completed);
    assert!(!details.evicted);
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_durable_wait_receives_the_event_that_ends_it() {
    let client = client(&World::load().expect("local world"));
    let wf = unique("durable-event");
    let approved = format!("{wf}:approved");
    let waiting = Arc::new(AtomicUsize::new(0));
    let key = approved.clone();
    let w = Arc::clone(&waiting);
    let flow = Workflow::new(&wf).task(
        Task::durable("approval", move |_: Value, ctx: DurableContext| {
            let (key, w) = (key.clone(), Arc::clone(&w));
            async move {
                w.fetch_add(1, Ordering::SeqCst);
                let approval = ctx
                    .wait_for_event(&key, Some("input.amount > 10"))
                    .await
                    .map_err(TaskError::retryable)?;
                let either = ctx
                    .wait_for([AnyOf::new([
                        Condition::sleep(Duration::from_secs(120)),
                        Condition::event(key.clone()).data_key("second"),
                    ])])
                    .await
                    .map_err(TaskError::retryable)?;
                Ok(json!({
                    "approval": approval,
                    "second": either.get("second"),
                    "slept": either.fired("sleep:2m"),
                }))
            }
        })
        .timeout(Duration::from_secs(300)),
    );
    let worker = serve(&client, flow).await;
    let run = client
        .trigger(&wf, &json!({}), TriggerOptions::default())
        .await
        .expect("trigger");
    until("the task waits", Duration::from_secs(30), || {
        waiting.load(Ordering::SeqCst) == 1
    })
    .await;
    // An event its expression refuses first, then ones it accepts.
    client
        .push_event(&approved, &json!({"amount": 3}), None)
        .await
        .expect("push");
    let out = pushing_until_ended(&client, &run.id, &approved, json!({"amount": 42}))
        .await
        .expect("the run completes");
    let result = &out["approval"];
    assert_eq!(
        result["approval"],
        json!({"amount": 42}),
        "the matching event's payload: {out:?}"
    );
    assert_eq!(result["second"], json!({"amount": 42}), "{out:?}");
    assert_eq!(
        result["slept"],
        json!(false),
        "the event ended the or-group, not the sleep: {out:?}"
    );
    assert_eq!(waiting.load(Ordering::SeqCst), 1, "one invocation did it all");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn durable_children_return_their_results() {
    let client = client(&World::load().expect("local world"));
    let parent = unique("durable-parent");
    let child = unique("durable-child");
    let child_runs = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&child_runs);
    let child_flow = Workflow::new(&child).task(Task::new("double", move |input: Value, _: Context| {
        let c = Arc::clone(&c);
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            let n = input["n"].as_i64().unwrap_or(0);
            if n < 0 {
                return Err(TaskError::non_retryable("negative"));
            }
            Ok(json!({"doubled": n * 2}))
        }
    }));
    let name = child.clone();
    let parent_flow = Workflow::new(&parent).task(
        Task::durable("fan-out", move |_: Value, ctx: DurableContext| {
            let name = name.clone();
            async move {
                let one = ctx
                    .run_child(&name, &json!({"n": 1}), TriggerOptions::default())
                    .await?;
                let many = ctx
                    .run_children(
                        &name,
                        (2..5).map(|n| (json!({"n": n}), TriggerOptions::default())).collect(),
                    )
                    .await?;
                let failed = ctx.run_child(&name, &json!({"n": -1}), TriggerOptions::default()).await;
                Ok(json!({
                    "one": one,
                    "many": many,
                    "failed": matches!(failed, Err(Error::RunFailed { .. })),
                    "why": failed.err().map(|e| e.to_string()),
                }))
            }
        })
        .timeout(Duration::from_secs(120)),
    );
    let worker = start(
        Worker::builder(client.clone(), unique("dw"))
            .workflow(parent_flow)
            .workflow(child_flow)
            .build()
            .expect("worker"),
    )
    .await;
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        client.run(&parent, &json!({}), TriggerOptions::default()),
    )
    .await
    .expect("the run ends within 90 s")
    .expect("the run completes");
    let r = &out["fan-out"];
    eprintln!("DURABLE CHILD RESULTS {r}");
    let doubled = |v: &Value| {
        v.get("doubled")
            .or_else(|| v.get("double").and_then(|d| d.get("doubled")))
            .cloned()
    };
    assert_eq!(doubled(&r["one"]), Some(json!(2)), "{out:?}");
    let many: Vec<_> = r["many"]
        .as_array()
        .expect("three results")
        .iter()
        .map(doubled)
        .collect();
    assert_eq!(
        many,
        vec![Some(json!(4)), Some(json!(6)), Some(json!(8))],
        "in order: {out:?}"
    );
    assert_eq!(r["failed"], json!(true), "a failed child fails the call: {out:?}");
    assert!(r["why"].as_str().unwrap_or_default().contains("negative"), "{out:?}");
    assert_eq!(child_runs.load(Ordering::SeqCst), 5, "each child ran once");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_eviction_ttl_frees_the_slot_until_the_engine_restores_the_run() {
    let client = client(&World::load().expect("local world"));
    let wf = unique("durable-ttl");
    let counts = Counts::default();
    let flow = Workflow::new(&wf).task(
        sleeper(&counts, Duration::from_secs(12)).eviction(EvictionPolicy::default().ttl(Duration::from_secs(2))),
    );
    let worker = start(durable_worker(&client, flow)).await;
    let t0 = Instant::now();
    let run = client
        .trigger(&wf, &json!({}), TriggerOptions::default())
        .await
        .expect("trigger");
    until("the run sleeps", Duration::from_secs(30), || {
        Counts::get(&counts.before) == 1
    })
    .await;
    let handle = worker.handle.clone();
    until("the eviction frees the durable slot", Duration::from_secs(10), || {
        handle.durable_slots_used() == 0
    })
    .await;
    let out = ended(&client, &run.id, Duration::from_secs(90))
        .await
        .expect("the run completes");
    assert_eq!(out["sleeper"]["invocation"], json!(2), "restored once: {out:?}");
    assert!(t0.elapsed() >= Duration::from_secs(12), "{:?}", t0.elapsed());
    assert_eq!(Counts::get(&counts.step), 1);
    assert_eq!(Counts::get(&counts.before), 2);
    assert_eq!(Counts::get(&counts.after), 1);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn code_that_changed_between_invocations_fails_with_non_determinism() {
    let client = client(&World::load().expect("local world"));
    let wf = unique("durable-nde");
    let flow = Workflow::new(&wf).task(
        Task::durable("drifting", |_: Value, ctx: DurableContext| async move {
            // A replay asks for a different sleep at the same place in the log.
            let sleep = Duration::from_secs(4 + u64::try_from(ctx.invocation_count()).unwrap_or(0));
            ctx.sleep_for(sleep).await?;
            Ok(json!({}))
        })
        .eviction(EvictionPolicy::default().ttl(Duration::from_secs(1)))
        .timeout(Duration::from_secs(120)),
    );
    let worker = serve(&client, flow).await;
    let run = client
        .trigger(&wf, &json!({}), TriggerOptions::default())
        .await
        .expect("trigger");
    let outcome = ended(&client, &run.id, Duration::from_secs(90)).await;
    let Err(Error::RunFailed { error, .. }) = outcome else {
        panic!("the run must fail: {outcome:?}");
    };
    assert!(error.contains("non-determinism"), "{error}");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_evicted_run_restored_by_hand_starts_again_before_its_wait_is_over() {
    let client = client(&World::load().expect("local world"));
    let wf = unique("durable-restore");
    let go = format!("{wf}:go");
    let starts = Arc::new(AtomicUsize::new(0));
    let (key, s) = (go.clone(), Arc::clone(&starts));
    let flow = Workflow::new(&wf).task(
        Task::durable("waits", move |_: Value, ctx: DurableContext| {
            let (key, s) = (key.clone(), Arc::clone(&s));
            async move {
                s.fetch_add(1, Ordering::SeqCst);
                let payload = ctx.wait_for_event(&key, None).await.map_err(TaskError::retryable)?;
                Ok(json!({"payload": payload, "invocation": ctx.invocation_count()}))
            }
        })
        .eviction(EvictionPolicy::default().ttl(Duration::from_secs(2)))
        .timeout(Duration::from_secs(300)),
    );
    let worker = serve(&client, flow).await;
    let run = client
        .trigger(&wf, &json!({}), TriggerOptions::default())
        .await
        .expect("trigger");
    let evicted = async {
        loop {
            let d = client.run_details(&run.id).await.expect("details");
            if let Some(t) = d.tasks.first().filter(|t| t.evicted) {
                return t.external_id.clone();
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    let task_run = tokio::time::timeout(Duration::from_secs(30), evicted)
        .await
        .expect("the TTL evicts the waiting run");
    assert_eq!(starts.load(Ordering::SeqCst), 1);
    assert!(
        client.restore_task(&task_run).await.expect("restore"),
        "the engine requeued it"
    );
    until("the restored run starts again", Duration::from_secs(30), || {
        starts.load(Ordering::SeqCst) == 2
    })
    .await;
    let out = pushing_until_ended(&client, &run.id, &go, json!({"ok": true}))
        .await
        .expect("the run completes");
    assert_eq!(out["waits"]["payload"], json!({"ok": true}), "{out:?}");
    assert!(out["waits"]["invocation"].as_i64().unwrap_or(0) >= 2, "{out:?}");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_durable_wait_with_a_lookback_sees_an_event_pushed_before_it() {
    let client = client(&World::load().expect("local world"));
    let wf = unique("durable-lookback");
    let key = format!("{wf}:paid");
    let scope = unique("order");
    client
        .push_event_with(
            &key,
            &json!({"amount": 12}),
            hatchet_worker::EventOptions::default().scope(scope.clone()),
        )
        .await
        .expect("push before the run exists");
    let (k, sc) = (key.clone(), scope.clone());
    let flow = Workflow::new(&wf).task(
        Task::durable("paid", move |_: Value, ctx: DurableContext| {
            let (k, sc) = (k.clone(), sc.clone());
            async move {
                let r = ctx
                    .wait_for([Condition::event(k.clone()).scope(sc).lookback(Duration::from_secs(300))])
                    .await
                    .map_err(TaskError::retryable)?;
                Ok(json!({"payload": r.get(&k)}))
            }
        })
        .timeout(Duration::from_secs(120)),
    );
    let worker = serve(&client, flow).await;
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        client.run(&wf, &json!({}), TriggerOptions::default()),
    )
    .await
    .expect("the earlier event ends the wait: no event is pushed after it")
    .expect("the run completes");
    assert_eq!(out["paid"]["payload"], json!({"amount": 12}), "{out:?}");
    worker.stop().await;
}

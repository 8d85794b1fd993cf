//! What a workflow declares beyond its tasks, against the real engine: task defaults (retries
//! and a timeout the tasks inherit), a task's slot cost, idempotency (a second trigger with the same key is refused
//! naming the first run, one or in bulk), sticky children (they run on the worker that spawned
//! them, though another has free slots), and event filters (only scoped events the filter
//! passes start runs, which see the filter's payload).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hatchet_e2e::World;
use hatchet_e2e::hatchet::{client, rest_json, serve, start, unique};
use hatchet_worker::{
    Context, Error, EventFilter, EventOptions, Idempotency, Sticky, Task, TaskDefaults, TaskError, TriggerOptions,
    Worker, Workflow,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_inherit_the_workflows_retries_and_timeout() {
    let client = client(&World::load().expect("local world"));
    let flaky = unique("defaults-retries");
    let slow = unique("defaults-timeout");
    let retries = Workflow::new(&flaky)
        .task_defaults(TaskDefaults::default().retries(2))
        .task(Task::new("flaky", |_: Value, ctx: Context| async move {
            match ctx.retry_count() {
                n @ 0..2 => Err(TaskError::retryable(format!("attempt {n} fails"))),
                n => Ok(json!({ "attempt": n })),
            }
        }));
    let timeouts = Workflow::new(&slow)
        .task_defaults(TaskDefaults::default().timeout(Duration::from_secs(2)))
        .task(Task::new("sleeps", |_: Value, ctx: Context| async move {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(60)) => Ok(json!({"slept": true})),
                () = ctx.cancelled() => Err(TaskError::retryable("cancelled")),
            }
        }));
    let worker = Worker::builder(client.clone(), unique("w"))
        .workflow(retries)
        .workflow(timeouts)
        .build()
        .unwrap();
    let w = start(worker).await;

    let out = client
        .run(&flaky, &json!({}), TriggerOptions::default())
        .await
        .expect("third attempt completes");
    assert_eq!(
        out["flaky"],
        json!({"attempt": 2}),
        "two retries from the workflow's defaults"
    );

    let began = Instant::now();
    match client.run(&slow, &json!({}), TriggerOptions::default()).await {
        Err(Error::RunFailed { status, .. }) => assert_eq!(status, "FAILED"),
        other => panic!("the 2 s default timeout should fail the run: {other:?}"),
    }
    assert!(
        began.elapsed() < Duration::from_secs(30),
        "timed out after {:?}, not at the default 2 s",
        began.elapsed()
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_costing_two_slots_runs_two_at_a_time_on_four_slots() {
    let client = client(&World::load().expect("local world"));
    let wf = unique("slot-cost");
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (r, p) = (Arc::clone(&running), Arc::clone(&peak));
    let flow = Workflow::new(&wf).task(
        Task::new("heavy", move |_: Value, _: Context| {
            let (running, peak) = (Arc::clone(&r), Arc::clone(&p));
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(700)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(json!({}))
            }
        })
        .slot_cost(2),
    );
    let worker = Worker::builder(client.clone(), unique("w"))
        .slots(4)
        .workflow(flow)
        .build()
        .unwrap();
    let w = start(worker).await;

    let runs = client
        .trigger_many(&wf, (0..6).map(|i| (json!({ "i": i }), TriggerOptions::default())))
        .await
        .unwrap();
    for run in &runs {
        client.wait_for_run(&run.id).await.expect("every run completes");
    }
    assert_eq!(peak.load(Ordering::SeqCst), 2, "four slots hold two runs costing two");

    // The engine holds the cost too, so it assigns such a run only where two slots are free.
    let tenant = World::load().unwrap().tenant_id().unwrap().to_owned();
    let found = rest_json(
        &client,
        &format!("/api/v1/tenants/{tenant}/workflows?name={wf}&limit=1"),
    )
    .await
    .unwrap();
    let id = found["rows"][0]["metadata"]["id"]
        .as_str()
        .expect("the workflow is listed")
        .to_owned();
    let version = rest_json(&client, &format!("/api/v1/workflows/{id}/versions"))
        .await
        .unwrap();
    assert_eq!(
        version["workflowConfig"]["Tasks"][0]["slotRequests"]["default"], 2,
        "the engine's copy of the definition: {version}"
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repeated_idempotency_key_is_refused_naming_the_run_that_holds_it() {
    let client = client(&World::load().expect("local world"));
    let wf = unique("idempotent");
    // Keys are tenant-wide, whatever the workflow: this one's carry its name.
    let flow = Workflow::new(&wf)
        .idempotency(Idempotency::ttl(
            format!("'{wf}:' + string(input.order)"),
            Duration::from_secs(300),
        ))
        .task(Task::new("charge", |i: Value, _: Context| async move { Ok(i) }));
    let w = serve(&client, flow).await;

    let first = client
        .trigger(&wf, &json!({"order": 1}), TriggerOptions::default())
        .await
        .expect("first order 1");
    match client
        .trigger(&wf, &json!({"order": 1}), TriggerOptions::default())
        .await
    {
        Err(Error::Duplicate {
            existing_run_ids,
            started_run_ids,
        }) => {
            assert_eq!(existing_run_ids, std::slice::from_ref(&first.id));
            assert!(started_run_ids.is_empty());
        }
        other => panic!("a second order 1 should be refused: {other:?}"),
    }
    let other = client
        .trigger(&wf, &json!({"order": 2}), TriggerOptions::default())
        .await
        .expect("order 2");
    assert_ne!(other.id, first.id);

    let bulk = vec![
        (json!({"order": 1}), TriggerOptions::default()),
        (json!({"order": 3}), TriggerOptions::default()),
    ];
    let started = match client.trigger_many(&wf, bulk).await {
        Err(Error::Duplicate {
            existing_run_ids,
            started_run_ids,
        }) => {
            assert_eq!(existing_run_ids, std::slice::from_ref(&first.id));
            assert_eq!(started_run_ids.len(), 1, "order 3 started: {started_run_ids:?}");
            started_run_ids[0].clone()
        }
        other => panic!("order 1 in a bulk trigger should be refused: {other:?}"),
    };
    let out = client.wait_for_run(&started).await.expect("order 3 runs");
    assert_eq!(out["charge"], json!({"order": 3}));
    for id in [&first.id, &other.id] {
        client
            .wait_for_run(id)
            .await
            .expect("the runs that took their keys complete");
    }
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sticky_children_run_on_the_worker_that_spawned_them() {
    let client = client(&World::load().expect("local world"));
    let parent = unique("sticky-parent");
    let child = unique("sticky-child");
    let children =
        Workflow::new(&child)
            .sticky(Sticky::Hard)
            .task(Task::new("where", |_: Value, ctx: Context| async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok(json!({ "worker": ctx.worker_id() }))
            }));
    let child_name = child.clone();
    let spawner = Workflow::new(&parent).task(
        Task::new("spawn", move |_: Value, ctx: Context| {
            let child = child_name.clone();
            async move {
                let runs: Vec<(Value, TriggerOptions)> = (0..6)
                    .map(|i| (json!({ "i": i }), TriggerOptions::default().sticky()))
                    .collect();
                let outs = ctx.run_many(&child, runs).await?;
                let workers: BTreeSet<String> = outs
                    .iter()
                    .map(|o| o["where"]["worker"].as_str().unwrap_or_default().to_owned())
                    .collect();
                Ok(json!({ "me": ctx.worker_id(), "children_on": workers }))
            }
        })
        .timeout(Duration::from_secs(120)),
    );
    // The spawning worker has one slot left for children; the other has twenty free.
    let home = Worker::builder(client.clone(), unique("home"))
        .slots(2)
        .workflow(spawner)
        .workflow(children.clone())
        .build()
        .unwrap();
    let home = start(home).await;
    let roomy = Worker::builder(client.clone(), unique("roomy"))
        .slots(20)
        .workflow(children)
        .build()
        .unwrap();
    let roomy = start(roomy).await;

    let out = client
        .run(&parent, &json!({}), TriggerOptions::default())
        .await
        .expect("parent completes");
    let me = out["spawn"]["me"].clone();
    assert_eq!(
        out["spawn"]["children_on"],
        json!([me]),
        "every child on the spawning worker: {out:?}"
    );

    match client
        .trigger(&child, &json!({}), TriggerOptions::default().sticky())
        .await
    {
        Err(Error::Definition(why)) => assert!(why.contains("child runs"), "{why}"),
        other => panic!("a top-level sticky run has no worker to stick to: {other:?}"),
    }
    roomy.stop().await;
    home.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn event_filters_start_runs_for_scoped_events_they_pass() {
    let client = client(&World::load().expect("local world"));
    let wf = unique("filtered");
    let key = format!("{wf}:order");
    let scope = format!("{wf}-shop");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let flow = Workflow::new(&wf)
        .on_event(&key)
        .event_filter(
            EventFilter::new(&scope, "input.amount > 10 && payload.tier == 'gold'").payload(json!({"tier": "gold"})),
        )
        .task(Task::new("seen", move |i: Value, ctx: Context| {
            let tx = tx.clone();
            async move {
                tx.send((i, ctx.filter_payload().cloned())).unwrap();
                Ok(json!({}))
            }
        }));
    let w = serve(&client, flow).await;
    let push = |amount: i64, n: i64, scope: Option<&str>| {
        let (client, key) = (client.clone(), key.clone());
        let options = match scope {
            Some(s) => EventOptions::default().scope(s),
            None => EventOptions::default(),
        };
        async move {
            client
                .push_event_with(&key, &json!({ "amount": amount, "n": n }), options)
                .await
                .unwrap()
        }
    };

    // The engine starts runs for a key only once it has registered the trigger: push until
    // one lands.
    let (first, filter_payload) = timeout(Duration::from_secs(60), async {
        for n in 0.. {
            push(50, n, Some(&scope)).await;
            if let Ok(Some(seen)) = timeout(Duration::from_secs(5), rx.recv()).await {
                return seen;
            }
        }
        unreachable!("the loop returns")
    })
    .await
    .expect("a scoped event the filter passes starts a run");
    assert_eq!(first["amount"], 50);
    assert_eq!(
        filter_payload,
        Some(json!({"tier": "gold"})),
        "the run sees the filter's payload"
    );

    push(5, -1, Some(&scope)).await;
    push(50, -2, None).await;
    push(50, -3, Some("another-scope")).await;
    push(60, 1000, Some(&scope)).await;
    let mut seen = Vec::new();
    let last = timeout(Duration::from_secs(60), async {
        loop {
            let (input, _) = rx.recv().await.unwrap();
            if input["n"] == 1000 {
                return;
            }
            seen.push(input);
        }
    })
    .await;
    assert!(last.is_ok(), "the last passing event starts a run");
    tokio::time::sleep(Duration::from_secs(3)).await;
    while let Ok((input, _)) = rx.try_recv() {
        seen.push(input);
    }
    assert!(
        seen.iter().all(|i| i["n"].as_i64().unwrap_or(-1) >= 0),
        "a small amount, an unscoped event and another scope start nothing: {seen:?}"
    );
    w.stop().await;
}

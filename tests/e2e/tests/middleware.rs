//! Middleware and the lifespan value on the real engine: hooks run around every task in the
//! order added, one can refuse a run (it fails with the hook's error, the handler never runs)
//! or change a result, and every task reads the one value the worker shares.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use hatchet_e2e::World;
use hatchet_e2e::hatchet::{client, start, unique};
use hatchet_worker::{Context, Error, Next, Task, TaskError, TriggerOptions, Worker, Workflow};
use serde_json::{Value, json};

/// What the worker shares with its tasks: a stand-in for a pool, counting its users.
struct Pool {
    checkouts: AtomicU32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn middleware_wraps_every_task_and_the_lifespan_value_is_shared() {
    let client = client(&World::load().expect("local world"));
    let wf = unique("middleware");
    let trail = Arc::new(Mutex::new(Vec::<String>::new()));
    let ran = Arc::new(AtomicU32::new(0));

    let handler_trail = Arc::clone(&trail);
    let handler_ran = Arc::clone(&ran);
    let flow = Workflow::new(&wf).task(Task::new("work", move |i: Value, ctx: Context| {
        let (trail, ran) = (Arc::clone(&handler_trail), Arc::clone(&handler_ran));
        async move {
            ran.fetch_add(1, Ordering::SeqCst);
            let pool = ctx.lifespan::<Arc<Pool>>()?;
            let n = pool.checkouts.fetch_add(1, Ordering::SeqCst) + 1;
            trail.lock().unwrap().push(format!("handler {}", i["n"]));
            Ok(json!({ "n": i["n"], "checkout": n }))
        }
    }));

    let outer_trail = Arc::clone(&trail);
    let outer = move |ctx: Context, next: Next| {
        let trail = Arc::clone(&outer_trail);
        async move {
            let n = ctx.raw_input()["n"].clone();
            trail.lock().unwrap().push(format!("outer before {n}"));
            let result = next.run(ctx).await;
            trail.lock().unwrap().push(format!("outer after {n}"));
            let mut out = result?;
            out["stamped"] = json!(true);
            Ok(out)
        }
    };
    let inner_trail = Arc::clone(&trail);
    let auth = move |ctx: Context, next: Next| {
        let trail = Arc::clone(&inner_trail);
        async move {
            let n = ctx.raw_input()["n"].clone();
            trail.lock().unwrap().push(format!("auth {n}"));
            if ctx.additional_metadata().get("user") != Some(&json!("alice")) {
                return Err(TaskError::non_retryable("not allowed: no user alice").with_type("Forbidden"));
            }
            next.run(ctx).await
        }
    };
    let pool = Arc::new(Pool {
        checkouts: AtomicU32::new(0),
    });
    let worker = Worker::builder(client.clone(), unique("w"))
        .slots(1)
        .middleware(outer)
        .middleware(auth)
        .lifespan(Arc::clone(&pool))
        .workflow(flow)
        .build()
        .unwrap();
    let w = start(worker).await;

    let alice = || TriggerOptions::default().metadata("user", "alice");
    let first = client
        .run(&wf, &json!({"n": 1}), alice())
        .await
        .expect("alice's first run");
    let second = client
        .run(&wf, &json!({"n": 2}), alice())
        .await
        .expect("alice's second run");
    assert_eq!(first["work"], json!({"n": 1, "checkout": 1, "stamped": true}));
    assert_eq!(
        second["work"],
        json!({"n": 2, "checkout": 2, "stamped": true}),
        "one pool for all tasks"
    );

    match client.run(&wf, &json!({"n": 3}), TriggerOptions::default()).await {
        Err(Error::RunFailed { status, error, .. }) => {
            assert_eq!(status, "FAILED");
            assert!(error.contains("Forbidden: not allowed"), "the hook's error: {error}");
        }
        other => panic!("a refused run fails: {other:?}"),
    }
    assert_eq!(ran.load(Ordering::SeqCst), 2, "the refused run's handler never ran");
    assert_eq!(pool.checkouts.load(Ordering::SeqCst), 2);
    assert_eq!(
        *trail.lock().unwrap(),
        [
            "outer before 1",
            "auth 1",
            "handler 1",
            "outer after 1",
            "outer before 2",
            "auth 2",
            "handler 2",
            "outer after 2",
            "outer before 3",
            "auth 3",
            "outer after 3",
        ]
    );
    w.stop().await;
}

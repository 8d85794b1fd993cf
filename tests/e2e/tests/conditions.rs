//! Task conditions against the real engine: `skip_if` on a parent's output (alone and in an
//! or-group), `wait_for` a sleep, `wait_for` an event or a long sleep (the event wins),
//! `skip_if` a sleep while waiting for an event that never comes, and `cancel_if`, with what
//! downstream tasks see and which handlers ran.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hatchet_e2e::World;
use hatchet_e2e::hatchet::{client, serve, unique};
use hatchet_worker::{AnyOf, Condition, Context, Error, RunStatus, Task, TriggerOptions, Workflow};
use serde_json::{Value, json};

/// When each task's handler ran, by task name.
#[derive(Clone, Default)]
struct Ran(Arc<Mutex<BTreeMap<String, Instant>>>);

impl Ran {
    /// A task that records when it ran and returns `output`.
    fn task(&self, name: &str, output: Value) -> Task {
        self.task_with(name, move |_| output.clone())
    }

    /// A task that records when it ran and returns `output(ctx)`.
    fn task_with(&self, name: &str, output: impl Fn(&Context) -> Value + Send + Sync + 'static) -> Task {
        let (ran, key, output) = (self.clone(), name.to_owned(), Arc::new(output));
        Task::new(name, move |_: Value, ctx: Context| {
            let (ran, key, output) = (ran.clone(), key.clone(), Arc::clone(&output));
            async move {
                ran.0.lock().unwrap().insert(key, Instant::now());
                Ok(output(&ctx))
            }
        })
    }

    fn get(&self, name: &str) -> Option<Instant> {
        self.0.lock().unwrap().get(name).copied()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn skip_if_on_parent_outputs_skips_and_children_see_it() {
    let client = client(&World::load().expect("local world"));
    let wf = unique("cond-skip");
    let ran = Ran::default();
    let flow = Workflow::new(&wf)
        .task(ran.task("start", json!({"n": 7})))
        .task(
            ran.task("big", json!({"branch": "big"}))
                .parents(["start"])
                .skip_if(Condition::parent("start", "output.n <= 5")),
        )
        .task(
            ran.task("small", json!({"branch": "small"}))
                .parents(["start"])
                .skip_if(Condition::parent("start", "output.n > 5")),
        )
        .task(ran.task("either", json!({})).parents(["start"]).skip_if(AnyOf::new([
            Condition::parent("start", "output.n > 1000"),
            Condition::parent("start", "output.n >= 1"),
        ])))
        .task(
            Task::new("sum", |_: Value, ctx: Context| async move {
                let big: Value = ctx.parent_output("big")?;
                let small = ctx.parent_output::<Value>("small").map_err(|e| e.to_string());
                Ok(json!({
                    "big": big,
                    "small_skipped": ctx.was_skipped("small"),
                    "small_output": small.err(),
                    "either_skipped": ctx.was_skipped("either"),
                    "big_skipped": ctx.was_skipped("big"),
                }))
            })
            .parents(["big", "small", "either"]),
        );
    let w = serve(&client, flow).await;

    let out = client
        .run(&wf, &json!({}), TriggerOptions::default())
        .await
        .expect("the run completes");
    assert_eq!(out["small"], json!({"skipped": true}), "{out:?}");
    assert_eq!(
        out["either"],
        json!({"skipped": true}),
        "one condition of the group suffices: {out:?}"
    );
    assert_eq!(out["big"], json!({"branch": "big"}));
    assert_eq!(out["sum"]["big"], json!({"branch": "big"}));
    assert_eq!(out["sum"]["small_skipped"], true);
    assert_eq!(out["sum"]["either_skipped"], true);
    assert_eq!(out["sum"]["big_skipped"], false);
    let why = out["sum"]["small_output"].as_str().unwrap_or_default();
    assert!(
        why.contains("was skipped"),
        "reading a skipped parent's output says so: {why:?}"
    );
    assert!(ran.get("big").is_some());
    assert!(ran.get("small").is_none(), "a skipped task's handler never runs");
    assert!(ran.get("either").is_none(), "a skipped task's handler never runs");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wait_for_holds_a_task_until_its_sleep_or_event() {
    let client = client(&World::load().expect("local world"));
    let wf = unique("cond-wait");
    let go = format!("{wf}:go");
    let never = format!("{wf}:never");
    let ran = Ran::default();
    let flow = Workflow::new(&wf)
        .task(ran.task("start", json!({})))
        .task(
            ran.task("slept", json!({"slept": true}))
                .parents(["start"])
                .wait_for(Condition::sleep(Duration::from_secs(4))),
        )
        .task(
            ran.task_with("released", |ctx| json!({"triggers": ctx.triggers()}))
                .parents(["start"])
                .wait_for(AnyOf::new([
                    Condition::sleep(Duration::from_secs(120)),
                    Condition::event(&go),
                ])),
        )
        .task(
            ran.task("timed_out", json!({}))
                .parents(["start"])
                .wait_for(Condition::event(&never))
                .skip_if(Condition::sleep(Duration::from_secs(3))),
        );
    let w = serve(&client, flow).await;
    let run = client
        .trigger(&wf, &json!({}), TriggerOptions::default())
        .await
        .unwrap();

    // The event counts only once the engine made the task's wait, after `start` completed:
    // hold it back a few seconds past that, then push until the run completes.
    let deadline = Instant::now() + Duration::from_secs(60);
    while ran.get("start").is_none() {
        assert!(Instant::now() < deadline, "start never ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        ran.get("released").is_none(),
        "released before its event or its 120 s sleep"
    );
    let first_push = Instant::now();
    let wait = client.wait_for_run(&run.id);
    tokio::pin!(wait);
    let out = loop {
        client.push_event(&go, &json!({"by": "test"}), None).await.unwrap();
        tokio::select! {
            r = &mut wait => break r.expect("the run completes"),
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        assert!(Instant::now() < deadline, "released never ran after its event");
    };

    let start_end = ran.get("start").unwrap();
    let slept_at = ran.get("slept").expect("slept ran");
    assert!(
        slept_at.duration_since(start_end) >= Duration::from_secs(4),
        "slept began {:?} after start ended, before its 4 s sleep",
        slept_at.duration_since(start_end)
    );
    let released_at = ran.get("released").expect("released ran");
    assert!(released_at > first_push, "released waited for its event");
    assert_eq!(
        out["released"]["triggers"][&go],
        json!({"by": "test"}),
        "the task sees the event that released it under its data key: {out:?}"
    );
    assert_eq!(
        out["timed_out"],
        json!({"skipped": true}),
        "the skip sleep won: {out:?}"
    );
    assert!(ran.get("timed_out").is_none());
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_if_cancels_the_run_before_the_task_runs() {
    let client = client(&World::load().expect("local world"));
    let wf = unique("cond-cancel");
    let ran = Ran::default();
    let flow = Workflow::new(&wf)
        .task(ran.task("start", json!({"n": 2})))
        .task(
            ran.task("doomed", json!({}))
                .parents(["start"])
                .cancel_if(Condition::parent("start", "output.n > 1")),
        )
        .task(ran.task("after", json!({})).parents(["doomed"]));
    let w = serve(&client, flow).await;

    let run = client
        .trigger(&wf, &json!({}), TriggerOptions::default())
        .await
        .unwrap();
    match client.wait_for_run(&run.id).await {
        Err(Error::RunFailed { status, .. }) => assert_eq!(status, "CANCELLED"),
        other => panic!("the run should end cancelled: {other:?}"),
    }
    let details = client.run_details(&run.id).await.unwrap();
    assert_eq!(details.status, RunStatus::Cancelled);
    assert!(ran.get("start").is_some());
    assert!(ran.get("doomed").is_none(), "a cancelled task's handler never runs");
    assert!(ran.get("after").is_none(), "nor do its children");
    w.stop().await;
}

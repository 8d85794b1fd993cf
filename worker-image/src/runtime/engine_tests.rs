//! The runtime against the in-memory engine: races, drains and outages that the real engine
//! cannot stage on demand, on tokio's paused clock so every wait is deterministic and instant.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use hatchet_proto::StepActionEventType::{
    StepEventTypeCompleted as Completed, StepEventTypeFailed as Failed, StepEventTypeStarted as Started,
};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

use super::fake_engine::{FakeEngine, cancel, start};
use super::{Exit, RunningWorker, Worker, WorkerBuilder};
use crate::config::{ClientConfig, TlsStrategy};
use crate::{Client, Context, Error, Task, TaskError, Workflow};

/// Longer than any scenario needs on the paused clock; a hang fails instead of blocking.
const SCENARIO_LIMIT: Duration = Duration::from_secs(3600);

fn client() -> Client {
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(r#"{"sub":"tenant-1","server_url":"http://127.0.0.1:9","grpc_broadcast_address":"127.0.0.1:9"}"#);
    let config = ClientConfig::builder(format!("eyJhbGciOiJFUzI1NiJ9.{claims}.c2ln"))
        .tls_strategy(TlsStrategy::None)
        .healthcheck_enabled(false)
        .build()
        .expect("config");
    Client::new(config).expect("client")
}

/// A worker named `fake` on `engine`, serving workflow `wf` with `tasks`.
fn worker(engine: &Arc<FakeEngine>, tasks: Vec<Task>) -> WorkerBuilder {
    let wf = tasks.into_iter().fold(Workflow::new("wf"), Workflow::task);
    Worker::builder(client(), "fake")
        .engine(Arc::clone(engine) as Arc<dyn super::WorkerEngine>)
        .handle_signals(false)
        .workflow(wf)
}

async fn started(builder: WorkerBuilder) -> RunningWorker {
    builder.build().expect("worker").start().await.expect("worker ready")
}

/// A task that returns at once.
fn quick() -> Task {
    Task::new("quick", |_: Value, _ctx: Context| async {
        Ok::<_, TaskError>(json!({"ok": true}))
    })
}

/// A task that waits for a permit of `gate`, ignoring cancels.
fn gated(gate: &Arc<Semaphore>) -> Task {
    let gate = Arc::clone(gate);
    Task::new("gated", move |_: Value, _ctx: Context| {
        let gate = Arc::clone(&gate);
        async move {
            gate.acquire().await.expect("gate").forget();
            Ok::<_, TaskError>(json!({"gated": true}))
        }
    })
}

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(SCENARIO_LIMIT, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen"))
}

#[tokio::test(start_paused = true)]
async fn a_completion_racing_the_engines_cancel_is_not_reported_and_the_slot_is_freed() {
    let engine = FakeEngine::new();
    let saw_cancel = Task::new("waits", |_: Value, ctx: Context| async move {
        ctx.cancelled().await;
        Ok::<_, TaskError>(json!({"finished": "after the cancel"}))
    });
    let w = started(worker(&engine, vec![saw_cancel, quick()]).slots(1)).await;

    engine.assign(start("run-1", "wf:waits", 0)).await;
    within(
        "STARTED",
        engine.until(|s| (!s.events_of("run-1").is_empty()).then_some(())),
    )
    .await;
    engine.assign(cancel("run-1", "wf:waits")).await;
    // One slot: run-2 can only start once the cancelled run gave its slot back.
    engine.assign(start("run-2", "wf:quick", 0)).await;
    within(
        "run-2 completes",
        engine.until(|s| s.events_of("run-2").contains(&(Completed, false, 0)).then_some(())),
    )
    .await;

    assert_eq!(
        engine.read(|s| s.events_of("run-1")),
        [(Started, false, 0)],
        "a cancelled run is not completed"
    );
    assert_eq!(within("stop", w.stop()).await.expect("exit"), Exit::Drained);
}

#[tokio::test(start_paused = true)]
async fn the_drain_deadline_abandons_running_tasks_as_retryable_failures() {
    let engine = FakeEngine::new();
    let gate = Arc::new(Semaphore::new(0));
    let w = started(worker(&engine, vec![gated(&gate)]).drain_timeout(Duration::from_secs(3))).await;

    engine.assign(start("run-1", "wf:gated", 0)).await;
    within(
        "STARTED",
        engine.until(|s| (!s.events_of("run-1").is_empty()).then_some(())),
    )
    .await;
    let exit = within("stop", w.stop()).await.expect("exit");

    assert_eq!(exit, Exit::DeadlineExceeded { abandoned: 1 });
    engine.read(|s| {
        assert_eq!(s.events_of("run-1"), [(Started, false, 0), (Failed, false, 0)]);
        assert_eq!(s.paused, ["worker-1"], "paused in the engine when the drain began");
        assert_eq!(s.unsubscribed, ["worker-1"]);
    });
}

#[tokio::test(start_paused = true)]
async fn assignments_without_a_slot_are_handed_back_when_the_drain_begins() {
    let engine = FakeEngine::new();
    let gate = Arc::new(Semaphore::new(0));
    let w = started(worker(&engine, vec![gated(&gate)]).slots(1)).await;

    engine.assign(start("run-1", "wf:gated", 0)).await;
    within(
        "STARTED",
        engine.until(|s| (!s.events_of("run-1").is_empty()).then_some(())),
    )
    .await;
    // The engine believes a slot is free: run-2 waits for one on the worker.
    engine.assign(start("run-2", "wf:gated", 0)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        engine.read(|s| s.events_of("run-2").is_empty()),
        "run-2 waits for the slot"
    );

    w.handle().initiate_shutdown();
    within(
        "run-2 handed back",
        engine.until(|s| (!s.events_of("run-2").is_empty()).then_some(())),
    )
    .await;
    // Arriving while draining, with the slot still taken: handed back at once.
    engine.assign(start("run-3", "wf:gated", 0)).await;
    within(
        "run-3 handed back",
        engine.until(|s| (!s.events_of("run-3").is_empty()).then_some(())),
    )
    .await;
    gate.add_permits(1);
    let exit = within("stop", w.stop()).await.expect("exit");

    assert_eq!(exit, Exit::Drained);
    engine.read(|s| {
        assert_eq!(
            s.events_of("run-1"),
            [(Started, false, 0), (Completed, false, 0)],
            "the running task finished"
        );
        assert_eq!(
            s.events_of("run-2"),
            [(Failed, false, 0)],
            "handed back, retryable, never started"
        );
        assert_eq!(s.events_of("run-3"), [(Failed, false, 0)]);
    });
}

#[tokio::test(start_paused = true)]
async fn a_worker_the_engine_forgot_registers_again_and_serves_under_its_new_id() {
    let engine = FakeEngine::new();
    let w = started(worker(&engine, vec![quick()])).await;
    assert_eq!(
        engine.read(|s| s.listening().map(str::to_owned)).as_deref(),
        Some("worker-1")
    );

    engine.forget_worker();
    within(
        "listening again as worker-2",
        engine.until(|s| (s.listening() == Some("worker-2")).then_some(())),
    )
    .await;
    engine.assign(start("run-1", "wf:quick", 0)).await;
    within(
        "run-1 completes",
        engine.until(|s| s.events_of("run-1").contains(&(Completed, false, 0)).then_some(())),
    )
    .await;

    engine.read(|s| {
        assert_eq!(s.registrations.len(), 2);
        assert!(
            s.events.iter().all(|e| e.worker_id == "worker-2"),
            "results carry the new id"
        );
    });
    assert_eq!(w.handle().worker_id().as_deref(), Some("worker-2"));
    within("stop", w.stop()).await.expect("exit");
}

#[tokio::test(start_paused = true)]
async fn a_finished_earlier_attempt_does_not_untrack_the_retry_running_beside_it() {
    let engine = FakeEngine::new();
    let gate = Arc::new(Semaphore::new(0));
    let (cancelled_tx, mut cancelled_rx) = mpsc::unbounded_channel();
    let per_attempt = {
        let gate = Arc::clone(&gate);
        Task::new("attempts", move |_: Value, ctx: Context| {
            let (gate, cancelled_tx) = (Arc::clone(&gate), cancelled_tx.clone());
            async move {
                if ctx.retry_count() == 0 {
                    gate.acquire().await.expect("gate").forget();
                } else {
                    tokio::select! {
                        () = ctx.cancelled() => { let _ = cancelled_tx.send(ctx.retry_count()); }
                        () = tokio::time::sleep(Duration::from_secs(60)) => {}
                    }
                }
                Ok::<_, TaskError>(json!({"attempt": ctx.retry_count()}))
            }
        })
    };
    let w = started(worker(&engine, vec![per_attempt])).await;

    engine.assign(start("run-1", "wf:attempts", 0)).await;
    engine.assign(start("run-1", "wf:attempts", 1)).await;
    within(
        "both started",
        engine.until(|s| (s.events_of("run-1").len() == 2).then_some(())),
    )
    .await;
    gate.add_permits(1);
    within(
        "attempt 1 completes",
        engine.until(|s| s.events_of("run-1").contains(&(Completed, false, 0)).then_some(())),
    )
    .await;
    engine.assign(cancel("run-1", "wf:attempts")).await;

    assert_eq!(within("the retry sees the cancel", cancelled_rx.recv()).await, Some(1));
    within("stop", w.stop()).await.expect("exit");
    assert_eq!(
        engine.read(|s| s.events_of("run-1")),
        [(Started, false, 0), (Started, false, 1), (Completed, false, 0)],
        "the cancelled retry reports nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn a_registration_the_engine_refuses_stops_the_worker_with_the_reason() {
    let engine = FakeEngine::new();
    engine.refuse_register(tonic::Status::unauthenticated("invalid token"));
    let err = within(
        "start fails",
        worker(&engine, vec![quick()]).build().expect("worker").start(),
    )
    .await
    .err()
    .expect("a refused registration is fatal");

    match &err {
        Error::Refused { status, .. } => assert!(status.message().contains("Unauthenticated"), "{err}"),
        other => panic!("expected a refusal, got {other}"),
    }
    assert!(engine.read(|s| s.registrations.is_empty()));
}

#[tokio::test(start_paused = true)]
async fn bad_input_and_a_panic_fail_their_runs_and_the_worker_keeps_serving() {
    let engine = FakeEngine::new();
    let panics = Task::new("panics", |_: Value, _ctx: Context| async move {
        if true {
            panic!("boom");
        }
        Ok::<_, TaskError>(Value::Null)
    });
    let w = started(worker(&engine, vec![panics, quick()])).await;

    let mut bad = start("run-bad", "wf:quick", 0);
    bad.action_payload = "{not json".into();
    engine.assign(bad).await;
    engine.assign(start("run-panic", "wf:panics", 0)).await;
    engine.assign(start("run-ok", "wf:quick", 0)).await;
    within(
        "run-ok completes",
        engine.until(|s| s.events_of("run-ok").contains(&(Completed, false, 0)).then_some(())),
    )
    .await;
    within(
        "run-panic fails",
        engine.until(|s| (s.events_of("run-panic").len() == 2).then_some(())),
    )
    .await;

    engine.read(|s| {
        assert_eq!(s.events_of("run-bad"), [(Failed, true, 0)], "bad input is not retried");
        assert_eq!(s.events_of("run-panic"), [(Started, false, 0), (Failed, false, 0)]);
        let failure = s
            .events
            .iter()
            .find(|e| e.task_run_external_id == "run-panic" && e.event_type == Failed as i32);
        assert!(failure.expect("failure").event_payload.contains("boom"));
    });
    within("stop", w.stop()).await.expect("exit");
}

#[tokio::test(start_paused = true)]
async fn a_task_costing_two_slots_waits_until_two_are_free() {
    let engine = FakeEngine::new();
    let gate = Arc::new(Semaphore::new(0));
    let w = started(worker(&engine, vec![gated(&gate).slot_cost(2), quick()]).slots(3)).await;
    let used = || w.handle().slots_used();

    engine.assign(start("heavy-1", "wf:gated", 0)).await;
    within(
        "heavy-1 STARTED",
        engine.until(|s| (!s.events_of("heavy-1").is_empty()).then_some(())),
    )
    .await;
    assert_eq!(used(), 2, "one heavy run holds two slots");
    // One slot is left: a light run fits, a second heavy one waits.
    engine.assign(start("heavy-2", "wf:gated", 0)).await;
    engine.assign(start("light", "wf:quick", 0)).await;
    within(
        "light COMPLETED",
        engine.until(|s| (s.events_of("light").len() == 2).then_some(())),
    )
    .await;
    assert!(
        engine.read(|s| s.events_of("heavy-2").is_empty()),
        "heavy-2 waits for two slots"
    );

    gate.add_permits(2);
    within(
        "heavy-2 COMPLETED",
        engine.until(|s| (s.events_of("heavy-2").len() == 2).then_some(())),
    )
    .await;
    within("stop", w.stop()).await.expect("exit");
    engine.read(|s| {
        assert_eq!(s.events_of("heavy-1"), [(Started, false, 0), (Completed, false, 0)]);
        assert_eq!(s.events_of("heavy-2"), [(Started, false, 0), (Completed, false, 0)]);
    });
}

#[tokio::test]
async fn a_task_costing_more_slots_than_the_worker_has_is_refused_at_build() {
    let engine = FakeEngine::new();
    let Err(Error::Definition(why)) = worker(&engine, vec![quick().slot_cost(3)]).slots(2).build() else {
        panic!("a task that could never run here must be refused");
    };
    assert!(why.contains("costs 3 slots"), "{why}");
}

/// A durable task: a memoized step counted in `steps`, then a sleep of `sleep`.
fn durable_sleeper(steps: &Arc<std::sync::atomic::AtomicUsize>, sleep: Duration) -> Task {
    let steps = Arc::clone(steps);
    Task::durable("sleeper", move |_: Value, ctx: crate::DurableContext| {
        let steps = Arc::clone(&steps);
        async move {
            let step: usize = ctx
                .memo("step", || async {
                    Ok(steps.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1)
                })
                .await?;
            ctx.sleep_for(sleep).await.map_err(TaskError::retryable)?;
            Ok(json!({"step": step, "invocation": ctx.invocation_count()}))
        }
    })
    .timeout(Duration::from_secs(7200))
}

/// An assignment of durable `task_run`'s `invocation`.
fn start_durable(task_run: &str, invocation: i32) -> hatchet_proto::AssignedAction {
    hatchet_proto::AssignedAction {
        durable_task_invocation_count: Some(invocation),
        ..start(task_run, "wf:sleeper", 0)
    }
}

/// Starts invocation 1 of `run-1` on a worker, lets it reach its sleep, and drains that
/// worker: the waiting run is evicted, not waited for, and not reported.
async fn first_invocation_evicted(engine: &Arc<FakeEngine>, steps: &Arc<std::sync::atomic::AtomicUsize>) {
    let first = started(worker(engine, vec![durable_sleeper(steps, Duration::from_secs(3600))])).await;
    let slots = engine.read(|s| s.registrations[0].slot_config.clone());
    assert_eq!(slots.get("default"), Some(&100));
    assert_eq!(slots.get("durable"), Some(&1000), "durable slots are offered");
    engine.assign(start_durable("run-1", 1)).await;
    within(
        "the run waits",
        engine.until(|s| (s.durable.waits() == 1).then_some(())),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(first.handle().durable_slots_used(), 1);
    let exit = within("the drain", first.stop()).await.expect("drained");
    assert_eq!(exit, Exit::Drained, "the hour-long sleep did not hold the drain");
    assert_eq!(engine.read(|s| s.durable.evictions()), [("run-1".to_owned(), 1)]);
    assert_eq!(
        engine.read(|s| s.events_of("run-1")),
        [(Started, false, 0)],
        "an evicted run is not reported: the engine runs it again"
    );
}

#[tokio::test(start_paused = true)]
async fn a_drained_durable_run_is_evicted_and_its_next_invocation_replays_the_log() {
    let engine = FakeEngine::new();
    let steps = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    first_invocation_evicted(&engine, &steps).await;

    // The sleep is over: the engine assigns invocation 2, which finds both entries in the log.
    engine.satisfy("run-1", 2, 2, r#"{"CREATE":{"sleep:1h":[{"sleep_duration":"1h"}]}}"#);
    let second = started(worker(
        &engine,
        vec![durable_sleeper(&steps, Duration::from_secs(3600))],
    ))
    .await;
    engine.assign(start_durable("run-1", 2)).await;
    let output = within(
        "the replay completes",
        engine.until(|s| {
            s.events
                .iter()
                .find(|e| e.task_run_external_id == "run-1" && e.event_type == Completed as i32)
                .map(|e| e.event_payload.clone())
        }),
    )
    .await;
    let output: Value = serde_json::from_str(&output).expect("JSON output");
    assert_eq!(
        output,
        json!({"step": 1, "invocation": 2}),
        "the step's result came from the log"
    );
    assert_eq!(steps.load(std::sync::atomic::Ordering::SeqCst), 1, "the step ran once");
    second.stop().await.expect("stopped");
}

#[tokio::test(start_paused = true)]
async fn a_replay_that_asks_for_something_else_fails_with_non_determinism() {
    let engine = FakeEngine::new();
    let steps = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    first_invocation_evicted(&engine, &steps).await;

    let changed = started(worker(
        &engine,
        vec![durable_sleeper(&steps, Duration::from_secs(7200))],
    ))
    .await;
    engine.assign(start_durable("run-1", 2)).await;
    let failure = within(
        "the replay fails",
        engine.until(|s| {
            s.events
                .iter()
                .find(|e| e.task_run_external_id == "run-1" && e.event_type == Failed as i32)
                .map(|e| e.event_payload.clone())
        }),
    )
    .await;
    assert!(failure.contains("non-determinism at event log entry"), "{failure}");
    changed.stop().await.expect("stopped");
}

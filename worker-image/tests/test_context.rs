//! Handlers unit-tested with `TestContext`, no engine anywhere: what they read (input,
//! parents, skipped parents, metadata, retry count, lifespan value, filter payload) and what
//! they ask of the engine (logs, stream chunks, slot release, timeout refresh, labels,
//! children with stubbed outputs, self-cancel), recorded for the test.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hatchet_worker::testing::TestContext;
use hatchet_worker::{Context, LabelValue, Task, TaskError, TriggerOptions};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Order {
    items: Vec<u32>,
}

/// What a worker would share with its tasks: here, a counter standing for a pool.
struct Pool {
    queries: AtomicU32,
}

async fn checkout(order: Order, ctx: Context) -> Result<Value, TaskError> {
    let pool = ctx.lifespan::<Pool>()?;
    pool.queries.fetch_add(1, Ordering::SeqCst);
    let discount: u32 = if ctx.was_skipped("discount") {
        0
    } else {
        ctx.parent_output("discount")?
    };
    ctx.log(format!("attempt {}", ctx.retry_count()))
        .await
        .map_err(TaskError::retryable)?;
    ctx.stream(b"progress".to_vec()).await.map_err(TaskError::retryable)?;
    ctx.refresh_timeout(Duration::from_secs(30))
        .await
        .map_err(TaskError::retryable)?;
    ctx.release_slot().await.map_err(TaskError::retryable)?;
    ctx.upsert_labels([("warm".to_owned(), LabelValue::from("yes"))].into())
        .await
        .map_err(TaskError::retryable)?;
    let receipt = ctx
        .run_workflow("receipt", &json!({"total": 1}), TriggerOptions::default())
        .await
        .map_err(TaskError::retryable)?;
    Ok(json!({
        "total": order.items.iter().sum::<u32>() - discount,
        "tier": ctx.additional_metadata().get("tier"),
        "filter": ctx.filter_payload(),
        "receipt": receipt["render"],
    }))
}

fn receipt() -> BTreeMap<String, Value> {
    [("render".to_owned(), json!("ok"))].into()
}

#[tokio::test]
async fn a_handler_reads_its_run_and_its_calls_are_recorded() {
    let test = TestContext::new(json!({"items": [5, 10]}))
        .parent_output("discount", 3)
        .metadata("tier", "gold")
        .retry_count(2)
        .filter_payload(json!({"channel": "pager"}))
        .lifespan(Pool {
            queries: AtomicU32::new(0),
        })
        .child_output("receipt", receipt());
    let out = checkout(Order { items: vec![5, 10] }, test.context()).await.unwrap();

    assert_eq!(
        out,
        json!({"total": 12, "tier": "gold", "filter": {"channel": "pager"}, "receipt": "ok"})
    );
    let r = test.recorded();
    assert_eq!(r.logs(), ["attempt 2"]);
    assert_eq!(r.stream(), [b"progress".to_vec()]);
    assert_eq!(r.timeout_refreshed_by(), Duration::from_secs(30));
    assert!(r.slot_released());
    assert_eq!(r.labels().get("warm"), Some(&LabelValue::from("yes")));
    assert_eq!(r.children(), [("receipt".to_owned(), json!({"total": 1}))]);
    assert!(!r.cancelled());
}

#[tokio::test]
async fn a_skipped_parent_a_missing_stub_and_a_missing_lifespan_are_told_apart() {
    let base = || {
        TestContext::new(json!({"items": [5]}))
            .skipped_parent("discount")
            .lifespan(Pool {
                queries: AtomicU32::new(0),
            })
    };
    let skipped = base().child_output("receipt", receipt());
    let out = checkout(Order { items: vec![5] }, skipped.context()).await.unwrap();
    assert_eq!(out["total"], 5, "a skipped discount counts as none");

    let no_stub = base();
    let e = checkout(Order { items: vec![5] }, no_stub.context()).await.unwrap_err();
    assert!(e.message().contains("child_output"), "{e}");

    let no_pool = TestContext::new(json!({})).child_output("receipt", receipt());
    let e = checkout(Order { items: vec![5] }, no_pool.context()).await.unwrap_err();
    assert!(!e.is_retryable());
    assert!(e.message().contains("Pool"), "{e}");
}

#[tokio::test]
async fn a_task_runs_as_the_worker_runs_it_decoding_its_input() {
    let task = Task::new("double", |n: u32, ctx: Context| async move {
        if n == 0 {
            ctx.cancel().await.map_err(TaskError::retryable)?;
            return Ok(0);
        }
        Ok(n * 2)
    });
    assert_eq!(TestContext::new(21).run(&task).await.unwrap(), json!(42));

    let bad = TestContext::new("twenty-one").run(&task).await.unwrap_err();
    assert!(!bad.is_retryable(), "bad input is not retried");
    assert!(bad.message().contains("does not match its type"), "{bad}");

    let zero = TestContext::new(0);
    assert_eq!(zero.run(&task).await.unwrap(), json!(0));
    assert!(zero.recorded().cancelled(), "self-cancel is recorded");
}

async fn onboard(user: String, ctx: hatchet_worker::DurableContext) -> Result<Value, TaskError> {
    let charge: String = ctx.memo("charge", || async { Ok(format!("charge-{user}")) }).await?;
    ctx.sleep_for(Duration::from_secs(3600))
        .await
        .map_err(TaskError::retryable)?;
    let confirmed = ctx
        .wait_for_event("confirmed", None)
        .await
        .map_err(TaskError::retryable)?;
    let welcome = ctx
        .run_child("welcome", &json!({"user": user}), TriggerOptions::default())
        .await
        .map_err(TaskError::retryable)?;
    Ok(json!({"charge": charge, "confirmed": confirmed, "welcome": welcome, "invocation": ctx.invocation_count()}))
}

#[tokio::test]
async fn a_durable_handler_runs_at_once_with_its_waits_fired_and_its_steps_recorded() {
    let test = TestContext::new("alice")
        .event("confirmed", json!({"by": "alice"}))
        .child_output("welcome", BTreeMap::from([("send".to_owned(), json!({"sent": true}))]));
    let task = Task::durable("onboard", onboard);
    let out = tokio::time::timeout(Duration::from_secs(5), test.run(&task))
        .await
        .expect("the hour-long sleep does not block a test")
        .unwrap();
    assert_eq!(out["charge"], "charge-alice");
    assert_eq!(out["confirmed"], json!({"by": "alice"}));
    assert_eq!(out["welcome"], json!({"send": {"sent": true}}));
    assert_eq!(out["invocation"], 1);
    let r = test.recorded();
    assert_eq!(r.memos(), ["charge"]);
    assert_eq!(r.waits(), [vec!["sleep:1h".to_owned()], vec!["confirmed".to_owned()]]);
    assert_eq!(r.children(), [("welcome".to_owned(), json!({"user": "alice"}))]);

    let unstubbed = TestContext::new("bob").run(&task).await.unwrap_err();
    assert!(unstubbed.message().contains("TestContext::event"), "{unstubbed}");
}

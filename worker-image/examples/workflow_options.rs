//! What a workflow declares beyond its tasks: defaults every task inherits, deduplication of
//! triggers by a key from the input, sticky children, and an event filter.
//!
//! ```sh
//! source tests/env/.run/env && cargo run -p hatchet-worker --example workflow_options
//! ```

use std::time::Duration;

use hatchet_worker::{
    Client, Context, Error, EventFilter, EventOptions, Idempotency, Sticky, Task, TaskDefaults, TaskError,
    TriggerOptions, Worker, Workflow,
};
use serde_json::{Value, json};

async fn charge(order: Value, ctx: Context) -> Result<Value, TaskError> {
    // Children stick to this worker, where the order's cache would be warm.
    let receipt = ctx
        .run_workflow("example-receipt", &order, TriggerOptions::default().sticky())
        .await
        .map_err(TaskError::retryable)?;
    Ok(json!({ "charged": order["order"], "receipt": receipt["render"] }))
}

async fn render(order: Value, ctx: Context) -> Result<Value, TaskError> {
    Ok(json!({ "order": order["order"], "worker": ctx.worker_id() }))
}

async fn notify(event: Value, ctx: Context) -> Result<Value, TaskError> {
    Ok(json!({ "event": event, "filter": ctx.filter_payload() }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let client = Client::from_env()?;
    let orders = Workflow::new("example-orders")
        .task_defaults(TaskDefaults::default().retries(3).timeout(Duration::from_secs(30)))
        .idempotency(Idempotency::ttl(
            "'example-orders:' + string(input.order)",
            Duration::from_secs(600),
        ))
        .task(Task::new("charge", charge));
    let receipts = Workflow::new("example-receipt")
        .sticky(Sticky::Soft)
        .task(Task::new("render", render));
    let alerts = Workflow::new("example-alerts")
        .on_event("example:order-paid")
        .event_filter(EventFilter::new("vip", "input.amount >= 1000").payload(json!({"channel": "pager"})))
        .task(Task::new("notify", notify));
    let worker = Worker::builder(client.clone(), "example-workflow-options")
        .workflow(orders)
        .workflow(receipts)
        .workflow(alerts)
        .build()?;
    let running = worker.start().await?;

    let order = json!({ "order": std::process::id() });
    let first = client
        .trigger("example-orders", &order, TriggerOptions::default())
        .await?;
    match client
        .trigger("example-orders", &order, TriggerOptions::default())
        .await
    {
        Err(Error::Duplicate { existing_run_ids, .. }) => println!("duplicate refused, held by {existing_run_ids:?}"),
        other => println!("unexpected: {other:?}"),
    }
    println!("order: {}", client.wait_for_run(&first.id).await?["charge"]);

    let vip = EventOptions::default().scope("vip");
    client
        .push_event_with("example:order-paid", &json!({"amount": 5000}), vip)
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    running.stop().await?;
    Ok(())
}

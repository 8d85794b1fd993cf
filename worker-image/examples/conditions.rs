//! Conditions: an approval task waits for an `approved` event (or gives up after an hour by
//! skipping), a large order skips the fast path, and the summary reads which branch ran. The
//! approval sees the event's payload in `ctx.triggers()`.
//!
//! ```sh
//! source tests/env/.run/env && cargo run -p hatchet-worker --example conditions
//! ```

use std::time::Duration;

use hatchet_worker::{AnyOf, Client, Condition, Context, Task, TaskError, TriggerOptions, Worker, Workflow};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Serialize, Deserialize)]
struct Order {
    amount: u32,
}

async fn checkout(order: Order, _ctx: Context) -> Result<Order, TaskError> {
    Ok(order)
}

async fn fast_path(_: Value, _ctx: Context) -> Result<Value, TaskError> {
    Ok(json!({"approved_by": "policy"}))
}

async fn approval(_: Value, ctx: Context) -> Result<Value, TaskError> {
    Ok(json!({"approved_by": "event", "triggers": ctx.triggers()}))
}

async fn summary(_: Value, ctx: Context) -> Result<Value, TaskError> {
    let branch = if ctx.was_skipped("fast-path") {
        "approval"
    } else {
        "fast-path"
    };
    Ok(json!({ "approved_by": ctx.parent_output::<Value>(branch)?["approved_by"] }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let client = Client::from_env()?;
    let flow = Workflow::new("example-conditions")
        .task(Task::new("checkout", checkout))
        .task(
            Task::new("fast-path", fast_path)
                .parents(["checkout"])
                .skip_if(Condition::parent("checkout", "output.amount > 100")),
        )
        .task(
            Task::new("approval", approval)
                .parents(["checkout"])
                .skip_if(Condition::parent("checkout", "output.amount <= 100"))
                .wait_for(AnyOf::new([
                    Condition::event("example-conditions:approved"),
                    Condition::sleep(Duration::from_secs(3600)),
                ])),
        )
        .task(Task::new("summary", summary).parents(["fast-path", "approval"]));
    let worker = Worker::builder(client.clone(), "example-conditions")
        .workflow(flow)
        .build()?;
    let running = worker.start().await?;

    let small = client
        .run("example-conditions", &Order { amount: 20 }, TriggerOptions::default())
        .await?;
    println!("small order: {}", small["summary"]);

    let large = client
        .trigger("example-conditions", &Order { amount: 500 }, TriggerOptions::default())
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    client
        .push_event("example-conditions:approved", &json!({"by": "alice"}), None)
        .await?;
    let large = client.wait_for_run(&large.id).await?;
    println!(
        "large order: {} (approval saw {})",
        large["summary"], large["approval"]["triggers"]
    );
    running.stop().await?;
    Ok(())
}

//! A DAG: two tasks fan in to a third that reads both parents' outputs.
//!
//! ```sh
//! source tests/env/.run/env && cargo run -p hatchet-worker --example dag
//! ```

use hatchet_worker::{Client, Context, Task, TaskError, TriggerOptions, Worker, Workflow};
use serde_json::{Value, json};

async fn fetch_price(_: Value, _ctx: Context) -> Result<Value, TaskError> {
    Ok(json!({"price": 12}))
}

async fn fetch_stock(_: Value, _ctx: Context) -> Result<Value, TaskError> {
    Ok(json!({"units": 3}))
}

async fn total(_: Value, ctx: Context) -> Result<Value, TaskError> {
    let price: Value = ctx.parent_output("price")?;
    let stock: Value = ctx.parent_output("stock")?;
    let value = price["price"].as_i64().unwrap_or(0) * stock["units"].as_i64().unwrap_or(0);
    Ok(json!({"inventory_value": value}))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let client = Client::from_env()?;
    let flow = Workflow::new("example-dag")
        .description("fan-in of two lookups")
        .task(Task::new("price", fetch_price))
        .task(Task::new("stock", fetch_stock))
        .task(Task::new("total", total).parents(["price", "stock"]));
    let worker = Worker::builder(client.clone(), "example-dag").workflow(flow).build()?;
    let running = worker.start().await?;

    let out = client.run("example-dag", &json!({}), TriggerOptions::default()).await?;
    println!("{}", serde_json::to_string_pretty(&out)?);

    running.stop().await?;
    Ok(())
}

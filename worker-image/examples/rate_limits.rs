//! A static rate limit: the key is created first (`put_rate_limit`), then a task consumes one
//! unit per run, so ten runs triggered at once start two per second.
//!
//! ```sh
//! source tests/env/.run/env && cargo run -p hatchet-worker --features rest --example rate_limits
//! ```

use std::time::Instant;

use futures::TryStreamExt;

use hatchet_worker::{Client, Context, RateLimit, RateLimitWindow, Task, TaskError, TriggerOptions, Worker, Workflow};
use serde_json::{Value, json};

const KEY: &str = "example-external-api";

async fn call_api(_input: Value, ctx: Context) -> Result<Value, TaskError> {
    Ok(json!({ "task_run": ctx.task_run_id() }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let client = Client::from_env()?;
    client.put_rate_limit(KEY, 2, RateLimitWindow::Second).await?;
    let worker = Worker::builder(client.clone(), "example-rate-limits")
        .slots(10)
        .workflow(
            Workflow::new("example-rate-limited")
                .task(Task::new("call-api", call_api).rate_limit(RateLimit::fixed(KEY, 1))),
        )
        .build()?;
    let running = worker.start().await?;

    let began = Instant::now();
    let mut runs = Vec::new();
    for _ in 0..10 {
        runs.push(
            client
                .trigger("example-rate-limited", &json!({}), TriggerOptions::default())
                .await?,
        );
    }
    for run in &runs {
        client.wait_for_run(&run.id).await?;
        println!("{} done after {:.1?}", run.id, began.elapsed());
    }
    let rest = client.rest()?;
    let limits: Vec<_> = rest.rate_limits().list(Some(KEY)).try_collect().await?;
    for limit in limits {
        println!(
            "{}: {} per {} ({} left)",
            limit.key, limit.limit_value, limit.window, limit.value
        );
    }
    running.stop().await?;
    Ok(())
}

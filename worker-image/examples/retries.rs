//! Retries with backoff until success, and a non-retryable failure handled by an
//! on-failure task.
//!
//! ```sh
//! source tests/env/.run/env && cargo run -p hatchet-worker --example retries
//! ```

use std::time::Duration;

use hatchet_worker::{Client, Context, Error, Task, TaskError, TriggerOptions, Worker, Workflow};
use serde_json::{Value, json};

async fn flaky(_: Value, ctx: Context) -> Result<Value, TaskError> {
    if ctx.retry_count() < 2 {
        return Err(TaskError::retryable(format!(
            "transient failure on attempt {}",
            ctx.retry_count()
        )));
    }
    Ok(json!({"succeeded_on_attempt": ctx.retry_count()}))
}

async fn validate(_: Value, _ctx: Context) -> Result<Value, TaskError> {
    Err(TaskError::non_retryable(
        "the order is malformed; retrying will not help",
    ))
}

async fn report(_: Value, ctx: Context) -> Result<Value, TaskError> {
    Ok(json!({"failures_seen": ctx.task_errors()}))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let client = Client::from_env()?;
    let worker = Worker::builder(client.clone(), "example-retries")
        .workflow(
            Workflow::new("example-flaky").task(
                Task::new("flaky", flaky)
                    .retries(3)
                    .backoff(2.0, Duration::from_secs(4)),
            ),
        )
        .workflow(
            Workflow::new("example-validate")
                .task(Task::new("validate", validate).retries(5))
                .on_failure(Task::new("report", report)),
        )
        .build()?;
    let running = worker.start().await?;

    let out = client
        .run("example-flaky", &json!({}), TriggerOptions::default())
        .await?;
    println!("flaky: {}", serde_json::to_string(&out)?);
    match client
        .run("example-validate", &json!({}), TriggerOptions::default())
        .await
    {
        Err(Error::RunFailed { status, error, .. }) => println!("validate ended {status}: {error}"),
        other => println!("validate: unexpected {other:?}"),
    }

    running.stop().await?;
    Ok(())
}

//! Middleware and a lifespan value: a hook times every task and refuses runs without a
//! `user` in their metadata; every task shares one HTTP client built before the worker starts.
//! The handler itself is unit-tested with `TestContext` (see `tests/test_context.rs`).
//!
//! ```sh
//! source tests/env/.run/env && cargo run -p hatchet-worker --example middleware
//! ```

use std::time::Instant;

use hatchet_worker::{Client, Context, Next, Task, TaskError, TriggerOptions, Worker, Workflow};
use serde_json::{Value, json};

/// What every task shares: configuration and clients built once.
struct Shared {
    greeting: String,
}

async fn timed(ctx: Context, next: Next) -> Result<Value, TaskError> {
    if !ctx.additional_metadata().contains_key("user") {
        return Err(TaskError::non_retryable("runs need a user in their metadata").with_type("Forbidden"));
    }
    let began = Instant::now();
    let result = next.run(ctx.clone()).await;
    println!(
        "{} took {:?} (ok: {})",
        ctx.task_name(),
        began.elapsed(),
        result.is_ok()
    );
    result
}

async fn greet(input: Value, ctx: Context) -> Result<Value, TaskError> {
    let shared = ctx.lifespan::<Shared>()?;
    let name = input["name"].as_str().unwrap_or("there");
    Ok(json!({ "message": format!("{} {name}", shared.greeting) }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let client = Client::from_env()?;
    let worker = Worker::builder(client.clone(), "example-middleware")
        .middleware(timed)
        .lifespan(Shared {
            greeting: "hello".into(),
        })
        .workflow(Workflow::new("example-middleware").task(Task::new("greet", greet)))
        .build()?;
    let running = worker.start().await?;

    let with_user = TriggerOptions::default().metadata("user", "alice");
    let out = client
        .run("example-middleware", &json!({"name": "bob"}), with_user)
        .await?;
    println!("{}", out["greet"]);
    let refused = client
        .run("example-middleware", &json!({"name": "eve"}), TriggerOptions::default())
        .await;
    println!("without a user: {}", refused.unwrap_err());
    running.stop().await?;
    Ok(())
}

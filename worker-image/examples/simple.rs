//! One task, triggered and awaited by the same process.
//!
//! ```sh
//! source tests/env/.run/env && cargo run -p hatchet-worker --example simple
//! ```

use hatchet_worker::{Client, Context, Task, TaskError, TriggerOptions, Worker, Workflow};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Greet {
    name: String,
}

#[derive(Serialize)]
struct Greeting {
    message: String,
    attempt: u32,
}

async fn greet(input: Greet, ctx: Context) -> Result<Greeting, TaskError> {
    ctx.log(format!("greeting {}", input.name)).await?;
    Ok(Greeting {
        message: format!("hello, {}", input.name),
        attempt: ctx.retry_count(),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let client = Client::from_env()?;
    let worker = Worker::builder(client.clone(), "example-simple")
        .slots(10)
        .workflow(Workflow::new("example-simple").task(Task::new("greet", greet)))
        .build()?;
    let running = worker.start().await?;

    let out = client
        .run(
            "example-simple",
            &serde_json::json!({"name": "fleet"}),
            TriggerOptions::default(),
        )
        .await?;
    println!("{}", serde_json::to_string_pretty(&out)?);

    running.stop().await?;
    Ok(())
}

//! A parent task that spawns child workflow runs and sums their results.
//!
//! ```sh
//! source tests/env/.run/env && cargo run -p hatchet-worker --example children
//! ```

use hatchet_worker::{Client, Context, Task, TaskError, TriggerOptions, Worker, Workflow};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct N {
    n: i64,
}

async fn square(input: N, _ctx: Context) -> Result<Value, TaskError> {
    Ok(json!({"square": input.n * input.n}))
}

async fn sum_of_squares(input: N, ctx: Context) -> Result<Value, TaskError> {
    let mut runs = Vec::new();
    for k in 1..=input.n {
        runs.push(
            ctx.spawn_workflow(
                "example-square",
                &json!({"n": k}),
                TriggerOptions::default().key(format!("k{k}")),
            )
            .await?,
        );
    }
    let mut sum = 0;
    for run in runs {
        let out = ctx.client().wait_for_run(&run.id).await?;
        sum += out["square"]["square"].as_i64().unwrap_or(0);
    }
    Ok(json!({"sum": sum}))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let client = Client::from_env()?;
    let worker = Worker::builder(client.clone(), "example-children")
        .slots(20)
        .workflow(Workflow::new("example-square").task(Task::new("square", square)))
        .workflow(Workflow::new("example-parent").task(Task::new("sum", sum_of_squares)))
        .build()?;
    let running = worker.start().await?;

    let out = client
        .run("example-parent", &json!({"n": 4}), TriggerOptions::default())
        .await?;
    println!("{}", serde_json::to_string_pretty(&out)?);

    running.stop().await?;
    Ok(())
}

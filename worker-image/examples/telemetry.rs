//! Telemetry: the task's own `tracing` lines go to the engine's log of the run, and each
//! attempt's span is exported to the engine over OTLP (shown beside the run), continuing the
//! trace of the program that triggered it.
//!
//! ```sh
//! source tests/env/.run/env && cargo run -p hatchet-worker --features otel,engine-logs --example telemetry
//! ```

use hatchet_worker::telemetry::{engine_logs, otel};
use hatchet_worker::{Client, Context, Task, TaskError, TriggerOptions, Worker, Workflow};
use serde_json::{Value, json};
use tracing::Instrument as _;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

async fn charge(input: Value, _ctx: Context) -> Result<Value, TaskError> {
    tracing::info!(amount = %input["amount"], "charging the card");
    tracing::warn!("the card expires this month");
    Ok(json!({ "charged": input["amount"] }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let client = Client::from_env()?;
    let (spans, flush) = otel::layer(&client, "example-telemetry", otel::Destination::Engine)?;
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_filter(LevelFilter::INFO))
        .with(engine_logs::layer(&client).with_filter(LevelFilter::INFO))
        .with(spans.with_filter(LevelFilter::INFO))
        .init();
    let worker = Worker::builder(client.clone(), "example-telemetry")
        .workflow(Workflow::new("example-telemetry").task(Task::new("charge", charge)))
        .build()?;
    let running = worker.start().await?;

    // The run continues this span's trace (its traceparent travels in the run's metadata).
    let checkout = tracing::info_span!("checkout");
    let out = client
        .run("example-telemetry", &json!({"amount": 42}), TriggerOptions::default())
        .instrument(checkout)
        .await?;
    println!("{}", out["charge"]);
    running.stop().await?;
    flush.flush()?;
    Ok(())
}

//! Durable tasks: an onboarding flow that charges once (a memoized step), sends a reminder
//! after a sleep that survives worker restarts, then waits for a `confirmed` event (or gives
//! up after a day) and starts a child run for the welcome pack. While it sleeps or waits, the
//! run may be evicted: its durable slot is freed and the engine runs it again, replaying its
//! log, once the wait is over. Stop the worker in the middle and start it again: the run goes
//! on where it was, without charging twice.
//!
//! ```sh
//! source tests/env/.run/env && cargo run -p hatchet-worker --example durable
//! ```

use std::time::Duration;

use hatchet_worker::{
    AnyOf, Client, Condition, Context, DurableContext, EvictionPolicy, Task, TaskError, TriggerOptions, Worker,
    Workflow,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Serialize, Deserialize)]
struct Signup {
    user: String,
}

async fn onboard(signup: Signup, ctx: DurableContext) -> Result<Value, TaskError> {
    // Runs once per run: a replay reads the charge id from the event log.
    let charge: String = ctx
        .memo("charge", || async { Ok(format!("charge-for-{}", signup.user)) })
        .await?;
    let started = ctx.now().await?;
    ctx.sleep_for(Duration::from_secs(5)).await?;
    ctx.log(format!("reminder sent to {}", signup.user)).await?;
    let confirmed = ctx
        .wait_for([AnyOf::new([
            Condition::event("example-durable:confirmed").data_key("confirmed"),
            Condition::sleep(Duration::from_secs(86_400)),
        ])])
        .await?;
    let welcome = ctx
        .run_child(
            "example-durable-welcome",
            &json!({"user": signup.user}),
            TriggerOptions::default(),
        )
        .await?;
    Ok(json!({
        "charge": charge,
        "started_ms": started.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0),
        "confirmed": confirmed.get("confirmed"),
        "invocation": ctx.invocation_count(),
        "welcome": welcome,
    }))
}

async fn welcome(input: Value, _ctx: Context) -> Result<Value, TaskError> {
    Ok(json!({"sent_to": input["user"]}))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let client = Client::from_env()?;
    let worker = Worker::builder(client.clone(), "example-durable")
        .durable_slots(100)
        .workflow(
            Workflow::new("example-durable").task(
                Task::durable("onboard", onboard)
                    .timeout(Duration::from_secs(86_400 + 600))
                    .eviction(EvictionPolicy::default().ttl(Duration::from_secs(60))),
            ),
        )
        .workflow(Workflow::new("example-durable-welcome").task(Task::new("welcome", welcome)))
        .build()?;
    let running = worker.start().await?;

    let run = client
        .trigger(
            "example-durable",
            &Signup { user: "alice".into() },
            TriggerOptions::default(),
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(8)).await;
    client
        .push_event("example-durable:confirmed", &json!({"by": "alice"}), None)
        .await?;
    let out = client.wait_for_run(&run.id).await?;
    println!("onboarded: {}", out["onboard"]);
    running.stop().await?;
    Ok(())
}

//! Our side of the bench: a worker on the `hatchet-worker` library registering the bench's
//! three tasks (no-op, 10 ms sleep, 20 s sleep), run as `sdk-bench worker` in a process of
//! its own so it is measured like the SDKs' workers.

use std::time::Duration;

use hatchet_worker::{Client, Context, Task, TaskError, Worker, Workflow};
use serde_json::{Value, json};

/// The bench's tasks: name suffix and how long each sleeps.
pub(crate) const TASKS: [(&str, Duration); 3] = [
    ("noop", Duration::ZERO),
    ("sleep10ms", Duration::from_millis(10)),
    ("sleep20s", Duration::from_secs(20)),
];

fn workflow(prefix: &str, suffix: &str, sleep: Duration) -> Workflow {
    Workflow::new(format!("{prefix}-{suffix}")).task(
        Task::new("run", move |_: Value, ctx: Context| async move {
            if !sleep.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(sleep) => {}
                    _ = ctx.cancelled() => {}
                }
            }
            Ok::<_, TaskError>(json!({}))
        })
        .timeout(Duration::from_secs(60)),
    )
}

/// Serves the bench's workflows until SIGTERM or SIGINT.
pub(crate) async fn serve(prefix: &str, name: &str, slots: usize) -> anyhow::Result<()> {
    let client = Client::from_env()?;
    let mut builder = Worker::builder(client, name).slots(slots);
    for (suffix, sleep) in TASKS {
        builder = builder.workflow(workflow(prefix, suffix, sleep));
    }
    builder.build()?.run().await?;
    Ok(())
}

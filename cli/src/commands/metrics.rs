//! `hatchet metrics`: task counts by status, queue depths.

use hatchet_rest::TaskMetricsFilter;

use super::Ctx;
use crate::args::MetricsCommand;
use crate::output::{self, Table};

/// Runs one `hatchet metrics` command.
pub(crate) async fn run(ctx: &Ctx, command: MetricsCommand) -> anyhow::Result<()> {
    let metrics = ctx.rest.metrics();
    match command {
        MetricsCommand::Tasks { since } => {
            let counts = metrics.task_status(&TaskMetricsFilter::since(since)).await?;
            output::show(ctx.format, &counts, |counts| {
                let mut t = Table::new(&["STATUS", "COUNT"]);
                for c in counts {
                    t.row([c.status.to_string(), c.count.to_string()]);
                }
                t
            })
        }
        MetricsCommand::Queues => {
            let depths = metrics.queues().await?;
            output::show(ctx.format, &depths, |depths| {
                let mut t = Table::new(&["QUEUE", "CONCURRENCY KEY", "DEPTH"]);
                for (queue, depth) in &depths.queues {
                    t.row([queue.clone(), String::new(), depth.to_string()]);
                }
                for (workflow, keys) in &depths.concurrency {
                    for (key, depth) in keys {
                        t.row([workflow.clone(), key.clone(), depth.to_string()]);
                    }
                }
                t
            })
        }
    }
}

//! `hatchet workers`: list, get, pause, unpause.

use hatchet_rest::types::Worker;

use super::{Ctx, all};
use crate::args::WorkersCommand;
use crate::output::{self, Table, maybe_time};

/// Runs one `hatchet workers` command.
pub(crate) async fn run(ctx: &Ctx, command: WorkersCommand) -> anyhow::Result<()> {
    let workers = ctx.rest.workers();
    match command {
        WorkersCommand::List => {
            let rows = all(workers.list()).await?;
            output::show(ctx.format, &rows, |rows| {
                let mut t = Table::new(&["ID", "NAME", "STATUS", "SLOTS", "LAST HEARTBEAT"]);
                for w in rows {
                    t.row([
                        w.metadata.id.to_string(),
                        w.name.clone(),
                        status(w),
                        slots(w),
                        maybe_time(w.last_heartbeat_at),
                    ]);
                }
                t
            })
        }
        WorkersCommand::Get { id } => {
            let w = workers.get(id).await?;
            output::show(ctx.format, &w, fields)
        }
        WorkersCommand::Pause { id } => {
            let w = workers.pause(id).await?;
            output::show(ctx.format, &w, fields)
        }
        WorkersCommand::Unpause { id } => {
            let w = workers.unpause(id).await?;
            output::show(ctx.format, &w, fields)
        }
    }
}

fn status(w: &Worker) -> String {
    w.status.map(|s| s.to_string()).unwrap_or_default()
}

/// Free of total slots over every slot type, e.g. `3/4`.
fn slots(w: &Worker) -> String {
    let (free, total) = w.slot_config.values().fold((0, 0), |(free, total), c| {
        (free + c.available.unwrap_or(0), total + c.limit)
    });
    if total == 0 {
        String::new()
    } else {
        format!("{free}/{total}")
    }
}

fn fields(w: &Worker) -> Table {
    let labels = w
        .labels
        .iter()
        .map(|l| format!("{}={}", l.key, l.value.as_deref().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(",");
    Table::fields([
        ("id", w.metadata.id.to_string()),
        ("name", w.name.clone()),
        ("status", status(w)),
        ("slots free", slots(w)),
        ("last heartbeat", maybe_time(w.last_heartbeat_at)),
        ("labels", labels),
        ("actions", w.actions.join(",")),
    ])
}

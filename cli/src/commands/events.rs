//! `hatchet events`: list, get.

use hatchet_rest::EventFilter;
use hatchet_rest::types::V1Event;

use super::{Ctx, first};
use crate::args::EventsCommand;
use crate::output::{self, Table, maybe_time, pairs};

/// Runs one `hatchet events` command.
pub(crate) async fn run(ctx: &Ctx, command: EventsCommand) -> anyhow::Result<()> {
    let events = ctx.rest.events();
    match command {
        EventsCommand::List { keys, since, limit } => {
            let filter = EventFilter {
                keys,
                since: Some(since),
                ..EventFilter::default()
            };
            let rows = first(events.list(&filter), limit, "events").await?;
            output::show(ctx.format, &rows, |rows| {
                let mut t = Table::new(&["ID", "KEY", "SEEN", "RUNS", "METADATA"]);
                for e in rows {
                    t.row([
                        e.metadata.id.to_string(),
                        e.key.clone(),
                        maybe_time(e.seen_at),
                        e.triggered_runs.len().to_string(),
                        pairs(&e.additional_metadata),
                    ]);
                }
                t
            })
        }
        EventsCommand::Get { id } => output::show(ctx.format, &events.get(id).await?, fields),
    }
}

fn fields(e: &V1Event) -> Table {
    let s = &e.workflow_run_summary;
    Table::fields([
        ("id", e.metadata.id.to_string()),
        ("key", e.key.clone()),
        ("seen", maybe_time(e.seen_at)),
        ("payload", serde_json::Value::Object(e.payload.clone()).to_string()),
        ("metadata", pairs(&e.additional_metadata)),
        (
            "runs",
            format!(
                "{} queued, {} running, {} succeeded, {} failed, {} cancelled",
                s.queued, s.running, s.succeeded, s.failed, s.cancelled
            ),
        ),
    ])
}

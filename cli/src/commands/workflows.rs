//! `hatchet workflows`: list, get, delete.

use hatchet_rest::types::Workflow;

use super::{Ctx, all};
use crate::args::WorkflowsCommand;
use crate::output::{self, Table, time};

/// Runs one `hatchet workflows` command.
pub(crate) async fn run(ctx: &Ctx, command: WorkflowsCommand) -> anyhow::Result<()> {
    let workflows = ctx.rest.workflows();
    match command {
        WorkflowsCommand::List { name } => {
            // `list(None)` is every workflow of the tenant; an empty name is the namespace's prefix.
            let name = name.or_else(|| (!ctx.namespace.trim().is_empty()).then(String::new));
            let rows = all(workflows.list(name.as_deref())).await?;
            output::show(ctx.format, &rows, |rows| {
                let mut t = Table::new(&["ID", "NAME", "CREATED", "PAUSED"]);
                for w in rows {
                    t.row([
                        w.metadata.id.to_string(),
                        w.name.clone(),
                        time(w.metadata.created_at),
                        w.is_paused.unwrap_or(false).to_string(),
                    ]);
                }
                t
            })
        }
        WorkflowsCommand::Get { id } => {
            let w = workflows.get(id).await?;
            output::show(ctx.format, &w, fields)
        }
        WorkflowsCommand::Delete { id } => {
            workflows.delete(id).await?;
            eprintln!("deleted workflow {id}");
            Ok(())
        }
    }
}

fn fields(w: &Workflow) -> Table {
    Table::fields([
        ("id", w.metadata.id.to_string()),
        ("name", w.name.clone()),
        ("description", w.description.clone().unwrap_or_default()),
        ("created", time(w.metadata.created_at)),
        ("versions", w.versions.len().to_string()),
        ("paused", w.is_paused.unwrap_or(false).to_string()),
    ])
}

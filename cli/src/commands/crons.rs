//! `hatchet crons`: list, create, get, enable, disable, delete.

use hatchet_rest::CronFilter;
use hatchet_rest::types::CronWorkflows;
use serde_json::Value;

use super::{Ctx, all};
use crate::args::CronsCommand;
use crate::output::{self, Table, pairs, time};

/// Runs one `hatchet crons` command.
pub(crate) async fn run(ctx: &Ctx, command: CronsCommand) -> anyhow::Result<()> {
    let crons = ctx.rest.crons();
    match command {
        CronsCommand::List { workflow } => {
            let workflow_id = ctx.maybe_workflow_id(workflow.as_deref()).await?;
            let filter = CronFilter {
                workflow_id,
                ..CronFilter::default()
            };
            let rows = all(crons.list(&filter)).await?;
            output::show(ctx.format, &rows, |rows| {
                let mut t = Table::new(&["ID", "NAME", "WORKFLOW", "EXPRESSION", "ENABLED", "CREATED"]);
                for c in rows {
                    t.row([
                        c.metadata.id.to_string(),
                        c.name.clone().unwrap_or_default(),
                        c.workflow_name.clone(),
                        c.cron.clone(),
                        c.enabled.to_string(),
                        time(c.metadata.created_at),
                    ]);
                }
                t
            })
        }
        CronsCommand::Create {
            workflow,
            name,
            expression,
            input,
            options,
        } => {
            let input = Value::Object(input.read()?);
            let cron = crons
                .create(&workflow, &name, &expression, &input, &options.to_options())
                .await?;
            output::show(ctx.format, &cron, fields)
        }
        CronsCommand::Get { id } => output::show(ctx.format, &crons.get(id).await?, fields),
        CronsCommand::Enable { id } => {
            crons.set_enabled(id, true).await?;
            eprintln!("enabled cron {id}");
            Ok(())
        }
        CronsCommand::Disable { id } => {
            crons.set_enabled(id, false).await?;
            eprintln!("disabled cron {id}");
            Ok(())
        }
        CronsCommand::Delete { id } => {
            crons.delete(id).await?;
            eprintln!("deleted cron {id}");
            Ok(())
        }
    }
}

fn fields(c: &CronWorkflows) -> Table {
    Table::fields([
        ("id", c.metadata.id.to_string()),
        ("name", c.name.clone().unwrap_or_default()),
        ("workflow", c.workflow_name.clone()),
        ("expression", c.cron.clone()),
        ("enabled", c.enabled.to_string()),
        ("metadata", pairs(&c.additional_metadata)),
        ("created", time(c.metadata.created_at)),
    ])
}

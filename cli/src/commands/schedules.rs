//! `hatchet schedules`: list, create, get, reschedule, delete.

use hatchet_rest::ScheduleFilter;
use hatchet_rest::types::ScheduledWorkflows;
use serde_json::Value;

use super::{Ctx, all};
use crate::args::SchedulesCommand;
use crate::output::{self, Table, pairs, time};

/// Runs one `hatchet schedules` command.
pub(crate) async fn run(ctx: &Ctx, command: SchedulesCommand) -> anyhow::Result<()> {
    let schedules = ctx.rest.schedules();
    match command {
        SchedulesCommand::List { workflow } => {
            let workflow_id = ctx.maybe_workflow_id(workflow.as_deref()).await?;
            let filter = ScheduleFilter {
                workflow_id,
                ..ScheduleFilter::default()
            };
            let rows = all(schedules.list(&filter)).await?;
            output::show(ctx.format, &rows, |rows| {
                let mut t = Table::new(&["ID", "WORKFLOW", "AT", "RUN STATUS", "RUN ID"]);
                for s in rows {
                    t.row([
                        s.metadata.id.to_string(),
                        s.workflow_name.clone(),
                        time(s.trigger_at),
                        run_status(s),
                        s.workflow_run_id.map(|id| id.to_string()).unwrap_or_default(),
                    ]);
                }
                t
            })
        }
        SchedulesCommand::Create {
            workflow,
            at,
            input,
            options,
        } => {
            let input = Value::Object(input.read()?);
            let schedule = schedules.create(&workflow, at, &input, &options.to_options()).await?;
            output::show(ctx.format, &schedule, fields)
        }
        SchedulesCommand::Get { id } => output::show(ctx.format, &schedules.get(id).await?, fields),
        SchedulesCommand::Reschedule { id, at } => {
            output::show(ctx.format, &schedules.reschedule(id, at).await?, fields)
        }
        SchedulesCommand::Delete { id } => {
            schedules.delete(id).await?;
            eprintln!("deleted schedule {id}");
            Ok(())
        }
    }
}

fn run_status(s: &ScheduledWorkflows) -> String {
    s.workflow_run_status.map(|st| st.to_string()).unwrap_or_default()
}

fn fields(s: &ScheduledWorkflows) -> Table {
    Table::fields([
        ("id", s.metadata.id.to_string()),
        ("workflow", s.workflow_name.clone()),
        ("at", time(s.trigger_at)),
        ("metadata", pairs(&s.additional_metadata)),
        ("run status", run_status(s)),
        ("run id", s.workflow_run_id.map(|id| id.to_string()).unwrap_or_default()),
    ])
}

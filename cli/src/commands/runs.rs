//! `hatchet runs`: list, get, result, replay, cancel.

use hatchet_rest::types::{V1TaskStatus, V1TaskSummary, V1WorkflowRunDetails};
use hatchet_rest::{RunFilter, Select, Uuid};
use serde_json::json;

use super::{Ctx, all, first};
use crate::args::{BulkArgs, RunFilterArgs, RunsCommand};
use crate::bulk::{CHUNK, in_chunks};
use crate::exit::{Code, Failure};
use crate::output::{self, Format, Table, count, maybe_time, millis, pairs, time};

/// Runs one `hatchet runs` command.
pub(crate) async fn run(ctx: &Ctx, command: RunsCommand) -> anyhow::Result<()> {
    match command {
        RunsCommand::List { filter, limit } => {
            let filter = ctx.run_filter(&filter).await?;
            let rows = first(ctx.rest.runs().list(&filter), limit, "runs").await?;
            output::show(ctx.format, &rows, |rows| runs_table(rows))
        }
        RunsCommand::Get { id } => {
            let details = ctx.rest.runs().get(id).await?;
            match ctx.format {
                Format::Json => output::json(&details),
                Format::Table => output::emit(&format!(
                    "{}\n{}",
                    run_fields(&details).render(),
                    tasks_table(&details.tasks).render()
                )),
            }
        }
        RunsCommand::Result { id } => {
            let details = ctx.rest.runs().get(id).await?;
            match details.output() {
                Some(result) => output::json(&result),
                None => Err(unfinished(&details).into()),
            }
        }
        RunsCommand::Replay(args) => bulk(ctx, args, Action::Replay).await,
        RunsCommand::Cancel(args) => bulk(ctx, args, Action::Cancel).await,
    }
}

impl Ctx {
    /// The REST filter the flags describe, workflow names resolved to ids.
    pub(crate) async fn run_filter(&self, args: &RunFilterArgs) -> anyhow::Result<RunFilter> {
        Ok(RunFilter {
            since: args.since,
            until: args.until,
            statuses: args.statuses.iter().copied().map(Into::into).collect(),
            workflow_ids: self.workflow_ids(&args.workflows).await?,
            metadata: args.metadata.clone(),
        })
    }
}

/// Why a run has no result: it ended without one (exit 5), or it has not ended (exit 1).
pub(crate) fn unfinished(details: &V1WorkflowRunDetails) -> Failure {
    let run = &details.run;
    let id = &*run.metadata.id;
    match run.status {
        V1TaskStatus::Failed | V1TaskStatus::Cancelled => {
            let error = error_of(details).map(|e| format!(": {e}")).unwrap_or_default();
            Failure::new(Code::RunFailed, format!("run {id} ended {}{error}", run.status))
        }
        status => Failure::new(Code::Failed, format!("run {id} is {status}; it has no result yet")),
    }
}

/// The error a failed or cancelled run ended with (none for other runs: a replayed run that
/// completed keeps its earlier error).
fn ended_error(details: &V1WorkflowRunDetails) -> &str {
    match details.run.status {
        V1TaskStatus::Failed | V1TaskStatus::Cancelled => error_of(details).unwrap_or_default(),
        _ => "",
    }
}

/// The run's error, else its first task's.
fn error_of(details: &V1WorkflowRunDetails) -> Option<&str> {
    details
        .run
        .error_message
        .as_deref()
        .or_else(|| details.tasks.iter().find_map(|t| t.error_message.as_deref()))
        .filter(|e| !e.is_empty())
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Replay,
    Cancel,
}

impl Action {
    fn done(self) -> &'static str {
        match self {
            Action::Replay => "replayed",
            Action::Cancel => "cancelled",
        }
    }
}

/// Replays or cancels the runs named by id, or those the filter matches (listed first, then
/// acted on [`CHUNK`] at a time with progress on stderr); the count on stdout.
async fn bulk(ctx: &Ctx, args: BulkArgs, action: Action) -> anyhow::Result<()> {
    let ids: Vec<Uuid> = if args.filter {
        let filter = ctx.run_filter(&args.matching).await?;
        let rows: Vec<V1TaskSummary> = all(ctx.rest.runs().list(&filter)).await?;
        if args.dry_run {
            eprintln!("dry run: would have {} {}", action.done(), count(rows.len(), "run"));
            return output::show(ctx.format, &rows, |rows| runs_table(rows));
        }
        rows.iter().map(|r| r.workflow_run_external_id).collect()
    } else {
        if args.matching.narrows() {
            return Err(
                Failure::usage("the filter flags (--status, --workflow, --metadata, --until) need --filter").into(),
            );
        }
        if args.dry_run {
            eprintln!("dry run: would have {} {}", action.done(), count(args.ids.len(), "run"));
            return output::show(ctx.format, &args.ids, |ids| {
                let mut t = Table::new(&["RUN ID"]);
                for id in ids {
                    t.row([id.to_string()]);
                }
                t
            });
        }
        args.ids
    };
    let runs = ctx.rest.runs();
    let task_runs = in_chunks(
        &ids,
        CHUNK,
        action.done(),
        |progress| eprintln!("{progress}"),
        move |part| async move {
            match action {
                Action::Replay => runs.replay(Select::Ids(part)).await,
                Action::Cancel => runs.cancel(Select::Ids(part)).await,
            }
        },
    )
    .await?;
    match ctx.format {
        Format::Json => output::json(&json!({"runs": ids.len(), "taskRuns": task_runs})),
        Format::Table => output::emit(&format!(
            "{} {} ({})\n",
            action.done(),
            count(ids.len(), "run"),
            count(task_runs.len(), "task run")
        )),
    }
}

fn runs_table(rows: &[V1TaskSummary]) -> Table {
    let mut t = Table::new(&["RUN ID", "WORKFLOW", "STATUS", "CREATED", "DURATION", "METADATA"]);
    for r in rows {
        t.row([
            r.workflow_run_external_id.to_string(),
            r.workflow_name.clone().unwrap_or_else(|| r.display_name.clone()),
            r.status.to_string(),
            time(r.created_at),
            millis(r.duration),
            pairs(&r.additional_metadata),
        ]);
    }
    t
}

fn run_fields(details: &V1WorkflowRunDetails) -> Table {
    let run = &details.run;
    Table::fields([
        ("run id", run.metadata.id.to_string()),
        ("name", run.display_name.clone()),
        ("status", run.status.to_string()),
        ("created", maybe_time(run.created_at)),
        ("started", maybe_time(run.started_at)),
        ("finished", maybe_time(run.finished_at)),
        ("duration", millis(run.duration)),
        ("metadata", pairs(&run.additional_metadata)),
        (
            "error",
            ended_error(details).lines().next().unwrap_or_default().to_owned(),
        ),
    ])
}

fn tasks_table(tasks: &[V1TaskSummary]) -> Table {
    let mut t = Table::new(&["TASK ID", "TASK", "STATUS", "ATTEMPT", "STARTED", "DURATION"]);
    for task in tasks {
        t.row([
            task.task_external_id.to_string(),
            task.display_name.clone(),
            task.status.to_string(),
            task.attempt.map(|a| a.to_string()).unwrap_or_default(),
            maybe_time(task.started_at),
            millis(task.duration),
        ]);
    }
    t
}

//! `hatchet trigger`: start a run, and with `--wait` follow it to its end.

use std::time::Duration;

use hatchet_rest::Uuid;
use hatchet_rest::types::{V1TaskStatus, V1WorkflowRunDetails};
use serde_json::Value;

use super::Ctx;
use super::runs::unfinished;
use crate::args::TriggerArgs;
use crate::exit::{Code, Failure};
use crate::output::{self, Table};

/// How often `--wait` asks for the run's status.
const POLL: Duration = Duration::from_millis(500);

/// Triggers the run; with `--wait`, prints its result once it ends, or exits 5 or 6.
pub(crate) async fn run(ctx: &Ctx, args: TriggerArgs) -> anyhow::Result<()> {
    let input = Value::Object(args.input.read()?);
    let options = args.options.to_options();
    let details = ctx.rest.runs().trigger(&args.workflow, &input, &options).await?;
    let run = details.run.metadata.uuid()?;
    if !args.wait {
        return output::show(ctx.format, &details, |d| {
            Table::fields([("run id", run.to_string()), ("status", d.run.status.to_string())])
        });
    }
    let timeout = args.timeout.to_std().unwrap_or(Duration::ZERO);
    eprintln!("triggered run {run}; waiting up to {}s", timeout.as_secs());
    let ended = wait(ctx, run, timeout).await?;
    // A result is JSON whatever the output mode.
    match ended.output() {
        Some(result) => output::json(&result),
        None => Err(unfinished(&ended).into()),
    }
}

/// The run's details once it has ended (completed, failed or cancelled); "timed out" (exit 6)
/// when it has not within `timeout`, a call still under way at the deadline included.
async fn wait(ctx: &Ctx, run: Uuid, timeout: Duration) -> anyhow::Result<V1WorkflowRunDetails> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = None;
    let timed_out = |last: Option<V1TaskStatus>| {
        let state = last.map_or_else(|| "not visible yet".to_owned(), |s| s.to_string());
        Failure::new(
            Code::TimedOut,
            format!("run {run} is still {state} after {}s", timeout.as_secs()),
        )
    };
    loop {
        let Ok(answer) = tokio::time::timeout_at(deadline, ctx.rest.runs().get(run)).await else {
            return Err(timed_out(last).into());
        };
        match answer {
            Ok(details) if ended(details.run.status) => return Ok(details),
            Ok(details) => last = Some(details.run.status),
            // A run shows in the REST API a moment after its trigger answered.
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        if tokio::time::Instant::now() + POLL > deadline {
            return Err(timed_out(last).into());
        }
        tokio::time::sleep(POLL).await;
    }
}

fn ended(status: V1TaskStatus) -> bool {
    matches!(
        status,
        V1TaskStatus::Completed | V1TaskStatus::Failed | V1TaskStatus::Cancelled
    )
}

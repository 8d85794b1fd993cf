//! `hatchet logs`: a task run's log lines, oldest first.

use hatchet_rest::LogFilter;

use super::{Ctx, all};
use crate::args::LogsArgs;
use crate::output::{self, Table};

/// Prints the task run's lines that the flags select, oldest first.
pub(crate) async fn run(ctx: &Ctx, args: LogsArgs) -> anyhow::Result<()> {
    let filter = LogFilter {
        levels: args.levels.into_iter().map(Into::into).collect(),
        search: args.search,
        attempt: args.attempt,
        ..LogFilter::default()
    };
    let lines = all(ctx.rest.logs().task(args.task, &filter)).await?;
    output::show(ctx.format, &lines, |lines| {
        let mut t = Table::new(&["TIME", "LEVEL", "MESSAGE"]);
        for l in lines {
            t.row([
                l.created_at.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
                l.level.map(|l| l.to_string()).unwrap_or_default(),
                l.message.clone(),
            ]);
        }
        t
    })
}

//! `hatchet rate-limits`: list, delete.

use super::{Ctx, all};
use crate::args::RateLimitsCommand;
use crate::output::{self, Table, time};

/// Runs one `hatchet rate-limits` command.
pub(crate) async fn run(ctx: &Ctx, command: RateLimitsCommand) -> anyhow::Result<()> {
    let limits = ctx.rest.rate_limits();
    match command {
        RateLimitsCommand::List { search } => {
            let rows = all(limits.list(search.as_deref())).await?;
            output::show(ctx.format, &rows, |rows| {
                let mut t = Table::new(&["KEY", "VALUE", "LIMIT", "WINDOW", "LAST REFILL"]);
                for r in rows {
                    t.row([
                        r.key.clone(),
                        r.value.to_string(),
                        r.limit_value.to_string(),
                        r.window.clone(),
                        time(r.last_refill),
                    ]);
                }
                t
            })
        }
        RateLimitsCommand::Delete { key } => {
            limits.delete(&key).await?;
            eprintln!("deleted rate limit {key:?}");
            Ok(())
        }
    }
}

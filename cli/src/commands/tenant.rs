//! `hatchet tenant`: the tenant the token works in.

use super::Ctx;
use crate::output::{self, Table, time};

/// Prints the tenant: a quick check that the token, URL and tenant work together.
pub(crate) async fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let tenant = ctx.rest.tenant().await?;
    output::show(ctx.format, &tenant, |t| {
        Table::fields([
            ("id", t.metadata.id.to_string()),
            ("name", t.name.clone()),
            ("slug", t.slug.clone()),
            ("version", t.version.to_string()),
            ("environment", t.environment.map(|e| e.to_string()).unwrap_or_default()),
            ("created", time(t.metadata.created_at)),
        ])
    })
}

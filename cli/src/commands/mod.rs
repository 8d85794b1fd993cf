//! One module per command; each takes the parsed arguments and prints its results.

mod crons;
mod events;
mod logs;
mod metrics;
mod rate_limits;
mod runs;
mod schedules;
mod tenant;
mod trigger;
mod workers;
mod workflows;

use futures::{Stream, StreamExt as _, TryStreamExt as _};
use hatchet_rest::{Rest, Uuid};
use serde_json::{Map, Value};

use crate::args::{Cli, Command, InputArgs};
use crate::exit::{Code, Failure};
use crate::output::Format;

/// What every command works with: the client, the output mode and the namespace.
pub(crate) struct Ctx {
    pub(crate) rest: Rest,
    pub(crate) format: Format,
    pub(crate) namespace: String,
}

/// Runs the command `cli` names.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = Ctx {
        rest: crate::config::rest(&cli.global)?,
        format: cli.global.output,
        namespace: cli.global.namespace.unwrap_or_default(),
    };
    match cli.command {
        Command::Runs(c) => runs::run(&ctx, c).await,
        Command::Trigger(a) => trigger::run(&ctx, a).await,
        Command::Workflows(c) => workflows::run(&ctx, c).await,
        Command::Workers(c) => workers::run(&ctx, c).await,
        Command::Crons(c) => crons::run(&ctx, c).await,
        Command::Schedules(c) => schedules::run(&ctx, c).await,
        Command::Logs(a) => logs::run(&ctx, a).await,
        Command::Events(c) => events::run(&ctx, c).await,
        Command::RateLimits(c) => rate_limits::run(&ctx, c).await,
        Command::Metrics(c) => metrics::run(&ctx, c).await,
        Command::Tenant => tenant::run(&ctx).await,
    }
}

impl Ctx {
    /// The id of the workflow named `name` in the namespace; an unregistered name is
    /// "not found" (exit 3).
    pub(crate) async fn workflow_id(&self, name: &str) -> anyhow::Result<Uuid> {
        let found = self.rest.workflows().find(name).await?;
        let Some(workflow) = found else {
            let place = match self.namespace.as_str() {
                "" => String::new(),
                ns => format!(" in namespace {ns:?}"),
            };
            return Err(Failure::new(
                Code::NotFound,
                format!("no workflow named {name:?} is registered{place}"),
            )
            .into());
        };
        Ok(workflow.metadata.uuid()?)
    }

    /// The id of the workflow `name` names, if it names one.
    pub(crate) async fn maybe_workflow_id(&self, name: Option<&str>) -> anyhow::Result<Option<Uuid>> {
        match name {
            Some(name) => Ok(Some(self.workflow_id(name).await?)),
            None => Ok(None),
        }
    }

    /// The ids of the workflows named `names`.
    pub(crate) async fn workflow_ids(&self, names: &[String]) -> anyhow::Result<Vec<Uuid>> {
        let mut ids = Vec::with_capacity(names.len());
        for name in names {
            ids.push(self.workflow_id(name).await?);
        }
        Ok(ids)
    }
}

/// At most `limit` rows of `rows`, saying on stderr when there were more.
pub(crate) async fn first<T>(
    rows: impl Stream<Item = hatchet_rest::Result<T>>,
    limit: usize,
    what: &str,
) -> anyhow::Result<Vec<T>> {
    let mut got: Vec<T> = rows.take(limit.saturating_add(1)).try_collect().await?;
    if got.len() > limit {
        got.truncate(limit);
        eprintln!("showing the first {limit} {what}; --limit shows more");
    }
    Ok(got)
}

/// Every row of `rows`.
pub(crate) async fn all<T>(rows: impl Stream<Item = hatchet_rest::Result<T>>) -> anyhow::Result<Vec<T>> {
    Ok(rows.try_collect().await?)
}

impl InputArgs {
    /// The input given inline or in a file (`{}` when neither); a file that is not a JSON
    /// object is bad input (exit 2).
    pub(crate) fn read(&self) -> anyhow::Result<Map<String, Value>> {
        if let Some(input) = &self.input {
            return Ok(input.clone());
        }
        let Some(path) = &self.input_file else {
            return Ok(Map::new());
        };
        let text = if path.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin())
        } else {
            std::fs::read_to_string(path)
        }
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
        crate::parse::input(&text).map_err(|e| Failure::usage(format!("{}: {e}", path.display())).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit;

    #[test]
    fn inputs_come_inline_from_a_file_or_default_to_empty() {
        let dir = std::env::temp_dir().join(format!("hatchet-cli-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.json");
        std::fs::write(&good, r#"{"ms": 5}"#).unwrap();
        let list = dir.join("list.json");
        std::fs::write(&list, "[1, 2]").unwrap();
        let args = |input: Option<&str>, file: Option<&std::path::Path>| InputArgs {
            input: input.map(|i| crate::parse::input(i).unwrap()),
            input_file: file.map(std::path::Path::to_path_buf),
        };

        assert_eq!(args(None, None).read().unwrap(), Map::new());
        assert_eq!(args(Some(r#"{"a": 1}"#), None).read().unwrap()["a"], 1);
        assert_eq!(args(None, Some(&good)).read().unwrap()["ms"], 5);
        for bad in [list.clone(), dir.join("missing.json")] {
            let e = args(None, Some(&bad)).read().unwrap_err();
            assert_eq!(exit::code(&e), Code::Usage, "{e}");
            assert!(e.to_string().contains(&*bad.to_string_lossy()), "names the file: {e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

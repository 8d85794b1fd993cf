//! The command line: global flags, commands and their arguments, with the help text each shows.

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use hatchet_contract::env;
use hatchet_rest::Uuid;
use hatchet_rest::types::{V1LogLineLevel, V1TaskStatus};
use serde_json::{Map, Value};

use crate::output::Format;
use crate::parse;

/// Work with a Hatchet tenant from the shell: runs, workflows, workers, crons, schedules, logs,
/// events, rate limits and metrics, through the engine's REST API.
///
/// Configured as the official SDKs are: the token from HATCHET_CLIENT_TOKEN, and the server URL
/// and tenant from HATCHET_CLIENT_SERVER_URL and HATCHET_CLIENT_TENANT_ID when set, else from
/// the token's claims. Results go to stdout, progress and errors to stderr.
#[derive(Debug, Parser)]
#[command(name = "hatchet", version, after_help = crate::exit::HELP)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Where and how every command works.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub(crate) struct Global {
    /// How results are printed: `table` for people, `json` (the engine's objects; a list is one
    /// array) for scripts.
    #[arg(long, short, global = true, value_enum, default_value_t = Format::Table)]
    pub(crate) output: Format,
    /// The Hatchet namespace workflow names are looked up in (as the SDKs prefix them).
    #[arg(long, global = true, env = env::NAMESPACE)]
    pub(crate) namespace: Option<String>,
    /// The API token (never printed).
    #[arg(long, global = true, env = env::TOKEN, hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// The engine's REST base URL (default: the token's `server_url` claim).
    #[arg(long, global = true, env = env::SERVER_URL)]
    pub(crate) server_url: Option<String>,
    /// The tenant id (default: the token's `sub` claim).
    #[arg(long, global = true, env = env::TENANT_ID)]
    pub(crate) tenant: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List, inspect, replay and cancel workflow runs.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Start a run of a workflow, and optionally wait for its result.
    Trigger(TriggerArgs),
    /// List, inspect and delete registered workflows.
    #[command(subcommand)]
    Workflows(WorkflowsCommand),
    /// List and inspect workers; pause and unpause them.
    #[command(subcommand)]
    Workers(WorkersCommand),
    /// Cron triggers: list, create, inspect, enable, disable, delete.
    #[command(subcommand)]
    Crons(CronsCommand),
    /// Scheduled (one-off) runs: list, create, inspect, reschedule, delete.
    #[command(subcommand)]
    Schedules(SchedulesCommand),
    /// The log lines of a task run, oldest first.
    Logs(LogsArgs),
    /// Events the engine recorded.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Rate limits: list, delete.
    #[command(subcommand)]
    RateLimits(RateLimitsCommand),
    /// Task counts by status, and queue depths.
    #[command(subcommand)]
    Metrics(MetricsCommand),
    /// The tenant the token works in.
    Tenant,
}

/// A run's state, as the filters take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Status {
    Queued,
    Running,
    Completed,
    Cancelled,
    Failed,
}

impl From<Status> for V1TaskStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Queued => V1TaskStatus::Queued,
            Status::Running => V1TaskStatus::Running,
            Status::Completed => V1TaskStatus::Completed,
            Status::Cancelled => V1TaskStatus::Cancelled,
            Status::Failed => V1TaskStatus::Failed,
        }
    }
}

/// A log line's level, as the filter takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl From<Level> for V1LogLineLevel {
    fn from(l: Level) -> Self {
        match l {
            Level::Debug => V1LogLineLevel::Debug,
            Level::Info => V1LogLineLevel::Info,
            Level::Warn => V1LogLineLevel::Warn,
            Level::Error => V1LogLineLevel::Error,
        }
    }
}

/// Which runs `runs list`, and `replay` / `cancel --filter`, act on.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunFilterArgs {
    /// Only runs in this state (repeat for several).
    #[arg(long = "status", value_enum, value_name = "STATUS")]
    pub(crate) statuses: Vec<Status>,
    /// Runs created since: a duration ago (1h, 30m, 2d) or an RFC 3339 time.
    #[arg(long, value_name = "WHEN", default_value = "24h", value_parser = parse::past_now)]
    pub(crate) since: DateTime<Utc>,
    /// Runs created before: a duration ago or an RFC 3339 time.
    #[arg(long, value_name = "WHEN", value_parser = parse::past_now)]
    pub(crate) until: Option<DateTime<Utc>>,
    /// Only runs of this workflow, by name (repeat for several).
    #[arg(long = "workflow", value_name = "NAME")]
    pub(crate) workflows: Vec<String>,
    /// Only runs whose additional metadata has key=value (repeat: all must match).
    #[arg(long = "metadata", value_name = "KEY=VALUE", value_parser = parse::key_value)]
    pub(crate) metadata: Vec<(String, String)>,
}

impl RunFilterArgs {
    /// Whether any flag narrows the runs (`--since` always has a value, so it does not count).
    pub(crate) fn narrows(&self) -> bool {
        !(self.statuses.is_empty() && self.until.is_none() && self.workflows.is_empty() && self.metadata.is_empty())
    }
}

/// What a run carries besides its input: metadata and priority.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunOptionArgs {
    /// Additional metadata key=value the run carries (repeat for several).
    #[arg(long = "metadata", value_name = "KEY=VALUE", value_parser = parse::key_value)]
    pub(crate) metadata: Vec<(String, String)>,
    /// Priority, 1 (lowest) to 3 (highest).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=3))]
    pub(crate) priority: Option<i32>,
}

impl RunOptionArgs {
    /// The options as the REST client takes them (it checks the priority again).
    pub(crate) fn to_options(&self) -> hatchet_rest::RunOptions {
        hatchet_rest::RunOptions {
            metadata: self.metadata.clone(),
            priority: self.priority,
        }
    }
}

/// A run's input, inline or from a file.
#[derive(Debug, Clone, Args)]
pub(crate) struct InputArgs {
    /// The input, a JSON object (default `{}`).
    #[arg(long, value_name = "JSON", value_parser = parse::input, conflicts_with = "input_file")]
    pub(crate) input: Option<Map<String, Value>>,
    /// Read the input (a JSON object) from this file (`-` for stdin).
    #[arg(long, value_name = "PATH")]
    pub(crate) input_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RunsCommand {
    /// List runs, newest first.
    List {
        #[command(flatten)]
        filter: RunFilterArgs,
        /// Show at most this many runs.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// A run's status and tasks (`--output json`: the engine's whole details).
    Get {
        /// The workflow run id.
        id: Uuid,
    },
    /// What a completed run returned (exit 5 if it failed or was cancelled).
    Result {
        /// The workflow run id.
        id: Uuid,
    },
    /// Run runs again from their failed or cancelled tasks.
    Replay(BulkArgs),
    /// Cancel runs.
    Cancel(BulkArgs),
}

/// The runs a bulk action takes: ids, or every run a filter matches.
#[derive(Debug, Clone, Args)]
pub(crate) struct BulkArgs {
    /// Workflow run ids.
    #[arg(value_name = "RUN_ID", required_unless_present = "filter", conflicts_with = "filter")]
    pub(crate) ids: Vec<Uuid>,
    /// Act on every run the filter flags match (listed first, then acted on in chunks).
    #[arg(long)]
    pub(crate) filter: bool,
    #[command(flatten)]
    pub(crate) matching: RunFilterArgs,
    /// Only list the runs that would be acted on.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TriggerArgs {
    /// The workflow's name (in the namespace).
    pub(crate) workflow: String,
    #[command(flatten)]
    pub(crate) input: InputArgs,
    #[command(flatten)]
    pub(crate) options: RunOptionArgs,
    /// Wait for the run to end and print its result (exit 5 if it failed or was cancelled).
    #[arg(long)]
    pub(crate) wait: bool,
    /// How long --wait waits (exit 6 when it runs out).
    #[arg(long, requires = "wait", value_name = "DURATION", default_value = "60s", value_parser = parse::duration)]
    pub(crate) timeout: chrono::Duration,
}

#[derive(Debug, Subcommand)]
pub(crate) enum WorkflowsCommand {
    /// List the namespace's workflows.
    List {
        /// Only workflows whose name contains this.
        #[arg(long)]
        name: Option<String>,
    },
    /// A workflow by id.
    Get { id: Uuid },
    /// Delete a workflow (its versions, crons and schedules).
    Delete { id: Uuid },
}

#[derive(Debug, Subcommand)]
pub(crate) enum WorkersCommand {
    /// List the tenant's workers.
    List,
    /// A worker by id: status, slots, actions, labels.
    Get { id: Uuid },
    /// Stop the engine assigning new runs to a worker (running ones go on).
    Pause { id: Uuid },
    /// Let the engine assign runs to a worker again.
    Unpause { id: Uuid },
}

#[derive(Debug, Subcommand)]
pub(crate) enum CronsCommand {
    /// List cron triggers.
    List {
        /// Only the triggers of this workflow (by name).
        #[arg(long, value_name = "NAME")]
        workflow: Option<String>,
    },
    /// Run a workflow on a cron expression (five fields, UTC).
    Create {
        /// The workflow's name.
        workflow: String,
        /// The trigger's name.
        #[arg(long)]
        name: String,
        /// The cron expression, e.g. "*/5 * * * *".
        #[arg(long)]
        expression: String,
        #[command(flatten)]
        input: InputArgs,
        #[command(flatten)]
        options: RunOptionArgs,
    },
    /// A cron trigger by id.
    Get { id: Uuid },
    /// Turn a cron trigger on.
    Enable { id: Uuid },
    /// Turn a cron trigger off (it starts no runs until enabled).
    Disable { id: Uuid },
    /// Delete a cron trigger.
    Delete { id: Uuid },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SchedulesCommand {
    /// List scheduled runs.
    List {
        /// Only the schedules of this workflow (by name).
        #[arg(long, value_name = "NAME")]
        workflow: Option<String>,
    },
    /// Run a workflow once at a given time.
    Create {
        /// The workflow's name.
        workflow: String,
        /// When: an RFC 3339 time, or +DURATION from now (+10m).
        #[arg(long, value_name = "WHEN", value_parser = parse::future_now)]
        at: DateTime<Utc>,
        #[command(flatten)]
        input: InputArgs,
        #[command(flatten)]
        options: RunOptionArgs,
    },
    /// A scheduled run by id.
    Get { id: Uuid },
    /// Move a scheduled run to another time (before it has run).
    Reschedule {
        id: Uuid,
        /// When: an RFC 3339 time, or +DURATION from now.
        #[arg(long, value_name = "WHEN", value_parser = parse::future_now)]
        at: DateTime<Utc>,
    },
    /// Delete a scheduled run (it will not run).
    Delete { id: Uuid },
}

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// The task run id (`hatchet runs get` lists a run's tasks).
    pub(crate) task: Uuid,
    /// Only lines at this level (repeat for several).
    #[arg(long = "level", value_enum, value_name = "LEVEL")]
    pub(crate) levels: Vec<Level>,
    /// Only lines containing this text (case-insensitive).
    #[arg(long)]
    pub(crate) search: Option<String>,
    /// Only lines of this attempt (1 is the first).
    #[arg(long)]
    pub(crate) attempt: Option<i64>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EventsCommand {
    /// List events, newest first.
    List {
        /// Only events with this key, as stored (a namespaced client's pushes start with its
        /// namespace, e.g. `team_order:placed`); repeat for several.
        #[arg(long = "key", value_name = "KEY")]
        keys: Vec<String>,
        /// Events seen since: a duration ago or an RFC 3339 time.
        #[arg(long, value_name = "WHEN", default_value = "24h", value_parser = parse::past_now)]
        since: DateTime<Utc>,
        /// Show at most this many events.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// An event by id: key, payload, metadata and the runs it triggered.
    Get { id: Uuid },
}

#[derive(Debug, Subcommand)]
pub(crate) enum RateLimitsCommand {
    /// List rate limits with their window, limit and current value.
    List {
        /// Only keys containing this.
        #[arg(long)]
        search: Option<String>,
    },
    /// Delete a rate limit (the engine refuses while a registered task consumes it).
    Delete { key: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum MetricsCommand {
    /// How many task runs are in each status.
    Tasks {
        /// Task runs created since: a duration ago or an RFC 3339 time.
        #[arg(long, value_name = "WHEN", default_value = "24h", value_parser = parse::past_now)]
        since: DateTime<Utc>,
    },
    /// How many task runs wait in each queue.
    Queues,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("hatchet").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn statuses_and_levels_map_onto_the_engines() {
        let cli = parse(&["runs", "list", "--status", "failed", "--status", "queued"]).unwrap();
        let Command::Runs(RunsCommand::List { filter, limit }) = cli.command else {
            panic!("runs list")
        };
        let statuses: Vec<V1TaskStatus> = filter.statuses.into_iter().map(Into::into).collect();
        assert_eq!(statuses, [V1TaskStatus::Failed, V1TaskStatus::Queued]);
        assert_eq!(limit, 100);
        for (text, want) in [
            ("queued", V1TaskStatus::Queued),
            ("running", V1TaskStatus::Running),
            ("completed", V1TaskStatus::Completed),
            ("cancelled", V1TaskStatus::Cancelled),
            ("failed", V1TaskStatus::Failed),
        ] {
            assert_eq!(V1TaskStatus::from(Status::from_str(text, false).unwrap()), want);
        }
        for (text, want) in [
            ("debug", V1LogLineLevel::Debug),
            ("info", V1LogLineLevel::Info),
            ("warn", V1LogLineLevel::Warn),
            ("error", V1LogLineLevel::Error),
        ] {
            assert_eq!(V1LogLineLevel::from(Level::from_str(text, false).unwrap()), want);
        }
    }

    #[test]
    fn bad_values_are_usage_errors() {
        let cases: &[&[&str]] = &[
            &["runs", "list", "--status", "done"],
            &["runs", "list", "--since", "yesterday"],
            &["runs", "list", "--metadata", "batch"],
            &["runs", "get", "not-a-uuid"],
            &["runs", "replay"],
            &["runs", "replay", "--filter", "00000000-0000-0000-0000-000000000007"],
            &["trigger", "wf", "--input", "[1,2]"],
            &["trigger", "wf", "--priority", "4"],
            &["trigger", "wf", "--timeout", "10s"],
            &["trigger", "wf", "--input", "{}", "--input-file", "x.json"],
            &["schedules", "create", "wf", "--at", "10m"],
            &["--output", "yaml", "tenant"],
        ];
        for args in cases {
            let e = parse(args).expect_err(&format!("{args:?} is refused"));
            assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
        }
    }

    #[test]
    fn bulk_actions_take_ids_or_a_filter() {
        let cli = parse(&["runs", "cancel", "--filter", "--metadata", "batch=7", "--dry-run"]).unwrap();
        let Command::Runs(RunsCommand::Cancel(bulk)) = cli.command else {
            panic!("runs cancel")
        };
        assert!(bulk.filter && bulk.dry_run && bulk.ids.is_empty() && bulk.matching.narrows());
        assert_eq!(bulk.matching.metadata, [("batch".to_owned(), "7".to_owned())]);
        let cli = parse(&["runs", "replay", "00000000-0000-0000-0000-000000000007"]).unwrap();
        let Command::Runs(RunsCommand::Replay(bulk)) = cli.command else {
            panic!("runs replay")
        };
        assert_eq!(bulk.ids, [Uuid::from_u128(7)]);
        assert!(!bulk.matching.narrows());
    }
}

//! `hatchet-worker`: the fleet worker image's entry point. Serves the fleet tasks with health
//! probes, metrics and drain; configured only by environment variables. `burst` triggers runs
//! and prints their results (load from a shell).

mod fleet;

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use hatchet_contract::{DEFAULT_DRAIN_TIMEOUT_SECONDS, DEFAULT_DURABLE_SLOTS, DEFAULT_SLOTS, env};
use hatchet_worker::telemetry::{engine_logs, otel};
use hatchet_worker::{Client, ClientConfig, Exit, TriggerOptions, Worker};
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

#[derive(Parser)]
#[command(name = "hatchet-worker", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Worker name (the operator sets the pod name).
    #[arg(long, env = env::WORKER_NAME, default_value = "hatchet-worker")]
    name: String,
    /// Tasks run at once.
    #[arg(long, env = env::WORKER_SLOTS, default_value_t = DEFAULT_SLOTS as usize)]
    slots: usize,
    /// Durable tasks held at once, waiting ones included.
    #[arg(long, env = env::WORKER_DURABLE_SLOTS, default_value_t = DEFAULT_DURABLE_SLOTS as usize)]
    durable_slots: usize,
    /// Longest a drain waits for running tasks before reporting them failed.
    #[arg(long, env = env::WORKER_DRAIN_TIMEOUT_SECONDS, default_value_t = u64::from(DEFAULT_DRAIN_TIMEOUT_SECONDS))]
    drain_timeout_seconds: u64,
    /// How long the engine may refuse the token it accepted before (its database away) before
    /// the worker gives up.
    #[arg(long, env = "HATCHET_WORKER_AUTH_OUTAGE_GRACE_SECONDS", default_value_t = 300)]
    auth_outage_grace_seconds: u64,
    /// Log level filter (e.g. info, debug, hatchet_worker=debug).
    #[arg(long, env = "HATCHET_CLIENT_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Log format.
    #[arg(long, env = "HATCHET_CLIENT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Forward the tasks' own log lines (INFO and above) to the engine, shown beside the run.
    #[arg(long, env = "HATCHET_WORKER_FORWARD_LOGS", default_value_t = true, action = clap::ArgAction::Set)]
    forward_logs: bool,
    /// Export a span per task attempt over OTLP: to the engine (which shows them beside the
    /// run) or to the collector the standard `OTEL_EXPORTER_OTLP_*` variables name.
    #[arg(long, env = "HATCHET_WORKER_OTEL_EXPORT", value_enum, default_value_t = OtelExport::None)]
    otel_export: OtelExport,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OtelExport {
    None,
    Engine,
    Collector,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Trigger `count` runs of a fleet workflow, wait for them and print the results.
    Burst {
        #[arg(long, default_value = fleet::SLEEP)]
        workflow: String,
        #[arg(long, default_value_t = 20)]
        count: usize,
        /// JSON input of every run.
        #[arg(long, default_value = r#"{"ms": 500}"#)]
        input: String,
    },
}

impl Cli {
    async fn run(self) -> anyhow::Result<std::process::ExitCode> {
        let Cli {
            command,
            name,
            slots,
            durable_slots,
            drain_timeout_seconds,
            auth_outage_grace_seconds,
            log_level,
            log_format,
            forward_logs,
            otel_export,
        } = self;
        let config = ClientConfig::from_env().context("reading the HATCHET_CLIENT_* environment")?;
        let client = Client::new(config)?;
        let _flush_spans = init_logs(&log_level, log_format, &client, forward_logs, otel_export)?;
        match command {
            Some(Command::Burst { workflow, count, input }) => burst(client, &workflow, count, &input).await,
            None => {
                let (drain, grace) = (
                    Duration::from_secs(drain_timeout_seconds),
                    Duration::from_secs(auth_outage_grace_seconds),
                );
                serve(client, &name, (slots, durable_slots), drain, grace).await
            }
        }
    }
}

async fn serve(
    client: Client,
    name: &str,
    (slots, durable_slots): (usize, usize),
    drain: Duration,
    auth_grace: Duration,
) -> anyhow::Result<std::process::ExitCode> {
    let mut builder = Worker::builder(client, name)
        .slots(slots)
        .durable_slots(durable_slots)
        .drain_timeout(drain)
        .auth_outage_grace(auth_grace);
    for wf in fleet::workflows(name) {
        builder = builder.workflow(wf);
    }
    match builder.build()?.run().await? {
        Exit::Drained => Ok(std::process::ExitCode::SUCCESS),
        Exit::DeadlineExceeded { abandoned } => {
            tracing::error!(
                abandoned,
                "drain deadline passed; abandoned tasks were reported failed for retry"
            );
            Ok(std::process::ExitCode::from(3))
        }
    }
}

async fn burst(client: Client, workflow: &str, count: usize, input: &str) -> anyhow::Result<std::process::ExitCode> {
    let input: serde_json::Value = serde_json::from_str(input).context("--input is not JSON")?;
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..count {
        let (c, wf, input) = (client.clone(), workflow.to_owned(), input.clone());
        set.spawn(async move {
            (
                i,
                c.run(&wf, &input, TriggerOptions::default().metadata("burst_index", i))
                    .await,
            )
        });
    }
    let mut results = set.join_all().await;
    results.sort_by_key(|(i, _)| *i);
    let mut failed = 0;
    for (i, r) in &results {
        match r {
            Ok(out) => println!("run {i:>3}: {}", serde_json::to_string(out)?),
            Err(e) => {
                failed += 1;
                println!("run {i:>3}: FAILED {e}");
            }
        }
    }
    println!(
        "{} runs of {workflow} in {:.1}s: {} succeeded, {failed} failed",
        count,
        started.elapsed().as_secs_f64(),
        count - failed
    );
    Ok(if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

/// Installs the process's subscriber: logs on stderr, task lines forwarded to the engine, and
/// spans exported; the guard that flushes the spans at exit.
fn init_logs(
    level: &str,
    format: LogFormat,
    client: &Client,
    forward_logs: bool,
    otel_export: OtelExport,
) -> anyhow::Result<Option<otel::FlushOnDrop>> {
    let filter = tracing_subscriber::EnvFilter::try_new(level).context("HATCHET_CLIENT_LOG_LEVEL")?;
    // Colours only on a terminal: container logs and files get plain text.
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let stderr = match format {
        LogFormat::Text => stderr.boxed(),
        LogFormat::Json => stderr.json().boxed(),
    };
    let destination = match otel_export {
        OtelExport::None => None,
        OtelExport::Engine => Some(otel::Destination::Engine),
        OtelExport::Collector => Some(otel::Destination::Collector),
    };
    let (spans, flush) = match destination {
        Some(d) => {
            let (layer, flush) = otel::layer(client, "hatchet-worker", d).context("the OTLP span exporter")?;
            (Some(layer), Some(flush))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(stderr.with_filter(filter))
        .with(forward_logs.then(|| engine_logs::layer(client).with_filter(LevelFilter::INFO)))
        .with(spans.map(|s| s.with_filter(LevelFilter::INFO)))
        .init();
    Ok(flush)
}

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    // The program, not the library, picks the process's TLS provider: the workspace's one.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    Cli::parse().run().await
}

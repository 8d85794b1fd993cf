//! A side-by-side benchmark (not a test) of our worker runtime against the official Go and
//! Python SDK workers on the local engine: the same three tasks, the same slots, the same
//! client triggering every run, one worker at a time. Prints a table of figures read from
//! the engine's database and from /proc, with each SDK's figure divided by ours.
//!
//! Run it through `tests/bench/run`, which brings up the engine and builds the workers.
//! `sdk-bench worker` is our worker under test (started by the bench itself).

mod engine;
mod load;
mod peers;
mod phase;
mod procs;
mod report;
mod run;
mod stats;
mod table;
mod worker;

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use hatchet_worker::Client;

use peers::{Kind, Programs};
use run::{Bench, Plan};

#[derive(Parser)]
#[command(about = "Our Hatchet worker against the official Go and Python SDK workers, side by side")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Workers to measure, in order; the first is the one the ratios divide by.
    #[arg(long, value_delimiter = ',', default_value = "rust,go,python")]
    workers: Vec<String>,
    /// Slots of every worker (the no-op burst and the paced runs).
    #[arg(long, default_value_t = 100)]
    slots: usize,
    /// No-op runs triggered at once.
    #[arg(long, default_value_t = 1000)]
    burst: usize,
    /// Runs per second of the 10 ms task.
    #[arg(long, default_value_t = 20.0)]
    paced_rate: f64,
    /// How many paced runs.
    #[arg(long, default_value_t = 200)]
    paced_count: usize,
    /// 20 s sleeping tasks run at once (the worker gets this many slots for them).
    #[arg(long, default_value_t = 1000)]
    sleepers: usize,
    /// Slots of the worker running the sleepers (default: as many as sleepers).
    #[arg(long)]
    sleeper_slots: Option<usize>,
    /// Triggers in flight at once during a burst.
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    /// Seconds a fresh worker is left idle before its memory is read.
    #[arg(long, default_value_t = 3)]
    settle_seconds: u64,
    /// The Go SDK worker's binary (tests/bench/run builds it).
    #[arg(long, env = "BENCH_GO_WORKER")]
    go_worker: Option<PathBuf>,
    /// The Python interpreter of the venv holding hatchet-sdk.
    #[arg(long, env = "HATCHET_PYTHON_SDK")]
    python: Option<PathBuf>,
    /// The Python SDK worker script.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../bench/python_worker.py"))]
    python_worker: PathBuf,
    /// The engine's database.
    #[arg(
        long,
        env = "HATCHET_DATABASE_URL",
        default_value = "postgresql://hatchet:hatchet@127.0.0.1:55432/hatchet?sslmode=disable"
    )]
    database_url: String,
    /// Where the workers' logs and the per-task timings (CSV) go.
    #[arg(long, env = "BENCH_OUT_DIR", default_value = "/tmp/sdk-bench")]
    out_dir: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Our worker under test (started by the bench).
    Worker {
        #[arg(long)]
        prefix: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        slots: usize,
    },
}

/// The per-task engine timestamps of a phase, one CSV line per task, for a closer look.
fn write_csv(path: &std::path::Path, tasks: &[engine::TaskTimes]) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(f, "created,assigned,sent,started,finished,completed")?;
    let o = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v:.6}"));
    for t in tasks {
        writeln!(
            f,
            "{:.6},{},{},{},{},{}",
            t.created,
            o(t.assigned),
            o(t.sent),
            o(t.started),
            o(t.finished),
            o(t.completed)
        )?;
    }
    Ok(())
}

async fn bench(cli: Cli) -> anyhow::Result<()> {
    let kinds = cli
        .workers
        .iter()
        .map(|w| Kind::parse(w))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let client = Client::from_env().context("source tests/env/.run/env (tests/bench/run does)")?;
    let db = engine::Db::new(cli.database_url.clone(), client.config().tenant_id.clone())?;
    let need =
        |p: Option<PathBuf>, what: &str| p.with_context(|| format!("{what} is not set (tests/bench/run sets it)"));
    let programs = Programs {
        go_worker: if kinds.contains(&Kind::Go) {
            need(cli.go_worker, "BENCH_GO_WORKER")?
        } else {
            PathBuf::new()
        },
        python: if kinds.contains(&Kind::Python) {
            need(cli.python, "HATCHET_PYTHON_SDK")?
        } else {
            PathBuf::new()
        },
        python_worker: cli.python_worker,
        log_dir: cli.out_dir.clone(),
    };
    let plan = Plan {
        slots: cli.slots,
        burst: cli.burst,
        paced_rate: cli.paced_rate,
        paced_count: cli.paced_count,
        sleepers: cli.sleepers,
        sleeper_slots: cli.sleeper_slots.unwrap_or(cli.sleepers),
        in_flight: cli.in_flight,
        settle: Duration::from_secs(cli.settle_seconds),
    };
    let bench = Bench {
        client: &client,
        db: &db,
        programs: &programs,
        plan: &plan,
        ticks: procs::clock_ticks(),
        tag: format!("{}-{}", std::process::id(), peers::now_epoch() as u64 % 100_000),
    };
    let mut all = Vec::new();
    for kind in &kinds {
        let started = std::time::Instant::now();
        eprintln!("[bench] {}: measuring", kind.label());
        let f = bench
            .measure(*kind)
            .await
            .with_context(|| format!("measuring {}", kind.label()))?;
        for (phase, tasks) in &f.raw {
            write_csv(&cli.out_dir.join(format!("{}-{phase}.csv", kind.prefix())), tasks)?;
        }
        eprintln!(
            "[bench] {}: done in {:.0} s",
            kind.label(),
            started.elapsed().as_secs_f64()
        );
        all.push(f);
    }
    let columns: Vec<&str> = kinds.iter().map(|k| k.label()).collect();
    println!(
        "\nslots {}, burst {} no-ops, paced {}/s × {} of the 10 ms task, {} × 20 s sleeps on {} slots; one worker at a time\n",
        plan.slots, plan.burst, plan.paced_rate, plan.paced_count, plan.sleepers, plan.sleeper_slots
    );
    print!("{}", table::render(&columns, &report::rows(&plan, &all)));
    println!("\n{}", report::LEGEND);
    println!("\n{}", report::conditions(&columns, &all));
    println!("\nworker logs and per-task timings (CSV): {}", cli.out_dir.display());
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Worker { prefix, name, slots }) => {
            let filter = std::env::var("HATCHET_CLIENT_LOG_LEVEL").unwrap_or_else(|_| "warn".into());
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::try_new(filter)?)
                .with_writer(std::io::stderr)
                .init();
            worker::serve(&prefix, &name, slots).await
        }
        None => bench(cli).await,
    }
}

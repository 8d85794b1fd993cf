//! Benchmark (not a test): memory of the `hatchet-worker` binary idle and with 1,000
//! concurrent sleeping tasks, against the local engine.
//!
//! ```sh
//! cargo build --release -p hatchet-worker --bin hatchet-worker --example bench_rss
//! source tests/env/.run/env && target/release/examples/bench_rss [TASKS]
//! ```

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hatchet_worker::{Client, ClientConfig, TriggerOptions};

fn proc_status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("{field} not in /proc/{pid}/status"))?;
    Ok(line.split_whitespace().nth(1).context("value")?.parse()?)
}

async fn status(port: u16) -> anyhow::Result<serde_json::Value> {
    Ok(reqwest::get(format!("http://127.0.0.1:{port}/status"))
        .await?
        .json()
        .await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tasks: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .and_then(|p| p.parent())
        .context("target dir")?
        .join("hatchet-worker");
    if !bin.exists() {
        bail!(
            "{} not found: cargo build --release -p hatchet-worker --bin hatchet-worker",
            bin.display()
        );
    }
    let namespace = format!("bench{}", std::process::id());
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut child = Command::new(&bin)
        .env("HATCHET_CLIENT_NAMESPACE", &namespace)
        .env("HATCHET_CLIENT_WORKER_HEALTHCHECK_PORT", port.to_string())
        .env("HATCHET_CLIENT_WORKER_HEALTHCHECK_BIND_ADDRESS", "127.0.0.1")
        .env("HATCHET_WORKER_NAME", "bench")
        .env("HATCHET_WORKER_SLOTS", tasks.to_string())
        .env("HATCHET_WORKER_DRAIN_TIMEOUT_SECONDS", "5")
        .env("HATCHET_CLIENT_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .spawn()
        .context("start hatchet-worker (source tests/env/.run/env first)")?;
    let pid = child.id();

    let ready_by = Instant::now() + Duration::from_secs(60);
    while !reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        if Instant::now() > ready_by {
            bail!("worker not ready within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = proc_status_kib(pid, "VmRSS:")?;

    let mut config = ClientConfig::from_env()?;
    config.namespace = hatchet_worker::config::normalize_namespace(&namespace);
    let client = Client::new(config)?;
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let c = client.clone();
        set.spawn(async move {
            c.trigger(
                "fleet-sleep",
                &serde_json::json!({"ms": 60_000}),
                TriggerOptions::default(),
            )
            .await
        });
    }
    let runs: Vec<_> = set.join_all().await.into_iter().collect::<Result<_, _>>()?;
    let triggered = started.elapsed();

    let mut running = 0;
    while started.elapsed() < Duration::from_secs(120) {
        running = status(port).await?["running"].as_array().map_or(0, Vec::len);
        if running >= tasks {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let all_running = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let loaded = proc_status_kib(pid, "VmRSS:")?;
    let peak = proc_status_kib(pid, "VmHWM:")?;

    println!("hatchet-worker memory ({} slots)", tasks);
    println!(
        "  idle RSS:                           {:>8.1} MiB",
        idle as f64 / 1024.0
    );
    println!(
        "  RSS with {running:>4} sleeping tasks:       {:>8.1} MiB",
        loaded as f64 / 1024.0
    );
    println!(
        "  peak RSS (VmHWM):                   {:>8.1} MiB",
        peak as f64 / 1024.0
    );
    println!(
        "  per running task:                   {:>8.1} KiB",
        (loaded.saturating_sub(idle)) as f64 / running.max(1) as f64
    );
    println!(
        "  triggered {tasks} runs in {:.1}s; {running} running after {:.1}s",
        triggered.as_secs_f64(),
        all_running.as_secs_f64()
    );

    for r in &runs {
        let _ = client.cancel(&r.id).await;
    }
    Command::new("kill").args(["-TERM", &pid.to_string()]).status()?;
    let _ = child.wait();
    Ok(())
}

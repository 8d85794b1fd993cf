//! Load from the one client every worker is measured with: bursts (as fast as the client
//! triggers, a bounded number of triggers in flight) and paced runs, and waiting on the
//! engine's database until a phase's tasks are done.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hatchet_worker::{Client, TriggerOptions};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::engine::{Db, TaskTimes};
use crate::peers::Running;

const POLL: Duration = Duration::from_millis(250);
/// How long after a phase's tasks are done the bench waits for the rest of their events.
const EVENTS_WITHIN: Duration = Duration::from_secs(10);

fn has_all_events(t: &TaskTimes) -> bool {
    t.assigned.is_some() && t.started.is_some() && t.finished.is_some() && t.completed.is_some()
}

async fn trigger_one(client: Client, workflow: String) -> anyhow::Result<()> {
    client
        .trigger(&workflow, &serde_json::json!({}), TriggerOptions::default())
        .await
        .with_context(|| format!("triggering {workflow}"))?;
    Ok(())
}

async fn joined(mut set: JoinSet<anyhow::Result<()>>) -> anyhow::Result<()> {
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(())
}

/// Triggers `count` runs of `workflow`, at most `in_flight` triggers at a time.
pub(crate) async fn burst(client: &Client, workflow: &str, count: usize, in_flight: usize) -> anyhow::Result<()> {
    let permits = Arc::new(Semaphore::new(in_flight.max(1)));
    let mut set = JoinSet::new();
    for _ in 0..count {
        let permit = Arc::clone(&permits).acquire_owned().await?;
        let (c, wf) = (client.clone(), workflow.to_owned());
        set.spawn(async move {
            let r = trigger_one(c, wf).await;
            drop(permit);
            r
        });
    }
    joined(set).await
}

/// Triggers `count` runs of `workflow`, `per_second` of them each second.
pub(crate) async fn paced(client: &Client, workflow: &str, count: usize, per_second: f64) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
    let mut set = JoinSet::new();
    for _ in 0..count {
        tick.tick().await;
        set.spawn(trigger_one(client.clone(), workflow.to_owned()));
    }
    joined(set).await
}

/// Triggers one run of `workflow` once the engine knows it (the first time, its worker
/// registers it just after starting; a run triggered before is accepted, then dropped).
pub(crate) async fn probe(client: &Client, db: &Db, workflow: &str, within: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + within;
    while !db.workflow_exists(workflow)? {
        if Instant::now() > until {
            bail!("{workflow} not registered after {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    trigger_one(client.clone(), workflow.to_owned()).await
}

/// A phase's tasks as the engine recorded them, and the most it showed at once while the
/// bench polled it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Observed {
    pub(crate) tasks: Vec<TaskTimes>,
    /// Most tasks shown RUNNING in the engine's run list.
    pub(crate) max_running: usize,
    /// Most tasks holding a slot in the engine's scheduler.
    pub(crate) max_held: usize,
}

/// Waits until `expected` tasks of `workflow` created since `since` are done and carry their
/// finishing timestamps, calling `each` on every poll.
pub(crate) async fn wait_done(
    db: &Db,
    worker: &mut Running,
    workflow: &str,
    since: f64,
    expected: usize,
    within: Duration,
    mut each: impl FnMut(),
) -> anyhow::Result<Observed> {
    let until = Instant::now() + within;
    let mut seen = Observed::default();
    let mut all_done_at = None;
    loop {
        each();
        let p = db.progress(workflow, since)?;
        seen.max_running = seen.max_running.max(p.running);
        seen.max_held = seen.max_held.max(p.held);
        if p.done >= expected {
            // The engine writes its events in batches, some after the task is done: wait a
            // little for all of them, then take what there is.
            let t = db.timings(workflow, since)?;
            let complete = t.iter().filter(|t| has_all_events(t)).count();
            let done_at = *all_done_at.get_or_insert_with(Instant::now);
            if complete >= expected || done_at.elapsed() > EVENTS_WITHIN {
                seen.tasks = t;
                return Ok(seen);
            }
        }
        if !worker.alive() {
            bail!(
                "the worker {} exited ({} of {expected} tasks done)",
                worker.name,
                p.done
            );
        }
        if Instant::now() > until {
            bail!("{} of {expected} {workflow} tasks done after {within:?}", p.done);
        }
        tokio::time::sleep(POLL).await;
    }
}

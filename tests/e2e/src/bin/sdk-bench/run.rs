//! One worker under test, measured in two lives: the first (the bench's slots) for start-up,
//! idle memory, the no-op burst and the paced 10 ms runs; the second (one slot per sleeper)
//! for the sleeping tasks' memory and how their ends are recorded.

use std::time::Duration;

use anyhow::Context as _;
use hatchet_worker::Client;

use crate::engine::{Db, TaskTimes};
use crate::load;
use crate::peers::{Kind, Programs, Running, now_epoch};
use crate::phase::{Phase, observed};
use crate::procs::{TreeSample, engine_process, load_average, sample};

/// The load, the same for every worker.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) slots: usize,
    pub(crate) burst: usize,
    pub(crate) paced_rate: f64,
    pub(crate) paced_count: usize,
    pub(crate) sleepers: usize,
    /// Slots of the worker running the sleepers (as many as sleepers: all sleep at once).
    pub(crate) sleeper_slots: usize,
    pub(crate) in_flight: usize,
    pub(crate) settle: Duration,
}

/// Everything measured of one worker.
#[derive(Debug, Clone, Default)]
pub(crate) struct Figures {
    /// Spawn to the engine's `"Worker"."createdAt"`.
    pub(crate) to_registered: Option<f64>,
    /// Spawn to the first task (triggered at spawn) assigned by the engine / started.
    pub(crate) to_first_assigned: Option<f64>,
    pub(crate) to_first_started: Option<f64>,
    pub(crate) idle: TreeSample,
    pub(crate) burst: Phase,
    pub(crate) burst_cpu_s: f64,
    pub(crate) paced: Phase,
    pub(crate) paced_cpu_s: f64,
    pub(crate) sleepers_idle: TreeSample,
    pub(crate) sleepers: Phase,
    pub(crate) peak_rss_kib: u64,
    pub(crate) peak_hwm_kib: u64,
    pub(crate) raw: Vec<(&'static str, Vec<TaskTimes>)>,
    /// The machine's 1-minute load average when the measurement began and ended.
    pub(crate) load: (Option<f64>, Option<f64>),
    /// The engine process changed while this worker was measured (its figures are suspect).
    pub(crate) engine_restarted: bool,
    /// The slots each life registered, as the engine recorded them.
    pub(crate) slot_configs: Vec<String>,
}

pub(crate) struct Bench<'a> {
    pub(crate) client: &'a Client,
    pub(crate) db: &'a Db,
    pub(crate) programs: &'a Programs,
    pub(crate) plan: &'a Plan,
    pub(crate) ticks: f64,
    pub(crate) tag: String,
}

const START_WITHIN: Duration = Duration::from_secs(90);
const PHASE_WITHIN: Duration = Duration::from_secs(240);
const STOP_GRACE: Duration = Duration::from_secs(15);

impl Bench<'_> {
    fn workflow(kind: Kind, task: &str) -> String {
        format!("{}-{task}", kind.prefix())
    }

    /// Starts a worker and waits until a no-op triggered right after the spawn has run on it.
    async fn start(&self, kind: Kind, life: &str, slots: usize) -> anyhow::Result<(Running, load::Observed)> {
        let name = format!("{}-{}-{life}", kind.prefix(), self.tag);
        let noop = Self::workflow(kind, "noop");
        let mut w = self.programs.spawn(kind, &name, slots)?;
        let since = w.spawned_at;
        load::probe(self.client, self.db, &noop, START_WITHIN).await?;
        let t = load::wait_done(self.db, &mut w, &noop, since, 1, START_WITHIN, || {}).await?;
        Ok((w, t))
    }

    pub(crate) async fn measure(&self, kind: Kind) -> anyhow::Result<Figures> {
        let engine = engine_process();
        let load = load_average();
        let mut f = self.measure_lives(kind).await?;
        f.load = (load, load_average());
        f.engine_restarted = engine.is_none() || engine != engine_process();
        Ok(f)
    }

    async fn measure_lives(&self, kind: Kind) -> anyhow::Result<Figures> {
        let mut f = Figures::default();
        let plan = self.plan;

        let (mut w, probe) = self.start(kind, "a", plan.slots).await?;
        let registered = self
            .db
            .worker_registered(&w.name)?
            .context("worker ran a task but is not registered")?;
        f.to_registered = Some(registered - w.spawned_at);
        f.slot_configs.push(self.db.slot_config(&w.name)?);
        let first = |e: fn(&TaskTimes) -> Option<f64>| probe.tasks.iter().filter_map(e).reduce(f64::min);
        f.to_first_assigned = first(|t| t.assigned).map(|a| a - w.spawned_at);
        f.to_first_started = first(|t| t.started).map(|s| s - w.spawned_at);
        tokio::time::sleep(plan.settle).await;
        f.idle = sample(w.pid, self.ticks);

        let noop = Self::workflow(kind, "noop");
        let (since, before) = (now_epoch(), sample(w.pid, self.ticks));
        load::burst(self.client, &noop, plan.burst, plan.in_flight).await?;
        let o = load::wait_done(self.db, &mut w, &noop, since, plan.burst, PHASE_WITHIN, || {}).await?;
        f.burst_cpu_s = sample(w.pid, self.ticks).cpu_s - before.cpu_s;
        f.burst = observed(&o);
        f.raw.push(("burst", o.tasks));
        // The engine is still writing the burst's events for a while; let it settle.
        tokio::time::sleep(plan.settle).await;

        let sleep10 = Self::workflow(kind, "sleep10ms");
        let (since, before) = (now_epoch(), sample(w.pid, self.ticks));
        load::paced(self.client, &sleep10, plan.paced_count, plan.paced_rate).await?;
        let o = load::wait_done(self.db, &mut w, &sleep10, since, plan.paced_count, PHASE_WITHIN, || {}).await?;
        f.paced_cpu_s = sample(w.pid, self.ticks).cpu_s - before.cpu_s;
        f.paced = observed(&o);
        f.raw.push(("paced", o.tasks));
        w.stop(STOP_GRACE);

        let (mut w, _) = self.start(kind, "b", plan.sleeper_slots).await?;
        f.slot_configs.push(self.db.slot_config(&w.name)?);
        tokio::time::sleep(plan.settle).await;
        f.sleepers_idle = sample(w.pid, self.ticks);
        let sleep20 = Self::workflow(kind, "sleep20s");
        let since = now_epoch();
        load::burst(self.client, &sleep20, plan.sleepers, plan.in_flight).await?;
        let (pid, ticks) = (w.pid, self.ticks);
        let mut peak = (0, 0);
        let o = load::wait_done(self.db, &mut w, &sleep20, since, plan.sleepers, PHASE_WITHIN, || {
            let s = sample(pid, ticks);
            peak = (peak.0.max(s.rss_kib), peak.1.max(s.hwm_kib));
        })
        .await?;
        (f.peak_rss_kib, f.peak_hwm_kib) = peak;
        f.sleepers = observed(&o);
        f.raw.push(("sleepers", o.tasks));
        w.stop(STOP_GRACE);
        Ok(f)
    }
}

//! The worker: registers its workflows, keeps the assignment stream and heartbeats alive
//! through engine restarts, runs tasks in bounded slots, and drains on shutdown.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use super::driver::Driver;
use super::engine::WorkerEngine;
use super::in_flight::{CancelReason, InFlight};
use super::metrics::{StateCollector, WorkerMetrics};
use super::shared::{ActionDef, Shared};
use super::slots::SlotPool;
use super::state::{Connection, Lifecycle};
use crate::client::{Client, call};
use crate::durable::{Durable, DurableStream, StreamTask};
use crate::health::Readiness;
use crate::middleware::Middleware;
use crate::names::validate_name;
use crate::workflow::{LabelValue, Workflow};
use crate::{Error, Result};

/// Start-up retries while the engine is unreachable: full jitter, 1 s doubling to 30 s (the
/// reconnect backoff).
const START_BACKOFF_BASE: Duration = Duration::from_secs(1);
const START_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Default slots per worker (the official SDKs' default).
pub const DEFAULT_SLOTS: usize = hatchet_contract::DEFAULT_SLOTS as usize;
/// Default durable slots of a worker with durable tasks (the official SDKs' default): durable
/// runs mostly wait, so a worker holds many.
pub const DEFAULT_DURABLE_SLOTS: usize = hatchet_contract::DEFAULT_DURABLE_SLOTS as usize;
/// How often the waiting durable runs are checked against their eviction policies.
const EVICTION_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Default drain deadline: long, so tasks normally finish.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(hatchet_contract::DEFAULT_DRAIN_TIMEOUT_SECONDS as u64);

/// Builds a [`Worker`].
pub struct WorkerBuilder {
    client: Client,
    name: String,
    slots: usize,
    durable_slots: usize,
    labels: BTreeMap<String, LabelValue>,
    workflows: Vec<Workflow>,
    drain_timeout: Duration,
    auth_outage_grace: Duration,
    registry: Option<Registry>,
    handle_signals: bool,
    /// The engine the runtime calls; the client itself unless a test puts a fake there.
    engine: Option<Arc<dyn WorkerEngine>>,
    middleware: Vec<Arc<dyn Middleware>>,
    lifespan: Option<Arc<dyn Any + Send + Sync>>,
}

impl WorkerBuilder {
    /// Runs the worker against `engine` instead of the client's connection.
    #[cfg(test)]
    pub(crate) fn engine(mut self, engine: Arc<dyn WorkerEngine>) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Whether SIGTERM and SIGINT start a drain (default on). A second signal does not cut
    /// the drain short: running tasks still finish or are reported.
    pub fn handle_signals(mut self, on: bool) -> Self {
        self.handle_signals = on;
        self
    }

    /// Slots: how many tasks run at once (default 100).
    pub fn slots(mut self, n: usize) -> Self {
        self.slots = n;
        self
    }

    /// Durable slots: how many durable task runs it holds at once, waiting ones included
    /// (default 1000; offered to the engine only when the worker has durable tasks).
    pub fn durable_slots(mut self, n: usize) -> Self {
        self.durable_slots = n;
        self
    }

    /// A worker label (used by tasks' desired labels).
    pub fn label(mut self, key: impl Into<String>, value: impl Into<LabelValue>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Registers a workflow's tasks on this worker.
    pub fn workflow(mut self, wf: Workflow) -> Self {
        self.workflows.push(wf);
        self
    }

    /// How long a drain waits for in-flight tasks before abandoning them (default 1 h).
    pub fn drain_timeout(mut self, d: Duration) -> Self {
        self.drain_timeout = d;
        self
    }

    /// How long the engine may refuse a token it accepted before (as it does while its
    /// database is unreachable) before the worker stops; results of finished tasks are kept
    /// and retried meanwhile. Default 300 s. A token refused from the first call is fatal.
    pub fn auth_outage_grace(mut self, d: Duration) -> Self {
        self.auth_outage_grace = d;
        self
    }

    /// A Prometheus registry to add the worker's metrics to (default: a fresh one).
    pub fn registry(mut self, r: Registry) -> Self {
        self.registry = Some(r);
        self
    }

    /// Adds a hook around every task this worker runs; the first added is the outermost.
    pub fn middleware(mut self, m: impl Middleware) -> Self {
        self.middleware.push(Arc::new(m));
        self
    }

    /// A value every task reads with [`Context::lifespan`](crate::Context::lifespan) (the
    /// official SDKs' lifespan: a database pool, a configured client). Built before the
    /// worker starts; dropped once the worker has stopped and no task holds a context.
    pub fn lifespan<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.lifespan = Some(Arc::new(value));
        self
    }

    /// Validates every definition; no network call happens before this succeeds.
    pub fn build(self) -> Result<Worker> {
        let namespace = self.client.config().namespace.clone();
        let name = self.client.config().namespaced(&self.name);
        validate_name("worker", &name).map_err(Error::Definition)?;
        for (what, n) in [("slots", self.slots), ("durable slots", self.durable_slots)] {
            if n == 0 || n > i32::MAX as usize {
                return Err(Error::Definition(format!("worker {what} must be at least 1, got {n}")));
            }
        }
        if self.workflows.is_empty() {
            return Err(Error::Definition("a worker needs at least one workflow".into()));
        }
        let mut actions = HashMap::new();
        for wf in &self.workflows {
            wf.validate()?;
            for t in wf.all_tasks() {
                let id = wf.action_id(&namespace, &t.name);
                let slots = t.slot_cost as usize;
                let (pool, offered) = if t.durable {
                    ("durable slots", self.durable_slots)
                } else {
                    ("slots", self.slots)
                };
                if slots > offered {
                    return Err(Error::Definition(format!(
                        "task {id:?} costs {slots} slots, more than this worker's {offered} {pool}"
                    )));
                }
                let def = ActionDef {
                    handler: t.handler.clone(),
                    timeout: wf.timeout_of(t),
                    slots,
                    durable: t.durable.then(|| t.eviction.clone().unwrap_or_default()),
                };
                if actions.insert(id.clone(), def).is_some() {
                    return Err(Error::Definition(format!("action {id:?} is registered twice")));
                }
            }
        }
        let mut labels: BTreeMap<String, LabelValue> = self
            .client
            .config()
            .preset_labels
            .iter()
            .map(|(k, v)| (k.clone(), LabelValue::Str(v.clone())))
            .collect();
        labels.extend(self.labels);
        let (durable, durable_task) = if actions.values().any(|d| d.durable.is_some()) {
            let (stream, task) = DurableStream::new();
            let durable = Durable {
                stream,
                waiting: Arc::default(),
            };
            (Some(durable), Some(task))
        } else {
            (None, None)
        };
        let engine = self.engine.unwrap_or_else(|| Arc::new(self.client.clone()));
        let slots = SlotPool::new(self.slots);
        let connection = tokio::sync::watch::Sender::new(Connection::new(Instant::now()));
        let lifecycle = tokio::sync::watch::Sender::new(Lifecycle::Running);
        let mut registry = self.registry.unwrap_or_default();
        let durable_slots = SlotPool::new(self.durable_slots);
        let state = StateCollector {
            slots: slots.clone(),
            durable: durable
                .as_ref()
                .map(|d: &Durable| (durable_slots.clone(), Arc::clone(&d.waiting))),
            connection: connection.subscribe(),
            lifecycle: lifecycle.subscribe(),
        };
        let metrics = WorkerMetrics::register(&mut registry, state);
        let shared = Arc::new(Shared {
            engine,
            client: self.client,
            middleware: self.middleware.into(),
            lifespan: self.lifespan,
            name,
            slots,
            durable_slots,
            durable,
            labels,
            actions,
            in_flight: Arc::new(InFlight::default()),
            connection,
            lifecycle,
            metrics,
            drain_timeout: self.drain_timeout,
            auth_outage_grace: self.auth_outage_grace,
            tasks: TaskTracker::new(),
            reports: Default::default(),
        });
        Ok(Worker {
            shared,
            durable_task,
            workflows: self.workflows,
            registry: Arc::new(registry),
            handle_signals: self.handle_signals,
        })
    }
}

/// How a worker's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// Every in-flight task finished before the worker stopped.
    Drained,
    /// The drain deadline passed; this many tasks were abandoned (reported FAILED, retryable).
    DeadlineExceeded {
        /// Tasks still running when the deadline passed.
        abandoned: usize,
    },
}

/// A Hatchet worker.
pub struct Worker {
    shared: Arc<Shared>,
    /// The durable-task stream's task, started with the worker (when it has durable tasks).
    durable_task: Option<StreamTask>,
    workflows: Vec<Workflow>,
    registry: Arc<Registry>,
    handle_signals: bool,
}

/// A cloneable handle on a running worker: readiness, identity, and the drain switch.
#[derive(Clone)]
pub struct WorkerHandle {
    shared: Arc<Shared>,
}

impl WorkerHandle {
    /// Starts draining; idempotent and returns at once.
    pub fn initiate_shutdown(&self) {
        self.shared.begin_drain();
    }

    /// Registered, assignment stream up, heartbeat fresh, not draining: the rule `/readyz`
    /// applies, evaluated now (not as the loop last published it).
    pub fn is_ready(&self) -> bool {
        self.shared.readiness_at(Instant::now()) == Readiness::Ready
    }

    /// Resolves `true` once the worker is ready to receive tasks, or `false` if it stopped
    /// (a fatal error or a drain) before it ever was.
    pub async fn wait_ready(&self) -> bool {
        let mut connection = self.shared.connection.subscribe();
        let mut lifecycle = self.shared.lifecycle.subscribe();
        loop {
            if lifecycle.borrow_and_update().is_stopped() {
                return false;
            }
            if self.is_ready() {
                return true;
            }
            tokio::select! {
                r = connection.changed() => if r.is_err() { return false },
                r = lifecycle.changed() => if r.is_err() { return false },
            }
        }
    }

    /// The engine's id of this worker, once registered.
    pub fn worker_id(&self) -> Option<String> {
        self.shared.worker_id()
    }

    /// Slots held by running tasks now (a task counts its slot cost), as `/metrics` reports.
    pub fn slots_used(&self) -> usize {
        self.shared.slots.used()
    }

    /// Durable slots held by running durable tasks now (an evicted run holds none).
    pub fn durable_slots_used(&self) -> usize {
        self.shared.durable_slots.used()
    }
}

impl Worker {
    /// Starts building a worker named `name` that uses `client`.
    pub fn builder(client: Client, name: impl Into<String>) -> WorkerBuilder {
        WorkerBuilder {
            client,
            name: name.into(),
            slots: DEFAULT_SLOTS,
            durable_slots: DEFAULT_DURABLE_SLOTS,
            labels: BTreeMap::new(),
            workflows: Vec::new(),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            auth_outage_grace: super::listener::DEFAULT_AUTH_OUTAGE_GRACE,
            registry: None,
            handle_signals: true,
            engine: None,
            middleware: Vec::new(),
            lifespan: None,
        }
    }

    /// A handle that can stop the worker from elsewhere.
    pub fn handle(&self) -> WorkerHandle {
        WorkerHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The metrics registry holding this worker's metrics.
    pub fn registry(&self) -> Arc<Registry> {
        Arc::clone(&self.registry)
    }

    /// The engine's id of this worker, once registered.
    pub fn worker_id(&self) -> Option<String> {
        self.shared.worker_id()
    }

    /// Runs the worker in the background ([`Worker::run`] on its own task) and resolves once it
    /// is ready to receive tasks, or with its error if it stopped before it ever was.
    pub async fn start(self) -> Result<RunningWorker> {
        let handle = self.handle();
        let join = tokio::spawn(self.run());
        if handle.wait_ready().await {
            return Ok(RunningWorker { handle, join });
        }
        match joined(join.await) {
            Err(e) => Err(e),
            Ok(_) => Err(Error::Shutdown),
        }
    }

    /// Starts the health server, registers the workflows, then serves assignments until shut
    /// down and drained.
    pub async fn run(mut self) -> Result<Exit> {
        let shared = Arc::clone(&self.shared);
        let hc = &shared.client.config().healthcheck;
        let server = if hc.enabled {
            let addr = format!("{}:{}", hc.bind_address, hc.port)
                .parse()
                .map_err(|e| Error::Config(format!("health server address {}:{}: {e}", hc.bind_address, hc.port)))?;
            Some(crate::health::serve(Arc::clone(&shared) as _, Arc::clone(&self.registry), addr).await?)
        } else {
            None
        };
        if self.handle_signals {
            tokio::spawn(drain_on_signals(self.handle()));
        }
        let _durable = self.durable_task.take().map(|task| start_durable(&shared, task));
        let result = match self.start_up().await {
            Ok(true) => Driver::new(Arc::clone(&shared)).run().await,
            // Told to stop before the engine was ever reached: nothing ran, nothing to drain.
            Ok(false) => Ok(Exit::Drained),
            Err(e) => Err(e),
        };
        shared.publish_stop(result.as_ref().ok().cloned());
        if let Some(server) = server {
            // Lets a pending `/drain` answer before the process goes away.
            let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
        }
        result
    }

    /// Checks the engine's version and registers the workflows, retrying with the reconnect
    /// backoff for as long as the engine is unreachable (a pod started during an outage waits
    /// for it, unready and saying why, instead of crash-looping); a refusal is fatal. `false`
    /// when a drain was asked for before it got through.
    async fn start_up(&self) -> Result<bool> {
        let shared = &self.shared;
        let mut attempt = 0;
        loop {
            match self.register_workflows().await {
                Ok(()) => {
                    shared.connection.send_modify(|c| c.startup_error = None);
                    return Ok(true);
                }
                Err(e @ Error::Rpc { .. }) => {
                    let wait = crate::retry::jittered(attempt, START_BACKOFF_BASE, START_BACKOFF_MAX);
                    attempt = attempt.saturating_add(1);
                    tracing::warn!(error = %e, retry_in = ?wait, "the engine is not reachable yet; retrying start-up");
                    shared.connection.send_modify(|c| c.startup_error = Some(e.to_string()));
                    if !self.wait_alive(wait).await {
                        return Ok(false);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits `d` while keeping the liveness tick fresh (the worker is alive, only waiting);
    /// `false` if a drain was asked for meanwhile.
    async fn wait_alive(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        let mut lifecycle = self.shared.lifecycle.subscribe();
        loop {
            self.shared.connection.send_modify(|c| c.loop_tick = Instant::now());
            let now = Instant::now();
            if now >= until {
                return true;
            }
            tokio::select! {
                _ = lifecycle.wait_for(|l| !l.is_running()) => return false,
                () = tokio::time::sleep((until - now).min(Duration::from_secs(1))) => {}
            }
        }
    }

    /// The engine's version and every workflow, asked for at once: start-up is the latency of
    /// scaling from zero, so it costs one round trip, not one per workflow.
    async fn register_workflows(&self) -> Result<()> {
        let engine = &*self.shared.engine;
        let namespace = self.shared.client.config().namespace.clone();
        let requests = self
            .workflows
            .iter()
            .map(|wf| wf.to_proto(&namespace))
            .collect::<Result<Vec<_>>>()?;
        let puts = requests.into_iter().map(|req| async move {
            let name = req.name.clone();
            call("PutWorkflow", || engine.put_workflow(req.clone())).await?;
            tracing::info!(workflow = %name, "workflow registered");
            Ok::<_, Error>(())
        });
        let version = call("GetVersion", || engine.get_version());
        let (version, puts) = tokio::join!(version, futures::future::join_all(puts));
        match version {
            Ok(v) => tracing::info!(engine_version = %v.version, "connected to the Hatchet engine"),
            Err(Error::Refused { status, .. }) if status.code() == tonic::Code::Unimplemented => {
                tracing::warn!("engine does not report its version; assuming a current engine")
            }
            Err(e) => return Err(e),
        }
        puts.into_iter().collect()
    }
}

/// Tasks that live as long as the worker's run, stopped when it ends.
struct Background(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Background {
    fn drop(&mut self) {
        self.0.iter().for_each(tokio::task::JoinHandle::abort);
    }
}

/// Starts the durable-task stream and the eviction check: every second, the waiting runs
/// their policy evicts give their slots back; once the worker drains, every waiting run is
/// evicted (those that start waiting later too), so no wait holds the drain.
fn start_durable(shared: &Arc<Shared>, task: StreamTask) -> Background {
    let stream = {
        let shared = Arc::clone(shared);
        let engine = Arc::clone(&shared.engine);
        let connection = shared.connection.subscribe();
        tokio::spawn(async move {
            task.run(engine, connection, move |i| {
                shared
                    .in_flight
                    .cancel_invocation(&i.task, i.count, CancelReason::Evicted);
            })
            .await;
        })
    };
    let check = {
        let shared = Arc::clone(shared);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(EVICTION_CHECK_INTERVAL);
            loop {
                tick.tick().await;
                let Some(d) = &shared.durable else { return };
                let (due, reason) = if shared.is_draining() {
                    (d.waiting.all(), "worker shutting down")
                } else {
                    (
                        d.waiting.due(Instant::now(), shared.durable_slots.total()),
                        "eviction policy",
                    )
                };
                for invocation in due {
                    let s = Arc::clone(&shared);
                    shared.tasks.spawn(async move { s.evict(invocation, reason).await });
                }
            }
        })
    };
    Background(vec![stream, check])
}

/// A worker started with [`Worker::start`]: its handle, and the task serving it.
pub struct RunningWorker {
    handle: WorkerHandle,
    join: tokio::task::JoinHandle<Result<Exit>>,
}

impl RunningWorker {
    /// The handle: readiness, identity, the drain switch.
    pub fn handle(&self) -> &WorkerHandle {
        &self.handle
    }

    /// Whether the worker has stopped (it should not, until told to).
    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }

    /// Drains the worker and waits until it has stopped.
    pub async fn stop(self) -> Result<Exit> {
        self.handle.initiate_shutdown();
        joined(self.join.await)
    }
}

/// The result of the worker's task; a panic in it goes on unwinding in the caller.
fn joined(r: std::result::Result<Result<Exit>, tokio::task::JoinError>) -> Result<Exit> {
    match r {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::Shutdown),
    }
}

/// Turns SIGTERM and SIGINT into a drain; later signals are logged and ignored so the drain
/// still reports every task.
async fn drain_on_signals(handle: WorkerHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::warn!("cannot listen for SIGTERM/SIGINT; drain only through /drain");
        return;
    };
    let mut first = true;
    loop {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        if first {
            tracing::info!(signal = name, "shutdown requested; draining");
            handle.initiate_shutdown();
            first = false;
        } else {
            tracing::warn!(
                signal = name,
                "already draining; running tasks will still finish or be reported"
            );
        }
    }
}

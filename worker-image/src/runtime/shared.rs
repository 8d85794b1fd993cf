//! State shared by the worker's loop, its executors and its health server.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::engine::WorkerEngine;
use super::listener::Phase;
use super::slots::SlotPool;
use crate::client::Client;
use crate::metrics::WorkerMetrics;
use crate::workflow::{Handler, LabelValue};

/// What the worker knows about an action id it registered.
#[derive(Clone)]
pub(crate) struct ActionDef {
    pub(crate) handler: Handler,
    pub(crate) timeout: Duration,
}

/// Why a running task was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CancelReason {
    /// The engine sent CANCEL_STEP_RUN (cancel or timeout): report nothing.
    Engine,
    /// The drain deadline passed: report FAILED so the engine retries elsewhere.
    DrainDeadline,
}

/// A task in flight, as cancels, the drain deadline and `/status` see it.
pub(crate) struct RunningTask {
    pub(crate) action_id: String,
    pub(crate) started_at: Instant,
    pub(crate) cancel: CancellationToken,
    pub(crate) reason: Arc<Mutex<Option<CancelReason>>>,
    /// Which attempt this is: a retry of the same run on this worker replaces the entry, and
    /// the older attempt's guard must not remove the newer one.
    attempt: u64,
}

impl RunningTask {
    pub(crate) fn cancel(&self, why: CancelReason) {
        self.reason.lock().expect("reason lock").get_or_insert(why);
        self.cancel.cancel();
    }
}

/// A task's entry in [`Shared::running`], listed from the moment its assignment arrives (so a
/// cancel right behind it finds it) and removed on drop.
pub(crate) struct Tracked {
    shared: Arc<Shared>,
    id: String,
    attempt: u64,
    pub(crate) cancel: CancellationToken,
    pub(crate) reason: Arc<Mutex<Option<CancelReason>>>,
}

impl Tracked {
    /// Why the task was cancelled, if it was.
    pub(crate) fn cancel_reason(&self) -> Option<CancelReason> {
        *self.reason.lock().expect("reason lock")
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut running = self.shared.running.lock().expect("running lock");
        if running.get(&self.id).is_some_and(|t| t.attempt == self.attempt) {
            running.remove(&self.id);
        }
    }
}

/// Connection facts the loop publishes for probes and `/status`.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    pub(crate) worker_id: Option<String>,
    pub(crate) phase: Phase,
    pub(crate) last_heartbeat_ok: Option<Instant>,
    /// A heartbeat was acknowledged on the current stream.
    pub(crate) stream_confirmed: bool,
    pub(crate) reconnects: u64,
    /// Last time the loop turned over: a stalled runtime stops updating it.
    pub(crate) loop_tick: Instant,
    /// Why start-up (version check, workflow registration) has not got through yet.
    pub(crate) startup_error: Option<String>,
}

pub(crate) struct Shared {
    pub(crate) client: Client,
    /// The engine as the runtime calls it: `client` itself, or a fake in tests.
    pub(crate) engine: Arc<dyn WorkerEngine>,
    pub(crate) name: String,
    pub(crate) slots: SlotPool,
    pub(crate) labels: BTreeMap<String, LabelValue>,
    pub(crate) actions: HashMap<String, ActionDef>,
    pub(crate) running: Mutex<HashMap<String, RunningTask>>,
    pub(crate) connection: Mutex<Connection>,
    pub(crate) metrics: WorkerMetrics,
    /// Readiness as probes see it, republished by the loop on every turn.
    pub(crate) ready: tokio::sync::watch::Sender<bool>,
    /// Cancelled to begin draining.
    pub(crate) shutdown: CancellationToken,
    /// Cancelled once the worker has stopped (drained or abandoned, and unsubscribed).
    pub(crate) finished: CancellationToken,
    /// How the worker ended, once it has.
    pub(crate) exit: Mutex<Option<super::Exit>>,
    pub(crate) draining: std::sync::atomic::AtomicBool,
    pub(crate) drain_timeout: Duration,
    /// How long refusals of a once-accepted token are taken for an engine outage.
    pub(crate) auth_outage_grace: Duration,
    /// Every task the worker spawned for an assignment (running, waiting for a slot, or
    /// reporting its result) and the engine pause call: a drain ends when it is empty.
    pub(crate) tasks: TaskTracker,
    pub(crate) attempts: AtomicU64,
    /// Recent result reports, to send again or answer with after an outage (see [`super::resend`]).
    pub(crate) reports: Mutex<super::resend::Reports>,
}

impl Shared {
    pub(crate) fn worker_id(&self) -> Option<String> {
        self.connection.lock().expect("connection lock").worker_id.clone()
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Lists the run `task_run_id` of `action_id` as in flight.
    pub(crate) fn track(self: &Arc<Self>, task_run_id: &str, action_id: &str) -> Tracked {
        let attempt = self.attempts.fetch_add(1, Ordering::Relaxed);
        let cancel = CancellationToken::new();
        let reason = Arc::new(Mutex::new(None));
        self.running.lock().expect("running lock").insert(
            task_run_id.to_owned(),
            RunningTask {
                action_id: action_id.to_owned(),
                started_at: Instant::now(),
                cancel: cancel.clone(),
                reason: Arc::clone(&reason),
                attempt,
            },
        );
        Tracked {
            shared: Arc::clone(self),
            id: task_run_id.to_owned(),
            attempt,
            cancel,
            reason,
        }
    }

    /// Cancels every running task for `why`.
    pub(crate) fn cancel_all(&self, why: CancelReason) {
        for t in self.running.lock().expect("running lock").values() {
            t.cancel(why);
        }
    }
}

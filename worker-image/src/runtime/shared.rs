//! State shared by the worker's loop, its executors and its health server.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

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

/// A task in flight.
pub(crate) struct RunningTask {
    pub(crate) action_id: String,
    pub(crate) started_at: Instant,
    pub(crate) cancel: CancellationToken,
    pub(crate) reason: Arc<Mutex<Option<CancelReason>>>,
}

impl RunningTask {
    pub(crate) fn cancel(&self, why: CancelReason) {
        self.reason.lock().expect("reason lock").get_or_insert(why);
        self.cancel.cancel();
    }
}

/// Connection facts the loop publishes for probes and `/status`.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    pub(crate) worker_id: Option<String>,
    pub(crate) phase: Phase,
    pub(crate) last_heartbeat_ok: Option<Instant>,
    pub(crate) reconnects: u64,
    /// Last time the loop turned over: a stalled runtime stops updating it.
    pub(crate) loop_tick: Instant,
}

pub(crate) struct Shared {
    pub(crate) client: Client,
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
}

impl Shared {
    pub(crate) fn worker_id(&self) -> Option<String> {
        self.connection.lock().expect("connection lock").worker_id.clone()
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Cancels every running task for `why`.
    pub(crate) fn cancel_all(&self, why: CancelReason) {
        for t in self.running.lock().expect("running lock").values() {
            t.cancel(why);
        }
    }
}

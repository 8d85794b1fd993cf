//! State shared by the worker's loop, its executors, its handle and its health server.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use super::engine::WorkerEngine;
use super::in_flight::{CancelReason, InFlight};
use super::metrics::WorkerMetrics;
use super::slots::SlotPool;
use super::state::{Connection, Lifecycle, readiness};
use super::worker::Exit;
use crate::client::Client;
use crate::durable::{Durable, EvictionPolicy, Invocation};
use crate::health::Readiness;
use crate::middleware::Chain;
use crate::workflow::{Handler, LabelValue};

/// What the worker knows about an action id it registered.
#[derive(Clone)]
pub(crate) struct ActionDef {
    pub(crate) handler: Handler,
    pub(crate) timeout: Duration,
    /// Slots one run occupies (the task's `slot_requests` for its slot type).
    pub(crate) slots: usize,
    /// A durable task's eviction policy (it runs in the durable slots).
    pub(crate) durable: Option<EvictionPolicy>,
}

pub(crate) struct Shared {
    pub(crate) client: Client,
    /// The worker's middleware, outermost first, around every handler.
    pub(crate) middleware: Chain,
    /// The value every task's context shares (`WorkerBuilder::lifespan`).
    pub(crate) lifespan: Option<Arc<dyn Any + Send + Sync>>,
    /// The engine as the runtime calls it: `client` itself, or a fake in tests.
    pub(crate) engine: Arc<dyn WorkerEngine>,
    pub(crate) name: String,
    pub(crate) slots: SlotPool,
    /// The slots durable tasks run in.
    pub(crate) durable_slots: SlotPool,
    /// The durable-task stream and waiting runs, when the worker has durable tasks.
    pub(crate) durable: Option<Durable>,
    pub(crate) labels: BTreeMap<String, LabelValue>,
    pub(crate) actions: HashMap<String, ActionDef>,
    pub(crate) in_flight: Arc<InFlight>,
    /// The link to the engine, published by the loop on every turn.
    pub(crate) connection: watch::Sender<Connection>,
    /// Running, draining or stopped: the one place the worker's life is told.
    pub(crate) lifecycle: watch::Sender<Lifecycle>,
    pub(crate) metrics: WorkerMetrics,
    pub(crate) drain_timeout: Duration,
    /// How long refusals of a once-accepted token are taken for an engine outage.
    pub(crate) auth_outage_grace: Duration,
    /// Every task the worker spawned for an assignment (running, waiting for a slot, or
    /// reporting its result) and the engine pause call: a drain ends when it is empty.
    pub(crate) tasks: TaskTracker,
    /// Recent result reports, to send again or answer with after an outage (see [`super::resend`]).
    pub(crate) reports: Mutex<super::resend::Reports>,
}

impl Shared {
    pub(crate) fn worker_id(&self) -> Option<String> {
        self.connection.borrow().worker_id.clone()
    }

    /// Draining or stopped: no new work is taken.
    pub(crate) fn is_draining(&self) -> bool {
        !self.lifecycle.borrow().is_running()
    }

    /// Starts draining, with the deadline counted from now; idempotent.
    pub(crate) fn begin_drain(&self) {
        let now = Instant::now();
        self.lifecycle
            .send_if_modified(|l| match l.drain(now, self.drain_timeout) {
                Some(draining) => {
                    *l = draining;
                    true
                }
                None => false,
            });
    }

    /// The pool a run of `def` takes its slots from.
    pub(crate) fn pool_of(&self, def: Option<&ActionDef>) -> &SlotPool {
        match def {
            Some(d) if d.durable.is_some() => &self.durable_slots,
            _ => &self.slots,
        }
    }

    /// Evicts waiting durable run `invocation` and stops it here without a report.
    pub(crate) async fn evict(&self, invocation: Invocation, reason: &str) -> bool {
        let Some(d) = &self.durable else { return false };
        crate::durable::evict(&d.stream, &d.waiting, &*self.engine, invocation, reason, |i| {
            self.in_flight
                .cancel_invocation(&i.task, i.count, CancelReason::Evicted);
        })
        .await
    }

    /// Publishes that the worker stopped, and how (`None`: on an error).
    pub(crate) fn publish_stop(&self, exit: Option<Exit>) {
        self.lifecycle.send_replace(Lifecycle::Stopped { exit });
    }

    /// The readiness rule over what is published now.
    pub(crate) fn readiness_at(&self, now: Instant) -> Readiness {
        let life = self.lifecycle.borrow().clone();
        readiness(&life, &self.connection.borrow(), now)
    }
}

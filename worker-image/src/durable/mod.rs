//! Durable tasks: tasks whose sleeps, waits, memoized steps and child runs the engine keeps in
//! an event log, so a run survives its worker (it starts again elsewhere and replays the log)
//! and a run that only waits can give its slot back (eviction) until its wait is over.
//!
//! - [`context`]: what a durable task calls ([`DurableContext`]);
//! - `stream`: the worker's one durable-task stream to the engine;
//! - `pending`: routing the engine's answers to the calls awaiting them;
//! - [`eviction`]: which waiting runs are evicted, and the record of waiting runs.

pub mod context;
pub mod eviction;
mod pending;
mod stream;

use std::sync::Arc;

use hatchet_proto::RestoreEvictedTaskRequest;

pub(crate) use context::DurableRun;
pub use context::{DurableContext, WaitResult};
pub use eviction::EvictionPolicy;
pub(crate) use eviction::Waiting;
pub(crate) use pending::Invocation;
pub(crate) use stream::{DurableStream, StreamTask};

use crate::client::call;
use crate::runtime::WorkerEngine;

/// Evicts one waiting run: asks the engine, then stops the run here with `stop` (which must
/// report nothing: the engine runs it again). If its wait completed meanwhile, the engine
/// (which restores an evicted run when its wait completes) missed that, so it is asked to
/// restore the run at once. Whether the run was evicted.
pub(crate) async fn evict(
    stream: &DurableStream,
    waiting: &Waiting,
    engine: &dyn WorkerEngine,
    invocation: Invocation,
    reason: &str,
    stop: impl FnOnce(&Invocation),
) -> bool {
    if !waiting.begin_eviction(&invocation) {
        return false;
    }
    match stream.evict(invocation.clone(), reason).await {
        Ok(()) => {
            stop(&invocation);
            tracing::info!(task_run = %invocation.task, invocation = invocation.count, reason, "durable run evicted");
            if waiting.end_eviction(&invocation, true) {
                let req = RestoreEvictedTaskRequest {
                    task_run_external_id: invocation.task.clone(),
                };
                match call("RestoreEvictedTask", || engine.restore_evicted_task(req.clone())).await {
                    Ok(_) => {
                        tracing::info!(task_run = %invocation.task, "its wait completed during the eviction; restored")
                    }
                    Err(e) => {
                        tracing::warn!(task_run = %invocation.task, "could not restore a run whose wait completed during its eviction: {e}")
                    }
                }
            }
            true
        }
        Err(refusal) => {
            tracing::warn!(task_run = %invocation.task, ?refusal, "eviction failed; the run keeps its slot");
            waiting.end_eviction(&invocation, false);
            false
        }
    }
}

/// What a worker with durable tasks holds for them.
pub(crate) struct Durable {
    pub(crate) stream: DurableStream,
    pub(crate) waiting: Arc<Waiting>,
}

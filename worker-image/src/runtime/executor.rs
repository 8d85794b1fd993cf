//! Running one assignment: STARTED, the handler (isolated in its own task so a panic or a
//! cancel cannot hurt the worker), then the event [`conclude`] picks for how it ended
//! (COMPLETED or FAILED, or nothing when cancelled), sent by [`report`] alone.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hatchet_proto::{AssignedAction, StepActionEvent};
use tokio::time::Instant;
use tracing::{Instrument as _, Span};

use super::in_flight::{CancelReason, Tracked};
use super::report::{Ending, Outcome, Report, Site, conclude};
use super::shared::{ActionDef, Shared};
use super::slots::{SharedSlot, SlotPermit};
use crate::client::{Persistence, call_with_codes, now_timestamp};
use crate::context::{AssignedRun, AttemptControls, Context, RunIds};
use crate::durable::{DurableRun, Invocation};
use crate::middleware::Next;
use crate::payload::{parse_action_payload, parse_metadata};
use crate::retry::is_retryable_for_results;

/// Extra time past the task's timeout before the worker gives up on the engine's own
/// timeout (which cancels the run) and reports the failure itself.
const TIMEOUT_GRACE: Duration = Duration::from_secs(5);
/// How long a cancelled handler may take to return before its future is dropped.
const CANCEL_GRACE: Duration = Duration::from_secs(1);
/// How long result events are retried through an engine outage.
const EVENT_RETRY_BUDGET: Duration = Duration::from_secs(300);
/// Deadline of one try at sending an event.
const EVENT_CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs the assignment to its end. The slot is held until the result is reported, unless the
/// task gives it back earlier with `release_slot`.
pub(crate) async fn run(
    shared: Arc<Shared>,
    action: AssignedAction,
    tracked: Tracked,
    permit: SlotPermit,
    assigned_at: Instant,
) {
    let metadata = parse_metadata(action.additional_metadata.as_deref()).unwrap_or_else(|e| {
        tracing::warn!(task_run = %action.task_run_external_id, "ignoring additional metadata: {e}");
        Default::default()
    });
    let span = attempt_span(&action, &metadata);
    run_attempt(shared, action, metadata, tracked, permit, assigned_at)
        .instrument(span)
        .await;
}

/// The span around everything one attempt does (its reports, and the handler's own log
/// lines), so each line of a task run can be found by its id.
fn attempt_span(action: &AssignedAction, metadata: &serde_json::Map<String, serde_json::Value>) -> Span {
    let span = tracing::info_span!(
        "task",
        task_run = %action.task_run_external_id,
        action = %action.action_id,
        attempt = action.retry_count + 1,
        "otel.name" = tracing::field::Empty,
        "otel.kind" = tracing::field::Empty,
    );
    #[cfg(feature = "otel")]
    crate::telemetry::otel::adopt(
        &span,
        crate::telemetry::otel::AttemptIds {
            task_run_id: &action.task_run_external_id,
            workflow_run_id: &action.workflow_run_id,
            action_id: &action.action_id,
            retry_count: action.retry_count,
        },
        metadata,
    );
    #[cfg(not(feature = "otel"))]
    let _ = metadata;
    span
}

async fn run_attempt(
    shared: Arc<Shared>,
    action: AssignedAction,
    metadata: serde_json::Map<String, serde_json::Value>,
    tracked: Tracked,
    permit: SlotPermit,
    assigned_at: Instant,
) {
    let id = action.task_run_external_id.clone();
    let slot = SharedSlot::new(permit);
    let Some(def) = shared.actions.get(&action.action_id).cloned() else {
        tracing::error!(task_run = %id, "this worker has no handler for action {:?}", action.action_id);
        finish(&shared, &action, Ending::UnknownAction).await;
        return;
    };
    let remembered = shared.reports.lock().expect("reports lock").uncertain_result(&id);
    if let Some(payload) = remembered {
        tracing::warn!(task_run = %id, attempt = action.retry_count + 1,
            "the engine assigned again a task run whose result it may have lost in an outage; answering with that result instead of running it twice");
        report(&shared, &action, Report::started()).await;
        report(&shared, &action, Report::completed(payload)).await;
        return;
    }
    let started = Instant::now();
    shared
        .metrics
        .task_started(&action.action_id, started.saturating_duration_since(assigned_at));
    let ending = attempt(&shared, &action, metadata, def, slot.clone(), &tracked).await;
    let outcome = finish(&shared, &action, ending).await;
    slot.release();
    drop(tracked);
    shared
        .metrics
        .task_finished(&action.action_id, outcome.label(), started.elapsed());
    tracing::info!(task_run = %id, action = %action.action_id, outcome = outcome.label(), elapsed = ?started.elapsed(), "task finished");
}

/// Gives back an assignment this worker will not run (it is draining): FAILED and retryable,
/// so the engine hands it to another worker.
pub(crate) async fn hand_back(shared: &Shared, action: &AssignedAction) {
    async {
        tracing::warn!("assignment arrived while draining; handing it back");
        finish(shared, action, Ending::HandedBack).await;
    }
    .instrument(attempt_span(action, &Default::default()))
    .await;
}

/// Tells the engine how the attempt ended (the one place a result is decided and sent).
async fn finish(shared: &Shared, action: &AssignedAction, ending: Ending) -> Outcome {
    let (outcome, event) = conclude(ending, &site(shared, action));
    if let Some(event) = event {
        report(shared, action, event).await;
    }
    outcome
}

/// Runs the handler (after STARTED) and says how it ended.
async fn attempt(
    shared: &Arc<Shared>,
    action: &AssignedAction,
    metadata: serde_json::Map<String, serde_json::Value>,
    def: ActionDef,
    slot: SharedSlot,
    tracked: &Tracked,
) -> Ending {
    let cancel = tracked.switch.token();
    let id = action.task_run_external_id.as_str();
    let payload = match parse_action_payload(&action.action_payload) {
        Ok(p) => p,
        Err(e) => return Ending::BadInput(e),
    };
    let deadline = Arc::new(Mutex::new(Instant::now() + def.timeout + TIMEOUT_GRACE));
    let durable = match (&def.durable, &shared.durable) {
        (Some(policy), Some(d)) => Some(Arc::new(DurableRun {
            stream: d.stream.clone(),
            waiting: Arc::clone(&d.waiting),
            invocation: Invocation {
                task: id.to_owned(),
                count: invocation_of(action),
            },
            policy: policy.clone(),
            turn: tokio::sync::Mutex::new(()),
        })),
        _ => None,
    };
    let run = AssignedRun {
        ids: RunIds {
            workflow_run_id: action.workflow_run_id.clone(),
            task_run_external_id: id.to_owned(),
            task_name: action.task_name.clone(),
            action_id: action.action_id.clone(),
            retry_count: action.retry_count,
            worker_id: shared.worker_id().unwrap_or_default(),
            parent_workflow_run_id: action.parent_workflow_run_id.clone(),
            priority: action.priority,
        },
        payload,
        metadata,
    };
    let ctx = Context::new(
        run,
        shared.client.clone(),
        Arc::clone(&shared.engine),
        AttemptControls {
            cancel: cancel.clone(),
            slot,
            deadline: Arc::clone(&deadline),
            durable,
        },
        shared.lifespan.clone(),
    );
    // The handler runs in its own task, inside the attempt's span, while STARTED is reported:
    // that round trip is not on the task's path (the official SDKs do not wait for it either);
    // the final event still goes after it, so the engine sees them in order.
    let chain = Next::new(Arc::clone(&shared.middleware), def.handler);
    let mut handle = tokio::spawn(chain.run(ctx).instrument(Span::current()));
    report(shared, action, Report::started()).await;

    let result = loop {
        let until = *deadline.lock().expect("deadline lock");
        tokio::select! {
            // Cancellation first: a handler that returns because it saw the cancel must not
            // turn a cancelled run into a completed one.
            biased;
            _ = cancel.cancelled() => break None,
            r = &mut handle => break if cancel.is_cancelled() { None } else { Some(r) },
            _ = tokio::time::sleep_until(until) => {
                if Instant::now() >= *deadline.lock().expect("deadline lock") {
                    handle.abort();
                    return Ending::TimedOut(def.timeout);
                }
            }
        }
    };

    let Some(joined) = result else {
        // Cancelled: give the handler a moment to notice, then drop it.
        if !handle.is_finished() && tokio::time::timeout(CANCEL_GRACE, &mut handle).await.is_err() {
            handle.abort();
        }
        return match tracked.switch.reason() {
            Some(CancelReason::DrainDeadline) => Ending::Abandoned,
            Some(CancelReason::Evicted) => Ending::Evicted,
            _ => Ending::Cancelled,
        };
    };

    match joined {
        Ok(Ok(output)) => Ending::Returned(output),
        Ok(Err(e)) => Ending::Errored(e),
        Err(join) if join.is_panic() => {
            let msg = panic_message(join.into_panic());
            tracing::error!(task_run = %id, "task handler panicked: {msg}");
            Ending::Panicked(msg)
        }
        Err(_) => Ending::Cancelled,
    }
}

/// Which invocation of a durable task an assignment starts (the engine counts them; the
/// official SDKs take a missing count for the first).
pub(crate) fn invocation_of(action: &AssignedAction) -> i32 {
    action.durable_task_invocation_count.unwrap_or(1)
}

/// Where the attempt runs, for the trace of a failure.
fn site<'a>(shared: &'a Shared, action: &'a AssignedAction) -> Site<'a> {
    Site {
        action: &action.action_id,
        task_run: &action.task_run_external_id,
        attempt: action.retry_count + 1,
        worker: &shared.name,
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

/// Sends a step event, retrying transient failures for up to [`EVENT_RETRY_BUDGET`] so a
/// result survives an engine restart. A report that met a failure first sends again, once it
/// got through, the results acknowledged just before (see [`super::resend`]).
pub(crate) async fn report(shared: &Shared, action: &AssignedAction, report: Report) {
    let kind = report.kind;
    let event = StepActionEvent {
        worker_id: String::new(),
        job_id: action.job_id.clone(),
        job_run_id: action.job_run_id.clone(),
        task_id: action.task_id.clone(),
        task_run_external_id: action.task_run_external_id.clone(),
        action_id: action.action_id.clone(),
        event_timestamp: None,
        event_type: kind as i32,
        should_not_retry: report.should_not_retry(),
        event_payload: report.payload,
        retry_count: Some(action.retry_count),
    };
    let started = Instant::now();
    let tries = match send_event(shared, &event).await {
        Ok(tries) => tries,
        Err(e) => {
            tracing::error!(task_run = %action.task_run_external_id, event = ?kind, "could not report task event: {e}");
            return;
        }
    };
    let again = shared
        .reports
        .lock()
        .expect("reports lock")
        .reported(started, tries, event);
    if !again.is_empty() {
        tracing::info!(
            count = again.len(),
            "re-sending results acknowledged just before the engine outage"
        );
    }
    for e in again {
        if let Err(err) = send_event(shared, &e).await {
            tracing::warn!(task_run = %e.task_run_external_id, "could not re-send a result: {err}");
        }
    }
}

/// Sends `event`, stamped at each try with the current worker id (it changes if the engine
/// forgot the worker) and time, with the results' retry policy; how many tries it took.
async fn send_event(shared: &Shared, event: &StepActionEvent) -> crate::Result<u32> {
    let mut tries = 0;
    call_with_codes(
        "SendStepActionEvent",
        Persistence::Within(EVENT_RETRY_BUDGET),
        EVENT_CALL_TIMEOUT,
        is_retryable_for_results,
        || {
            tries += 1;
            let mut req = event.clone();
            req.worker_id = shared.worker_id().unwrap_or_default();
            req.event_timestamp = Some(now_timestamp());
            shared.engine.send_step_action_event(req)
        },
    )
    .await?;
    Ok(tries)
}

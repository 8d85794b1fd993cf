//! What a running task sees: its input and parents' outputs, who and where it is, and the
//! calls it can make to the engine while it runs.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hatchet_proto::{RefreshTimeoutRequest, ReleaseSlotRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::client::{Client, Parent, RunRef, TriggerOptions, call};
use crate::durable::{DurableRun, WaitResult};
use crate::names::go_duration;
use crate::payload::ActionPayload;
use crate::runtime::WorkerEngine;
use crate::runtime::slots::SharedSlot;
use crate::testing::{Recorded, stubbed};
use crate::workflow::{AnyOf, LabelValue};
use crate::{Error, TaskError};

/// Identity of one task run, from its assignment.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunIds {
    pub(crate) workflow_run_id: String,
    pub(crate) task_run_external_id: String,
    pub(crate) task_name: String,
    pub(crate) action_id: String,
    pub(crate) retry_count: i32,
    pub(crate) worker_id: String,
    pub(crate) parent_workflow_run_id: Option<String>,
    pub(crate) priority: i32,
}

/// The run an attempt is: who it is, its payload, its metadata.
#[derive(Debug, Clone, Default)]
pub(crate) struct AssignedRun {
    pub(crate) ids: RunIds,
    pub(crate) payload: ActionPayload,
    pub(crate) metadata: serde_json::Map<String, Value>,
}

/// What the runtime shares with a running attempt: its cancel, its slot, its deadline
/// (which `refresh_timeout` moves), and for a durable task its event log's stream.
pub(crate) struct AttemptControls {
    pub(crate) cancel: CancellationToken,
    pub(crate) slot: SharedSlot,
    pub(crate) deadline: Arc<Mutex<Instant>>,
    pub(crate) durable: Option<Arc<DurableRun>>,
}

/// The task's handle on its run. Cheap to clone; every clone refers to the same run.
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

struct Inner {
    run: AssignedRun,
    /// The worker's client; in a test, one given to the test or one connected to nothing.
    client: Client,
    cancel: CancellationToken,
    link: Link,
    lifespan: Option<Arc<dyn Any + Send + Sync>>,
    child_index: AtomicI32,
    /// The next stream chunk's index: from 0 in each attempt, so the engine can put chunks
    /// that arrive out of order back in order.
    stream_index: AtomicI64,
    /// The next `DurableContext::now` call's index (its memo key), from 0 in each attempt.
    now_index: AtomicI32,
}

/// Where the run's calls go.
enum Link {
    /// A run the engine assigned: calls go to it, the slot and deadline are the worker's.
    Engine {
        engine: Arc<dyn WorkerEngine>,
        slot: SharedSlot,
        deadline: Arc<Mutex<Instant>>,
        durable: Option<Arc<DurableRun>>,
    },
    /// A [`TestContext`](crate::testing::TestContext)'s run: calls are recorded.
    Test(Box<TestLink>),
}

/// What a test context records into and answers child runs with.
pub(crate) struct TestLink {
    pub(crate) recorded: Recorded,
    pub(crate) children: BTreeMap<String, BTreeMap<String, Value>>,
    /// Payloads of the events a durable wait sees, by event key.
    pub(crate) events: BTreeMap<String, Value>,
    pub(crate) client: Client,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("ids", &self.inner.run.ids)
            .finish_non_exhaustive()
    }
}

impl Context {
    pub(crate) fn new(
        run: AssignedRun,
        client: Client,
        engine: Arc<dyn WorkerEngine>,
        controls: AttemptControls,
        lifespan: Option<Arc<dyn Any + Send + Sync>>,
    ) -> Self {
        let link = Link::Engine {
            engine,
            slot: controls.slot,
            deadline: controls.deadline,
            durable: controls.durable,
        };
        Self::with_link(run, client, controls.cancel, link, lifespan)
    }

    /// A context whose calls `link` records (see [`crate::testing`]).
    pub(crate) fn for_test(run: AssignedRun, lifespan: Option<Arc<dyn Any + Send + Sync>>, link: TestLink) -> Self {
        let client = link.client.clone();
        let cancel = CancellationToken::new();
        Self::with_link(run, client, cancel, Link::Test(Box::new(link)), lifespan)
    }

    fn with_link(
        run: AssignedRun,
        client: Client,
        cancel: CancellationToken,
        link: Link,
        lifespan: Option<Arc<dyn Any + Send + Sync>>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                run,
                client,
                cancel,
                link,
                lifespan,
                child_index: AtomicI32::new(0),
                stream_index: AtomicI64::new(0),
                now_index: AtomicI32::new(0),
            }),
        }
    }

    /// The value the worker shares with all its tasks
    /// ([`WorkerBuilder::lifespan`](crate::WorkerBuilder::lifespan): a database pool, a
    /// client), as `T`; an error (failing the run, not retried) if the worker has none of
    /// that type.
    pub fn lifespan<T: Send + Sync + 'static>(&self) -> Result<&T, TaskError> {
        self.inner
            .lifespan
            .as_deref()
            .and_then(|v| v.downcast_ref::<T>())
            .ok_or_else(|| {
                TaskError::non_retryable(format!(
                    "this worker has no lifespan value of type {}",
                    std::any::type_name::<T>()
                ))
            })
    }

    fn recorded(&self) -> Option<&TestLink> {
        match &self.inner.link {
            Link::Test(t) => Some(t),
            Link::Engine { .. } => None,
        }
    }

    /// The run's input as JSON.
    pub fn raw_input(&self) -> &Value {
        &self.inner.run.payload.input
    }

    /// The run's input as `T`.
    pub fn input<T: DeserializeOwned>(&self) -> Result<T, TaskError> {
        serde_json::from_value(self.inner.run.payload.input.clone())
            .map_err(|e| TaskError::non_retryable(format!("input does not match the requested type: {e}")))
    }

    /// The output of parent task `name`, as `T`; an error if it was skipped.
    pub fn parent_output<T: DeserializeOwned>(&self, name: &str) -> Result<T, TaskError> {
        let v =
            self.inner.run.payload.parents.get(name).ok_or_else(|| {
                TaskError::non_retryable(format!("task {name:?} is not a completed parent of this task"))
            })?;
        if is_skipped_output(v) {
            return Err(TaskError::non_retryable(format!(
                "parent {name:?} was skipped and has no output"
            )));
        }
        serde_json::from_value(v.clone()).map_err(|e| {
            TaskError::non_retryable(format!(
                "output of parent {name:?} does not match the requested type: {e}"
            ))
        })
    }

    /// Whether parent task `name` was skipped by its `skip_if` conditions (the engine
    /// completes a skipped task with the output `{"skipped": true}`).
    pub fn was_skipped(&self, name: &str) -> bool {
        self.inner.run.payload.parents.get(name).is_some_and(is_skipped_output)
    }

    /// Errors of the run's failed tasks, keyed by task name (what an on-failure task handles).
    pub fn task_errors(&self) -> &BTreeMap<String, String> {
        &self.inner.run.payload.step_run_errors
    }

    /// What triggered the run (e.g. the event payload), as the engine reports it.
    pub fn triggers(&self) -> &BTreeMap<String, Value> {
        &self.inner.run.payload.triggers
    }

    /// The payload of the event filter that started this run (a workflow's
    /// [`EventFilter`](crate::EventFilter) matching a scoped event), if one did.
    pub fn filter_payload(&self) -> Option<&Value> {
        self.inner
            .run
            .payload
            .triggers
            .get("filter_payload")
            .filter(|v| !v.is_null())
    }

    /// How the run was started, as the engine names it (e.g. `manual`, `event`, `cron`), when
    /// it says.
    pub fn triggered_by(&self) -> Option<&str> {
        self.inner.run.payload.triggered_by.as_deref()
    }

    /// The run's additional metadata.
    pub fn additional_metadata(&self) -> &serde_json::Map<String, Value> {
        &self.inner.run.metadata
    }

    /// 0 on the first attempt, then 1, 2, ... on retries.
    pub fn retry_count(&self) -> u32 {
        self.inner.run.ids.retry_count.max(0) as u32
    }

    /// The workflow run this task belongs to.
    pub fn workflow_run_id(&self) -> &str {
        &self.inner.run.ids.workflow_run_id
    }

    /// This task run's external id.
    pub fn task_run_id(&self) -> &str {
        &self.inner.run.ids.task_run_external_id
    }

    /// The action id this task was assigned under (`<workflow>:<task>`).
    pub fn action_id(&self) -> &str {
        &self.inner.run.ids.action_id
    }

    /// This task's name.
    pub fn task_name(&self) -> &str {
        &self.inner.run.ids.task_name
    }

    /// The workflow run that spawned this one, if it is a child.
    pub fn parent_workflow_run_id(&self) -> Option<&str> {
        self.inner.run.ids.parent_workflow_run_id.as_deref()
    }

    /// The run's priority.
    pub fn priority(&self) -> i32 {
        self.inner.run.ids.priority
    }

    /// The worker running this task.
    pub fn worker_id(&self) -> &str {
        &self.inner.run.ids.worker_id
    }

    /// Resolves when the engine cancels the run (or the worker abandons it at its drain
    /// deadline). Handlers that select on it can stop cleanly before they are dropped.
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.inner.cancel.cancelled()
    }

    /// Cancels this run in the engine and stops the task here at once (the official SDKs'
    /// `ctx.cancel()`): the run ends CANCELLED, nothing more is reported for it, and the
    /// handler's future is dropped if it does not return within a second.
    pub async fn cancel(&self) -> Result<(), Error> {
        match self.recorded() {
            Some(t) => t.recorded.cancel(),
            None => {
                self.inner
                    .client
                    .cancel(&self.inner.run.ids.task_run_external_id)
                    .await?
            }
        }
        self.inner.cancel.cancel();
        Ok(())
    }

    /// Whether the run has been cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// Sends a log line to the engine, shown with the run.
    pub async fn log(&self, message: impl Into<String>) -> Result<(), Error> {
        if let Some(t) = self.recorded() {
            t.recorded.log(message.into());
            return Ok(());
        }
        self.inner
            .client
            .put_log(
                &self.inner.run.ids.task_run_external_id,
                message.into(),
                "INFO",
                self.inner.run.ids.retry_count,
            )
            .await
    }

    /// Streams a chunk of bytes to subscribers of the run (numbered from 0 in this attempt).
    pub async fn stream(&self, chunk: impl Into<Vec<u8>>) -> Result<(), Error> {
        let index = self.inner.stream_index.fetch_add(1, Ordering::Relaxed);
        if let Some(t) = self.recorded() {
            t.recorded.chunk(chunk.into());
            return Ok(());
        }
        self.inner
            .client
            .put_stream_event(&self.inner.run.ids.task_run_external_id, chunk.into(), index)
            .await
    }

    /// Frees this task's slot while it keeps running (e.g. while it only waits).
    pub async fn release_slot(&self) -> Result<(), Error> {
        match &self.inner.link {
            Link::Test(t) => t.recorded.release_slot(),
            Link::Engine { engine, slot, .. } => {
                let req = ReleaseSlotRequest {
                    task_run_external_id: self.inner.run.ids.task_run_external_id.clone(),
                };
                call("ReleaseSlot", || engine.release_slot(req.clone())).await?;
                slot.release();
            }
        }
        Ok(())
    }

    /// Extends the run's execution timeout by `by`, in the engine and on this worker.
    pub async fn refresh_timeout(&self, by: Duration) -> Result<(), Error> {
        let inc = go_duration("timeout increment", by).map_err(Error::Definition)?;
        match &self.inner.link {
            Link::Test(t) => t.recorded.refresh_timeout(by),
            Link::Engine { engine, deadline, .. } => {
                let req = RefreshTimeoutRequest {
                    task_run_external_id: self.inner.run.ids.task_run_external_id.clone(),
                    increment_timeout_by: inc,
                };
                call("RefreshTimeout", || engine.refresh_timeout(req.clone())).await?;
                *deadline.lock().expect("deadline lock") += by;
            }
        }
        Ok(())
    }

    /// Sets labels on this worker (affects which future tasks it is assigned).
    pub async fn upsert_labels(&self, labels: BTreeMap<String, LabelValue>) -> Result<(), Error> {
        if let Some(t) = self.recorded() {
            t.recorded.upsert_labels(labels);
            return Ok(());
        }
        self.inner
            .client
            .upsert_worker_labels(&self.inner.run.ids.worker_id, labels)
            .await
    }

    /// Starts a child workflow run of this run.
    pub async fn spawn_workflow<I: Serialize>(
        &self,
        workflow: &str,
        input: &I,
        options: TriggerOptions,
    ) -> Result<RunRef, Error> {
        let index = self.inner.child_index.fetch_add(1, Ordering::SeqCst);
        if let Some(t) = self.recorded() {
            let input = serde_json::to_value(input).map_err(|e| Error::Payload(e.to_string()))?;
            return Ok(t.recorded.child(workflow, input));
        }
        self.inner
            .client
            .trigger_child(workflow, input, options, self.parent(index))
            .await
    }

    /// Starts a child run of `workflow` per input, in one call (the official SDKs'
    /// `run_many` without waiting); their refs, in order.
    pub async fn spawn_many<I: Serialize>(
        &self,
        workflow: &str,
        items: Vec<(I, TriggerOptions)>,
    ) -> Result<Vec<RunRef>, Error> {
        let requests = self.child_requests(workflow, items)?;
        if let Some(t) = self.recorded() {
            return Ok(record_children(t, workflow, &requests));
        }
        self.inner.client.trigger_children(requests).await
    }

    /// Starts a child run of `workflow` per input and waits for all their outputs, in order;
    /// the first failure if any fails.
    pub async fn run_many<I: Serialize>(
        &self,
        workflow: &str,
        items: Vec<(I, TriggerOptions)>,
    ) -> Result<Vec<BTreeMap<String, Value>>, Error> {
        let runs = self.spawn_many(workflow, items).await?;
        if let Some(t) = self.recorded() {
            return runs.iter().map(|_| stubbed(&t.children, workflow)).collect();
        }
        let waits = futures::future::try_join_all(runs.iter().map(|r| self.inner.client.wait_for_run(&r.id)));
        tokio::select! {
            r = waits => r,
            _ = self.cancelled() => Err(Error::Shutdown),
        }
    }

    /// The trigger requests of child runs of `workflow`, numbered after the run's children so far.
    pub(crate) fn child_requests<I: Serialize>(
        &self,
        workflow: &str,
        items: Vec<(I, TriggerOptions)>,
    ) -> Result<Vec<hatchet_proto::v1::TriggerWorkflowRequest>, Error> {
        let count = i32::try_from(items.len())
            .map_err(|_| Error::Definition(format!("{} children are more than one task can start", items.len())))?;
        let first = self.inner.child_index.fetch_add(count, Ordering::SeqCst);
        items
            .into_iter()
            .zip(first..)
            .map(|((input, options), index)| {
                self.inner
                    .client
                    .trigger_request(workflow, &input, &options, Some(self.parent(index)))
            })
            .collect()
    }

    /// The durable run this attempt is, if its task is durable.
    pub(crate) fn durable_run(&self) -> Option<&Arc<DurableRun>> {
        match &self.inner.link {
            Link::Engine { durable, .. } => durable.as_ref(),
            Link::Test(_) => None,
        }
    }

    /// Whether this is a [`TestContext`](crate::testing::TestContext)'s run.
    pub(crate) fn is_test(&self) -> bool {
        self.recorded().is_some()
    }

    pub(crate) fn next_now_index(&self) -> i32 {
        self.inner.now_index.fetch_add(1, Ordering::Relaxed)
    }

    /// A durable wait in a test: each group fires with its first sleep or stubbed event.
    pub(crate) fn test_wait(&self, groups: &[AnyOf]) -> Result<WaitResult, Error> {
        let t = self.recorded().ok_or(Error::Shutdown)?;
        let mut fired = BTreeMap::new();
        for g in groups {
            let (key, data) = g
                .conditions()
                .iter()
                .find_map(|c| c.stubbed(&t.events))
                .ok_or_else(|| {
                    Error::Config(format!(
                        "test context: nothing fires the wait {g:?}; stub its event with TestContext::event"
                    ))
                })?;
            fired.insert(key, data);
        }
        t.recorded.wait(fired.keys().cloned().collect());
        Ok(WaitResult::new(fired))
    }

    pub(crate) fn test_memo(&self, key: &str) {
        if let Some(t) = self.recorded() {
            t.recorded.memo(key.to_owned());
        }
    }

    /// Durable children in a test: recorded, answered with their stubs.
    pub(crate) fn test_children(
        &self,
        workflow: &str,
        requests: Vec<hatchet_proto::v1::TriggerWorkflowRequest>,
    ) -> Result<Vec<Value>, Error> {
        let t = self.recorded().ok_or(Error::Shutdown)?;
        record_children(t, workflow, &requests)
            .iter()
            .map(|_| stubbed(&t.children, workflow).map(|outputs| Value::Object(outputs.into_iter().collect())))
            .collect()
    }

    fn parent(&self, index: i32) -> Parent<'_> {
        Parent {
            run_id: &self.inner.run.ids.workflow_run_id,
            task_run_id: &self.inner.run.ids.task_run_external_id,
            worker_id: &self.inner.run.ids.worker_id,
            index,
        }
    }

    /// Starts a child workflow run and waits for its outputs (keyed by task name).
    pub async fn run_workflow<I: Serialize>(
        &self,
        workflow: &str,
        input: &I,
        options: TriggerOptions,
    ) -> Result<BTreeMap<String, Value>, Error> {
        let run = self.spawn_workflow(workflow, input, options).await?;
        if let Some(t) = self.recorded() {
            return stubbed(&t.children, workflow);
        }
        tokio::select! {
            r = self.inner.client.wait_for_run(&run.id) => r,
            _ = self.cancelled() => Err(Error::Shutdown),
        }
    }

    /// The client this worker uses, for anything else (trigger, events, ...). In a test
    /// context: the client given to the test, or one connected to no engine.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }
}

/// Records the child runs `requests` start in a test; their refs.
fn record_children(
    t: &TestLink,
    workflow: &str,
    requests: &[hatchet_proto::v1::TriggerWorkflowRequest],
) -> Vec<RunRef> {
    requests
        .iter()
        .map(|r| {
            t.recorded
                .child(workflow, serde_json::from_str(&r.input).unwrap_or(Value::Null))
        })
        .collect()
}

/// The output the engine gives a skipped task.
fn is_skipped_output(output: &Value) -> bool {
    output.get("skipped") == Some(&Value::Bool(true))
}

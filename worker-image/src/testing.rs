//! Unit-testing task handlers without an engine (the official SDKs' `mock_run`): a
//! [`TestContext`] builds the [`Context`] a handler receives — input, parents' outputs,
//! metadata, retry count, lifespan value, stubbed child runs — and records what the handler
//! asked of the engine (log lines, stream chunks, slot release, timeout refreshes, children
//! started, self-cancel) so the test can assert on it.
//!
//! ```
//! use hatchet_worker::testing::TestContext;
//! use hatchet_worker::{Context, TaskError};
//! use serde_json::json;
//!
//! async fn total(items: Vec<u32>, ctx: Context) -> Result<u32, TaskError> {
//!     ctx.log(format!("{} items", items.len())).await.map_err(TaskError::retryable)?;
//!     let tax: u32 = ctx.parent_output("tax")?;
//!     Ok(items.iter().sum::<u32>() + tax)
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let test = TestContext::new(json!([1, 2])).parent_output("tax", 4);
//! assert_eq!(total(vec![1, 2], test.context()).await.unwrap(), 7);
//! assert_eq!(test.recorded().logs(), ["2 items"]);
//! # });
//! ```

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::client::RunRef;
use crate::context::{AssignedRun, Context, RunIds, TestLink};
use crate::durable::DurableContext;
use crate::payload::ActionPayload;
use crate::workflow::LabelValue;
use crate::{Client, ClientConfig, Error, Task, TaskError, TlsStrategy};

/// The run a test hands a handler: build it, then take [`TestContext::context`].
#[derive(Clone)]
pub struct TestContext {
    ids: RunIds,
    payload: ActionPayload,
    metadata: serde_json::Map<String, Value>,
    lifespan: Option<Arc<dyn Any + Send + Sync>>,
    children: BTreeMap<String, BTreeMap<String, Value>>,
    events: BTreeMap<String, Value>,
    client: Option<Client>,
    recorded: Recorded,
}

/// A token for a tenant of an engine on 127.0.0.1:9 (the discard port: nothing answers), so a
/// test context's client is well formed but reaches no engine.
const UNCONNECTED_TOKEN: &str = concat!(
    "eyJhbGciOiJub25lIn0.",
    "eyJzdWIiOiJ0ZXN0LXRlbmFudCIsInNlcnZlcl91cmwiOiJodHRwOi8vMTI3LjAuMC4xOjkiLCJncnBjX2Jyb2FkY2FzdF9hZGRyZXNzIjoiMTI3LjAuMC4xOjkifQ",
    ".dGVzdA"
);

fn unconnected_client() -> Client {
    let config = ClientConfig::builder(UNCONNECTED_TOKEN)
        .tls_strategy(TlsStrategy::None)
        .healthcheck_enabled(false)
        .build()
        .expect("the test token is well formed");
    Client::new(config).expect("a client for no engine")
}

impl std::fmt::Debug for TestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestContext")
            .field("ids", &self.ids)
            .field("payload", &self.payload)
            .finish_non_exhaustive()
    }
}

fn json_of(value: impl Serialize) -> Value {
    serde_json::to_value(value).expect("a test value serializes to JSON")
}

impl TestContext {
    /// A first attempt of task `test-task` with `input`.
    pub fn new(input: impl Serialize) -> Self {
        Self {
            ids: RunIds {
                workflow_run_id: "test-workflow-run".into(),
                task_run_external_id: "test-task-run".into(),
                task_name: "test-task".into(),
                action_id: "test:test-task".into(),
                worker_id: "test-worker".into(),
                ..RunIds::default()
            },
            payload: ActionPayload {
                input: json_of(input),
                ..ActionPayload::default()
            },
            metadata: serde_json::Map::new(),
            lifespan: None,
            children: BTreeMap::new(),
            events: BTreeMap::new(),
            client: None,
            recorded: Recorded::default(),
        }
    }

    /// The completed parent `task` with `output`.
    pub fn parent_output(mut self, task: impl Into<String>, output: impl Serialize) -> Self {
        self.payload.parents.insert(task.into(), json_of(output));
        self
    }

    /// Parent `task` skipped by its conditions (as the engine reports it).
    pub fn skipped_parent(mut self, task: impl Into<String>) -> Self {
        self.payload
            .parents
            .insert(task.into(), serde_json::json!({"skipped": true}));
        self
    }

    /// A failed task of the run, for an on-failure handler.
    pub fn task_error(mut self, task: impl Into<String>, error: impl Into<String>) -> Self {
        self.payload.step_run_errors.insert(task.into(), error.into());
        self
    }

    /// What triggered the run, under `key` (an event's payload, a condition's data).
    pub fn trigger(mut self, key: impl Into<String>, value: impl Serialize) -> Self {
        self.payload.triggers.insert(key.into(), json_of(value));
        self
    }

    /// The payload of the event filter that started the run.
    pub fn filter_payload(self, payload: impl Serialize) -> Self {
        self.trigger("filter_payload", payload)
    }

    /// Additional metadata of the run.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// The attempt: 0 for the first, 1 for the first retry, ...
    pub fn retry_count(mut self, n: u32) -> Self {
        self.ids.retry_count = i32::try_from(n).unwrap_or(i32::MAX);
        self
    }

    /// The task's name as the context reports it.
    pub fn task_name(mut self, name: impl Into<String>) -> Self {
        self.ids.task_name = name.into();
        self
    }

    /// The run's priority.
    pub fn priority(mut self, p: i32) -> Self {
        self.ids.priority = p;
        self
    }

    /// The worker's lifespan value, as [`WorkerBuilder::lifespan`](crate::WorkerBuilder::lifespan) shares it.
    pub fn lifespan<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.lifespan = Some(Arc::new(value));
        self
    }

    /// What a child run of `workflow` returns to `run_workflow` / `run_many` (its outputs by
    /// task name). A child of a workflow with no stub fails the call, naming it.
    pub fn child_output(mut self, workflow: impl Into<String>, outputs: BTreeMap<String, Value>) -> Self {
        self.children.insert(workflow.into(), outputs);
        self
    }

    /// The payload a durable task's wait for event `key` receives (a wait fires with its first
    /// sleep or stubbed event; one with neither fails, naming it).
    pub fn event(mut self, key: impl Into<String>, payload: impl Serialize) -> Self {
        self.events.insert(key.into(), json_of(payload));
        self
    }

    /// The client [`Context::client`] returns (e.g. one for a real engine); by default a
    /// client connected to no engine.
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// A context for one call of a handler; every context of this test records into
    /// [`TestContext::recorded`]. Call it inside a tokio runtime (`#[tokio::test]`): the
    /// context carries a client.
    pub fn context(&self) -> Context {
        let link = TestLink {
            recorded: self.recorded.clone(),
            children: self.children.clone(),
            events: self.events.clone(),
            client: self.client.clone().unwrap_or_else(unconnected_client),
        };
        Context::for_test(
            AssignedRun {
                ids: self.ids.clone(),
                payload: self.payload.clone(),
                metadata: self.metadata.clone(),
            },
            self.lifespan.clone(),
            link,
        )
    }

    /// What the handlers given this test's contexts asked of the engine.
    pub fn recorded(&self) -> &Recorded {
        &self.recorded
    }

    /// The durable context a durable task's handler receives: waits fire at once (see
    /// [`TestContext::event`]), memoized steps run, children answer with their stubs.
    pub fn durable_context(&self) -> DurableContext {
        DurableContext::of(self.context()).expect("a test context serves durable calls")
    }

    /// Runs `task`'s handler as the worker would (input decoded to its type, output encoded to
    /// JSON), without middleware.
    pub async fn run(&self, task: &Task) -> Result<Value, TaskError> {
        (task.handler)(self.context()).await
    }
}

/// What a handler asked of the engine in a test.
#[derive(Debug, Clone, Default)]
pub struct Recorded(Arc<Mutex<Calls>>);

#[derive(Debug, Default)]
struct Calls {
    logs: Vec<String>,
    stream: Vec<Vec<u8>>,
    slot_released: bool,
    timeout_refreshed_by: Duration,
    labels: BTreeMap<String, LabelValue>,
    children: Vec<(String, Value)>,
    cancelled: bool,
    waits: Vec<Vec<String>>,
    memos: Vec<String>,
}

impl Recorded {
    fn with<T>(&self, f: impl FnOnce(&mut Calls) -> T) -> T {
        f(&mut self.0.lock().expect("test record lock"))
    }

    /// Log lines, in order.
    pub fn logs(&self) -> Vec<String> {
        self.with(|c| c.logs.clone())
    }

    /// Stream chunks, in order.
    pub fn stream(&self) -> Vec<Vec<u8>> {
        self.with(|c| c.stream.clone())
    }

    /// Whether the task gave its slot back early.
    pub fn slot_released(&self) -> bool {
        self.with(|c| c.slot_released)
    }

    /// How much the task extended its timeout, in total.
    pub fn timeout_refreshed_by(&self) -> Duration {
        self.with(|c| c.timeout_refreshed_by)
    }

    /// Labels the task set on its worker.
    pub fn labels(&self) -> BTreeMap<String, LabelValue> {
        self.with(|c| c.labels.clone())
    }

    /// Child runs started: workflow and input, in order.
    pub fn children(&self) -> Vec<(String, Value)> {
        self.with(|c| c.children.clone())
    }

    /// Whether the task cancelled its own run.
    pub fn cancelled(&self) -> bool {
        self.with(|c| c.cancelled)
    }

    /// A durable task's waits, in order: the data keys of the conditions that fired.
    pub fn waits(&self) -> Vec<Vec<String>> {
        self.with(|c| c.waits.clone())
    }

    /// A durable task's memoized steps, by key, in order.
    pub fn memos(&self) -> Vec<String> {
        self.with(|c| c.memos.clone())
    }

    pub(crate) fn wait(&self, keys: Vec<String>) {
        self.with(|c| c.waits.push(keys));
    }

    pub(crate) fn memo(&self, key: String) {
        self.with(|c| c.memos.push(key));
    }

    pub(crate) fn log(&self, line: String) {
        self.with(|c| c.logs.push(line));
    }

    pub(crate) fn chunk(&self, chunk: Vec<u8>) {
        self.with(|c| c.stream.push(chunk));
    }

    pub(crate) fn release_slot(&self) {
        self.with(|c| c.slot_released = true);
    }

    pub(crate) fn refresh_timeout(&self, by: Duration) {
        self.with(|c| c.timeout_refreshed_by += by);
    }

    pub(crate) fn upsert_labels(&self, labels: BTreeMap<String, LabelValue>) {
        self.with(|c| c.labels.extend(labels));
    }

    pub(crate) fn cancel(&self) {
        self.with(|c| c.cancelled = true);
    }

    /// Records a child run; its ref (numbered in start order).
    pub(crate) fn child(&self, workflow: &str, input: Value) -> RunRef {
        self.with(|c| {
            c.children.push((workflow.to_owned(), input));
            RunRef {
                id: format!("test-child-{}", c.children.len() - 1),
            }
        })
    }
}

/// The stubbed outputs of a child run of `workflow`, or the error naming the missing stub.
pub(crate) fn stubbed(
    children: &BTreeMap<String, BTreeMap<String, Value>>,
    workflow: &str,
) -> Result<BTreeMap<String, Value>, Error> {
    children.get(workflow).cloned().ok_or_else(|| {
        Error::Config(format!(
            "test context: no output for child workflow {workflow:?}; stub it with TestContext::child_output"
        ))
    })
}

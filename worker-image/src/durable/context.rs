//! What a durable task sees: its [`Context`] plus calls whose results the engine keeps in
//! the task's event log, so a run that starts again (after its worker stopped, or after it
//! was evicted while it waited) replays them from the log instead of doing them twice.

use std::collections::BTreeMap;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hatchet_proto::v1::durable_task_request::Message as Request;
use hatchet_proto::v1::{
    DurableEventLogEntryRef, DurableTaskCompleteMemoRequest, DurableTaskMemoRequest, DurableTaskTriggerRunsRequest,
    DurableTaskWaitForRequest,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::eviction::{EvictionPolicy, Waiting};
use super::pending::{Ack, Completion, EntryKey, Invocation, Refusal};
use super::stream::DurableStream;
use crate::client::TriggerOptions;
use crate::context::Context;
use crate::workflow::{AnyOf, Condition, durable_conditions, needs_lookback};
use crate::{Error, TaskError};

/// One attempt of a durable task as the worker runs it: the stream its calls go over, the
/// invocation they belong to, and its eviction policy.
pub(crate) struct DurableRun {
    pub(crate) stream: DurableStream,
    pub(crate) waiting: Arc<Waiting>,
    pub(crate) invocation: Invocation,
    pub(crate) policy: EvictionPolicy,
    /// Held from a request's sending until its ack: the engine acks by invocation only, and
    /// numbers log entries in the order requests reach it.
    pub(crate) turn: tokio::sync::Mutex<()>,
}

/// A durable task's handle on its run: everything [`Context`] has (it derefs to it), plus
/// sleeps, waits, memoized steps and child runs recorded in the run's event log.
///
/// The log is replayed by position: a run that starts again must make the same calls in the
/// same order (same sleep durations, same condition keys, same memo keys, same child inputs),
/// or the engine fails it with [`Error::NonDeterminism`]. Code that varies between runs (the
/// time, random numbers, a database read) belongs in [`DurableContext::memo`].
#[derive(Clone)]
pub struct DurableContext {
    ctx: Context,
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Engine(Arc<DurableRun>),
    /// A [`TestContext`](crate::testing::TestContext)'s run: waits fire at once.
    Test,
}

impl Deref for DurableContext {
    type Target = Context;

    fn deref(&self) -> &Context {
        &self.ctx
    }
}

impl std::fmt::Debug for DurableContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableContext")
            .field("ctx", &self.ctx)
            .field("invocation", &self.invocation_count())
            .finish()
    }
}

/// What a durable wait ended with: the data of each condition that fired, by its data key
/// (`sleep:<duration>` for a sleep, the event key for an event, or the key given with
/// [`Condition::data_key`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WaitResult {
    fired: BTreeMap<String, Value>,
}

impl WaitResult {
    /// The data of the condition stored under `data_key` (for an event, its payload), if it fired.
    pub fn get(&self, data_key: &str) -> Option<&Value> {
        self.fired.get(data_key)
    }

    /// Whether the condition stored under `data_key` fired.
    pub fn fired(&self, data_key: &str) -> bool {
        self.fired.contains_key(data_key)
    }

    /// The data keys of the conditions that fired.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.fired.keys().map(String::as_str)
    }

    pub(crate) fn new(fired: BTreeMap<String, Value>) -> Self {
        Self { fired }
    }

    /// Reads the engine's result, `{"CREATE": {"<data key>": [<data>, ...]}}`.
    fn from_payload(payload: &[u8]) -> Result<Self, Error> {
        if payload.is_empty() {
            return Ok(Self::default());
        }
        let v: BTreeMap<String, BTreeMap<String, Vec<Value>>> = serde_json::from_slice(payload)
            .map_err(|e| Error::Payload(format!("the engine's wait result is not what it should be: {e}")))?;
        let fired = v
            .into_values()
            .flatten()
            .filter_map(|(key, mut data)| (!data.is_empty()).then(|| (key, data.swap_remove(0))))
            .collect();
        Ok(Self { fired })
    }
}

impl DurableContext {
    /// The durable context of a run `ctx` belongs to; `None` for a task that is not durable.
    pub(crate) fn of(ctx: Context) -> Option<Self> {
        let backend = match ctx.durable_run() {
            Some(run) => Backend::Engine(Arc::clone(run)),
            None if ctx.is_test() => Backend::Test,
            None => return None,
        };
        Some(Self { ctx, backend })
    }

    /// How many times this run has started (1 the first time; each restart after an eviction
    /// or a lost worker adds one, a retry too): what was logged before is replayed.
    pub fn invocation_count(&self) -> i32 {
        match &self.backend {
            Backend::Engine(run) => run.invocation.count,
            Backend::Test => 1,
        }
    }

    /// Sleeps `duration`, counted from the first time the run reached this call: a run that
    /// starts again sleeps only what is left. While it sleeps, the run may be evicted.
    pub async fn sleep_for(&self, duration: Duration) -> Result<(), Error> {
        self.wait_for([Condition::sleep(duration)]).await.map(|_| ())
    }

    /// Waits until every group holds (any condition of a group suffices): sleeps and events.
    /// A run that starts again gets the result at once if it came while it was gone.
    pub async fn wait_for<G: Into<AnyOf>>(&self, groups: impl IntoIterator<Item = G>) -> Result<WaitResult, Error> {
        let groups: Vec<AnyOf> = groups.into_iter().map(Into::into).collect();
        let run = match &self.backend {
            Backend::Engine(run) => run,
            Backend::Test => return self.ctx.test_wait(&groups),
        };
        let now = if needs_lookback(&groups) {
            Some(self.now().await.map_err(|e| Error::Durable(e.to_string()))?)
        } else {
            None
        };
        let conditions = durable_conditions(&groups, &self.ctx.client().config().namespace, now)
            .map_err(|e| Error::Definition(format!("durable wait_for: {e}")))?;
        let request = Request::WaitFor(DurableTaskWaitForRequest {
            invocation_count: run.invocation.count,
            durable_task_external_id: run.invocation.task.clone(),
            wait_for_conditions: Some(conditions),
            label: None,
        });
        let Ack::Wait { entry } = self.send(run, request).await? else {
            return Err(unexpected("wait_for"));
        };
        let completion = self.await_entry(run, entry).await?;
        WaitResult::from_payload(&completion.payload)
    }

    /// Waits for an event with `key` (and, with an `expression`, a payload making that CEL
    /// expression true); its payload.
    pub async fn wait_for_event(&self, key: &str, expression: Option<&str>) -> Result<Value, Error> {
        let condition = match expression {
            Some(e) => Condition::event_matching(key, e),
            None => Condition::event(key),
        };
        let result = self.wait_for([condition]).await?;
        Ok(result.get(key).cloned().unwrap_or(Value::Null))
    }

    /// Sleeps until `at` (by the run's memoized time, so a replay waits for the same moment);
    /// returns at once if `at` has passed.
    pub async fn sleep_until(&self, at: SystemTime) -> Result<(), Error> {
        let now = self.now().await.map_err(|e| Error::Durable(e.to_string()))?;
        match at.duration_since(now) {
            // Whole milliseconds, as the engine's durations are.
            Ok(left) if left.as_millis() > 0 => {
                let ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
                self.sleep_for(Duration::from_millis(ms)).await
            }
            _ => Ok(()),
        }
    }

    /// Runs `step` once per run: the first time its result is stored in the log under `key`;
    /// a run that starts again gets that result without running it. A step that fails stores
    /// nothing (it runs again next time). Keys are unique within a run.
    pub async fn memo<T, F, Fut>(&self, key: &str, step: F) -> Result<T, TaskError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, TaskError>>,
    {
        let run = match &self.backend {
            Backend::Engine(run) => run,
            Backend::Test => {
                self.ctx.test_memo(key);
                return step().await;
            }
        };
        let request = Request::Memo(DurableTaskMemoRequest {
            invocation_count: run.invocation.count,
            durable_task_external_id: run.invocation.task.clone(),
            key: key.as_bytes().to_vec(),
            payload: None,
        });
        let Ack::Memo { entry, existed, result } = self.send(run, request).await? else {
            return Err(unexpected("memo").into());
        };
        if existed && let Some(stored) = result {
            return serde_json::from_slice(&stored).map_err(|e| {
                TaskError::non_retryable(format!(
                    "memo {key:?}: the stored result does not match the requested type: {e}"
                ))
                .with_type("InvalidMemo")
            });
        }
        if existed {
            tracing::warn!(
                memo = key,
                "memo entry exists without a result (an earlier run stopped inside it); running it again"
            );
        }
        let value = step().await?;
        let payload = serde_json::to_vec(&value)
            .map_err(|e| TaskError::non_retryable(format!("memo {key:?}: the result is not JSON: {e}")))?;
        run.stream
            .tell(Request::CompleteMemo(DurableTaskCompleteMemoRequest {
                r#ref: Some(entry_ref(&entry)),
                payload,
                memo_key: key.as_bytes().to_vec(),
            }))
            .map_err(Error::from)?;
        Ok(value)
    }

    /// The time the run first reached this call (memoized: the same on every replay). Each
    /// call is its own log entry, keyed by its position among the run's calls of `now`.
    pub async fn now(&self) -> Result<SystemTime, TaskError> {
        let index = self.ctx.next_now_index();
        let millis: u64 = self
            .memo(&format!("hatchet:now:{index}"), || async {
                Ok(SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
            })
            .await?;
        Ok(UNIX_EPOCH + Duration::from_millis(millis))
    }

    /// Starts a child run of `workflow` and waits for its result, durably: a run that starts
    /// again neither starts a second child nor loses the first one's result. The result is the
    /// engine's: a single-task workflow's output, or a DAG's outputs by task name.
    pub async fn run_child<I: Serialize>(
        &self,
        workflow: &str,
        input: &I,
        options: TriggerOptions,
    ) -> Result<Value, Error> {
        let mut results = self.run_children(workflow, vec![(input, options)]).await?;
        results.pop().ok_or_else(|| unexpected("trigger_runs"))
    }

    /// Starts a child run of `workflow` per input in one log step and waits for all their
    /// results, in order; the first failure if any fails.
    pub async fn run_children<I: Serialize>(
        &self,
        workflow: &str,
        items: Vec<(I, TriggerOptions)>,
    ) -> Result<Vec<Value>, Error> {
        let expected = items.len();
        let requests = self.ctx.child_requests(workflow, items)?;
        let run = match &self.backend {
            Backend::Engine(run) => run,
            Backend::Test => return self.ctx.test_children(workflow, requests),
        };
        let request = Request::TriggerRuns(DurableTaskTriggerRunsRequest {
            invocation_count: run.invocation.count,
            durable_task_external_id: run.invocation.task.clone(),
            trigger_opts: requests,
        });
        let Ack::Runs { entries } = self.send(run, request).await? else {
            return Err(unexpected("trigger_runs"));
        };
        if entries.len() != expected {
            return Err(Error::Durable(format!(
                "the engine acknowledged {} child runs of {expected}",
                entries.len()
            )));
        }
        let waits = entries.into_iter().map(|(entry, run_id)| async move {
            let c = self.await_entry(run, entry).await?;
            if let Some(error) = c.failure {
                return Err(Error::RunFailed {
                    run_id,
                    status: "FAILED".into(),
                    error: crate::payload::parse_failure(&error).headline(),
                });
            }
            if c.payload.is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_slice(&c.payload).map_err(|e| Error::Payload(format!("result of child run {run_id}: {e}")))
        });
        futures::future::try_join_all(waits).await
    }

    /// Sends `request` and waits for its ack, one request of the run at a time.
    async fn send(&self, run: &DurableRun, request: Request) -> Result<Ack, Error> {
        let _turn = run.turn.lock().await;
        tokio::select! {
            ack = run.stream.request(run.invocation.clone(), request) => ack.map_err(Error::from),
            _ = self.ctx.cancelled() => Err(Error::Shutdown),
        }
    }

    /// Waits for `entry` to complete, counted as waiting (so evictable) meanwhile.
    async fn await_entry(&self, run: &DurableRun, entry: EntryKey) -> Result<Completion, Error> {
        let guard = run.waiting.enter(run.invocation.clone(), run.policy.clone());
        let completion = tokio::select! {
            c = run.stream.completion(entry) => c.map_err(Error::from)?,
            _ = self.ctx.cancelled() => return Err(Error::Shutdown),
        };
        if !guard.settle().await {
            return Err(Error::from(Refusal::Evicted));
        }
        Ok(completion)
    }
}

fn entry_ref(e: &EntryKey) -> DurableEventLogEntryRef {
    DurableEventLogEntryRef {
        durable_task_external_id: e.invocation.task.clone(),
        invocation_count: e.invocation.count,
        branch_id: e.branch,
        node_id: e.node,
    }
}

fn unexpected(what: &str) -> Error {
    Error::Durable(format!("the engine answered {what} with another request's ack"))
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NonDeterminism { node, message } => Error::NonDeterminism { node, message },
            Refusal::Engine(message) => Error::Durable(message),
            Refusal::Disconnected => Error::Durable("the durable-task stream broke before the engine answered".into()),
            Refusal::Evicted => Error::Evicted,
        }
    }
}

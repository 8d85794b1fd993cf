//! One task of a workflow: its typed handler and its scheduling options.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::conditions::{AnyOf, TaskConditions};
use super::options::{Concurrency, DesiredLabel, RateLimit, TaskDefaults};
use crate::context::Context;
use crate::durable::{DurableContext, EvictionPolicy};

/// How a task failed. Any `std::error::Error` converts into a retryable `TaskError`, so
/// handlers can use `?`; [`TaskError::non_retryable`] stops the engine's retries.
pub struct TaskError {
    pub(crate) error_type: String,
    pub(crate) message: String,
    pub(crate) retryable: bool,
}

impl TaskError {
    /// A failure the engine may retry (if the task has retries left).
    pub fn retryable(message: impl fmt::Display) -> Self {
        Self {
            error_type: "TaskError".into(),
            message: message.to_string(),
            retryable: true,
        }
    }

    /// A failure that retrying cannot fix: the engine fails the run at once.
    pub fn non_retryable(message: impl fmt::Display) -> Self {
        Self {
            error_type: "NonRetryableException".into(),
            message: message.to_string(),
            retryable: false,
        }
    }

    /// Names the error type shown before the message (`<type>: <message>`).
    pub fn with_type(mut self, error_type: impl Into<String>) -> Self {
        self.error_type = error_type.into();
        self
    }

    /// Whether the engine may retry.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The message without its type.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for TaskError {
    fn from(e: E) -> Self {
        let ty = std::any::type_name::<E>()
            .rsplit("::")
            .next()
            .unwrap_or("Error")
            .to_owned();
        Self {
            error_type: ty,
            message: e.to_string(),
            retryable: true,
        }
    }
}

/// A handler after its input and output types are erased to JSON.
pub(crate) type Handler =
    Arc<dyn Fn(Context) -> BoxFuture<'static, Result<serde_json::Value, TaskError>> + Send + Sync>;

/// Erases a handler's types: `context` turns the run's context into what the handler takes,
/// the input is decoded to `I` and the output encoded to JSON, each failing the run (without
/// retries) with a message naming the task.
fn typed<C, I, O, F, Fut>(
    name: &str,
    context: impl Fn(Context) -> Result<C, TaskError> + Send + Sync + 'static,
    handler: F,
) -> Handler
where
    C: Send + 'static,
    I: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
    F: Fn(I, C) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, TaskError>> + Send + 'static,
{
    let task_name = name.to_owned();
    let handler = Arc::new(handler);
    let context = Arc::new(context);
    Arc::new(move |ctx: Context| {
        let handler = Arc::clone(&handler);
        let context = Arc::clone(&context);
        let task_name = task_name.clone();
        Box::pin(async move {
            let input: I = serde_json::from_value(ctx.raw_input().clone()).map_err(|e| {
                TaskError::non_retryable(format!("input of task {task_name:?} does not match its type: {e}"))
                    .with_type("InvalidInput")
            })?;
            let output = handler(input, context(ctx)?).await?;
            serde_json::to_value(output).map_err(|e| {
                TaskError::non_retryable(format!("output of task {task_name:?} is not JSON: {e}"))
                    .with_type("InvalidOutput")
            })
        })
    })
}

/// A task: a named async handler `Fn(Input, Context) -> Result<Output, TaskError>` plus options.
#[derive(Clone)]
pub struct Task {
    pub(crate) name: String,
    pub(crate) handler: Handler,
    /// Runs with a [`DurableContext`] in the worker's durable slots.
    pub(crate) durable: bool,
    /// Set by [`Task::eviction`]; only a durable task may have one.
    pub(crate) eviction: Option<EvictionPolicy>,
    pub(crate) parents: Vec<String>,
    /// Retries, backoff and timeouts the task sets itself; what it leaves unset comes from the
    /// workflow's [`TaskDefaults`], then from the official SDKs' defaults.
    pub(crate) own: TaskDefaults,
    pub(crate) rate_limits: Vec<RateLimit>,
    pub(crate) desired_labels: BTreeMap<String, DesiredLabel>,
    pub(crate) concurrency: Vec<Concurrency>,
    pub(crate) conditions: TaskConditions,
    pub(crate) slot_cost: u32,
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.name)
            .field("parents", &self.parents)
            .field("own", &self.own)
            .finish_non_exhaustive()
    }
}

impl Task {
    /// Declares a task. The run's input is deserialized into `I`; a payload that does not fit
    /// fails the run (without retries) with the serde error, and the worker keeps serving.
    pub fn new<I, O, F, Fut>(name: impl Into<String>, handler: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        F: Fn(I, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, TaskError>> + Send + 'static,
    {
        let name = name.into();
        let handler = typed(&name, Ok, handler);
        Self::with_handler(name, handler, false)
    }

    /// Declares a durable task (the official SDKs' `durable_task`): its handler gets a
    /// [`DurableContext`] whose sleeps, waits, memoized steps and child runs the engine keeps
    /// in the run's event log. It runs in the worker's durable slots, survives its worker (it
    /// starts again elsewhere and replays the log) and, while it only waits, may be evicted
    /// to free its slot (see [`Task::eviction`]). Give it a timeout longer than its waits.
    pub fn durable<I, O, F, Fut>(name: impl Into<String>, handler: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        F: Fn(I, DurableContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, TaskError>> + Send + 'static,
    {
        let name = name.into();
        let task = name.clone();
        let durable = move |ctx: Context| {
            DurableContext::of(ctx).ok_or_else(|| {
                TaskError::non_retryable(format!("task {task:?} is durable but ran without its event log"))
                    .with_type("NotDurable")
            })
        };
        let handler = typed(&name, durable, handler);
        Self::with_handler(name, handler, true)
    }

    fn with_handler(name: String, handler: Handler, durable: bool) -> Self {
        Self {
            name,
            handler,
            durable,
            eviction: None,
            parents: Vec::new(),
            own: TaskDefaults::default(),
            rate_limits: Vec::new(),
            desired_labels: BTreeMap::new(),
            concurrency: Vec::new(),
            conditions: TaskConditions::default(),
            slot_cost: 1,
        }
    }

    /// When a waiting run of this durable task is evicted (default:
    /// [`EvictionPolicy::default`], after 15 minutes or when the durable slots are full).
    pub fn eviction(mut self, policy: EvictionPolicy) -> Self {
        self.eviction = Some(policy);
        self
    }

    /// Whether the task is durable ([`Task::durable`]).
    pub fn is_durable(&self) -> bool {
        self.durable
    }

    /// The task's name (its readable id; outputs are keyed by it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Tasks of the same workflow that must complete first; their outputs reach this one.
    pub fn parents<S: Into<String>>(mut self, parents: impl IntoIterator<Item = S>) -> Self {
        self.parents = parents.into_iter().map(Into::into).collect();
        self
    }

    /// How many times the engine retries a failed run (default 0).
    pub fn retries(mut self, n: u32) -> Self {
        self.own = self.own.retries(n);
        self
    }

    /// Exponential backoff between retries: wait grows by `factor`, capped at `max`.
    pub fn backoff(mut self, factor: f32, max: Duration) -> Self {
        self.own = self.own.backoff(factor, max);
        self
    }

    /// Execution timeout (default 60 s); the engine times the run out after it.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.own = self.own.timeout(d);
        self
    }

    /// How long a run may wait in the queue for a worker.
    pub fn schedule_timeout(mut self, d: Duration) -> Self {
        self.own = self.own.schedule_timeout(d);
        self
    }

    /// Consumes units of a rate limit.
    pub fn rate_limit(mut self, r: RateLimit) -> Self {
        self.rate_limits.push(r);
        self
    }

    /// Worker affinity on label `key`.
    pub fn desired_label(mut self, key: impl Into<String>, label: DesiredLabel) -> Self {
        self.desired_labels.insert(key.into(), label);
        self
    }

    /// A task-level CEL concurrency limit.
    pub fn concurrency(mut self, c: Concurrency) -> Self {
        self.concurrency.push(c);
        self
    }

    /// Queues the task only once `group` holds (any of its conditions; call again to require
    /// several groups). A task with parents waits for them too.
    pub fn wait_for(mut self, group: impl Into<AnyOf>) -> Self {
        self.conditions.wait_for(group.into());
        self
    }

    /// Skips the task when `group` holds: it does not run, its output is `{"skipped": true}`
    /// and [`Context::was_skipped`] says so to its children. Skipping wins over the others.
    pub fn skip_if(mut self, group: impl Into<AnyOf>) -> Self {
        self.conditions.skip_if(group.into());
        self
    }

    /// Cancels the task (and so its run) when `group` holds, before it runs.
    pub fn cancel_if(mut self, group: impl Into<AnyOf>) -> Self {
        self.conditions.cancel_if(group.into());
        self
    }

    /// Slots one run occupies on its worker (default 1; the official SDKs' `slot_cost`, sent as `slot_requests`
    /// for the default slot type): a heavy task costs more of the worker's capacity, and the
    /// engine assigns it only to a worker with that many slots free.
    pub fn slot_cost(mut self, slots: u32) -> Self {
        self.slot_cost = slots;
        self
    }
}

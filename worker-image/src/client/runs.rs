//! Workflow runs: triggering (top-level and child), status, waiting for results, cancelling.

use std::collections::BTreeMap;
use std::time::Duration;

use hatchet_proto::v1::{self, CancelTasksRequest, GetRunDetailsRequest, TriggerWorkflowRunRequest};
use serde::Serialize;
use serde_json::Value;

use super::duplicates::or_duplicate;
use super::{Client, call, call_unrepeatable};
use crate::workflow::DesiredLabel;
use crate::{Error, Result};

/// A run the engine still does not know after this long was never created (e.g. its
/// workflow is not registered).
const RUN_VISIBLE_WITHIN: Duration = Duration::from_secs(30);
/// How often `wait_for_run` asks the engine once the subscription said the run finished, until
/// its details agree.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How often `wait_for_run` asks the engine anyway, should the subscription miss the end.
const RECHECK_INTERVAL: Duration = Duration::from_secs(10);

/// Options for a new run.
#[derive(Debug, Clone, Default)]
pub struct TriggerOptions {
    metadata: serde_json::Map<String, Value>,
    priority: Option<i32>,
    desired_labels: BTreeMap<String, DesiredLabel>,
    key: Option<String>,
    sticky: bool,
}

impl TriggerOptions {
    /// Adds additional metadata (shown with the run, filterable).
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Run priority, 1 (lowest) to 3.
    pub fn priority(mut self, p: i32) -> Self {
        self.priority = Some(p);
        self
    }

    /// Worker affinity for this run.
    pub fn desired_label(mut self, key: impl Into<String>, label: DesiredLabel) -> Self {
        self.desired_labels.insert(key.into(), label);
        self
    }

    /// A key identifying a child run among its siblings (for child runs).
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Runs a child on the worker that spawns it (the official SDKs' `sticky=True`), for
    /// children whose workflow is [`Sticky`](crate::Sticky): `Hard` waits for that worker,
    /// `Soft` prefers it. Only for children: a top-level trigger has no worker to stick to.
    pub fn sticky(mut self) -> Self {
        self.sticky = true;
        self
    }
}

/// The run and task a child run belongs to, and its index among the task's children.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parent<'a> {
    pub(crate) run_id: &'a str,
    pub(crate) task_run_id: &'a str,
    pub(crate) worker_id: &'a str,
    pub(crate) index: i32,
}

impl TriggerOptions {
    fn desired_labels_proto(&self) -> std::collections::HashMap<String, v1::DesiredWorkerLabels> {
        self.desired_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.to_proto()))
            .collect()
    }
}

/// A triggered run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRef {
    /// The workflow run's external id.
    pub id: String,
}

/// Status of a run or task as the engine reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Waiting to start (also any status this crate does not know).
    Queued,
    /// Started and not yet finished.
    Running,
    /// Finished successfully.
    Completed,
    /// Finished with an error.
    Failed,
    /// Cancelled before it finished.
    Cancelled,
    /// Evicted by the engine; [`Client::wait_for_run`] does not treat this as final.
    Evicted,
}

impl RunStatus {
    fn from_wire(v: i32) -> Self {
        match v1::RunStatus::try_from(v) {
            Ok(v1::RunStatus::Queued) | Err(_) => Self::Queued,
            Ok(v1::RunStatus::Running) => Self::Running,
            Ok(v1::RunStatus::Completed) => Self::Completed,
            Ok(v1::RunStatus::Failed) => Self::Failed,
            Ok(v1::RunStatus::Cancelled) => Self::Cancelled,
            Ok(v1::RunStatus::Evicted) => Self::Evicted,
        }
    }
}

/// One task of a run.
#[derive(Debug, Clone)]
pub struct TaskRunDetail {
    /// The task run's external id.
    pub external_id: String,
    /// The task's name (the engine's readable id).
    pub name: String,
    /// The task run's status.
    pub status: RunStatus,
    /// The task's error message, without the SDK's error metadata, if it failed.
    pub error: Option<String>,
    /// The task's output, if it produced one (a JSON string when the bytes are not JSON).
    pub output: Option<Value>,
    /// A durable task evicted while it waits (it runs again once its wait is over).
    pub evicted: bool,
}

/// A run's state.
#[derive(Debug, Clone)]
pub struct RunDetails {
    /// The run's overall status.
    pub status: RunStatus,
    /// Whether the engine considers the run finished.
    pub done: bool,
    /// Whether a durable task of the run is evicted now.
    pub evicted: bool,
    /// The run's tasks, sorted by name.
    pub tasks: Vec<TaskRunDetail>,
    /// The run's input (`Null` when empty, a JSON string when not JSON).
    pub input: Value,
    /// The run's additional metadata, parsed like `input`.
    pub metadata: Value,
}

impl RunDetails {
    /// Outputs of completed tasks, keyed by task name.
    pub fn outputs(&self) -> BTreeMap<String, Value> {
        self.tasks
            .iter()
            .filter_map(|t| t.output.clone().map(|o| (t.name.clone(), o)))
            .collect()
    }

    /// The first task error, if any.
    pub fn error(&self) -> Option<&str> {
        self.tasks.iter().find_map(|t| t.error.as_deref())
    }
}

impl Client {
    /// Refuses, before anything is sent, a run the engine could accept but never deliver to a
    /// worker (its assignment would exceed the message limit).
    pub(crate) fn check_deliverable(&self, what: &str, input: &[u8], copies: usize, metadata: &[u8]) -> Result<()> {
        crate::payload::check_deliverable(input, copies, metadata, self.config.grpc_max_send_message_bytes)
            .map_err(|e| Error::Payload(format!("{what}: {e}")))
    }

    /// Starts a run of `workflow` with `input`.
    pub async fn trigger<I: Serialize>(&self, workflow: &str, input: &I, options: TriggerOptions) -> Result<RunRef> {
        // The same run as a child's, minus the parent, on the top-level call.
        let run = self.trigger_request(workflow, input, &options, None)?;
        let req = TriggerWorkflowRunRequest {
            workflow_name: run.name,
            input: run.input.into_bytes(),
            additional_metadata: run.additional_metadata.unwrap_or_default().into_bytes(),
            priority: run.priority,
            desired_worker_labels: run.desired_worker_labels,
        };
        let r = call_unrepeatable("TriggerWorkflowRun", || {
            let mut a = self.engine.admin.clone();
            let req = req.clone();
            async move { a.trigger_workflow_run(req).await }
        })
        .await
        .map_err(or_duplicate)?;
        Ok(RunRef { id: r.external_id })
    }

    /// Starts a run and waits for its outputs, keyed by task name.
    pub async fn run<I: Serialize>(
        &self,
        workflow: &str,
        input: &I,
        options: TriggerOptions,
    ) -> Result<BTreeMap<String, Value>> {
        let run = self.trigger(workflow, input, options).await?;
        self.wait_for_run(&run.id).await
    }

    pub(crate) async fn trigger_child<I: Serialize>(
        &self,
        workflow: &str,
        input: &I,
        options: TriggerOptions,
        parent: Parent<'_>,
    ) -> Result<RunRef> {
        let req = self.trigger_request(workflow, input, &options, Some(parent))?;
        let r = call("TriggerWorkflow", || {
            let mut w = self.engine.workflows.clone();
            let req = req.clone();
            async move { w.trigger_workflow(req).await }
        })
        .await
        .map_err(or_duplicate)?;
        Ok(RunRef { id: r.workflow_run_id })
    }

    /// Starts a run of `workflow` for each input, in one call (the official SDKs' bulk run);
    /// their refs, in order. Like [`Client::trigger`], not retried once the engine may have
    /// acted.
    pub async fn trigger_many<I: Serialize>(
        &self,
        workflow: &str,
        items: impl IntoIterator<Item = (I, TriggerOptions)>,
    ) -> Result<Vec<RunRef>> {
        let workflows = items
            .into_iter()
            .map(|(input, options)| self.trigger_request(workflow, &input, &options, None))
            .collect::<Result<Vec<_>>>()?;
        self.bulk_trigger(workflows, false).await
    }

    /// Starts child runs, built with their parent and child indexes, in one call.
    pub(crate) async fn trigger_children(&self, requests: Vec<v1::TriggerWorkflowRequest>) -> Result<Vec<RunRef>> {
        // A child is identified by its parent and index: the engine takes a repeat as the same
        // child, so this call may be retried.
        self.bulk_trigger(requests, true).await
    }

    /// `BulkTriggerWorkflow`; retried on ambiguous failures only when `repeatable`.
    async fn bulk_trigger(&self, workflows: Vec<v1::TriggerWorkflowRequest>, repeatable: bool) -> Result<Vec<RunRef>> {
        let expected = workflows.len();
        let req = hatchet_proto::BulkTriggerWorkflowRequest { workflows };
        let once = || {
            let mut w = self.engine.workflows.clone();
            let req = req.clone();
            async move { w.bulk_trigger_workflow(req).await }
        };
        let r = if repeatable {
            call("BulkTriggerWorkflow", once).await
        } else {
            call_unrepeatable("BulkTriggerWorkflow", once).await
        }
        .map_err(or_duplicate)?;
        if r.workflow_run_ids.len() != expected {
            return Err(Error::Transport(format!(
                "BulkTriggerWorkflow started {} runs for {expected} requests",
                r.workflow_run_ids.len()
            )));
        }
        Ok(r.workflow_run_ids.into_iter().map(|id| RunRef { id }).collect())
    }

    /// The wire form of one run of `workflow` (a child of `parent`, if any), refused before
    /// sending if it could not be delivered.
    pub(crate) fn trigger_request<I: Serialize>(
        &self,
        workflow: &str,
        input: &I,
        options: &TriggerOptions,
        parent: Option<Parent<'_>>,
    ) -> Result<v1::TriggerWorkflowRequest> {
        let input = serde_json::to_string(input).map_err(|e| Error::Payload(e.to_string()))?;
        let metadata = serde_json::to_string(&super::outgoing_metadata(&options.metadata))
            .map_err(|e| Error::Payload(e.to_string()))?;
        self.check_deliverable(workflow, input.as_bytes(), 1, metadata.as_bytes())?;
        let desired_worker_id = match (options.sticky, parent) {
            (false, _) => None,
            (true, Some(p)) => Some(p.worker_id.to_owned()),
            (true, None) => {
                return Err(Error::Definition(format!(
                    "run of {workflow:?}: sticky applies to child runs (spawn them from a task)"
                )));
            }
        };
        Ok(v1::TriggerWorkflowRequest {
            name: self.config.namespaced(workflow),
            input,
            parent_id: parent.map(|p| p.run_id.to_owned()),
            parent_task_run_external_id: parent.map(|p| p.task_run_id.to_owned()),
            child_index: parent.map(|p| p.index),
            child_key: options.key.clone(),
            additional_metadata: Some(metadata),
            desired_worker_id,
            priority: options.priority,
            desired_worker_labels: options.desired_labels_proto(),
        })
    }

    /// The current state of a run.
    pub async fn run_details(&self, run_id: &str) -> Result<RunDetails> {
        let r = call("GetRunDetails", || {
            let mut a = self.engine.admin.clone();
            let req = GetRunDetailsRequest {
                external_id: run_id.to_owned(),
            };
            async move { a.get_run_details(req).await }
        })
        .await?;
        let parse = |b: &[u8]| {
            if b.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(b).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(b).into_owned()))
            }
        };
        let mut tasks: Vec<TaskRunDetail> = r
            .task_runs
            .into_values()
            .map(|t| TaskRunDetail {
                external_id: t.external_id,
                name: t.readable_id,
                status: RunStatus::from_wire(t.status),
                error: t
                    .error
                    .filter(|e| !e.is_empty())
                    .map(|e| crate::payload::parse_failure(&e).headline()),
                output: t.output.as_deref().map(parse),
                evicted: t.is_evicted,
            })
            .collect();
        tasks.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(RunDetails {
            status: RunStatus::from_wire(r.status),
            done: r.done,
            evicted: r.is_evicted,
            tasks,
            input: parse(&r.input),
            metadata: parse(&r.additional_metadata),
        })
    }

    /// Waits until the run finishes; its outputs on success, [`Error::RunFailed`] otherwise.
    /// The wait rides the client's one run subscription and reads the run once it finished.
    pub async fn wait_for_run(&self, run_id: &str) -> Result<BTreeMap<String, Value>> {
        let not_found_until = tokio::time::Instant::now() + RUN_VISIBLE_WITHIN;
        let finished = self.run_listener().finished(run_id);
        tokio::pin!(finished);
        let mut told = false;
        loop {
            tokio::select! {
                () = &mut finished, if !told => told = true,
                () = tokio::time::sleep(if told { POLL_INTERVAL } else { RECHECK_INTERVAL }) => {}
            }
            match self.run_details(run_id).await {
                Ok(d)
                    if d.done
                        || matches!(
                            d.status,
                            RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled
                        ) =>
                {
                    return match d.status {
                        RunStatus::Completed => Ok(d.outputs()),
                        s => Err(Error::RunFailed {
                            run_id: run_id.to_owned(),
                            status: format!("{s:?}").to_uppercase(),
                            error: d.error().unwrap_or("").to_owned(),
                        }),
                    };
                }
                Ok(_) => {}
                // A run just triggered may not be visible yet.
                Err(Error::Refused { status, .. })
                    if status.code() == tonic::Code::NotFound && tokio::time::Instant::now() < not_found_until => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Cancels a run's tasks.
    pub async fn cancel(&self, run_id: &str) -> Result<()> {
        call("CancelTasks", || {
            let mut a = self.engine.admin.clone();
            let req = CancelTasksRequest {
                external_ids: vec![run_id.to_owned()],
                filter: None,
            };
            async move { a.cancel_tasks(req).await }
        })
        .await
        .map(drop)
    }

    /// Queues an evicted durable task run again now, instead of when its wait is over (the
    /// official SDKs' restore); whether the engine requeued it (`false`: it was not evicted).
    pub async fn restore_task(&self, task_run_id: &str) -> Result<bool> {
        let r = call("RestoreEvictedTask", || {
            let mut d = self.engine.dispatcher.clone();
            let req = hatchet_proto::RestoreEvictedTaskRequest {
                task_run_external_id: task_run_id.to_owned(),
            };
            async move { d.restore_evicted_task(req).await }
        })
        .await?;
        Ok(r.requeued)
    }
}

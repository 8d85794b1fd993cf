//! Workflow runs: what the official SDKs' `runs` feature client does.

use chrono::{DateTime, Utc};
use futures::Stream;

use serde::Serialize;

use crate::error::answer;
use crate::generated::prelude::*;
use crate::options::{RunOptions, object, pairs};
use crate::types::{
    V1CancelTaskRequest, V1ReplayTaskRequest, V1TaskFilter, V1TaskStatus, V1TaskSummary, V1TriggerWorkflowRunRequest,
    V1WorkflowRunDetails,
};
use crate::{PAGE_SIZE, Rest, Result, Uuid, paged};

/// Which runs to list, cancel or replay.
#[derive(Debug, Clone)]
pub struct RunFilter {
    /// Runs created at or after this (the engine requires a start).
    pub since: DateTime<Utc>,
    /// Runs created before this.
    pub until: Option<DateTime<Utc>>,
    /// Only runs in these states (any when empty).
    pub statuses: Vec<V1TaskStatus>,
    /// Only runs of these workflows (by id; any when empty).
    pub workflow_ids: Vec<Uuid>,
    /// Only runs whose additional metadata has these `key`/`value` pairs.
    pub metadata: Vec<(String, String)>,
}

impl RunFilter {
    /// Every run created since `since`.
    pub fn since(since: DateTime<Utc>) -> Self {
        Self {
            since,
            until: None,
            statuses: Vec::new(),
            workflow_ids: Vec::new(),
            metadata: Vec::new(),
        }
    }

    /// Only runs in `status` (call again for several).
    pub fn status(mut self, status: V1TaskStatus) -> Self {
        self.statuses.push(status);
        self
    }

    /// Only runs of workflow `id`.
    pub fn workflow(mut self, id: Uuid) -> Self {
        self.workflow_ids.push(id);
        self
    }

    /// Only runs whose metadata has `key` = `value`.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    fn to_task_filter(&self) -> V1TaskFilter {
        V1TaskFilter {
            additional_metadata: pairs(&self.metadata),
            since: self.since,
            statuses: self.statuses.clone(),
            until: self.until,
            workflow_ids: self.workflow_ids.clone(),
        }
    }
}

/// The tenant's workflow runs.
#[derive(Debug, Clone, Copy)]
pub struct Runs<'a> {
    pub(crate) rest: &'a Rest,
}

impl Runs<'_> {
    /// Starts `workflow` (a name, in this client's namespace) with `input`; the new run.
    pub async fn trigger(
        &self,
        workflow: &str,
        input: &impl Serialize,
        options: &RunOptions,
    ) -> Result<V1WorkflowRunDetails> {
        const OP: &str = "v1-workflow-run:create";
        let body = V1TriggerWorkflowRunRequest {
            additional_metadata: options.metadata_object(),
            input: object(input, "a run's input")?,
            priority: options.checked_priority()?.map(|p| i64::from(p.get())),
            return_only_id: None,
            workflow_name: self.rest.namespaced(workflow),
        };
        answer(
            OP,
            self.rest
                .api
                .v1_workflow_run_create()
                .tenant(self.rest.tenant)
                .body(body)
                .send(),
        )
        .await
    }

    /// The run `id`: its status, tasks and task events.
    pub async fn get(&self, id: Uuid) -> Result<V1WorkflowRunDetails> {
        const OP: &str = "v1-workflow-run:get";
        answer(OP, self.rest.api.v1_workflow_run_get().v1_workflow_run(id).send()).await
    }

    /// Task run `id` (latest attempt): its status, input, output or error.
    pub async fn task(&self, id: Uuid) -> Result<V1TaskSummary> {
        const OP: &str = "v1-task:get";
        answer(OP, self.rest.api.v1_task_get().task(id).send()).await
    }

    /// What run `id` returned: its output when it completed (a single task's output, or
    /// each task's output by name for a DAG), `None` while it has not.
    pub async fn result(&self, id: Uuid) -> Result<Option<serde_json::Value>> {
        Ok(self.get(id).await?.output())
    }

    /// The runs `filter` matches, newest first, page by page as the stream is read.
    pub fn list(&self, filter: &RunFilter) -> impl Stream<Item = Result<V1TaskSummary>> + '_ {
        const OP: &str = "v1-workflow-run:list";
        let filter = filter.clone();
        paged(move |offset| {
            let mut call = self
                .rest
                .api
                .v1_workflow_run_list()
                .tenant(self.rest.tenant)
                .since(filter.since)
                .only_tasks(false)
                .limit(PAGE_SIZE)
                .offset(offset)
                .additional_metadata(pairs(&filter.metadata));
            if let Some(until) = filter.until {
                call = call.until(until);
            }
            if !filter.statuses.is_empty() {
                call = call.statuses(filter.statuses.clone());
            }
            if !filter.workflow_ids.is_empty() {
                call = call.workflow_ids(filter.workflow_ids.clone());
            }
            async move {
                let page = answer(OP, call.send()).await?;
                Ok((page.rows, Some(page.pagination)))
            }
        })
    }

    /// Cancels the runs `which` names; the task runs the engine cancelled.
    pub async fn cancel(&self, which: Select) -> Result<Vec<Uuid>> {
        const OP: &str = "v1-task:cancel";
        let (external_ids, filter) = which.parts();
        let body = V1CancelTaskRequest { external_ids, filter };
        let cancel = self.rest.api.v1_task_cancel().tenant(self.rest.tenant).body(body);
        Ok(answer(OP, cancel.send()).await?.ids)
    }

    /// Runs the runs `which` names again from their failed or cancelled tasks; the task runs
    /// replayed.
    pub async fn replay(&self, which: Select) -> Result<Vec<Uuid>> {
        const OP: &str = "v1-task:replay";
        let (external_ids, filter) = which.parts();
        let body = V1ReplayTaskRequest { external_ids, filter };
        let replay = self.rest.api.v1_task_replay().tenant(self.rest.tenant).body(body);
        Ok(answer(OP, replay.send()).await?.ids)
    }
}

impl V1WorkflowRunDetails {
    /// What the run returned, read from details already fetched: as [`Runs::result`].
    pub fn output(&self) -> Option<serde_json::Value> {
        if self.run.status != V1TaskStatus::Completed {
            return None;
        }
        Some(match self.tasks.as_slice() {
            [only] => serde_json::Value::Object(only.output.clone()),
            tasks => tasks
                .iter()
                .map(|t| (t.display_name.clone(), serde_json::Value::Object(t.output.clone())))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        })
    }
}

/// Which runs a bulk operation acts on.
#[derive(Debug, Clone)]
pub enum Select {
    /// These runs (or task runs), by id.
    Ids(Vec<Uuid>),
    /// Every run the filter matches.
    Matching(RunFilter),
}

impl Select {
    fn parts(self) -> (Vec<Uuid>, Option<V1TaskFilter>) {
        match self {
            Select::Ids(ids) => (ids, None),
            Select::Matching(f) => (Vec::new(), Some(f.to_task_filter())),
        }
    }
}

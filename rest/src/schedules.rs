//! Scheduled runs (one run at a given time): what the official SDKs' `scheduled` feature
//! client does.

use chrono::{DateTime, Utc};
use futures::Stream;
use serde::Serialize;

use crate::error::answer;
use crate::generated::prelude::*;
use crate::options::{RunOptions, object, pairs};
use crate::types::{
    ScheduleWorkflowRunRequest, ScheduledRunStatus, ScheduledWorkflows, UpdateScheduledWorkflowRunRequest,
};
use crate::{PAGE_SIZE, Rest, Result, Uuid, paged};

/// Which scheduled runs to list.
#[derive(Debug, Clone, Default)]
pub struct ScheduleFilter {
    /// Only the schedules of this workflow (by id).
    pub workflow_id: Option<Uuid>,
    /// Only schedules in these states (any when empty).
    pub statuses: Vec<ScheduledRunStatus>,
    /// Only schedules whose runs carry these `key`/`value` pairs.
    pub metadata: Vec<(String, String)>,
}

/// The tenant's scheduled runs.
#[derive(Debug, Clone, Copy)]
pub struct Schedules<'a> {
    pub(crate) rest: &'a Rest,
}

impl Schedules<'_> {
    /// Runs `workflow` (a name, in this client's namespace) once with `input` at `at`.
    pub async fn create(
        &self,
        workflow: &str,
        at: DateTime<Utc>,
        input: &impl Serialize,
        options: &RunOptions,
    ) -> Result<ScheduledWorkflows> {
        const OP: &str = "scheduled-workflow-run:create";
        let body = ScheduleWorkflowRunRequest {
            additional_metadata: options.metadata_object(),
            input: object(input, "a schedule's input")?,
            priority: options.checked_priority()?,
            trigger_at: at,
        };
        let call = self
            .rest
            .api
            .scheduled_workflow_run_create()
            .tenant(self.rest.tenant)
            .workflow(self.rest.namespaced(workflow))
            .body(body);
        answer(OP, call.send()).await
    }

    /// The schedules `filter` matches, page by page as the stream is read.
    pub fn list(&self, filter: &ScheduleFilter) -> impl Stream<Item = Result<ScheduledWorkflows>> + '_ {
        const OP: &str = "workflow-scheduled:list";
        let filter = filter.clone();
        paged(move |offset| {
            let mut call = self
                .rest
                .api
                .workflow_scheduled_list()
                .tenant(self.rest.tenant)
                .limit(PAGE_SIZE)
                .offset(offset)
                .additional_metadata(pairs(&filter.metadata));
            if let Some(id) = filter.workflow_id {
                call = call.workflow_id(id);
            }
            if !filter.statuses.is_empty() {
                call = call.statuses(filter.statuses.clone());
            }
            async move {
                let page = answer(OP, call.send()).await?;
                Ok((page.rows, page.pagination))
            }
        })
    }

    /// Scheduled run `id`.
    pub async fn get(&self, id: Uuid) -> Result<ScheduledWorkflows> {
        const OP: &str = "workflow-scheduled:get";
        let call = self
            .rest
            .api
            .workflow_scheduled_get()
            .tenant(self.rest.tenant)
            .scheduled_workflow_run(id);
        answer(OP, call.send()).await
    }

    /// Moves scheduled run `id` to `at` (before it has run).
    pub async fn reschedule(&self, id: Uuid, at: DateTime<Utc>) -> Result<ScheduledWorkflows> {
        const OP: &str = "workflow-scheduled:update";
        let body = UpdateScheduledWorkflowRunRequest { trigger_at: at };
        let call = self
            .rest
            .api
            .workflow_scheduled_update()
            .tenant(self.rest.tenant)
            .scheduled_workflow_run(id)
            .body(body);
        answer(OP, call.send()).await
    }

    /// Deletes scheduled run `id` (it will not run).
    pub async fn delete(&self, id: Uuid) -> Result<()> {
        const OP: &str = "workflow-scheduled:delete";
        let call = self
            .rest
            .api
            .workflow_scheduled_delete()
            .tenant(self.rest.tenant)
            .scheduled_workflow_run(id);
        answer(OP, call.send()).await
    }
}

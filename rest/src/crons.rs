//! Cron triggers: what the official SDKs' `cron` feature client does.

use futures::Stream;
use serde::Serialize;

use crate::error::answer;
use crate::generated::prelude::*;
use crate::options::{RunOptions, object, pairs};
use crate::types::{CreateCronWorkflowTriggerRequest, CronWorkflows, UpdateCronWorkflowTriggerRequest};
use crate::{PAGE_SIZE, Rest, Result, Uuid, paged};

/// Which cron triggers to list.
#[derive(Debug, Clone, Default)]
pub struct CronFilter {
    /// Only the triggers of this workflow (by id).
    pub workflow_id: Option<Uuid>,
    /// Only the trigger with this name.
    pub name: Option<String>,
    /// Only triggers whose runs carry these `key`/`value` pairs.
    pub metadata: Vec<(String, String)>,
}

/// The tenant's cron triggers.
#[derive(Debug, Clone, Copy)]
pub struct Crons<'a> {
    pub(crate) rest: &'a Rest,
}

impl Crons<'_> {
    /// Runs `workflow` (a name, in this client's namespace) with `input` on the cron
    /// `expression` (five fields, UTC), as the trigger `name`.
    pub async fn create(
        &self,
        workflow: &str,
        name: &str,
        expression: &str,
        input: &impl Serialize,
        options: &RunOptions,
    ) -> Result<CronWorkflows> {
        const OP: &str = "cron-workflow-trigger:create";
        let body = CreateCronWorkflowTriggerRequest {
            additional_metadata: options.metadata_object(),
            cron_expression: expression.to_owned(),
            cron_name: name.to_owned(),
            input: object(input, "a cron's input")?,
            priority: options.checked_priority()?,
        };
        let call = self
            .rest
            .api
            .cron_workflow_trigger_create()
            .tenant(self.rest.tenant)
            .workflow(self.rest.namespaced(workflow))
            .body(body);
        answer(OP, call.send()).await
    }

    /// The triggers `filter` matches, page by page as the stream is read.
    pub fn list(&self, filter: &CronFilter) -> impl Stream<Item = Result<CronWorkflows>> + '_ {
        const OP: &str = "cron-workflow:list";
        let filter = filter.clone();
        paged(move |offset| {
            let mut call = self
                .rest
                .api
                .cron_workflow_list()
                .tenant(self.rest.tenant)
                .limit(PAGE_SIZE)
                .offset(offset)
                .additional_metadata(pairs(&filter.metadata));
            if let Some(id) = filter.workflow_id {
                call = call.workflow_id(id);
            }
            if let Some(name) = &filter.name {
                call = call.cron_name(name.clone());
            }
            async move {
                let page = answer(OP, call.send()).await?;
                Ok((page.rows, page.pagination))
            }
        })
    }

    /// Cron trigger `id`.
    pub async fn get(&self, id: Uuid) -> Result<CronWorkflows> {
        const OP: &str = "workflow-cron:get";
        let call = self
            .rest
            .api
            .workflow_cron_get()
            .tenant(self.rest.tenant)
            .cron_workflow(id);
        answer(OP, call.send()).await
    }

    /// Turns cron trigger `id` on or off (off: it starts no runs until turned on).
    pub async fn set_enabled(&self, id: Uuid, enabled: bool) -> Result<()> {
        const OP: &str = "workflow-cron:update";
        let body = UpdateCronWorkflowTriggerRequest { enabled: Some(enabled) };
        let call = self
            .rest
            .api
            .workflow_cron_update()
            .tenant(self.rest.tenant)
            .cron_workflow(id)
            .body(body);
        answer(OP, call.send()).await
    }

    /// Deletes cron trigger `id`.
    pub async fn delete(&self, id: Uuid) -> Result<()> {
        const OP: &str = "workflow-cron:delete";
        let call = self
            .rest
            .api
            .workflow_cron_delete()
            .tenant(self.rest.tenant)
            .cron_workflow(id);
        answer(OP, call.send()).await
    }
}

//! Workflows: what the official SDKs' `workflows` feature client does.

use futures::{Stream, TryStreamExt};

use crate::error::answer;
use crate::generated::prelude::*;
use crate::types::Workflow;
use crate::{PAGE_SIZE, Rest, Result, Uuid, paged};

/// The tenant's registered workflows.
#[derive(Debug, Clone, Copy)]
pub struct Workflows<'a> {
    pub(crate) rest: &'a Rest,
}

impl Workflows<'_> {
    /// The workflows whose name contains `name` in this client's namespace, or every
    /// workflow of the tenant with `None` (the namespace applies to the name, as in the
    /// SDKs), page by page as the stream is read.
    pub fn list(&self, name: Option<&str>) -> impl Stream<Item = Result<Workflow>> + '_ {
        const OP: &str = "workflow:list";
        let name = name.map(|n| self.rest.namespaced(n));
        paged(move |offset| {
            let mut call = self
                .rest
                .api
                .workflow_list()
                .tenant(self.rest.tenant)
                .limit(PAGE_SIZE)
                .offset(offset);
            if let Some(n) = &name {
                call = call.name(n.clone());
            }
            async move {
                let page = answer(OP, call.send()).await?;
                Ok((page.rows, page.pagination))
            }
        })
    }

    /// The workflow named `name` in this client's namespace, if it is registered.
    pub async fn find(&self, name: &str) -> Result<Option<Workflow>> {
        let want = self.rest.namespaced(name);
        let found: Vec<Workflow> = self.list(Some(name)).try_collect().await?;
        Ok(found.into_iter().find(|w| w.name == want))
    }

    /// Workflow `id`.
    pub async fn get(&self, id: Uuid) -> Result<Workflow> {
        const OP: &str = "workflow:get";
        answer(OP, self.rest.api.workflow_get().workflow(id).send()).await
    }

    /// Deletes workflow `id` (its versions, crons and schedules).
    pub async fn delete(&self, id: Uuid) -> Result<()> {
        const OP: &str = "workflow:delete";
        answer(OP, self.rest.api.workflow_delete().workflow(id).send()).await
    }
}

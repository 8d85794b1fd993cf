//! Workers: what the official SDKs' `workers` feature client does.

use futures::Stream;

use crate::error::answer;
use crate::generated::prelude::*;
use crate::types::{UpdateWorkerRequest, Worker};
use crate::{PAGE_SIZE, Rest, Result, Uuid, paged};

/// The tenant's workers.
#[derive(Debug, Clone, Copy)]
pub struct Workers<'a> {
    pub(crate) rest: &'a Rest,
}

impl Workers<'_> {
    /// Every worker the engine knows for the tenant, page by page as the stream is read.
    pub fn list(&self) -> impl Stream<Item = Result<Worker>> + '_ {
        const OP: &str = "worker:list";
        paged(move |offset| {
            let call = self
                .rest
                .api
                .worker_list()
                .tenant(self.rest.tenant)
                .limit(PAGE_SIZE)
                .offset(offset);
            async move {
                let page = answer(OP, call.send()).await?;
                Ok((page.rows, page.pagination))
            }
        })
    }

    /// Worker `id`: its actions, slots, labels and heartbeat.
    pub async fn get(&self, id: Uuid) -> Result<Worker> {
        const OP: &str = "worker:get";
        answer(OP, self.rest.api.worker_get().worker(id).send()).await
    }

    /// Stops the engine assigning new runs to worker `id` (its running ones go on).
    pub async fn pause(&self, id: Uuid) -> Result<Worker> {
        self.set_paused(id, true).await
    }

    /// Lets the engine assign runs to worker `id` again.
    pub async fn unpause(&self, id: Uuid) -> Result<Worker> {
        self.set_paused(id, false).await
    }

    async fn set_paused(&self, id: Uuid, paused: bool) -> Result<Worker> {
        const OP: &str = "worker:update";
        let body = UpdateWorkerRequest {
            is_paused: Some(paused),
        };
        answer(OP, self.rest.api.worker_update().worker(id).body(body).send()).await
    }
}

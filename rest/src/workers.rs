//! Workers: what the official SDKs' `workers` feature client does.

use futures::Stream;

use crate::error::answer;
use crate::generated::prelude::*;
use crate::options::{items, pairs};
use crate::types::{UpdateWorkerRequest, Worker, WorkerListLabelsItem, WorkerStatus};
use crate::{PAGE_SIZE, Rest, Result, Uuid, paged};

/// Which workers to list.
#[derive(Debug, Clone, Default)]
pub struct WorkerFilter {
    /// Only workers in these states (any when empty).
    pub statuses: Vec<WorkerStatus>,
    /// Only workers carrying every one of these `key`/`value` labels (labels are set by the
    /// worker, `WorkerBuilder::label`, or over gRPC; REST reads them).
    pub labels: Vec<(String, String)>,
}

/// The tenant's workers.
#[derive(Debug, Clone, Copy)]
pub struct Workers<'a> {
    pub(crate) rest: &'a Rest,
}

impl Workers<'_> {
    /// Every worker the engine knows for the tenant, page by page as the stream is read.
    pub fn list(&self) -> impl Stream<Item = Result<Worker>> + '_ {
        self.matching(WorkerFilter::default())
    }

    /// The workers `filter` matches, page by page as the stream is read.
    pub fn matching(&self, filter: WorkerFilter) -> impl Stream<Item = Result<Worker>> + '_ {
        const OP: &str = "worker:list";
        let labels = items(&pairs(&filter.labels), "label filter");
        let statuses = filter.statuses;
        paged(move |offset| {
            let labels = labels.clone();
            let mut call = self
                .rest
                .api
                .worker_list()
                .tenant(self.rest.tenant)
                .limit(PAGE_SIZE)
                .offset(offset);
            if !statuses.is_empty() {
                call = call.statuses(statuses.clone());
            }
            async move {
                let labels: Vec<WorkerListLabelsItem> = labels?;
                let call = if labels.is_empty() { call } else { call.labels(labels) };
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

//! Tenant metrics: what the official SDKs' `metrics` feature client reads (task counts by
//! status, the queues' depth, per-task queue and running figures).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::error::answer;
use crate::generated::prelude::*;
use crate::options::pairs;
use crate::types::{TaskStats, V1TaskRunMetric};
use crate::{Error, Rest, Result, Uuid};

/// Which task runs the status counts cover.
#[derive(Debug, Clone)]
pub struct TaskMetricsFilter {
    /// Runs created at or after this (the engine requires a start).
    pub since: DateTime<Utc>,
    /// Runs created before this.
    pub until: Option<DateTime<Utc>>,
    /// Only runs of these workflows (by id; any when empty).
    pub workflow_ids: Vec<Uuid>,
    /// Only runs whose additional metadata has these `key`/`value` pairs.
    pub metadata: Vec<(String, String)>,
}

impl TaskMetricsFilter {
    /// Every task run created since `since`.
    pub fn since(since: DateTime<Utc>) -> Self {
        Self {
            since,
            until: None,
            workflow_ids: Vec::new(),
            metadata: Vec::new(),
        }
    }
}

/// The tenant's metrics.
#[derive(Debug, Clone, Copy)]
pub struct Metrics<'a> {
    pub(crate) rest: &'a Rest,
}

impl Metrics<'_> {
    /// How many task runs `filter` matches in each status (queued, running, completed,
    /// cancelled, failed).
    pub async fn task_status(&self, filter: &TaskMetricsFilter) -> Result<Vec<V1TaskRunMetric>> {
        const OP: &str = "v1-task:list:status-metrics";
        let mut call = self
            .rest
            .api
            .v1_task_list_status_metrics()
            .tenant(self.rest.tenant)
            .since(filter.since)
            .workflow_ids(filter.workflow_ids.clone())
            .additional_metadata(pairs(&filter.metadata));
        if let Some(until) = filter.until {
            call = call.until(until);
        }
        Ok(answer(OP, call.send()).await?.0)
    }

    /// How many task runs wait in each of the tenant's queues (a queue is an action, such as
    /// `workflow:task`), as the SDKs' queue metrics read it.
    pub async fn queues(&self) -> Result<BTreeMap<String, i64>> {
        const OP: &str = "tenant:get:step-run-queue-metrics";
        let call = self
            .rest
            .api
            .tenant_get_step_run_queue_metrics()
            .tenant(self.rest.tenant);
        let metrics = answer(OP, call.send()).await?;
        metrics
            .queues
            .into_iter()
            .map(|(queue, depth)| match depth.as_i64() {
                Some(n) => Ok((queue, n)),
                None => Err(Error::Decode {
                    operation: OP,
                    message: format!("queue {queue}: depth {depth} is not a whole number"),
                }),
            })
            .collect()
    }

    /// Queued and running figures (per queue and concurrency key, with the oldest waiting)
    /// of the tasks named `task_names` (every task with none).
    pub async fn task_stats(&self, task_names: &[String]) -> Result<TaskStats> {
        const OP: &str = "tenant:get:task-stats";
        let call = self
            .rest
            .api
            .tenant_get_task_stats()
            .tenant(self.rest.tenant)
            .task_names(task_names.to_vec());
        answer(OP, call.send()).await
    }
}

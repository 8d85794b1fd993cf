//! Tenant metrics: what the official SDKs' `metrics` feature client reads (task counts by
//! status, the queues' depth, per-task queue and running figures).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

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

/// Task runs waiting, as the engine counts them: per queue (a queue is an action, such as
/// `workflow:task`), and per concurrency key for workflows with concurrency limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueDepths {
    /// Queue → runs waiting in it.
    pub queues: BTreeMap<String, i64>,
    /// Workflow → concurrency key → runs waiting for that key.
    pub concurrency: BTreeMap<String, BTreeMap<String, i64>>,
}

impl QueueDepths {
    /// Reads the engine's one map, where a number is a queue's depth and an object a
    /// workflow's depths by concurrency key.
    fn read(raw: Map<String, Value>) -> std::result::Result<Self, String> {
        let count = |name: &str, v: &Value| v.as_i64().ok_or_else(|| format!("{name}: {v} is not a count"));
        let mut depths = Self::default();
        for (name, value) in raw {
            match &value {
                Value::Object(keys) => {
                    let keys = keys
                        .iter()
                        .map(|(k, v)| Ok((k.clone(), count(&format!("{name}/{k}"), v)?)))
                        .collect::<std::result::Result<_, String>>()?;
                    depths.concurrency.insert(name, keys);
                }
                v => {
                    let n = count(&name, v)?;
                    depths.queues.insert(name, n);
                }
            }
        }
        Ok(depths)
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

    /// How many task runs wait in each of the tenant's queues, as the SDKs' queue metrics
    /// read it.
    pub async fn queues(&self) -> Result<QueueDepths> {
        const OP: &str = "tenant:get:step-run-queue-metrics";
        let call = self
            .rest
            .api
            .tenant_get_step_run_queue_metrics()
            .tenant(self.rest.tenant);
        let metrics = answer(OP, call.send()).await?;
        QueueDepths::read(metrics.queues).map_err(|message| Error::Decode { operation: OP, message })
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn queue_depths_and_concurrency_depths_are_told_apart() {
        let raw = json!({"orders:charge": 4, "orders": {"tenant-a": 2, "tenant-b": 1}});
        let Value::Object(raw) = raw else { unreachable!() };
        let d = QueueDepths::read(raw).unwrap();
        assert_eq!(d.queues, BTreeMap::from([("orders:charge".to_owned(), 4)]));
        assert_eq!(d.concurrency["orders"]["tenant-b"], 1);
        let Value::Object(bad) = json!({"q": "many"}) else {
            unreachable!()
        };
        assert_eq!(QueueDepths::read(bad).unwrap_err(), r#"q: "many" is not a count"#);
    }
}

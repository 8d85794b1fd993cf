//! The worker's Prometheus metrics: `hatchet_worker_` prefix, base units, labels not names.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    action: String,
    outcome: String,
}

/// Task counters and timings, registered once per worker.
#[derive(Clone)]
pub(crate) struct WorkerMetrics {
    started: Family<ActionLabels, Counter>,
    finished: Family<OutcomeLabels, Counter>,
    duration: Family<ActionLabels, Histogram>,
    start_latency: Histogram,
}

impl WorkerMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let m = Self {
            started: Family::default(),
            finished: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.005, 2.0, 20))),
            start_latency: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
        };
        registry.register(
            "hatchet_worker_tasks_started",
            "Tasks this worker started",
            m.started.clone(),
        );
        registry.register(
            "hatchet_worker_tasks_finished",
            "Tasks this worker finished, by outcome (succeeded, failed, cancelled, timed_out)",
            m.finished.clone(),
        );
        registry.register(
            "hatchet_worker_task_duration_seconds",
            "Task run time on this worker",
            m.duration.clone(),
        );
        registry.register(
            "hatchet_worker_assignment_to_start_seconds",
            "Time from receiving an assignment to starting its handler",
            m.start_latency.clone(),
        );
        m
    }

    pub(crate) fn task_started(&self, action: &str, latency: Duration) {
        self.started
            .get_or_create(&ActionLabels {
                action: action.to_owned(),
            })
            .inc();
        self.start_latency.observe(latency.as_secs_f64());
    }

    pub(crate) fn task_finished(&self, action: &str, outcome: &str, took: Duration) {
        self.finished
            .get_or_create(&OutcomeLabels {
                action: action.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.duration
            .get_or_create(&ActionLabels {
                action: action.to_owned(),
            })
            .observe(took.as_secs_f64());
    }
}

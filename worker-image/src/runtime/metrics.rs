//! The worker's Prometheus metrics: `hatchet_worker_` prefix, base units, labels not names.
//! Counters move at the event they count; the state gauges are read from the published
//! state at scrape time by [`StateCollector`], so a scrape never writes anything.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio::time::Instant;

use super::listener::Phase;
use super::slots::SlotPool;
use super::state::{Connection, Lifecycle};
use crate::durable::Waiting;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    action: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SlotLabels {
    slot_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

/// Every metric of one worker.
#[derive(Clone)]
pub(crate) struct WorkerMetrics {
    started: Family<ActionLabels, Counter>,
    finished: Family<OutcomeLabels, Counter>,
    duration: Family<ActionLabels, Histogram>,
    start_latency: Histogram,
    heartbeat_failures: Counter,
    reconnects: Counter,
}

/// The state gauges, read at scrape time from what the worker publishes.
#[derive(Debug)]
pub(crate) struct StateCollector {
    pub(crate) slots: SlotPool,
    /// The durable slots and waiting durable runs, when the worker has durable tasks.
    pub(crate) durable: Option<(SlotPool, Arc<Waiting>)>,
    pub(crate) connection: watch::Receiver<Connection>,
    pub(crate) lifecycle: watch::Receiver<Lifecycle>,
}

const PHASES: [(Phase, &str); 7] = [
    (Phase::Idle, "idle"),
    (Phase::Registering, "registering"),
    (Phase::Connecting, "connecting"),
    (Phase::Streaming, "streaming"),
    (Phase::Reopening, "reopening"),
    (Phase::BackingOff, "backing_off"),
    (Phase::Stopped, "stopped"),
];

impl WorkerMetrics {
    /// Registers the counters and histograms, and `state` for the gauges.
    pub(crate) fn register(registry: &mut Registry, state: StateCollector) -> Self {
        let m = Self {
            started: Family::default(),
            finished: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.005, 2.0, 20))),
            start_latency: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            heartbeat_failures: Counter::default(),
            reconnects: Counter::default(),
        };
        let r = registry;
        r.register(
            "hatchet_worker_tasks_started",
            "Tasks this worker started",
            m.started.clone(),
        );
        r.register(
            "hatchet_worker_tasks_finished",
            "Tasks this worker finished, by outcome (succeeded, failed, cancelled, timed_out, evicted)",
            m.finished.clone(),
        );
        r.register(
            "hatchet_worker_task_duration_seconds",
            "Task run time on this worker",
            m.duration.clone(),
        );
        r.register(
            "hatchet_worker_assignment_to_start_seconds",
            "Time from receiving an assignment to starting its handler",
            m.start_latency.clone(),
        );
        r.register(
            "hatchet_worker_heartbeat_failures",
            "Heartbeats that failed",
            m.heartbeat_failures.clone(),
        );
        r.register(
            "hatchet_worker_stream_reconnects",
            "Times the assignment stream was reopened after a failure",
            m.reconnects.clone(),
        );
        r.register_collector(Box::new(state));
        // A gauge fixed at 1: the `_build_info` shape every Prometheus query language user knows.
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
        r.register(
            "hatchet_worker_build_info",
            "Build of the worker runtime (always 1)",
            build,
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

    pub(crate) fn heartbeat_failed(&self) {
        self.heartbeat_failures.inc();
    }

    /// The stream was reopened `n` more times.
    pub(crate) fn reconnected(&self, n: u64) {
        self.reconnects.inc_by(n);
    }
}

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let now = Instant::now();
        let pools: Vec<(&str, &SlotPool)> = std::iter::once(("default", &self.slots))
            .chain(self.durable.as_ref().map(|(p, _)| ("durable", p)))
            .collect();
        type Read = fn(&SlotPool) -> usize;
        let gauges: [(&str, &str, Read); 2] = [
            (
                "hatchet_worker_slots",
                "Task slots of this worker, by slot type",
                SlotPool::total,
            ),
            (
                "hatchet_worker_slots_used",
                "Task slots held by running tasks, by slot type",
                SlotPool::used,
            ),
        ];
        for (name, help, read) in gauges {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (slot_type, pool) in &pools {
                let labels = SlotLabels {
                    slot_type: (*slot_type).into(),
                };
                ConstGauge::new(read(pool) as i64).encode(family.encode_family(&labels)?)?;
            }
        }
        if let Some((_, waiting)) = &self.durable {
            ConstGauge::new(waiting.len() as i64).encode(encoder.encode_descriptor(
                "hatchet_worker_durable_waiting",
                "Durable task runs waiting (a sleep, an event, a child run) on this worker: the ones eviction can free",
                None,
                MetricType::Gauge,
            )?)?;
        }
        let (phase, heartbeat_age) = {
            let c = self.connection.borrow();
            (c.phase, c.heartbeat_age(now))
        };
        let age = heartbeat_age.map_or(-1.0, |d| d.as_secs_f64());
        ConstGauge::new(age).encode(encoder.encode_descriptor(
            "hatchet_worker_heartbeat_age_seconds",
            "Time since the engine last acknowledged a heartbeat (-1 before the first)",
            None,
            MetricType::Gauge,
        )?)?;
        let mut states = encoder.encode_descriptor(
            "hatchet_worker_connection_state",
            "1 for the current state of the connection to the engine",
            None,
            MetricType::Gauge,
        )?;
        for (p, name) in PHASES {
            let labels = StateLabels { state: name.into() };
            ConstGauge::new(i64::from(p == phase)).encode(states.encode_family(&labels)?)?;
        }
        let draining = matches!(*self.lifecycle.borrow(), Lifecycle::Draining { .. });
        ConstGauge::new(i64::from(draining)).encode(encoder.encode_descriptor(
            "hatchet_worker_draining",
            "1 while the worker drains",
            None,
            MetricType::Gauge,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn counters_and_the_published_state_encode_as_openmetrics() {
        let now = Instant::now();
        let slots = SlotPool::new(4);
        let _held = slots.try_acquire().expect("a slot");
        let (conn, conn_rx) = watch::channel(Connection::new(now));
        let (_life, life_rx) = watch::channel(Lifecycle::Running);
        let mut r = Registry::default();
        let state = StateCollector {
            slots,
            durable: None,
            connection: conn_rx,
            lifecycle: life_rx,
        };
        let m = WorkerMetrics::register(&mut r, state);
        m.task_started("wf:t", Duration::from_millis(3));
        m.task_finished("wf:t", "succeeded", Duration::from_millis(40));
        m.reconnected(2);
        conn.send_modify(|c| {
            c.phase = Phase::Streaming;
            c.last_heartbeat_ok = Some(now);
        });
        tokio::time::advance(Duration::from_secs(2)).await;
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        for want in [
            "# TYPE hatchet_worker_tasks_started counter\n",
            "hatchet_worker_tasks_started_total{action=\"wf:t\"} 1\n",
            "hatchet_worker_tasks_finished_total{action=\"wf:t\",outcome=\"succeeded\"} 1\n",
            "# TYPE hatchet_worker_slots gauge\n",
            "hatchet_worker_slots{slot_type=\"default\"} 4\n",
            "hatchet_worker_slots_used{slot_type=\"default\"} 1\n",
            "hatchet_worker_stream_reconnects_total 2\n",
            "hatchet_worker_connection_state{state=\"streaming\"} 1\n",
            "hatchet_worker_connection_state{state=\"idle\"} 0\n",
            "hatchet_worker_heartbeat_age_seconds 2.0\n",
            "hatchet_worker_draining 0\n",
            "hatchet_worker_build_info{version=",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}

//! The worker's Prometheus metrics: `hatchet_worker_` prefix, base units, labels not names.
//! Task counters are updated as tasks run; state gauges are refreshed at scrape time.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::runtime::listener::Phase;

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

/// What the scrape handler reads from the worker to refresh the gauges.
#[derive(Debug, Clone)]
pub(crate) struct StateSample {
    pub(crate) slots_total: usize,
    pub(crate) slots_used: usize,
    pub(crate) heartbeat_age: Option<Duration>,
    pub(crate) phase: Phase,
    pub(crate) draining: bool,
    pub(crate) reconnects: u64,
}

/// Every metric of one worker.
#[derive(Clone)]
pub(crate) struct WorkerMetrics {
    started: Family<ActionLabels, Counter>,
    finished: Family<OutcomeLabels, Counter>,
    duration: Family<ActionLabels, Histogram>,
    start_latency: Histogram,
    slots: Family<SlotLabels, Gauge>,
    slots_used: Family<SlotLabels, Gauge>,
    heartbeat_age: Gauge<f64, AtomicU64>,
    heartbeat_failures: Counter,
    reconnects: Counter,
    /// Serialises scrapes' catch-up of `reconnects` (a read then an add), so two concurrent
    /// scrapes cannot both add the same reconnections.
    reconnects_sync: Arc<Mutex<()>>,
    connection: Family<StateLabels, Gauge>,
    draining: Gauge,
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

/// Rewrites OpenMetrics text (what the registry encodes) as Prometheus text format 0.0.4 for
/// scrapers and tools that do not negotiate OpenMetrics (promtool among them): counter
/// families are announced under their `_total` sample name and the `# EOF` marker goes.
pub(crate) fn openmetrics_to_prometheus(text: &str) -> String {
    let counters: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            counters.contains(name).then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(rewritten.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

impl WorkerMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let m = Self {
            started: Family::default(),
            finished: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.005, 2.0, 20))),
            start_latency: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            slots: Family::default(),
            slots_used: Family::default(),
            heartbeat_age: Gauge::default(),
            heartbeat_failures: Counter::default(),
            reconnects: Counter::default(),
            reconnects_sync: Arc::default(),
            connection: Family::default(),
            draining: Gauge::default(),
        };
        let r = registry;
        r.register(
            "hatchet_worker_tasks_started",
            "Tasks this worker started",
            m.started.clone(),
        );
        r.register(
            "hatchet_worker_tasks_finished",
            "Tasks this worker finished, by outcome (succeeded, failed, cancelled, timed_out)",
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
        r.register("hatchet_worker_slots", "Task slots of this worker", m.slots.clone());
        r.register(
            "hatchet_worker_slots_used",
            "Task slots held by running tasks",
            m.slots_used.clone(),
        );
        r.register(
            "hatchet_worker_heartbeat_age_seconds",
            "Time since the engine last acknowledged a heartbeat (-1 before the first)",
            m.heartbeat_age.clone(),
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
        r.register(
            "hatchet_worker_connection_state",
            "1 for the current state of the connection to the engine",
            m.connection.clone(),
        );
        r.register(
            "hatchet_worker_draining",
            "1 while the worker drains",
            m.draining.clone(),
        );
        // A gauge fixed at 1 rather than an OpenMetrics info metric, which the Prometheus text
        // format (and promtool) does not know.
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

    /// Refreshes the state gauges from a sample taken at scrape time.
    pub(crate) fn observe(&self, s: &StateSample) {
        let default = SlotLabels {
            slot_type: "default".into(),
        };
        self.slots.get_or_create(&default).set(s.slots_total as i64);
        self.slots_used.get_or_create(&default).set(s.slots_used as i64);
        self.heartbeat_age
            .set(s.heartbeat_age.map_or(-1.0, |d| d.as_secs_f64()));
        {
            let _one_at_a_time = self.reconnects_sync.lock().expect("reconnects lock");
            let seen = self.reconnects.get();
            if s.reconnects > seen {
                self.reconnects.inc_by(s.reconnects - seen);
            }
        }
        for (phase, name) in PHASES {
            self.connection
                .get_or_create(&StateLabels { state: name.into() })
                .set(i64::from(phase == s.phase));
        }
        self.draining.set(i64::from(s.draining));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_renamed_and_eof_dropped() {
        let om = "# HELP a_total_x Things.\n# TYPE jobs counter\n# HELP jobs Jobs done.\njobs_total{k=\"v\"} 3\n# HELP up Up.\n# TYPE up gauge\nup 1\n# EOF\n";
        let text = openmetrics_to_prometheus(om);
        assert!(text.contains("# TYPE jobs_total counter\n"));
        assert!(text.contains("# HELP jobs_total Jobs done.\n"));
        assert!(text.contains("# TYPE up gauge\n"), "gauges keep their names");
        assert!(!text.contains("# EOF"));
    }

    #[test]
    fn registered_metrics_encode_with_their_names() {
        let mut r = Registry::default();
        let m = WorkerMetrics::register(&mut r);
        m.task_started("wf:t", Duration::from_millis(3));
        m.task_finished("wf:t", "succeeded", Duration::from_millis(40));
        m.observe(&StateSample {
            slots_total: 4,
            slots_used: 1,
            heartbeat_age: Some(Duration::from_secs(2)),
            phase: Phase::Streaming,
            draining: false,
            reconnects: 2,
        });
        let mut om = String::new();
        prometheus_client::encoding::text::encode(&mut om, &r).unwrap();
        let text = openmetrics_to_prometheus(&om);
        for want in [
            "hatchet_worker_tasks_started_total{action=\"wf:t\"} 1",
            "hatchet_worker_tasks_finished_total{action=\"wf:t\",outcome=\"succeeded\"} 1",
            "hatchet_worker_slots{slot_type=\"default\"} 4",
            "hatchet_worker_slots_used{slot_type=\"default\"} 1",
            "hatchet_worker_stream_reconnects_total 2",
            "hatchet_worker_connection_state{state=\"streaming\"} 1",
            "hatchet_worker_heartbeat_age_seconds 2.0",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
    }
}

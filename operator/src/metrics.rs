//! The operator's Prometheus metrics (`hatchet_operator_` prefix, base units, `_total`
//! counters). Write calls are counted by the kind of object written, so "a resync writes
//! nothing" is observable from outside. Lease renewals are not reconciler writes and are not
//! counted there.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// Reconciler metrics; cheap to clone (shared handles).
#[derive(Clone, Debug)]
pub struct Metrics {
    reconciles: Counter,
    errors: Family<ReasonLabel, Counter>,
    duration: Histogram,
    writes: Family<KindLabel, Counter>,
    leader: Gauge,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            reconciles: Counter::default(),
            errors: Family::default(),
            duration: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            writes: Family::default(),
            leader: Gauge::default(),
        };
        registry.register(
            "hatchet_operator_reconciles",
            "Reconciles started by the leader (followers only keep their caches warm)",
            m.reconciles.clone(),
        );
        registry.register(
            "hatchet_operator_reconcile_errors",
            "Reconciles that failed, by reason",
            m.errors.clone(),
        );
        registry.register(
            "hatchet_operator_reconcile_duration_seconds",
            "Time spent in one reconcile",
            m.duration.clone(),
        );
        registry.register(
            "hatchet_operator_write_calls",
            "Write calls (apply, patch, create, delete) the reconciler made, by kind of object",
            m.writes.clone(),
        );
        registry.register(
            "hatchet_operator_leader",
            "1 while this replica holds the leader Lease",
            m.leader.clone(),
        );
        m
    }

    /// A reconcile starts; the returned timer records its duration when dropped.
    pub fn reconcile_started(&self) -> ReconcileTimer {
        self.reconciles.inc();
        ReconcileTimer {
            start: Instant::now(),
            histogram: self.duration.clone(),
        }
    }

    /// A reconcile failed with the error's `metric_label()`.
    pub fn reconcile_failed(&self, reason: &'static str) {
        self.errors.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// The reconciler wrote an object of `kind` (e.g. `Deployment`, `Event`).
    pub fn wrote(&self, kind: &'static str) {
        self.writes.get_or_create(&KindLabel { kind }).inc();
    }

    /// Leadership changed.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }
}

/// Records a reconcile's duration when dropped.
#[derive(Debug)]
pub struct ReconcileTimer {
    start: Instant,
    histogram: Histogram,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_exposed_with_their_names() {
        let mut registry = Registry::default();
        let m = Metrics::register(&mut registry);
        drop(m.reconcile_started());
        m.reconcile_failed("secret_not_found");
        m.wrote("Deployment");
        m.wrote("Deployment");
        m.set_leader(true);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        for want in [
            "hatchet_operator_reconciles_total 1",
            "hatchet_operator_reconcile_errors_total{reason=\"secret_not_found\"} 1",
            "hatchet_operator_reconcile_duration_seconds_count 1",
            "hatchet_operator_write_calls_total{kind=\"Deployment\"} 2",
            "hatchet_operator_leader 1",
        ] {
            assert!(out.contains(want), "{want} in\n{out}");
        }
    }
}

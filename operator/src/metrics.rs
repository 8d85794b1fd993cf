//! The operator's Prometheus metrics (`hatchet_operator_` prefix, base units, `_total`
//! counters). Write calls are counted by the kind of object written, so "a resync writes
//! nothing" is observable from outside. Lease renewals are not reconciler writes and are not
//! counted there.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::crd::HatchetWorkerStatus;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FleetLabels {
    namespace: String,
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScaleLabels {
    namespace: String,
    name: String,
    direction: &'static str,
}

/// Per autoscaled fleet, what its status says.
#[derive(Clone, Debug, Default)]
struct FleetGauges {
    slots_used: Family<FleetLabels, Gauge>,
    slots_total: Family<FleetLabels, Gauge>,
    utilization: Family<FleetLabels, Gauge<f64, AtomicU64>>,
    queued: Family<FleetLabels, Gauge>,
    desired: Family<FleetLabels, Gauge>,
    scale_events: Family<ScaleLabels, Counter>,
    known: Arc<Mutex<BTreeSet<(String, String)>>>,
}

/// Reconciler metrics; cheap to clone (shared handles).
#[derive(Clone, Debug)]
pub struct Metrics {
    reconciles: Counter,
    errors: Family<ReasonLabel, Counter>,
    duration: Histogram,
    writes: Family<KindLabel, Counter>,
    leader: Gauge,
    fleets: FleetGauges,
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
            fleets: FleetGauges::default(),
        };
        let f = &m.fleets;
        registry.register(
            "hatchet_operator_fleet_slots_used",
            "Task slots in use on an autoscaled fleet's active workers, as the engine reports",
            f.slots_used.clone(),
        );
        registry.register(
            "hatchet_operator_fleet_slots",
            "Task slots of an autoscaled fleet's active workers",
            f.slots_total.clone(),
        );
        registry.register(
            "hatchet_operator_fleet_utilization_ratio",
            "Slots used / slots of an autoscaled fleet",
            f.utilization.clone(),
        );
        registry.register(
            "hatchet_operator_fleet_queued_tasks",
            "Tasks of an autoscaled fleet's actions waiting for a slot",
            f.queued.clone(),
        );
        registry.register(
            "hatchet_operator_fleet_desired_replicas",
            "Worker pods the autoscaler wants for a fleet",
            f.desired.clone(),
        );
        registry.register(
            "hatchet_operator_scale_events",
            "Size changes the autoscaler decided, by direction (up, down)",
            f.scale_events.clone(),
        );
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

    /// An autoscaled fleet's figures, from the status the reconciler computed.
    pub fn fleet(&self, namespace: &str, name: &str, status: &HatchetWorkerStatus) {
        let l = FleetLabels {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        };
        let f = &self.fleets;
        if let Some(slots) = &status.slots {
            f.slots_total.get_or_create(&l).set(slots.total);
            if let Some(used) = slots.used {
                f.slots_used.get_or_create(&l).set(used);
            }
        }
        if let Some(u) = status.utilization {
            f.utilization.get_or_create(&l).set(u);
        }
        if let Some(q) = status.queued {
            f.queued.get_or_create(&l).set(q);
        }
        if let Some(d) = status.desired_replicas {
            f.desired.get_or_create(&l).set(i64::from(d));
        }
        let first_seen = f
            .known
            .lock()
            .map(|mut known| known.insert((l.namespace.clone(), l.name.clone())))
            .unwrap_or(false);
        if first_seen {
            // Both scale-event series start at 0, so `increase()` counts the fleet's first event.
            for direction in ["up", "down"] {
                drop(f.scale_events.get_or_create(&ScaleLabels {
                    namespace: l.namespace.clone(),
                    name: l.name.clone(),
                    direction,
                }));
            }
        }
    }

    /// The autoscaler changed a fleet's size.
    pub fn scaled(&self, namespace: &str, name: &str, up: bool) {
        let l = ScaleLabels {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            direction: if up { "up" } else { "down" },
        };
        self.fleets.scale_events.get_or_create(&l).inc();
    }

    /// Fleets with figures for which `keep(namespace, name)` is false.
    pub fn fleets_not_in(&self, keep: impl Fn(&str, &str) -> bool) -> Vec<(String, String)> {
        let known = self.fleets.known.lock().map(|k| k.clone()).unwrap_or_default();
        known.into_iter().filter(|(ns, n)| !keep(ns, n)).collect()
    }

    /// Drops a fleet's series (it was deleted or stopped autoscaling).
    pub fn forget_fleet(&self, namespace: &str, name: &str) {
        let f = &self.fleets;
        let l = FleetLabels {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        };
        f.slots_used.remove(&l);
        f.slots_total.remove(&l);
        f.utilization.remove(&l);
        f.queued.remove(&l);
        f.desired.remove(&l);
        for direction in ["up", "down"] {
            f.scale_events.remove(&ScaleLabels {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                direction,
            });
        }
        if let Ok(mut known) = f.known.lock() {
            known.remove(&(l.namespace, l.name));
        }
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
        let status: HatchetWorkerStatus = serde_json::from_value(serde_json::json!({
            "slots": {"total": 40, "used": 34}, "utilization": 0.85, "queued": 25, "desiredReplicas": 7
        }))
        .unwrap();
        m.fleet("team", "pay", &status);
        m.scaled("team", "pay", true);
        m.fleet("team", "gone", &status);
        assert_eq!(
            m.fleets_not_in(|_, n| n == "pay"),
            [("team".to_owned(), "gone".to_owned())]
        );
        m.forget_fleet("team", "gone");
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        for want in [
            "hatchet_operator_reconciles_total 1",
            "hatchet_operator_reconcile_errors_total{reason=\"secret_not_found\"} 1",
            "hatchet_operator_reconcile_duration_seconds_count 1",
            "hatchet_operator_write_calls_total{kind=\"Deployment\"} 2",
            "hatchet_operator_leader 1",
            "hatchet_operator_fleet_slots_used{namespace=\"team\",name=\"pay\"} 34",
            "hatchet_operator_fleet_slots{namespace=\"team\",name=\"pay\"} 40",
            "hatchet_operator_fleet_utilization_ratio{namespace=\"team\",name=\"pay\"} 0.85",
            "hatchet_operator_fleet_queued_tasks{namespace=\"team\",name=\"pay\"} 25",
            "hatchet_operator_fleet_desired_replicas{namespace=\"team\",name=\"pay\"} 7",
            "hatchet_operator_scale_events_total{namespace=\"team\",name=\"pay\",direction=\"up\"} 1",
            // Present from the fleet's first figures, so `increase()` sees its first event.
            "hatchet_operator_scale_events_total{namespace=\"team\",name=\"pay\",direction=\"down\"} 0",
        ] {
            assert!(out.contains(want), "{want} in\n{out}");
        }
        assert!(
            !out.contains("name=\"gone\""),
            "forgotten fleets leave no series:\n{out}"
        );
    }
}

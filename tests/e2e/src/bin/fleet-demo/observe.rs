//! What the demo looks at once a second: the HatchetWorker's status and pods (typed reads from
//! the local apiserver) and each pod's slots and finished tasks (PromQL against the world's
//! Prometheus, which scrapes the pods through Kubernetes service discovery).

use std::collections::BTreeMap;
use std::time::Duration;

use hatchet_e2e::World;
use hatchet_e2e::kube::Kube;
use hatchet_e2e::prometheus;
use k8s_openapi::api::core::v1::Pod as PodObject;
use kube::{CustomResource, ResourceExt as _};
use serde::{Deserialize, Serialize};

/// The part of a `HatchetWorker` the demo reads (this crate does not depend on the operator's,
/// which depends on it); fields it does not name are ignored.
#[derive(CustomResource, Serialize, Deserialize, Debug, Clone, Default)]
#[kube(
    group = "hatchet.run",
    version = "v1alpha1",
    kind = "HatchetWorker",
    namespaced,
    status = "FleetStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FleetSpec {
    /// The autoscaler's bounds, when it sizes the fleet.
    #[serde(default)]
    pub(crate) autoscaling: Option<Bounds>,
}

/// `spec.autoscaling`, as far as the demo needs it.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Bounds {
    pub(crate) min_replicas: i64,
}

/// `status`, as far as the demo shows it.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FleetStatus {
    desired_replicas: Option<i64>,
    slots: Option<Slots>,
    queued: Option<i64>,
    scale_reason: Option<String>,
}

/// `status.slots`.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
struct Slots {
    total: i64,
    used: Option<i64>,
}

/// The fleet at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Fleet {
    /// Time since the demo started.
    pub(crate) at: Duration,
    /// `status.desiredReplicas` (the autoscaler's decision).
    pub(crate) desired: Option<i64>,
    /// Slots used and total over the fleet, as the status says (the engine's figures).
    pub(crate) slots: Option<(i64, i64)>,
    /// `status.queued`: tasks of the fleet's actions waiting in the engine.
    pub(crate) queued: Option<i64>,
    /// `status.scaleReason`.
    pub(crate) reason: String,
    /// The fleet's pods, by name.
    pub(crate) pods: Vec<Pod>,
}

impl Fleet {
    /// Pods Ready and not being deleted.
    pub(crate) fn ready_pods(&self) -> usize {
        self.pods.iter().filter(|p| p.ready && !p.terminating).count()
    }
}

/// One worker pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Pod {
    pub(crate) name: String,
    pub(crate) ready: bool,
    /// Being deleted (draining its running tasks before it exits).
    pub(crate) terminating: bool,
    /// Slots used and total, as Prometheus scraped them from the pod's `/metrics`.
    pub(crate) slots: Option<(f64, f64)>,
    /// Tasks the pod finished (`hatchet_worker_tasks_finished_total`).
    pub(crate) finished: Option<f64>,
}

/// Reads the fleet `name` in `ns`; what cannot be read is left empty (the view shows `-`).
pub(crate) fn fleet(world: &World, kube: &Kube, ns: &str, name: &str, at: Duration) -> Fleet {
    let s = kube
        .namespaced::<HatchetWorker>(ns)
        .get(name)
        .ok()
        .and_then(|hw| hw.status)
        .unwrap_or_default();
    let pods = kube
        .namespaced::<PodObject>(ns)
        .list(&format!("hatchet.run/fleet={name}"))
        .unwrap_or_default();
    let sel = format!(r#"namespace="{ns}", fleet="{name}""#);
    let by_pod = |promql: String| -> BTreeMap<String, f64> {
        prometheus::query(world, &promql)
            .unwrap_or_default()
            .into_iter()
            .map(|s| (s.label("pod").to_owned(), s.value))
            .collect()
    };
    let used = by_pod(format!(r#"hatchet_worker_slots_used{{slot_type="default", {sel}}}"#));
    let total = by_pod(format!(r#"hatchet_worker_slots{{slot_type="default", {sel}}}"#));
    let finished = by_pod(format!("sum by (pod) (hatchet_worker_tasks_finished_total{{{sel}}})"));
    let mut pods: Vec<Pod> = pods
        .iter()
        .map(|p| {
            let name = p.name_any();
            Pod {
                ready: p
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")),
                terminating: p.metadata.deletion_timestamp.is_some(),
                slots: used.get(&name).copied().zip(total.get(&name).copied()),
                finished: finished.get(&name).copied(),
                name,
            }
        })
        .collect();
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    Fleet {
        at,
        desired: s.desired_replicas,
        slots: s.slots.and_then(|slots| slots.used.zip(Some(slots.total))),
        queued: s.queued,
        reason: s.scale_reason.unwrap_or_default(),
        pods,
    }
}

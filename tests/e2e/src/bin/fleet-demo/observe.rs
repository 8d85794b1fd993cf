//! What the demo looks at once a second: the HatchetWorker's status and pods (kubectl against
//! the local apiserver) and each pod's slots and finished tasks (PromQL against the world's
//! Prometheus, which scrapes the pods through Kubernetes service discovery).

use std::collections::BTreeMap;
use std::time::Duration;

use hatchet_e2e::World;
use hatchet_e2e::kube::{condition_true, get_json, list};
use hatchet_e2e::prometheus;
use serde_json::Value;

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
pub(crate) fn fleet(world: &World, ns: &str, name: &str, at: Duration) -> Fleet {
    let hw = get_json(world, &["hw", name, "-n", ns]).unwrap_or(Value::Null);
    let s = &hw["status"];
    let pods = list(world, ns, "pod", &format!("hatchet.run/fleet={name}")).unwrap_or_default();
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
        .filter_map(|p| {
            let name = p["metadata"]["name"].as_str()?.to_owned();
            Some(Pod {
                ready: condition_true(p, "Ready"),
                terminating: !p["metadata"]["deletionTimestamp"].is_null(),
                slots: used.get(&name).copied().zip(total.get(&name).copied()),
                finished: finished.get(&name).copied(),
                name,
            })
        })
        .collect();
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    Fleet {
        at,
        desired: s["desiredReplicas"].as_i64(),
        slots: s["slots"]["used"].as_i64().zip(s["slots"]["total"].as_i64()),
        queued: s["queued"].as_i64(),
        reason: s["scaleReason"].as_str().unwrap_or_default().to_owned(),
        pods,
    }
}

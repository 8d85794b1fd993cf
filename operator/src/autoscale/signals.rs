//! The engine's REST answers turned into what the decision needs, as pure functions: the
//! fleet's workers from `GET /api/v1/tenants/{t}/worker` (filtered by the fleet's Hatchet
//! label; a worker's name is the Hatchet namespace prefix plus its pod's name) and the queued
//! tasks of the fleet's actions from `GET /api/v1/tenants/{t}/step-run-queue-metrics` (keyed
//! by action id, e.g. `workflow:task`, lowercased).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::decision::Observation;

/// One worker as the engine lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EngineWorker {
    /// `<hatchet namespace><pod name>`.
    pub name: String,
    /// `ACTIVE`, `PAUSED` (draining) or `INACTIVE` (no heartbeat for 5 s).
    #[serde(default)]
    pub status: Option<String>,
    /// Slots per type: `default` holds the task slots.
    #[serde(default)]
    pub slot_config: Option<BTreeMap<String, SlotConfig>>,
    /// Action ids the worker serves.
    #[serde(default)]
    pub actions: Option<Vec<String>>,
}

/// Slots of one type on one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct SlotConfig {
    /// Slots of the worker.
    pub limit: i64,
    /// Slots free now.
    #[serde(default)]
    pub available: Option<i64>,
}

#[derive(Deserialize)]
struct WorkerList {
    #[serde(default)]
    rows: Option<Vec<EngineWorker>>,
}

#[derive(Deserialize)]
struct QueueMetrics {
    #[serde(default)]
    queues: Option<BTreeMap<String, serde_json::Value>>,
}

/// The workers of a worker-list answer.
pub fn parse_workers(body: &[u8]) -> Result<Vec<EngineWorker>, serde_json::Error> {
    Ok(serde_json::from_slice::<WorkerList>(body)?.rows.unwrap_or_default())
}

/// Queued tasks per queue (lowercased) of a queue-metrics answer.
pub fn parse_queues(body: &[u8]) -> Result<BTreeMap<String, i64>, serde_json::Error> {
    let m: QueueMetrics = serde_json::from_slice(body)?;
    Ok(m.queues
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_lowercase(), v.as_i64()?)))
        .collect())
}

/// Slot use of one worker pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodSlots {
    /// Slots in use.
    pub used: i64,
    /// Slots of the worker.
    pub total: i64,
}

/// What the engine says about one fleet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FleetSignals {
    /// Slot use per pod name, for the fleet's active workers whose pod is alive.
    pub pods: BTreeMap<String, PodSlots>,
    /// Tasks of the fleet's actions waiting for a slot.
    pub queued: i64,
    /// The fleet's actions: served by its workers now, or remembered.
    pub actions: Vec<String>,
}

impl FleetSignals {
    /// The decision's input.
    pub fn observation(&self) -> Observation {
        Observation {
            slots_used: self.pods.values().map(|p| p.used).sum(),
            slots_total: self.pods.values().map(|p| p.total).sum(),
            queued: self.queued,
            actions_known: !self.actions.is_empty(),
        }
    }
}

/// The fleet's signals. `live_pods`: the fleet's pods that exist and are not terminating
/// (a draining worker's tasks finish where they are and its slots are going away);
/// `prefix`: the Hatchet namespace prefix of worker names; `remembered`: the actions from the
/// status, used when no worker runs (a fleet at zero).
pub fn fleet_signals(
    workers: &[EngineWorker],
    queues: &BTreeMap<String, i64>,
    live_pods: &BTreeSet<String>,
    prefix: &str,
    remembered: &[String],
) -> FleetSignals {
    let mut pods = BTreeMap::new();
    let mut actions = BTreeSet::new();
    for w in workers {
        let Some(pod) = w.name.strip_prefix(prefix) else {
            continue;
        };
        if w.status.as_deref() != Some("ACTIVE") || !live_pods.contains(pod) {
            continue;
        }
        let slots = w.slot_config.as_ref().and_then(|c| c.get("default")).copied();
        let (total, free) = slots.map_or((0, 0), |s| (s.limit, s.available.unwrap_or(s.limit)));
        pods.insert(
            pod.to_owned(),
            PodSlots {
                used: (total - free).clamp(0, total.max(0)),
                total,
            },
        );
        actions.extend(w.actions.iter().flatten().map(|a| a.to_lowercase()));
    }
    let actions: Vec<String> = if actions.is_empty() {
        remembered.to_vec()
    } else {
        actions.into_iter().collect()
    };
    let queued = actions.iter().filter_map(|a| queues.get(a)).sum();
    FleetSignals { pods, queued, actions }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As the engine v0.104.7 answers (trimmed): one active, one draining, one dead worker of
    /// the fleet, and a worker of another fleet's pod name under another prefix.
    const WORKERS: &str = r#"{"pagination":{"current_page":1,"next_page":1,"num_pages":1},"rows":[
      {"actions":["team_orders:charge","team_orders:ship"],"name":"team_pay-7c9-a","status":"ACTIVE",
       "slotConfig":{"default":{"available":3,"limit":10}},"labels":[{"key":"hatchet.run/fleet","value":"ns.pay"}]},
      {"actions":["team_orders:charge"],"name":"team_pay-7c9-b","status":"PAUSED",
       "slotConfig":{"default":{"available":8,"limit":10}}},
      {"actions":["team_orders:charge"],"name":"team_pay-7c9-c","status":"INACTIVE",
       "slotConfig":{"default":{"available":10,"limit":10}}},
      {"actions":["team_orders:refund"],"name":"team_pay-7c9-d","status":"ACTIVE",
       "slotConfig":{"default":{"available":10,"limit":10}}},
      {"actions":["other:x"],"name":"other_pay-7c9-a","status":"ACTIVE",
       "slotConfig":{"default":{"available":0,"limit":10}}}]}"#;
    const QUEUES: &str =
        r#"{"queues":{"team_orders:charge":7,"team_orders:ship":2,"team_orders:refund":1,"other:x":50}}"#;

    fn pods(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn active_workers_of_live_pods_count_and_their_actions_select_the_queues() {
        let workers = parse_workers(WORKERS.as_bytes()).unwrap();
        let queues = parse_queues(QUEUES.as_bytes()).unwrap();
        let s = fleet_signals(
            &workers,
            &queues,
            &pods(&["pay-7c9-a", "pay-7c9-b", "pay-7c9-c"]),
            "team_",
            &[],
        );
        assert_eq!(s.pods.len(), 1, "paused, dead and pod-less workers are left out: {s:?}");
        assert_eq!(s.pods["pay-7c9-a"], PodSlots { used: 7, total: 10 });
        assert_eq!(s.actions, ["team_orders:charge", "team_orders:ship"]);
        assert_eq!(s.queued, 9);
        assert_eq!(
            s.observation(),
            Observation {
                slots_used: 7,
                slots_total: 10,
                queued: 9,
                actions_known: true
            }
        );
    }

    #[test]
    fn a_fleet_at_zero_counts_the_queues_of_its_remembered_actions() {
        let queues = parse_queues(QUEUES.as_bytes()).unwrap();
        let remembered = vec!["team_orders:charge".to_owned()];
        let s = fleet_signals(&[], &queues, &BTreeSet::new(), "team_", &remembered);
        assert_eq!((s.queued, s.actions.clone()), (7, remembered));
        assert!(s.observation().actions_known);
        let s = fleet_signals(&[], &queues, &BTreeSet::new(), "team_", &[]);
        assert!(!s.observation().actions_known);
        assert_eq!(s.queued, 0);
    }

    #[test]
    fn odd_answers_parse_or_fail_clearly() {
        assert!(parse_workers(br#"{"rows":[]}"#).unwrap().is_empty());
        assert!(parse_workers(br#"{"pagination":{}}"#).unwrap().is_empty());
        assert!(parse_workers(b"<html>").is_err());
        assert!(parse_queues(br#"{}"#).unwrap().is_empty());
        let q = parse_queues(br#"{"queues":{"Wf:Task":3,"weird":"x"}}"#).unwrap();
        assert_eq!(q, BTreeMap::from([("wf:task".to_owned(), 3)]));
        // A worker without slot figures counts as empty, never negative.
        let w = parse_workers(br#"{"rows":[{"name":"p","status":"ACTIVE"}]}"#).unwrap();
        let s = fleet_signals(&w, &BTreeMap::new(), &pods(&["p"]), "", &[]);
        assert_eq!(s.pods["p"], PodSlots { used: 0, total: 0 });
    }
}

//! Which pods a scale-in removes: the ReplicaSet controller removes the pods with the lowest
//! `controller.kubernetes.io/pod-deletion-cost` first (after unready ones), so before shrinking
//! the operator sets each worker pod's cost to the slots it has in use. Idle workers go first;
//! a busy one that still goes drains its tasks through `preStop`.

use std::collections::BTreeMap;

use super::signals::PodSlots;

/// The annotation the ReplicaSet controller ranks pods by.
pub const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// Cost of a pod the engine lists no active worker for (starting, or gone quiet): removed
/// before any idle worker.
pub const UNKNOWN_COST: i64 = -1;

/// The pods whose annotation must change, with the value to set: `pods` are (name, current
/// annotation) of the fleet's live pods; `slots` their slot use from the engine.
pub fn deletion_costs(pods: &[(String, Option<String>)], slots: &BTreeMap<String, PodSlots>) -> Vec<(String, String)> {
    pods.iter()
        .filter_map(|(name, have)| {
            let want = slots.get(name).map_or(UNKNOWN_COST, |s| s.used).to_string();
            (have.as_deref() != Some(want.as_str())).then(|| (name.clone(), want))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_pods_cost_their_slots_and_unchanged_ones_are_not_written() {
        let slots = BTreeMap::from([
            ("busy".to_owned(), PodSlots { used: 7, total: 10 }),
            ("idle".to_owned(), PodSlots { used: 0, total: 10 }),
            ("same".to_owned(), PodSlots { used: 2, total: 10 }),
        ]);
        let pods = vec![
            ("busy".to_owned(), Some("1".to_owned())),
            ("idle".to_owned(), None),
            ("same".to_owned(), Some("2".to_owned())),
            ("starting".to_owned(), None),
        ];
        assert_eq!(
            deletion_costs(&pods, &slots),
            [
                ("busy".to_owned(), "7".to_owned()),
                ("idle".to_owned(), "0".to_owned()),
                ("starting".to_owned(), "-1".to_owned()),
            ]
        );
    }
}

//! The fleet's PodDisruptionBudget (default `maxUnavailable: 1`), so voluntary evictions
//! (node drains) take workers down one at a time and each can drain its tasks.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{child_meta, name_and_namespace, selector_labels, with_hash};
use crate::crd::HatchetWorker;
use crate::error::Error;

/// The PodDisruptionBudget from `spec.disruptionBudget`, stamped with its hash.
pub fn desired_pdb(hw: &HatchetWorker) -> Result<PodDisruptionBudget, Error> {
    let (name, _) = name_and_namespace(hw)?;
    let budget = hw.spec.disruption_budget.as_ref();
    let min_available = budget.and_then(|b| b.min_available.clone());
    let max_unavailable = budget
        .and_then(|b| b.max_unavailable.clone())
        .or_else(|| min_available.is_none().then_some(IntOrString::Int(1)));
    with_hash(PodDisruptionBudget {
        metadata: child_meta(hw)?,
        spec: Some(PodDisruptionBudgetSpec {
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(&name)),
                ..LabelSelector::default()
            }),
            min_available,
            max_unavailable,
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::desired::fixtures::mk_hw;

    #[test]
    fn budget_table() {
        let cases = [
            (json!({}), None, Some(IntOrString::Int(1))),
            (json!({"disruptionBudget": {}}), None, Some(IntOrString::Int(1))),
            (
                json!({"disruptionBudget": {"maxUnavailable": "25%"}}),
                None,
                Some(IntOrString::String("25%".into())),
            ),
            (
                json!({"disruptionBudget": {"minAvailable": 2}}),
                Some(IntOrString::Int(2)),
                None,
            ),
        ];
        for (spec, min, max) in cases {
            let pdb = desired_pdb(&mk_hw(spec.clone())).unwrap();
            let s = pdb.spec.unwrap();
            assert_eq!((s.min_available, s.max_unavailable), (min, max), "{spec}");
            assert_eq!(s.selector.unwrap().match_labels.unwrap(), selector_labels("fleet"));
        }
    }
}

//! The fleet's ServiceAccount, made only when the template names none.

use k8s_openapi::api::core::v1::ServiceAccount;

use super::{child_meta, with_hash};
use crate::crd::HatchetWorker;
use crate::error::Error;

/// The ServiceAccount the pod template names itself, if any (an empty name is none).
pub fn user_service_account(hw: &HatchetWorker) -> Option<&str> {
    hw.spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// The ServiceAccount named like the fleet, or `None` when the pod template sets
/// `serviceAccountName` (then the user's account is used and none is made).
pub fn desired_service_account(hw: &HatchetWorker) -> Result<Option<ServiceAccount>, Error> {
    if user_service_account(hw).is_some() {
        return Ok(None);
    }
    with_hash(ServiceAccount {
        metadata: child_meta(hw)?,
        ..ServiceAccount::default()
    })
    .map(Some)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::desired::fixtures::mk_hw;

    #[test]
    fn made_only_without_a_user_account() {
        let sa = desired_service_account(&mk_hw(json!({}))).unwrap().unwrap();
        assert_eq!(sa.metadata.name.as_deref(), Some("fleet"));
        let hw = mk_hw(json!({"template": {"spec": {"serviceAccountName": "mine", "containers": [{"name": "w"}]}}}));
        assert!(desired_service_account(&hw).unwrap().is_none());
        let hw = mk_hw(json!({"template": {"spec": {"serviceAccountName": "", "containers": [{"name": "w"}]}}}));
        assert!(desired_service_account(&hw).unwrap().is_some());
    }
}

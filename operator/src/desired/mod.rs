//! Desired state: pure functions from a `HatchetWorker` to the children the operator owns.
//! No IO here; the reconciler compares these with what it observes and applies differences.
//!
//! Every child carries the annotation [`HASH_ANNOTATION`]: a hash of the desired object as the
//! operator computed it. The reconciler applies a child only when the observed annotation
//! differs from the desired one, so a resync of an unchanged fleet makes no write calls.

mod deployment;
mod pdb;
mod security;
mod service;
mod serviceaccount;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};
use serde::Serialize;

pub use deployment::{WorkerContainer, desired_deployment, health_port, worker_container_name};
pub use pdb::desired_pdb;
pub use service::desired_service;
pub use serviceaccount::{desired_service_account, user_service_account};

use crate::crd::HatchetWorker;
use crate::error::Error;

/// The field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "hatchet-operator";
/// Annotation holding the hash of the desired state last applied to a child.
pub const HASH_ANNOTATION: &str = "hatchet.run/applied-hash";
/// Label (on children and pods) naming the fleet, and selecting its pods.
pub const FLEET_LABEL: &str = "hatchet.run/fleet";
/// `app.kubernetes.io/managed-by` value on every child (the operator's watches select on it).
pub const MANAGED_BY: &str = "hatchet-operator";
/// The worker's health/metrics/drain port and its name.
pub const HEALTH_PORT: i32 = hatchet_contract::http::HEALTH_PORT as i32;
/// Name of the health port on the container and the Service.
pub const HEALTH_PORT_NAME: &str = "health";

/// Labels that select a fleet's pods (the Deployment's immutable selector).
pub fn selector_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "hatchet-worker".to_owned()),
        (FLEET_LABEL.to_owned(), name.to_owned()),
    ])
}

/// The selector as a string, for `status.selector` (the `/scale` subresource).
pub fn selector_string(name: &str) -> String {
    selector_labels(name)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Labels on every child object and pod.
pub(crate) fn common_labels(name: &str) -> BTreeMap<String, String> {
    let mut l = selector_labels(name);
    l.insert("app.kubernetes.io/instance".to_owned(), name.to_owned());
    l.insert("app.kubernetes.io/managed-by".to_owned(), MANAGED_BY.to_owned());
    l
}

/// Name and namespace of a HatchetWorker, or the error saying which is missing.
pub(crate) fn name_and_namespace(hw: &HatchetWorker) -> Result<(String, String), Error> {
    let ns = hw
        .namespace()
        .ok_or_else(|| Error::MissingMetadata(kube::runtime::reflector::ObjectRef::from_obj(hw), "namespace"))?;
    Ok((hw.name_any(), ns))
}

/// Metadata of a child: same name and namespace as the HatchetWorker, common labels, and the
/// HatchetWorker as controlling owner (so deleting it garbage-collects the child).
pub(crate) fn child_meta(hw: &HatchetWorker) -> Result<ObjectMeta, Error> {
    let (name, ns) = name_and_namespace(hw)?;
    Ok(ObjectMeta {
        name: Some(name.clone()),
        namespace: Some(ns),
        labels: Some(common_labels(&name)),
        owner_references: Some(vec![owner_ref(hw)?]),
        ..ObjectMeta::default()
    })
}

fn owner_ref(hw: &HatchetWorker) -> Result<OwnerReference, Error> {
    hw.controller_owner_ref(&())
        .ok_or_else(|| Error::MissingMetadata(kube::runtime::reflector::ObjectRef::from_obj(hw), "uid"))
}

/// Stamps `obj` with [`HASH_ANNOTATION`] = hash of its serialized form (without the annotation).
pub(crate) fn with_hash<K: Resource + Serialize>(mut obj: K) -> Result<K, Error> {
    if let Some(a) = obj.meta_mut().annotations.as_mut() {
        a.remove(HASH_ANNOTATION);
    }
    let hash = format!("{:016x}", fnv1a(&serde_json::to_vec(&obj)?));
    obj.meta_mut()
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(HASH_ANNOTATION.to_owned(), hash);
    Ok(obj)
}

/// The hash annotation of an object, if any.
pub fn applied_hash<K: Resource>(obj: &K) -> Option<&str> {
    obj.meta()
        .annotations
        .as_ref()?
        .get(HASH_ANNOTATION)
        .map(String::as_str)
}

/// 64-bit FNV-1a: stable across builds and Rust versions (unlike `DefaultHasher`).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! `mk_*` builders for the table-driven tests.
    use super::*;
    use crate::crd::HatchetWorkerSpec;

    /// A HatchetWorker as the apiserver would hand it over (defaults filled, uid set).
    pub(crate) fn mk_hw(spec: serde_json::Value) -> HatchetWorker {
        let mut base = serde_json::json!({
            "connection": {"tokenSecretRef": {"name": "hatchet-token", "key": "token"}},
            "template": {"spec": {"containers": [{"name": "worker", "image": "w:1"}]}},
        });
        for (k, v) in spec.as_object().expect("object") {
            base[k] = v.clone();
        }
        let spec: HatchetWorkerSpec = serde_json::from_value(base).expect("spec");
        let mut hw = HatchetWorker::new("fleet", spec);
        hw.metadata.namespace = Some("team".into());
        hw.metadata.uid = Some("uid-1".into());
        hw.metadata.generation = Some(3);
        hw
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::mk_hw;
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn hash_is_stable_and_tracks_changes() {
        let hw = mk_hw(serde_json::json!({}));
        let a = with_hash(desired_service(&hw).unwrap()).unwrap();
        let b = with_hash(a.clone()).unwrap();
        assert_eq!(
            applied_hash(&a),
            applied_hash(&b),
            "re-hashing ignores the old annotation"
        );
        let hw2 = mk_hw(serde_json::json!({"slots": 7}));
        let d1 = desired_deployment(&hw, hw.spec.replicas).unwrap();
        let d2 = desired_deployment(&hw2, hw2.spec.replicas).unwrap();
        assert_ne!(applied_hash(&d1), applied_hash(&d2));
    }

    #[test]
    fn children_are_owned_by_the_hatchet_worker() {
        let hw = mk_hw(serde_json::json!({}));
        let meta = child_meta(&hw).unwrap();
        let owner = &meta.owner_references.unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("HatchetWorker", "fleet"));
        assert_eq!(owner.controller, Some(true));
        assert_eq!(
            selector_string("fleet"),
            "app.kubernetes.io/name=hatchet-worker,hatchet.run/fleet=fleet"
        );
    }
}

//! A namespace per test, so tests sharing the control plane never see each other's objects.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Namespace as NamespaceObject;
use kube::api::ObjectMeta;

use super::Kube;

/// A namespace of the test's own, deleted (without waiting) when the test ends, pass or fail.
/// Names are unique across the test processes that share the control plane.
pub struct Namespace {
    kube: Kube,
    /// The namespace's name: `PREFIX-PID-N-NANOS`.
    pub name: String,
}

impl Namespace {
    /// Creates the namespace; panics (failing the test) when the apiserver refuses.
    pub fn create(kube: &Kube, prefix: &str) -> Self {
        Self::create_labelled(kube, prefix, &[])
    }

    /// [`Self::create`] with `labels` on the namespace (e.g. the Pod Security level it
    /// enforces), set at creation so nothing runs there before them.
    pub fn create_labelled(kube: &Kube, prefix: &str, labels: &[(&str, &str)]) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "{prefix}-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            nanos % 100_000
        );
        let labels: BTreeMap<String, String> = labels.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        let object = NamespaceObject {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: (!labels.is_empty()).then_some(labels),
                ..Default::default()
            },
            ..Default::default()
        };
        if let Err(e) = kube.cluster::<NamespaceObject>().create(&object) {
            panic!("create namespace {name}: {e}");
        }
        Self {
            kube: kube.clone(),
            name,
        }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self.kube.cluster::<NamespaceObject>().delete(&self.name);
    }
}

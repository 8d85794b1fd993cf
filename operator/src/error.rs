//! The operator's one error type.

use kube::runtime::reflector::ObjectRef;

/// Why a reconcile (or the operator) failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Secret the spec names does not exist. Retryable (with backoff; the Secret's creation
    /// also triggers a reconcile).
    #[error("Secret {namespace}/{name} ({what}) not found")]
    SecretNotFound {
        /// Namespace of the HatchetWorker and the Secret.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// Which reference names it (e.g. `spec.connection.tokenSecretRef`).
        what: &'static str,
    },
    /// The pod template cannot be turned into a Deployment, or the apiserver refused the
    /// result. Retryable with backoff (fixed by editing the HatchetWorker).
    #[error("invalid pod template: {0}")]
    InvalidTemplate(String),
    /// The apiserver refused a child the spec produces (e.g. a Service name a HatchetWorker
    /// name cannot be, a disruption budget it rejects). Retryable with backoff (fixed by
    /// editing the HatchetWorker).
    #[error("the apiserver refused the {kind}: {message}")]
    ChildRejected {
        /// The child's kind.
        kind: &'static str,
        /// The apiserver's explanation.
        message: String,
    },
    /// A call to the apiserver failed. Retryable.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// An object could not be serialized (a bug). Retryable, but will fail again.
    #[error("serialization: {0}")]
    Serialization(#[from] serde_json::Error),
    /// The object lacks a field the apiserver always sets (name, namespace). Not retryable.
    #[error("object {0} lacks metadata.{1}")]
    MissingMetadata(ObjectRef<crate::crd::HatchetWorker>, &'static str),
    /// Leader election could not start (bad timings, Lease not accessible). Fatal.
    #[error("leader election: {0}")]
    Lease(String),
    /// The autoscaler could not read a fleet's signals (its token, the engine). The fleet
    /// keeps its size; reported as `ScalingActive=False` with `reason`.
    #[error("{message}")]
    ScalingSignal {
        /// Stable `PascalCase` reason, e.g. `EngineUnreachable`.
        reason: &'static str,
        /// What was wrong, naming the Secret or URL (never the token).
        message: String,
    },
    /// A watch cache stopped before it synced (the operator is shutting down). Fatal.
    #[error("watch cache closed before it synced")]
    CacheClosed,
}

impl Error {
    /// A short, stable label for metrics (`reason` of `hatchet_operator_reconcile_errors_total`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::SecretNotFound { .. } => "secret_not_found",
            Self::InvalidTemplate(_) => "invalid_template",
            Self::ChildRejected { .. } => "child_rejected",
            Self::Kube(kube::Error::Api(_)) => "api_error",
            Self::Kube(_) => "kube_client",
            Self::Serialization(_) => "serialization",
            Self::MissingMetadata(..) => "missing_metadata",
            Self::CacheClosed => "cache_closed",
            Self::Lease(_) => "lease",
            Self::ScalingSignal { .. } => "scaling_signal",
        }
    }

    /// The `Degraded` condition reason this error is reported with.
    pub fn condition_reason(&self) -> &'static str {
        match self {
            Self::SecretNotFound { .. } => "SecretNotFound",
            Self::InvalidTemplate(_) => "InvalidTemplate",
            Self::ChildRejected { .. } => "ChildRejected",
            _ => "ReconcileError",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_reasons_are_stable() {
        let e = Error::SecretNotFound {
            namespace: "ns".into(),
            name: "tok".into(),
            what: "spec.connection.tokenSecretRef",
        };
        assert_eq!(e.metric_label(), "secret_not_found");
        assert_eq!(e.condition_reason(), "SecretNotFound");
        assert!(e.to_string().contains("ns/tok"));
        let e = Error::InvalidTemplate("no containers".into());
        assert_eq!(
            (e.metric_label(), e.condition_reason()),
            ("invalid_template", "InvalidTemplate")
        );
        let e = Error::ChildRejected {
            kind: "Service",
            message: "bad name".into(),
        };
        assert_eq!(
            (e.metric_label(), e.condition_reason()),
            ("child_rejected", "ChildRejected")
        );
        assert_eq!(Error::CacheClosed.condition_reason(), "ReconcileError");
    }
}

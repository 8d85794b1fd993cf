//! The `HatchetWorker` custom resource (`hatchet.run/v1alpha1`): a fleet of Hatchet workers.
//!
//! The Rust types are the source of truth for the CustomResourceDefinition in
//! `crds/hatchet.run_hatchetworkers.yaml` (regenerate it with
//! `cargo run -p hatchet-operator -- crd > crds/hatchet.run_hatchetworkers.yaml`). Bad specs are
//! refused at admission: schema types and enums, plus CEL rules (`x-kubernetes-validations`)
//! whose messages name the field they are about.

// KubeSchema derives a private shadow copy of each struct, which trips this lint on the copy.
#![allow(unreachable_pub)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use serde::{Deserialize, Serialize};

/// API group of the operator's resources.
pub const GROUP: &str = "hatchet.run";
/// Slots per worker when `spec.slots` is not given.
pub const DEFAULT_SLOTS: i32 = hatchet_contract::DEFAULT_SLOTS as i32;
/// Replicas when `spec.replicas` is not given.
pub const DEFAULT_REPLICAS: i32 = 1;
/// Drain deadline when `spec.drain.timeoutSeconds` is not given (one hour, as the worker's).
pub const DEFAULT_DRAIN_TIMEOUT_SECONDS: i64 = hatchet_contract::DEFAULT_DRAIN_TIMEOUT_SECONDS as i64;

/// Desired state of a fleet of Hatchet workers.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "hatchet.run",
    version = "v1alpha1",
    kind = "HatchetWorker",
    plural = "hatchetworkers",
    shortname = "hw",
    namespaced,
    status = "HatchetWorkerStatus",
    derive = "PartialEq",
    doc = "A fleet of Hatchet workers: the operator runs it as a Deployment with a Service, a PodDisruptionBudget and a ServiceAccount.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn = r#"{"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas", "description": "Ready worker pods"}"#,
    printcolumn = r#"{"name": "Desired", "type": "integer", "jsonPath": ".status.desiredReplicas", "description": "Worker pods wanted (spec.replicas, or the autoscaler's choice)"}"#,
    printcolumn = r#"{"name": "Slots Used", "type": "integer", "jsonPath": ".status.slots.used", "description": "Task slots in use"}"#,
    printcolumn = r#"{"name": "Slots Total", "type": "integer", "jsonPath": ".status.slots.total", "description": "Task slots of ready workers"}"#,
    printcolumn = r#"{"name": "Utilization", "type": "number", "jsonPath": ".status.utilization", "description": "Slots used / slots total"}"#,
    printcolumn = r#"{"name": "Queued", "type": "integer", "jsonPath": ".status.queued", "description": "Tasks of the fleet's actions waiting for a slot"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp", "description": "Time since creation"}"#,
    validation = Rule::new("size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')")
        .message("metadata.name must be a DNS-1035 label (at most 63 lowercase letters, digits and '-', starting with a letter): it names the fleet's Service and labels its pods")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.template.spec) && size(self.template.spec.containers) > 0")
    .message("spec.template.spec.containers must hold the worker container"))]
pub struct HatchetWorkerSpec {
    /// Where the workers connect and how they authenticate.
    pub connection: Connection,
    /// The worker pod: the user's container(s). The operator injects the Hatchet environment,
    /// the health port, probes and the drain hook into the worker container (the one named
    /// `worker`, else the first one); whatever the template sets explicitly wins.
    pub template: PodTemplateSpec,
    /// Task slots per worker (concurrent tasks one worker runs).
    #[serde(default = "default_slots")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 10000").message("spec.slots must be between 1 and 10000"))]
    pub slots: i32,
    /// Durable task slots per worker (durable runs held at once, waiting ones included), for
    /// workers with durable tasks; the worker's default (1000) when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 100000").message("spec.durableSlots must be between 1 and 100000"))]
    pub durable_slots: Option<i32>,
    /// Hatchet worker labels (for task affinity), sent by every worker of the fleet. The
    /// operator adds `hatchet.run/fleet=<namespace>.<name>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    #[x_kube(validation = Rule::new("self.all(k, size(k) <= 255 && k.matches('^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$'))")
        .message("spec.labels keys must be a name or prefix/name (at most 255 characters), each part of letters, digits, '.', '-' and '_', starting and ending with a letter or digit"))]
    #[x_kube(validation = Rule::new("self.all(k, size(self[k]) > 0 && size(self[k]) <= 253)")
        .message("spec.labels values must be 1 to 253 characters"))]
    #[x_kube(validation = Rule::new("!('hatchet.run/fleet' in self)")
        .message("spec.labels must not set hatchet.run/fleet: the operator sets it"))]
    pub labels: BTreeMap<String, String>,
    /// Number of worker pods (the `/scale` subresource maps here). Ignored while
    /// `autoscaling` is set: the autoscaler alone sizes the fleet then (a change is reported
    /// with a `ScaleIgnored` Event), so it never fights a `kubectl scale`, an HPA or KEDA.
    #[serde(default = "default_replicas")]
    #[x_kube(validation = Rule::new("self >= 0 && self <= 10000").message("spec.replicas must be between 0 and 10000"))]
    pub replicas: i32,
    /// How long a terminating worker may finish its in-flight tasks.
    #[serde(default)]
    pub drain: Drain,
    /// The fleet's PodDisruptionBudget (default: `maxUnavailable: 1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disruption_budget: Option<DisruptionBudget>,
    /// The built-in autoscaler: sizes the fleet from its slot use and the work queued for
    /// its actions. Unset: the fleet has `spec.replicas` pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,
}

/// The built-in autoscaler's settings (see the README's autoscaling section for the rules).
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas")
    .message("spec.autoscaling.minReplicas must not exceed spec.autoscaling.maxReplicas"))]
pub struct Autoscaling {
    /// Fewest worker pods; 0 lets an idle fleet scale to zero (and back on queued work).
    #[serde(default = "default_min_replicas")]
    #[x_kube(validation = Rule::new("self >= 0 && self <= 10000").message("spec.autoscaling.minReplicas must be between 0 and 10000"))]
    pub min_replicas: i32,
    /// Most worker pods.
    #[x_kube(validation = Rule::new("self >= 1 && self <= 10000").message("spec.autoscaling.maxReplicas must be between 1 and 10000"))]
    pub max_replicas: i32,
    /// Wanted share of busy slots, in (0, 1]: the fleet is sized so that demand (slots used,
    /// plus queued tasks) fills this share of its slots.
    #[serde(default = "default_target_utilization")]
    #[x_kube(validation = Rule::new("self > 0.0 && self <= 1.0").message("spec.autoscaling.targetUtilization must be greater than 0 and at most 1"))]
    pub target_utilization: f64,
    /// Changes within this share of the target are ignored (as the HPA's tolerance), in [0, 1).
    #[serde(default = "default_tolerance")]
    #[x_kube(validation = Rule::new("self >= 0.0 && self < 1.0").message("spec.autoscaling.tolerance must be at least 0 and below 1"))]
    pub tolerance: f64,
    /// Count tasks queued for the fleet's actions as demand (needed to scale from zero).
    #[serde(default = "default_true")]
    pub count_queued: bool,
    /// Seconds between two reads of the engine's slot and queue figures.
    #[serde(default = "default_poll_interval")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 300").message("spec.autoscaling.pollIntervalSeconds must be between 1 and 300"))]
    pub poll_interval_seconds: i32,
    /// Seconds the fleet must be idle (nothing running, nothing queued) before it scales to
    /// zero; only matters with `minReplicas: 0`.
    #[serde(default = "default_idle_before_zero")]
    #[x_kube(validation = Rule::new("self >= 0 && self <= 86400").message("spec.autoscaling.idleSecondsBeforeZero must be between 0 and 86400"))]
    pub idle_seconds_before_zero: i32,
    /// How fast the fleet grows (default: at once, no step limit).
    #[serde(default = "ScalingRules::default_up")]
    pub scale_up: ScalingRules,
    /// How fast the fleet shrinks (default: after 60 s of lower demand, at most half the pods per 30 s).
    #[serde(default = "ScalingRules::default_down")]
    pub scale_down: ScalingRules,
}

/// Pace of scaling in one direction, as the HPA's `behavior`.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScalingRules {
    /// The autoscaler acts on the most conservative recommendation of this many past
    /// seconds (the lowest when growing, the highest when shrinking).
    #[serde(default)]
    #[x_kube(validation = Rule::new("self >= 0 && self <= 3600").message("spec.autoscaling.scaleUp/scaleDown.stabilizationWindowSeconds must be between 0 and 3600"))]
    pub stabilization_window_seconds: i32,
    /// Step limits; none means no limit.
    #[serde(default)]
    #[schemars(length(max = 4))]
    pub policies: Vec<ScalingPolicy>,
    /// Which policy wins when several are given: `Max` (the one allowing the biggest step),
    /// `Min`, or `Disabled` (never scale in this direction).
    #[serde(default)]
    pub select_policy: SelectPolicy,
}

/// At most `value` pods (or percent of the pods) per `periodSeconds`.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScalingPolicy {
    /// `Pods` or `Percent`.
    #[serde(rename = "type")]
    pub kind: PolicyKind,
    /// Pods, or percent of the pods at the start of the period.
    #[x_kube(validation = Rule::new("self >= 1 && self <= 10000").message("spec.autoscaling policies' value must be between 1 and 10000"))]
    pub value: i32,
    /// The period the limit applies to.
    #[x_kube(validation = Rule::new("self >= 1 && self <= 1800").message("spec.autoscaling policies' periodSeconds must be between 1 and 1800"))]
    pub period_seconds: i32,
}

/// Kind of a step limit.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema)]
pub enum PolicyKind {
    /// A number of pods.
    Pods,
    /// A percentage of the pods.
    Percent,
}

/// How several step limits combine.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default, schemars::JsonSchema)]
pub enum SelectPolicy {
    /// The policy allowing the biggest step.
    #[default]
    Max,
    /// The policy allowing the smallest step.
    Min,
    /// No scaling in this direction.
    Disabled,
}

impl ScalingRules {
    /// Scale-up default: immediate and unlimited (queued work is real demand, not noise).
    pub fn default_up() -> Self {
        Self {
            stabilization_window_seconds: 0,
            policies: Vec::new(),
            select_policy: SelectPolicy::Max,
        }
    }

    /// Scale-down default: 60 s window, at most half the pods per 30 s.
    pub fn default_down() -> Self {
        Self {
            stabilization_window_seconds: 60,
            policies: vec![ScalingPolicy {
                kind: PolicyKind::Percent,
                value: 50,
                period_seconds: 30,
            }],
            select_policy: SelectPolicy::Max,
        }
    }
}

fn default_min_replicas() -> i32 {
    1
}

fn default_target_utilization() -> f64 {
    0.75
}

fn default_tolerance() -> f64 {
    0.1
}

fn default_true() -> bool {
    true
}

fn default_poll_interval() -> i32 {
    5
}

fn default_idle_before_zero() -> i32 {
    120
}

/// Where workers connect and how they authenticate.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// The Secret key holding the Hatchet API token (`HATCHET_CLIENT_TOKEN`); the token never
    /// appears in the pod spec.
    #[x_kube(validation = Rule::new("self.name.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')")
        .message("spec.connection.tokenSecretRef.name must be a non-empty DNS subdomain name (lowercase letters, digits, '-', '.')"))]
    #[x_kube(validation = Rule::new("self.key.matches('^[-._a-zA-Z0-9]+$')")
        .message("spec.connection.tokenSecretRef.key must be non-empty and hold only letters, digits, '-', '_' and '.'"))]
    pub token_secret_ref: SecretKeyRef,
    /// The engine's gRPC `host:port`; default: the token's `grpc_broadcast_address` claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    #[x_kube(validation = Rule::new("self.matches('^(\\\\[[0-9A-Fa-f:.]+\\\\]|[A-Za-z0-9_.-]+):[0-9]{1,5}$') && int(self.substring(self.lastIndexOf(':') + 1)) >= 1 && int(self.substring(self.lastIndexOf(':') + 1)) <= 65535")
        .message("spec.connection.hostPort must be host:port, with a port from 1 to 65535"))]
    pub host_port: Option<String>,
    /// The REST base URL; default: the token's `server_url` claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new("self.matches('^https?://[^/ ]+') && !self.matches('\\\\s') && isURL(self)")
        .message("spec.connection.serverUrl must be an http:// or https:// URL without spaces"))]
    pub server_url: Option<String>,
    /// Transport security towards the engine.
    #[serde(default)]
    pub tls: Tls,
    /// Hatchet namespace: prefixes workflow names, event keys and worker names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9_.-]*$')")
        .message("spec.connection.namespace may hold only letters, digits, '.', '-' and '_'"))]
    pub namespace: Option<String>,
}

/// A key of a Secret in the HatchetWorker's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SecretKeyRef {
    /// The Secret's name.
    #[schemars(length(max = 253))]
    pub name: String,
    /// The key inside the Secret.
    #[schemars(length(max = 253))]
    pub key: String,
}

/// A Secret holding a certificate and/or key under fixed keys.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// The Secret's name. A CA Secret holds `ca.crt`; a client certificate Secret holds
    /// `tls.crt` and `tls.key` (the `kubernetes.io/tls` layout).
    #[schemars(length(max = 253))]
    pub name: String,
}

/// How workers secure their connection to the engine.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.strategy != 'mtls' || has(self.clientCertSecretRef)")
    .message("spec.connection.tls.clientCertSecretRef is required when strategy is mtls"))]
#[x_kube(validation = Rule::new("self.strategy != 'none' || (!has(self.caSecretRef) && !has(self.clientCertSecretRef))")
    .message("spec.connection.tls.caSecretRef and clientCertSecretRef need strategy tls or mtls"))]
pub struct Tls {
    /// `tls` (default), `mtls` (client certificate) or `none` (plaintext).
    #[serde(default)]
    pub strategy: TlsStrategy,
    /// Secret with the CA bundle (`ca.crt`) that signs the engine's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.name.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')")
        .message("spec.connection.tls.caSecretRef.name must be a non-empty DNS subdomain name (lowercase letters, digits, '-', '.')"))]
    pub ca_secret_ref: Option<SecretRef>,
    /// Secret with the client certificate (`tls.crt`, `tls.key`) for `mtls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.name.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')")
        .message("spec.connection.tls.clientCertSecretRef.name must be a non-empty DNS subdomain name (lowercase letters, digits, '-', '.')"))]
    pub client_cert_secret_ref: Option<SecretRef>,
    /// Server name to verify instead of the host in `hostPort`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9.-]+$')")
        .message("spec.connection.tls.serverName must be a host name"))]
    pub server_name: Option<String>,
}

/// `HATCHET_CLIENT_TLS_STRATEGY`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TlsStrategy {
    /// TLS, verifying the engine's certificate.
    #[default]
    Tls,
    /// TLS with a client certificate.
    Mtls,
    /// Plaintext gRPC.
    None,
}

impl Connection {
    /// The Secrets this connection names, each with the field that names it. TLS Secrets only
    /// count when TLS is on (admission refuses them with strategy `none` anyway).
    pub fn secret_refs(&self) -> Vec<(&'static str, &str)> {
        let mut refs = vec![("spec.connection.tokenSecretRef", self.token_secret_ref.name.as_str())];
        if self.tls.strategy != TlsStrategy::None {
            if let Some(ca) = &self.tls.ca_secret_ref {
                refs.push(("spec.connection.tls.caSecretRef", ca.name.as_str()));
            }
            if let Some(cc) = &self.tls.client_cert_secret_ref {
                refs.push(("spec.connection.tls.clientCertSecretRef", cc.name.as_str()));
            }
        }
        refs
    }
}

impl TlsStrategy {
    /// The value of `HATCHET_CLIENT_TLS_STRATEGY`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tls => "tls",
            Self::Mtls => "mtls",
            Self::None => "none",
        }
    }
}

/// Drain-safe termination.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Drain {
    /// Seconds a terminating worker may spend finishing in-flight tasks; the pod's
    /// `terminationGracePeriodSeconds` is this plus 30.
    #[serde(default = "default_drain_timeout")]
    #[x_kube(validation = Rule::new("self >= 0 && self <= 604800")
        .message("spec.drain.timeoutSeconds must be between 0 and 604800 (7 days)"))]
    pub timeout_seconds: i64,
}

impl Default for Drain {
    fn default() -> Self {
        Self {
            timeout_seconds: DEFAULT_DRAIN_TIMEOUT_SECONDS,
        }
    }
}

/// The fleet's PodDisruptionBudget: one of `maxUnavailable` or `minAvailable`.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.maxUnavailable) && has(self.minAvailable))")
    .message("spec.disruptionBudget takes maxUnavailable or minAvailable, not both"))]
#[x_kube(validation = Rule::new("!has(self.maxUnavailable) || (type(self.maxUnavailable) == int ? self.maxUnavailable >= 0 : self.maxUnavailable.matches('^(100|[1-9]?[0-9])%$'))")
    .message("spec.disruptionBudget.maxUnavailable must be a non-negative number or a percentage from 0% to 100%"))]
#[x_kube(validation = Rule::new("!has(self.minAvailable) || (type(self.minAvailable) == int ? self.minAvailable >= 0 : self.minAvailable.matches('^(100|[1-9]?[0-9])%$'))")
    .message("spec.disruptionBudget.minAvailable must be a non-negative number or a percentage from 0% to 100%"))]
pub struct DisruptionBudget {
    /// Pods that may be down at once (a number or a percentage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>,
    /// Pods that must stay up (a number or a percentage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>,
}

/// Observed state of the fleet.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HatchetWorkerStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Worker pods that exist (the `/scale` subresource reads this).
    #[serde(default)]
    pub replicas: i32,
    /// Worker pods that are Ready.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Worker pods that run the current template.
    #[serde(default)]
    pub updated_replicas: i32,
    /// Label selector of the fleet's pods, for the `/scale` subresource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Task slots of the fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slots: Option<SlotStatus>,
    /// `slots.used / slots.total`, once slot use is observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilization: Option<f64>,
    /// Worker pods wanted: `spec.replicas`, or the autoscaler's last decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_replicas: Option<i32>,
    /// Tasks of the fleet's actions waiting for a slot (autoscaling only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<i64>,
    /// When the autoscaler last changed the fleet's size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// Why the autoscaler wants `desiredReplicas`, e.g. `34/40 slots used, 25 queued: 4 → 7`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_reason: Option<String>,
    /// The actions the fleet's workers serve (as the engine names them), remembered so queued
    /// work can scale the fleet from zero, after an operator restart too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
    /// `Ready`, `Progressing` and `Degraded` (and with autoscaling `ScalingActive` and
    /// `ScalingLimited`), with stable reasons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Task slots of the fleet.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlotStatus {
    /// Slots of Ready workers (`readyReplicas * spec.slots`).
    pub total: i64,
    /// Slots in use, once observed from the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used: Option<i64>,
}

fn default_slots() -> i32 {
    DEFAULT_SLOTS
}

fn default_replicas() -> i32 {
    DEFAULT_REPLICAS
}

fn default_drain_timeout() -> i64 {
    DEFAULT_DRAIN_TIMEOUT_SECONDS
}

/// The CustomResourceDefinition as YAML (what `hatchet-operator crd` prints and `crds/` holds).
pub fn crd_yaml() -> Result<String, crate::yaml::SerializeError> {
    crate::yaml::to_string(&HatchetWorker::crd()).map(|y| format!("---\n{y}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRD_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/hatchet.run_hatchetworkers.yaml");

    const CHART_CRD_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/hatchet-operator/files/crd.yaml");

    #[test]
    fn committed_crd_matches_the_types() {
        let want = crd_yaml().unwrap();
        for (file, path) in [
            (CRD_FILE, "crds/hatchet.run_hatchetworkers.yaml"),
            (CHART_CRD_FILE, "charts/hatchet-operator/files/crd.yaml"),
        ] {
            let have = std::fs::read_to_string(file).unwrap_or_default();
            assert!(
                have == want,
                "{path} is stale; regenerate it with `cargo run -p hatchet-operator -- crd > {path}`"
            );
        }
    }

    #[test]
    fn crd_has_subresources_short_name_and_rules() {
        let crd = HatchetWorker::crd();
        assert_eq!(crd.spec.group, GROUP);
        assert_eq!(crd.spec.names.short_names.as_deref(), Some(&["hw".to_owned()][..]));
        let v = &crd.spec.versions[0];
        let sub = v.subresources.as_ref().unwrap();
        assert!(sub.status.is_some());
        let scale = sub.scale.as_ref().unwrap();
        assert_eq!(scale.spec_replicas_path, ".spec.replicas");
        assert_eq!(scale.status_replicas_path, ".status.replicas");
        assert_eq!(scale.label_selector_path.as_deref(), Some(".status.selector"));
        let yaml = crd_yaml().unwrap();
        assert!(yaml.contains("x-kubernetes-validations"), "CEL rules in the schema");
        assert!(yaml.contains("spec.slots must be between 1 and 10000"));
        assert!(yaml.contains("default: 100"));
    }

    #[test]
    fn defaults_fill_a_minimal_spec() {
        let spec: HatchetWorkerSpec = serde_json::from_value(serde_json::json!({
            "connection": {"tokenSecretRef": {"name": "t", "key": "token"}},
            "template": {"spec": {"containers": [{"name": "worker", "image": "w:1"}]}}
        }))
        .unwrap();
        assert_eq!(spec.slots, DEFAULT_SLOTS);
        assert_eq!(spec.replicas, DEFAULT_REPLICAS);
        assert_eq!(spec.drain.timeout_seconds, DEFAULT_DRAIN_TIMEOUT_SECONDS);
        assert_eq!(spec.connection.tls.strategy, TlsStrategy::Tls);
        assert!(spec.disruption_budget.is_none());
    }
}

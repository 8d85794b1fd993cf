//! The fleet's Deployment: the user's pod template with the Hatchet worker contract injected.
//!
//! # Merge rules
//!
//! The worker container is the one named `worker`, else the first container. Into it the
//! operator injects, **unless the template already sets the same thing** (what the user set
//! explicitly always wins):
//!
//! - environment variables (`HATCHET_CLIENT_TOKEN` from the Secret via `secretKeyRef`,
//!   `HATCHET_CLIENT_HOST_PORT`, `_SERVER_URL`, `_TLS_*`, `_NAMESPACE`, `HATCHET_WORKER_NAME`
//!   from the pod name, `HATCHET_WORKER_SLOTS` (and `HATCHET_WORKER_DURABLE_SLOTS` when set), `HATCHET_CLIENT_WORKER_PRESET_LABELS`,
//!   `HATCHET_CLIENT_WORKER_HEALTHCHECK_PORT`, `HATCHET_WORKER_DRAIN_TIMEOUT_SECONDS`): a user
//!   variable of the same name replaces the injected one; injected variables come first so the
//!   user's can refer to them with `$(NAME)`;
//!   Variables the container gets through `envFrom` are overridden by injected ones of the same
//!   name (Kubernetes gives `env` precedence): to override one, set it in `env`;
//! - the health port: the worker listens on the port the container's own
//!   `HATCHET_CLIENT_WORKER_HEALTHCHECK_PORT` (a literal `env` value) names, else its port named
//!   `health`, else `8001`; that port is declared (named `health` when the name is free) unless
//!   a port with its number exists, and the probes and the Service target it by number, so they
//!   always reach the port the worker serves on;
//! - readiness (`/readyz`), liveness (`/livez`) and startup (`/livez`) HTTP probes, each only
//!   when the container has none of that kind;
//! - no `preStop` hook: the kubelet's SIGTERM starts the worker's drain, and the grace period
//!   below gives it the time (the worker's `/drain` answers only on loopback, so no hook
//!   reaching it over the pod network could work, and no stranger can stop a worker); a
//!   `preStop` the template sets is kept;
//! - `terminationMessagePolicy: FallbackToLogsOnError`, unless the container sets a policy: a
//!   worker that exits with an error (a refused token, say) leaves its last log lines in the
//!   pod's status, where the operator reads why the fleet is not ready;
//! - TLS volumes and mounts (under `/etc/hatchet/tls/`), unless a volume or mount of the same
//!   name (or mount path) exists.
//!
//! At pod level: `terminationGracePeriodSeconds` = drain timeout + 30 unless the template sets
//! it; `serviceAccountName` = the operator-made ServiceAccount unless the template names one.
//! Every pod also gets the restricted Pod Security profile's settings the template leaves
//! unset (see `security`).
//! Pod labels: the template's, plus the fleet's selector and instance labels (these override
//! the template's same keys, since the Deployment's selector depends on them).
//! Pod annotations: the template's, plus the `prometheus.io/scrape`, `/port` (the health port)
//! and `/path` (`/metrics`) convention an annotation-driven Prometheus discovers pods by, each
//! unless the template sets it (`prometheus.io/scrape: "false"` opts a fleet out).

use std::collections::BTreeMap;

use hatchet_contract::{env, http};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, KeyToPath, ObjectFieldSelector, Probe,
    SecretKeySelector, SecretVolumeSource, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::serviceaccount::user_service_account;
use super::{
    FLEET_LABEL, HEALTH_PORT, HEALTH_PORT_NAME, child_meta, common_labels, name_and_namespace, selector_labels,
    with_hash,
};
use crate::crd::{HatchetWorker, TlsStrategy};
use crate::error::Error;

/// Where TLS material is mounted in the worker container.
const TLS_DIR: &str = "/etc/hatchet/tls";
const CA_VOLUME: &str = "hatchet-tls-ca";
const CLIENT_VOLUME: &str = "hatchet-tls-client";
/// Seconds added to the drain timeout for the pod's termination grace period.
const GRACE_MARGIN_SECONDS: i64 = 30;

/// Which container of the template is the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerContainer(pub usize);

impl WorkerContainer {
    /// The container named `worker`, else the first one; `None` without containers.
    pub fn find(containers: &[Container]) -> Option<Self> {
        if containers.is_empty() {
            return None;
        }
        Some(Self(containers.iter().position(|c| c.name == "worker").unwrap_or(0)))
    }
}

/// The name of the fleet's worker container (see [`WorkerContainer::find`]); `worker` when
/// the template has none yet.
pub fn worker_container_name(hw: &HatchetWorker) -> String {
    let containers = hw
        .spec
        .template
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or(&[]);
    WorkerContainer::find(containers)
        .map_or_else(|| "worker".to_owned(), |WorkerContainer(i)| containers[i].name.clone())
}

/// The port the fleet's worker serves health, metrics and drain on (see the merge rules).
pub fn health_port(hw: &HatchetWorker) -> i32 {
    let Some(containers) = hw.spec.template.spec.as_ref().map(|s| s.containers.as_slice()) else {
        return HEALTH_PORT;
    };
    let Some(WorkerContainer(idx)) = WorkerContainer::find(containers) else {
        return HEALTH_PORT;
    };
    let c = &containers[idx];
    let from_env = c
        .env
        .iter()
        .flatten()
        .find(|e| e.name == env::HEALTHCHECK_PORT)
        .and_then(|e| e.value.as_deref()?.trim().parse::<i32>().ok())
        .filter(|p| (1..=65535).contains(p));
    let named = || {
        c.ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(HEALTH_PORT_NAME))
            .map(|p| p.container_port)
    };
    from_env.or_else(named).unwrap_or(HEALTH_PORT)
}

/// The Deployment for a HatchetWorker (see the module docs for the merge rules), stamped
/// with its hash annotation. Fails with [`Error::InvalidTemplate`] when the template has no
/// container. `replicas`: `spec.replicas`, or the autoscaler's decision.
pub fn desired_deployment(hw: &HatchetWorker, replicas: i32) -> Result<Deployment, Error> {
    let (name, ns) = name_and_namespace(hw)?;
    let mut template = hw.spec.template.clone();
    let meta = template.metadata.get_or_insert_with(Default::default);
    let labels = meta.labels.get_or_insert_with(BTreeMap::new);
    labels.extend(common_labels(&name));
    // The template's own name/namespace fields are meaningless in a Deployment.
    meta.name = None;
    meta.namespace = None;
    let port = health_port(hw);
    let annotations = meta.annotations.get_or_insert_with(BTreeMap::new);
    for (key, value) in scrape_annotations(port) {
        annotations.entry(key.to_owned()).or_insert(value);
    }

    let pod = template
        .spec
        .as_mut()
        .ok_or_else(|| Error::InvalidTemplate("spec.template.spec is missing".into()))?;
    let idx = WorkerContainer::find(&pod.containers)
        .ok_or_else(|| Error::InvalidTemplate("spec.template.spec.containers is empty".into()))?
        .0;

    if user_service_account(hw).is_none() {
        pod.service_account_name = Some(name.clone());
    }
    if pod.termination_grace_period_seconds.is_none() {
        pod.termination_grace_period_seconds = Some(hw.spec.drain.timeout_seconds + GRACE_MARGIN_SECONDS);
    }
    let (volumes, mounts) = tls_volumes(hw);
    let pod_volumes = pod.volumes.get_or_insert_with(Vec::new);
    for v in volumes {
        if !pod_volumes.iter().any(|have| have.name == v.name) {
            pod_volumes.push(v);
        }
    }
    if pod_volumes.is_empty() {
        pod.volumes = None;
    }
    inject_container(&mut pod.containers[idx], injected_env(hw, &ns, &name), mounts, port);
    super::security::restrict(pod);

    let dep = Deployment {
        metadata: child_meta(hw)?,
        spec: DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(selector_labels(&name)),
                ..LabelSelector::default()
            },
            template,
            ..DeploymentSpec::default()
        },
        status: None,
    };
    with_hash(dep)
}

/// The annotations by which an annotation-driven Prometheus finds a worker's `/metrics`.
fn scrape_annotations(port: i32) -> [(&'static str, String); 3] {
    [
        ("prometheus.io/scrape", "true".to_owned()),
        ("prometheus.io/port", port.to_string()),
        ("prometheus.io/path", http::METRICS.to_owned()),
    ]
}

/// The Hatchet environment for the worker container, in injection order.
fn injected_env(hw: &HatchetWorker, ns: &str, name: &str) -> Vec<EnvVar> {
    let c = &hw.spec.connection;
    let mut env = vec![EnvVar {
        name: env::TOKEN.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: c.token_secret_ref.name.clone(),
                key: c.token_secret_ref.key.clone(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }];
    let mut plain = |k: &str, v: String| {
        env.push(EnvVar {
            name: k.into(),
            value: Some(v),
            ..EnvVar::default()
        })
    };
    if let Some(hp) = &c.host_port {
        plain(env::HOST_PORT, hp.clone());
    }
    if let Some(url) = &c.server_url {
        plain(env::SERVER_URL, url.clone());
    }
    plain(env::TLS_STRATEGY, c.tls.strategy.as_str().into());
    if c.tls.strategy != TlsStrategy::None {
        if c.tls.ca_secret_ref.is_some() {
            plain(env::TLS_ROOT_CA_FILE, format!("{TLS_DIR}/ca/ca.crt"));
        }
        if c.tls.client_cert_secret_ref.is_some() {
            plain(env::TLS_CERT_FILE, format!("{TLS_DIR}/client/tls.crt"));
            plain(env::TLS_KEY_FILE, format!("{TLS_DIR}/client/tls.key"));
        }
        if let Some(sn) = &c.tls.server_name {
            plain(env::TLS_SERVER_NAME, sn.clone());
        }
    }
    if let Some(hns) = c.namespace.as_ref().filter(|n| !n.is_empty()) {
        plain(env::NAMESPACE, hns.clone());
    }
    plain(env::WORKER_SLOTS, hw.spec.slots.to_string());
    if let Some(d) = hw.spec.durable_slots {
        plain(env::WORKER_DURABLE_SLOTS, d.to_string());
    }
    let mut labels: BTreeMap<&str, String> = hw.spec.labels.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    labels.insert(FLEET_LABEL, format!("{ns}.{name}"));
    plain(
        env::WORKER_PRESET_LABELS,
        serde_json::to_string(&labels).unwrap_or_else(|_| "{}".into()),
    );
    plain(env::HEALTHCHECK_PORT, health_port(hw).to_string());
    plain(
        env::WORKER_DRAIN_TIMEOUT_SECONDS,
        hw.spec.drain.timeout_seconds.to_string(),
    );
    env.push(EnvVar {
        name: env::WORKER_NAME.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "metadata.name".into(),
                api_version: None,
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    });
    env
}

/// Volumes and mounts for the TLS Secrets the spec names (none with strategy `none`).
fn tls_volumes(hw: &HatchetWorker) -> (Vec<Volume>, Vec<VolumeMount>) {
    let tls = &hw.spec.connection.tls;
    let mut vols = Vec::new();
    let mut mounts = Vec::new();
    if tls.strategy == TlsStrategy::None {
        return (vols, mounts);
    }
    let mut add = |vol: &str, secret: &str, keys: &[&str], dir: &str| {
        vols.push(Volume {
            name: vol.into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.into()),
                items: Some(
                    keys.iter()
                        .map(|k| KeyToPath {
                            key: (*k).into(),
                            path: (*k).into(),
                            mode: None,
                            user: None,
                        })
                        .collect(),
                ),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
        mounts.push(VolumeMount {
            name: vol.into(),
            mount_path: format!("{TLS_DIR}/{dir}"),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    };
    if let Some(ca) = &tls.ca_secret_ref {
        add(CA_VOLUME, &ca.name, &["ca.crt"], "ca");
    }
    if let Some(cc) = &tls.client_cert_secret_ref {
        add(CLIENT_VOLUME, &cc.name, &["tls.crt", "tls.key"], "client");
    }
    (vols, mounts)
}

fn http_probe(path: &str, port: i32, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(port),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

/// Injects env, port, probes and mounts into the worker container (user's wins).
fn inject_container(c: &mut Container, env: Vec<EnvVar>, mounts: Vec<VolumeMount>, port: i32) {
    let user_env = c.env.take().unwrap_or_default();
    let mut merged: Vec<EnvVar> = env
        .into_iter()
        .filter(|e| !user_env.iter().any(|u| u.name == e.name))
        .collect();
    merged.extend(user_env);
    c.env = Some(merged);

    let ports = c.ports.get_or_insert_with(Vec::new);
    if !ports.iter().any(|p| p.container_port == port) {
        let name_free = !ports.iter().any(|p| p.name.as_deref() == Some(HEALTH_PORT_NAME));
        ports.push(ContainerPort {
            name: name_free.then(|| HEALTH_PORT_NAME.into()),
            container_port: port,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        });
    }
    c.readiness_probe
        .get_or_insert_with(|| http_probe(http::READYZ, port, 5, 3));
    c.liveness_probe
        .get_or_insert_with(|| http_probe(http::LIVEZ, port, 10, 3));
    c.startup_probe
        .get_or_insert_with(|| http_probe(http::LIVEZ, port, 2, 60));
    c.termination_message_policy
        .get_or_insert_with(|| "FallbackToLogsOnError".into());
    let have = c.volume_mounts.get_or_insert_with(Vec::new);
    for m in mounts {
        if !have.iter().any(|h| h.name == m.name || h.mount_path == m.mount_path) {
            have.push(m);
        }
    }
    if have.is_empty() {
        c.volume_mounts = None;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::desired::fixtures::mk_hw;

    fn worker(d: &Deployment) -> &Container {
        let pod = d.spec.template.spec.as_ref().unwrap();
        let idx = WorkerContainer::find(&pod.containers).unwrap().0;
        &pod.containers[idx]
    }

    fn env<'a>(c: &'a Container, name: &str) -> Option<&'a EnvVar> {
        c.env.as_ref()?.iter().find(|e| e.name == name)
    }

    fn env_value(c: &Container, name: &str) -> Option<String> {
        env(c, name)?.value.clone()
    }

    #[test]
    fn injected_environment_table() {
        let hw = mk_hw(json!({
            "slots": 7,
            "durableSlots": 250,
            "labels": {"gpu": "a100"},
            "drain": {"timeoutSeconds": 60},
            "connection": {
                "tokenSecretRef": {"name": "tok", "key": "t"},
                "hostPort": "engine:7077",
                "serverUrl": "https://hatchet.example",
                "namespace": "staging",
                "tls": {"strategy": "mtls", "caSecretRef": {"name": "ca"}, "clientCertSecretRef": {"name": "cc"}, "serverName": "engine.internal"}
            }
        }));
        let d = desired_deployment(&hw, hw.spec.replicas).unwrap();
        let c = worker(&d);
        let cases: &[(&str, Option<&str>)] = &[
            ("HATCHET_CLIENT_HOST_PORT", Some("engine:7077")),
            ("HATCHET_CLIENT_SERVER_URL", Some("https://hatchet.example")),
            ("HATCHET_CLIENT_TLS_STRATEGY", Some("mtls")),
            ("HATCHET_CLIENT_TLS_ROOT_CA_FILE", Some("/etc/hatchet/tls/ca/ca.crt")),
            ("HATCHET_CLIENT_TLS_CERT_FILE", Some("/etc/hatchet/tls/client/tls.crt")),
            ("HATCHET_CLIENT_TLS_KEY_FILE", Some("/etc/hatchet/tls/client/tls.key")),
            ("HATCHET_CLIENT_TLS_SERVER_NAME", Some("engine.internal")),
            ("HATCHET_CLIENT_NAMESPACE", Some("staging")),
            ("HATCHET_WORKER_SLOTS", Some("7")),
            ("HATCHET_WORKER_DURABLE_SLOTS", Some("250")),
            (
                "HATCHET_CLIENT_WORKER_PRESET_LABELS",
                Some(r#"{"gpu":"a100","hatchet.run/fleet":"team.fleet"}"#),
            ),
            ("HATCHET_CLIENT_WORKER_HEALTHCHECK_PORT", Some("8001")),
            ("HATCHET_WORKER_DRAIN_TIMEOUT_SECONDS", Some("60")),
        ];
        for (name, want) in cases {
            assert_eq!(env_value(c, name).as_deref(), *want, "{name}");
        }
        let token = env(c, "HATCHET_CLIENT_TOKEN").unwrap();
        assert!(token.value.is_none(), "the token is never inlined");
        let sel = token.value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap();
        assert_eq!((sel.name.as_str(), sel.key.as_str()), ("tok", "t"));
        let wn = env(c, "HATCHET_WORKER_NAME").unwrap();
        assert_eq!(
            wn.value_from.as_ref().unwrap().field_ref.as_ref().unwrap().field_path,
            "metadata.name"
        );
        let mounts: Vec<_> = c
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.mount_path.as_str())
            .collect();
        assert_eq!(mounts, ["/etc/hatchet/tls/ca", "/etc/hatchet/tls/client"]);
        let pod = d.spec.template.spec.as_ref().unwrap();
        assert_eq!(pod.termination_grace_period_seconds, Some(90));
        assert_eq!(pod.volumes.as_ref().unwrap().len(), 2);
    }

    #[test]
    fn optional_settings_are_left_out() {
        let hw =
            mk_hw(json!({"connection": {"tokenSecretRef": {"name": "tok", "key": "t"}, "tls": {"strategy": "none"}}}));
        let d = desired_deployment(&hw, hw.spec.replicas).unwrap();
        let c = worker(&d);
        for absent in [
            "HATCHET_CLIENT_HOST_PORT",
            "HATCHET_CLIENT_SERVER_URL",
            "HATCHET_CLIENT_NAMESPACE",
            "HATCHET_CLIENT_TLS_ROOT_CA_FILE",
            "HATCHET_CLIENT_TLS_CERT_FILE",
            "HATCHET_WORKER_DURABLE_SLOTS",
        ] {
            assert!(env(c, absent).is_none(), "{absent}");
        }
        assert_eq!(env_value(c, "HATCHET_CLIENT_TLS_STRATEGY").as_deref(), Some("none"));
        assert_eq!(env_value(c, "HATCHET_WORKER_SLOTS").as_deref(), Some("100"));
        assert!(c.volume_mounts.is_none());
        let pod = d.spec.template.spec.as_ref().unwrap();
        assert!(pod.volumes.is_none());
        assert_eq!(pod.termination_grace_period_seconds, Some(3630));
        assert_eq!(pod.service_account_name.as_deref(), Some("fleet"));
    }

    #[test]
    fn probes_and_port_are_injected_and_no_prestop() {
        let d = desired_deployment(&mk_hw(json!({})), 1).unwrap();
        let c = worker(&d);
        let path = |p: &Option<Probe>| p.as_ref().unwrap().http_get.as_ref().unwrap().path.clone().unwrap();
        assert_eq!(path(&c.readiness_probe), "/readyz");
        assert_eq!(path(&c.liveness_probe), "/livez");
        assert_eq!(path(&c.startup_probe), "/livez");
        assert!(c.lifecycle.is_none(), "SIGTERM drains; no hook: {:?}", c.lifecycle);
        let port = &c.ports.as_ref().unwrap()[0];
        assert_eq!((port.name.as_deref(), port.container_port), (Some("health"), 8001));
        let spec = d.spec;
        assert_eq!(spec.replicas, Some(1));
        let labels = spec.template.metadata.as_ref().unwrap().labels.as_ref().unwrap();
        for (k, v) in [
            ("app.kubernetes.io/name", "hatchet-worker"),
            ("app.kubernetes.io/instance", "fleet"),
            ("hatchet.run/fleet", "fleet"),
        ] {
            assert_eq!(labels.get(k).map(String::as_str), Some(v), "{k}");
        }
        let sel = spec.selector.match_labels.as_ref().unwrap();
        assert!(
            sel.iter().all(|(k, v)| labels.get(k) == Some(v)),
            "the selector selects the pods"
        );
    }

    #[test]
    fn what_the_user_sets_wins() {
        let hw = mk_hw(json!({"template": {"spec": {
        "serviceAccountName": "mine",
        "terminationGracePeriodSeconds": 5,
        "containers": [
            {"name": "sidecar", "image": "s:1"},
            {"name": "worker", "image": "w:1",
             "env": [{"name": "HATCHET_WORKER_SLOTS", "value": "3"}, {"name": "EXTRA", "value": "$(HATCHET_WORKER_SLOTS)"}],
             "ports": [{"name": "health", "containerPort": 9000}],
             "readinessProbe": {"tcpSocket": {"port": 9000}},
             "terminationMessagePolicy": "File",
             "lifecycle": {"preStop": {"exec": {"command": ["sleep", "1"]}}}}
        ]}}}));
        let d = desired_deployment(&hw, hw.spec.replicas).unwrap();
        let pod = d.spec.template.spec.as_ref().unwrap();
        assert_eq!(pod.service_account_name.as_deref(), Some("mine"));
        assert_eq!(pod.termination_grace_period_seconds, Some(5));
        assert!(pod.containers[0].env.is_none(), "only the worker container is touched");
        let c = worker(&d);
        assert_eq!(c.name, "worker");
        let slots: Vec<_> = c
            .env
            .as_ref()
            .unwrap()
            .iter()
            .filter(|e| e.name == "HATCHET_WORKER_SLOTS")
            .collect();
        assert_eq!(slots.len(), 1);
        assert_eq!(slots[0].value.as_deref(), Some("3"));
        let names: Vec<_> = c.env.as_ref().unwrap().iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names.last(),
            Some(&"EXTRA"),
            "user variables come after the injected ones"
        );
        assert_eq!(c.ports.as_ref().unwrap().len(), 1);
        assert_eq!(
            env_value(c, "HATCHET_CLIENT_WORKER_HEALTHCHECK_PORT").as_deref(),
            Some("9000"),
            "the worker listens where the user's health port is"
        );
        assert!(c.readiness_probe.as_ref().unwrap().tcp_socket.is_some());
        let live = c.liveness_probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(live.port, IntOrString::Int(9000), "still injected, on the user's port");
        assert!(c.lifecycle.as_ref().unwrap().pre_stop.as_ref().unwrap().exec.is_some());
        assert_eq!(c.termination_message_policy.as_deref(), Some("File"));
        let plain = desired_deployment(&mk_hw(json!({})), 1).unwrap();
        assert_eq!(
            worker(&plain).termination_message_policy.as_deref(),
            Some("FallbackToLogsOnError"),
            "a crashing worker's last log lines reach the pod status"
        );
    }

    #[test]
    fn probes_drain_and_service_follow_the_port_the_worker_serves_on() {
        // The health port number declared under another name: reused, not duplicated.
        let hw = mk_hw(json!({"template": {"spec": {"containers": [
            {"name": "worker", "image": "w:1", "ports": [{"name": "metrics", "containerPort": 8001}]}
        ]}}}));
        let d = desired_deployment(&hw, hw.spec.replicas).unwrap();
        let c = worker(&d);
        assert_eq!(c.ports.as_ref().unwrap().len(), 1);
        let ready = c.readiness_probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(ready.port, IntOrString::Int(8001));

        // The user moved the health server with the env variable: everything follows it.
        let hw = mk_hw(json!({"template": {"spec": {"containers": [
            {"name": "worker", "image": "w:1",
             "env": [{"name": "HATCHET_CLIENT_WORKER_HEALTHCHECK_PORT", "value": "9100"}]}
        ]}}}));
        assert_eq!(health_port(&hw), 9100);
        let d = desired_deployment(&hw, hw.spec.replicas).unwrap();
        let c = worker(&d);
        let port = &c.ports.as_ref().unwrap()[0];
        assert_eq!((port.name.as_deref(), port.container_port), (Some("health"), 9100));
        let live = c.liveness_probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(live.port, IntOrString::Int(9100));
        let svc = crate::desired::desired_service(&hw).unwrap();
        assert_eq!(
            svc.spec.unwrap().ports.unwrap()[0].target_port,
            Some(IntOrString::Int(9100))
        );
    }

    #[test]
    fn pods_carry_the_scrape_annotations_unless_the_template_sets_them() {
        let annotations = |d: &Deployment| d.spec.template.metadata.as_ref().unwrap().annotations.clone().unwrap();
        let plain = annotations(&desired_deployment(&mk_hw(json!({})), 1).unwrap());
        assert_eq!(plain.get("prometheus.io/scrape").map(String::as_str), Some("true"));
        assert_eq!(plain.get("prometheus.io/port").map(String::as_str), Some("8001"));
        assert_eq!(plain.get("prometheus.io/path").map(String::as_str), Some("/metrics"));

        let hw = mk_hw(json!({"template": {
            "metadata": {"annotations": {"prometheus.io/scrape": "false", "team": "payments"}},
            "spec": {"containers": [{"name": "worker", "image": "w:1",
                "env": [{"name": "HATCHET_CLIENT_WORKER_HEALTHCHECK_PORT", "value": "9100"}]}]}}}));
        let mine = annotations(&desired_deployment(&hw, 1).unwrap());
        assert_eq!(
            mine.get("prometheus.io/scrape").map(String::as_str),
            Some("false"),
            "opted out"
        );
        assert_eq!(
            mine.get("prometheus.io/port").map(String::as_str),
            Some("9100"),
            "follows the port"
        );
        assert_eq!(mine.get("team").map(String::as_str), Some("payments"));
    }

    #[test]
    fn a_template_without_containers_is_invalid() {
        let hw = mk_hw(json!({"template": {"spec": {"containers": []}}}));
        assert!(matches!(
            desired_deployment(&hw, hw.spec.replicas),
            Err(Error::InvalidTemplate(_))
        ));
        let hw = mk_hw(json!({"template": {}}));
        assert!(matches!(
            desired_deployment(&hw, hw.spec.replicas),
            Err(Error::InvalidTemplate(_))
        ));
    }

    #[test]
    fn first_container_is_the_worker_without_one_named_so() {
        let cs = vec![
            Container {
                name: "a".into(),
                ..Container::default()
            },
            Container {
                name: "b".into(),
                ..Container::default()
            },
        ];
        assert_eq!(WorkerContainer::find(&cs), Some(WorkerContainer(0)));
        assert_eq!(WorkerContainer::find(&[]), None);
    }
}

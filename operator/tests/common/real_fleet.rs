//! A HatchetWorker fleet on the real node (kubelet + containerd), for the tests whose pods run
//! the real `hatchet-worker` image against the real engine on the node's bridge address.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::TryStreamExt;
use hatchet_e2e::hatchet::{client_in, rest_json, unique};
use hatchet_worker::{Client, RunStatus, TriggerOptions};
use serde_json::Value;

use super::*;

/// Pod start on the real node is about a second; a rollout with 10-s tasks draining, under a
/// minute.
pub const ROLLOUT: Duration = Duration::from_secs(180);

/// One fleet on the real node: its namespaces (Kubernetes, and Hatchet's so its workflows and
/// workers are its own), the operator watching it, and a client for the engine.
pub struct RealFleet<'w> {
    pub world: &'w World,
    pub kube: Kube,
    pub ns: Namespace,
    pub hatchet_ns: String,
    pub op: OperatorAt,
    pub client: Client,
    pub rt: tokio::runtime::Runtime,
    /// The kubeconfig of the operator's RBAC (to start it again).
    pub kubeconfig: std::path::PathBuf,
    pub _scratch: Scratch,
}

/// Where the fleet's operator runs.
pub enum OperatorAt {
    /// The operator binary on the host, with the shipped RBAC's token.
    Host(Operator),
    /// The operator image in a pod on the real node (this pod in `hatchet-system`), with the
    /// shipped ServiceAccount and in-cluster configuration; deleted when dropped.
    Pod(String, Kube),
}

impl Drop for OperatorAt {
    fn drop(&mut self) {
        if let OperatorAt::Pod(pod, kube) = self {
            let _ = kube.namespaced::<Pod>(OPERATOR_NS).delete(pod);
        }
    }
}

/// Where the shipped RBAC puts the operator's ServiceAccount.
pub const OPERATOR_NS: &str = "hatchet-system";

/// Starts the operator image in a pod on the real node watching `watch_ns` (pod network, no
/// host network: it reaches the apiserver through the `kubernetes` Service), and waits until
/// its `/readyz` (watch caches synced) makes it Ready.
pub fn operator_pod(world: &World, kube: &Kube, watch_ns: &str) -> String {
    let var = |n: &'static str| world.var(n).unwrap_or_else(|e| panic!("{e}")).to_owned();
    let pod = format!("operator-{watch_ns}");
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {pod}
  namespace: {OPERATOR_NS}
  labels: {{app: hatchet-operator-e2e}}
  annotations: {{prometheus.io/scrape: "true", prometheus.io/port: "8080", prometheus.io/path: /metrics}}
spec:
  serviceAccountName: hatchet-operator
  nodeSelector: {{kubernetes.io/hostname: {node}}}
  tolerations: [{{key: {taint}, operator: Exists, effect: NoSchedule}}]
  securityContext: {{runAsNonRoot: true, seccompProfile: {{type: RuntimeDefault}}}}
  containers:
    - name: operator
      image: {image}
      imagePullPolicy: Never
      args: [--namespaces, {watch_ns}, --lease-name, "hatchet-operator-{watch_ns}", --log-format, text]
      env: [{{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}]
      readinessProbe: {{httpGet: {{path: /readyz, port: 8080}}, periodSeconds: 1}}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities: {{drop: [ALL]}}
"#,
        node = var("REAL_NODE"),
        taint = var("REAL_NODE_TAINT"),
        image = var("OPERATOR_IMAGE"),
    );
    let pods = kube.namespaced::<Pod>(OPERATOR_NS);
    pods.apply_yaml(&manifest).expect("start the operator pod");
    pods.wait("the operator pod Ready", &pod, ROLLOUT, |p: Option<&Pod>| {
        p.is_some_and(is_ready)
    })
    .unwrap_or_else(|e| panic!("{e}; log: {}", kube.pod_logs(OPERATOR_NS, &pod, 20)));
    pod
}

impl<'w> RealFleet<'w> {
    pub fn start(world: &'w World, tag: &str, token: &str) -> Self {
        Self::start_with(world, tag, token, false)
    }

    pub fn start_with(world: &'w World, tag: &str, token: &str, operator_in_pod: bool) -> Self {
        let kube = kube(world);
        install_crd(&kube);
        // The apiserver refuses any fleet pod that does not meet the restricted profile.
        let ns = Namespace::create_labelled(
            &kube,
            tag,
            &[
                ("pod-security.kubernetes.io/enforce", "restricted"),
                ("pod-security.kubernetes.io/enforce-version", "latest"),
            ],
        );
        let scratch = tempdir(&ns.name);
        let kubeconfig = operator_kubeconfig(&kube, &scratch.path);
        let op = if operator_in_pod {
            OperatorAt::Pod(operator_pod(world, &kube, &ns.name), kube.clone())
        } else {
            let mut op = Operator::start(&kubeconfig, &ns.name, &format!("{tag}-op"), &[]);
            op.wait_ready();
            OperatorAt::Host(op)
        };
        secret(&kube, &ns.name, "hatchet-token", token);
        let hatchet_ns = unique(tag).replace('-', "_");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let client = {
            let _guard = rt.enter();
            client_in(world, &hatchet_ns)
        };
        Self {
            world,
            kube,
            ns,
            hatchet_ns,
            op,
            client,
            rt,
            kubeconfig,
            _scratch: scratch,
        }
    }

    /// The operator's last log lines, for failure messages.
    pub fn operator_log(&self) -> String {
        match &self.op {
            OperatorAt::Host(op) => op.log_tail(),
            OperatorAt::Pod(pod, kube) => kube.pod_logs(OPERATOR_NS, pod, 30),
        }
    }

    pub fn ns(&self) -> &str {
        &self.ns.name
    }

    /// Applies a HatchetWorker `name` whose pods run the real image on the real node; the
    /// template sets no security context (the operator's defaults must pass the namespace's
    /// restricted profile); `extra_spec` is YAML under `spec:`.
    pub fn apply(&self, name: &str, extra_spec: &str, env: &[(&str, &str)]) {
        self.apply_with_secret(name, "hatchet-token", extra_spec, env);
    }

    /// [`Self::apply`] with the token taken from the Secret `secret`.
    pub fn apply_with_secret(&self, name: &str, secret: &str, extra_spec: &str, env: &[(&str, &str)]) {
        let w = self.world;
        let var = |n: &'static str| w.var(n).unwrap_or_else(|e| panic!("{e}")).to_owned();
        let env: String = env
            .iter()
            .map(|(k, v)| format!("\n            - {{name: {k}, value: \"{v}\"}}"))
            .collect();
        let manifest = format!(
            r#"apiVersion: hatchet.run/v1alpha1
kind: HatchetWorker
metadata: {{name: {name}, namespace: {ns}}}
spec:
  connection:
    tokenSecretRef: {{name: {secret}, key: token}}
    hostPort: "{host_port}"
    serverUrl: "{server_url}"
    tls: {{strategy: none}}
    namespace: {hatchet_ns}
{extra_spec}
  template:
    spec:
      nodeSelector: {{kubernetes.io/hostname: {node}}}
      tolerations: [{{key: {taint}, operator: Exists, effect: NoSchedule}}]
      containers:
        - name: worker
          image: {image}
          imagePullPolicy: Never
          resources:
            requests: {{cpu: 10m, memory: 32Mi}}
            limits: {{memory: 128Mi}}
          env:
            - {{name: HATCHET_CLIENT_LOG_LEVEL, value: "info"}}{env}
"#,
            ns = self.ns(),
            host_port = var("POD_ENGINE_HOST_PORT"),
            server_url = var("POD_ENGINE_SERVER_URL"),
            hatchet_ns = self.hatchet_ns,
            node = var("REAL_NODE"),
            taint = var("REAL_NODE_TAINT"),
            image = var("WORKER_IMAGE"),
        );
        apply_worker(&self.kube, &manifest);
    }

    /// The fleet's pods (not being deleted), by name.
    pub fn pods(&self, name: &str) -> Vec<Pod> {
        self.kube
            .namespaced::<Pod>(self.ns())
            .list(&format!("hatchet.run/fleet={name}"))
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect()
    }

    /// The HatchetWorkers of the fleet's namespace.
    pub fn workers(&self) -> Objects<HatchetWorker> {
        self.kube.namespaced(self.ns())
    }

    /// The engine's workers of this test (its Hatchet namespace), by name.
    pub fn engine_workers(&self) -> BTreeMap<String, Value> {
        let prefix = format!("{}_", self.hatchet_ns);
        let rest = self.client.rest().expect("REST client");
        self.rt
            .block_on(rest.workers().list().try_collect::<Vec<_>>())
            .expect("list the engine's workers")
            .into_iter()
            .filter_map(|w| serde_json::to_value(w).ok())
            .filter_map(|w| {
                let name = w["name"].as_str()?.strip_prefix(&prefix)?.to_owned();
                Some((name, w))
            })
            .collect()
    }

    /// Triggers `count` runs of a fleet workflow with `input`; their run ids.
    pub fn trigger(&self, workflow: &str, count: usize, input: Value) -> Vec<String> {
        self.rt.block_on(async {
            let mut ids = Vec::new();
            for i in 0..count {
                let run = self
                    .client
                    .trigger(workflow, &input, TriggerOptions::default().metadata("i", i))
                    .await
                    .unwrap_or_else(|e| panic!("trigger {workflow}: {e}"));
                ids.push(run.id);
            }
            ids
        })
    }

    /// Waits until every run in `ids` is running (so every slot is busy).
    pub fn wait_running(&self, ids: &[String]) {
        wait_for(&format!("{} runs running", ids.len()), SETTLE, POLL, || {
            let statuses = self.statuses(ids);
            let running = statuses.iter().filter(|s| **s == RunStatus::Running).count();
            if running == ids.len() {
                Ok(())
            } else {
                Err(format!("{statuses:?}"))
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }

    pub fn statuses(&self, ids: &[String]) -> Vec<RunStatus> {
        self.rt.block_on(async {
            let mut out = Vec::new();
            for id in ids {
                out.push(match self.client.run_details(id).await {
                    Ok(d) => d.status,
                    Err(_) => RunStatus::Queued,
                });
            }
            out
        })
    }

    /// Waits for every run to finish and returns each one's output (the `sleep`/`echo` task's),
    /// failing the test if any run ended other than COMPLETED.
    pub fn outcomes(&self, ids: &[String], task: &str) -> Vec<Value> {
        self.finished(ids, task, false)
    }

    /// [`RealFleet::outcomes`], each run checked to have started once: no retry ran it again.
    pub fn outcomes_once(&self, ids: &[String], task: &str) -> Vec<Value> {
        self.finished(ids, task, true)
    }

    fn finished(&self, ids: &[String], task: &str, once: bool) -> Vec<Value> {
        self.rt.block_on(async {
            let mut outputs = Vec::new();
            for id in ids {
                let out = tokio::time::timeout(ROLLOUT, self.client.wait_for_run(id))
                    .await
                    .unwrap_or_else(|_| panic!("run {id} did not finish within {ROLLOUT:?}"))
                    .unwrap_or_else(|e| panic!("run {id} did not complete: {e}"));
                let d = self.client.run_details(id).await.expect("run details");
                assert_eq!(d.status, RunStatus::Completed, "run {id}: {d:?}");
                if once {
                    let task_run = &d
                        .tasks
                        .first()
                        .unwrap_or_else(|| panic!("run {id} has no task"))
                        .external_id;
                    let started = self.started_attempts(task_run).await;
                    assert_eq!(started.len(), 1, "run {id} started once, not at attempts {started:?}");
                }
                outputs.push(
                    out.get(task)
                        .cloned()
                        .unwrap_or_else(|| panic!("run {id}: no {task} output: {out:?}")),
                );
            }
            outputs
        })
    }

    /// The attempts of task run `id` a worker started, from the engine's task events (an
    /// attempt the engine could not deliver, e.g. assigned in the moment between a worker's
    /// registration and its stream, never starts and is retried: not a second run). The
    /// engine lists no events without a `limit`.
    async fn started_attempts(&self, id: &str) -> Vec<i64> {
        let path = format!("/api/v1/stable/tasks/{id}/task-events?limit=1000");
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            let events = rest_json(&self.client, &path).await.unwrap_or(Value::Null);
            let rows = events["rows"].as_array().cloned().unwrap_or_default();
            let finished = rows.iter().any(|e| e["eventType"] == "FINISHED");
            if finished || tokio::time::Instant::now() > deadline {
                assert!(finished, "run {id}: no FINISHED event within {SETTLE:?}: {rows:?}");
                return rows
                    .iter()
                    .filter(|e| e["eventType"] == "STARTED")
                    .map(|e| e["retryCount"].as_i64().unwrap_or(0))
                    .collect();
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Slots used and total of one pod's worker, as the engine lists it.
pub fn engine_slots(f: &RealFleet<'_>, pod: &str) -> Option<(i64, i64)> {
    let w = f.engine_workers().remove(pod)?;
    let limit = w["slotConfig"]["default"]["limit"].as_i64()?;
    let available = w["slotConfig"]["default"]["available"].as_i64()?;
    Some((limit - available, limit))
}

/// Slots used and total as the pod's own `/metrics` says.
pub fn pod_slots(pod: &Pod) -> Result<(i64, i64), String> {
    let ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .ok_or("no pod IP")?;
    let (code, body) = http_get_from(ip, 8001, "/metrics")?;
    if code != 200 {
        return Err(format!("/metrics answered {code}"));
    }
    // The default slots only: a worker with durable tasks also reports its durable slots.
    Ok((
        metric_sum(&body, r#"hatchet_worker_slots_used{slot_type="default"}"#) as i64,
        metric_sum(&body, r#"hatchet_worker_slots{slot_type="default"}"#) as i64,
    ))
}

pub fn pod_names(pods: &[Pod]) -> BTreeSet<String> {
    pods.iter().map(|p| p.name_any()).collect()
}

/// Waits until the fleet has exactly `n` pods, all Ready, all of the current template (the
/// HatchetWorker says Ready at its generation); returns them.
pub fn wait_fleet(f: &RealFleet<'_>, name: &str, n: i32) -> Vec<Pod> {
    let ready = move |hw: Option<&HatchetWorker>| {
        hw.is_some_and(|hw| {
            hw.status.as_ref().is_some_and(|s| {
                condition_true(hw, "Ready")
                    && s.ready_replicas == n
                    && s.updated_replicas == n
                    && s.observed_generation == hw.metadata.generation
            })
        })
    };
    f.workers()
        .wait(&format!("hw/{name} Ready with {n} replicas"), name, ROLLOUT, ready)
        .unwrap_or_else(|e| panic!("{e}; operator log:\n{}", f.operator_log()));
    f.kube
        .namespaced::<Pod>(f.ns())
        .wait_all(
            &format!("{n} Ready pods and no others"),
            &format!("hatchet.run/fleet={name}"),
            ROLLOUT,
            |all| {
                let ready: Vec<Pod> = all.iter().filter(|p| is_ready(p)).cloned().collect();
                if all.len() == n as usize && ready.len() == n as usize {
                    Ok(ready)
                } else {
                    Err(format!("{} pods, {} ready", all.len(), ready.len()))
                }
            },
        )
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The `worker` field of every output, checked to be one of `pods` (that each run ran once is
/// checked by [`RealFleet::outcomes_once`]).
pub fn assert_ran_on(outputs: &[Value], pods: &BTreeSet<String>) {
    for out in outputs {
        let w = out["worker"].as_str().unwrap_or_default();
        assert!(pods.contains(w), "ran on {w}, not one of {pods:?}");
    }
}

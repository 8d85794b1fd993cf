//! HatchetWorker fleets on the real node (kubelet + containerd): the pods run the real
//! `hatchet-worker` image against the real engine, reached on the node's bridge address. Checked
//! from the outside: readiness follows registration, the engine sees one worker per pod, runs
//! complete on the pods, `kubectl logs`/`exec` work, a wrong token is reported in the pod's log
//! and the HatchetWorker's status, and rolling updates, scale-ins and drain deadlines lose no
//! run (every run counted: all complete, none failed, none run twice except the ones a drain
//! deadline handed back, which ran exactly twice, on another pod). The operator image itself
//! runs in a pod too, reaching the apiserver through the `kubernetes` Service.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use hatchet_e2e::hatchet::{client_in, unique};
use hatchet_e2e::kube::list;
use hatchet_worker::{Client, RunStatus, TriggerOptions};
use serde_json::{Value, json};

/// Pod start on the real node is about a second; a rollout with 10-s tasks draining, under a
/// minute.
const ROLLOUT: Duration = Duration::from_secs(180);

/// One fleet on the real node: its namespaces (Kubernetes, and Hatchet's so its workflows and
/// workers are its own), the operator watching it, and a client for the engine.
struct RealFleet<'w> {
    world: &'w World,
    ns: Namespace<'w>,
    hatchet_ns: String,
    op: OperatorAt,
    client: Client,
    rt: tokio::runtime::Runtime,
    _scratch: Scratch,
}

/// Where the fleet's operator runs.
enum OperatorAt {
    /// The operator binary on the host, with the shipped RBAC's token.
    Host(Operator),
    /// The operator image in a pod on the real node (this pod in `hatchet-system`), with the
    /// shipped ServiceAccount and in-cluster configuration; deleted when dropped.
    Pod(String, World),
}

impl Drop for OperatorAt {
    fn drop(&mut self) {
        if let OperatorAt::Pod(pod, world) = self {
            let _ = kubectl(
                world,
                &["delete", "pod", "-n", OPERATOR_NS, pod.as_str(), "--wait=false"],
            );
        }
    }
}

/// Where the shipped RBAC puts the operator's ServiceAccount.
const OPERATOR_NS: &str = "hatchet-system";

/// Starts the operator image in a pod on the real node watching `watch_ns` (pod network, no
/// host network: it reaches the apiserver through the `kubernetes` Service), and waits until
/// its `/readyz` (watch caches synced) makes it Ready.
fn operator_pod(world: &World, watch_ns: &str) -> String {
    let var = |n: &'static str| world.var(n).unwrap_or_else(|e| panic!("{e}")).to_owned();
    let pod = format!("operator-{watch_ns}");
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {pod}, namespace: {OPERATOR_NS}, labels: {{app: hatchet-operator-e2e}}}}
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
    kubectl_stdin(world, &["apply", "-f", "-"], &manifest).expect("start the operator pod");
    wait_for("the operator pod Ready", ROLLOUT, POLL, || {
        let p = get_json(world, &["pod", "-n", OPERATOR_NS, &pod])?;
        if is_ready(&p) {
            Ok(())
        } else {
            let log = kubectl(world, &["logs", "-n", OPERATOR_NS, &pod, "--tail=20"]).unwrap_or_else(|e| e);
            Err(format!("{}; log: {log}", p["status"]))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    pod
}

impl<'w> RealFleet<'w> {
    fn start(world: &'w World, tag: &str, token: &str) -> Self {
        Self::start_with(world, tag, token, false)
    }

    fn start_with(world: &'w World, tag: &str, token: &str, operator_in_pod: bool) -> Self {
        install_crd(world);
        let ns = Namespace::create(world, tag);
        // The apiserver refuses any fleet pod that does not meet the restricted profile.
        kubectl(
            world,
            &[
                "label",
                "namespace",
                &ns.name,
                "pod-security.kubernetes.io/enforce=restricted",
                "pod-security.kubernetes.io/enforce-version=latest",
            ],
        )
        .expect("label the namespace restricted");
        let scratch = tempdir(&ns.name);
        let kubeconfig = operator_kubeconfig(world, &scratch.path);
        let op = if operator_in_pod {
            OperatorAt::Pod(operator_pod(world, &ns.name), world.clone())
        } else {
            let mut op = Operator::start(&kubeconfig, &ns.name, &format!("{tag}-op"), &[]);
            op.wait_ready();
            OperatorAt::Host(op)
        };
        kubectl(
            world,
            &[
                "create",
                "secret",
                "generic",
                "hatchet-token",
                "-n",
                &ns.name,
                &format!("--from-literal=token={token}"),
            ],
        )
        .expect("create the token Secret");
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
            ns,
            hatchet_ns,
            op,
            client,
            rt,
            _scratch: scratch,
        }
    }

    /// The operator's last log lines, for failure messages.
    fn operator_log(&self) -> String {
        match &self.op {
            OperatorAt::Host(op) => op.log_tail(),
            OperatorAt::Pod(pod, _) => {
                kubectl(self.world, &["logs", "-n", OPERATOR_NS, pod, "--tail=30"]).unwrap_or_else(|e| e)
            }
        }
    }

    fn ns(&self) -> &str {
        &self.ns.name
    }

    /// Applies a HatchetWorker `name` whose pods run the real image on the real node; the
    /// template sets no security context (the operator's defaults must pass the namespace's
    /// restricted profile); `extra_spec` is YAML under `spec:`.
    fn apply(&self, name: &str, extra_spec: &str, env: &[(&str, &str)]) {
        self.apply_with_secret(name, "hatchet-token", extra_spec, env);
    }

    /// [`Self::apply`] with the token taken from the Secret `secret`.
    fn apply_with_secret(&self, name: &str, secret: &str, extra_spec: &str, env: &[(&str, &str)]) {
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
        kubectl_stdin(w, &["apply", "-f", "-"], &manifest).expect("apply the HatchetWorker");
    }

    /// The fleet's pods (not being deleted), by name.
    fn pods(&self, name: &str) -> Vec<Value> {
        list(self.world, self.ns(), "pod", &format!("hatchet.run/fleet={name}"))
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .collect()
    }

    /// The engine's workers of this test (its Hatchet namespace), by name.
    fn engine_workers(&self) -> BTreeMap<String, Value> {
        let prefix = format!("{}_", self.hatchet_ns);
        self.rt
            .block_on(self.client.list_workers())
            .expect("list the engine's workers")
            .into_iter()
            .filter_map(|w| {
                let name = w["name"].as_str()?.strip_prefix(&prefix)?.to_owned();
                Some((name, w))
            })
            .collect()
    }

    /// Triggers `count` runs of a fleet workflow with `input`; their run ids.
    fn trigger(&self, workflow: &str, count: usize, input: Value) -> Vec<String> {
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
    fn wait_running(&self, ids: &[String]) {
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

    fn statuses(&self, ids: &[String]) -> Vec<RunStatus> {
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
    fn outcomes(&self, ids: &[String], task: &str) -> Vec<Value> {
        self.rt.block_on(async {
            let mut outputs = Vec::new();
            for id in ids {
                let out = tokio::time::timeout(ROLLOUT, self.client.wait_for_run(id))
                    .await
                    .unwrap_or_else(|_| panic!("run {id} did not finish within {ROLLOUT:?}"))
                    .unwrap_or_else(|e| panic!("run {id} did not complete: {e}"));
                let d = self.client.run_details(id).await.expect("run details");
                assert_eq!(d.status, RunStatus::Completed, "run {id}: {d:?}");
                outputs.push(
                    out.get(task)
                        .cloned()
                        .unwrap_or_else(|| panic!("run {id}: no {task} output: {out:?}")),
                );
            }
            outputs
        })
    }
}

fn pod_names(pods: &[Value]) -> BTreeSet<String> {
    pods.iter()
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
        .collect()
}

fn is_ready(pod: &Value) -> bool {
    condition(pod, "Ready").is_some_and(|c| c["status"] == "True")
}

/// Waits until the fleet has exactly `n` pods, all Ready, all of the current template (the
/// HatchetWorker says Ready at its generation); returns them.
fn wait_fleet(f: &RealFleet<'_>, name: &str, n: i64) -> Vec<Value> {
    wait_for(&format!("hw/{name} Ready with {n} replicas"), ROLLOUT, POLL, || {
        let hw = get_json(f.world, &["hw", name, "-n", f.ns()])?;
        let s = &hw["status"];
        if condition(&hw, "Ready").is_some_and(|c| c["status"] == "True")
            && s["readyReplicas"] == n
            && s["updatedReplicas"] == n
            && s["observedGeneration"] == hw["metadata"]["generation"]
        {
            Ok(())
        } else {
            Err(format!("status {s}; operator log:\n{}", f.operator_log()))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    wait_for(&format!("{n} Ready pods and no others"), ROLLOUT, POLL, || {
        let all = list(f.world, f.ns(), "pod", &format!("hatchet.run/fleet={name}"))?;
        let ready: Vec<Value> = all.iter().filter(|p| is_ready(p)).cloned().collect();
        if all.len() as i64 == n && ready.len() as i64 == n {
            Ok(ready)
        } else {
            Err(format!("{} pods, {} ready", all.len(), ready.len()))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The `worker` field of every output, checked to be a first attempt on one of `pods`.
fn assert_first_attempts_on(outputs: &[Value], pods: &BTreeSet<String>) {
    for out in outputs {
        assert_eq!(out["attempt"], 1, "a run ran more than once: {out}");
        let w = out["worker"].as_str().unwrap_or_default();
        assert!(pods.contains(w), "ran on {w}, not one of {pods:?}");
    }
}

#[test]
fn real_pods_register_serve_runs_and_drain_through_rollouts_and_scale_in() {
    let world = world();
    let f = RealFleet::start(&world, "real-fleet", world.token().unwrap());
    f.apply("echo", "  replicas: 2\n  slots: 2\n  drain: {timeoutSeconds: 60}", &[]);
    let pods = wait_fleet(&f, "echo", 2);
    let names = pod_names(&pods);

    // The restricted profile's settings came from the operator, and no API token is mounted.
    for pod in &pods {
        let spec = &pod["spec"];
        assert_eq!(spec["automountServiceAccountToken"], false, "{spec}");
        assert_eq!(spec["securityContext"]["runAsNonRoot"], true, "{spec}");
        assert_eq!(
            spec["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{spec}"
        );
        let sc = &spec["containers"][0]["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{sc}");
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{sc}");
        let mounts = spec["containers"][0]["volumeMounts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            !mounts
                .iter()
                .any(|m| m["mountPath"].as_str().is_some_and(|p| p.contains("serviceaccount"))),
            "{mounts:?}"
        );
    }

    // Each pod is on the real node, runs the image, and was Ready only after its worker
    // registered: the engine's worker is older than the pod's Ready transition.
    let workers = f.engine_workers();
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().unwrap();
        assert_eq!(pod["spec"]["nodeName"], world.var("REAL_NODE").unwrap(), "{name}");
        let status = &pod["status"]["containerStatuses"][0];
        assert_eq!(status["ready"], true, "{status}");
        assert!(
            status["imageID"].as_str().is_some_and(|i| i.contains("sha256:")),
            "{status}"
        );
        let w = workers
            .get(name)
            .unwrap_or_else(|| panic!("no engine worker for pod {name}; workers: {workers:?}"));
        assert_eq!(w["slotConfig"]["default"]["limit"], 2, "slots: {w}");
        let labels = w["labels"].as_array().cloned().unwrap_or_default();
        assert!(
            labels
                .iter()
                .any(|l| l["key"] == "hatchet.run/fleet" && l["value"] == format!("{}.echo", f.ns())),
            "fleet label: {w}"
        );
        let registered = w["metadata"]["createdAt"].as_str().unwrap_or_default();
        let ready_at = condition(pod, "Ready").unwrap()["lastTransitionTime"]
            .as_str()
            .unwrap()
            .to_owned();
        // Both RFC 3339 in UTC; the pod's has whole seconds, so compare to the second.
        assert!(
            ready_at.as_str() >= &registered[..19.min(registered.len())],
            "pod {name} Ready at {ready_at}, worker registered at {registered}"
        );
    }
    assert_eq!(
        workers.keys().filter(|k| names.contains(*k)).count(),
        2,
        "one engine worker per pod: {workers:?}"
    );

    // Nothing a pod sends can leave the machine: its only routes are the pod subnet and the
    // service range through the node, and the host forwards nothing from the bridge.
    let node_ip = world.var("NODE_IP").unwrap();
    for netns in std::fs::read_dir("/run/netns")
        .expect("pods' network namespaces")
        .flatten()
    {
        let name = netns.file_name().to_string_lossy().into_owned();
        let routes = hatchet_e2e::run(std::process::Command::new("ip").args(["-n", &name, "route"])).expect("ip route");
        assert!(!routes.contains("default"), "{name} has a default route: {routes}");
        for route in routes.lines() {
            assert!(
                route.contains("dev eth0 proto kernel") || route.contains(&format!("via {node_ip}")),
                "{name}: unexpected route {route}"
            );
        }
    }
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap().trim(),
        "0"
    );

    // No stranger stops a worker: /drain over the pod network is refused, the pod stays Ready.
    let ip = pods[0]["status"]["podIP"].as_str().unwrap().to_owned();
    let code = hatchet_e2e::run(std::process::Command::new("curl").args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "5",
        &format!("http://{ip}:8001/drain"),
    ]))
    .expect("curl the pod's /drain");
    assert_eq!(code, "403", "/drain from outside the pod");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let again = get_json(
        &world,
        &["pod", "-n", f.ns(), pods[0]["metadata"]["name"].as_str().unwrap()],
    )
    .unwrap();
    assert!(
        is_ready(&again),
        "still Ready after the refused drain: {}",
        again["status"]
    );

    // kubectl logs and exec reach the real containers.
    let first = names.iter().next().unwrap().clone();
    let logs = kubectl(&world, &["logs", "-n", f.ns(), &first]).expect("kubectl logs");
    assert!(logs.contains("worker registered"), "{logs}");
    let version = kubectl(
        &world,
        &[
            "exec",
            "-n",
            f.ns(),
            &first,
            "--",
            "/usr/local/bin/hatchet-worker",
            "--version",
        ],
    )
    .expect("kubectl exec");
    assert!(version.starts_with("hatchet-worker "), "{version}");

    // Runs triggered through the engine complete on those pods.
    let ids = f.trigger("fleet-echo", 8, json!({"hello": "pods"}));
    let outputs = f.outcomes(&ids, "echo");
    assert_first_attempts_on(&outputs, &names);

    // A rolling update while every slot runs a 10-s task: old pods drain, nothing is lost.
    let ids = f.trigger("fleet-sleep", 4, json!({"ms": 10_000}));
    f.wait_running(&ids);
    f.apply(
        "echo",
        "  replicas: 2\n  slots: 2\n  drain: {timeoutSeconds: 60}",
        &[("ROLLOUT", "two")],
    );
    let outputs = f.outcomes(&ids, "sleep");
    assert_first_attempts_on(&outputs, &names);
    let rolled = wait_fleet(&f, "echo", 2);
    let rolled_names = pod_names(&rolled);
    assert!(
        rolled_names.is_disjoint(&names),
        "every pod replaced: {names:?} -> {rolled_names:?}"
    );

    // A scale-in from 3 to 1 while every slot runs a 10-s task: the two leaving pods drain.
    kubectl(&world, &["scale", "hw/echo", "-n", f.ns(), "--replicas=3"]).expect("scale to 3");
    let three = pod_names(&wait_fleet(&f, "echo", 3));
    let ids = f.trigger("fleet-sleep", 6, json!({"ms": 10_000}));
    f.wait_running(&ids);
    kubectl(&world, &["scale", "hw/echo", "-n", f.ns(), "--replicas=1"]).expect("scale to 1");
    let outputs = f.outcomes(&ids, "sleep");
    assert_first_attempts_on(&outputs, &three);
    let used: BTreeSet<&str> = outputs.iter().filter_map(|o| o["worker"].as_str()).collect();
    assert_eq!(used.len(), 3, "all three pods had work: {outputs:?}");
    wait_fleet(&f, "echo", 1);
}

#[test]
fn tasks_outlasting_the_drain_deadline_are_handed_back_and_run_on_another_pod() {
    let world = world();
    let f = RealFleet::start(&world, "real-handback", world.token().unwrap());
    f.apply("slow", "  replicas: 1\n  slots: 2\n  drain: {timeoutSeconds: 3}", &[]);
    let first = pod_names(&wait_fleet(&f, "slow", 1));
    let ids = f.trigger("fleet-sleep", 2, json!({"ms": 15_000}));
    f.wait_running(&ids);
    kubectl(&world, &["scale", "hw/slow", "-n", f.ns(), "--replicas=2"]).expect("scale to 2");
    let both = pod_names(&wait_fleet(&f, "slow", 2));
    let gone = first.iter().next().unwrap().clone();
    // The pod holding both runs goes; its drain deadline (3 s) passes long before the tasks end.
    kubectl(&world, &["delete", "pod", "-n", f.ns(), &gone, "--wait=false"]).expect("delete the busy pod");
    let outputs = f.outcomes(&ids, "sleep");
    let mut fleet = both.clone();
    fleet.extend(pod_names(&wait_fleet(&f, "slow", 2)));
    fleet.remove(&gone);
    for out in &outputs {
        assert_eq!(out["attempt"], 2, "handed back once, then run to completion: {out}");
        let w = out["worker"].as_str().unwrap_or_default();
        assert!(
            fleet.contains(w),
            "the retry ran on another pod of the fleet ({fleet:?}), not {gone}: {out}"
        );
    }
}

/// The cluster-wide RBAC grants no Secret access, so the operator cannot look a Secret up: a
/// missing one shows in the Ready message as the kubelet's waiting reason, and the fleet
/// recovers once the Secret exists.
#[test]
fn without_secret_access_a_missing_secret_shows_in_the_ready_message_and_recovers() {
    let world = world();
    let f = RealFleet::start(&world, "real-nosecret", world.token().unwrap());
    f.apply_with_secret("lost", "absent-token", "  replicas: 1\n  slots: 1", &[]);
    wait_for("hw/lost to name the missing Secret", ROLLOUT, POLL, || {
        let hw = get_json(&world, &["hw", "lost", "-n", f.ns()])?;
        match condition(&hw, "Ready") {
            Some(c)
                if c["status"] == "False"
                    && c["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("CreateContainerConfigError") && m.contains("absent-token")) =>
            {
                Ok(())
            }
            other => Err(format!("Ready: {other:?}")),
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    kubectl(
        &world,
        &[
            "create",
            "secret",
            "generic",
            "absent-token",
            "-n",
            f.ns(),
            &format!("--from-literal=token={}", world.token().unwrap()),
        ],
    )
    .expect("create the Secret");
    wait_fleet(&f, "lost", 1);
}

#[test]
fn a_wrong_token_keeps_pods_unready_with_the_reason_in_log_and_status() {
    let world = world();
    // A well-formed token (same claims) whose signature the engine rejects.
    let good = world.token().unwrap();
    let (head, _sig) = good.rsplit_once('.').unwrap();
    let wrong = format!("{head}.c2lnbmF0dXJlLW1hZGUtdXAtYnktdGhlLXRlc3Q");
    let f = RealFleet::start(&world, "real-badtoken", &wrong);
    f.apply("denied", "  replicas: 1\n  slots: 1", &[]);

    let pod = wait_for("the pod to have failed at least once", ROLLOUT, POLL, || {
        let pods = f.pods("denied");
        match pods.first() {
            Some(p)
                if p["status"]["containerStatuses"][0]["restartCount"]
                    .as_i64()
                    .unwrap_or(0)
                    >= 1 =>
            {
                Ok(p.clone())
            }
            Some(p) => Err(format!("{}", p["status"])),
            None => Err("no pod yet".into()),
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !is_ready(&pod),
        "a worker the engine refuses is never Ready: {}",
        pod["status"]
    );
    let name = pod["metadata"]["name"].as_str().unwrap();
    let logs = kubectl(&world, &["logs", "-n", f.ns(), name, "--previous"]).expect("kubectl logs --previous");
    assert!(logs.contains("Unauthenticated"), "the log says why: {logs}");

    let hw = wait_for("hw/denied to say why its pods are not ready", ROLLOUT, POLL, || {
        let hw = get_json(&world, &["hw", "denied", "-n", f.ns()])?;
        match condition(&hw, "Ready") {
            Some(c)
                if c["status"] == "False" && c["message"].as_str().is_some_and(|m| m.contains("Unauthenticated")) =>
            {
                Ok(hw)
            }
            other => Err(format!("Ready: {other:?}")),
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let ready = condition(&hw, "Ready").unwrap();
    assert_eq!(ready["reason"], "ReplicasNotReady", "{ready}");
    assert!(
        ready["message"].as_str().unwrap().contains(name),
        "names the pod: {ready}"
    );
    assert!(f.engine_workers().is_empty(), "the engine never registered it");
}

#[test]
fn the_operator_image_in_a_pod_runs_a_real_fleet_through_the_in_cluster_apiserver() {
    let world = world();
    let f = RealFleet::start_with(&world, "real-inpod", world.token().unwrap(), true);
    let OperatorAt::Pod(op_pod, _) = &f.op else {
        unreachable!("started in a pod")
    };
    // On the pod network (not the host's): the apiserver is reached as in any cluster.
    let op = get_json(&world, &["pod", "-n", OPERATOR_NS, op_pod]).unwrap();
    assert!(op["spec"]["hostNetwork"].is_null(), "{}", op["spec"]);
    let subnet_prefix = world.var("NODE_IP").unwrap().rsplit_once('.').unwrap().0.to_owned() + ".";
    assert!(
        op["status"]["podIP"]
            .as_str()
            .is_some_and(|ip| ip.starts_with(&subnet_prefix)),
        "{}",
        op["status"]
    );

    f.apply("inpod", "  replicas: 1\n  slots: 2", &[]);
    let pods = wait_fleet(&f, "inpod", 1);
    let ids = f.trigger("fleet-echo", 4, json!({"from": "an operator in a pod"}));
    assert_first_attempts_on(&f.outcomes(&ids, "echo"), &pod_names(&pods));
    let log = f.operator_log();
    assert!(!log.contains("ERROR"), "{log}");
}

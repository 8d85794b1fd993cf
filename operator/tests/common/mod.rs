//! Shared pieces of the operator's end-to-end tests: a namespace per test, the CRD installed
//! from `crds/`, the operator's RBAC with a token-based kubeconfig (never the admin one), and
//! the operator binary as a child process.

#![allow(dead_code, unreachable_pub, unused_imports)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use hatchet_e2e::kube::{Kube, Namespace, Objects, kubectl, kubectl_stdin, parse};
pub use hatchet_e2e::{Scratch, World, wait_for};
pub use hatchet_operator::crd::HatchetWorker;
pub use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace as NamespaceObject;
pub use k8s_openapi::api::core::v1::{Pod, Secret, Service, ServiceAccount};
pub use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
pub use kube::ResourceExt;
use kube::api::ObjectMeta;
pub use kube::api::Patch;
use kube::runtime::wait::conditions::is_crd_established;

pub const POLL: Duration = Duration::from_millis(500);
pub const SETTLE: Duration = Duration::from_secs(90);

pub fn world() -> World {
    World::load().expect("local world (start it with tests/env/up)")
}

/// The admin client of the world's control plane.
pub fn kube(world: &World) -> Kube {
    Kube::admin(world).unwrap_or_else(|e| panic!("admin client: {e}"))
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Installs (server-side apply, idempotent) the generated CRD and waits until it is Established.
pub fn install_crd(kube: &Kube) {
    let file = repo_root().join("crds/hatchet.run_hatchetworkers.yaml");
    let yaml = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let crds = kube.cluster::<CustomResourceDefinition>();
    let crd = crds.apply_yaml(&yaml).expect("apply the CRD");
    crds.wait(
        "CRD hatchetworkers.hatchet.run Established",
        &crd.name_any(),
        SETTLE,
        is_crd_established(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

/// Applies `operator/rbac/role.yaml` (admin) and writes a kubeconfig that authenticates as the
/// operator's ServiceAccount with a freshly minted token: the operator runs with exactly the
/// rules the project ships.
pub fn operator_kubeconfig(kube: &Kube, dir: &Path) -> PathBuf {
    let rbac = std::fs::read_to_string(repo_root().join("operator/rbac/role.yaml")).expect("operator/rbac/role.yaml");
    operator_kubeconfig_with(kube, dir, &rbac, "hatchet-system")
}

/// The namespaced RBAC (`hatchet-operator rbac --namespaces ns`: a Role in `ns`, Secrets
/// included, nothing cluster-wide) with the ServiceAccount in `sys`, and a kubeconfig for it;
/// run the operator with `--lease-namespace sys`.
pub fn namespaced_operator_kubeconfig(kube: &Kube, dir: &Path, ns: &str, sys: &str) -> (String, PathBuf) {
    let Some(bin) = option_env!("CARGO_BIN_EXE_hatchet-operator") else {
        panic!("the operator binary is known to integration tests only");
    };
    let rbac = hatchet_e2e::run(Command::new(bin).args(["rbac", "--namespaces", ns, "--operator-namespace", sys]))
        .expect("hatchet-operator rbac");
    let kubeconfig = operator_kubeconfig_with(kube, dir, &rbac, sys);
    (rbac, kubeconfig)
}

/// [`operator_kubeconfig`] with the RBAC manifests `rbac`, whose ServiceAccount
/// `hatchet-operator` lives in `sa_namespace` (created if missing).
pub fn operator_kubeconfig_with(kube: &Kube, dir: &Path, rbac: &str, sa_namespace: &str) -> PathBuf {
    let namespace = NamespaceObject {
        metadata: ObjectMeta {
            name: Some(sa_namespace.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    kube.cluster::<NamespaceObject>()
        .apply(&namespace)
        .expect("the ServiceAccount's namespace");
    kube.apply_manifests(rbac).expect("apply the operator's RBAC");
    let config = kube
        .service_account_kubeconfig(sa_namespace, "hatchet-operator", 2 * 3600)
        .expect("a kubeconfig with a token of the operator's ServiceAccount");
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("operator.kubeconfig");
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    path
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The operator binary running as a child process; killed when dropped.
pub struct Operator {
    pub child: Child,
    pub metrics_port: u16,
    pub log: PathBuf,
}

impl Operator {
    /// Starts `hatchet-operator` watching `namespace` with the operator's own kubeconfig.
    pub fn start(kubeconfig: &Path, namespace: &str, identity: &str, extra: &[&str]) -> Self {
        let Some(bin) = option_env!("CARGO_BIN_EXE_hatchet-operator") else {
            panic!("the operator binary is known to integration tests only; use Operator::start_bin");
        };
        Self::start_bin(Path::new(bin), kubeconfig, namespace, identity, extra)
    }

    /// Like [`Operator::start`] with an explicit binary (the benchmark's release build). Started
    /// again on a fresh port when another process took its metrics port first (tests of one
    /// binary run in parallel).
    pub fn start_bin(bin: &Path, kubeconfig: &Path, namespace: &str, identity: &str, extra: &[&str]) -> Self {
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            let mut op = Self::spawn(bin, kubeconfig, namespace, identity, extra);
            match op.wait_listening() {
                Ok(()) => return op,
                Err(why) if attempt < ATTEMPTS => eprintln!("operator {identity}: {why}; starting it on another port"),
                Err(why) => panic!("operator {identity}: {why}, {attempt} times"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    fn spawn(bin: &Path, kubeconfig: &Path, namespace: &str, identity: &str, extra: &[&str]) -> Self {
        let metrics_port = free_port();
        let log = kubeconfig.with_file_name(format!("operator-{identity}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin)
            .args(["--namespaces", namespace])
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
            .args(["--lease-name", &format!("hatchet-operator-{namespace}")])
            .args(["--identity", identity])
            .args(["--log-format", "text"])
            .args(if extra.contains(&"--log-level") {
                &[][..]
            } else {
                &["--log-level", "info,hatchet_operator=debug"][..]
            })
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start hatchet-operator");
        Self {
            child,
            metrics_port,
            log,
        }
    }

    /// Waits until its port answers `/healthz` while the process lives; `Err` if it exits
    /// first. The operator binds its port right at start-up and exits when it cannot, so a
    /// process still alive a moment after the port answers is the one answering.
    fn wait_listening(&mut self) -> Result<(), String> {
        let (log, port) = (self.log.clone(), self.metrics_port);
        let child = &mut self.child;
        let mut probe = || match child.try_wait() {
            Ok(Some(status)) => Ok(Some(status)),
            _ if matches!(http_get(port, "/healthz"), Ok((200, _))) => Ok(None),
            _ => Err(format!("/healthz not answering yet: {}", tail(&log))),
        };
        let mut exited = wait_for("operator /healthz", SETTLE, Duration::from_millis(100), &mut probe)
            .unwrap_or_else(|e| panic!("{e}"));
        if exited.is_none() {
            std::thread::sleep(Duration::from_millis(300));
            exited = child.try_wait().ok().flatten();
        }
        match exited {
            Some(status) => Err(format!("exited ({status}) before serving its port: {}", tail(&log))),
            None => Ok(()),
        }
    }

    /// GET a path of the operator's HTTP server.
    pub fn http_get(&self, path: &str) -> Result<(u16, String), String> {
        http_get(self.metrics_port, path)
    }

    /// Waits until `/readyz` answers 200 (watches synced).
    pub fn wait_ready(&mut self) {
        let port = self.metrics_port;
        let log = self.log.clone();
        wait_for("operator /readyz", SETTLE, POLL, || match http_get(port, "/readyz") {
            Ok((200, _)) => Ok(()),
            other => Err(format!("{other:?}; log: {}", tail(&log))),
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }

    /// The sum of a metric's samples (all label sets) from `/metrics`.
    pub fn metric_sum(&self, name: &str) -> Result<f64, String> {
        let (code, body) = self.http_get("/metrics")?;
        if code != 200 {
            return Err(format!("/metrics answered {code}"));
        }
        Ok(metric_sum(&body, name))
    }

    /// SIGTERM (graceful) and wait for the exit.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..200 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGKILL (no lease release).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Sums every sample of `name` (with or without labels) in Prometheus text.
pub fn metric_sum(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        // Folded from +0.0: an empty float sum is -0.0, which would print as "-0".
        .fold(0.0, |total, v| total + v)
}

/// GET a path of a server on this host.
pub fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    http_get_from("127.0.0.1", port, path)
}

/// [`http_get`] of another host (a pod's IP on the real node's bridge).
pub fn http_get_from(host: &str, port: u16, path: &str) -> Result<(u16, String), String> {
    hatchet_e2e::http::get(&format!("http://{host}:{port}{path}"), &[])
}

/// A HatchetWorker manifest: `extra_spec` is YAML lines indented by two spaces under `spec:`.
pub fn hatchet_worker(ns: &str, name: &str, secret: &str, extra_spec: &str) -> String {
    format!(
        r#"apiVersion: hatchet.run/v1alpha1
kind: HatchetWorker
metadata:
  name: {name}
  namespace: {ns}
spec:
  connection:
    tokenSecretRef: {{name: {secret}, key: token}}
    hostPort: 127.0.0.1:17077
    tls: {{strategy: none}}
  template:
    metadata:
      labels: {{team: payments}}
    spec:
      containers:
        - name: worker
          image: example.invalid/worker:1
          resources:
            requests: {{cpu: 10m, memory: 16Mi}}
{extra_spec}"#
    )
}

/// Creates the token Secret `name` (key `token`) in `ns`.
pub fn token_secret(kube: &Kube, ns: &str, name: &str) {
    secret(kube, ns, name, "not-a-real-token");
}

/// Creates the Secret `name` in `ns` holding `token` under the key `token`.
pub fn secret(kube: &Kube, ns: &str, name: &str, token: &str) {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            ..Default::default()
        },
        string_data: Some([("token".to_owned(), token.to_owned())].into()),
        ..Default::default()
    };
    kube.namespaced::<Secret>(ns)
        .create(&secret)
        .unwrap_or_else(|e| panic!("create the token Secret: {e}"));
}

/// Parses a HatchetWorker manifest and server-side applies it in its namespace.
pub fn apply_worker(kube: &Kube, manifest: &str) -> HatchetWorker {
    let hw: HatchetWorker = parse(manifest).unwrap_or_else(|e| panic!("{e}\n{manifest}"));
    let ns = hw.namespace().expect("the manifest names its namespace");
    kube.namespaced::<HatchetWorker>(&ns)
        .apply(&hw)
        .unwrap_or_else(|e| panic!("apply the HatchetWorker: {e}"))
}

/// The test's scratch directory (operator kubeconfig with its token, operator logs), removed
/// when the guard drops.
pub fn tempdir(tag: &str) -> Scratch {
    let d = Scratch::new(&format!("hatchet-operator-e2e-{tag}"));
    std::fs::create_dir_all(&d.path).unwrap();
    d
}

/// The condition `kind` of a HatchetWorker's status, if it reports one.
pub fn condition<'a>(hw: &'a HatchetWorker, kind: &str) -> Option<&'a Condition> {
    hw.status.as_ref()?.conditions.iter().find(|c| c.type_ == kind)
}

/// Whether the HatchetWorker reports condition `kind` as `True`.
pub fn condition_true(hw: &HatchetWorker, kind: &str) -> bool {
    condition(hw, kind).is_some_and(|c| c.status == "True")
}

/// The HatchetWorker's status, as a short line for failure messages.
pub fn status_of(hw: &HatchetWorker) -> String {
    serde_json::to_string(&hw.status).unwrap_or_default()
}

/// Waits for the HatchetWorker's status to say Ready with `n` ready replicas at its generation.
pub fn wait_ready(kube: &Kube, ns: &str, name: &str, n: i32, op: &Operator) -> HatchetWorker {
    let ready = move |hw: Option<&HatchetWorker>| {
        hw.is_some_and(|hw| {
            hw.status.as_ref().is_some_and(|s| {
                condition_true(hw, "Ready")
                    && s.ready_replicas == n
                    && s.replicas == n
                    && s.updated_replicas == n
                    && s.observed_generation == hw.metadata.generation
            })
        })
    };
    kube.namespaced::<HatchetWorker>(ns)
        .wait(&format!("hw/{name} Ready with {n} ready replicas"), name, SETTLE, ready)
        .unwrap_or_else(|e| panic!("{e}; operator log:\n{}", op.log_tail()))
}

/// Whether the pod reports Ready and is not being deleted.
pub fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The pods matching `selector` that are Ready and not being deleted.
pub fn ready_pods(kube: &Kube, ns: &str, selector: &str) -> Result<Vec<Pod>, String> {
    let pods = kube.namespaced::<Pod>(ns).list(selector)?;
    Ok(pods.into_iter().filter(is_ready).collect())
}

pub mod real_fleet;

//! The Kubernetes side of the harness: kubectl against the local control plane (admin
//! kubeconfig), a namespace per test, and JSON access to objects and their conditions.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::{World, run, run_with_stdin};

/// `kubectl ARGS...`; its stdout, or an error carrying the command, status and stderr.
pub fn kubectl(world: &World, args: &[&str]) -> Result<String, String> {
    run(world.kubectl().map_err(|e| e.to_string())?.args(args)).map_err(|e| e.to_string())
}

/// `kubectl ARGS...` with `input` on stdin (`-f -` manifests).
pub fn kubectl_stdin(world: &World, args: &[&str], input: &str) -> Result<String, String> {
    run_with_stdin(world.kubectl().map_err(|e| e.to_string())?.args(args), input.as_bytes()).map_err(|e| e.to_string())
}

/// `kubectl get ARGS... -o json`, parsed.
pub fn get_json(world: &World, args: &[&str]) -> Result<Value, String> {
    let mut a = vec!["get"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-o", "json"]);
    let out = kubectl(world, &a)?;
    serde_json::from_str(&out).map_err(|e| format!("JSON from kubectl {a:?}: {e}"))
}

/// `kubectl get KIND -n NS -l SELECTOR -o json`, as the list's items.
pub fn list(world: &World, ns: &str, kind: &str, selector: &str) -> Result<Vec<Value>, String> {
    let list = get_json(world, &[kind, "-n", ns, "-l", selector])?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

/// The condition of type `kind` in `obj.status.conditions`, if the object reports it.
pub fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

/// Whether `obj` reports condition `kind` with status `True`.
pub fn condition_true(obj: &Value, kind: &str) -> bool {
    condition(obj, kind).is_some_and(|c| c["status"] == "True")
}

/// A namespace of the test's own, deleted (without waiting) when the test ends, pass or fail.
/// Names are unique across the test processes that share the control plane.
pub struct Namespace<'w> {
    world: &'w World,
    /// The namespace's name: `PREFIX-PID-N-NANOS`.
    pub name: String,
}

impl<'w> Namespace<'w> {
    /// Creates the namespace; panics (failing the test) when the apiserver refuses.
    pub fn create(world: &'w World, prefix: &str) -> Self {
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
        if let Err(e) = kubectl(world, &["create", "namespace", &name]) {
            panic!("create namespace {name}: {e}");
        }
        Self { world, name }
    }
}

impl Drop for Namespace<'_> {
    fn drop(&mut self) {
        let _ = kubectl(
            self.world,
            &["delete", "namespace", &self.name, "--wait=false", "--ignore-not-found"],
        );
    }
}

//! Why a fleet's pods are not ready, in one line for the `Ready` condition: a pure function of
//! the pods the operator watches (the worker container's state, its last exit and the message
//! the kubelet kept from its log, scheduling failures). The wording is stable across restarts
//! of a crash-looping pod, so the status is not rewritten at every restart.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::ResourceExt;
use kube::runtime::reflector::Store;

use crate::desired::FLEET_LABEL;

/// At most this many pods are described; the rest are counted.
const MAX_PODS: usize = 3;
/// Longest excerpt of a container's termination message.
const MAX_MESSAGE: usize = 240;

/// The pods of fleet `ns/name` in the cache that are not being deleted.
pub(crate) fn live_fleet_pods(pods: &Store<Pod>, ns: &str, name: &str) -> Vec<Arc<Pod>> {
    pods.state()
        .into_iter()
        .filter(|p| {
            p.namespace().as_deref() == Some(ns)
                && p.labels().get(FLEET_LABEL).map(String::as_str) == Some(name)
                && p.metadata.deletion_timestamp.is_none()
        })
        .collect()
}

/// Why the fleet's unready pods are unready (`None` when every live pod is ready, or none
/// says why). Pods being deleted are left out: a draining pod is unready on purpose.
pub fn not_ready_summary(pods: &[Pod], worker_container: &str) -> Option<String> {
    let mut unready: Vec<(String, String)> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && !is_ready(p))
        .filter_map(|p| Some((p.metadata.name.clone()?, pod_reason(p, worker_container)?)))
        .collect();
    if unready.is_empty() {
        return None;
    }
    unready.sort();
    let more = unready.len().saturating_sub(MAX_PODS);
    let mut text = unready
        .iter()
        .take(MAX_PODS)
        .map(|(name, why)| format!("pod {name}: {why}"))
        .collect::<Vec<_>>()
        .join("; ");
    if more > 0 {
        text.push_str(&format!("; and {more} more"));
    }
    Some(text)
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_reason(pod: &Pod, worker_container: &str) -> Option<String> {
    let status = pod.status.as_ref()?;
    let worker = status
        .container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == worker_container)
        .or_else(|| status.container_statuses.as_ref()?.first());
    if let Some(c) = worker {
        return Some(container_reason(c));
    }
    let unschedulable = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False");
    Some(match unschedulable {
        Some(c) => format!(
            "not scheduled ({}): {}",
            c.reason.as_deref().unwrap_or("Unschedulable"),
            excerpt(c.message.as_deref().unwrap_or(""))
        ),
        None => status.phase.clone().unwrap_or_else(|| "Pending".into()),
    })
}

fn container_reason(c: &ContainerStatus) -> String {
    let last_exit = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    if let Some(t) = last_exit {
        let msg = t.message.as_deref().map(excerpt).filter(|m| !m.is_empty());
        return match msg {
            Some(m) => format!("the worker exits with code {}: {m}", t.exit_code),
            None => format!(
                "the worker exits with code {} ({})",
                t.exit_code,
                t.reason.as_deref().unwrap_or("no message")
            ),
        };
    }
    let state = c.state.as_ref();
    if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
        let reason = w.reason.as_deref().unwrap_or("Waiting");
        return match w.message.as_deref().map(excerpt).filter(|m| !m.is_empty()) {
            Some(m) => format!("{reason}: {m}"),
            None => reason.to_owned(),
        };
    }
    if state.is_some_and(|s| s.running.is_some()) {
        return "running, not ready: the worker's /readyz says it is not registered and streaming".into();
    }
    "starting".into()
}

/// The last non-empty line of `text` (a log tail ends with the error), at most
/// [`MAX_MESSAGE`] characters.
fn excerpt(text: &str) -> String {
    let line = text.lines().rev().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    if line.chars().count() <= MAX_MESSAGE {
        return line.to_owned();
    }
    let cut: String = line.chars().take(MAX_MESSAGE).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn mk_pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn crashing(name: &str, message: &str) -> Pod {
        mk_pod(json!({
            "metadata": {"name": name},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [{
                    "name": "worker", "ready": false, "restartCount": 3, "image": "w", "imageID": "",
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": message}}
                }]
            }
        }))
    }

    #[test]
    fn a_crash_loop_is_told_by_the_last_line_of_its_log() {
        let p = crashing(
            "w-1",
            "starting\nError: the engine refused the worker (Unauthenticated): invalid token\n",
        );
        assert_eq!(
            not_ready_summary(&[p], "worker").unwrap(),
            "pod w-1: the worker exits with code 1: Error: the engine refused the worker (Unauthenticated): invalid token"
        );
    }

    #[test]
    fn the_summary_is_the_same_between_restarts() {
        let mut running = crashing("w-1", "Error: boom");
        let cs = &mut running.status.as_mut().unwrap().container_statuses.as_mut().unwrap()[0];
        cs.state = Some(serde_json::from_value(json!({"running": {}})).unwrap());
        cs.restart_count = 4;
        assert_eq!(
            not_ready_summary(&[crashing("w-1", "Error: boom")], "worker"),
            not_ready_summary(&[running], "worker")
        );
    }

    #[test]
    fn ready_and_deleted_pods_are_left_out() {
        let ready = mk_pod(
            json!({"metadata": {"name": "ok"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        let mut draining = crashing("bye", "x");
        draining.metadata.deletion_timestamp = Some(serde_json::from_value(json!("2026-01-01T00:00:00Z")).unwrap());
        assert_eq!(not_ready_summary(&[ready, draining], "worker"), None);
    }

    #[test]
    fn waiting_running_and_unscheduled_pods_say_why() {
        let waiting = mk_pod(json!({"metadata": {"name": "a"}, "status": {"containerStatuses": [{
            "name": "worker", "ready": false, "restartCount": 0, "image": "w", "imageID": "",
            "state": {"waiting": {"reason": "CreateContainerConfigError", "message": "secret \"tok\" not found"}}}]}}));
        let running = mk_pod(json!({"metadata": {"name": "b"}, "status": {"containerStatuses": [{
            "name": "worker", "ready": false, "restartCount": 0, "image": "w", "imageID": "",
            "state": {"running": {}}}]}}));
        let pending = mk_pod(
            json!({"metadata": {"name": "c"}, "status": {"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/2 nodes are available"}]}}),
        );
        let s = not_ready_summary(&[pending, running, waiting], "worker").unwrap();
        assert_eq!(
            s,
            "pod a: CreateContainerConfigError: secret \"tok\" not found; \
             pod b: running, not ready: the worker's /readyz says it is not registered and streaming; \
             pod c: not scheduled (Unschedulable): 0/2 nodes are available"
        );
    }

    #[test]
    fn many_pods_are_counted_and_long_messages_cut() {
        let long = "x".repeat(1000);
        let pods: Vec<Pod> = (0..5).map(|i| crashing(&format!("w-{i}"), &long)).collect();
        let s = not_ready_summary(&pods, "worker").unwrap();
        assert!(s.ends_with("; and 2 more"), "{s}");
        assert_eq!(s.matches("pod w-").count(), 3, "{s}");
        assert!(s.contains('…') && s.len() < 3 * 320, "{s}");
    }
}

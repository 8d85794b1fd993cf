//! Secure defaults for the fleet's pods: the Kubernetes *restricted* Pod Security profile, and
//! no API token (the worker never calls the apiserver). Each default fills only what the
//! template leaves unset, so a template that says otherwise still wins (and a namespace that
//! enforces `restricted` then refuses it, as it should).
//!
//! - pod: `runAsNonRoot: true`, `seccompProfile: RuntimeDefault`,
//!   `automountServiceAccountToken: false`;
//! - every container and init container: `allowPrivilegeEscalation: false`, capabilities
//!   `drop: [ALL]` (added capabilities the template lists are kept).
//!
//! The root filesystem is left writable: many worker images write to it (caches, `/tmp`); a
//! template that can run read-only sets `readOnlyRootFilesystem` itself.

use k8s_openapi::api::core::v1::{
    Capabilities, Container, PodSecurityContext, PodSpec, SeccompProfile, SecurityContext,
};

/// Fills the restricted profile's settings the template left unset.
pub(crate) fn restrict(pod: &mut PodSpec) {
    pod.automount_service_account_token.get_or_insert(false);
    let ctx = pod.security_context.get_or_insert_with(PodSecurityContext::default);
    ctx.run_as_non_root.get_or_insert(true);
    ctx.seccomp_profile.get_or_insert_with(|| SeccompProfile {
        type_: "RuntimeDefault".into(),
        localhost_profile: None,
    });
    for c in pod
        .containers
        .iter_mut()
        .chain(pod.init_containers.iter_mut().flatten())
    {
        restrict_container(c);
    }
}

fn restrict_container(c: &mut Container) {
    let ctx = c.security_context.get_or_insert_with(SecurityContext::default);
    ctx.allow_privilege_escalation.get_or_insert(false);
    let caps = ctx.capabilities.get_or_insert_with(Capabilities::default);
    caps.drop.get_or_insert_with(|| vec!["ALL".into()]);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(v: serde_json::Value) -> PodSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn an_empty_template_gets_the_restricted_profile() {
        let mut p =
            pod(json!({"containers": [{"name": "worker"}, {"name": "sidecar"}], "initContainers": [{"name": "init"}]}));
        restrict(&mut p);
        assert_eq!(p.automount_service_account_token, Some(false));
        let ctx = p.security_context.as_ref().unwrap();
        assert_eq!(ctx.run_as_non_root, Some(true));
        assert_eq!(ctx.seccomp_profile.as_ref().unwrap().type_, "RuntimeDefault");
        for c in p.containers.iter().chain(p.init_containers.iter().flatten()) {
            let sc = c.security_context.as_ref().unwrap();
            assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
            assert_eq!(
                sc.capabilities.as_ref().unwrap().drop.as_deref(),
                Some(&["ALL".to_owned()][..]),
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn what_the_template_sets_wins() {
        let mut p = pod(json!({
            "automountServiceAccountToken": true,
            "securityContext": {"runAsNonRoot": false, "runAsUser": 1000, "seccompProfile": {"type": "Localhost", "localhostProfile": "w.json"}},
            "containers": [{"name": "worker", "securityContext": {
                "allowPrivilegeEscalation": true, "readOnlyRootFilesystem": true,
                "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["NET_RAW"]}}}]
        }));
        let before = p.clone();
        restrict(&mut p);
        assert_eq!(p, before, "nothing the template set is changed");

        let mut p = pod(
            json!({"containers": [{"name": "worker", "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"]}}}]}),
        );
        restrict(&mut p);
        let caps = p.containers[0]
            .security_context
            .as_ref()
            .unwrap()
            .capabilities
            .as_ref()
            .unwrap();
        assert_eq!(caps.add.as_deref(), Some(&["NET_BIND_SERVICE".to_owned()][..]));
        assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_owned()][..]));
    }
}

//! The namespaced mode: RBAC from `hatchet-operator rbac --namespaces`, a Role in the watched
//! namespace and nothing at cluster scope. The operator runs a fleet (and notices a missing
//! Secret) with it, and its token can neither list Secrets cluster-wide nor touch
//! `kube-system`.

mod common;

use common::*;

fn can_i(world: &World, who: &str, args: &[&str]) -> String {
    let mut all = vec!["auth", "can-i", "--as", who];
    all.extend_from_slice(args);
    // The CLI on purpose: `auth can-i` is how a user checks what the shipped RBAC allows.
    // `kubectl auth can-i` exits 1 for "no"; both answers are on stdout.
    match kubectl(world, &all) {
        Ok(out) => out.trim().to_owned(),
        Err(e) if e.lines().any(|l| l.trim() == "stdout: no") => "no".into(),
        Err(e) => e,
    }
}

#[test]
fn a_namespaced_operator_runs_a_fleet_with_roles_only() {
    let world = world();
    let kube = kube(&world);
    install_crd(&kube);
    let ns = Namespace::create(&kube, "op-nsmode");
    let ns = ns.name.as_str();
    let sys = Namespace::create(&kube, "op-nsmode-sys");
    let sys = sys.name.as_str();
    let scratch = tempdir(ns);
    let (rbac, kubeconfig) = namespaced_operator_kubeconfig(&kube, &scratch.path, ns, sys);
    assert!(!rbac.contains("kind: ClusterRole"), "{rbac}");

    let who = format!("system:serviceaccount:{sys}:hatchet-operator");
    assert_eq!(can_i(&world, &who, &["list", "secrets", "-n", ns]), "yes");
    assert_eq!(can_i(&world, &who, &["list", "secrets", "--all-namespaces"]), "no");
    assert_eq!(can_i(&world, &who, &["get", "secrets", "-n", "kube-system"]), "no");
    assert_eq!(
        can_i(&world, &who, &["create", "deployments", "-n", "kube-system"]),
        "no"
    );
    assert_eq!(
        can_i(
            &world,
            &who,
            &["list", "hatchetworkers.hatchet.run", "--all-namespaces"]
        ),
        "no"
    );

    let mut op = Operator::start(&kubeconfig, ns, "nsmode", &["--lease-namespace", sys]);
    op.wait_ready();
    apply_worker(&kube, &hatchet_worker(ns, "fleet", "tok", "  replicas: 2\n"));
    wait_for("Degraded: the token Secret is missing", SETTLE, POLL, || {
        let hw = kube.namespaced::<HatchetWorker>(ns).get("fleet")?;
        match condition(&hw, "Degraded") {
            Some(c) if c.status == "True" && c.reason == "SecretNotFound" => Ok(()),
            other => Err(format!("Degraded {other:?}; log:\n{}", op.log_tail())),
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    token_secret(&kube, ns, "tok");
    wait_ready(&kube, ns, "fleet", 2, &op);
    op.terminate();
}

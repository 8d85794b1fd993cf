//! The namespaced mode: RBAC from `hatchet-operator rbac --namespaces`, a Role in the watched
//! namespace and nothing at cluster scope. The operator runs a fleet (and notices a missing
//! Secret) with it, and its token can neither list Secrets cluster-wide nor touch
//! `kube-system`.

mod common;

use common::*;

fn can_i(world: &World, who: &str, args: &[&str]) -> String {
    let mut all = vec!["auth", "can-i", "--as", who];
    all.extend_from_slice(args);
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
    install_crd(&world);
    let ns = Namespace::create(&world, "op-nsmode");
    let ns = ns.name.as_str();
    let sys = Namespace::create(&world, "op-nsmode-sys");
    let sys = sys.name.as_str();
    let scratch = tempdir(ns);
    let (rbac, kubeconfig) = namespaced_operator_kubeconfig(&world, &scratch.path, ns, sys);
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
    kubectl_stdin(
        &world,
        &["apply", "-f", "-"],
        &hatchet_worker(ns, "fleet", "tok", "  replicas: 2\n"),
    )
    .expect("apply");
    wait_for("Degraded: the token Secret is missing", SETTLE, POLL, || {
        let hw = get_json(&world, &["hw", "fleet", "-n", ns])?;
        match condition(&hw, "Degraded") {
            Some(c) if c["status"] == "True" && c["reason"] == "SecretNotFound" => Ok(()),
            other => Err(format!("Degraded {other:?}; log:\n{}", op.log_tail())),
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    token_secret(&world, ns, "tok");
    wait_ready(&world, ns, "fleet", 2, &op);
    op.terminate();
}

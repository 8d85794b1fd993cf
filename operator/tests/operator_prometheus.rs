//! The world's Prometheus scrapes an autoscaled fleet and its operator (in a pod) through
//! Kubernetes service discovery against the local apiserver, by the pods' `prometheus.io/*`
//! annotations. With every slot busy and work queued, what PromQL says matches what each pod's
//! own `/metrics`, the engine and the HatchetWorker's status say: slots used per pod, the fleet's
//! utilization, its queue and its scale-out. The shipped rules load and evaluate cleanly, and
//! every query of the shipped Grafana dashboard evaluates against this Prometheus (the ones a
//! busy fleet must fill return data). Every run completes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use common::real_fleet::*;
use common::*;
use hatchet_e2e::prometheus::{self, Sample};
use serde_json::{Value, json};

const FLEET: &str = "scraped";
/// Two pods of two slots at most, sized at 100 %: six 40 s tasks keep four running and two queued.
const SPEC: &str = "  slots: 2
  autoscaling:
    minReplicas: 1
    maxReplicas: 2
    targetUtilization: 1.0
    pollIntervalSeconds: 2";
const RUNS: usize = 6;
const TASK_MS: u64 = 40_000;
/// Scrapes and rule evaluations run every 2 s; a few rounds are enough to catch up.
const CATCH_UP: Duration = Duration::from_secs(45);

/// Dashboard panels a healthy, busy fleet may leave empty (nothing failed, reconnected or
/// drained, and no task has finished yet for the quantiles).
const MAY_BE_EMPTY: &[&str] = &[
    "Workers not streaming",
    "Draining workers",
    "Stream reconnects (rate)",
    "Task duration p50 / p95",
    "Tasks finished per second, by outcome",
];

fn repo_file(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn query(f: &RealFleet<'_>, promql: &str) -> Result<Vec<Sample>, String> {
    prometheus::query(f.world, promql)
}

/// The single value of a query that must return one series.
fn one(f: &RealFleet<'_>, promql: &str) -> Result<f64, String> {
    match query(f, promql)?.as_slice() {
        [s] => Ok(s.value),
        other => Err(format!("{promql}: {} series, not one: {other:?}", other.len())),
    }
}

#[test]
fn prometheus_scrapes_the_fleet_and_the_operator_and_agrees_with_the_engine_and_the_pods() {
    let world = world();
    let f = RealFleet::start_with(&world, "prom", world.token().unwrap(), true);
    let OperatorAt::Pod(op_pod, _) = &f.op else {
        unreachable!("started in a pod")
    };
    f.apply(FLEET, SPEC, &[]);
    wait_fleet(&f, FLEET, 1);

    let ids = f.trigger("fleet-sleep", RUNS, json!({"ms": TASK_MS}));
    let sel = format!(r#"namespace="{}", fleet="{FLEET}""#, f.ns());

    // Both pods busy (4 slots), two runs queued; the pods, the engine, the status and PromQL agree.
    let pods = wait_for(
        "PromQL to agree with the pods, the engine and the status",
        SETTLE,
        POLL,
        || {
            let pods: Vec<Pod> = f.pods(FLEET).into_iter().filter(is_ready).collect();
            if pods.len() != 2 {
                return Err(format!("{} ready pods", pods.len()));
            }
            let per_pod: BTreeMap<String, f64> = query(
                &f,
                &format!(r#"hatchet_worker_slots_used{{slot_type="default", {sel}}}"#),
            )?
            .into_iter()
            .map(|s| (s.label("pod").to_owned(), s.value))
            .collect();
            for pod in &pods {
                let name = pod.name_any();
                let name = name.as_str();
                let (used, total) = pod_slots(pod)?;
                let engine = engine_slots(&f, name).ok_or_else(|| format!("the engine does not list {name}"))?;
                let scraped = per_pod.get(name).copied();
                if (used, total) != (2, 2) || engine != (2, 2) || scraped != Some(2.0) {
                    return Err(format!(
                        "{name}: /metrics {used}/{total}, engine {engine:?}, Prometheus {scraped:?}"
                    ));
                }
            }
            if per_pod.len() != 2 {
                return Err(format!("Prometheus has series for other pods too: {per_pod:?}"));
            }
            let s = f.workers().get(FLEET)?.status.unwrap_or_default();
            let utilization = one(&f, &format!("hatchet:fleet_utilization:ratio{{{sel}}}"))?;
            let queued = one(&f, &format!("hatchet:fleet_queued_tasks:max{{{sel}}}"))?;
            let desired = one(&f, &format!("hatchet:fleet_desired_replicas:max{{{sel}}}"))?;
            let operator_utilization = one(
                &f,
                &format!(
                    r#"hatchet_operator_fleet_utilization_ratio{{namespace="{}", name="{FLEET}"}}"#,
                    f.ns()
                ),
            )?;
            let scale_outs = one(
                &f,
                &format!(r#"hatchet:fleet_scale_events:increase10m{{direction="up", {sel}}}"#),
            )?;
            if utilization != 1.0
                || operator_utilization != 1.0
                || s.utilization != Some(1.0)
                || queued != 2.0
                || s.queued != Some(2)
                || desired != 2.0
                || s.desired_replicas != Some(2)
                || scale_outs <= 0.0
            {
                return Err(format!(
                    "PromQL utilization {utilization} (operator {operator_utilization}), queued {queued}, desired \
                 {desired}, scale-outs {scale_outs}; status {s:?}"
                ));
            }
            Ok(pods)
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));

    // What service discovery found: the two worker pods and the operator pod, all up.
    let targets = prometheus::active_targets(f.world).unwrap();
    let up: BTreeSet<String> = targets
        .iter()
        .filter(|t| t["health"] == "up")
        .filter_map(|t| t["labels"]["pod"].as_str().map(str::to_owned))
        .collect();
    for pod in pod_names(&pods).iter().chain([op_pod]) {
        assert!(up.contains(pod), "{pod} is a healthy target: {targets:?}");
    }
    let leader = one(&f, &format!(r#"hatchet_operator_leader{{pod="{op_pod}"}}"#)).unwrap();
    assert_eq!(leader, 1.0, "the operator pod's own metrics are scraped");

    // The shipped rules: valid for promtool, loaded and healthy in the world's Prometheus.
    let promtool = world.var("PROMTOOL").unwrap();
    let rules = world.var("PROMETHEUS_RULES").unwrap();
    let checked = std::process::Command::new(promtool)
        .args(["check", "rules", rules])
        .output()
        .expect("run promtool");
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));
    let groups = prometheus::rule_groups(f.world).unwrap();
    let loaded: Vec<&Value> = groups
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .collect();
    assert_eq!(loaded.len(), 11, "every shipped rule is loaded: {groups:?}");
    for rule in &loaded {
        assert_eq!(rule["health"], "ok", "{rule}");
    }

    // Every query of the shipped dashboard evaluates here; the ones a busy fleet fills have data.
    let dashboard: Value = serde_json::from_str(&repo_file("monitoring/grafana-dashboard.json")).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 10, "{} panels", panels.len());
    wait_for("every dashboard query to evaluate", CATCH_UP, POLL, || {
        for panel in panels {
            let title = panel["title"].as_str().unwrap();
            let mut series = 0;
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"]
                    .as_str()
                    .unwrap()
                    .replace("$namespace", f.ns())
                    .replace("$fleet", FLEET)
                    .replace("$__rate_interval", "1m");
                series += query(&f, &expr).map_err(|e| format!("{title}: {e}"))?.len();
            }
            if series == 0 && !MAY_BE_EMPTY.contains(&title) {
                return Err(format!("{title}: no query of the panel returned data"));
            }
        }
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        let Some(def) = var["definition"].as_str() else {
            continue;
        };
        let inner = def
            .strip_prefix("label_values(")
            .and_then(|d| d.strip_suffix(')'))
            .and_then(|d| d.rsplit_once(", "))
            .unwrap_or_else(|| panic!("variable {var}: not label_values(selector, label)"));
        let selector = inner.0.replace("$namespace", f.ns());
        let values: BTreeSet<String> = query(&f, &format!("count by ({}) ({selector})", inner.1))
            .unwrap()
            .iter()
            .map(|s| s.label(inner.1).to_owned())
            .collect();
        let want = if inner.1 == "namespace" { f.ns() } else { FLEET };
        assert!(values.contains(want), "variable {}: {values:?}", var["name"]);
    }

    let outputs = f.outcomes_once(&ids, "sleep");
    assert_eq!(outputs.len(), RUNS);
    assert_ran_on(&outputs, &pod_names(&pods));
}

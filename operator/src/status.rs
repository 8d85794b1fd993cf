//! Status and conditions: a pure function of the HatchetWorker, its observed Deployment and
//! the problem (if any) the reconciler ran into. No IO, no clock (the caller passes `now`).
//!
//! Conditions and their stable reasons:
//!
//! | type | status | reasons |
//! |---|---|---|
//! | `Ready` | True | `AllReplicasReady` |
//! | `Ready` | False | `ReplicasNotReady`, `DeploymentNotFound`, or the `Degraded` reason |
//! | `Progressing` | True | `RolloutInProgress` |
//! | `Progressing` | False | `RolloutComplete`, or the `Degraded` reason |
//! | `Degraded` | True | `SecretNotFound`, `InvalidTemplate`, `ChildRejected`, `ProgressDeadlineExceeded`, `ReconcileError` |
//! | `Degraded` | False | `AsExpected` |
//! | `ScalingActive` | True | `SignalsRead`, `WaitingForSignals` |
//! | `ScalingActive` | False | `TokenSecretNotFound`, `TokenSecretForbidden`, `TokenSecretUnreadable`, `InvalidToken`, `InvalidCA`, `EngineUnreachable`, `EngineRefusedToken`, `EngineError`, `EngineAnswerInvalid` |
//! | `ScalingLimited` | True | `AtMinReplicas`, `AtMaxReplicas`, `ScaleUpLimited`, `ScaleDownLimited`, `ScaleUpStabilizing`, `ScaleDownStabilizing`, `IdleBeforeZero` |
//! | `ScalingLimited` | False | `WithinLimits` |
//!
//! The two scaling conditions exist only with `spec.autoscaling`.
//!
//! A condition's `lastTransitionTime` changes only when its status does, so recomputing the
//! status of an unchanged fleet yields exactly the stored status (and no write).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{HatchetWorker, HatchetWorkerStatus, SlotStatus};
use crate::desired::selector_string;

/// Condition type: every desired worker is Ready and runs the current template.
pub const READY: &str = "Ready";
/// Condition type: a rollout or scale is under way.
pub const PROGRESSING: &str = "Progressing";
/// Condition type: the fleet cannot reach its desired state without help.
pub const DEGRADED: &str = "Degraded";
/// Condition type: the autoscaler reads the fleet's signals (else it holds the size).
pub const SCALING_ACTIVE: &str = "ScalingActive";
/// Condition type: a bound or pace keeps the fleet from the size demand asks for.
pub const SCALING_LIMITED: &str = "ScalingLimited";

/// What the autoscaler knows of a fleet, for its status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scaling {
    /// (slots used, slots total, queued) from the last good read of the engine.
    pub slots: Option<(i64, i64, i64)>,
    /// The fleet's actions.
    pub actions: Vec<String>,
    /// Why the last decision chose its size.
    pub reason: Option<String>,
    /// Why the last read of the signals failed, if it did.
    pub problem: Option<Problem>,
    /// What holds the size back: (reason, message).
    pub limit: Option<(&'static str, String)>,
    /// When the autoscaler last changed the size.
    pub last_scale_time: Option<Time>,
}

/// Something that keeps the fleet from its desired state (reported as `Degraded=True`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Stable `PascalCase` reason, e.g. `SecretNotFound`.
    pub reason: &'static str,
    /// Human-readable detail.
    pub message: String,
}

/// What the reconciler saw.
#[derive(Debug, Clone, Copy, Default)]
pub struct Observed<'a> {
    /// The fleet's Deployment, if it exists.
    pub deployment: Option<&'a Deployment>,
    /// The problem found while reconciling, if any.
    pub problem: Option<&'a Problem>,
    /// Why the fleet's unready pods are unready (see [`crate::pods::not_ready_summary`]).
    pub pods_not_ready: Option<&'a str>,
    /// Pods wanted: `spec.replicas`, or the autoscaler's decision.
    pub desired_replicas: i32,
    /// The autoscaler's view, with `spec.autoscaling`.
    pub scaling: Option<&'a Scaling>,
}

/// A condition that changed status, for an Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// Condition type.
    pub type_: String,
    /// New status (`True`/`False`).
    pub status: String,
    /// New reason.
    pub reason: String,
    /// New message.
    pub message: String,
}

/// The status the HatchetWorker should have.
pub fn compute_status(hw: &HatchetWorker, observed: Observed<'_>, now: &Time) -> HatchetWorkerStatus {
    let desired = observed.desired_replicas;
    let generation = hw.metadata.generation;
    let old = hw.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or(&[]);
    let dep_status = observed.deployment.and_then(|d| d.status.clone()).unwrap_or_default();
    let (replicas, ready, updated, available) = (
        dep_status.replicas.unwrap_or(0),
        dep_status.ready_replicas.unwrap_or(0),
        dep_status.updated_replicas.unwrap_or(0),
        dep_status.available_replicas.unwrap_or(0),
    );
    let dep_current = observed.deployment.is_some_and(|d| {
        let spec_replicas = d.spec.replicas;
        d.metadata.generation.is_some()
            && dep_status.observed_generation >= d.metadata.generation
            && spec_replicas == Some(desired)
    });
    let settled = dep_current && updated == desired && ready == desired && available == desired && replicas == desired;
    let deadline_exceeded = dep_status.conditions.iter().flatten().any(|c| {
        c.type_.as_deref() == Some("Progressing")
            && c.status.as_deref() == Some("False")
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });

    let problem = observed.problem.cloned().or_else(|| {
        deadline_exceeded.then(|| Problem {
            reason: "ProgressDeadlineExceeded",
            message: "the Deployment's rollout exceeded its progress deadline".into(),
        })
    });

    let (ready_status, ready_reason, ready_msg) = match (&problem, settled) {
        (None, true) => ("True", "AllReplicasReady", format!("{ready}/{desired} workers ready")),
        (Some(p), false) => ("False", p.reason, p.message.clone()),
        (Some(_), true) => ("True", "AllReplicasReady", format!("{ready}/{desired} workers ready")),
        (None, false) if observed.deployment.is_none() => (
            "False",
            "DeploymentNotFound",
            "the fleet's Deployment does not exist yet".into(),
        ),
        (None, false) => (
            "False",
            "ReplicasNotReady",
            match observed.pods_not_ready {
                Some(why) => format!("{ready}/{desired} workers ready; {why}"),
                None => format!("{ready}/{desired} workers ready"),
            },
        ),
    };
    let (prog_status, prog_reason, prog_msg) = match (&problem, settled) {
        (_, true) => (
            "False",
            "RolloutComplete",
            format!("{updated}/{desired} workers updated"),
        ),
        (Some(p), false) => ("False", p.reason, p.message.clone()),
        (None, false) => (
            "True",
            "RolloutInProgress",
            format!("{updated}/{desired} updated, {ready} ready, {replicas} existing"),
        ),
    };
    let (deg_status, deg_reason, deg_msg) = match &problem {
        Some(p) => ("True", p.reason, p.message.clone()),
        None => ("False", "AsExpected", "no problems found".to_owned()),
    };

    let cond = |type_: &str, status: &str, reason: &str, message: String| {
        let last_transition_time = old
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message,
            observed_generation: generation,
            last_transition_time,
        }
    };

    let total_ready = i64::from(ready) * i64::from(hw.spec.slots);
    let (slots, utilization, queued) = match observed.scaling.and_then(|sc| sc.slots) {
        Some((used, total, queued)) => (
            SlotStatus {
                total,
                used: Some(used),
            },
            (total > 0).then(|| (used as f64 / total as f64 * 100.0).round() / 100.0),
            Some(queued),
        ),
        None => (
            SlotStatus {
                total: total_ready,
                used: None,
            },
            None,
            None,
        ),
    };
    let mut conditions = vec![
        cond(READY, ready_status, ready_reason, ready_msg),
        cond(PROGRESSING, prog_status, prog_reason, prog_msg),
        cond(DEGRADED, deg_status, deg_reason, deg_msg),
    ];
    if let Some(sc) = observed.scaling {
        // No figures and no problem: no read has finished yet.
        let waiting = sc.slots.is_none();
        let (status, reason, message) = match (&sc.problem, waiting) {
            (Some(p), _) => (
                "False",
                p.reason,
                format!("{}; the fleet keeps {desired} workers", p.message),
            ),
            (None, true) => ("True", "WaitingForSignals", "reading the engine's figures".to_owned()),
            (None, false) => (
                "True",
                "SignalsRead",
                "reading slot use and queued work from the engine".to_owned(),
            ),
        };
        conditions.push(cond(SCALING_ACTIVE, status, reason, message));
        let (status, reason, message) = match &sc.limit {
            Some((reason, message)) => ("True", *reason, message.clone()),
            None => (
                "False",
                "WithinLimits",
                "the fleet has the size demand asks for".to_owned(),
            ),
        };
        conditions.push(cond(SCALING_LIMITED, status, reason, message));
    }
    HatchetWorkerStatus {
        observed_generation: generation,
        replicas,
        ready_replicas: ready,
        updated_replicas: updated,
        selector: Some(selector_string(&hw.metadata.name.clone().unwrap_or_default())),
        slots: Some(slots),
        utilization,
        desired_replicas: Some(desired),
        queued,
        last_scale_time: observed.scaling.and_then(|sc| sc.last_scale_time.clone()),
        scale_reason: observed.scaling.and_then(|sc| sc.reason.clone()),
        actions: observed.scaling.map(|sc| sc.actions.clone()).unwrap_or_default(),
        conditions,
    }
}

/// Conditions whose status or reason differ between `old` and `new` (what deserves an Event).
pub fn transitions(old: &[Condition], new: &[Condition]) -> Vec<Transition> {
    new.iter()
        .filter(|n| {
            !old.iter()
                .any(|o| o.type_ == n.type_ && o.status == n.status && o.reason == n.reason)
        })
        .map(|n| Transition {
            type_: n.type_.clone(),
            status: n.status.clone(),
            reason: n.reason.clone(),
            message: n.message.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};
    use k8s_openapi::jiff::Timestamp;
    use serde_json::json;

    use super::*;
    use crate::desired::fixtures::mk_hw;

    fn t(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    /// A Deployment with generation 2, spec.replicas `want`, and the given status counts.
    fn mk_dep(want: i32, observed_gen: i64, replicas: i32, updated: i32, ready: i32) -> Deployment {
        let mut d = Deployment {
            spec: DeploymentSpec {
                replicas: Some(want),
                ..DeploymentSpec::default()
            },
            status: Some(DeploymentStatus {
                observed_generation: Some(observed_gen),
                replicas: Some(replicas),
                updated_replicas: Some(updated),
                ready_replicas: Some(ready),
                available_replicas: Some(ready),
                ..DeploymentStatus::default()
            }),
            ..Deployment::default()
        };
        d.metadata.generation = Some(2);
        d
    }

    /// What the reconciler observes when the Deployment exists and nothing is wrong.
    fn fine(d: &Deployment) -> Observed<'_> {
        Observed {
            deployment: Some(d),
            problem: None,
            pods_not_ready: None,
            desired_replicas: 2,
            scaling: None,
        }
    }

    fn get<'a>(s: &'a HatchetWorkerStatus, type_: &str) -> (&'a str, &'a str) {
        let c = s.conditions.iter().find(|c| c.type_ == type_).unwrap();
        (c.status.as_str(), c.reason.as_str())
    }

    #[test]
    fn conditions_table() {
        let secret = Problem {
            reason: "SecretNotFound",
            message: "Secret team/tok not found".into(),
        };
        let hw = mk_hw(json!({"replicas": 2}));
        let settled = mk_dep(2, 2, 2, 2, 2);
        let rolling = mk_dep(2, 2, 3, 1, 2);
        let stale = mk_dep(2, 1, 2, 2, 2);
        let scaling = mk_dep(1, 2, 1, 1, 1);
        type Row<'a> = (
            &'a str,
            Option<&'a Deployment>,
            Option<&'a Problem>,
            [(&'a str, &'a str); 3],
        );
        let rows: Vec<Row<'_>> = vec![
            (
                "no deployment yet",
                None,
                None,
                [
                    ("False", "DeploymentNotFound"),
                    ("True", "RolloutInProgress"),
                    ("False", "AsExpected"),
                ],
            ),
            (
                "settled",
                Some(&settled),
                None,
                [
                    ("True", "AllReplicasReady"),
                    ("False", "RolloutComplete"),
                    ("False", "AsExpected"),
                ],
            ),
            (
                "rolling",
                Some(&rolling),
                None,
                [
                    ("False", "ReplicasNotReady"),
                    ("True", "RolloutInProgress"),
                    ("False", "AsExpected"),
                ],
            ),
            (
                "generation not observed",
                Some(&stale),
                None,
                [
                    ("False", "ReplicasNotReady"),
                    ("True", "RolloutInProgress"),
                    ("False", "AsExpected"),
                ],
            ),
            (
                "spec.replicas not applied",
                Some(&scaling),
                None,
                [
                    ("False", "ReplicasNotReady"),
                    ("True", "RolloutInProgress"),
                    ("False", "AsExpected"),
                ],
            ),
            (
                "secret gone, fleet still up",
                Some(&settled),
                Some(&secret),
                [
                    ("True", "AllReplicasReady"),
                    ("False", "RolloutComplete"),
                    ("True", "SecretNotFound"),
                ],
            ),
            (
                "secret missing from the start",
                None,
                Some(&secret),
                [
                    ("False", "SecretNotFound"),
                    ("False", "SecretNotFound"),
                    ("True", "SecretNotFound"),
                ],
            ),
        ];
        for (what, dep, problem, want) in rows {
            let s = compute_status(
                &hw,
                Observed {
                    deployment: dep,
                    problem,
                    pods_not_ready: None,
                    desired_replicas: 2,
                    scaling: None,
                },
                &t(100),
            );
            let got = [get(&s, READY), get(&s, PROGRESSING), get(&s, DEGRADED)];
            assert_eq!(got, want, "{what}");
            assert_eq!(s.observed_generation, Some(3), "{what}");
        }
    }

    #[test]
    fn counts_selector_and_slots() {
        let hw = mk_hw(json!({"replicas": 2, "slots": 10}));
        let d = mk_dep(2, 2, 3, 1, 2);
        let s = compute_status(&hw, fine(&d), &t(1));
        assert_eq!((s.replicas, s.updated_replicas, s.ready_replicas), (3, 1, 2));
        assert_eq!(s.slots.unwrap().total, 20);
        assert_eq!(
            s.selector.as_deref(),
            Some("app.kubernetes.io/name=hatchet-worker,hatchet.run/fleet=fleet")
        );
    }

    #[test]
    fn unready_pods_say_why_in_the_ready_message() {
        let hw = mk_hw(json!({"replicas": 2}));
        let d = mk_dep(2, 2, 2, 2, 1);
        let why = "pod w-1: the worker exits with code 1: Error: refused";
        let observed = Observed {
            pods_not_ready: Some(why),
            ..fine(&d)
        };
        let s = compute_status(&hw, observed, &t(1));
        let ready = s.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(ready.reason, "ReplicasNotReady");
        assert_eq!(ready.message, format!("1/2 workers ready; {why}"));
        // A settled fleet says nothing of pods (a draining one is unready on purpose).
        let settled = mk_dep(2, 2, 2, 2, 2);
        let s = compute_status(
            &hw,
            Observed {
                pods_not_ready: Some(why),
                ..fine(&settled)
            },
            &t(1),
        );
        let ready = s.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(
            (ready.reason.as_str(), ready.message.as_str()),
            ("AllReplicasReady", "2/2 workers ready")
        );
    }

    #[test]
    fn progress_deadline_is_degraded() {
        let hw = mk_hw(json!({"replicas": 2}));
        let mut d = mk_dep(2, 2, 2, 2, 0);
        d.status.as_mut().unwrap().conditions = Some(vec![DeploymentCondition {
            type_: Some("Progressing".into()),
            status: Some("False".into()),
            reason: Some("ProgressDeadlineExceeded".into()),
            ..DeploymentCondition::default()
        }]);
        let s = compute_status(&hw, fine(&d), &t(1));
        assert_eq!(get(&s, DEGRADED), ("True", "ProgressDeadlineExceeded"));
    }

    #[test]
    fn recomputing_an_unchanged_fleet_is_a_fixed_point() {
        let mut hw = mk_hw(json!({"replicas": 2}));
        let d = mk_dep(2, 2, 2, 2, 2);
        let first = compute_status(&hw, fine(&d), &t(100));
        hw.status = Some(first.clone());
        let again = compute_status(&hw, fine(&d), &t(200));
        assert_eq!(first, again, "same inputs later: same status, same transition times");
        assert!(transitions(&first.conditions, &again.conditions).is_empty());
    }

    #[test]
    fn transition_times_move_only_on_change_and_transitions_are_reported() {
        let mut hw = mk_hw(json!({"replicas": 2}));
        let d = mk_dep(2, 2, 2, 2, 2);
        let ok = compute_status(&hw, fine(&d), &t(100));
        hw.status = Some(ok.clone());
        let p = Problem {
            reason: "SecretNotFound",
            message: "gone".into(),
        };
        let bad = compute_status(
            &hw,
            Observed {
                deployment: Some(&d),
                problem: Some(&p),
                pods_not_ready: None,
                desired_replicas: 2,
                scaling: None,
            },
            &t(200),
        );
        let deg = bad.conditions.iter().find(|c| c.type_ == DEGRADED).unwrap();
        assert_eq!(deg.last_transition_time, t(200));
        let ready = bad.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(ready.last_transition_time, t(100), "Ready did not change");
        let tr = transitions(&ok.conditions, &bad.conditions);
        assert_eq!(tr.len(), 1);
        assert_eq!(
            (tr[0].type_.as_str(), tr[0].reason.as_str()),
            (DEGRADED, "SecretNotFound")
        );
    }

    fn scaling() -> Scaling {
        Scaling {
            slots: Some((34, 40, 25)),
            actions: vec!["wf:task".into()],
            reason: Some("34/40 slots used, 25 queued: 4 → 12".into()),
            problem: None,
            limit: None,
            last_scale_time: Some(t(50)),
        }
    }

    #[test]
    fn autoscaled_fleets_report_slots_queue_decision_and_scaling_conditions() {
        let hw = mk_hw(json!({"replicas": 1, "slots": 10, "autoscaling": {"maxReplicas": 12}}));
        let d = mk_dep(12, 2, 4, 4, 4);
        let sc = scaling();
        let s = compute_status(
            &hw,
            Observed {
                desired_replicas: 12,
                scaling: Some(&sc),
                ..fine(&d)
            },
            &t(100),
        );
        assert_eq!(
            s.slots,
            Some(SlotStatus {
                total: 40,
                used: Some(34)
            })
        );
        assert_eq!(
            (s.utilization, s.queued, s.desired_replicas),
            (Some(0.85), Some(25), Some(12))
        );
        assert_eq!(s.scale_reason.as_deref(), Some("34/40 slots used, 25 queued: 4 → 12"));
        assert_eq!(
            (s.last_scale_time.clone(), s.actions.clone()),
            (Some(t(50)), vec!["wf:task".to_owned()])
        );
        assert_eq!(get(&s, SCALING_ACTIVE), ("True", "SignalsRead"));
        assert_eq!(get(&s, SCALING_LIMITED), ("False", "WithinLimits"));
        assert_eq!(get(&s, READY).0, "False", "12 wanted, 4 ready");

        let failing = Scaling {
            problem: Some(Problem {
                reason: "EngineUnreachable",
                message: "GET http://e/api: cannot connect".into(),
            }),
            limit: Some(("AtMaxReplicas", "demand asks for more than maxReplicas 12".into())),
            ..sc
        };
        let s = compute_status(
            &hw,
            Observed {
                desired_replicas: 12,
                scaling: Some(&failing),
                ..fine(&d)
            },
            &t(100),
        );
        let active = s.conditions.iter().find(|c| c.type_ == SCALING_ACTIVE).unwrap();
        assert_eq!(
            (active.status.as_str(), active.reason.as_str()),
            ("False", "EngineUnreachable")
        );
        assert_eq!(
            active.message,
            "GET http://e/api: cannot connect; the fleet keeps 12 workers"
        );
        assert_eq!(get(&s, SCALING_LIMITED), ("True", "AtMaxReplicas"));
    }

    #[test]
    fn without_autoscaling_there_are_no_scaling_conditions_or_figures() {
        let hw = mk_hw(json!({"replicas": 2, "slots": 10}));
        let d = mk_dep(2, 2, 2, 2, 2);
        let s = compute_status(&hw, fine(&d), &t(1));
        assert_eq!(s.conditions.len(), 3);
        assert_eq!((s.utilization, s.queued, s.desired_replicas), (None, None, Some(2)));
        assert_eq!(s.slots, Some(SlotStatus { total: 20, used: None }));
    }
}

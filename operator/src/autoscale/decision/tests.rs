use std::time::Duration;

use super::*;
use crate::crd::ScalingPolicy;

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// 10 slots per worker, target 0.5 (5 busy slots per pod), min 0, max 10, idle 60 s,
/// up immediate, down 30 s window, no step limits unless a test sets them.
fn rules() -> Rules {
    Rules {
        min: 0,
        max: 10,
        slots_per_worker: 10,
        target: 0.5,
        tolerance: 0.1,
        count_queued: true,
        idle_before_zero: s(60),
        up: Pace {
            window: Duration::ZERO,
            policies: vec![],
            select: SelectPolicy::Max,
        },
        down: Pace {
            window: s(30),
            policies: vec![],
            select: SelectPolicy::Max,
        },
    }
}

fn obs(used: i64, total: i64, queued: i64) -> Observation {
    Observation {
        slots_used: used,
        slots_total: total,
        queued,
        actions_known: true,
    }
}

#[test]
fn demand_alone_sets_the_size() {
    // (what, observation, current, want replicas, want limit)
    let rows: Vec<(&str, Observation, i32, i32, Option<Limit>)> = vec![
        ("busy slots at target: kept", obs(10, 20, 0), 2, 2, None),
        ("within tolerance: kept", obs(11, 20, 0), 2, 2, None),
        ("queued counts as demand", obs(10, 20, 15), 2, 5, None),
        ("from zero on queued work", obs(0, 0, 3), 0, 1, None),
        ("from zero, a burst", obs(0, 0, 42), 0, 9, None),
        ("capped at max", obs(20, 20, 200), 2, 10, Some(Limit::AtMax)),
        ("nothing queued at zero stays zero", obs(0, 0, 0), 0, 0, None),
        ("ceil: 6 slots need 2 pods", obs(6, 10, 0), 1, 2, None),
    ];
    for (what, o, current, want, want_limit) in rows {
        let d = decide(&o, current, &rules(), &History::default(), s(100));
        assert_eq!((d.replicas, d.limit), (want, want_limit), "{what}: {}", d.reason);
    }
}

#[test]
fn queued_work_is_ignored_when_not_counted() {
    let r = Rules {
        count_queued: false,
        ..rules()
    };
    let d = decide(&obs(10, 20, 50), 2, &r, &History::default(), s(1));
    assert_eq!(d.replicas, 2, "{}", d.reason);
}

#[test]
fn min_replicas_holds_and_says_so() {
    let r = Rules { min: 2, ..rules() };
    let h = History::starting_at(s(0), 2);
    let d = decide(&obs(0, 20, 0), 2, &r, &h, s(100));
    assert_eq!((d.replicas, d.limit), (2, Some(Limit::AtMin)), "{}", d.reason);
    assert!(d.reason.contains("at minReplicas 2"), "{}", d.reason);
}

#[test]
fn the_reason_reads_as_a_sentence() {
    let d = decide(
        &obs(34, 40, 25),
        4,
        &Rules { max: 20, ..rules() },
        &History::default(),
        s(1),
    );
    assert_eq!(d.reason, "34/40 slots used, 25 queued: 4 → 12");
    let d = decide(&obs(10, 20, 0), 2, &rules(), &History::default(), s(1));
    assert_eq!(d.reason, "10/20 slots used, 0 queued: 2 kept");
}

#[test]
fn the_scale_down_window_keeps_the_highest_recent_need() {
    let r = rules();
    let mut h = History::starting_at(s(0), 6);
    // Demand drops at once: the window (30 s) keeps 6 until it has passed.
    for t in [5, 10, 25] {
        let o = obs(5, 60, 0);
        let d = decide(&o, 6, &r, &h, s(t));
        assert_eq!(
            (d.replicas, d.limit),
            (6, Some(Limit::DownWindow)),
            "t={t}: {}",
            d.reason
        );
        h.record(s(t), &o, &r, 6, &d);
    }
    let o = obs(5, 60, 0);
    let d = decide(&o, 6, &r, &h, s(36));
    assert_eq!(d.replicas, 1, "t=36, the 6 of t=0 is out of the window: {}", d.reason);
}

#[test]
fn a_restarted_operator_does_not_shrink_before_the_window() {
    let h = History::starting_at(s(1000), 8);
    let d = decide(&obs(0, 80, 0), 8, &Rules { min: 1, ..rules() }, &h, s(1005));
    assert_eq!(d.replicas, 8, "{}", d.reason);
}

#[test]
fn the_scale_up_window_waits_for_demand_to_last() {
    let r = Rules {
        up: Pace {
            window: s(20),
            ..rules().up
        },
        ..rules()
    };
    let mut h = History::starting_at(s(0), 2);
    let o = obs(10, 20, 20);
    let d = decide(&o, 2, &r, &h, s(5));
    assert_eq!((d.replicas, d.limit), (2, Some(Limit::UpWindow)), "{}", d.reason);
    h.record(s(5), &o, &r, 2, &d);
    let d = decide(&o, 2, &r, &h, s(21));
    assert_eq!(d.replicas, 6, "the 2 of t=0 left the window: {}", d.reason);
}

#[test]
fn step_limits_pace_growth_and_shrinking() {
    let pods = |v, p| ScalingPolicy {
        kind: PolicyKind::Pods,
        value: v,
        period_seconds: p,
    };
    let pct = |v, p| ScalingPolicy {
        kind: PolicyKind::Percent,
        value: v,
        period_seconds: p,
    };
    let pace = |policies: Vec<ScalingPolicy>, select| {
        Pace::from_spec(&ScalingRules {
            stabilization_window_seconds: 0,
            policies,
            select_policy: select,
        })
    };
    // (what, up pace, down pace, history changes, current, observation, want)
    let no_pace = pace(vec![], SelectPolicy::Max);
    type Row = (&'static str, Pace, Pace, Vec<(u64, i32, i32)>, i32, Observation, i32);
    let rows: Vec<Row> = vec![
        (
            "up: 2 pods per 10 s",
            pace(vec![pods(2, 10)], SelectPolicy::Max),
            no_pace.clone(),
            vec![],
            1,
            obs(5, 10, 40),
            3,
        ),
        (
            "up: 2 pods per 10 s, 2 added 5 s ago",
            pace(vec![pods(2, 10)], SelectPolicy::Max),
            no_pace.clone(),
            vec![(95, 1, 3)],
            3,
            obs(15, 30, 40),
            3,
        ),
        (
            "up: max of 2 pods and 100 % from 4",
            pace(vec![pods(2, 10), pct(100, 10)], SelectPolicy::Max),
            no_pace.clone(),
            vec![],
            4,
            obs(20, 40, 100),
            8,
        ),
        (
            "up: min of 2 pods and 100 % from 4",
            pace(vec![pods(2, 10), pct(100, 10)], SelectPolicy::Min),
            no_pace.clone(),
            vec![],
            4,
            obs(20, 40, 100),
            6,
        ),
        (
            "up: percent from zero still starts one",
            pace(vec![pct(50, 10)], SelectPolicy::Max),
            no_pace.clone(),
            vec![],
            0,
            obs(0, 0, 30),
            1,
        ),
        (
            "up: disabled",
            pace(vec![], SelectPolicy::Disabled),
            no_pace.clone(),
            vec![],
            2,
            obs(10, 20, 40),
            2,
        ),
        (
            "down: 50 % per 30 s",
            no_pace.clone(),
            pace(vec![pct(50, 30)], SelectPolicy::Max),
            vec![],
            8,
            obs(5, 80, 0),
            4,
        ),
        (
            "down: 50 % per 30 s, already halved",
            no_pace.clone(),
            pace(vec![pct(50, 30)], SelectPolicy::Max),
            vec![(90, 8, 4)],
            4,
            obs(5, 40, 0),
            4,
        ),
        (
            "down: 1 pod per 30 s",
            no_pace.clone(),
            pace(vec![pods(1, 30)], SelectPolicy::Max),
            vec![],
            8,
            obs(5, 80, 0),
            7,
        ),
        (
            "down: disabled",
            no_pace.clone(),
            pace(vec![], SelectPolicy::Disabled),
            vec![],
            8,
            obs(5, 80, 0),
            8,
        ),
    ];
    for (what, up, down, changes, current, o, want) in rows {
        let r = Rules {
            up,
            down: Pace {
                window: Duration::ZERO,
                ..down
            },
            ..rules()
        };
        let h = History {
            changes: changes.into_iter().map(|(t, f, to)| (s(t), f, to)).collect(),
            ..History::default()
        };
        let d = decide(&o, current, &r, &h, s(100));
        assert_eq!(d.replicas, want, "{what}: {}", d.reason);
        if want != d.recommendation && want != current {
            assert!(
                matches!(d.limit, Some(Limit::UpPace | Limit::DownPace)),
                "{what}: {:?}",
                d.limit
            );
        }
    }
}

#[test]
fn zero_only_after_the_idle_period_with_nothing_running_or_queued() {
    let r = Rules {
        down: Pace {
            window: Duration::ZERO,
            ..rules().down
        },
        ..rules()
    };
    let mut h = History::default();
    let idle = obs(0, 30, 0);
    // Idle from t=0: one pod stays until 60 s have passed.
    for t in [0, 10, 59] {
        let d = decide(&idle, if t == 0 { 3 } else { 1 }, &r, &h, s(t));
        assert_eq!(
            (d.replicas, d.limit),
            (1, Some(Limit::IdleBeforeZero)),
            "t={t}: {}",
            d.reason
        );
        h.record(s(t), &idle, &r, if t == 0 { 3 } else { 1 }, &d);
    }
    let d = decide(&idle, 1, &r, &h, s(60));
    assert_eq!(d.replicas, 0, "{}", d.reason);
    assert!(d.reason.ends_with("1 → 0 (idle for 60s)"), "{}", d.reason);

    // A task running or queued restarts the idle clock.
    let busy = obs(1, 10, 0);
    let d = decide(&busy, 1, &r, &h, s(61));
    h.record(s(61), &busy, &r, 1, &d);
    let d = decide(&idle, 1, &r, &h, s(100));
    assert_eq!(d.replicas, 1, "idle again only since 100 s: {}", d.reason);
    h.record(s(100), &idle, &r, 1, &d);
    let d = decide(&idle, 1, &r, &h, s(159));
    assert_eq!(d.replicas, 1, "{}", d.reason);
    let d = decide(&idle, 1, &r, &h, s(160));
    assert_eq!(d.replicas, 0, "{}", d.reason);

    // With minReplicas above zero, idleness never empties the fleet.
    let d = decide(&idle, 1, &Rules { min: 1, ..r.clone() }, &h, s(1000));
    assert_eq!(d.replicas, 1);
}

#[test]
fn an_empty_fleet_with_unknown_actions_starts_one_worker() {
    let unknown = Observation {
        actions_known: false,
        ..obs(0, 0, 0)
    };
    let d = decide(&unknown, 0, &rules(), &History::default(), s(1));
    assert_eq!(d.replicas, 1, "{}", d.reason);
    assert!(d.reason.contains("actions are unknown"), "{}", d.reason);
    // Nor does it go to zero before a worker registered, however long it waits.
    let h = History {
        idle_since: Some(s(0)),
        ..History::default()
    };
    let d = decide(&unknown, 1, &rules(), &h, s(1000));
    assert_eq!(d.replicas, 1, "{}", d.reason);
}

#[test]
fn history_forgets_what_no_window_needs() {
    let r = rules();
    let mut h = History::default();
    for t in 0..100 {
        let o = obs(5, 10, 0);
        let d = decide(&o, 1, &r, &h, s(t));
        h.record(s(t), &o, &r, 1, &d);
    }
    assert!(h.recommendations.len() <= 31, "{}", h.recommendations.len());
    assert!(h.changes.is_empty());
}

#[test]
fn rules_follow_the_spec_defaults() {
    let a: Autoscaling = serde_json::from_value(serde_json::json!({"maxReplicas": 5})).unwrap();
    let r = Rules::from_spec(&a, 4);
    assert_eq!((r.min, r.max, r.slots_per_worker), (1, 5, 4));
    assert!((r.target - 0.75).abs() < 1e-9 && (r.tolerance - 0.1).abs() < 1e-9);
    assert!(r.count_queued);
    assert_eq!(r.up.window, Duration::ZERO);
    assert!(r.up.policies.is_empty());
    assert_eq!(r.down.window, s(60));
    assert_eq!(r.down.policies, vec![(PolicyKind::Percent, 50, s(30))]);
    assert_eq!(r.idle_before_zero, s(120));
}

#[test]
fn a_binding_window_is_named_as_the_reason_not_the_idle_period() {
    let r = Rules { max: 20, ..rules() };
    let mut h = History::starting_at(s(0), 20);
    let busy = obs(100, 200, 0);
    let d = decide(&busy, 20, &r, &h, s(100));
    h.record(s(100), &busy, &r, 20, &d);
    let d = decide(&obs(0, 200, 0), d.replicas, &r, &h, s(110));
    assert_eq!(d.limit, Some(Limit::DownWindow), "{}", d.reason);
    assert!(d.reason.contains("keeping the highest need"), "{}", d.reason);
    assert!(!d.reason.contains("idle for"), "{}", d.reason);
}

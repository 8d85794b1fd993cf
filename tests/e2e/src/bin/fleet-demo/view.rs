//! The live view: the fleet as `kubectl get hw -w` would show it, plus slots and finished tasks
//! per pod, the runs so far and the autoscaler's last decisions. Pure text, redrawn each second.

use std::fmt::Write as _;
use std::time::Duration;

use crate::observe::Fleet;
use crate::runs::Counts;

/// The whole screen for one instant.
pub(crate) fn render(
    title: &str,
    phase: &str,
    fleet: &Fleet,
    runs: Counts,
    decisions: &[(Duration, i64, i64, &str)],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{title}   t={:>5.1}s   {phase}", fleet.at.as_secs_f64());
    let (used, total) = fleet.slots.map_or(("-".to_owned(), "-".to_owned()), |(u, t)| {
        (u.to_string(), t.to_string())
    });
    let utilization = fleet
        .slots
        .filter(|(_, t)| *t > 0)
        .map_or("-".to_owned(), |(u, t)| format!("{:.0} %", 100.0 * u as f64 / t as f64));
    let _ = writeln!(
        out,
        "fleet: desired {}   pods ready {}/{}   slots {used}/{total} used ({utilization})   queued {}",
        opt(fleet.desired),
        fleet.ready_pods(),
        fleet.pods.len(),
        opt(fleet.queued),
    );
    let _ = writeln!(
        out,
        "runs:  {} triggered   {} completed   {} failed   {} in flight",
        runs.triggered, runs.completed, runs.failed, runs.pending
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  {:<34} {:<10} {:<26} {:>8}",
        "POD", "STATE", "SLOTS USED", "FINISHED"
    );
    for p in &fleet.pods {
        let state = match (p.terminating, p.ready) {
            (true, _) => "draining",
            (false, true) => "ready",
            (false, false) => "starting",
        };
        let slots = p
            .slots
            .map_or("-".to_owned(), |(u, t)| format!("{u:.0}/{t:.0} {}", bar(u, t)));
        let finished = p.finished.map_or("-".to_owned(), |f| format!("{f:.0}"));
        let _ = writeln!(out, "  {:<34} {state:<10} {slots:<26} {finished:>8}", p.name);
    }
    if !decisions.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "autoscaler decisions:");
        for (at, from, to, reason) in decisions.iter().rev().take(4).rev() {
            let _ = writeln!(out, "  t={:>5.1}s  {from} → {to}   {reason}", at.as_secs_f64());
        }
    }
    out
}

/// One line for logs (when the output is not a terminal).
pub(crate) fn line(phase: &str, fleet: &Fleet, runs: Counts) -> String {
    let slots = fleet.slots.map_or("-".to_owned(), |(u, t)| format!("{u}/{t}"));
    format!(
        "t={:>5.1}s {phase}: desired {} ready {} slots {slots} queued {} | runs {}/{} done, {} failed",
        fleet.at.as_secs_f64(),
        opt(fleet.desired),
        fleet.ready_pods(),
        opt(fleet.queued),
        runs.completed,
        runs.triggered,
        runs.failed,
    )
}

fn opt(v: Option<i64>) -> String {
    v.map_or("-".to_owned(), |v| v.to_string())
}

/// A bar of `total` cells, `used` of them filled.
fn bar(used: f64, total: f64) -> String {
    let total = total.clamp(0.0, 16.0) as usize;
    let used = (used.max(0.0) as usize).min(total);
    format!("{}{}", "█".repeat(used), "·".repeat(total - used))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::Pod;

    #[test]
    fn the_view_shows_the_fleet_each_pod_and_the_last_decisions() {
        let fleet = Fleet {
            at: Duration::from_millis(12_300),
            desired: Some(3),
            slots: Some((6, 8)),
            queued: Some(5),
            reason: String::new(),
            pods: vec![
                Pod {
                    name: "burst-1".into(),
                    ready: true,
                    terminating: false,
                    slots: Some((4.0, 4.0)),
                    finished: Some(7.0),
                },
                Pod {
                    name: "burst-2".into(),
                    ready: false,
                    terminating: true,
                    slots: Some((2.0, 4.0)),
                    finished: None,
                },
                Pod {
                    name: "burst-3".into(),
                    ..Pod::default()
                },
            ],
        };
        let runs = Counts {
            triggered: 48,
            completed: 20,
            failed: 0,
            pending: 28,
            retried: 0,
        };
        let decisions = [(Duration::from_secs(3), 1, 3, "4/4 slots used, 44 queued: 1 → 3")];
        let text = render("demo", "burst 1", &fleet, runs, &decisions);
        for want in [
            "t= 12.3s   burst 1",
            "desired 3   pods ready 1/3   slots 6/8 used (75 %)   queued 5",
            "48 triggered   20 completed   0 failed   28 in flight",
            "burst-1",
            "4/4 ████",
            "draining",
            "2/4 ██··",
            "starting",
            "t=  3.0s  1 → 3   4/4 slots used, 44 queued: 1 → 3",
        ] {
            assert!(text.contains(want), "{want:?} in:\n{text}");
        }
        assert_eq!(
            line("burst 1", &fleet, runs),
            "t= 12.3s burst 1: desired 3 ready 1 slots 6/8 queued 5 | runs 20/48 done, 0 failed"
        );
    }
}

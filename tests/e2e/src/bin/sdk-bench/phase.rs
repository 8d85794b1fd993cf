//! What one load phase's tasks say, summarised from the engine's timestamps (pure).

use crate::engine::TaskTimes;
use crate::load::Observed;
use crate::stats::{deltas, max_overlap, percentile, rate, span};

/// A phase's figures; latencies in seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Phase {
    pub(crate) tasks: usize,
    /// Tasks the engine recorded as completed.
    pub(crate) completed: usize,
    /// Tasks per second from the first creation to the last completion the engine recorded.
    pub(crate) throughput: Option<f64>,
    /// From the first task created to the last.
    pub(crate) created_span: Option<f64>,
    pub(crate) to_assigned: Latency,
    pub(crate) to_started: Latency,
    pub(crate) to_finished: Latency,
    pub(crate) to_completed: Latency,
    /// The worker's STARTED to its COMPLETED timestamp.
    pub(crate) run_time: Latency,
    /// The worker's COMPLETED timestamp to the engine recording the completion.
    pub(crate) report_lag: Latency,
    /// Most tasks holding a slot at once as the engine saw it: assigned, not yet completed.
    pub(crate) max_assigned: usize,
    /// Most tasks running at once by the worker's own STARTED / COMPLETED timestamps.
    pub(crate) max_running: usize,
    /// Most tasks the engine's run list showed RUNNING when polled (4 times a second).
    pub(crate) shown_running: usize,
    /// Most tasks holding a scheduler slot (`v1_task_runtime`) when polled.
    pub(crate) held: usize,
}

/// Median, 99th percentile and largest of a set of durations.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Latency {
    pub(crate) p50: Option<f64>,
    pub(crate) p99: Option<f64>,
    pub(crate) max: Option<f64>,
}

impl Latency {
    fn of(values: &[f64]) -> Self {
        Self {
            p50: percentile(values, 50.0),
            p99: percentile(values, 99.0),
            max: percentile(values, 100.0),
        }
    }
}

/// Both ends of one task's interval, when known.
type Ends = (Option<f64>, Option<f64>);

pub(crate) fn summarize(tasks: &[TaskTimes]) -> Phase {
    let lat = |f: &dyn Fn(&TaskTimes) -> Ends| Latency::of(&deltas(tasks.iter().map(f)));
    let created: Vec<f64> = tasks.iter().map(|t| t.created).collect();
    let completed: Vec<f64> = tasks.iter().filter_map(|t| t.completed).collect();
    let intervals =
        |f: &dyn Fn(&TaskTimes) -> Option<(f64, f64)>| -> Vec<(f64, f64)> { tasks.iter().filter_map(f).collect() };
    Phase {
        tasks: tasks.len(),
        completed: completed.len(),
        throughput: rate(completed.len(), &created, &completed),
        created_span: span(&created),
        to_assigned: lat(&|t| (Some(t.created), t.assigned)),
        to_started: lat(&|t| (Some(t.created), t.started)),
        to_finished: lat(&|t| (Some(t.created), t.finished)),
        to_completed: lat(&|t| (Some(t.created), t.completed)),
        run_time: lat(&|t| (t.started, t.finished)),
        report_lag: lat(&|t| (t.finished, t.completed)),
        max_assigned: max_overlap(&intervals(&|t| Some((t.assigned?, t.completed?)))),
        max_running: max_overlap(&intervals(&|t| Some((t.started?, t.finished?)))),
        shown_running: 0,
        held: 0,
    }
}

/// [`summarize`] with what the bench saw while polling.
pub(crate) fn observed(o: &Observed) -> Phase {
    Phase {
        shown_running: o.max_running,
        held: o.max_held,
        ..summarize(&o.tasks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(created: f64, started: f64, finished: f64) -> TaskTimes {
        TaskTimes {
            created,
            assigned: Some(created + 0.01),
            sent: Some(created + 0.02),
            started: Some(started),
            finished: Some(finished),
            completed: Some(finished + 0.1),
        }
    }

    #[test]
    fn a_phase_in_figures() {
        let tasks = [task(0.0, 0.5, 1.0), task(0.5, 1.0, 1.5), task(1.0, 3.0, 3.9)];
        let p = summarize(&tasks);
        assert_eq!((p.tasks, p.completed), (3, 3));
        assert_eq!(p.to_started.p50, Some(0.5));
        assert_eq!(p.to_started.max, Some(2.0));
        assert_eq!(p.throughput, Some(3.0 / 4.0));
        assert_eq!(p.created_span, Some(1.0));
        assert_eq!(p.max_running, 1);
        assert_eq!(p.max_assigned, 3, "all three hold a slot from 1.01 to 1.1");
        let lag = p.report_lag.p50.unwrap();
        assert!((lag - 0.1).abs() < 1e-9);
    }

    #[test]
    fn an_empty_phase_has_no_figures() {
        let p = summarize(&[]);
        assert_eq!(p.tasks, 0);
        assert_eq!(p.throughput, None);
        assert_eq!(p.to_started.p50, None);
    }
}

//! Results the engine acknowledged just before an outage, sent again once it is back; and
//! results whose own report met the outage, kept to answer the engine if it assigns the same
//! task run again ([`UncertainResults`]).
//! hatchet-lite can acknowledge a result and then lose it when its database goes away in that
//! moment (seen once in the database-restart test: the run timed out and ran a second time).
//! So the final events acknowledged within [`RESEND_WINDOW`] before a report first met a
//! failure are reported again when that report gets through; the engine takes a result for a
//! task run that already has one as a no-op.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use hatchet_proto::{StepActionEvent, StepActionEventType};
use tokio::time::Instant;

/// What the worker remembers of its result reports, behind one lock in the worker's state.
#[derive(Debug, Default)]
pub(crate) struct Reports {
    recent: RecentResults<StepActionEvent>,
    uncertain: UncertainResults,
}

impl Reports {
    /// `event` got through after `tries` tries, the first begun at `started`: remembers it,
    /// and returns the results to send again (those acknowledged just before a report first
    /// met a failure).
    pub(crate) fn reported(&mut self, started: Instant, tries: u32, event: StepActionEvent) -> Vec<StepActionEvent> {
        let now = Instant::now();
        let again = if tries > 1 {
            self.recent.take_before(started)
        } else {
            Vec::new()
        };
        let kind = event.event_type;
        if tries > 1 && kind == StepActionEventType::StepEventTypeCompleted as i32 {
            self.uncertain
                .record(now, &event.task_run_external_id, event.event_payload.clone());
        }
        if kind == StepActionEventType::StepEventTypeCompleted as i32
            || kind == StepActionEventType::StepEventTypeFailed as i32
        {
            self.recent.record(now, event);
        }
        again
    }

    /// The remembered completion of `task_run` whose report met an outage, if recent.
    pub(crate) fn uncertain_result(&mut self, task_run: &str) -> Option<String> {
        self.uncertain.take(Instant::now(), task_run)
    }
}

/// How far back before an outage acknowledged results are sent again.
pub(crate) const RESEND_WINDOW: Duration = Duration::from_secs(5);

/// Recently acknowledged final events, oldest first.
#[derive(Debug)]
struct RecentResults<E> {
    entries: VecDeque<(Instant, E)>,
}

impl<E> Default for RecentResults<E> {
    fn default() -> Self {
        Self {
            entries: VecDeque::new(),
        }
    }
}

impl<E> RecentResults<E> {
    /// Keeps `event`, acknowledged `at`, forgetting those older than the window.
    fn record(&mut self, at: Instant, event: E) {
        while self
            .entries
            .front()
            .is_some_and(|(t, _)| at.saturating_duration_since(*t) > RESEND_WINDOW)
        {
            self.entries.pop_front();
        }
        self.entries.push_back((at, event));
    }

    /// Takes the events acknowledged within the window before `outage_began` (each is handed
    /// out once, however many reports met the outage).
    fn take_before(&mut self, outage_began: Instant) -> Vec<E> {
        let (mut taken, mut kept) = (Vec::new(), VecDeque::new());
        for (t, e) in self.entries.drain(..) {
            if t <= outage_began && outage_began.saturating_duration_since(t) <= RESEND_WINDOW {
                taken.push(e);
            } else {
                kept.push_back((t, e));
            }
        }
        self.entries = kept;
        taken
    }
}

/// How long a result whose report met an outage is remembered.
pub(crate) const UNCERTAIN_TTL: Duration = Duration::from_secs(15 * 60);
/// At most this many such results are remembered (the oldest go first).
const UNCERTAIN_CAP: usize = 10_000;

/// Successful results whose report met a failure before it got through. hatchet-lite can
/// acknowledge such a report once its database is back and still lose it: the run then times
/// out on the engine and comes back as a retry (seen in the database-restart test). A later
/// assignment of the same task run is answered with the result instead of running the task a
/// second time. The price: a replay of that task run within [`UNCERTAIN_TTL`] is answered
/// with the same result.
#[derive(Debug, Default)]
struct UncertainResults {
    entries: HashMap<String, (Instant, String)>,
}

impl UncertainResults {
    /// Remembers the completion `payload` of `task_run`, reported at `at`.
    fn record(&mut self, at: Instant, task_run: &str, payload: String) {
        self.entries
            .retain(|_, (t, _)| at.saturating_duration_since(*t) < UNCERTAIN_TTL);
        if self.entries.len() >= UNCERTAIN_CAP
            && let Some(oldest) = self.entries.iter().min_by_key(|(_, (t, _))| *t).map(|(k, _)| k.clone())
        {
            self.entries.remove(&oldest);
        }
        self.entries.insert(task_run.to_owned(), (at, payload));
    }

    /// The remembered completion of `task_run`, if it is recent; handed out once.
    fn take(&mut self, now: Instant, task_run: &str) -> Option<String> {
        let (at, payload) = self.entries.remove(task_run)?;
        (now.saturating_duration_since(at) < UNCERTAIN_TTL).then_some(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(run: &str, kind: StepActionEventType) -> StepActionEvent {
        StepActionEvent {
            task_run_external_id: run.into(),
            event_type: kind as i32,
            event_payload: format!("{{\"run\":\"{run}\"}}"),
            ..StepActionEvent::default()
        }
    }

    #[test]
    fn a_report_through_an_outage_resends_the_ones_before_and_is_kept_as_uncertain() {
        let mut r = Reports::default();
        let done = StepActionEventType::StepEventTypeCompleted;
        assert!(r.reported(Instant::now(), 1, event("a", done)).is_empty());
        assert!(
            r.reported(
                Instant::now(),
                1,
                event("started", StepActionEventType::StepEventTypeStarted)
            )
            .is_empty()
        );
        assert_eq!(r.uncertain_result("a"), None, "acknowledged at once: certain");
        let again = r.reported(Instant::now(), 3, event("b", done));
        let runs: Vec<&str> = again.iter().map(|e| e.task_run_external_id.as_str()).collect();
        assert_eq!(runs, ["a"], "only final events are sent again");
        assert_eq!(r.uncertain_result("b").as_deref(), Some("{\"run\":\"b\"}"));
    }

    #[test]
    fn uncertain_results_answer_one_reassignment_while_recent() {
        let t0 = Instant::now();
        let mut u = UncertainResults::default();
        u.record(t0, "run-a", "{\"a\":1}".into());
        u.record(t0, "run-b", "{}".into());
        assert_eq!(
            u.take(t0 + Duration::from_secs(60), "run-a").as_deref(),
            Some("{\"a\":1}")
        );
        assert_eq!(u.take(t0 + Duration::from_secs(61), "run-a"), None, "handed out once");
        assert_eq!(u.take(t0 + UNCERTAIN_TTL, "run-b"), None, "too old");
        assert_eq!(u.take(t0, "never"), None);
        for i in 0..UNCERTAIN_CAP + 5 {
            u.record(t0, &format!("r{i}"), String::new());
        }
        assert_eq!(u.entries.len(), UNCERTAIN_CAP, "bounded");
    }

    #[test]
    fn results_just_before_an_outage_are_taken_once() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut r = RecentResults::default();
        r.record(t0, "old");
        r.record(t0 + s(6), "a");
        assert_eq!(r.entries.len(), 1, "older than the window is forgotten");
        r.record(t0 + s(8), "b");
        r.record(t0 + s(10), "after");
        assert_eq!(r.take_before(t0 + s(9)), vec!["a", "b"]);
        assert!(r.take_before(t0 + s(9)).is_empty(), "handed out once");
        assert_eq!(r.entries.len(), 1, "one acknowledged after the outage began stays");
        assert_eq!(
            r.take_before(t0 + s(16)),
            Vec::<&str>::new(),
            "too long before the outage"
        );
    }
}

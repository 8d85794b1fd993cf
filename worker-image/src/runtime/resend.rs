//! Results the engine acknowledged just before an outage, sent again once it is back.
//! hatchet-lite can acknowledge a result and then lose it when its database goes away in that
//! moment (seen once in the database-restart test: the run timed out and ran a second time).
//! So the final events acknowledged within [`RESEND_WINDOW`] before a report first met a
//! failure are reported again when that report gets through; the engine takes a result for a
//! task run that already has one as a no-op.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// How far back before an outage acknowledged results are sent again.
pub(crate) const RESEND_WINDOW: Duration = Duration::from_secs(5);

/// Recently acknowledged final events, oldest first.
#[derive(Debug)]
pub(crate) struct RecentResults<E> {
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
    pub(crate) fn record(&mut self, at: Instant, event: E) {
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
    pub(crate) fn take_before(&mut self, outage_began: Instant) -> Vec<E> {
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

#[cfg(test)]
mod tests {
    use super::*;

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

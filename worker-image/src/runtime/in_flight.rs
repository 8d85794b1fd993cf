//! The task runs in flight on this worker, as cancels, the drain deadline and `/status` find
//! them: listed from the moment an assignment arrives (so a cancel right behind it finds it)
//! until its [`Tracked`] guard drops.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Why a running task was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CancelReason {
    /// The engine sent CANCEL_STEP_RUN (cancel or timeout): report nothing.
    Engine,
    /// The drain deadline passed: report FAILED so the engine retries elsewhere.
    DrainDeadline,
    /// A waiting durable run was evicted (by this worker or the engine): report nothing, the
    /// engine runs it again.
    Evicted,
}

/// One attempt's cancel switch and the first reason it was pulled for.
#[derive(Clone, Default)]
pub(crate) struct CancelSwitch {
    token: CancellationToken,
    reason: Arc<Mutex<Option<CancelReason>>>,
}

impl CancelSwitch {
    pub(crate) fn cancel(&self, why: CancelReason) {
        self.reason.lock().expect("reason lock").get_or_insert(why);
        self.token.cancel();
    }

    /// Why the attempt was cancelled, if it was.
    pub(crate) fn reason(&self) -> Option<CancelReason> {
        *self.reason.lock().expect("reason lock")
    }

    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }
}

/// A task in flight, as `/status` shows it.
#[derive(Debug, Clone)]
pub(crate) struct InFlightTask {
    pub(crate) task_run: String,
    pub(crate) action_id: String,
    pub(crate) since: Instant,
}

struct Entry {
    action_id: String,
    /// A durable run's invocation (evictions name the invocation they stop).
    invocation: Option<i32>,
    since: Instant,
    switch: CancelSwitch,
    /// Which attempt this is: a retry of the same run on this worker replaces the entry, and
    /// the older attempt's guard must not remove the newer one.
    attempt: u64,
}

/// The runs in flight, by task run id.
#[derive(Default)]
pub(crate) struct InFlight {
    entries: Mutex<HashMap<String, Entry>>,
    attempts: AtomicU64,
}

impl InFlight {
    /// Lists `task_run` of `action_id` (a durable run: its `invocation`) as in flight until
    /// the returned guard drops.
    pub(crate) fn track(self: &Arc<Self>, task_run: &str, action_id: &str, invocation: Option<i32>) -> Tracked {
        let attempt = self.attempts.fetch_add(1, Ordering::Relaxed);
        let switch = CancelSwitch::default();
        self.entries.lock().expect("in-flight lock").insert(
            task_run.to_owned(),
            Entry {
                action_id: action_id.to_owned(),
                invocation,
                since: Instant::now(),
                switch: switch.clone(),
                attempt,
            },
        );
        Tracked {
            in_flight: Arc::clone(self),
            task_run: task_run.to_owned(),
            attempt,
            switch,
        }
    }

    /// Cancels `task_run` for `why`; `false` when it is not in flight here.
    pub(crate) fn cancel(&self, task_run: &str, why: CancelReason) -> bool {
        let entries = self.entries.lock().expect("in-flight lock");
        entries.get(task_run).map(|e| e.switch.cancel(why)).is_some()
    }

    /// Cancels `task_run` if it runs `invocation` (a later invocation is another run); whether it did.
    pub(crate) fn cancel_invocation(&self, task_run: &str, invocation: i32, why: CancelReason) -> bool {
        let entries = self.entries.lock().expect("in-flight lock");
        entries
            .get(task_run)
            .filter(|e| e.invocation == Some(invocation))
            .map(|e| e.switch.cancel(why))
            .is_some()
    }

    /// Cancels every run in flight for `why`; how many there were.
    pub(crate) fn cancel_all(&self, why: CancelReason) -> usize {
        let entries = self.entries.lock().expect("in-flight lock");
        entries.values().for_each(|e| e.switch.cancel(why));
        entries.len()
    }

    /// The runs in flight now.
    pub(crate) fn list(&self) -> Vec<InFlightTask> {
        let entries = self.entries.lock().expect("in-flight lock");
        entries
            .iter()
            .map(|(id, e)| InFlightTask {
                task_run: id.clone(),
                action_id: e.action_id.clone(),
                since: e.since,
            })
            .collect()
    }
}

/// A run's place in [`InFlight`], removed on drop (unless a newer attempt took it).
pub(crate) struct Tracked {
    in_flight: Arc<InFlight>,
    task_run: String,
    attempt: u64,
    pub(crate) switch: CancelSwitch,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut entries = self.in_flight.entries.lock().expect("in-flight lock");
        if entries.get(&self.task_run).is_some_and(|e| e.attempt == self.attempt) {
            entries.remove(&self.task_run);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_attempt_leaving_does_not_untrack_the_newer() {
        let f = Arc::new(InFlight::default());
        let first = f.track("run", "wf:t", None);
        let retry = f.track("run", "wf:t", None);
        drop(first);
        assert_eq!(f.list().len(), 1, "the retry is still listed");
        assert!(f.cancel("run", CancelReason::Engine));
        assert_eq!(retry.switch.reason(), Some(CancelReason::Engine));
        drop(retry);
        assert!(f.list().is_empty());
        assert!(!f.cancel("run", CancelReason::Engine), "gone once its guard dropped");
    }

    #[test]
    fn the_first_cancel_reason_sticks() {
        let f = Arc::new(InFlight::default());
        let t = f.track("run", "wf:t", None);
        assert_eq!(f.cancel_all(CancelReason::DrainDeadline), 1);
        f.cancel("run", CancelReason::Engine);
        assert_eq!(t.switch.reason(), Some(CancelReason::DrainDeadline));
        assert!(t.switch.token().is_cancelled());
    }

    #[test]
    fn an_eviction_stops_only_the_invocation_it_names() {
        let f = Arc::new(InFlight::default());
        let t = f.track("run", "wf:t", Some(2));
        assert!(
            !f.cancel_invocation("run", 1, CancelReason::Evicted),
            "an older invocation"
        );
        assert!(t.switch.reason().is_none());
        assert!(f.cancel_invocation("run", 2, CancelReason::Evicted));
        assert_eq!(t.switch.reason(), Some(CancelReason::Evicted));
    }
}

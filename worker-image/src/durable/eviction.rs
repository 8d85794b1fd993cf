//! Which waiting durable runs give their slot back: a run that only waits (a long sleep, an
//! event that may take days) is evicted, freeing its durable slot; the engine runs it again
//! from the start once its wait is satisfied, and its event log answers what it already did.
//! The policy is per task; the choice is a pure function, the registry is the runs' RAII record.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::pending::Invocation;

/// The official SDKs' default time a run may wait before it is evicted.
pub const DEFAULT_EVICTION_TTL: Duration = Duration::from_secs(15 * 60);
/// How long a run must have waited before it is evicted to make room for others.
const CAPACITY_MIN_WAIT: Duration = Duration::from_secs(10);

/// When a waiting durable run is evicted (the official SDKs' `EvictionPolicy`). A graceful
/// shutdown evicts every waiting run whatever its policy, so the next worker takes it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvictionPolicy {
    ttl: Option<Duration>,
    capacity: bool,
    priority: i32,
}

impl Default for EvictionPolicy {
    /// Evicted after 15 minutes of waiting, or sooner when every durable slot is taken.
    fn default() -> Self {
        Self {
            ttl: Some(DEFAULT_EVICTION_TTL),
            capacity: true,
            priority: 0,
        }
    }
}

impl EvictionPolicy {
    /// Never evicted while the worker runs (only when it shuts down).
    pub fn never() -> Self {
        Self {
            ttl: None,
            capacity: false,
            priority: 0,
        }
    }

    /// Evicted once it has waited `ttl`.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Whether it may be evicted, after 10 s of waiting, when waiting runs hold every
    /// durable slot (default yes).
    pub fn capacity_eviction(mut self, allowed: bool) -> Self {
        self.capacity = allowed;
        self
    }

    /// Among runs evicted for capacity, lower values go first (default 0).
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }
}

/// A waiting run as the choice sees it.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub(crate) waited: Duration,
    pub(crate) policy: EvictionPolicy,
}

/// The indexes of `waiting` to evict: every run past its TTL, then, while waiting runs hold
/// all `durable_slots`, enough of those allowed (lowest priority, longest wait first) to free one.
pub(crate) fn choose(waiting: &[Candidate], durable_slots: usize) -> Vec<usize> {
    let mut chosen: Vec<usize> = (0..waiting.len())
        .filter(|&i| waiting[i].policy.ttl.is_some_and(|ttl| waiting[i].waited >= ttl))
        .collect();
    let remaining = waiting.len() - chosen.len();
    if remaining >= durable_slots {
        let mut eligible: Vec<usize> = (0..waiting.len())
            .filter(|i| !chosen.contains(i))
            .filter(|&i| waiting[i].policy.capacity && waiting[i].waited >= CAPACITY_MIN_WAIT)
            .collect();
        eligible.sort_by(|&a, &b| {
            let (a, b) = (&waiting[a], &waiting[b]);
            a.policy.priority.cmp(&b.policy.priority).then(b.waited.cmp(&a.waited))
        });
        chosen.extend(eligible.into_iter().take(remaining + 1 - durable_slots));
    }
    chosen
}

/// Where a waiting run's eviction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Waiting,
    /// The engine was asked to evict it: its wait must not go on until that is settled.
    Evicting,
    /// Evicted: its run is being stopped.
    Evicted,
    /// The eviction failed: it goes on.
    Kept,
}

struct Entry {
    since: Instant,
    policy: EvictionPolicy,
    stage: watch::Sender<Stage>,
    /// A wait completed while the eviction was under way.
    completed: bool,
    /// The run's waits now (children awaited together are several).
    waits: usize,
}

/// The durable runs waiting now on this worker.
#[derive(Default)]
pub(crate) struct Waiting {
    runs: Mutex<HashMap<Invocation, Entry>>,
}

impl Waiting {
    /// Records that `invocation` waits, until the guard drops.
    pub(crate) fn enter(self: &Arc<Self>, invocation: Invocation, policy: EvictionPolicy) -> WaitGuard {
        let mut runs = self.runs.lock().expect("waiting lock");
        let entry = runs.entry(invocation.clone()).or_insert_with(|| Entry {
            since: Instant::now(),
            policy,
            stage: watch::Sender::new(Stage::Waiting),
            completed: false,
            waits: 0,
        });
        entry.waits += 1;
        WaitGuard {
            waiting: Arc::clone(self),
            invocation,
            stage: entry.stage.subscribe(),
        }
    }

    /// How many runs wait now.
    pub(crate) fn len(&self) -> usize {
        self.runs.lock().expect("waiting lock").len()
    }

    /// The runs the policy evicts now, given the worker's durable slots.
    pub(crate) fn due(&self, now: Instant, durable_slots: usize) -> Vec<Invocation> {
        let runs = self.runs.lock().expect("waiting lock");
        let (ids, candidates): (Vec<&Invocation>, Vec<Candidate>) = runs
            .iter()
            .filter(|(_, e)| *e.stage.borrow() == Stage::Waiting)
            .map(|(id, e)| {
                (
                    id,
                    Candidate {
                        waited: now.saturating_duration_since(e.since),
                        policy: e.policy.clone(),
                    },
                )
            })
            .unzip();
        choose(&candidates, durable_slots)
            .into_iter()
            .map(|i| ids[i].clone())
            .collect()
    }

    /// Every run waiting now (a shutdown evicts them all).
    pub(crate) fn all(&self) -> Vec<Invocation> {
        self.runs.lock().expect("waiting lock").keys().cloned().collect()
    }

    /// Marks `invocation` as being evicted; `false` if it no longer waits (or already is).
    pub(crate) fn begin_eviction(&self, invocation: &Invocation) -> bool {
        let runs = self.runs.lock().expect("waiting lock");
        runs.get(invocation).is_some_and(|e| {
            e.stage
                .send_if_modified(|s| std::mem::replace(s, Stage::Evicting) == Stage::Waiting)
        })
    }

    /// Settles an eviction; whether the run's wait completed meanwhile (the engine, which
    /// restores an evicted run when its wait completes, missed that, so it must be asked to).
    pub(crate) fn end_eviction(&self, invocation: &Invocation, evicted: bool) -> bool {
        let runs = self.runs.lock().expect("waiting lock");
        let Some(e) = runs.get(invocation) else {
            return false;
        };
        e.stage.send_replace(if evicted { Stage::Evicted } else { Stage::Kept });
        evicted && e.completed
    }
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiting").field("runs", &self.len()).finish()
    }
}

/// A run's place among the waiting ones; removed on drop.
pub(crate) struct WaitGuard {
    waiting: Arc<Waiting>,
    invocation: Invocation,
    stage: watch::Receiver<Stage>,
}

impl WaitGuard {
    /// Called when the wait completed: returns at once unless an eviction is under way, then
    /// once it is settled; `false` if the run was evicted (it is being stopped).
    pub(crate) async fn settle(mut self) -> bool {
        {
            let mut runs = self.waiting.runs.lock().expect("waiting lock");
            if let Some(e) = runs.get_mut(&self.invocation) {
                e.completed = true;
            }
        }
        match self.stage.wait_for(|s| *s != Stage::Evicting).await {
            Ok(s) => *s != Stage::Evicted,
            Err(_) => true,
        }
    }
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        let mut runs = self.waiting.runs.lock().expect("waiting lock");
        if let Some(e) = runs.get_mut(&self.invocation) {
            e.waits -= 1;
            if e.waits == 0 {
                runs.remove(&self.invocation);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waited(secs: u64, policy: EvictionPolicy) -> Candidate {
        Candidate {
            waited: Duration::from_secs(secs),
            policy,
        }
    }

    #[test]
    fn a_run_past_its_ttl_is_evicted() {
        let short = EvictionPolicy::default().ttl(Duration::from_secs(30));
        let runs = [
            waited(29, short.clone()),
            waited(30, short),
            waited(3600, EvictionPolicy::never()),
        ];
        assert_eq!(choose(&runs, 100), vec![1]);
    }

    #[test]
    fn full_slots_evict_one_eligible_run_lowest_priority_then_oldest() {
        let p = |prio| EvictionPolicy::default().priority(prio);
        let runs = [
            waited(60, p(1)),
            waited(20, p(0)),
            waited(40, p(0)),
            waited(5, p(0)),
            waited(600, EvictionPolicy::default().capacity_eviction(false)),
        ];
        assert_eq!(choose(&runs, 5), vec![2], "priority 0, the longer wait");
        assert_eq!(choose(&runs, 4), vec![2, 1], "two to free one of four slots");
        assert!(choose(&runs, 6).is_empty(), "a slot is still free");
    }

    #[test]
    fn runs_that_waited_less_than_ten_seconds_stay() {
        let runs = [waited(9, EvictionPolicy::default())];
        assert!(choose(&runs, 1).is_empty());
    }

    #[test]
    fn ttl_evictions_count_towards_freeing_slots() {
        let runs = [
            waited(100, EvictionPolicy::default().ttl(Duration::from_secs(50))),
            waited(100, EvictionPolicy::default()),
        ];
        assert_eq!(choose(&runs, 2), vec![0], "the TTL eviction already frees a slot");
    }

    fn inv(n: i32) -> Invocation {
        Invocation {
            task: "t".into(),
            count: n,
        }
    }

    #[tokio::test]
    async fn a_wait_completing_during_its_eviction_waits_for_the_outcome() {
        let w = Arc::new(Waiting::default());
        let guard = w.enter(inv(1), EvictionPolicy::default());
        assert!(w.begin_eviction(&inv(1)));
        assert!(!w.begin_eviction(&inv(1)), "one eviction at a time");
        let settled = tokio::spawn(guard.settle());
        tokio::task::yield_now().await;
        assert!(!settled.is_finished(), "held while the eviction is under way");
        assert!(w.end_eviction(&inv(1), true), "the engine must be asked to restore it");
        assert!(!settled.await.unwrap(), "the run was evicted");
        assert_eq!(w.len(), 0);
    }

    #[tokio::test]
    async fn a_failed_eviction_lets_the_run_go_on() {
        let w = Arc::new(Waiting::default());
        let guard = w.enter(inv(1), EvictionPolicy::default());
        assert!(w.begin_eviction(&inv(1)));
        assert!(!w.end_eviction(&inv(1), false));
        assert!(guard.settle().await);
        assert!(w.all().is_empty());
    }

    #[test]
    fn a_run_awaiting_several_entries_waits_until_the_last_one_ends() {
        let w = Arc::new(Waiting::default());
        let a = w.enter(inv(1), EvictionPolicy::default());
        let b = w.enter(inv(1), EvictionPolicy::default());
        drop(a);
        assert_eq!(w.all(), [inv(1)], "still awaiting b");
        drop(b);
        assert!(w.all().is_empty());
    }

    #[test]
    fn only_runs_still_waiting_are_due() {
        let w = Arc::new(Waiting::default());
        let _a = w.enter(inv(1), EvictionPolicy::default().ttl(Duration::ZERO));
        let b = w.enter(
            Invocation {
                task: "u".into(),
                count: 1,
            },
            EvictionPolicy::default().ttl(Duration::ZERO),
        );
        drop(b);
        assert_eq!(w.due(Instant::now(), 10), vec![inv(1)]);
        assert!(w.begin_eviction(&inv(1)));
        assert!(w.due(Instant::now(), 10).is_empty(), "already being evicted");
    }
}

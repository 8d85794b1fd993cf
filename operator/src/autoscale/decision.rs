//! The autoscaling decision: a pure function of what was observed, the rules from the spec,
//! the recent history and the time. HPA's algorithm (`ceil(demand / (slots × target))` with a
//! tolerance, stabilization windows and step limits), plus what a task queue needs: queued
//! tasks count as demand, an empty fleet starts on queued work, and it goes to zero only after
//! an idle period with nothing queued or running.

use std::collections::VecDeque;
use std::time::Duration;

use crate::crd::{Autoscaling, PolicyKind, ScalingRules, SelectPolicy};

/// The rules of one fleet, from its spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Fewest pods.
    pub min: i32,
    /// Most pods.
    pub max: i32,
    /// Slots of one worker (`spec.slots`).
    pub slots_per_worker: i64,
    /// Wanted share of busy slots.
    pub target: f64,
    /// Ratio changes within this are ignored.
    pub tolerance: f64,
    /// Queued tasks count as demand.
    pub count_queued: bool,
    /// Idle time before scaling to zero.
    pub idle_before_zero: Duration,
    /// Growth pace.
    pub up: Pace,
    /// Shrink pace.
    pub down: Pace,
}

/// Pace of scaling in one direction.
#[derive(Debug, Clone, PartialEq)]
pub struct Pace {
    /// Stabilization window.
    pub window: Duration,
    /// Step limits: (kind, value, period).
    pub policies: Vec<(PolicyKind, i32, Duration)>,
    /// How the limits combine.
    pub select: SelectPolicy,
}

impl Pace {
    fn from_spec(r: &ScalingRules) -> Self {
        Self {
            window: secs(r.stabilization_window_seconds),
            policies: r
                .policies
                .iter()
                .map(|p| (p.kind, p.value, secs(p.period_seconds)))
                .collect(),
            select: r.select_policy,
        }
    }

    fn longest_period(&self) -> Duration {
        self.policies.iter().map(|p| p.2).max().unwrap_or_default()
    }
}

fn secs(s: i32) -> Duration {
    Duration::from_secs(u64::try_from(s).unwrap_or(0))
}

impl Rules {
    /// The rules of a spec's `autoscaling` block for workers of `slots` slots.
    pub fn from_spec(a: &Autoscaling, slots: i32) -> Self {
        Self {
            min: a.min_replicas,
            max: a.max_replicas.max(a.min_replicas),
            slots_per_worker: i64::from(slots.max(1)),
            target: a.target_utilization.clamp(0.01, 1.0),
            tolerance: a.tolerance.clamp(0.0, 0.99),
            count_queued: a.count_queued,
            idle_before_zero: secs(a.idle_seconds_before_zero),
            up: Pace::from_spec(&a.scale_up),
            down: Pace::from_spec(&a.scale_down),
        }
    }
}

/// What the engine said about the fleet at one poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Observation {
    /// Slots in use on the fleet's active workers.
    pub slots_used: i64,
    /// Slots of the fleet's active workers.
    pub slots_total: i64,
    /// Tasks of the fleet's actions waiting for a slot.
    pub queued: i64,
    /// Whether the fleet's actions are known (a worker registered once); until then queued
    /// work cannot be counted, so an empty fleet starts one worker to learn them.
    pub actions_known: bool,
}

/// What the decision remembers between polls.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Past recommendations (time, replicas), for the stabilization windows.
    recommendations: VecDeque<(Duration, i32)>,
    /// Past size changes (time, from, to), for the step limits.
    changes: VecDeque<(Duration, i32, i32)>,
    /// Since when nothing has been running or queued.
    idle_since: Option<Duration>,
}

/// Why the decision is not what demand alone asks for (the `ScalingLimited` condition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Demand asks for fewer pods than `minReplicas`.
    AtMin,
    /// Demand asks for more pods than `maxReplicas`.
    AtMax,
    /// A scale-up step limit holds the fleet back.
    UpPace,
    /// A scale-down step limit holds the fleet back.
    DownPace,
    /// The scale-down window keeps pods for demand seen recently.
    DownWindow,
    /// The scale-up window waits for demand to last.
    UpWindow,
    /// The idle period before zero is not over.
    IdleBeforeZero,
}

impl Limit {
    /// The `ScalingLimited` reason.
    pub fn reason(self) -> &'static str {
        match self {
            Self::AtMin => "AtMinReplicas",
            Self::AtMax => "AtMaxReplicas",
            Self::UpPace => "ScaleUpLimited",
            Self::DownPace => "ScaleDownLimited",
            Self::DownWindow => "ScaleDownStabilizing",
            Self::UpWindow => "ScaleUpStabilizing",
            Self::IdleBeforeZero => "IdleBeforeZero",
        }
    }
}

/// The decision of one poll.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Pods the fleet should have.
    pub replicas: i32,
    /// What demand alone asks for, within min and max (what the windows remember).
    pub recommendation: i32,
    /// What holds the fleet back, if anything.
    pub limit: Option<Limit>,
    /// For a person: `34/40 slots used, 25 queued: 4 → 7 (...)`.
    pub reason: String,
}

/// Demand in slots: what runs plus, if counted, what waits.
fn demand(obs: &Observation, rules: &Rules) -> i64 {
    obs.slots_used + if rules.count_queued { obs.queued } else { 0 }
}

/// Decides the fleet's size (see the module docs).
pub fn decide(obs: &Observation, current: i32, rules: &Rules, history: &History, now: Duration) -> Decision {
    let demand = demand(obs, rules);
    let per_pod = rules.slots_per_worker as f64 * rules.target;
    let mut notes: Vec<String> = Vec::new();
    let mut limit = None;

    // What demand asks for.
    let mut raw = if current > 0 {
        let ratio = demand as f64 / (f64::from(current) * per_pod);
        if (ratio - 1.0).abs() <= rules.tolerance + 1e-9 && demand > 0 {
            current
        } else {
            ceil_i32(demand as f64 / per_pod)
        }
    } else {
        ceil_i32(demand as f64 / per_pod)
    };
    if !obs.actions_known && raw == 0 {
        // Queued work cannot be counted before a worker told the engine what it serves.
        raw = 1;
        notes.push(if current == 0 {
            "no worker has registered yet, so the fleet's actions are unknown: starting one".into()
        } else {
            "keeping one worker until it registers: the fleet's actions are unknown".into()
        });
    }
    if raw == 0 && demand == 0 && current > 0 && rules.min == 0 {
        let idle_for = history.idle_since.map_or(Duration::ZERO, |t| now.saturating_sub(t));
        if idle_for >= rules.idle_before_zero {
            // The idle period is the stabilization for zero: idle workers lose nothing.
            return Decision {
                replicas: 0,
                recommendation: 0,
                limit: None,
                reason: format!(
                    "{}/{} slots used, 0 queued: {current} → 0 (idle for {}s)",
                    obs.slots_used,
                    obs.slots_total,
                    idle_for.as_secs()
                ),
            };
        }
        {
            raw = 1;
            limit = Some(Limit::IdleBeforeZero);
            notes.push(format!(
                "idle for {}s, zero after {}s",
                idle_for.as_secs(),
                rules.idle_before_zero.as_secs()
            ));
        }
    }
    let recommendation = raw.clamp(rules.min, rules.max);
    if raw > rules.max {
        limit = Some(Limit::AtMax);
        notes.push(format!("at maxReplicas {}", rules.max));
    } else if raw < rules.min {
        limit = Some(Limit::AtMin);
        notes.push(format!("at minReplicas {}", rules.min));
    }

    // Stabilization: grow to the lowest, shrink to the highest recommendation of the window.
    let within = |w: Duration| {
        history
            .recommendations
            .iter()
            .filter(move |(t, _)| now.saturating_sub(*t) < w)
            .map(|(_, r)| *r)
    };
    let up_rec = within(rules.up.window)
        .chain([recommendation])
        .min()
        .unwrap_or(recommendation);
    let down_rec = within(rules.down.window)
        .chain([recommendation])
        .max()
        .unwrap_or(recommendation);
    let stabilized = if current < up_rec {
        up_rec
    } else if current > down_rec {
        down_rec
    } else {
        current
    };
    // The window, when it binds, is the reason (over an idle note or a bound).
    if stabilized != recommendation {
        notes.retain(|n| !n.starts_with("idle for") && !n.starts_with("at minReplicas"));
        if recommendation > current {
            limit = Some(Limit::UpWindow);
            notes.push(format!(
                "waiting out the {}s scale-up window",
                rules.up.window.as_secs()
            ));
        } else if recommendation < current {
            limit = Some(Limit::DownWindow);
            notes.push(format!(
                "keeping the highest need of the last {}s",
                rules.down.window.as_secs()
            ));
        }
    }

    // Step limits.
    let mut replicas = stabilized;
    if stabilized > current {
        let cap = up_limit(&rules.up, current, history, now);
        if stabilized > cap {
            replicas = cap;
            limit = Some(Limit::UpPace);
            notes.push("scale-up step limit".into());
        }
    } else if stabilized < current {
        let floor = down_limit(&rules.down, current, history, now);
        if stabilized < floor {
            replicas = floor;
            limit = Some(Limit::DownPace);
            notes.push("scale-down step limit".into());
        }
    }

    let change = if replicas == current {
        format!("{current} kept")
    } else {
        format!("{current} → {replicas}")
    };
    let mut reason = format!(
        "{}/{} slots used, {} queued: {change}",
        obs.slots_used, obs.slots_total, obs.queued
    );
    if !notes.is_empty() {
        reason.push_str(&format!(" ({})", notes.join("; ")));
    }
    Decision {
        replicas,
        recommendation,
        limit,
        reason,
    }
}

/// Highest size the scale-up policies allow now.
fn up_limit(pace: &Pace, current: i32, history: &History, now: Duration) -> i32 {
    if pace.select == SelectPolicy::Disabled {
        return current;
    }
    if pace.policies.is_empty() {
        return i32::MAX;
    }
    let limits = pace.policies.iter().map(|&(kind, value, period)| {
        let added: i32 = history
            .changes
            .iter()
            .filter(|(t, from, to)| now.saturating_sub(*t) < period && to > from)
            .map(|(_, from, to)| to - from)
            .sum();
        let start = (current - added).max(0);
        match kind {
            PolicyKind::Pods => start.saturating_add(value),
            // At least one pod, so a fleet at zero can always start.
            PolicyKind::Percent => ceil_i32(f64::from(start) * (1.0 + f64::from(value) / 100.0)).max(start + 1),
        }
    });
    let limit = match pace.select {
        SelectPolicy::Min => limits.min(),
        _ => limits.max(),
    };
    limit.unwrap_or(i32::MAX).max(current)
}

/// Lowest size the scale-down policies allow now.
fn down_limit(pace: &Pace, current: i32, history: &History, now: Duration) -> i32 {
    if pace.select == SelectPolicy::Disabled {
        return current;
    }
    if pace.policies.is_empty() {
        return 0;
    }
    let limits = pace.policies.iter().map(|&(kind, value, period)| {
        let removed: i32 = history
            .changes
            .iter()
            .filter(|(t, from, to)| now.saturating_sub(*t) < period && to < from)
            .map(|(_, from, to)| from - to)
            .sum();
        let start = current + removed;
        match kind {
            PolicyKind::Pods => (start - value).max(0),
            PolicyKind::Percent => ceil_i32(f64::from(start) * (1.0 - f64::from(value) / 100.0)).max(0),
        }
    });
    let limit = match pace.select {
        SelectPolicy::Min => limits.max(),
        _ => limits.min(),
    };
    limit.unwrap_or(0).min(current)
}

fn ceil_i32(x: f64) -> i32 {
    // Demand is far below i32::MAX slots; saturate rather than wrap if it is not.
    x.ceil().clamp(0.0, f64::from(i32::MAX)) as i32
}

impl History {
    /// A history for a fleet first seen at `now` with `current` pods: as if `current` had been
    /// recommended, so an operator restart does not shrink the fleet before a window passes.
    pub fn starting_at(now: Duration, current: i32) -> Self {
        Self {
            recommendations: VecDeque::from([(now, current)]),
            ..Self::default()
        }
    }

    /// Remembers a poll's observation and decision, forgetting what no window or period needs.
    pub fn record(&mut self, now: Duration, obs: &Observation, rules: &Rules, current: i32, d: &Decision) {
        self.recommendations.push_back((now, d.recommendation));
        if d.replicas != current {
            self.changes.push_back((now, current, d.replicas));
        }
        self.idle_since = if demand(obs, rules) == 0 {
            self.idle_since.or(Some(now))
        } else {
            None
        };
        let keep_recs = rules.up.window.max(rules.down.window);
        while self
            .recommendations
            .front()
            .is_some_and(|(t, _)| now.saturating_sub(*t) >= keep_recs && self.recommendations.len() > 1)
        {
            self.recommendations.pop_front();
        }
        let keep_changes = rules.up.longest_period().max(rules.down.longest_period());
        while self
            .changes
            .front()
            .is_some_and(|(t, ..)| now.saturating_sub(*t) >= keep_changes)
        {
            self.changes.pop_front();
        }
    }
}

#[cfg(test)]
mod tests;

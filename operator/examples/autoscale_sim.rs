//! Autoscaling simulator (a program, not a test): replays load traces against a discrete-time
//! model of a fleet of Hatchet workers (1 s steps) and prints, for each trace, a markdown table
//! comparing three autoscalers on the same load: ours (`decide` with the CRD's default rules),
//! a model of the HPA on slot utilization, and a model of KEDA on queued + running tasks.
//!
//! ```sh
//! cargo run --release -p hatchet-operator --example autoscale_sim
//! ```
//!
//! The model: a pod asked for takes tasks [`START_LATENCY`] seconds later; ready workers take
//! tasks from one FIFO queue into free slots at once (each task to the worker with the most
//! free slots). A pod removed by a scale-in stops taking tasks, finishes its in-flight ones
//! (drain) and only then goes away. Starting pods are removed first; then ours removes the
//! idlest workers (the operator's pod-deletion-cost), the HPA and KEDA the newest (the
//! ReplicaSet's default). Every clock is phased so that its first tick after the load starts
//! comes half a period later (the average case). The one noisy trace uses a fixed-seed
//! generator: the output is deterministic.

use std::cmp::Reverse;
use std::collections::VecDeque;
use std::time::Duration;

use hatchet_operator::autoscale::decision::{History, Observation, Rules, decide};
use hatchet_operator::crd::Autoscaling;

/// Task slots of one worker.
const SLOTS: i32 = 10;
/// Seconds from a pod being asked for to its worker taking tasks (scheduling, image already
/// pulled, container start, registration with the engine).
const START_LATENCY: u64 = 8;
/// Most pods, for all three.
const MAX_REPLICAS: i32 = 20;
/// Fewest pods for ours and KEDA: every trace lets an idle fleet go to zero.
const MIN_REPLICAS: i32 = 0;
/// Fewest pods for the HPA, which cannot scale to zero.
const HPA_MIN_REPLICAS: i32 = 1;
/// Wanted share of busy slots, for all three (KEDA's target value is `SLOTS × TARGET` tasks).
const TARGET: f64 = 0.75;
/// Idle seconds before the load of a trace starts.
const LOAD_START: u64 = 60;
/// Seconds simulated after the last task finished (under the slowest autoscaler).
const TAIL: u64 = 600;
/// A run not finished after this long is a bug of the model.
const GIVE_UP: u64 = 6 * 3600;

/// HPA: sync period, tolerance, scale-down stabilization window, and the default scale-up
/// policies (the larger of 4 pods or 100 % per 15 s).
const HPA_SYNC: u64 = 15;
const HPA_TOLERANCE: f64 = 0.1;
const HPA_DOWN_WINDOW: u64 = 300;
const HPA_UP_PODS: i32 = 4;
const HPA_UP_PERIOD: u64 = 15;
/// KEDA: polling interval (the HPA uses the last polled value) and cooldown before zero.
const KEDA_POLL: u64 = 30;
const KEDA_COOLDOWN: u64 = 300;

#[derive(Debug, Clone, Copy)]
struct Task {
    arrival: u64,
    duration: u64,
}

struct Trace {
    name: &'static str,
    tasks: Vec<Task>,
}

/// `count` tasks of `duration` s arriving at `at`.
fn batch(at: u64, count: u64, duration: u64) -> impl Iterator<Item = Task> {
    (0..count).map(move |_| Task { arrival: at, duration })
}

/// A fixed-seed xorshift64 generator: noisy traces that are the same on every run.
struct XorShift(u64);

impl XorShift {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A Poisson-distributed count of mean `mean` (Knuth's method; fine for small means).
    fn poisson(&mut self, mean: f64) -> u64 {
        let limit = (-mean).exp();
        let (mut k, mut p) = (0, 1.0);
        loop {
            p *= self.next_f64();
            if p <= limit {
                return k;
            }
            k += 1;
        }
    }
}

fn traces() -> Vec<Trace> {
    let s = LOAD_START;
    // Ramp: the rate grows linearly to 8/s over 300 s, so t²/75 tasks have arrived at t.
    let ramp = (0..300).flat_map(|t| batch(s + t, (t + 1) * (t + 1) / 75 - t * t / 75, 5));
    let saw = (0..3 * 240).filter(|t| t % 240 < 120).flat_map(|t| batch(s + t, 6, 10));
    let short = (0..600).flat_map(|t| batch(s + t, 1, 2));
    let long = (0..10).flat_map(|i| batch(s + 60 * i, 20, 120));
    let mut mix: Vec<Task> = short.chain(long).collect();
    mix.sort_by_key(|t| t.arrival);
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let noisy: Vec<Task> = (0..900).flat_map(|t| batch(s + t, rng.poisson(3.0), 10)).collect();
    vec![
        Trace {
            name: "(a) burst: 60 s idle, 300 tasks of 20 s at once, then idle",
            tasks: batch(s, 300, 20).collect(),
        },
        Trace {
            name: "(b) ramp: arrivals growing linearly from 0 to 8/s over 5 min, then none; tasks of 5 s",
            tasks: ramp.collect(),
        },
        Trace {
            name: "(c) sawtooth: 3 cycles of 2 min at 6/s and 2 min at 0; tasks of 10 s",
            tasks: saw.collect(),
        },
        Trace {
            name: "(d) idle → burst: 10 min idle, then 100 tasks of 30 s at once",
            tasks: batch(600, 100, 30).collect(),
        },
        Trace {
            name: "(e) long-task mix: 10 min of 1/s tasks of 2 s, plus 20 tasks of 120 s every 60 s",
            tasks: mix,
        },
        Trace {
            name: "(f) noisy steady load: Poisson arrivals of mean 3/s for 15 min; tasks of 10 s",
            tasks: noisy,
        },
    ]
}

/// Whether a clock of `period` s ticks at `now`: its first tick after `LOAD_START` comes half
/// a period later.
fn ticks(now: u64, period: u64) -> bool {
    let phase = (LOAD_START + period / 2) % period;
    (now + period - phase).is_multiple_of(period)
}

/// Which pods a scale-in removes (after the starting ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Removal {
    Idlest,
    Newest,
}

struct Pod {
    id: u64,
    ready_at: u64,
    draining: bool,
    /// End times of the tasks it runs.
    running: Vec<u64>,
}

impl Pod {
    fn ready(&self, now: u64) -> bool {
        now >= self.ready_at
    }

    fn free(&self) -> i64 {
        i64::from(SLOTS) - self.running.len() as i64
    }
}

/// What the autoscalers may see of the fleet.
struct FleetView {
    /// Pods asked for (the last decision).
    desired: i32,
    /// Ready pods taking tasks.
    ready: i32,
    /// Pods asked for, not ready yet.
    starting: i32,
    /// Tasks running on ready pods taking tasks.
    slots_used: i64,
    /// Tasks running anywhere, draining pods included.
    running: i64,
    queued: i64,
}

struct Fleet {
    pods: Vec<Pod>,
    queue: VecDeque<Task>,
    desired: i32,
    next_id: u64,
    removal: Removal,
}

impl Fleet {
    fn new(replicas: i32, removal: Removal) -> Self {
        let mut fleet = Self {
            pods: Vec::new(),
            queue: VecDeque::new(),
            desired: 0,
            next_id: 0,
            removal,
        };
        fleet.scale_to(replicas, 0);
        for p in &mut fleet.pods {
            p.ready_at = 0;
        }
        fleet
    }

    fn view(&self, now: u64) -> FleetView {
        let active = || self.pods.iter().filter(|p| !p.draining);
        FleetView {
            desired: self.desired,
            ready: active().filter(|p| p.ready(now)).count() as i32,
            starting: active().filter(|p| !p.ready(now)).count() as i32,
            slots_used: active().map(|p| p.running.len() as i64).sum(),
            running: self.running(),
            queued: self.queue.len() as i64,
        }
    }

    fn running(&self) -> i64 {
        self.pods.iter().map(|p| p.running.len() as i64).sum()
    }

    /// Ends the tasks due at `now` and removes drained pods; returns the tasks ended.
    fn finish(&mut self, now: u64) -> u64 {
        let mut ended = 0;
        for p in &mut self.pods {
            let before = p.running.len();
            p.running.retain(|&end| end > now);
            ended += (before - p.running.len()) as u64;
        }
        self.pods.retain(|p| !(p.draining && p.running.is_empty()));
        ended
    }

    /// Starts queued tasks in free slots, first come first served; returns their waits.
    fn dispatch(&mut self, now: u64) -> Vec<u64> {
        let mut waits = Vec::new();
        while let Some(&task) = self.queue.front() {
            let best = self
                .pods
                .iter_mut()
                .filter(|p| !p.draining && p.ready(now) && p.free() > 0)
                .max_by_key(|p| (p.free(), Reverse(p.id)));
            let Some(pod) = best else { break };
            pod.running.push(now + task.duration);
            waits.push(now - task.arrival);
            self.queue.pop_front();
        }
        waits
    }

    fn scale_to(&mut self, replicas: i32, now: u64) {
        self.desired = replicas;
        let active = self.pods.iter().filter(|p| !p.draining).count() as i32;
        for _ in active..replicas {
            self.pods.push(Pod {
                id: self.next_id,
                ready_at: now + START_LATENCY,
                draining: false,
                running: Vec::new(),
            });
            self.next_id += 1;
        }
        for _ in replicas..active {
            let i = self.victim(now);
            if self.pods[i].running.is_empty() {
                self.pods.remove(i);
            } else {
                self.pods[i].draining = true;
            }
        }
    }

    /// The next pod a scale-in removes: a starting one, then the idlest or newest ready one.
    fn victim(&self, now: u64) -> usize {
        let rank = |p: &Pod| {
            let busy = if self.removal == Removal::Idlest {
                p.running.len()
            } else {
                0
            };
            (p.ready(now), busy, Reverse(p.id))
        };
        (0..self.pods.len())
            .filter(|&i| !self.pods[i].draining)
            .min_by_key(|&i| rank(&self.pods[i]))
            .expect("a pod to remove")
    }
}

trait Autoscaler {
    fn name(&self) -> &'static str;
    fn initial_replicas(&self) -> i32;
    fn removal(&self) -> Removal;
    /// Called every second; returns the new desired replicas when it decides.
    fn step(&mut self, now: u64, view: &FleetView) -> Option<i32>;
}

/// The operator's autoscaler: `decide` on every poll, with the CRD's default rules or, to
/// show why they are the defaults, one behaviour changed.
struct Ours {
    name: &'static str,
    rules: Rules,
    history: History,
    poll: u64,
}

impl Ours {
    /// `behavior`: extra `spec.autoscaling` fields over the defaults.
    fn new(name: &'static str, behavior: serde_json::Value) -> Self {
        let mut json = serde_json::json!({
            "minReplicas": MIN_REPLICAS,
            "maxReplicas": MAX_REPLICAS,
            "targetUtilization": TARGET,
        });
        if let (Some(base), Some(extra)) = (json.as_object_mut(), behavior.as_object()) {
            base.extend(extra.clone());
        }
        let spec: Autoscaling = serde_json::from_value(json).expect("a valid autoscaling spec");
        Self {
            name,
            rules: Rules::from_spec(&spec, SLOTS),
            history: History::starting_at(Duration::ZERO, MIN_REPLICAS),
            poll: u64::try_from(spec.poll_interval_seconds).expect("a positive poll interval"),
        }
    }
}

impl Autoscaler for Ours {
    fn name(&self) -> &'static str {
        self.name
    }

    fn initial_replicas(&self) -> i32 {
        self.rules.min
    }

    fn removal(&self) -> Removal {
        Removal::Idlest
    }

    fn step(&mut self, now: u64, v: &FleetView) -> Option<i32> {
        if !ticks(now, self.poll) {
            return None;
        }
        let obs = Observation {
            slots_used: v.slots_used,
            slots_total: i64::from(v.ready) * i64::from(SLOTS),
            queued: v.queued,
            actions_known: true,
        };
        let t = Duration::from_secs(now);
        let d = decide(&obs, v.desired, &self.rules, &self.history, t);
        self.history.record(t, &obs, &self.rules, v.desired, &d);
        Some(d.replicas)
    }
}

/// The HPA's stabilization and scale-up policies (behavior defaults), shared by HPA and KEDA.
#[derive(Default)]
struct HpaBehavior {
    /// (time, recommendation), for the scale-down window.
    recommendations: VecDeque<(u64, i32)>,
    /// (time, pods added), for the scale-up policies.
    ups: VecDeque<(u64, i32)>,
}

impl HpaBehavior {
    fn normalize(&mut self, now: u64, current: i32, recommendation: i32) -> i32 {
        let rec = recommendation.clamp(HPA_MIN_REPLICAS, MAX_REPLICAS);
        self.recommendations.push_back((now, rec));
        self.recommendations.retain(|&(t, _)| now - t < HPA_DOWN_WINDOW);
        self.ups.retain(|&(t, _)| now - t < HPA_UP_PERIOD);
        let down = self.recommendations.iter().map(|&(_, r)| r).max().unwrap_or(rec);
        let mut desired = if current < rec { rec } else { current.min(down) };
        if desired > current {
            let start = current - self.ups.iter().map(|&(_, n)| n).sum::<i32>();
            desired = desired.min((start + HPA_UP_PODS).max(start * 2)).max(current);
            self.ups.push_back((now, desired - current));
        }
        desired
    }
}

fn within_tolerance(ratio: f64) -> bool {
    (ratio - 1.0).abs() <= HPA_TOLERANCE
}

fn ceil(x: f64) -> i32 {
    x.ceil() as i32
}

/// The HPA on slot utilization of ready pods (a pods metric: it cannot see the queue).
#[derive(Default)]
struct Hpa {
    behavior: HpaBehavior,
}

impl Hpa {
    /// The HPA's replica count for a plain metric: pods without a metric yet (starting) count
    /// as idle when growing and at target when shrinking, and nothing changes if that flips
    /// the direction or lands within the tolerance.
    fn recommendation(v: &FleetView) -> i32 {
        let slots = f64::from(SLOTS);
        let ratio = v.slots_used as f64 / (f64::from(v.ready) * slots) / TARGET;
        if within_tolerance(ratio) {
            return v.desired;
        }
        if v.starting == 0 {
            return ceil(ratio * f64::from(v.ready));
        }
        let fill = if ratio < 1.0 { TARGET * slots } else { 0.0 };
        let pods = f64::from(v.ready + v.starting);
        let used = v.slots_used as f64 + f64::from(v.starting) * fill;
        let adjusted = used / (pods * slots) / TARGET;
        if within_tolerance(adjusted) || (ratio < 1.0) != (adjusted < 1.0) {
            v.desired
        } else {
            ceil(adjusted * pods)
        }
    }
}

impl Autoscaler for Hpa {
    fn name(&self) -> &'static str {
        "HPA (slot utilization)"
    }

    fn initial_replicas(&self) -> i32 {
        HPA_MIN_REPLICAS
    }

    fn removal(&self) -> Removal {
        Removal::Newest
    }

    fn step(&mut self, now: u64, v: &FleetView) -> Option<i32> {
        if !ticks(now, HPA_SYNC) || v.ready == 0 {
            return None;
        }
        let rec = Self::recommendation(v);
        Some(self.behavior.normalize(now, v.desired, rec))
    }
}

/// KEDA with a metric of queued + running tasks: activation (0 → 1) and cooldown (any size →
/// 0, as KEDA's scale executor does) by KEDA, 1 ↔ N by its HPA (average-value target of
/// `SLOTS × TARGET` per replica) on the last polled value (`useCachedMetrics`).
#[derive(Default)]
struct Keda {
    behavior: HpaBehavior,
    metric: i64,
    last_active: Option<u64>,
}

impl Autoscaler for Keda {
    fn name(&self) -> &'static str {
        "KEDA (queued + running)"
    }

    fn initial_replicas(&self) -> i32 {
        MIN_REPLICAS
    }

    fn removal(&self) -> Removal {
        Removal::Newest
    }

    fn step(&mut self, now: u64, v: &FleetView) -> Option<i32> {
        let mut desired = v.desired;
        if ticks(now, KEDA_POLL) {
            self.metric = v.queued + v.running;
            if self.metric > 0 {
                self.last_active = Some(now);
                desired = desired.max(1);
            } else if desired > 0 && self.last_active.is_none_or(|t| now - t >= KEDA_COOLDOWN) {
                desired = MIN_REPLICAS;
            }
        }
        if desired > 0 && ticks(now, HPA_SYNC) {
            let per_replica = f64::from(SLOTS) * TARGET;
            let ratio = self.metric as f64 / (f64::from(desired) * per_replica);
            let rec = if within_tolerance(ratio) {
                desired
            } else {
                ceil(self.metric as f64 / per_replica)
            };
            desired = self.behavior.normalize(now, desired, rec);
        }
        (desired != v.desired).then_some(desired)
    }
}

fn autoscalers() -> Vec<Box<dyn Autoscaler>> {
    use serde_json::json;
    vec![
        Box::new(Ours::new("ours (defaults)", json!({}))),
        Box::new(Ours::new(
            "ours, scale-up 4 pods per 15 s",
            json!({"scaleUp": {"policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]}}),
        )),
        Box::new(Ours::new(
            "ours, no scale-down window or limit",
            json!({"scaleDown": {"stabilizationWindowSeconds": 0}}),
        )),
        Box::new(Ours::new(
            "ours, 300 s scale-down window",
            json!({"scaleDown": {"stabilizationWindowSeconds": 300, "policies": [{"type": "Percent", "value": 50, "periodSeconds": 30}]}}),
        )),
        Box::<Hpa>::default(),
        Box::<Keda>::default(),
    ]
}

#[derive(Default)]
struct Stats {
    waits: Vec<u64>,
    completed: u64,
    first_backlog: Option<u64>,
    first_scale_out: Option<u64>,
    scale_events: u32,
    peak: i32,
    pod_seconds: u64,
    used_slot_seconds: i64,
    ready_slot_seconds: i64,
    finished_at: Option<u64>,
}

impl Stats {
    fn account(&mut self, fleet: &Fleet, now: u64) {
        self.pod_seconds += fleet.pods.len() as u64;
        self.used_slot_seconds += fleet.running();
        let ready = fleet.pods.iter().filter(|p| p.ready(now)).count() as i64;
        self.ready_slot_seconds += ready * i64::from(SLOTS);
    }

    fn wait_percentile(&self, p: f64) -> u64 {
        let mut w = self.waits.clone();
        w.sort_unstable();
        let rank = (p * w.len() as f64).ceil() as usize;
        w.get(rank.saturating_sub(1)).copied().unwrap_or(0)
    }
}

/// Runs a trace until every task is done, or until `horizon` if given.
fn run(trace: &Trace, scaler: &mut dyn Autoscaler, horizon: Option<u64>) -> Stats {
    let mut fleet = Fleet::new(scaler.initial_replicas(), scaler.removal());
    let mut stats = Stats {
        peak: fleet.desired,
        ..Stats::default()
    };
    let mut arrivals = trace.tasks.iter().peekable();
    for now in 0.. {
        assert!(
            now < GIVE_UP,
            "{}: {} still busy after {GIVE_UP} s",
            trace.name,
            scaler.name()
        );
        while let Some(task) = arrivals.next_if(|t| t.arrival == now) {
            fleet.queue.push_back(*task);
        }
        stats.completed += fleet.finish(now);
        stats.waits.extend(fleet.dispatch(now));
        if !fleet.queue.is_empty() {
            stats.first_backlog.get_or_insert(now);
        }
        if let Some(n) = scaler.step(now, &fleet.view(now))
            && n != fleet.desired
        {
            stats.scale_events += 1;
            stats.peak = stats.peak.max(n);
            if n > fleet.desired && stats.first_backlog.is_some() {
                stats.first_scale_out.get_or_insert(now);
            }
            fleet.scale_to(n, now);
        }
        stats.account(&fleet, now);
        if stats.finished_at.is_none() && arrivals.peek().is_none() && fleet.queue.is_empty() && fleet.running() == 0 {
            stats.finished_at = Some(now);
        }
        if horizon.map_or(stats.finished_at.is_some(), |h| now + 1 >= h) {
            break;
        }
    }
    stats
}

fn row(name: &str, s: &Stats) -> String {
    let reaction = match (s.first_backlog, s.first_scale_out) {
        (Some(b), Some(o)) => (o - b).to_string(),
        _ => "—".to_owned(),
    };
    let utilization = if s.ready_slot_seconds > 0 {
        format!(
            "{:.0} %",
            100.0 * s.used_slot_seconds as f64 / s.ready_slot_seconds as f64
        )
    } else {
        "—".to_owned()
    };
    format!(
        "| {name} | {reaction} | {} | {} | {utilization} | {:.1} | {} | {} | {} |",
        s.wait_percentile(0.95),
        s.waits.iter().max().copied().unwrap_or(0),
        s.pod_seconds as f64 / 60.0,
        s.scale_events,
        s.peak,
        s.completed,
    )
}

fn main() {
    println!(
        "Model: 1 s steps; {SLOTS} slots per worker; pod start {START_LATENCY} s; max {MAX_REPLICAS} pods, \
         min {MIN_REPLICAS} (HPA {HPA_MIN_REPLICAS}); target {TARGET}; ours polls every 5 s (CRD defaults), \
         HPA syncs every {HPA_SYNC} s (down window {HPA_DOWN_WINDOW} s, up max({HPA_UP_PODS} pods, 100 %) \
         per {HPA_UP_PERIOD} s), KEDA polls every {KEDA_POLL} s (cooldown {KEDA_COOLDOWN} s). \
         Load starts at t = {LOAD_START} s unless said; the run ends {TAIL} s after the last task."
    );
    println!(
        "\nColumns: backlog → scale-out = from the first second a task waits with no free slot to the first \
         increase of desired replicas (— if no task ever waited); wait = arrival to start; slot utilization = \
         busy / ready slot-seconds (draining pods included); replica-minutes = pods alive (starting and \
         draining included); scale events = changes of desired replicas."
    );
    for trace in traces() {
        let end = autoscalers()
            .iter_mut()
            .filter_map(|a| run(&trace, a.as_mut(), None).finished_at)
            .max()
            .expect("one run per autoscaler");
        let horizon = end + 1 + TAIL;
        println!(
            "\n**{}** ({} tasks, {horizon} s simulated)\n",
            trace.name,
            trace.tasks.len()
        );
        println!(
            "| autoscaler | backlog → scale-out (s) | wait p95 (s) | wait max (s) | slot utilization \
             | replica-minutes | scale events | peak pods | tasks done |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for mut a in autoscalers() {
            let s = run(&trace, a.as_mut(), Some(horizon));
            let arrived = trace.tasks.len() as u64;
            assert!(
                s.completed == arrived && s.waits.len() as u64 == arrived,
                "{}: {} completed {} of {arrived} tasks",
                trace.name,
                a.name(),
                s.completed
            );
            println!("{}", row(a.name(), &s));
        }
    }
}

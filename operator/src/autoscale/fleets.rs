//! One poller task per autoscaled fleet (so a slow or failing engine delays only its own
//! fleet), and the per-fleet memory the reconciler asks for a [`Plan`]: the decision history,
//! the last decision, and the `spec.replicas` last seen (to tell a `kubectl scale` that is
//! ignored). Pollers run only on the leader: the reconciler starts them, leadership loss and
//! vanished objects stop them.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use tokio::sync::watch;
use tokio::time::Instant;

use super::decision::{History, Limit, Rules, decide};
use super::deletion_cost::{DELETION_COST, deletion_costs};
use super::engine::{self, Target};
use super::signals::{FleetSignals, fleet_signals};
use crate::crd::HatchetWorker;
use crate::error::Error;
use crate::status::{Problem, Scaling};

/// The token and HTTP client of a fleet are read again after this long (a rotated token
/// is picked up), or at once after the engine refused the token.
const TARGET_TTL: Duration = Duration::from_secs(60);

/// One poll's outcome.
#[derive(Debug, Clone)]
struct Sample {
    seq: u64,
    at: Duration,
    result: Result<FleetSignals, Problem>,
}

/// Aborts the task when dropped: a fleet's poller lives exactly as long as its entry.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Fleet {
    spec: watch::Sender<Arc<HatchetWorker>>,
    latest: Arc<Mutex<Option<Sample>>>,
    _poller: AbortOnDrop,
    history: Option<History>,
    decided: u64,
    replicas: Option<i32>,
    reason: Option<String>,
    limit: Option<Limit>,
    signals: Option<FleetSignals>,
    problem: Option<Problem>,
    last_scale_time: Option<Time>,
    spec_replicas_seen: i32,
}

/// What the reconciler should do for an autoscaled fleet.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The fleet's size.
    pub(crate) replicas: i32,
    /// A size change decided now: (from, to, reason), for an Event.
    pub(crate) scaled: Option<(i32, i32, String)>,
    /// `spec.replicas` changed to this while the autoscaler owns the size (for an Event).
    pub(crate) scale_ignored: Option<i32>,
    /// Pod deletion costs to set before shrinking: (pod, value).
    pub(crate) deletion_costs: Vec<(String, String)>,
    /// What the status reports.
    pub(crate) scaling: Scaling,
}

/// The pollers and memory of every autoscaled fleet in one watch scope.
pub(crate) struct Fleets {
    client: Client,
    pods: Store<Pod>,
    trigger: UnboundedSender<ObjectRef<HatchetWorker>>,
    epoch: Instant,
    fleets: Mutex<HashMap<ObjectRef<HatchetWorker>, Fleet>>,
}

impl Fleets {
    /// `trigger` asks the controller to reconcile a fleet after each of its polls.
    pub(crate) fn new(client: Client, pods: Store<Pod>, trigger: UnboundedSender<ObjectRef<HatchetWorker>>) -> Self {
        Self {
            client,
            pods,
            trigger,
            epoch: Instant::now(),
            fleets: Mutex::new(HashMap::new()),
        }
    }

    /// Stops every poller and forgets every history (leadership lost).
    pub(crate) fn stop_all(&self) {
        self.lock().clear();
    }

    /// Stops the pollers of fleets that no longer exist.
    pub(crate) fn forget_vanished(&self, hws: &Store<HatchetWorker>) {
        self.lock().retain(|k, _| hws.get(k).is_some());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<HatchetWorker>, Fleet>> {
        self.fleets.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The plan for `hw` (None without `spec.autoscaling`, which also stops its poller).
    /// `current`: the Deployment's `spec.replicas`, if it exists.
    pub(crate) fn plan(&self, hw: &Arc<HatchetWorker>, current: Option<i32>, now: &Time) -> Option<Plan> {
        let key = ObjectRef::from_obj(hw.as_ref());
        let mut fleets = self.lock();
        let Some(a) = &hw.spec.autoscaling else {
            fleets.remove(&key);
            return None;
        };
        let rules = Rules::from_spec(a, hw.spec.slots);
        let remembered: &[String] = hw.status.as_ref().map_or(&[], |s| s.actions.as_slice());
        let first = if remembered.is_empty() {
            rules.min.max(1)
        } else {
            rules.min
        };
        let actual = current.unwrap_or(first);
        let cur = actual.clamp(rules.min, rules.max);
        let fleet = fleets.entry(key.clone()).or_insert_with(|| self.start(hw, key));
        fleet.spec.send_if_modified(|old| {
            let changed = old.metadata.generation != hw.metadata.generation;
            *old = Arc::clone(hw);
            changed
        });
        let scale_ignored = (hw.spec.replicas != fleet.spec_replicas_seen).then_some(hw.spec.replicas);
        fleet.spec_replicas_seen = hw.spec.replicas;

        let sample = fleet
            .latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut scaled = None;
        match sample {
            Some(s) if s.seq > fleet.decided => {
                fleet.decided = s.seq;
                match s.result {
                    Ok(signals) => {
                        let obs = signals.observation();
                        let history = fleet.history.get_or_insert_with(|| History::starting_at(s.at, cur));
                        let d = decide(&obs, cur, &rules, history, s.at);
                        history.record(s.at, &obs, &rules, cur, &d);
                        if d.replicas != cur {
                            scaled = Some((cur, d.replicas, d.reason.clone()));
                            fleet.last_scale_time = Some(now.clone());
                        }
                        fleet.replicas = Some(d.replicas);
                        fleet.reason = Some(d.reason);
                        fleet.limit = d.limit;
                        fleet.signals = Some(signals);
                        fleet.problem = None;
                    }
                    Err(p) => fleet.problem = Some(p),
                }
            }
            _ => {}
        }
        let replicas = fleet.replicas.unwrap_or(cur).clamp(rules.min, rules.max);
        let costs = match &fleet.signals {
            // Against the pods there are: a lowered maxReplicas shrinks idle-first too.
            Some(signals) if replicas < actual => {
                let pods = live_pods(&self.pods, hw);
                let pods: Vec<(String, Option<String>)> = pods
                    .iter()
                    .map(|p| (p.name_any(), p.annotations().get(DELETION_COST).cloned()))
                    .collect();
                deletion_costs(&pods, &signals.pods)
            }
            _ => Vec::new(),
        };
        let status = hw.status.as_ref();
        let scaling = Scaling {
            slots: fleet.signals.as_ref().map(|s| {
                let o = s.observation();
                (o.slots_used, o.slots_total, o.queued)
            }),
            actions: match fleet.signals.as_ref().map(|s| s.actions.clone()) {
                Some(a) if !a.is_empty() => a,
                _ => remembered.to_vec(),
            },
            reason: fleet.reason.clone(),
            problem: fleet.problem.clone(),
            limit: fleet
                .limit
                .map(|l| (l.reason(), limit_message(l, &rules, fleet.reason.as_deref()))),
            last_scale_time: fleet
                .last_scale_time
                .clone()
                .or_else(|| status.and_then(|s| s.last_scale_time.clone())),
        };
        Some(Plan {
            replicas,
            scaled,
            scale_ignored,
            deletion_costs: costs,
            scaling,
        })
    }

    fn start(&self, hw: &Arc<HatchetWorker>, key: ObjectRef<HatchetWorker>) -> Fleet {
        let (tx, rx) = watch::channel(Arc::clone(hw));
        let latest = Arc::new(Mutex::new(None));
        let poller = Poller {
            client: self.client.clone(),
            pods: self.pods.clone(),
            trigger: self.trigger.clone(),
            epoch: self.epoch,
            latest: Arc::clone(&latest),
            key,
        };
        Fleet {
            spec: tx,
            latest,
            _poller: AbortOnDrop(tokio::spawn(poller.run(rx))),
            history: None,
            decided: 0,
            replicas: None,
            reason: None,
            limit: None,
            signals: None,
            problem: None,
            last_scale_time: None,
            spec_replicas_seen: hw.spec.replicas,
        }
    }
}

/// The fleet's pods that exist and are not terminating.
fn live_pods(pods: &Store<Pod>, hw: &HatchetWorker) -> Vec<Arc<Pod>> {
    crate::pods::live_fleet_pods(pods, &hw.namespace().unwrap_or_default(), &hw.name_any())
}

fn limit_message(l: Limit, rules: &Rules, reason: Option<&str>) -> String {
    match l {
        Limit::AtMin => format!("demand asks for fewer than minReplicas {}", rules.min),
        Limit::AtMax => format!("demand asks for more than maxReplicas {}", rules.max),
        _ => reason.unwrap_or_default().to_owned(),
    }
}

/// Polls one fleet's signals until aborted.
struct Poller {
    client: Client,
    pods: Store<Pod>,
    trigger: UnboundedSender<ObjectRef<HatchetWorker>>,
    epoch: Instant,
    latest: Arc<Mutex<Option<Sample>>>,
    key: ObjectRef<HatchetWorker>,
}

impl Poller {
    async fn run(self, mut spec: watch::Receiver<Arc<HatchetWorker>>) {
        let mut seq = 0;
        let mut target: Option<(Target, reqwest::Client, Instant)> = None;
        loop {
            let hw = Arc::clone(&spec.borrow_and_update());
            let interval = hw
                .spec
                .autoscaling
                .as_ref()
                .map_or(5, |a| a.poll_interval_seconds.max(1));
            let result = self.once(&hw, &mut target).await.map_err(|e| {
                tracing::warn!(hatchetworker = %self.key, error = %e, "cannot read the fleet's scaling signals");
                Problem {
                    reason: match &e {
                        Error::ScalingSignal { reason, .. } => reason,
                        _ => "SignalsUnreadable",
                    },
                    message: e.to_string(),
                }
            });
            seq += 1;
            *self.latest.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Sample {
                seq,
                at: self.epoch.elapsed(),
                result,
            });
            if self.trigger.unbounded_send(self.key.clone()).is_err() {
                return;
            }
            let wait = Duration::from_secs(u64::try_from(interval).unwrap_or(5));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                changed = spec.changed() => if changed.is_err() { return },
            }
        }
    }

    async fn once(
        &self,
        hw: &HatchetWorker,
        target: &mut Option<(Target, reqwest::Client, Instant)>,
    ) -> Result<FleetSignals, Error> {
        let ns = hw.namespace().unwrap_or_default();
        let (t, http, _) = match target.take() {
            Some(fresh) if fresh.2.elapsed() < TARGET_TTL => target.insert(fresh),
            _ => {
                let t = engine::target(&self.client, hw, &ns).await?;
                let http = engine::http_client(&t)?;
                target.insert((t, http, Instant::now()))
            }
        };
        let fleet_label = format!("{ns}.{}", hw.name_any());
        let (workers, queues) = match engine::read(http, t, &fleet_label).await {
            Ok(answers) => answers,
            Err(e) => {
                if matches!(
                    e,
                    Error::ScalingSignal {
                        reason: "EngineRefusedToken",
                        ..
                    }
                ) {
                    *target = None;
                }
                return Err(e);
            }
        };
        let live: BTreeSet<String> = live_pods(&self.pods, hw).iter().map(|p| p.name_any()).collect();
        let remembered = hw.status.as_ref().map_or(&[][..], |s| s.actions.as_slice());
        let prefix = engine::worker_prefix(hw.spec.connection.namespace.as_deref());
        Ok(fleet_signals(&workers, &queues, &live, &prefix, remembered))
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;
    use kube::runtime::reflector::store;
    use kube::runtime::watcher;
    use serde_json::json;

    use super::*;
    use crate::autoscale::signals::PodSlots;
    use crate::desired::FLEET_LABEL;
    use crate::desired::fixtures::mk_hw;

    /// A client for an address nothing listens on: the pollers never get to run in these
    /// single-threaded tests (nothing awaits), and would only fail if they did.
    fn offline_client() -> Client {
        // As the binary does: the workspace's one TLS provider.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("a URL"));
        Client::try_from(config).expect("a client")
    }

    fn pod(name: &str, cost: Option<&str>) -> Pod {
        let mut p: Pod = serde_json::from_value(json!({"metadata": {
            "name": name, "namespace": "team", "labels": {FLEET_LABEL: "fleet"}}}))
        .unwrap();
        if let Some(c) = cost {
            p.metadata.annotations = Some([(DELETION_COST.to_owned(), c.to_owned())].into());
        }
        p
    }

    fn fleets_with(pods: Vec<Pod>) -> Fleets {
        let (reader, mut writer) = store::<Pod>();
        for p in pods {
            writer.apply_watcher_event(&watcher::Event::Apply(p));
        }
        let (tx, _rx) = futures::channel::mpsc::unbounded();
        Fleets::new(offline_client(), reader, tx)
    }

    fn inject(f: &Fleets, hw: &HatchetWorker, seq: u64, secs: u64, result: Result<FleetSignals, Problem>) {
        let fleets = f.lock();
        let fleet = fleets.get(&ObjectRef::from_obj(hw)).expect("a poller for the fleet");
        *fleet.latest.lock().unwrap() = Some(Sample {
            seq,
            at: Duration::from_secs(secs),
            result,
        });
    }

    fn slots(used: i64) -> PodSlots {
        PodSlots { used, total: 2 }
    }

    #[tokio::test]
    async fn the_plan_marks_idle_pods_first_holds_when_blind_and_tells_an_ignored_scale() {
        let now = Time(Timestamp::from_second(1_000).unwrap());
        let hw = Arc::new(mk_hw(json!({"slots": 2, "autoscaling": {
            "minReplicas": 0, "maxReplicas": 5, "targetUtilization": 1.0,
            "scaleDown": {"stabilizationWindowSeconds": 0}}})));
        let f = fleets_with(vec![pod("a", None), pod("b", None), pod("c", Some("0"))]);

        // Before the first read: the fleet keeps its size and says it is waiting.
        let p = f.plan(&hw, Some(3), &now).unwrap();
        assert_eq!((p.replicas, p.scaled.clone()), (3, None));
        assert!(p.scaling.slots.is_none() && p.scaling.problem.is_none() && p.deletion_costs.is_empty());

        // Pod a runs 2 tasks, b and c none: 3 → 1, the costs written first (c's is right already).
        let signals = FleetSignals {
            pods: [("a".into(), slots(2)), ("b".into(), slots(0)), ("c".into(), slots(0))].into(),
            queued: 0,
            actions: vec!["wf:task".into()],
        };
        inject(&f, &hw, 1, 10, Ok(signals));
        let p = f.plan(&hw, Some(3), &now).unwrap();
        assert_eq!(p.replicas, 1);
        assert_eq!(p.scaled.as_ref().map(|s| (s.0, s.1)), Some((3, 1)));
        let mut costs = p.deletion_costs.clone();
        costs.sort();
        assert_eq!(
            costs,
            [("a".to_owned(), "2".to_owned()), ("b".to_owned(), "0".to_owned())]
        );
        assert_eq!(p.scaling.slots, Some((2, 6, 0)));
        assert_eq!(p.scaling.last_scale_time, Some(now.clone()));
        // Asked again without a new read: the same plan, no second Event.
        let again = f.plan(&hw, Some(3), &now).unwrap();
        assert_eq!((again.replicas, again.scaled), (1, None));

        // The engine unreachable: the size stays, the problem is reported.
        inject(
            &f,
            &hw,
            2,
            12,
            Err(Problem {
                reason: "EngineUnreachable",
                message: "GET http://e: cannot connect".into(),
            }),
        );
        let p = f.plan(&hw, Some(1), &now).unwrap();
        assert_eq!((p.replicas, p.scaled), (1, None));
        assert_eq!(p.scaling.problem.map(|p| p.reason), Some("EngineUnreachable"));

        // `kubectl scale` while autoscaling: told once, and ignored.
        let mut scaled_by_hand = (*hw).clone();
        scaled_by_hand.spec.replicas = 7;
        let scaled_by_hand = Arc::new(scaled_by_hand);
        let p = f.plan(&scaled_by_hand, Some(1), &now).unwrap();
        assert_eq!((p.scale_ignored, p.replicas), (Some(7), 1));
        assert_eq!(f.plan(&scaled_by_hand, Some(1), &now).unwrap().scale_ignored, None);

        // A lowered maxReplicas shrinks idle-first too: 3 busy-enough pods, then max 2.
        let f2 = fleets_with(vec![pod("a", None), pod("b", None), pod("c", None)]);
        assert_eq!(f2.plan(&hw, Some(3), &now).unwrap().replicas, 3);
        let busy = FleetSignals {
            pods: [("a".into(), slots(2)), ("b".into(), slots(2)), ("c".into(), slots(1))].into(),
            queued: 0,
            actions: vec!["wf:task".into()],
        };
        inject(&f2, &hw, 1, 10, Ok(busy));
        assert_eq!(f2.plan(&hw, Some(3), &now).unwrap().replicas, 3);
        let mut lowered = (*hw).clone();
        if let Some(a) = lowered.spec.autoscaling.as_mut() {
            a.max_replicas = 2;
        }
        let p = f2.plan(&Arc::new(lowered), Some(3), &now).unwrap();
        assert_eq!(p.replicas, 2);
        let mut costs = p.deletion_costs.clone();
        costs.sort();
        assert_eq!(
            costs,
            [
                ("a".into(), "2".into()),
                ("b".into(), "2".into()),
                ("c".into(), "1".into())
            ],
            "the least busy pod goes"
        );

        // Autoscaling removed: no plan, and the poller is gone.
        let mut manual = (*hw).clone();
        manual.spec.autoscaling = None;
        assert!(f.plan(&Arc::new(manual), Some(1), &now).is_none());
        assert!(f.lock().is_empty());
    }
}

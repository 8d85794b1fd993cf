//! One reconcile of a HatchetWorker: check the Secrets it names, apply the children whose
//! desired hash differs from the observed one, then patch the status if it changed and
//! record Events for condition transitions. Only the leader gets past the first lines.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, PartialObjectMeta, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::autoscale::deletion_cost::DELETION_COST;
use crate::autoscale::fleets::{Fleets, Plan};
use crate::crd::HatchetWorker;
use crate::desired::{
    FIELD_MANAGER, applied_hash, desired_deployment, desired_pdb, desired_service, desired_service_account,
    name_and_namespace, user_service_account, worker_container_name,
};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::pods::{live_fleet_pods, not_ready_summary};
use crate::status::{DEGRADED, Observed, Problem, READY, SCALING_ACTIVE, Scaling, compute_status, transitions};

/// Watch caches of the children and Secrets (metadata only) in one watch scope. `secrets` is
/// `None` where the operator may not list Secrets (the cluster-wide RBAC grants none): then
/// the spec's Secrets are not checked, and a missing one shows in the pods' waiting reason.
#[derive(Clone)]
pub(crate) struct Stores {
    pub(crate) deployments: Store<Deployment>,
    pub(crate) services: Store<Service>,
    pub(crate) pdbs: Store<PodDisruptionBudget>,
    pub(crate) service_accounts: Store<ServiceAccount>,
    pub(crate) pods: Store<Pod>,
    pub(crate) secrets: Option<Store<PartialObjectMeta<Secret>>>,
}

impl Stores {
    /// Resolves once every cache has listed its objects.
    pub(crate) async fn wait_synced(&self) -> Result<(), Error> {
        let e = |_| Error::CacheClosed;
        self.deployments.wait_until_ready().await.map_err(e)?;
        self.services.wait_until_ready().await.map_err(e)?;
        self.pdbs.wait_until_ready().await.map_err(e)?;
        self.service_accounts.wait_until_ready().await.map_err(e)?;
        self.pods.wait_until_ready().await.map_err(e)?;
        if let Some(secrets) = &self.secrets {
            secrets.wait_until_ready().await.map_err(e)?;
        }
        Ok(())
    }
}

impl Stores {
    /// Whether the cache of `kind` holds `ns/name`.
    fn holds(&self, kind: &str, ns: &str, name: &str) -> bool {
        fn has<K: Resource<DynamicType = ()> + Clone>(store: &Store<K>, ns: &str, name: &str) -> bool {
            store.get(&ObjectRef::new(name).within(ns)).is_some()
        }
        match kind {
            "Deployment" => has(&self.deployments, ns, name),
            "Service" => has(&self.services, ns, name),
            "PodDisruptionBudget" => has(&self.pdbs, ns, name),
            "ServiceAccount" => has(&self.service_accounts, ns, name),
            _ => false,
        }
    }
}

/// What a reconcile needs.
pub(crate) struct Context {
    pub(crate) client: Client,
    pub(crate) stores: Stores,
    pub(crate) metrics: Metrics,
    pub(crate) recorder: Recorder,
    pub(crate) leader: watch::Receiver<bool>,
    /// How often a healthy HatchetWorker is looked at again without any event.
    pub(crate) resync: Duration,
    /// Consecutive failures per object, for the error policy's backoff.
    pub(crate) failures: Mutex<HashMap<ObjectRef<HatchetWorker>, u32>>,
    /// Per child (kind, namespace, name): the generation this process last applied or
    /// accepted, to notice spec changes made by someone else.
    pub(crate) generations: Mutex<HashMap<(&'static str, String, String), i64>>,
    /// The autoscaled fleets' pollers and decision memory.
    pub(crate) fleets: Fleets,
}

impl Context {
    /// Drops the backoff counts and child generations of objects that no longer exist, so a
    /// long-running operator does not keep an entry for every fleet it ever saw.
    pub(crate) fn forget_vanished(&self, hatchet_workers: &Store<HatchetWorker>) {
        if let Ok(mut f) = self.failures.lock() {
            f.retain(|hw, _| hatchet_workers.get(hw).is_some());
        }
        if let Ok(mut g) = self.generations.lock() {
            g.retain(|(kind, ns, name), _| self.stores.holds(kind, ns, name));
        }
        self.fleets.forget_vanished(hatchet_workers);
        for gone in self.metrics.fleets_not_in(|ns, name| {
            hatchet_workers
                .get(&ObjectRef::new(name).within(ns))
                .is_some_and(|hw| hw.spec.autoscaling.is_some())
        }) {
            self.metrics.forget_fleet(&gone.0, &gone.1);
        }
    }
}

/// The reconciler (see the module docs), inside a span naming the object, so every line of one
/// HatchetWorker's reconciles can be found by its namespace and name.
pub(crate) async fn reconcile(hw: Arc<HatchetWorker>, ctx: Arc<Context>) -> Result<Action, Error> {
    let span = tracing::info_span!(
        "reconcile",
        namespace = %hw.metadata.namespace.as_deref().unwrap_or_default(),
        name = %hw.metadata.name.as_deref().unwrap_or_default(),
    );
    reconcile_object(hw, ctx).instrument(span).await
}

async fn reconcile_object(hw: Arc<HatchetWorker>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.stores.wait_synced().await?;
    if !*ctx.leader.borrow() {
        // Followers keep their caches warm; becoming leader reconciles everything.
        return Ok(Action::await_change());
    }
    let _timer = ctx.metrics.reconcile_started();
    if hw.metadata.deletion_timestamp.is_some() {
        // Owner references let the garbage collector remove the children.
        return Ok(Action::await_change());
    }
    let (name, ns) = name_and_namespace(&hw)?;
    let current = ctx
        .stores
        .deployments
        .get(&ObjectRef::new(&name).within(&ns))
        .and_then(|d| d.spec.replicas);
    let now = now();
    let plan = ctx.fleets.plan(&hw, current, &now);
    let replicas = match &plan {
        Some(plan) => act_on_plan(&hw, &ctx, &ns, plan, current).await?,
        None => hw.spec.replicas,
    };
    let scaling = plan.map(|p| p.scaling);
    let problem = match apply_children(&hw, &ctx, replicas).await {
        // A child was just written: its watch event brings the next reconcile, which sees the
        // apiserver's answer; a status computed now from the cache would be stale (one write
        // saved per change).
        Ok(true) => {
            forget_failures(&ctx, &hw);
            return Ok(Action::requeue(ctx.resync));
        }
        Ok(false) => None,
        Err(e @ Error::CacheClosed) => return Err(e),
        // Every other failure is the user's to see in the status (and an Event), then retried.
        Err(e) => Some((
            Problem {
                reason: e.condition_reason(),
                message: e.to_string(),
            },
            e,
        )),
    };
    let reported = update_status(
        &hw,
        &ctx,
        problem.as_ref().map(|(p, _)| p),
        replicas,
        scaling.as_ref(),
        &now,
    )
    .await;
    match (problem, reported) {
        (Some((_, e)), Err(status_err)) => {
            tracing::warn!(error = %status_err, "could not report the failure in the status");
            Err(e)
        }
        (Some((_, e)), Ok(())) => Err(e),
        (None, Err(e)) => Err(e),
        (None, Ok(())) => {
            forget_failures(&ctx, &hw);
            Ok(Action::requeue(ctx.resync))
        }
    }
}

/// The second, rounded to whole seconds (as the apiserver stores times).
fn now() -> Time {
    Time(Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now()))
}

/// Tells the autoscaler's news in Events and, before a scale-in, marks the pods with their
/// deletion cost; returns the size to apply. While costs are being written the fleet keeps
/// its size: the pod events of those writes bring the next reconcile, which shrinks it once
/// the ReplicaSet controller can see which pods are idle.
async fn act_on_plan(
    hw: &HatchetWorker,
    ctx: &Context,
    ns: &str,
    plan: &Plan,
    current: Option<i32>,
) -> Result<i32, Error> {
    if let Some(wanted) = plan.scale_ignored {
        let note = format!(
            "spec.replicas={wanted} is ignored while spec.autoscaling is set: the autoscaler keeps {} \
             workers (remove spec.autoscaling to size the fleet by hand)",
            plan.replicas
        );
        publish_as(
            ctx,
            hw,
            &format!("IgnoreScaleTo{wanted}"),
            (EventType::Warning, "ScaleIgnored".into(), note),
        )
        .await;
    }
    if let Some((from, to, reason)) = &plan.scaled {
        ctx.metrics.scaled(ns, &hw.name_any(), to > from);
        // kube's recorder folds Events of one action and reason into a series that keeps the
        // first note: the sizes in the action keep each change its own Event.
        publish_as(
            ctx,
            hw,
            &format!("Scale{from}To{to}"),
            (EventType::Normal, "Scaled".into(), reason.clone()),
        )
        .await;
    }
    if plan.deletion_costs.is_empty() {
        return Ok(plan.replicas);
    }
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    for (pod, cost) in &plan.deletion_costs {
        ctx.metrics.wrote("Pod");
        let patch = serde_json::json!({"metadata": {"annotations": {DELETION_COST: cost}}});
        match pods.patch(pod, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(current.unwrap_or(plan.replicas))
}

/// Resets the object's backoff after a reconcile that went through.
fn forget_failures(ctx: &Context, hw: &HatchetWorker) {
    if let Ok(mut f) = ctx.failures.lock() {
        f.remove(&ObjectRef::from_obj(hw));
    }
}

/// Backoff per object: 2 s doubling to 5 min; the failure is counted by reason.
pub(crate) fn error_policy(hw: Arc<HatchetWorker>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_failed(err.metric_label());
    let n = ctx
        .failures
        .lock()
        .map(|mut f| {
            let n = f.entry(ObjectRef::from_obj(hw.as_ref())).or_insert(0);
            *n = n.saturating_add(1);
            *n
        })
        .unwrap_or(1);
    let delay = backoff(n);
    tracing::warn!(hatchetworker = %ObjectRef::from_obj(hw.as_ref()), error = %err, attempt = n, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// Retry delay after `n` consecutive failures: 2 s, 4 s, 8 s, ... capped at 5 minutes.
pub(crate) fn backoff(n: u32) -> Duration {
    let secs = 2u64.saturating_pow(n.clamp(1, 20));
    Duration::from_secs(secs.min(300))
}

/// Applies what differs; `Ok(true)` when anything was written.
async fn apply_children(hw: &HatchetWorker, ctx: &Context, replicas: i32) -> Result<bool, Error> {
    let (name, ns) = name_and_namespace(hw)?;
    if let Some(secrets) = &ctx.stores.secrets {
        check_secrets(hw, &ns, secrets)?;
    }

    let mut wrote = match desired_service_account(hw)? {
        Some(sa) => apply_if_changed(ctx, &ctx.stores.service_accounts, sa).await?,
        // The template names the account the operator made: it is the user's now, and stays.
        None if user_service_account(hw) == Some(name.as_str()) => false,
        None => delete_owned(ctx, &ctx.stores.service_accounts, &name, &ns, hw).await?,
    };
    wrote |= apply_if_changed(ctx, &ctx.stores.services, desired_service(hw)?).await?;
    wrote |= apply_if_changed(ctx, &ctx.stores.pdbs, desired_pdb(hw)?).await?;
    wrote |= apply_if_changed(ctx, &ctx.stores.deployments, desired_deployment(hw, replicas)?).await?;
    Ok(wrote)
}

/// Every Secret the spec names must exist (checked in the metadata cache; values are never read).
fn check_secrets(hw: &HatchetWorker, ns: &str, secrets: &Store<PartialObjectMeta<Secret>>) -> Result<(), Error> {
    for (what, name) in hw.spec.connection.secret_refs() {
        if secrets.get(&ObjectRef::new(name).within(ns)).is_none() {
            return Err(Error::SecretNotFound {
                namespace: ns.to_owned(),
                name: name.to_owned(),
                what,
            });
        }
    }
    Ok(())
}

/// A namespaced child kind the operator manages through a watch cache.
trait Child:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + k8s_openapi::Resource
    + Clone
    + DeserializeOwned
    + std::fmt::Debug
{
}

impl<K> Child for K where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + k8s_openapi::Resource
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
{
}

/// Server-side applies `desired` unless the cached object carries the same hash and nobody
/// changed its spec since (see [`crate::drift`]); `true` if it wrote.
async fn apply_if_changed<K>(ctx: &Context, store: &Store<K>, desired: K) -> Result<bool, Error>
where
    K: Child + Serialize,
{
    let kind = K::KIND;
    let name = desired.name_any();
    let ns = desired.namespace().unwrap_or_default();
    let key = (kind, ns.clone(), name.clone());
    let observed = store.get(&ObjectRef::new(&name).within(&ns));
    let facts = observed.as_deref().map(|o| crate::drift::Observed {
        hash: applied_hash(o),
        generation: o.meta().generation,
    });
    let baseline = ctx.generations.lock().expect("generations lock").get(&key).copied();
    if !crate::drift::needs_apply(facts, applied_hash(&desired), baseline) {
        if let (None, Some(g)) = (baseline, facts.and_then(|f| f.generation)) {
            ctx.generations.lock().expect("generations lock").insert(key, g);
        }
        return Ok(false);
    }
    if facts.is_some_and(|f| f.hash.is_some() && f.hash == applied_hash(&desired)) {
        tracing::info!(kind, namespace = %ns, name = %name, "reverting a change made outside the operator");
    } else {
        tracing::info!(kind, namespace = %ns, name = %name, "applying");
    }
    ctx.metrics.wrote(kind);
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
    let applied = match api
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&desired),
        )
        .await
    {
        Ok(applied) => applied,
        // Refused as invalid: the Deployment's content is the user's pod template; the other
        // children follow from the spec (name, disruption budget).
        Err(kube::Error::Api(s)) if s.is_invalid() && kind == "Deployment" => {
            return Err(Error::InvalidTemplate(s.message.clone()));
        }
        Err(kube::Error::Api(s)) if s.is_invalid() => {
            return Err(Error::ChildRejected {
                kind,
                message: s.message.clone(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(g) = applied.meta().generation {
        ctx.generations.lock().expect("generations lock").insert(key, g);
    }
    Ok(true)
}

/// Deletes the cached object of that name if this HatchetWorker controls it; `true` if it did.
async fn delete_owned<K: Child>(
    ctx: &Context,
    store: &Store<K>,
    name: &str,
    ns: &str,
    hw: &HatchetWorker,
) -> Result<bool, Error> {
    let kind = K::KIND;
    let Some(obj) = store.get(&ObjectRef::new(name).within(ns)) else {
        return Ok(false);
    };
    let ours = obj
        .owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && Some(&o.uid) == hw.metadata.uid.as_ref());
    if ours && obj.meta().deletion_timestamp.is_none() {
        tracing::info!(kind, namespace = %ns, name = %name, "deleting (no longer wanted)");
        ctx.metrics.wrote(kind);
        let api: Api<K> = Api::namespaced(ctx.client.clone(), ns);
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        return Ok(true);
    }
    Ok(false)
}

/// Patches the status subresource when the computed status differs from the stored one, and
/// records an Event for each condition transition worth telling.
async fn update_status(
    hw: &HatchetWorker,
    ctx: &Context,
    problem: Option<&Problem>,
    desired_replicas: i32,
    scaling: Option<&Scaling>,
    now: &Time,
) -> Result<(), Error> {
    let (name, ns) = name_and_namespace(hw)?;
    let dep = ctx.stores.deployments.get(&ObjectRef::new(&name).within(&ns));
    let pods: Vec<Pod> = live_fleet_pods(&ctx.stores.pods, &ns, &name)
        .iter()
        .map(|p| p.as_ref().clone())
        .collect();
    let pods_not_ready = not_ready_summary(&pods, &worker_container_name(hw));
    let status = compute_status(
        hw,
        Observed {
            deployment: dep.as_deref(),
            problem,
            pods_not_ready: pods_not_ready.as_deref(),
            desired_replicas,
            scaling,
        },
        now,
    );
    if scaling.is_some() {
        ctx.metrics.fleet(&ns, &name, &status);
    }
    if hw.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let api: Api<HatchetWorker> = Api::namespaced(ctx.client.clone(), &ns);
    let body = serde_json::json!({
        "apiVersion": HatchetWorker::api_version(&()),
        "kind": HatchetWorker::kind(&()),
        "status": status,
    });
    ctx.metrics.wrote("HatchetWorker");
    api.patch_status(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&body))
        .await?;

    let old = hw.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or(&[]);
    let was_degraded = old.iter().any(|c| c.type_ == DEGRADED && c.status == "True");
    let was_inactive = old.iter().any(|c| c.type_ == SCALING_ACTIVE && c.status == "False");
    for t in transitions(old, &status.conditions) {
        let event = match (t.type_.as_str(), t.status.as_str()) {
            (DEGRADED, "True") => (EventType::Warning, t.reason, t.message),
            (DEGRADED, "False") if was_degraded => (EventType::Normal, "Recovered".to_owned(), t.message),
            (READY, "True") => (EventType::Normal, t.reason, t.message),
            (SCALING_ACTIVE, "False") => (EventType::Warning, t.reason, t.message),
            (SCALING_ACTIVE, "True") if was_inactive => (EventType::Normal, "ScalingRecovered".to_owned(), t.message),
            _ => continue,
        };
        publish(ctx, hw, event).await;
    }
    Ok(())
}

async fn publish(ctx: &Context, hw: &HatchetWorker, event: (EventType, String, String)) {
    publish_as(ctx, hw, "Reconcile", event).await;
}

async fn publish_as(
    ctx: &Context,
    hw: &HatchetWorker,
    action: &str,
    (type_, reason, note): (EventType, String, String),
) {
    ctx.metrics.wrote("Event");
    let ev = Event {
        type_,
        reason,
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &hw.object_ref(&())).await {
        tracing::warn!(error = %e, "could not record an Event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_say_which_children_exist() {
        use kube::runtime::reflector::store;
        use kube::runtime::watcher::Event as WatchEvent;
        let (deployments, mut dep_writer) = store::<Deployment>();
        let mut d = Deployment::default();
        d.metadata.name = Some("fleet".into());
        d.metadata.namespace = Some("team".into());
        dep_writer.apply_watcher_event(&WatchEvent::Apply(d));
        let stores = Stores {
            deployments,
            services: store().0,
            pdbs: store().0,
            service_accounts: store().0,
            pods: store().0,
            secrets: None,
        };
        assert!(stores.holds("Deployment", "team", "fleet"));
        assert!(!stores.holds("Deployment", "other", "fleet"));
        assert!(!stores.holds("Service", "team", "fleet"));
        assert!(!stores.holds("Unknown", "team", "fleet"));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let got: Vec<u64> = [1, 2, 3, 8, 9, 30].iter().map(|n| backoff(*n).as_secs()).collect();
        assert_eq!(got, [2, 4, 8, 256, 300, 300]);
        assert_eq!(backoff(0).as_secs(), 2);
    }
}

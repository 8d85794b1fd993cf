//! Controller wiring: one kube-runtime `Controller` per watch scope (all namespaces, or each
//! namespace given with `--namespaces`), watching HatchetWorkers, owning Deployments,
//! Services, PodDisruptionBudgets and ServiceAccounts (through watch caches the reconciler
//! reads), watching the fleets' pods (their readiness and why not), and, where RBAC allows,
//! watching Secret metadata so a Secret's deletion or return re-reconciles the HatchetWorkers
//! that name it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::PartialObjectMeta;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::crd::HatchetWorker;
use crate::desired::{FLEET_LABEL, MANAGED_BY};
use crate::metrics::Metrics;
use crate::reconcile::{Context, Stores, error_policy, reconcile};
use crate::watch_health::{CappedBackoff, Health, NoBackoff};

/// Settings of the controllers.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Namespaces to watch; empty = all namespaces.
    pub namespaces: Vec<String>,
    /// Requeue interval of a healthy HatchetWorker.
    pub resync: Duration,
    /// This replica's identity (reported in Events).
    pub identity: String,
}

/// Runs the controllers until `shutdown` is cancelled. `health` is marked synced once every
/// watch cache has synced and follows each watch's errors after; `leader` gates writes and, on
/// becoming `true`, reconciles everything.
pub async fn run(
    client: Client,
    cfg: ControllerConfig,
    metrics: Metrics,
    leader: watch::Receiver<bool>,
    health: Health,
    shutdown: CancellationToken,
) {
    let scopes: Vec<Option<String>> = if cfg.namespaces.is_empty() {
        vec![None]
    } else {
        cfg.namespaces.iter().cloned().map(Some).collect()
    };
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "hatchet-operator".into(),
            instance: Some(cfg.identity.clone()),
        },
    );
    let mut synced = Vec::new();
    let mut runs = Vec::new();
    for scope in scopes {
        let Some(secret_checks) = may_list_secrets(&client, scope.as_deref(), &shutdown).await else {
            return;
        };
        let (fut, scope_synced) = scope_controller(
            scope,
            &cfg,
            secret_checks,
            Wiring {
                client: client.clone(),
                metrics: metrics.clone(),
                recorder: recorder.clone(),
                leader: leader.clone(),
                health: health.clone(),
                shutdown: shutdown.clone(),
            },
        );
        synced.push(scope_synced);
        runs.push(fut);
    }
    drop(leader);
    let readiness = async move {
        for s in synced {
            if s.await.is_err() {
                return;
            }
        }
        tracing::info!("watch caches synced; ready");
        health.set_synced();
    };
    tokio::join!(futures::future::join_all(runs), readiness);
}

type Synced = futures::future::BoxFuture<'static, Result<(), crate::Error>>;

/// What every scope's controller is wired to.
struct Wiring {
    client: Client,
    metrics: Metrics,
    recorder: Recorder,
    leader: watch::Receiver<bool>,
    health: Health,
    shutdown: CancellationToken,
}

/// One Controller for one scope, plus a future that resolves when its caches have synced.
fn scope_controller(
    scope: Option<String>,
    cfg: &ControllerConfig,
    secret_checks: bool,
    wiring: Wiring,
) -> (futures::future::BoxFuture<'static, ()>, Synced) {
    let Wiring {
        client,
        metrics,
        recorder,
        leader,
        health,
        shutdown,
    } = wiring;
    let children = watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGED_BY}"));
    let watch = Watch {
        client: &client,
        scope: scope.as_deref(),
        health: &health,
    };
    let (deployments, dep_stream) = watch.cached::<Deployment>("deployments", children.clone());
    let (services, svc_stream) = watch.cached::<Service>("services", children.clone());
    let (pdbs, pdb_stream) = watch.cached::<PodDisruptionBudget>("poddisruptionbudgets", children.clone());
    let (service_accounts, sa_stream) = watch.cached::<ServiceAccount>("serviceaccounts", children.clone());
    // The fleets' pods (labelled like the children), for why they are not ready.
    let (pods, pod_stream) = watch.cached::<Pod>("pods", children);
    // `Api<PartialObjectMeta<_>>` makes metadata-only requests: no Secret value is ever sent.
    let (secrets_reader, secret_stream) = if secret_checks {
        let (reader, stream) =
            watch.cached::<PartialObjectMeta<Secret>>("secrets (metadata)", watcher::Config::default());
        (Some(reader), Some(stream))
    } else {
        (None, None)
    };
    let (hw_store, hw_stream) = watch.cached::<HatchetWorker>("hatchetworkers", watcher::Config::default());

    let stores = Stores {
        deployments,
        services,
        pdbs,
        service_accounts,
        pods,
        secrets: secrets_reader,
    };
    let controller = Controller::for_stream(hw_stream.applied_objects(), hw_store.clone())
        .with_config(kube::runtime::controller::Config::default().debounce(Duration::from_millis(200)))
        .trigger_backoff(NoBackoff);
    let synced_stores = stores.clone();
    let synced_hw = hw_store.clone();
    let synced: Synced = Box::pin(async move {
        synced_hw
            .wait_until_ready()
            .await
            .map_err(|_| crate::Error::CacheClosed)?;
        synced_stores.wait_synced().await
    });

    let (trigger, polled) = futures::channel::mpsc::unbounded();
    let fleets = crate::autoscale::fleets::Fleets::new(client.clone(), stores.pods.clone(), trigger);
    let ctx = Arc::new(Context {
        fleets,
        client,
        stores,
        metrics,
        recorder,
        leader: leader.clone(),
        resync: cfg.resync,
        failures: Mutex::new(HashMap::new()),
        generations: Mutex::new(HashMap::new()),
    });
    // Runs as long as the controller does: forgets vanished objects, and stops the
    // autoscaler's pollers when leadership is lost (the next leader polls).
    let sweep = {
        let (ctx, hws, period) = (
            Arc::clone(&ctx),
            hw_store.clone(),
            cfg.resync.min(Duration::from_secs(60)),
        );
        let mut leader = leader.clone();
        async move {
            let mut every = tokio::time::interval(period);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => ctx.forget_vanished(&hws),
                    changed = leader.changed() => {
                        if changed.is_err() {
                            std::future::pending::<()>().await;
                        }
                        if !*leader.borrow_and_update() {
                            ctx.fleets.stop_all();
                        }
                    }
                }
            }
        }
    };
    let controller = controller
        .owns_stream(dep_stream.touched_objects())
        .owns_stream(svc_stream.touched_objects())
        .owns_stream(pdb_stream.touched_objects())
        .owns_stream(sa_stream.touched_objects())
        .watches_stream(pod_stream.touched_objects(), |pod| fleet_of(&pod));
    let controller = match secret_stream {
        Some(stream) => controller.watches_stream(stream.touched_objects(), move |secret| {
            hatchet_workers_naming(&hw_store, &secret)
        }),
        None => controller,
    };
    let run = controller
        .reconcile_on(polled)
        .reconcile_all_on(became_leader(leader))
        .graceful_shutdown_on(shutdown.cancelled_owned())
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::debug!(hatchetworker = %obj, "reconciled"),
                Err(kube::runtime::controller::Error::ReconcilerFailed(..)) => {} // logged by error_policy
                Err(e) => tracing::warn!(error = %e, "controller"),
            }
        });
    let fut = async move {
        tokio::select! {
            () = run => {}
            () = sweep => {}
        }
    };
    (Box::pin(fut), synced)
}

fn api<K>(client: &Client, scope: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match scope {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// What every watch of one scope shares.
struct Watch<'a> {
    client: &'a Client,
    scope: Option<&'a str>,
    health: &'a Health,
}

impl Watch<'_> {
    /// A watch cache of `K` in the scope and the stream of its events feeding it, each event
    /// recorded in the health board under `name` (with the scope), retried with the capped
    /// backoff.
    fn cached<K>(
        &self,
        name: &str,
        cfg: watcher::Config,
    ) -> (
        Store<K>,
        impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    )
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        let (reader, writer) = reflector::store::<K>();
        let health = self.health.clone();
        let name = match self.scope {
            Some(ns) => format!("{name} in {ns}"),
            None => name.to_owned(),
        };
        let events = watcher(api::<K>(self.client, self.scope), cfg).inspect(move |r| health.record(&name, r));
        let stream = reflector::reflector(writer, events).backoff(CappedBackoff::default());
        (reader, stream)
    }
}

/// HatchetWorkers in the Secret's namespace whose spec names it.
fn hatchet_workers_naming(
    hws: &Store<HatchetWorker>,
    secret: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<HatchetWorker>> {
    let (name, ns) = (secret.name_any(), secret.namespace());
    hws.state()
        .iter()
        .filter(|hw| hw.namespace() == ns && hw.spec.connection.secret_refs().iter().any(|(_, n)| *n == name))
        .map(|hw| ObjectRef::from_obj(hw.as_ref()))
        .collect()
}

/// The HatchetWorker a fleet pod belongs to (by its fleet label).
fn fleet_of(pod: &Pod) -> Option<ObjectRef<HatchetWorker>> {
    let fleet = pod.labels().get(FLEET_LABEL)?;
    Some(ObjectRef::new(fleet).within(&pod.namespace()?))
}

/// Emits `()` each time this replica becomes leader. The sender notifies only on a change
/// (see `leader::publish`), so every `true` seen here is a new leadership (even a lost and
/// regained one that the channel folded into one notification).
fn became_leader(rx: watch::Receiver<bool>) -> impl Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move {
        loop {
            rx.changed().await.ok()?;
            if *rx.borrow_and_update() {
                return Some(((), rx));
            }
        }
    })
}

/// Whether this operator may list Secrets in the scope (asked once at start-up with a
/// SelfSubjectAccessReview, which every authenticated identity may make): the namespaced
/// RBAC grants it, the cluster-wide RBAC does not. Retried until the apiserver answers;
/// `None` if shut down first.
async fn may_list_secrets(client: &Client, scope: Option<&str>, shutdown: &CancellationToken) -> Option<bool> {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    };
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: scope.map(str::to_owned),
                resource: Some("secrets".into()),
                verb: Some("list".into()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut backoff = CappedBackoff::default();
    loop {
        match api.create(&kube::api::PostParams::default(), &review).await {
            Ok(answer) => {
                let allowed = answer.status.is_some_and(|s| s.allowed);
                let scope = scope.unwrap_or("all namespaces");
                if allowed {
                    tracing::info!(scope, "may list Secrets: the Secrets HatchetWorkers name are checked");
                } else {
                    tracing::info!(
                        scope,
                        "may not list Secrets: a missing Secret shows in the pods' waiting reason instead"
                    );
                }
                return Some(allowed);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot ask the apiserver what this operator may do; retrying");
                let wait = backoff.next().unwrap_or(crate::watch_health::BACKOFF_MAX);
                tokio::select! {
                    () = shutdown.cancelled() => return None,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::fixtures::mk_hw;

    #[test]
    fn secrets_named_by_a_spec() {
        let hw = mk_hw(serde_json::json!({"connection": {
            "tokenSecretRef": {"name": "tok", "key": "t"},
            "tls": {"strategy": "mtls", "caSecretRef": {"name": "ca"}, "clientCertSecretRef": {"name": "cc"}}}}));
        let names: Vec<_> = hw.spec.connection.secret_refs().into_iter().map(|(_, n)| n).collect();
        assert_eq!(names, ["tok", "ca", "cc"]);
        let plain = mk_hw(serde_json::json!({"connection": {
            "tokenSecretRef": {"name": "tok", "key": "t"}, "tls": {"strategy": "none"}}}));
        assert_eq!(
            plain.spec.connection.secret_refs(),
            [("spec.connection.tokenSecretRef", "tok")]
        );
    }

    #[tokio::test]
    async fn leadership_gains_trigger_reconcile_all() {
        let (tx, rx) = watch::channel(false);
        let mut s = Box::pin(became_leader(rx));
        tx.send(true).unwrap();
        assert_eq!(s.next().await, Some(()));
        tx.send(false).unwrap();
        assert!(
            futures::poll!(s.next()).is_pending(),
            "losing leadership reconciles nothing"
        );
        tx.send(true).unwrap();
        assert_eq!(s.next().await, Some(()));
        drop(tx);
        assert_eq!(s.next().await, None);
    }
}

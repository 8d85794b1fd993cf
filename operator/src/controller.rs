//! Controller wiring: one kube-runtime `Controller` per watch scope (all namespaces, or each
//! namespace given with `--namespaces`), watching HatchetWorkers, owning Deployments,
//! Services, PodDisruptionBudgets and ServiceAccounts (through watch caches the reconciler
//! reads), watching the fleets' pods (their readiness and why not), and watching Secret metadata so a Secret's deletion or return re-reconciles the
//! HatchetWorkers that name it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Runs the controllers until `shutdown` is cancelled. `ready` is set once every watch cache
/// has synced; `leader` gates writes and, on becoming `true`, reconciles everything.
pub async fn run(
    client: Client,
    cfg: ControllerConfig,
    metrics: Metrics,
    leader: watch::Receiver<bool>,
    ready: Arc<AtomicBool>,
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
        let (fut, scope_synced) = scope_controller(
            client.clone(),
            scope,
            &cfg,
            metrics.clone(),
            recorder.clone(),
            leader.clone(),
            shutdown.clone(),
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
        ready.store(true, Ordering::Release);
    };
    tokio::join!(futures::future::join_all(runs), readiness);
}

type Synced = futures::future::BoxFuture<'static, Result<(), crate::Error>>;

/// One Controller for one scope, plus a future that resolves when its caches have synced.
fn scope_controller(
    client: Client,
    scope: Option<String>,
    cfg: &ControllerConfig,
    metrics: Metrics,
    recorder: Recorder,
    leader: watch::Receiver<bool>,
    shutdown: CancellationToken,
) -> (futures::future::BoxFuture<'static, ()>, Synced) {
    let children = watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGED_BY}"));
    let (deployments, dep_stream) = cached::<Deployment>(&client, scope.as_deref(), children.clone());
    let (services, svc_stream) = cached::<Service>(&client, scope.as_deref(), children.clone());
    let (pdbs, pdb_stream) = cached::<PodDisruptionBudget>(&client, scope.as_deref(), children.clone());
    let (service_accounts, sa_stream) = cached::<ServiceAccount>(&client, scope.as_deref(), children.clone());
    // The fleets' pods (labelled like the children), for why they are not ready.
    let (pods, pod_stream) = cached::<Pod>(&client, scope.as_deref(), children);
    let (secrets_reader, secrets_writer) = reflector::store::<PartialObjectMeta<Secret>>();
    let secret_stream = reflector::reflector(
        secrets_writer,
        watcher(
            api::<PartialObjectMeta<Secret>>(&client, scope.as_deref()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects();

    let stores = Stores {
        deployments,
        services,
        pdbs,
        service_accounts,
        pods,
        secrets: secrets_reader,
    };
    let controller = Controller::new(
        api::<HatchetWorker>(&client, scope.as_deref()),
        watcher::Config::default(),
    )
    .with_config(kube::runtime::controller::Config::default().debounce(Duration::from_millis(200)));
    let hw_store = controller.store();
    let synced_stores = stores.clone();
    let synced_hw = hw_store.clone();
    let synced: Synced = Box::pin(async move {
        synced_hw
            .wait_until_ready()
            .await
            .map_err(|_| crate::Error::CacheClosed)?;
        synced_stores.wait_synced().await
    });

    let ctx = Arc::new(Context {
        client,
        stores,
        metrics,
        recorder,
        leader: leader.clone(),
        resync: cfg.resync,
        failures: Mutex::new(HashMap::new()),
        generations: Mutex::new(HashMap::new()),
    });
    // Runs as long as the controller does.
    let sweep = {
        let (ctx, hws, period) = (Arc::clone(&ctx), hw_store.clone(), cfg.resync);
        async move {
            let mut every = tokio::time::interval(period);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                ctx.forget_vanished(&hws);
            }
        }
    };
    let run = controller
        .owns_stream(dep_stream)
        .owns_stream(svc_stream)
        .owns_stream(pdb_stream)
        .owns_stream(sa_stream)
        .watches_stream(secret_stream, move |secret| hatchet_workers_naming(&hw_store, &secret))
        .watches_stream(pod_stream, |pod| fleet_of(&pod))
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

/// A watch cache of `K` in the scope and the stream of touched objects feeding it.
fn cached<K>(
    client: &Client,
    scope: Option<&str>,
    cfg: watcher::Config,
) -> (Store<K>, impl Stream<Item = Result<K, watcher::Error>> + Send + 'static)
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
    let stream = reflector::reflector(writer, watcher(api::<K>(client, scope), cfg))
        .default_backoff()
        .touched_objects();
    (reader, stream)
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

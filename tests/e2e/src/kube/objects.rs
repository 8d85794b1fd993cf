//! Blocking, typed calls on one kind of object (in one namespace or cluster-wide), and waits
//! that watch the objects instead of polling them.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::TryStreamExt as _;
use k8s_openapi::api::autoscaling::v1::Scale;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::wait::{Condition, await_condition};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource, ResourceExt as _};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{FIELD_MANAGER, KubeError, block_on};

/// What the harness needs of a kind: a typed Kubernetes object (the k8s-openapi types, or a
/// custom resource such as the operator's `HatchetWorker`) that crosses threads.
pub trait Typed:
    Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
}

impl<K> Typed for K where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
}

/// The longest a failure message quotes of the last object seen.
const LAST_SEEN_CHARS: usize = 2000;

/// Objects of kind `K` in one scope; every call blocks until the apiserver answered.
#[derive(Clone)]
pub struct Objects<K> {
    api: Api<K>,
    /// `" in NS"`, or empty for cluster-scoped kinds: for error messages.
    scope: String,
}

impl<K: Typed> Objects<K> {
    pub(super) fn new(api: Api<K>, scope: String) -> Self {
        Self { api, scope }
    }

    fn what(&self, verb: &str, name: &str) -> String {
        format!("{verb} {}/{name}{}", K::plural(&()), self.scope)
    }

    fn call<T>(&self, verb: &str, name: &str, r: Result<T, kube::Error>) -> Result<T, KubeError> {
        r.map_err(|source| KubeError::Call {
            what: self.what(verb, name),
            source,
        })
    }

    /// The object `name`.
    pub fn get(&self, name: &str) -> Result<K, KubeError> {
        self.call("get", name, block_on(self.api.get(name)))
    }

    /// The object `name`, or `None` when it does not exist.
    pub fn get_opt(&self, name: &str) -> Result<Option<K>, KubeError> {
        self.call("get", name, block_on(self.api.get_opt(name)))
    }

    /// The objects matching the label `selector` (empty: all of them).
    pub fn list(&self, selector: &str) -> Result<Vec<K>, KubeError> {
        let params = ListParams::default().labels(selector);
        let list = self.call("list", selector, block_on(self.api.list(&params)))?;
        Ok(list.items)
    }

    /// The `/scale` subresource of `name` (what autoscalers and `kubectl scale` read).
    pub fn scale(&self, name: &str) -> Result<Scale, KubeError> {
        self.call("get the scale of", name, block_on(self.api.get_scale(name)))
    }

    /// Creates `obj` (an error if it exists).
    pub fn create(&self, obj: &K) -> Result<K, KubeError> {
        self.call(
            "create",
            &obj.name_any(),
            block_on(self.api.create(&PostParams::default(), obj)),
        )
    }

    /// Server-side applies `obj` as [`FIELD_MANAGER`], taking over fields others set (what a
    /// user's `kubectl apply --server-side --force-conflicts` does).
    pub fn apply(&self, obj: &K) -> Result<K, KubeError> {
        let name = obj.name_any();
        let params = PatchParams::apply(FIELD_MANAGER).force();
        self.call(
            "apply",
            &name,
            block_on(self.api.patch(&name, &params, &Patch::Apply(obj))),
        )
    }

    /// Parses a YAML manifest of one `K` and server-side applies it ([`Self::apply`]).
    pub fn apply_yaml(&self, manifest: &str) -> Result<K, KubeError> {
        self.apply(&parse(manifest)?)
    }

    /// Patches `name` with `patch` (a merge patch for a hand edit, an apply patch for fields of
    /// another manager), as [`FIELD_MANAGER`].
    pub fn patch<P: Serialize + Debug + Send + Sync>(&self, name: &str, patch: &Patch<P>) -> Result<K, KubeError> {
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        self.call("patch", name, block_on(self.api.patch(name, &params, patch)))
    }

    /// Deletes `name` without waiting for it to go (finalizers, graceful pod termination);
    /// one already gone counts as deleted.
    pub fn delete(&self, name: &str) -> Result<(), KubeError> {
        match self.call(
            "delete",
            name,
            block_on(self.api.delete(name, &DeleteParams::default())),
        ) {
            Err(e) if !e.is_not_found() => Err(e),
            _ => Ok(()),
        }
    }

    /// Watches `name` until `cond` holds (at most `timeout`) and returns the object; the
    /// timeout error says what was awaited and quotes the last state seen. A condition that
    /// holds for an absent object ends the wait with [`KubeError::Gone`] (use
    /// [`Self::wait_deleted`] to wait for absence).
    pub fn wait<C>(&self, what: &str, name: &str, timeout: Duration, cond: C) -> Result<K, KubeError>
    where
        C: Condition<K> + Send + Sync,
    {
        let (found, last) = self.wait_object(what, name, timeout, cond)?;
        found.ok_or_else(|| KubeError::Gone {
            what: format!("{what}: {} does not exist", self.what("", name).trim()),
            last,
        })
    }

    /// Watches `name` until it no longer exists (at most `timeout`).
    pub fn wait_deleted(&self, name: &str, timeout: Duration) -> Result<(), KubeError> {
        let what = format!("{} to be deleted", self.what("", name).trim());
        self.wait_object(&what, name, timeout, |obj: Option<&K>| obj.is_none())
            .map(|_| ())
    }

    fn wait_object<C>(
        &self,
        what: &str,
        name: &str,
        timeout: Duration,
        cond: C,
    ) -> Result<(Option<K>, String), KubeError>
    where
        C: Condition<K> + Send + Sync,
    {
        let last = Arc::new(Mutex::new("nothing yet".to_owned()));
        let seen = Arc::clone(&last);
        let watched = move |obj: Option<&K>| {
            *seen.lock().unwrap_or_else(|p| p.into_inner()) = describe(obj);
            cond.matches_object(obj)
        };
        let start = Instant::now();
        // The timer is made inside the runtime: it needs that runtime's clock.
        let outcome =
            block_on(async { tokio::time::timeout(timeout, await_condition(self.api.clone(), name, watched)).await });
        let last = last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match outcome {
            Ok(Ok(obj)) => Ok((obj, last)),
            Ok(Err(e)) => Err(KubeError::TimedOut {
                what: what.into(),
                waited: start.elapsed(),
                last: format!("the watch failed ({e}); before: {last}"),
            }),
            Err(_) => Err(KubeError::TimedOut {
                what: what.into(),
                waited: start.elapsed(),
                last,
            }),
        }
    }

    /// Watches the objects matching label `selector` until `probe` accepts the whole set (at
    /// most `timeout`); `Err(why)` means "not yet", and the last `why` ends up in the timeout
    /// error.
    pub fn wait_all<T, P>(&self, what: &str, selector: &str, timeout: Duration, mut probe: P) -> Result<T, KubeError>
    where
        T: Send,
        P: FnMut(&[K]) -> Result<T, String> + Send,
    {
        let mut last = "not listed yet".to_owned();
        let start = Instant::now();
        let config = watcher::Config::default().labels(selector);
        let api = self.api.clone();
        let watch = async {
            let mut events = pin!(watcher::watcher(api, config).default_backoff());
            let mut current = BTreeMap::new();
            let mut listing = BTreeMap::new();
            let mut synced = false;
            loop {
                match events.try_next().await {
                    Ok(Some(Event::Init)) => listing.clear(),
                    Ok(Some(Event::InitApply(obj))) => {
                        listing.insert(key(&obj), obj);
                    }
                    Ok(Some(Event::InitDone)) => {
                        current = std::mem::take(&mut listing);
                        synced = true;
                    }
                    Ok(Some(Event::Apply(obj))) => {
                        current.insert(key(&obj), obj);
                    }
                    Ok(Some(Event::Delete(obj))) => {
                        current.remove(&key(&obj));
                    }
                    Ok(None) => return None,
                    Err(e) => {
                        last = format!("the watch failed: {e}");
                        continue;
                    }
                }
                if synced {
                    let all: Vec<K> = current.values().cloned().collect();
                    match probe(&all) {
                        Ok(v) => return Some(v),
                        Err(why) => last = why,
                    }
                }
            }
        };
        let outcome = block_on(async { tokio::time::timeout(timeout, watch).await });
        outcome.ok().flatten().ok_or_else(|| KubeError::TimedOut {
            what: what.into(),
            waited: start.elapsed(),
            last,
        })
    }
}

/// Parses a YAML manifest of one object as a `K` (a manifest written for the user's view,
/// applied typed).
pub fn parse<K: Typed>(manifest: &str) -> Result<K, KubeError> {
    serde_saphyr::from_str(manifest).map_err(|e| KubeError::Manifest {
        kind: K::kind(&()).into_owned(),
        why: e.to_string(),
    })
}

fn key<K: Resource>(obj: &K) -> (String, String) {
    (obj.namespace().unwrap_or_default(), obj.name_any())
}

/// The status of `obj` (all of it when it has none), cut short, for failure messages.
fn describe<K: Serialize>(obj: Option<&K>) -> String {
    let Some(obj) = obj else {
        return "absent".into();
    };
    let json = serde_json::to_value(obj).unwrap_or_default();
    let shown = json.get("status").unwrap_or(&json).to_string();
    match shown.char_indices().nth(LAST_SEEN_CHARS) {
        Some((cut, _)) => format!("{}…", &shown[..cut]),
        None => shown,
    }
}

//! The Kubernetes side of the harness: a typed `kube::Client` for the local control plane
//! (the world's admin kubeconfig), with blocking calls so the synchronous tests and the async
//! demo use it alike, waits on watched objects, and a namespace per test.

mod cli;
mod namespace;
mod objects;

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace as NamespaceObject, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{DynamicObject, LogParams};
use kube::config::{AuthInfo, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext};
use kube::core::{ClusterResourceScope, NamespaceResourceScope};
use kube::{Api, Client, Config, ResourceExt as _};

use crate::World;

pub use cli::{kubectl, kubectl_stdin};
pub use namespace::Namespace;
pub use objects::{Objects, Typed, parse};

/// The field manager of everything the harness applies, so its fields are its own.
pub const FIELD_MANAGER: &str = "hatchet-e2e";

/// Why a Kubernetes call of the harness failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The kubeconfig could not be read or turned into a client.
    #[error("kubeconfig {path}: {why}")]
    Config {
        /// The file (or what stood for it).
        path: String,
        /// What was wrong with it.
        why: String,
    },
    /// The apiserver (or the way to it) refused a call.
    #[error("{what}: {source}")]
    Call {
        /// The call, e.g. `get pods/x in ns`.
        what: String,
        /// kube's error (an apiserver `Status` carries its message and code).
        source: kube::Error,
    },
    /// A manifest did not parse as the type it was meant to be.
    #[error("manifest of {kind}: {why}")]
    Manifest {
        /// The type it was read as.
        kind: String,
        /// The parser's complaint.
        why: String,
    },
    /// A wait ended on an object that does not exist.
    #[error("{what}; last seen: {last}")]
    Gone {
        /// What was awaited, and on which object.
        what: String,
        /// The last state the watch delivered before it went.
        last: String,
    },
    /// A watched condition did not hold in time.
    #[error("timed out after {waited:?} waiting for {what}; last seen: {last}")]
    TimedOut {
        /// What was awaited.
        what: String,
        /// How long it was watched.
        waited: Duration,
        /// The last state the watch delivered.
        last: String,
    },
}

impl KubeError {
    /// Whether the apiserver answered 404 (the object does not exist).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Call { source: kube::Error::Api(s), .. } if s.code == 404)
    }
}

/// Lets `?` turn a harness error into the `String` that `wait_for` probes return as "not yet".
impl From<KubeError> for String {
    fn from(e: KubeError) -> Self {
        e.to_string()
    }
}

/// The runtime every harness call runs on: one per process, never inside a test's own
/// runtime, so blocking callers and async callers (the demo) cannot nest runtimes.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hatchet-e2e-kube")
            .enable_all()
            .build()
            .expect("the harness's Kubernetes runtime")
    })
}

/// Runs `fut` to completion on the harness's runtime from a thread of its own, so the caller
/// may be a plain test thread or a task of another runtime.
pub fn block_on<F>(fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| runtime().block_on(fut))
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// A client of the local apiserver (admin unless made from another kubeconfig), cheap to clone
/// and small to hold.
#[derive(Clone)]
pub struct Kube {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    /// The kubeconfig's cluster (server and CA), for kubeconfigs of other users.
    cluster: NamedCluster,
}

impl Kube {
    /// A client with the world's admin kubeconfig (`KUBECONFIG` of the env file).
    pub fn admin(world: &World) -> Result<Self, KubeError> {
        let path = world.var("KUBECONFIG").map_err(|e| KubeError::Config {
            path: "KUBECONFIG".into(),
            why: e.to_string(),
        })?;
        Self::from_kubeconfig(path.as_ref())
    }

    /// A client with the kubeconfig at `path` (its current context).
    pub fn from_kubeconfig(path: &std::path::Path) -> Result<Self, KubeError> {
        let config_err = |why: String| KubeError::Config {
            path: path.display().to_string(),
            why,
        };
        let kubeconfig = Kubeconfig::read_from(path).map_err(|e| config_err(e.to_string()))?;
        let current = kubeconfig.current_context.clone().unwrap_or_default();
        let cluster_name = kubeconfig
            .contexts
            .iter()
            .find(|c| c.name == current)
            .and_then(|c| c.context.as_ref())
            .map(|c| c.cluster.clone())
            .ok_or_else(|| config_err(format!("no context {current:?}")))?;
        let cluster = kubeconfig
            .clusters
            .iter()
            .find(|c| c.name == cluster_name)
            .cloned()
            .ok_or_else(|| config_err(format!("no cluster {cluster_name:?}")))?;
        // The client's connection pool is spawned onto the runtime it is built on.
        let client = block_on(async {
            let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| e.to_string())?;
            Client::try_from(config).map_err(|e| e.to_string())
        })
        .map_err(config_err)?;
        Ok(Self {
            inner: Arc::new(Inner { client, cluster }),
        })
    }

    /// The underlying client, for calls the harness has no method for (run them with
    /// [`block_on`]).
    pub fn client(&self) -> Client {
        self.inner.client.clone()
    }

    /// Objects of kind `K` in namespace `ns`.
    pub fn namespaced<K>(&self, ns: &str) -> Objects<K>
    where
        K: Typed + kube::Resource<Scope = NamespaceResourceScope>,
    {
        Objects::new(Api::namespaced(self.client(), ns), format!(" in {ns}"))
    }

    /// Objects of the cluster-scoped kind `K`.
    pub fn cluster<K>(&self) -> Objects<K>
    where
        K: Typed + kube::Resource<Scope = ClusterResourceScope>,
    {
        Objects::new(Api::all(self.client()), String::new())
    }

    /// Objects of kind `K` in every namespace (reads only: a write needs its namespace).
    pub fn all_namespaces<K>(&self) -> Objects<K>
    where
        K: Typed + kube::Resource<Scope = NamespaceResourceScope>,
    {
        Objects::new(Api::all(self.client()), " in all namespaces".into())
    }

    /// A token of ServiceAccount `ns/name` valid for `seconds`, minted with a TokenRequest
    /// (what `kubectl create token` does).
    pub fn service_account_token(&self, ns: &str, name: &str, seconds: i64) -> Result<String, KubeError> {
        let api: Api<ServiceAccount> = Api::namespaced(self.client(), ns);
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                expiration_seconds: Some(seconds),
                ..Default::default()
            }),
            ..Default::default()
        };
        let answer = block_on(api.create_token_request(name, &Default::default(), &request)).map_err(|source| {
            KubeError::Call {
                what: format!("create a token for serviceaccount {ns}/{name}"),
                source,
            }
        })?;
        answer.status.and_then(|s| s.token).ok_or_else(|| KubeError::Config {
            path: format!("serviceaccount {ns}/{name}"),
            why: "the TokenRequest came back without a token".into(),
        })
    }

    /// A kubeconfig for this client's cluster that authenticates as ServiceAccount `ns/name`
    /// with a fresh token valid for `seconds`: a process run with it has exactly that
    /// account's permissions.
    pub fn service_account_kubeconfig(&self, ns: &str, name: &str, seconds: i64) -> Result<Kubeconfig, KubeError> {
        let token = self.service_account_token(ns, name, seconds)?;
        let user = format!("{ns}-{name}");
        Ok(Kubeconfig {
            clusters: vec![self.inner.cluster.clone()],
            auth_infos: vec![NamedAuthInfo {
                name: user.clone(),
                auth_info: Some(AuthInfo {
                    token: Some(token.into()),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            contexts: vec![NamedContext {
                name: user.clone(),
                context: Some(Context {
                    cluster: self.inner.cluster.name.clone(),
                    user: Some(user.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            current_context: Some(user),
            api_version: Some("v1".into()),
            kind: Some("Config".into()),
            ..Default::default()
        })
    }

    /// The last `lines` lines of container logs of pod `ns/pod`, or why they could not be
    /// read: for failure messages.
    pub fn pod_logs(&self, ns: &str, pod: &str, lines: i64) -> String {
        let api: Api<Pod> = Api::namespaced(self.client(), ns);
        let params = LogParams {
            tail_lines: Some(lines),
            ..Default::default()
        };
        block_on(api.logs(pod, &params)).unwrap_or_else(|e| format!("(no logs of {ns}/{pod}: {e})"))
    }

    /// Server-side applies every document of a multi-document YAML manifest (the operator's
    /// RBAC), each read as its typed kind; a kind the harness does not know is an error.
    pub fn apply_manifests(&self, yaml: &str) -> Result<(), KubeError> {
        let docs: Vec<DynamicObject> = serde_saphyr::from_multiple(yaml).map_err(|e| KubeError::Manifest {
            kind: "a multi-document manifest".into(),
            why: e.to_string(),
        })?;
        for doc in docs {
            let kind = doc.types.as_ref().map(|t| t.kind.clone()).unwrap_or_default();
            let ns = doc.namespace().unwrap_or_default();
            match kind.as_str() {
                "Namespace" => self.cluster::<NamespaceObject>().apply(&typed(doc)?).map(drop),
                "ClusterRole" => self.cluster::<ClusterRole>().apply(&typed(doc)?).map(drop),
                "ClusterRoleBinding" => self.cluster::<ClusterRoleBinding>().apply(&typed(doc)?).map(drop),
                "ServiceAccount" => self.namespaced::<ServiceAccount>(&ns).apply(&typed(doc)?).map(drop),
                "Role" => self.namespaced::<Role>(&ns).apply(&typed(doc)?).map(drop),
                "RoleBinding" => self.namespaced::<RoleBinding>(&ns).apply(&typed(doc)?).map(drop),
                other => Err(KubeError::Manifest {
                    kind: other.into(),
                    why: "not a kind the harness applies".into(),
                }),
            }?;
        }
        Ok(())
    }
}

/// A document of a manifest as its typed kind.
fn typed<K: Typed>(doc: DynamicObject) -> Result<K, KubeError> {
    doc.try_parse().map_err(|e| KubeError::Manifest {
        kind: K::kind(&()).into_owned(),
        why: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_on_serves_plain_threads_and_tasks_of_another_runtime() {
        assert_eq!(block_on(async { 1 }), 1);
        let other = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let got = other.block_on(async {
            block_on(async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                2
            })
        });
        assert_eq!(got, 2);
    }
}

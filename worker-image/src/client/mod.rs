//! The client side of Hatchet: trigger runs and await their results, check status, cancel,
//! push events; plus the per-run calls a worker's tasks make.

mod duplicates;
mod events;
mod rate_limits;
mod rest;
mod run_listener;
mod runs;
mod stream;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hatchet_proto::{PutLogRequest, PutStreamEventRequest, UpsertWorkerLabelsRequest, WorkerLabels};

pub use events::{BulkEvent, EventOptions};
pub(crate) use runs::Parent;
pub use runs::{RunDetails, RunRef, RunStatus, TaskRunDetail, TriggerOptions};
pub use stream::RunStream;

use crate::config::ClientConfig;
use crate::connection::Engine;
use crate::retry::{is_message_too_large, is_retryable, is_undelivered, jittered};
use crate::workflow::LabelValue;
use crate::{Error, Result};

/// How many times client calls retry a transient failure before giving up.
const CALL_ATTEMPTS: u32 = 6;
/// Per-call deadline for unary calls.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A Hatchet client: gRPC to the engine and REST to its API, with the tenant's token.
#[derive(Clone)]
pub struct Client {
    engine: Engine,
    config: Arc<ClientConfig>,
    http: reqwest::Client,
    /// The run subscription every clone's waits share, started by the first wait.
    runs: Arc<std::sync::OnceLock<run_listener::RunListener>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds a client; the connection is made on first use.
    pub fn new(config: ClientConfig) -> Result<Self> {
        let engine = Engine::connect(&config)?;
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| Error::Transport(e.to_string()))?;
        Ok(Self {
            engine,
            config: Arc::new(config),
            http,
            runs: Arc::default(),
        })
    }

    /// Builds a client from the `HATCHET_CLIENT_*` environment.
    pub fn from_env() -> Result<Self> {
        Self::new(ClientConfig::from_env()?)
    }

    /// The configuration in use.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    fn run_listener(&self) -> &run_listener::RunListener {
        self.runs
            .get_or_init(|| run_listener::RunListener::start(self.engine.dispatcher.clone()))
    }

    /// The engine's version (e.g. `v0.104.7`).
    pub async fn engine_version(&self) -> Result<String> {
        let r = call("GetVersion", || crate::runtime::WorkerEngine::get_version(self)).await?;
        Ok(r.version)
    }

    /// `PutLog`: one line of a task run, at an engine level (`DEBUG`, `INFO`, `WARN`, `ERROR`).
    pub(crate) async fn put_log(
        &self,
        task_run_external_id: &str,
        message: String,
        level: &str,
        retry_count: i32,
    ) -> Result<()> {
        call("PutLog", || {
            let mut c = self.engine.events.clone();
            let req = PutLogRequest {
                task_run_external_id: task_run_external_id.to_owned(),
                created_at: Some(now_timestamp()),
                message: message.clone(),
                level: Some(level.to_owned()),
                metadata: String::new(),
                task_retry_count: Some(retry_count),
            };
            async move { c.put_log(req).await }
        })
        .await
        .map(drop)
    }

    pub(crate) async fn put_stream_event(&self, task_run_external_id: &str, chunk: Vec<u8>, index: i64) -> Result<()> {
        call("PutStreamEvent", || {
            let mut c = self.engine.events.clone();
            let req = PutStreamEventRequest {
                task_run_external_id: task_run_external_id.to_owned(),
                created_at: Some(now_timestamp()),
                message: chunk.clone(),
                metadata: String::new(),
                event_index: Some(index),
            };
            async move { c.put_stream_event(req).await }
        })
        .await
        .map(drop)
    }

    pub(crate) async fn upsert_worker_labels(
        &self,
        worker_id: &str,
        labels: BTreeMap<String, LabelValue>,
    ) -> Result<()> {
        let labels = worker_labels(&labels);
        call("UpsertWorkerLabels", || {
            let mut d = self.engine.dispatcher.clone();
            let req = UpsertWorkerLabelsRequest {
                worker_id: worker_id.to_owned(),
                labels: labels.clone(),
            };
            async move { d.upsert_worker_labels(req).await }
        })
        .await
        .map(drop)
    }
}

/// Label values in their wire form.
pub(crate) fn worker_labels(labels: &BTreeMap<String, LabelValue>) -> std::collections::HashMap<String, WorkerLabels> {
    labels
        .iter()
        .map(|(k, v)| {
            let l = match v {
                LabelValue::Str(s) => WorkerLabels {
                    str_value: Some(s.clone()),
                    int_value: None,
                },
                LabelValue::Int(i) => WorkerLabels {
                    str_value: None,
                    int_value: Some(*i),
                },
            };
            (k.clone(), l)
        })
        .collect()
}

pub(crate) fn now_timestamp() -> prost_types::Timestamp {
    prost_types::Timestamp::from(std::time::SystemTime::now())
}

/// How long a unary call keeps retrying transient failures.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Persistence {
    /// A fixed number of tries: the caller decides what a failure means.
    Attempts(u32),
    /// Until this much time has passed: results that must survive an engine restart.
    Within(Duration),
}

/// The metadata a run or event goes out with: the caller's, plus the current trace context
/// when the `otel` feature traces this program (so what it starts continues its trace).
pub(crate) fn outgoing_metadata(
    metadata: &serde_json::Map<String, serde_json::Value>,
) -> Cow<'_, serde_json::Map<String, serde_json::Value>> {
    #[cfg(feature = "otel")]
    {
        let mut traced = metadata.clone();
        crate::telemetry::otel::inject(&mut traced);
        if traced.len() != metadata.len() {
            return Cow::Owned(traced);
        }
    }
    Cow::Borrowed(metadata)
}

/// Runs a unary call with a deadline, retrying transient statuses with full-jitter backoff.
pub(crate) async fn call<T, F, Fut>(name: &'static str, f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
{
    call_with(name, Persistence::Attempts(CALL_ATTEMPTS), CALL_TIMEOUT, f).await
}

/// [`call`] for a request that must not take effect twice: retried only when the engine
/// certainly did not act on it ([`is_undelivered`]); an ambiguous failure (a deadline, an
/// internal error) is returned to the caller, who knows whether a duplicate is acceptable.
pub(crate) async fn call_unrepeatable<T, F, Fut>(name: &'static str, f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
{
    call_retrying(
        name,
        Persistence::Attempts(CALL_ATTEMPTS),
        CALL_TIMEOUT,
        is_undelivered,
        f,
    )
    .await
}

/// [`call`] with its own persistence and per-try deadline. `f` builds each try afresh, so a
/// request can carry the time it was sent.
pub(crate) async fn call_with<T, F, Fut>(
    name: &'static str,
    persistence: Persistence,
    per_try: Duration,
    f: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
{
    call_retrying(name, persistence, per_try, is_retryable, f).await
}

/// [`call_with`], retrying on the codes `retryable` accepts.
pub(crate) async fn call_with_codes<T, F, Fut>(
    name: &'static str,
    persistence: Persistence,
    per_try: Duration,
    retryable: fn(tonic::Code) -> bool,
    f: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
{
    call_retrying(name, persistence, per_try, retryable, f).await
}

async fn call_retrying<T, F, Fut>(
    name: &'static str,
    persistence: Persistence,
    per_try: Duration,
    retryable: fn(tonic::Code) -> bool,
    mut f: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
{
    let started = tokio::time::Instant::now();
    let mut attempt = 0;
    loop {
        let status = match tokio::time::timeout(per_try, f()).await {
            Ok(Ok(r)) => return Ok(r.into_inner()),
            Ok(Err(s)) => s,
            Err(_) => tonic::Status::deadline_exceeded(format!("{name} took longer than {per_try:?}")),
        };
        attempt += 1;
        let exhausted = match persistence {
            Persistence::Attempts(n) => attempt >= n,
            Persistence::Within(budget) => started.elapsed() >= budget,
        };
        if !retryable(status.code()) || exhausted || is_message_too_large(&status) {
            return Err(Error::rpc(name, status));
        }
        let wait = jittered(attempt, Duration::from_millis(250), Duration::from_secs(5));
        match persistence {
            Persistence::Attempts(_) => {
                tracing::debug!(call = name, code = ?status.code(), ?wait, "retrying engine call")
            }
            Persistence::Within(_) => {
                tracing::warn!(call = name, code = ?status.code(), attempt, "engine call failed; retrying")
            }
        }
        tokio::time::sleep(wait).await;
    }
}

//! Helpers for tests that run `hatchet-worker` workers in-process against the local engine.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hatchet_worker::{Client, ClientConfig, Exit, TlsStrategy, Worker, WorkerHandle};

use crate::World;

/// A client for the local engine, configured from the env file `tests/env/up` wrote.
/// Also routes the worker's logs to the test output (filter with `RUST_LOG`).
pub fn client(world: &World) -> Client {
    init_logs();
    Client::new(config(world)).expect("client for the local engine")
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,hatchet_worker=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// A client for the local engine whose workflows, events and workers live in `namespace`.
pub fn client_in(world: &World, namespace: &str) -> Client {
    init_logs();
    Client::new(config_in(world, namespace)).expect("client for the local engine")
}

/// The client configuration for the local engine (health server off: tests run many workers).
pub fn config(world: &World) -> ClientConfig {
    config_in(world, "")
}

/// [`config`] in a Hatchet namespace (empty for none).
pub fn config_in(world: &World, namespace: &str) -> ClientConfig {
    ClientConfig::builder(world.token().expect("token"))
        .namespace(namespace)
        .host_port(world.var("HATCHET_CLIENT_HOST_PORT").expect("host port"))
        .server_url(world.server_url().expect("server url"))
        .tenant_id(world.tenant_id().expect("tenant"))
        .tls_strategy(TlsStrategy::None)
        .healthcheck_enabled(false)
        .build()
        .expect("config for the local engine")
}

/// A name no other test (or earlier run) uses, so workers only receive their own test's runs.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{:x}-{}",
        std::process::id(),
        nanos % 0xffff_ffff,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A worker running on this test's runtime.
pub struct RunningWorker {
    /// Its handle: readiness, identity, the drain switch.
    pub handle: WorkerHandle,
    inner: hatchet_worker::RunningWorker,
}

/// Starts `worker` in the background and waits until it is ready (workflows registered,
/// stream up, heartbeat acknowledged), so runs triggered next find their workflow.
pub async fn start(worker: Worker) -> RunningWorker {
    let inner = tokio::time::timeout(Duration::from_secs(60), worker.start())
        .await
        .expect("worker ready within 60s")
        .unwrap_or_else(|e| panic!("the worker stopped before it was ready: {e}"));
    RunningWorker {
        handle: inner.handle().clone(),
        inner,
    }
}

/// [`start`]s a worker of `client` (uniquely named) that serves `workflow` alone.
pub async fn serve(client: &Client, workflow: hatchet_worker::Workflow) -> RunningWorker {
    let worker = Worker::builder(client.clone(), unique("w"))
        .workflow(workflow)
        .build()
        .unwrap_or_else(|e| panic!("worker definition: {e}"));
    start(worker).await
}

impl RunningWorker {
    /// Drains and stops the worker, returning how it exited.
    pub async fn stop(self) -> Exit {
        tokio::time::timeout(Duration::from_secs(120), self.inner.stop())
            .await
            .expect("worker stopped within 120s")
            .expect("worker exited without error")
    }

    /// Whether the worker's loop has ended (it should not, until stopped).
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }
}

/// Starts the engine again when dropped (a no-op if it is up), so a test that stops the shared
/// engine cannot leave it down for the tests after it, whether it passes or fails.
pub struct EngineBack;

impl Drop for EngineBack {
    fn drop(&mut self) {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../env/ctl");
        if let Err(e) = crate::run(std::process::Command::new(script).args(["start", "hatchet"])) {
            eprintln!("could not start the engine again: {e}");
        }
    }
}

/// Stops, starts or restarts the local engine through `tests/env/ctl` (blocking), for tests
/// that prove workers ride out an outage.
pub fn engine_ctl(action: &str) {
    env_ctl(action, "hatchet");
}

/// Stops, starts or restarts one component of the local world through `tests/env/ctl`.
pub fn env_ctl(action: &str, component: &str) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../env/ctl");
    crate::run(std::process::Command::new(script).args([action, component]))
        .unwrap_or_else(|e| panic!("{component} {action}: {e}"));
}

/// Starts the engine's database (and the engine, should it have stopped) again when dropped,
/// so a test that stops Postgres cannot leave the world without it.
pub struct DatabaseBack;

impl Drop for DatabaseBack {
    fn drop(&mut self) {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../env/ctl");
        for c in ["postgres", "hatchet"] {
            if let Err(e) = crate::run(std::process::Command::new(&script).args(["start", c])) {
                eprintln!("could not start {c} again: {e}");
            }
        }
    }
}

/// The engine version whose module the contract tests read.
pub const ENGINE_VERSION: &str = "v0.104.7";

/// The engine's `api-contracts/` directory (its protos and OpenAPI document):
/// `$HATCHET_API_CONTRACTS`, else the engine module `tests/env/build-peers` puts in
/// `$(go env GOMODCACHE)`. Never skips: a missing one fails, saying how to get it.
pub fn engine_contracts() -> std::path::PathBuf {
    const HINT: &str = "run `tests/env/build-peers` to put the Hatchet engine in the Go module cache, \
                        or set HATCHET_API_CONTRACTS to its api-contracts/ directory";
    let dir = match std::env::var_os("HATCHET_API_CONTRACTS") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => {
            let out = std::process::Command::new("go")
                .args(["env", "GOMODCACHE"])
                .output()
                .unwrap_or_else(|e| panic!("cannot run `go env GOMODCACHE` ({e}); {HINT}"));
            assert!(
                out.status.success(),
                "`go env GOMODCACHE` failed: {}; {HINT}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            let modcache = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            std::path::Path::new(&modcache)
                .join(format!("github.com/hatchet-dev/hatchet@{ENGINE_VERSION}/api-contracts"))
        }
    };
    assert!(
        dir.is_dir(),
        "the engine's contracts are not at {}; {HINT}",
        dir.display()
    );
    dir
}

/// `GET {server_url}{path}` of the engine's REST API as plain JSON, with `client`'s token:
/// for tests that read what no typed feature client covers (traces, task events, workflow
/// versions) and check the engine's raw answer.
pub async fn rest_json(client: &Client, path: &str) -> Result<serde_json::Value, String> {
    let config = client.config();
    let url = format!("{}{path}", config.server_url);
    let resp = reqwest::Client::new()
        .get(&url)
        .bearer_auth(config.token.expose())
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| format!("GET {path}: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "GET {path}: HTTP {status}: {}",
            body.chars().take(300).collect::<String>()
        ));
    }
    serde_json::from_str(&body).map_err(|e| format!("GET {path}: not JSON: {e}"))
}

/// A workflow `name` of one task, `nap`, that logs `lines` through its context, sleeps `ms`
/// from its input (ending early, retryably, when cancelled), fails its first attempt for good
/// when the input has `fail: true`, and returns `{"slept": ms}`: the run the REST and CLI tests
/// list, replay, cancel and read the logs of.
pub fn napper(name: &str, lines: &'static [&'static str]) -> hatchet_worker::Workflow {
    use hatchet_worker::{Context, Task, TaskError};
    use serde_json::{Value, json};
    hatchet_worker::Workflow::new(name).task(
        Task::new("nap", move |input: Value, ctx: Context| async move {
            for line in lines {
                ctx.log(*line)
                    .await
                    .map_err(|e| TaskError::retryable(format!("log: {e}")))?;
            }
            let ms = input["ms"].as_u64().unwrap_or(0);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
                _ = ctx.cancelled() => return Err(TaskError::retryable("cancelled")),
            }
            if input["fail"] == json!(true) && ctx.retry_count() == 0 {
                return Err(TaskError::non_retryable("asked to fail"));
            }
            Ok(json!({"slept": ms}))
        })
        .timeout(Duration::from_secs(120)),
    )
}

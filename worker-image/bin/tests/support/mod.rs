//! Running the `hatchet-worker` binary against the local engine, as a pod would.

use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use hatchet_e2e::World;
use hatchet_e2e::hatchet::unique;

/// A worker process with its health port.
pub(crate) struct WorkerProcess {
    pub(crate) child: Child,
    pub(crate) port: u16,
    pub(crate) name: String,
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts the binary with the world's connection env plus `extra`, and waits for `/readyz`.
pub(crate) async fn spawn_worker(
    world: &World,
    namespace: &str,
    slots: usize,
    extra: &[(&str, &str)],
) -> WorkerProcess {
    spawn_worker_logging(world, namespace, slots, extra, None).await
}

/// How many fresh ports a worker is started on: another process may take the port between
/// [`free_port`] and the worker's bind (tests of one binary run in parallel).
const PORT_ATTEMPTS: usize = 3;

/// As [`spawn_worker`], with the process's output written to `log` when given.
pub(crate) async fn spawn_worker_logging(
    world: &World,
    namespace: &str,
    slots: usize,
    extra: &[(&str, &str)],
    log: Option<&std::path::Path>,
) -> WorkerProcess {
    let name = unique("proc");
    for attempt in 1..=PORT_ATTEMPTS {
        let mut w = spawn_process(world, &name, namespace, slots, extra, log);
        match w.wait_own_ready(Duration::from_secs(60)).await {
            Ok(()) => return w,
            Err(status) if attempt < PORT_ATTEMPTS => {
                eprintln!("worker {name} exited before it was ready ({status}); starting it on another port");
            }
            Err(status) => panic!("worker {name} exited before it was ready ({status}), {attempt} times"),
        }
    }
    unreachable!("the last attempt returns or panics")
}

/// Starts the binary on a fresh health port without waiting for it to be ready (for a worker
/// started while the engine is away).
pub(crate) fn spawn_worker_unready(world: &World, namespace: &str, slots: usize) -> WorkerProcess {
    spawn_process(world, &unique("proc"), namespace, slots, &[], None)
}

fn spawn_process(
    world: &World,
    name: &str,
    namespace: &str,
    slots: usize,
    extra: &[(&str, &str)],
    log: Option<&std::path::Path>,
) -> WorkerProcess {
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hatchet-worker"));
    for var in [
        "HATCHET_CLIENT_TOKEN",
        "HATCHET_CLIENT_HOST_PORT",
        "HATCHET_CLIENT_SERVER_URL",
        "HATCHET_CLIENT_TLS_STRATEGY",
        "HATCHET_CLIENT_TENANT_ID",
    ] {
        cmd.env(var, world.var(var).unwrap());
    }
    cmd.env("HATCHET_CLIENT_NAMESPACE", namespace)
        .env("HATCHET_CLIENT_WORKER_HEALTHCHECK_PORT", port.to_string())
        .env("HATCHET_CLIENT_WORKER_HEALTHCHECK_BIND_ADDRESS", "127.0.0.1")
        .env("HATCHET_WORKER_NAME", name)
        .env("HATCHET_WORKER_SLOTS", slots.to_string())
        .env("HATCHET_CLIENT_LOG_LEVEL", "info")
        .stdin(Stdio::null());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    if let Some(path) = log {
        let f = std::fs::File::create(path).expect("log file");
        cmd.stderr(f.try_clone().unwrap()).stdout(f);
    }
    let child = cmd.spawn().expect("start hatchet-worker");
    WorkerProcess {
        child,
        port,
        name: name.to_owned(),
    }
}

impl WorkerProcess {
    /// Waits until this process (recognised by its name in `/status`, since another process
    /// may hold the port) is ready; `Err` with its exit status if it exits first.
    async fn wait_own_ready(&mut self, within: Duration) -> Result<(), ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(status);
            }
            let (_, s) = self.get_maybe("/status").await;
            if s["name"].as_str().is_some_and(|n| n.ends_with(&self.name)) && s["ready"] == true {
                return Ok(());
            }
            assert!(
                start.elapsed() < within,
                "worker {} not ready within {within:?}: {s}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// GET that tolerates a closed port (the server may not listen yet).
    async fn get_maybe(&self, path: &str) -> (u16, serde_json::Value) {
        match reqwest::get(self.url(path)).await {
            Ok(r) => (r.status().as_u16(), r.json().await.unwrap_or_default()),
            Err(_) => (0, serde_json::Value::Null),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = reqwest::get(self.url(path)).await.expect("health server answers");
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or_default())
    }

    /// Polls `/readyz` until it answers `code`; returns how long that took.
    pub(crate) async fn wait_status(&self, code: u16, within: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if let Ok(r) = reqwest::get(self.url("/readyz")).await
                && r.status().as_u16() == code
            {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "/readyz did not answer {code} within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls `/status` until `n` tasks are running.
    pub(crate) async fn wait_running(&self, n: usize) {
        let start = Instant::now();
        loop {
            let (_, s) = self.get("/status").await;
            if s["running"].as_array().map_or(0, Vec::len) == n {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{n} tasks never ran at once: {s}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits for the process to exit.
    pub(crate) async fn wait_exit(mut self, within: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > within {
                let _ = self.child.kill();
                panic!("worker {} did not exit within {within:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

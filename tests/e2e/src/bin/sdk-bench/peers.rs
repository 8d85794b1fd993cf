//! The workers under test and how each is started: ours (`sdk-bench worker`, on the
//! `hatchet-worker` library), the Go SDK's (tests/bench/go-worker, built by tests/bench/run)
//! and the Python SDK's (tests/bench/python_worker.py in the SDK's venv). Every one gets the
//! same `HATCHET_CLIENT_*` environment, slots and task set, and logs to a file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

/// A worker implementation under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Rust,
    Go,
    Python,
}

impl Kind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Rust => "ours (Rust)",
            Self::Go => "Go SDK",
            Self::Python => "Python SDK",
        }
    }

    /// The start of its workflows' names: `<prefix>-noop` and so on.
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Self::Rust => "bench-rust",
            Self::Go => "bench-go",
            Self::Python => "bench-py",
        }
    }

    pub(crate) fn parse(s: &str) -> anyhow::Result<Self> {
        match s {
            "rust" | "ours" => Ok(Self::Rust),
            "go" => Ok(Self::Go),
            "python" | "py" => Ok(Self::Python),
            other => anyhow::bail!("unknown worker {other:?} (rust, go, python)"),
        }
    }
}

/// Where the workers' programs are.
#[derive(Debug, Clone)]
pub(crate) struct Programs {
    pub(crate) go_worker: PathBuf,
    pub(crate) python: PathBuf,
    pub(crate) python_worker: PathBuf,
    pub(crate) log_dir: PathBuf,
}

/// A worker process this bench started.
pub(crate) struct Running {
    child: Child,
    pub(crate) pid: u32,
    pub(crate) name: String,
    /// Wall clock at spawn, seconds since the epoch (compared with the engine's timestamps).
    pub(crate) spawned_at: f64,
}

pub(crate) fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Programs {
    fn command(&self, kind: Kind, name: &str, slots: usize) -> anyhow::Result<Command> {
        let slots = slots.to_string();
        let mut c = match kind {
            Kind::Rust => {
                let mut c = Command::new(std::env::current_exe()?);
                c.args(["worker", "--prefix", kind.prefix(), "--name", name, "--slots", &slots]);
                c
            }
            Kind::Go => {
                let mut c = Command::new(&self.go_worker);
                c.args(["-prefix", kind.prefix(), "-name", name, "-slots", &slots]);
                c
            }
            Kind::Python => {
                let mut c = Command::new(&self.python);
                c.arg(&self.python_worker)
                    .args(["--prefix", kind.prefix(), "--name", name, "--slots", &slots]);
                c
            }
        };
        c.env("HATCHET_CLIENT_LOG_LEVEL", "warn")
            .env("HATCHET_CLIENT_WORKER_HEALTHCHECK_ENABLED", "false")
            .env_remove("HATCHET_CLIENT_NAMESPACE");
        Ok(c)
    }

    /// Starts a `kind` worker named `name` with `slots` slots, logging to `<log_dir>/<name>.log`.
    pub(crate) fn spawn(&self, kind: Kind, name: &str, slots: usize) -> anyhow::Result<Running> {
        std::fs::create_dir_all(&self.log_dir)?;
        let log = File::create(self.log_dir.join(format!("{name}.log")))?;
        let mut cmd = self.command(kind, name, slots)?;
        cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        let spawned_at = now_epoch();
        let child = cmd
            .spawn()
            .with_context(|| format!("starting the {} worker", kind.label()))?;
        Ok(Running {
            pid: child.id(),
            child,
            name: name.to_owned(),
            spawned_at,
        })
    }
}

impl Running {
    /// Whether it is still alive (a worker that exits early is a failed run of the bench).
    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then SIGKILL (to it and the processes it started) if it has not gone
    /// within `grace`.
    pub(crate) fn stop(mut self, grace: Duration) {
        self.terminate(grace);
    }

    fn terminate(&mut self, grace: Duration) {
        let tree = crate::procs::tree(self.pid);
        signal("-TERM", &[self.pid]);
        let until = Instant::now() + grace;
        while self.alive() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Children of a worker killed outright would outlive it.
        let left: Vec<u32> = tree
            .into_iter()
            .filter(|p| Path::new(&format!("/proc/{p}")).exists())
            .collect();
        signal("-KILL", &left);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.alive() {
            self.terminate(Duration::from_secs(2));
        }
    }
}

fn signal(sig: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(sig)
        .args(pids.iter().map(u32::to_string))
        .stderr(Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_and_name_their_workflows() {
        assert_eq!(Kind::parse("go").unwrap(), Kind::Go);
        assert_eq!(Kind::parse("ours").unwrap(), Kind::Rust);
        assert!(Kind::parse("java").is_err());
        assert_eq!(Kind::Python.prefix(), "bench-py");
    }
}

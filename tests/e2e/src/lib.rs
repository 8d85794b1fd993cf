//! Shared harness for the end-to-end tests: finds the local world that `tests/env/up`
//! started (through the env file it writes) and gives tests typed access to it.
//!
//! Tests never start peers themselves: `tests/run` brings the world up first, so a missing
//! env file is an error that says how to start it, never a silent skip.

pub mod hatchet;
pub mod http;
pub mod kube;
pub mod prometheus;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Why the harness could not describe the local world.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// The env file is missing: the world was not started (fatal for the test run).
    #[error("cannot read {path}: {source}; start the local world with tests/env/up (or run tests/run)")]
    EnvFile { path: PathBuf, source: std::io::Error },
    /// A variable the tests need is absent from the env file (fatal).
    #[error("{0} is not set in the env file written by tests/env/up")]
    Missing(&'static str),
    /// The token is not a Hatchet token (fatal).
    #[error("HATCHET_CLIENT_TOKEN is not a Hatchet token: {0}")]
    Token(#[from] hatchet_contract::token::TokenError),
}

/// The variables `tests/env/up` exported for the running world.
#[derive(Debug, Clone)]
pub struct World {
    vars: BTreeMap<String, String>,
}

impl World {
    /// Reads the env file named by `HATCHET_E2E_ENV_FILE`, else `tests/env/.run/env`.
    pub fn load() -> Result<Self, WorldError> {
        let path = std::env::var_os("HATCHET_E2E_ENV_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../env/.run/env"));
        let text = std::fs::read_to_string(&path).map_err(|source| WorldError::EnvFile { path, source })?;
        Ok(Self {
            vars: parse_env_file(&text),
        })
    }

    /// A variable from the env file.
    pub fn var(&self, name: &'static str) -> Result<&str, WorldError> {
        self.vars.get(name).map(String::as_str).ok_or(WorldError::Missing(name))
    }

    /// The API token for the default tenant.
    pub fn token(&self) -> Result<&str, WorldError> {
        self.var("HATCHET_CLIENT_TOKEN")
    }

    /// The REST base URL (no trailing slash).
    pub fn server_url(&self) -> Result<&str, WorldError> {
        self.var("HATCHET_CLIENT_SERVER_URL").map(|u| u.trim_end_matches('/'))
    }

    /// The tenant the token belongs to.
    pub fn tenant_id(&self) -> Result<&str, WorldError> {
        self.var("HATCHET_CLIENT_TENANT_ID")
    }

    /// The claims inside the token, read without verifying the signature (as the SDKs do).
    pub fn token_claims(&self) -> Result<hatchet_contract::token::TokenClaims, WorldError> {
        Ok(hatchet_contract::token::read_claims(self.token()?)?)
    }

    /// `kubectl` (the one built for the local control plane) talking to the local apiserver:
    /// `$KUBECTL` with `KUBECONFIG` set from the env file, whatever the caller's environment holds.
    pub fn kubectl(&self) -> Result<Command, WorldError> {
        let mut cmd = Command::new(self.var("KUBECTL")?);
        cmd.env("KUBECONFIG", self.var("KUBECONFIG")?);
        Ok(cmd)
    }

    /// `helm` (built with the control plane's Kubernetes minor) with `KUBECONFIG` set likewise.
    pub fn helm(&self) -> Result<Command, WorldError> {
        let mut cmd = Command::new(self.var("HELM")?);
        cmd.env("KUBECONFIG", self.var("KUBECONFIG")?);
        Ok(cmd)
    }
}

/// A command that could not be started or exited unsuccessfully.
#[derive(Debug, thiserror::Error)]
#[error("`{command}` {outcome}\nstdout: {stdout}\nstderr: {stderr}")]
pub struct CommandFailed {
    /// The program and its arguments, as run.
    pub command: String,
    /// "could not start: ..." or "exited with ...".
    pub outcome: String,
    /// What it printed on stdout (lossy UTF-8).
    pub stdout: String,
    /// What it printed on stderr (lossy UTF-8).
    pub stderr: String,
}

/// Runs `cmd` to completion (stdin closed) and returns its stdout when it exits with status 0.
pub fn run(cmd: &mut Command) -> Result<String, CommandFailed> {
    run_with_stdin(cmd, b"")
}

/// Like [`run`], with `input` written to the command's stdin (e.g. `kubectl apply -f -`).
pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Result<String, CommandFailed> {
    use std::io::Write as _;
    use std::process::Stdio;

    let command = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let failed = |outcome: String| CommandFailed {
        command: command.clone(),
        outcome,
        stdout: String::new(),
        stderr: String::new(),
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("could not start: {e}")))?;
    // Small inputs only: written before any output is read.
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .map_err(|e| failed(format!("could not write stdin: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(format!("could not wait: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    Err(CommandFailed {
        command,
        outcome: format!("exited with {}", out.status),
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// A condition that `wait_for` gave up on.
#[derive(Debug, thiserror::Error)]
#[error("timed out after {waited:?} waiting for {what}; last seen: {last}")]
pub struct TimedOut {
    /// What was awaited, as the caller described it.
    pub what: String,
    /// How long it was polled.
    pub waited: Duration,
    /// The probe's last explanation of why the condition did not hold yet.
    pub last: String,
}

/// Polls `probe` every `interval` until it returns `Ok`, for at most `timeout` (bounded: the
/// probe runs at least once and never after the deadline). `Err(why)` means "not yet"; the
/// last `why` ends up in the timeout error so a failure says what was seen.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> Result<T, TimedOut> {
    let start = Instant::now();
    loop {
        match probe() {
            Ok(v) => return Ok(v),
            Err(why) => {
                if start.elapsed() + interval > timeout {
                    return Err(TimedOut {
                        what: what.to_owned(),
                        waited: start.elapsed(),
                        last: why,
                    });
                }
            }
        }
        std::thread::sleep(interval);
    }
}

/// A path under the system temp dir that is removed (file or directory tree) when dropped,
/// pass or fail: test scratch (logs, keys, kubeconfigs with tokens) never outlives its test.
pub struct Scratch {
    /// The path; nothing is created until the test writes there.
    pub path: PathBuf,
}

impl Scratch {
    /// `$TMPDIR/<name>`, made unique by the process id.
    pub fn new(name: &str) -> Self {
        Self {
            path: std::env::temp_dir().join(format!("{name}-{}", std::process::id())),
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.path.is_dir() {
            let _ = std::fs::remove_dir_all(&self.path);
        } else {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Parses `export NAME=value` lines; single or double quotes around the value are removed.
fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                .unwrap_or(v);
            Some((k.trim().to_owned(), v.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_lines_are_parsed_and_unquoted() {
        let vars = parse_env_file("# comment\nexport A=1\nB='two words'\nexport C=\"x=y\"\n\nnot a pair\n");
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "x=y");
        assert_eq!(vars.len(), 3);
    }

    #[test]
    fn run_returns_stdout_or_says_what_failed() {
        assert_eq!(run(Command::new("sh").args(["-c", "echo hi"])).unwrap(), "hi\n");
        let err = run(Command::new("sh").args(["-c", "echo oops >&2; exit 3"])).unwrap_err();
        assert!(err.outcome.contains('3'), "{err}");
        assert_eq!(err.stderr, "oops\n");
        assert!(run(&mut Command::new("/nonexistent/program")).is_err());
    }

    #[test]
    fn wait_for_is_bounded_and_reports_the_last_observation() {
        let mut n = 0;
        let got = wait_for("n to reach 3", Duration::from_secs(5), Duration::ZERO, || {
            n += 1;
            if n >= 3 { Ok(n) } else { Err(format!("n={n}")) }
        });
        assert_eq!(got.unwrap(), 3);
        let err = wait_for::<()>("never", Duration::from_millis(30), Duration::from_millis(10), || {
            Err("still no".into())
        })
        .unwrap_err();
        assert_eq!(err.last, "still no");
        assert!(err.to_string().contains("never"), "{err}");
    }
}

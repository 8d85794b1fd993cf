//! Tasks useful for exercising a fleet: sleep, burn CPU, echo, fail N times then succeed, and
//! a durable sleep that outlives the worker it started on.
//! Every output names the worker that ran it and the attempt (1 for a first run), so tests can
//! see where runs went and that none ran twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hatchet_worker::{Context, DurableContext, Task, TaskError, Workflow};
use serde::Deserialize;
use serde_json::{Value, json};

/// Workflow names (the namespace, if any, is prefixed at registration).
pub(crate) const SLEEP: &str = "fleet-sleep";
pub(crate) const CPU: &str = "fleet-cpu";
pub(crate) const ECHO: &str = "fleet-echo";
pub(crate) const FLAKY: &str = "fleet-flaky";
pub(crate) const DURABLE_SLEEP: &str = "fleet-durable-sleep";

/// Long enough for any demo or drain test; the engine enforces it.
const LONG_TASK_TIMEOUT: Duration = Duration::from_secs(3600);

#[derive(Deserialize)]
struct Millis {
    #[serde(default)]
    ms: u64,
}

#[derive(Deserialize)]
struct Flaky {
    #[serde(default)]
    fail_times: u32,
}

/// The fleet's workflows, with `worker` (this worker's name) echoed in every output.
pub(crate) fn workflows(worker: &str) -> Vec<Workflow> {
    let name = worker.to_owned();
    let (n1, n2, n3, n4, n5) = (name.clone(), name.clone(), name.clone(), name.clone(), name);
    vec![
        Workflow::new(SLEEP).description("sleeps for `ms` milliseconds").task(
            Task::new("sleep", move |i: Millis, ctx: Context| {
                let worker = n1.clone();
                async move {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(i.ms)) => {}
                        _ = ctx.cancelled() => return Err(TaskError::retryable("cancelled while sleeping")),
                    }
                    Ok(json!({"worker": worker, "slept_ms": i.ms, "attempt": ctx.retry_count() + 1}))
                }
            })
            .timeout(LONG_TASK_TIMEOUT)
            .retries(3),
        ),
        Workflow::new(CPU)
            .description("keeps one core busy for `ms` milliseconds")
            .task(
                Task::new("burn", move |i: Millis, ctx: Context| {
                    let worker = n2.clone();
                    async move {
                        // A blocking loop does not see the cancel by itself: it polls a flag
                        // that the cancel (or this future being dropped) raises, and the slot is
                        // given back only once the core is free again.
                        let stop = StopOnDrop::default();
                        let flag = Arc::clone(&stop.0);
                        let mut work = tokio::task::spawn_blocking(move || burn(Duration::from_millis(i.ms), &flag));
                        let spins = tokio::select! {
                            done = &mut work => done,
                            () = ctx.cancelled() => {
                                stop.0.store(true, Ordering::Relaxed);
                                let _ = work.await;
                                return Err(TaskError::retryable("cancelled while burning"));
                            }
                        }
                        .map_err(|e| TaskError::retryable(format!("cpu task aborted: {e}")))?;
                        Ok(json!({"worker": worker, "burned_ms": i.ms, "spins": spins}))
                    }
                })
                .timeout(LONG_TASK_TIMEOUT),
            ),
        Workflow::new(ECHO)
            .description("returns its input")
            .task(Task::new("echo", move |i: Value, ctx: Context| {
                let worker = n3.clone();
                async move { Ok(json!({"worker": worker, "input": i, "attempt": ctx.retry_count() + 1})) }
            })),
        Workflow::new(FLAKY)
            .description("fails `fail_times` times, then succeeds")
            .task(
                Task::new("flaky", move |i: Flaky, ctx: Context| {
                    let worker = n4.clone();
                    async move {
                        if ctx.retry_count() < i.fail_times {
                            return Err(TaskError::retryable(format!(
                                "planned failure {} of {}",
                                ctx.retry_count() + 1,
                                i.fail_times
                            )));
                        }
                        Ok(json!({"worker": worker, "attempts": ctx.retry_count() + 1}))
                    }
                })
                .retries(5),
            ),
        Workflow::new(DURABLE_SLEEP)
            .description("sleeps `ms` milliseconds durably: the run survives the worker it started on")
            .task(
                Task::durable("sleep", move |i: Millis, ctx: DurableContext| {
                    let worker = n5.clone();
                    async move {
                        let first: String = ctx.memo("first-worker", || async { Ok(worker.clone()) }).await?;
                        ctx.sleep_for(Duration::from_millis(i.ms.max(1)))
                            .await
                            .map_err(TaskError::retryable)?;
                        Ok(json!({
                            "worker": worker,
                            "first_worker": first,
                            "slept_ms": i.ms,
                            "invocation": ctx.invocation_count(),
                            "attempt": ctx.retry_count() + 1,
                        }))
                    }
                })
                .timeout(LONG_TASK_TIMEOUT)
                .retries(3),
            ),
    ]
}

/// Raises its flag when dropped, so a blocking loop polling it stops with the task.
#[derive(Default)]
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Keeps a core busy for `d`, or until `stop` is raised.
fn burn(d: Duration, stop: &AtomicBool) -> u64 {
    let start = std::time::Instant::now();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut spins = 0;
    while start.elapsed() < d && !stop.load(Ordering::Relaxed) {
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        spins += 1;
    }
    std::hint::black_box(x);
    spins
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burning_stops_when_told() {
        let stop = StopOnDrop::default();
        let flag = Arc::clone(&stop.0);
        let started = std::time::Instant::now();
        let t = std::thread::spawn(move || burn(Duration::from_secs(30), &flag));
        std::thread::sleep(Duration::from_millis(50));
        drop(stop);
        t.join().unwrap();
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[test]
    fn burning_runs_its_time_otherwise() {
        let spins = burn(Duration::from_millis(30), &AtomicBool::new(false));
        assert!(spins > 0);
    }
}

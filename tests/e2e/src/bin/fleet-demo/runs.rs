//! The demo's runs: triggered through the engine, followed until each one ends, and counted so
//! the summary can say none was lost, failed or ran twice.

use std::collections::BTreeMap;

use hatchet_worker::{Client, RunStatus, TriggerOptions};
use serde_json::{Value, json};
use tokio::task::JoinSet;

/// How one run ended, as far as the demo knows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// Not finished yet.
    Pending,
    /// Completed: the worker that ran it and the attempt it succeeded on (1 = first).
    Completed { worker: String, attempt: i64 },
    /// Failed or cancelled, with the engine's error.
    Failed(String),
}

/// Every run the demo started, by burst.
#[derive(Debug, Default)]
pub(crate) struct Runs {
    /// Run id → (burst index, outcome).
    runs: BTreeMap<String, (usize, Outcome)>,
}

/// Counts over the runs of one burst (or all of them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) triggered: usize,
    pub(crate) completed: usize,
    pub(crate) failed: usize,
    pub(crate) pending: usize,
    /// Completed on a second or later attempt: the task ran more than once.
    pub(crate) retried: usize,
}

impl Runs {
    /// Triggers `count` runs of `fleet-sleep` sleeping `ms` each, as burst `burst`.
    pub(crate) async fn trigger(&mut self, client: &Client, burst: usize, count: usize, ms: u64) -> Result<(), String> {
        for i in 0..count {
            let run = client
                .trigger(
                    "fleet-sleep",
                    &json!({"ms": ms}),
                    TriggerOptions::default().metadata("burst", burst).metadata("i", i),
                )
                .await
                .map_err(|e| format!("trigger fleet-sleep: {e}"))?;
            self.runs.insert(run.id, (burst, Outcome::Pending));
        }
        Ok(())
    }

    /// Asks the engine about every run not finished yet (concurrently) and records the ends.
    pub(crate) async fn poll(&mut self, client: &Client) {
        let mut asks = JoinSet::new();
        for (id, (_, outcome)) in &self.runs {
            if *outcome == Outcome::Pending {
                let (client, id) = (client.clone(), id.clone());
                asks.spawn(async move { (client.run_details(&id).await, id) });
            }
        }
        while let Some(Ok((details, id))) = asks.join_next().await {
            let Ok(d) = details else { continue };
            let outcome = match d.status {
                RunStatus::Completed => {
                    let out = d.outputs().remove("sleep").unwrap_or(Value::Null);
                    Outcome::Completed {
                        worker: out["worker"].as_str().unwrap_or("?").to_owned(),
                        attempt: out["attempt"].as_i64().unwrap_or(0),
                    }
                }
                RunStatus::Failed | RunStatus::Cancelled => {
                    Outcome::Failed(d.error().unwrap_or("no error message").to_owned())
                }
                _ => continue,
            };
            if let Some(entry) = self.runs.get_mut(&id) {
                entry.1 = outcome;
            }
        }
    }

    /// Counts of burst `burst`, or of every run when `None`.
    pub(crate) fn counts(&self, burst: Option<usize>) -> Counts {
        let mut c = Counts::default();
        for (b, outcome) in self.runs.values() {
            if burst.is_some_and(|want| want != *b) {
                continue;
            }
            c.triggered += 1;
            match outcome {
                Outcome::Pending => c.pending += 1,
                Outcome::Completed { attempt, .. } => {
                    c.completed += 1;
                    if *attempt != 1 {
                        c.retried += 1;
                    }
                }
                Outcome::Failed(_) => c.failed += 1,
            }
        }
        c
    }

    /// Completed runs per worker (pod) that ran them.
    pub(crate) fn per_worker(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for (_, outcome) in self.runs.values() {
            if let Outcome::Completed { worker, .. } = outcome {
                *m.entry(worker.clone()).or_insert(0) += 1;
            }
        }
        m
    }

    /// The first failures' messages, for the summary.
    pub(crate) fn failures(&self) -> Vec<&str> {
        self.runs
            .values()
            .filter_map(|(_, o)| match o {
                Outcome::Failed(e) => Some(e.as_str()),
                _ => None,
            })
            .take(3)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_burst_and_a_retry_is_counted_as_running_twice() {
        let mut r = Runs::default();
        let done = |attempt| Outcome::Completed {
            worker: "w-1".into(),
            attempt,
        };
        r.runs.insert("a".into(), (0, done(1)));
        r.runs.insert("b".into(), (0, done(2)));
        r.runs.insert("c".into(), (0, Outcome::Failed("boom".into())));
        r.runs.insert("d".into(), (1, Outcome::Pending));
        let first = r.counts(Some(0));
        assert_eq!(
            first,
            Counts {
                triggered: 3,
                completed: 2,
                failed: 1,
                pending: 0,
                retried: 1
            }
        );
        assert_eq!(r.counts(Some(1)).pending, 1);
        assert_eq!(r.counts(None).triggered, 4);
        assert_eq!(r.per_worker().get("w-1"), Some(&2));
        assert_eq!(r.failures(), ["boom"]);
    }
}

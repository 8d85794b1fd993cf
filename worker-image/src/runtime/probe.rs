//! What the health server reads of a worker, answered from its published state.

use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::json;
use tokio::time::Instant;

use super::shared::Shared;
use super::state::{Lifecycle, stalled_for};
use super::worker::Exit;
use crate::health::{Probe, Readiness, Stopped};

impl Probe for Shared {
    fn stalled_for(&self) -> Option<Duration> {
        let life = self.lifecycle.borrow().clone();
        stalled_for(&life, &self.connection.borrow(), Instant::now())
    }

    fn readiness(&self) -> Readiness {
        self.readiness_at(Instant::now())
    }

    fn status(&self) -> serde_json::Value {
        let now = Instant::now();
        let c = self.connection.borrow().clone();
        let running: Vec<_> = self
            .in_flight
            .list()
            .into_iter()
            .map(|t| {
                json!({
                    "task_run_id": t.task_run,
                    "action": t.action_id,
                    "age_seconds": now.saturating_duration_since(t.since).as_secs_f64(),
                })
            })
            .collect();
        let mut actions: Vec<_> = self.actions.keys().cloned().collect();
        actions.sort();
        let labels: serde_json::Map<_, _> = self
            .labels
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    crate::LabelValue::Str(s) => json!(s),
                    crate::LabelValue::Int(i) => json!(i),
                };
                (k.clone(), v)
            })
            .collect();
        json!({
            "worker_id": c.worker_id,
            "name": self.name,
            "slots": {"total": self.slots.total(), "used": self.slots.used()},
            "running": running,
            "labels": labels,
            "actions": actions,
            "connection": {
                "state": format!("{:?}", c.phase),
                "last_heartbeat_age_seconds": c.heartbeat_age(now).map(|d| d.as_secs_f64()),
                "reconnects": c.reconnects,
            },
            "ready": self.readiness_at(now) == Readiness::Ready,
            "draining": self.is_draining(),
        })
    }

    fn drain(&self) {
        self.begin_drain();
    }

    fn stopped(&self) -> BoxFuture<'static, Stopped> {
        let mut life = self.lifecycle.subscribe();
        Box::pin(async move {
            let stopped = life.wait_for(Lifecycle::is_stopped).await;
            match stopped.as_deref() {
                Ok(Lifecycle::Stopped {
                    exit: Some(Exit::Drained),
                }) => Stopped::Drained,
                Ok(Lifecycle::Stopped {
                    exit: Some(Exit::DeadlineExceeded { abandoned }),
                }) => Stopped::Abandoned(*abandoned),
                _ => Stopped::Failed,
            }
        })
    }
}

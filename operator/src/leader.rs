//! Leader election on a `coordination.k8s.io/v1` Lease (via `kube-lease-manager`): every
//! replica watches and computes, only the Lease holder writes.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::Error;

/// Lease settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    /// Lease name.
    pub name: String,
    /// Lease namespace.
    pub namespace: String,
    /// This replica's identity (the pod name in a cluster).
    pub identity: String,
    /// How long a lease is valid without renewal; a dead leader is replaced after at most this.
    pub duration: Duration,
    /// How long before expiry the holder renews.
    pub grace: Duration,
}

impl LeaseConfig {
    /// Checks the timings (`0 < grace < duration`, whole seconds as the Lease stores them).
    pub fn validate(&self) -> Result<(u64, u64), String> {
        let (d, g) = (self.duration.as_secs(), self.grace.as_secs());
        if d == 0 || g == 0 {
            return Err("lease duration and renew grace must be at least 1 second".into());
        }
        if g >= d {
            return Err(format!(
                "lease renew grace ({g}s) must be shorter than the lease duration ({d}s)"
            ));
        }
        Ok((d, g))
    }
}

/// The state of the election: `is_leader()` says whether this replica may write.
#[derive(Debug)]
pub struct Election {
    rx: watch::Receiver<bool>,
    task: Option<JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>>,
    _always: Option<watch::Sender<bool>>,
}

impl Election {
    /// No election: this replica always leads (single-replica installs, `--leader-elect=false`).
    pub fn always_leader() -> Self {
        let (tx, rx) = watch::channel(true);
        Self {
            rx,
            task: None,
            _always: Some(tx),
        }
    }

    /// Joins the election on the Lease (created if missing) and keeps renewing it in the
    /// background while held.
    pub async fn start(client: Client, cfg: &LeaseConfig) -> Result<Self, Error> {
        let (duration, grace) = cfg.validate().map_err(Error::Lease)?;
        let manager = LeaseManagerBuilder::new(client, &cfg.name)
            .with_namespace(&cfg.namespace)
            .with_identity(&cfg.identity)
            .with_duration(duration)
            .with_grace(grace)
            .build()
            .await
            .map_err(|e| Error::Lease(e.to_string()))?;
        let (rx, task) = manager.watch().await;
        Ok(Self {
            rx,
            task: Some(task),
            _always: None,
        })
    }

    /// A receiver of leadership changes (`true` = this replica leads).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.rx.clone()
    }

    /// Leaves the election, releasing the Lease if held (every other receiver must be gone
    /// for the release to happen; waits at most `timeout`).
    pub async fn stop(self, timeout: Duration) {
        let Self { rx, task, _always } = self;
        drop(rx);
        if let Some(task) = task {
            match tokio::time::timeout(timeout, task).await {
                Ok(Ok(Ok(_))) => tracing::info!("leader lease released"),
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "leader election ended with an error"),
                Ok(Err(e)) => tracing::warn!(error = %e, "leader election task failed"),
                Err(_) => tracing::warn!("leader lease not released in time (other receivers alive)"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(d: u64, g: u64) -> LeaseConfig {
        LeaseConfig {
            name: "l".into(),
            namespace: "n".into(),
            identity: "i".into(),
            duration: Duration::from_secs(d),
            grace: Duration::from_secs(g),
        }
    }

    #[test]
    fn timings_table() {
        assert_eq!(cfg(15, 5).validate(), Ok((15, 5)));
        assert!(cfg(15, 15).validate().is_err());
        assert!(cfg(0, 1).validate().is_err());
        assert!(cfg(10, 0).validate().is_err());
    }

    #[tokio::test]
    async fn without_election_this_replica_leads() {
        let e = Election::always_leader();
        assert!(*e.subscribe().borrow());
        e.stop(Duration::from_millis(10)).await;
    }
}

//! Leader election on a `coordination.k8s.io/v1` Lease (via `kube-lease-manager`): every
//! replica watches and computes, only the Lease holder writes.
//!
//! The lease manager keeps saying "leader" while its renewals fail (it only learns otherwise
//! when a later call succeeds), so a leader cut off from the apiserver could keep writing
//! after its Lease expired and another replica took over. A guard therefore reads the Lease
//! itself and lets this replica write only while the Lease it last saw names it and has not
//! run out (minus a safety margin): the role client-go's renew deadline plays.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Client};
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

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

/// How long before the Lease it last saw runs out a leader stops writing (for request latency
/// and the two clocks that stamp and read `renewTime`).
const SAFETY_MARGIN: Duration = Duration::from_secs(2);
/// How often the guard reads the Lease while this replica leads.
const GUARD_PERIOD: Duration = Duration::from_secs(1);

/// Until when a Lease read at `read_at` (wall clock `now`) lets its holder write: its
/// `renewTime + leaseDurationSeconds`, minus [`SAFETY_MARGIN`], on the monotonic clock. `None`
/// when the Lease does not name `identity` or lacks the times.
pub fn lease_valid_until(lease: &Lease, identity: &str, now: Timestamp, read_at: Instant) -> Option<Instant> {
    let spec = lease.spec.as_ref()?;
    if spec.holder_identity.as_deref() != Some(identity) {
        return None;
    }
    let renewed = spec.renew_time.as_ref()?.0;
    let secs = u64::try_from(spec.lease_duration_seconds?).ok()?;
    let ends = renewed.as_millisecond() + i64::try_from(secs.saturating_mul(1000)).ok()?;
    let left_ms = ends - now.as_millisecond();
    let left = Duration::from_millis(u64::try_from(left_ms).ok()?);
    Some(read_at + left.checked_sub(SAFETY_MARGIN)?)
}

/// Whether this replica may write: the lease manager says it leads and the Lease the guard
/// last saw is still valid.
pub fn may_write(manager_says: bool, valid_until: Option<Instant>, now: Instant) -> bool {
    manager_says && valid_until.is_some_and(|t| now < t)
}

/// The state of the election: whether this replica may write, as a watch channel.
#[derive(Debug)]
pub struct Election {
    rx: watch::Receiver<bool>,
    task: Option<JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>>,
    guard: Option<JoinHandle<()>>,
    _always: Option<watch::Sender<bool>>,
}

impl Election {
    /// No election: this replica always leads (single-replica installs, `--leader-elect=false`).
    pub fn always_leader() -> Self {
        let (tx, rx) = watch::channel(true);
        Self {
            rx,
            task: None,
            guard: None,
            _always: Some(tx),
        }
    }

    /// Joins the election on the Lease (created if missing) and keeps renewing it in the
    /// background while held.
    pub async fn start(client: Client, cfg: &LeaseConfig) -> Result<Self, Error> {
        let (duration, grace) = cfg.validate().map_err(Error::Lease)?;
        let manager = LeaseManagerBuilder::new(client.clone(), &cfg.name)
            .with_namespace(&cfg.namespace)
            .with_identity(&cfg.identity)
            .with_duration(duration)
            .with_grace(grace)
            .build()
            .await
            .map_err(|e| Error::Lease(e.to_string()))?;
        let (manager_rx, task) = manager.watch().await;
        let (tx, rx) = watch::channel(false);
        let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
        let guard = tokio::spawn(guard(api, cfg.name.clone(), cfg.identity.clone(), manager_rx, tx));
        Ok(Self {
            rx,
            task: Some(task),
            guard: Some(guard),
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
        let Self {
            rx,
            task,
            guard,
            _always,
        } = self;
        drop(rx);
        // The guard holds the lease manager's receiver: it must go for the release to happen.
        if let Some(guard) = guard {
            guard.abort();
            let _ = guard.await;
        }
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

/// Sets the leadership value, waking receivers only when it changed (the guard re-checks every
/// second; an unchanged "leader" is not news, and the controller reconciles everything on
/// news). Whether it changed.
fn publish(tx: &watch::Sender<bool>, allowed: bool) -> bool {
    tx.send_if_modified(|v| std::mem::replace(v, allowed) != allowed)
}

/// Publishes [`may_write`] on `tx`: follows the lease manager, and while it says "leader"
/// reads the Lease every [`GUARD_PERIOD`] to know until when writing is safe.
async fn guard(
    api: Api<Lease>,
    name: String,
    identity: String,
    mut manager: watch::Receiver<bool>,
    tx: watch::Sender<bool>,
) {
    let mut valid_until = None;
    loop {
        let manager_says = *manager.borrow_and_update();
        if manager_says {
            let read_at = Instant::now();
            match api.get(&name).await {
                Ok(lease) => valid_until = lease_valid_until(&lease, &identity, Timestamp::now(), read_at),
                // Keep what was last seen: it runs out on its own if the apiserver stays away.
                Err(e) => tracing::warn!(error = %e, "cannot read the leader Lease"),
            }
        } else {
            valid_until = None;
        }
        let allowed = may_write(manager_says, valid_until, Instant::now());
        if publish(&tx, allowed) && !allowed && manager_says {
            tracing::warn!("leader Lease not confirmed in time; not writing until it is");
        }
        tokio::select! {
            changed = manager.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(GUARD_PERIOD) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receivers_hear_of_changes_only() {
        let (tx, mut rx) = watch::channel(false);
        assert!(publish(&tx, true));
        assert!(rx.has_changed().unwrap());
        rx.borrow_and_update();
        for _ in 0..5 {
            assert!(!publish(&tx, true));
            assert!(!rx.has_changed().unwrap(), "a steady leader wakes nobody");
        }
        assert!(publish(&tx, false));
        assert!(rx.has_changed().unwrap());
    }

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

    fn lease(holder: &str, renewed_ms: i64, duration_s: i32) -> Lease {
        Lease {
            spec: Some(k8s_openapi::api::coordination::v1::LeaseSpec {
                holder_identity: Some(holder.into()),
                renew_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                    Timestamp::from_millisecond(renewed_ms).unwrap(),
                )),
                lease_duration_seconds: Some(duration_s),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_lease_lets_its_holder_write_until_it_runs_out_less_the_margin() {
        let read_at = Instant::now();
        let now = Timestamp::from_millisecond(100_000).unwrap();
        // Renewed 5 s ago for 15 s: 10 s left, 8 s after the margin.
        let until = lease_valid_until(&lease("me", 95_000, 15), "me", now, read_at).unwrap();
        assert_eq!(until, read_at + Duration::from_secs(8));
        assert!(may_write(true, Some(until), read_at + Duration::from_secs(7)));
        assert!(!may_write(true, Some(until), read_at + Duration::from_secs(8)));
        assert!(
            !may_write(false, Some(until), read_at),
            "the manager says it lost the Lease"
        );
        assert!(!may_write(true, None, read_at), "never confirmed");
    }

    #[test]
    fn someone_elses_or_an_expired_lease_lets_nobody_write() {
        let read_at = Instant::now();
        let now = Timestamp::from_millisecond(100_000).unwrap();
        assert_eq!(lease_valid_until(&lease("other", 99_000, 15), "me", now, read_at), None);
        assert_eq!(
            lease_valid_until(&lease("me", 80_000, 15), "me", now, read_at),
            None,
            "expired"
        );
        assert_eq!(
            lease_valid_until(&lease("me", 86_500, 15), "me", now, read_at),
            None,
            "inside the margin"
        );
        assert_eq!(lease_valid_until(&Lease::default(), "me", now, read_at), None);
    }

    #[tokio::test]
    async fn without_election_this_replica_leads() {
        let e = Election::always_leader();
        assert!(*e.subscribe().borrow());
        e.stop(Duration::from_millis(10)).await;
    }
}

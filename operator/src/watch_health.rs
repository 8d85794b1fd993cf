//! Whether the operator's watches are working now, not only whether they once synced: each
//! watch records its last good event and its last error, and `/readyz` answers from that. The
//! watches retry with a short capped backoff so the caches follow the apiserver within
//! seconds of its return (kube-runtime's default waits up to 30 s between tries, and longer
//! in total after a long outage).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// First wait after a failed list or watch.
pub const BACKOFF_BASE: Duration = Duration::from_millis(250);
/// The longest wait between tries, however long the apiserver has been away.
pub const BACKOFF_MAX: Duration = Duration::from_secs(4);
/// A watch whose last error is this recent (and not followed by a good event) is unhealthy.
/// More than twice [`BACKOFF_MAX`]: an apiserver that is still away makes the watch fail again
/// well within it, so a watch that re-established without news is taken as healthy after it.
pub const ERROR_HOLD: Duration = Duration::from_secs(10);

/// Exponential backoff from [`BACKOFF_BASE`] doubling to [`BACKOFF_MAX`], reset by any good
/// event (kube-runtime's `StreamBackoff` calls `reset`).
#[derive(Debug, Default, Clone)]
pub struct CappedBackoff {
    attempt: u32,
}

impl Iterator for CappedBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let wait = BACKOFF_BASE
            .saturating_mul(1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX))
            .min(BACKOFF_MAX);
        self.attempt = self.attempt.saturating_add(1);
        Some(wait)
    }
}

impl kube::runtime::utils::Backoff for CappedBackoff {
    fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// No wait at all: for the Controller's merged trigger stream. kube-runtime backs that stream
/// off on an error from any of the watches merged into it, so one failing watch would pause
/// them all (up to 30 s per error with its default, compounding across the watches after an
/// outage); each watch already backs off on its own with [`CappedBackoff`].
#[derive(Debug, Default, Clone, Copy)]
pub struct NoBackoff;

impl Iterator for NoBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        Some(Duration::ZERO)
    }
}

impl kube::runtime::utils::Backoff for NoBackoff {
    fn reset(&mut self) {}
}

/// What one watch last reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchState {
    /// When it last delivered a good event.
    pub last_ok: Option<Instant>,
    /// When it last failed, and how.
    pub last_error: Option<(Instant, String)>,
}

/// Why a watch is unhealthy now, or `None`: its last error is within [`ERROR_HOLD`] and no
/// good event came after it.
pub fn unhealthy(state: &WatchState, now: Instant) -> Option<String> {
    let (at, why) = state.last_error.as_ref()?;
    let recovered = state.last_ok.is_some_and(|ok| ok > *at);
    (!recovered && now.saturating_duration_since(*at) < ERROR_HOLD).then(|| why.clone())
}

/// The readiness of the operator: every cache synced and every watch healthy. `Err` says
/// which watch is failing and why.
pub fn readiness<'a>(
    synced: bool,
    watches: impl IntoIterator<Item = (&'a str, &'a WatchState)>,
    now: Instant,
) -> Result<(), String> {
    if !synced {
        return Err("watch caches not synced".into());
    }
    let failing: Vec<String> = watches
        .into_iter()
        .filter_map(|(name, s)| unhealthy(s, now).map(|why| format!("{name}: {why}")))
        .collect();
    if failing.is_empty() {
        Ok(())
    } else {
        Err(format!("watches failing: {}", failing.join("; ")))
    }
}

/// The shared record the watches write and `/readyz` reads.
#[derive(Debug, Clone, Default)]
pub struct Health {
    inner: Arc<Mutex<HealthInner>>,
}

#[derive(Debug, Default)]
struct HealthInner {
    synced: bool,
    watches: BTreeMap<String, WatchState>,
}

impl Health {
    /// Marks every cache as synced once (readiness then follows the watches).
    pub fn set_synced(&self) {
        self.inner.lock().expect("health lock").synced = true;
    }

    /// Records one item of the watch `name`'s stream.
    pub fn record<T, E: std::fmt::Display>(&self, name: &str, item: &Result<T, E>) {
        let now = Instant::now();
        let mut inner = self.inner.lock().expect("health lock");
        let state = inner.watches.entry(name.to_owned()).or_default();
        match item {
            Ok(_) => {
                if unhealthy(state, now).is_some() {
                    tracing::info!(watch = name, "watch working again");
                }
                state.last_ok = Some(now);
            }
            Err(e) => {
                if unhealthy(state, now).is_none() {
                    tracing::warn!(watch = name, error = %e, "watch failing; retrying");
                } else {
                    tracing::debug!(watch = name, error = %e, "watch still failing");
                }
                state.last_error = Some((now, e.to_string()));
            }
        }
    }

    /// The operator's readiness now.
    pub fn readiness(&self) -> Result<(), String> {
        let inner = self.inner.lock().expect("health lock");
        readiness(
            inner.synced,
            inner.watches.iter().map(|(k, v)| (k.as_str(), v)),
            Instant::now(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        use kube::runtime::utils::Backoff as _;
        let mut b = CappedBackoff::default();
        let waits: Vec<_> = b.by_ref().take(7).collect();
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [250, 500, 1000, 2000, 4000, 4000, 4000]);
        assert_eq!(b.nth(1000), Some(BACKOFF_MAX), "never past the cap");
        b.reset();
        assert_eq!(b.next(), Some(BACKOFF_BASE));
    }

    #[test]
    fn a_watch_is_unhealthy_from_its_error_until_good_news_or_the_hold() {
        let t0 = Instant::now();
        let healthy = WatchState {
            last_ok: Some(t0),
            last_error: None,
        };
        assert_eq!(unhealthy(&healthy, t0), None);
        let failing = WatchState {
            last_ok: Some(t0),
            last_error: Some((t0 + Duration::from_secs(1), "connection refused".into())),
        };
        assert_eq!(
            unhealthy(&failing, t0 + Duration::from_secs(2)).as_deref(),
            Some("connection refused")
        );
        assert_eq!(
            unhealthy(&failing, t0 + Duration::from_secs(1) + ERROR_HOLD),
            None,
            "no error for the hold"
        );
        let recovered = WatchState {
            last_ok: Some(t0 + Duration::from_secs(3)),
            ..failing.clone()
        };
        assert_eq!(unhealthy(&recovered, t0 + Duration::from_secs(3)), None);
    }

    #[test]
    fn readiness_names_the_failing_watches() {
        let t0 = Instant::now();
        let ok = WatchState {
            last_ok: Some(t0),
            last_error: None,
        };
        let bad = WatchState {
            last_ok: None,
            last_error: Some((t0, "503".into())),
        };
        assert_eq!(
            readiness(false, [("a", &ok)], t0).unwrap_err(),
            "watch caches not synced"
        );
        assert_eq!(readiness(true, [("a", &ok)], t0), Ok(()));
        assert_eq!(
            readiness(true, [("a", &ok), ("pods", &bad)], t0).unwrap_err(),
            "watches failing: pods: 503"
        );
    }
}

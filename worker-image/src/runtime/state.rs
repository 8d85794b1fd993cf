//! The two facts everything else reads: where the worker's life stands ([`Lifecycle`]) and
//! where its link to the engine stands ([`Connection`]), each published once by its owner,
//! with the one readiness rule and the one liveness rule over them. Probes, `/status`, the
//! handle and the metrics all ask these rules; none has a rule of its own.

use std::time::Duration;

use tokio::time::Instant;

use super::listener::{HEARTBEAT_FRESHNESS, Listener, Phase};
use super::worker::Exit;
use crate::health::Readiness;

/// The loop turns over at least every 500 ms; this long without a turn means it is wedged.
const STALL_AFTER: Duration = Duration::from_secs(15);

/// Where the worker's life stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// Taking assignments (or getting through start-up to take them).
    Running,
    /// Taking nothing new; running tasks finish until the deadline (`None`: too far away to
    /// represent, so none), then are abandoned.
    Draining { deadline: Option<Instant> },
    /// Stopped, with how it ended (`None`: stopped on an error, which `run` returned).
    Stopped { exit: Option<Exit> },
}

impl Lifecycle {
    /// Running turns into draining with the deadline `timeout` from `now`; otherwise no change.
    pub(crate) fn drain(&self, now: Instant, timeout: Duration) -> Option<Lifecycle> {
        (*self == Lifecycle::Running).then(|| Lifecycle::Draining {
            deadline: now.checked_add(timeout),
        })
    }

    pub(crate) fn is_running(&self) -> bool {
        *self == Lifecycle::Running
    }

    pub(crate) fn is_stopped(&self) -> bool {
        matches!(self, Lifecycle::Stopped { .. })
    }
}

/// The link to the engine, as the worker's loop last published it.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    pub(crate) worker_id: Option<String>,
    pub(crate) phase: Phase,
    pub(crate) last_heartbeat_ok: Option<Instant>,
    /// A heartbeat was acknowledged on the current stream.
    pub(crate) stream_confirmed: bool,
    pub(crate) reconnects: u64,
    /// Last time the loop turned over: a stalled runtime stops updating it.
    pub(crate) loop_tick: Instant,
    /// Why start-up (version check, workflow registration) has not got through yet.
    pub(crate) startup_error: Option<String>,
}

impl Connection {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            worker_id: None,
            phase: Phase::Idle,
            last_heartbeat_ok: None,
            stream_confirmed: false,
            reconnects: 0,
            loop_tick: now,
            startup_error: None,
        }
    }

    /// Takes the listener's facts as of `now` (the loop's turn); how many more reconnects it
    /// made since the last time.
    pub(crate) fn update_from(&mut self, l: &Listener, now: Instant) -> u64 {
        self.worker_id = l.worker_id().map(str::to_owned).or(self.worker_id.take());
        self.phase = l.phase();
        self.last_heartbeat_ok = l.last_heartbeat_ok();
        self.stream_confirmed = l.stream_confirmed();
        let reconnected = l.reconnects().saturating_sub(self.reconnects);
        self.reconnects = l.reconnects();
        self.loop_tick = now;
        reconnected
    }

    /// Time since the engine last acknowledged a heartbeat.
    pub(crate) fn heartbeat_age(&self, now: Instant) -> Option<Duration> {
        self.last_heartbeat_ok.map(|t| now.saturating_duration_since(t))
    }
}

/// Ready means: running (not draining), registered, the assignment stream up, and a heartbeat
/// acknowledged on this stream within [`HEARTBEAT_FRESHNESS`]. Otherwise: starting (no
/// heartbeat acknowledged yet) or unready, with the reason.
pub(crate) fn readiness(life: &Lifecycle, c: &Connection, now: Instant) -> Readiness {
    let unready = |why: String| Readiness::Unready(why);
    match life {
        Lifecycle::Draining { .. } => return unready("draining".into()),
        Lifecycle::Stopped { .. } => return unready("stopped".into()),
        Lifecycle::Running => {}
    }
    let starting = |why: String| {
        if c.last_heartbeat_ok.is_none() {
            Readiness::Starting(why)
        } else {
            Readiness::Unready(why)
        }
    };
    if c.worker_id.is_none() {
        return starting(match &c.startup_error {
            Some(e) => format!("waiting for the engine: {e}"),
            None => "not registered with the engine yet".into(),
        });
    }
    if !c.phase.is_up() {
        return starting(format!("assignment stream is not up ({:?})", c.phase));
    }
    match c.heartbeat_age(now) {
        None => starting("no heartbeat acknowledged yet".into()),
        Some(_) if !c.stream_confirmed => unready("no heartbeat acknowledged on the new assignment stream yet".into()),
        Some(age) if age >= HEARTBEAT_FRESHNESS => {
            unready(format!("last heartbeat acknowledged {:.1}s ago", age.as_secs_f64()))
        }
        Some(_) => Readiness::Ready,
    }
}

/// How long the worker's loop has not turned over, when that means it is wedged (a stopped
/// worker is not).
pub(crate) fn stalled_for(life: &Lifecycle, c: &Connection, now: Instant) -> Option<Duration> {
    let idle = now.saturating_duration_since(c.loop_tick);
    (idle >= STALL_AFTER && !life.is_stopped() && c.phase != Phase::Stopped).then_some(idle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk_conn(phase: Phase, hb_ago: Option<u64>, now: Instant) -> Connection {
        Connection {
            worker_id: Some("w".into()),
            phase,
            last_heartbeat_ok: hb_ago.map(|s| now - Duration::from_secs(s)),
            stream_confirmed: hb_ago.is_some(),
            ..Connection::new(now)
        }
    }

    #[test]
    fn ready_needs_running_a_stream_and_a_fresh_heartbeat_on_it() {
        let now = Instant::now() + Duration::from_secs(100);
        let running = Lifecycle::Running;
        assert_eq!(
            readiness(&running, &mk_conn(Phase::Streaming, Some(1), now), now),
            Readiness::Ready
        );
        assert_eq!(
            readiness(&running, &mk_conn(Phase::Reopening, Some(1), now), now),
            Readiness::Ready
        );
        let draining = Lifecycle::Draining { deadline: None };
        let stopped = Lifecycle::Stopped { exit: None };
        let cases = [
            (&draining, mk_conn(Phase::Streaming, Some(1), now), false, "draining"),
            (&stopped, mk_conn(Phase::Stopped, Some(1), now), false, "stopped"),
            (
                &running,
                mk_conn(Phase::BackingOff, Some(1), now),
                false,
                "stream is not up",
            ),
            (
                &running,
                mk_conn(Phase::Connecting, None, now),
                true,
                "stream is not up",
            ),
            (&running, mk_conn(Phase::Streaming, None, now), true, "no heartbeat"),
            (
                &running,
                Connection {
                    stream_confirmed: false,
                    ..mk_conn(Phase::Streaming, Some(1), now)
                },
                false,
                "on the new assignment stream",
            ),
            (
                &running,
                mk_conn(Phase::Streaming, Some(6), now),
                false,
                "last heartbeat acknowledged 6.0s ago",
            ),
            (
                &running,
                Connection {
                    worker_id: None,
                    ..mk_conn(Phase::Registering, None, now)
                },
                true,
                "not registered",
            ),
            (
                &running,
                Connection {
                    worker_id: None,
                    startup_error: Some("engine call GetVersion failed (Unavailable): refused".into()),
                    ..mk_conn(Phase::Idle, None, now)
                },
                true,
                "waiting for the engine: engine call GetVersion failed (Unavailable)",
            ),
        ];
        for (life, c, starting, want) in cases {
            let got = readiness(life, &c, now);
            let (is_starting, why) = match &got {
                Readiness::Starting(why) => (true, why),
                Readiness::Unready(why) => (false, why),
                Readiness::Ready => panic!("{c:?} under {life:?} should not be ready"),
            };
            assert!(why.contains(want), "{why} should mention {want}");
            assert_eq!(is_starting, starting, "{why}: starting");
        }
    }

    #[test]
    fn a_loop_that_stops_turning_is_stalled_unless_the_worker_stopped() {
        let now = Instant::now() + Duration::from_secs(100);
        let mut c = mk_conn(Phase::Streaming, Some(1), now);
        let running = Lifecycle::Running;
        assert_eq!(stalled_for(&running, &c, now), None);
        c.loop_tick = now - Duration::from_secs(20);
        assert_eq!(stalled_for(&running, &c, now), Some(Duration::from_secs(20)));
        let stopped = Lifecycle::Stopped {
            exit: Some(Exit::Drained),
        };
        assert_eq!(stalled_for(&stopped, &c, now), None, "a stopped worker is not wedged");
        c.phase = Phase::Stopped;
        assert_eq!(stalled_for(&running, &c, now), None);
    }

    #[test]
    fn only_a_running_worker_starts_draining() {
        let now = Instant::now();
        let d = Duration::from_secs(30);
        assert_eq!(
            Lifecycle::Running.drain(now, d),
            Some(Lifecycle::Draining {
                deadline: Some(now + d)
            })
        );
        assert_eq!(
            Lifecycle::Running.drain(now, Duration::MAX),
            Some(Lifecycle::Draining { deadline: None }),
            "a deadline too far to represent is none"
        );
        assert_eq!(Lifecycle::Draining { deadline: None }.drain(now, d), None);
        assert_eq!(Lifecycle::Stopped { exit: None }.drain(now, d), None);
    }
}

//! The connection lifecycle as a sans-IO state machine: register, open the assignment
//! stream, heartbeat every 4 s, back off and reconnect on failure, re-register only when the
//! engine has forgotten the worker. `step` takes the time as an argument so tests never sleep.

use std::time::Duration;

use tokio::time::Instant;
use tonic::Code;

use crate::retry::{RECONNECT_BASE, RECONNECT_MAX, full_jitter, is_retryable};

/// How often the worker heartbeats (the scheduler skips workers silent for 5 s).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(4);
/// A heartbeat acknowledged longer ago than this makes the worker unready.
pub const HEARTBEAT_FRESHNESS: Duration = Duration::from_secs(5);
/// Pause between reopening the stream and the first heartbeat on it, so the engine has taken
/// the stream when the heartbeat arrives: once a worker has listened, the engine refuses its
/// heartbeats (`FailedPrecondition`) while no stream of it is active. The first stream after
/// registering gets its heartbeat at once: until a worker has listened the engine accepts
/// them, and the first one is what tells the scheduler a new worker is there (start-up is
/// the latency of every scale-from-zero).
const FIRST_HEARTBEAT_DELAY: Duration = Duration::from_millis(500);
/// Oversized breaks past this many within [`OVERSIZED_WINDOW`] back off like any other break
/// (one undeliverable run costs the engine's 10 internal retries).
const OVERSIZED_BURST: u32 = 30;
const OVERSIZED_WINDOW: Duration = Duration::from_secs(60);
/// Consecutive failed heartbeats after which the stream is reopened.
const HEARTBEAT_FAILURES_BEFORE_RECONNECT: u32 = 2;
/// How long a token the engine accepted before may be refused before the worker gives up: the
/// engine answers `Unauthenticated` while it cannot reach its database.
pub const DEFAULT_AUTH_OUTAGE_GRACE: Duration = Duration::from_secs(300);

/// Where the connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not started.
    Idle,
    /// Waiting for `Register` to answer.
    Registering,
    /// Waiting for `ListenV2` to open.
    Connecting,
    /// Receiving assignments and heartbeating.
    Streaming,
    /// The engine ended the stream over one assignment too large to deliver; it is being
    /// reopened at once and still counts as up (the engine is there, only that run cannot
    /// reach us; the engine fails it after a few tries).
    Reopening,
    /// Waiting before the next attempt.
    BackingOff,
    /// Shut down or failed for good.
    Stopped,
}

impl Phase {
    /// Whether assignments flow (or are about to again, with nothing wrong with the link).
    pub fn is_up(self) -> bool {
        matches!(self, Phase::Streaming | Phase::Reopening)
    }
}

/// What happened, fed to [`Listener::step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The driver starts the connection: register first.
    Start,
    /// `Register` answered.
    Registered {
        /// The id the engine assigned to this worker.
        worker_id: String,
    },
    /// `Register` failed with this status code.
    RegisterFailed(Code),
    /// The assignment stream was requested and counts as open.
    StreamOpened,
    /// The stream broke with a status, or ended (`None`).
    StreamFailed(Option<Code>),
    /// The stream broke because one assignment exceeded a message-size limit (the engine's
    /// or ours): nothing is wrong with the connection.
    StreamOversized,
    /// A heartbeat was acknowledged.
    HeartbeatOk,
    /// A heartbeat failed with this status code (`DeadlineExceeded` when it timed out).
    HeartbeatFailed(Code),
    /// Time passed: a deadline from [`Listener::next_deadline`] may be due.
    Tick,
    /// The worker is stopping: close the stream and stop for good.
    Shutdown,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Call `Register`, then feed back [`Input::Registered`] or [`Input::RegisterFailed`].
    Register,
    /// Open the `ListenV2` assignment stream, then feed back [`Input::StreamOpened`].
    OpenStream {
        /// The registered worker whose assignments to receive.
        worker_id: String,
    },
    /// Abort the task reading the current assignment stream, if any.
    CloseStream,
    /// Send one heartbeat, then feed back [`Input::HeartbeatOk`] or [`Input::HeartbeatFailed`].
    SendHeartbeat {
        /// The registered worker the heartbeat is for.
        worker_id: String,
    },
    /// Stop the worker: the engine refused it in a way retrying cannot fix.
    Fatal(String),
}

/// The state machine.
#[derive(Debug)]
pub struct Listener {
    phase: Phase,
    worker_id: Option<String>,
    attempt: u32,
    retry_at: Option<Instant>,
    next_heartbeat: Option<Instant>,
    heartbeat_in_flight: bool,
    heartbeat_failures: u32,
    last_heartbeat_ok: Option<Instant>,
    /// A heartbeat was acknowledged since the current stream was opened.
    stream_confirmed: bool,
    /// A stream was opened since the engine registered this worker id.
    listened: bool,
    reconnects: u64,
    /// Since when, and how many times, the stream was reopened over oversized assignments.
    oversized: Option<(Instant, u32)>,
    /// A heartbeat was acknowledged once: the engine accepted the token.
    accepted: bool,
    /// Since when the engine has refused the (once accepted) token without a break.
    refused_since: Option<Instant>,
    auth_grace: Duration,
}

impl Default for Listener {
    fn default() -> Self {
        Self::new()
    }
}

impl Listener {
    /// A listener in [`Phase::Idle`], waiting for [`Input::Start`].
    pub fn new() -> Self {
        Self::with_auth_grace(DEFAULT_AUTH_OUTAGE_GRACE)
    }

    /// A listener that rides out refusals of a token the engine accepted before for up to
    /// `grace` (a refusal from the start is fatal at once).
    pub fn with_auth_grace(grace: Duration) -> Self {
        Self {
            phase: Phase::Idle,
            worker_id: None,
            attempt: 0,
            retry_at: None,
            next_heartbeat: None,
            heartbeat_in_flight: false,
            heartbeat_failures: 0,
            last_heartbeat_ok: None,
            stream_confirmed: false,
            listened: false,
            reconnects: 0,
            oversized: None,
            accepted: false,
            refused_since: None,
            auth_grace: grace,
        }
    }

    /// Where the connection stands now.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The id the engine registered this worker under; `None` before registering or once forgotten.
    pub fn worker_id(&self) -> Option<&str> {
        self.worker_id.as_deref()
    }

    /// Times the stream has been reopened after a failure.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// When a heartbeat was last acknowledged, on any stream.
    pub fn last_heartbeat_ok(&self) -> Option<Instant> {
        self.last_heartbeat_ok
    }

    /// Whether a heartbeat was acknowledged since the current stream was opened.
    pub fn stream_confirmed(&self) -> bool {
        self.stream_confirmed
    }

    /// When the driver should next feed [`Input::Tick`].
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::BackingOff => self.retry_at,
            Phase::Streaming if !self.heartbeat_in_flight => self.next_heartbeat,
            _ => None,
        }
    }

    /// Advances the machine. `jitter` is a number in `[0, 1)` used for backoff.
    pub fn step(&mut self, input: Input, now: Instant, jitter: f64) -> Vec<Effect> {
        if self.phase == Phase::Stopped {
            return Vec::new();
        }
        match input {
            Input::Start => self.register(),
            Input::Shutdown => {
                self.phase = Phase::Stopped;
                vec![Effect::CloseStream]
            }
            Input::Registered { worker_id } => {
                self.worker_id = Some(worker_id.clone());
                self.listened = false;
                self.phase = Phase::Connecting;
                vec![Effect::OpenStream { worker_id }]
            }
            Input::RegisterFailed(code) if is_retryable(code) => self.back_off(now, jitter),
            Input::RegisterFailed(code @ (Code::Unauthenticated | Code::PermissionDenied)) => {
                self.refused(code, now, jitter, "the engine refused to register the worker")
            }
            Input::RegisterFailed(code) => self.fatal(format!("the engine refused to register the worker ({code:?})")),
            Input::StreamOpened => {
                // Only a heartbeat answered on this stream proves the engine takes it: one from
                // the previous stream must not make a reconnect look healthy. A reopen over an
                // oversized assignment keeps the confirmation: the engine answered just now.
                if self.phase != Phase::Reopening {
                    self.stream_confirmed = false;
                    let delay = if self.listened {
                        FIRST_HEARTBEAT_DELAY
                    } else {
                        Duration::ZERO
                    };
                    self.next_heartbeat = Some(now + delay);
                }
                self.listened = true;
                self.phase = Phase::Streaming;
                self.heartbeat_failures = 0;
                Vec::new()
            }
            Input::StreamFailed(code) => self.stream_failed(code, now, jitter),
            Input::StreamOversized => self.stream_oversized(now, jitter),
            // An answer that arrives after the stream broke says nothing about the next one.
            Input::HeartbeatOk if !self.phase.is_up() => Vec::new(),
            Input::HeartbeatOk => {
                self.heartbeat_in_flight = false;
                self.heartbeat_failures = 0;
                self.attempt = 0;
                self.last_heartbeat_ok = Some(now);
                self.stream_confirmed = true;
                self.accepted = true;
                self.refused_since = None;
                Vec::new()
            }
            Input::HeartbeatFailed(code) => self.heartbeat_failed(code, now, jitter),
            Input::Tick => self.tick(now),
        }
    }

    fn register(&mut self) -> Vec<Effect> {
        self.phase = Phase::Registering;
        vec![Effect::Register]
    }

    fn fatal(&mut self, why: String) -> Vec<Effect> {
        self.phase = Phase::Stopped;
        vec![Effect::CloseStream, Effect::Fatal(why)]
    }

    /// The engine refused the token: fatal unless it accepted it before and the refusals have
    /// lasted less than the grace (then: reconnect with backoff, as for an outage).
    fn refused(&mut self, code: Code, now: Instant, jitter: f64, what: &str) -> Vec<Effect> {
        let since = *self.refused_since.get_or_insert(now);
        if !self.accepted {
            return self.fatal(format!("{what} ({code:?})"));
        }
        if now.saturating_duration_since(since) >= self.auth_grace {
            return self.fatal(format!(
                "{what} ({code:?}) for {:?}, longer than the {:?} allowed for an engine outage",
                now.saturating_duration_since(since),
                self.auth_grace
            ));
        }
        let mut e = vec![Effect::CloseStream];
        e.extend(self.back_off(now, jitter));
        e
    }

    fn back_off(&mut self, now: Instant, jitter: f64) -> Vec<Effect> {
        let wait = full_jitter(self.attempt, RECONNECT_BASE, RECONNECT_MAX, jitter);
        self.attempt = self.attempt.saturating_add(1);
        self.phase = Phase::BackingOff;
        self.retry_at = Some(now + wait);
        self.heartbeat_in_flight = false;
        Vec::new()
    }

    fn stream_failed(&mut self, code: Option<Code>, now: Instant, jitter: f64) -> Vec<Effect> {
        if !matches!(self.phase, Phase::Streaming | Phase::Connecting | Phase::Reopening) {
            return Vec::new();
        }
        match code {
            Some(Code::NotFound) => {
                // The engine no longer knows this worker id: register anew after a pause.
                self.worker_id = None;
                let mut e = vec![Effect::CloseStream];
                e.extend(self.back_off(now, jitter));
                e
            }
            Some(c @ (Code::Unauthenticated | Code::PermissionDenied)) => {
                self.refused(c, now, jitter, "the engine closed the assignment stream")
            }
            Some(c @ Code::InvalidArgument) => self.fatal(format!("the engine closed the assignment stream ({c:?})")),
            _ => {
                let mut e = vec![Effect::CloseStream];
                e.extend(self.back_off(now, jitter));
                e
            }
        }
    }

    /// Reopens at once (the engine paces its resends of an undeliverable run, 100 ms growing
    /// to 5 s, and gives up after its internal retries), unless more than
    /// [`OVERSIZED_BURST`] such breaks came within [`OVERSIZED_WINDOW`]: then it backs off
    /// like any break, so a flood of them cannot spin.
    fn stream_oversized(&mut self, now: Instant, jitter: f64) -> Vec<Effect> {
        if self.phase != Phase::Streaming {
            return self.stream_failed(Some(Code::ResourceExhausted), now, jitter);
        }
        let (start, count) = match self.oversized {
            Some((start, count)) if now.saturating_duration_since(start) < OVERSIZED_WINDOW => (start, count + 1),
            _ => (now, 1),
        };
        self.oversized = Some((start, count));
        if count > OVERSIZED_BURST {
            return self.stream_failed(Some(Code::ResourceExhausted), now, jitter);
        }
        self.phase = Phase::Reopening;
        self.reconnects += 1;
        let worker_id = self.worker_id.clone().unwrap_or_default();
        vec![Effect::CloseStream, Effect::OpenStream { worker_id }]
    }

    fn heartbeat_failed(&mut self, code: Code, now: Instant, jitter: f64) -> Vec<Effect> {
        self.heartbeat_in_flight = false;
        if !self.phase.is_up() {
            return Vec::new();
        }
        match code {
            Code::NotFound => self.stream_failed(Some(Code::NotFound), now, jitter),
            Code::Unauthenticated | Code::PermissionDenied => {
                self.refused(code, now, jitter, "the engine refused heartbeats")
            }
            // The engine says our stream is gone: reopen it now.
            Code::FailedPrecondition => self.stream_failed(None, now, 0.0),
            _ => {
                self.heartbeat_failures += 1;
                if self.heartbeat_failures >= HEARTBEAT_FAILURES_BEFORE_RECONNECT {
                    self.stream_failed(None, now, jitter)
                } else {
                    Vec::new()
                }
            }
        }
    }

    fn tick(&mut self, now: Instant) -> Vec<Effect> {
        match self.phase {
            Phase::BackingOff if self.retry_at.is_some_and(|t| now >= t) => {
                self.retry_at = None;
                self.reconnects += 1;
                match self.worker_id.clone() {
                    Some(worker_id) => {
                        self.phase = Phase::Connecting;
                        vec![Effect::OpenStream { worker_id }]
                    }
                    None => self.register(),
                }
            }
            Phase::Streaming if !self.heartbeat_in_flight && self.next_heartbeat.is_some_and(|t| now >= t) => {
                let worker_id = self.worker_id.clone().unwrap_or_default();
                self.heartbeat_in_flight = true;
                self.next_heartbeat = Some(now + HEARTBEAT_INTERVAL);
                vec![Effect::SendHeartbeat { worker_id }]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Readiness;
    use crate::runtime::state::{Connection, Lifecycle, readiness};

    /// Whether a running worker with this listener is ready, by the one readiness rule.
    fn healthy(l: &Listener, now: Instant) -> bool {
        let mut c = Connection::new(now);
        c.update_from(l, now);
        readiness(&Lifecycle::Running, &c, now) == Readiness::Ready
    }

    fn mk_streaming(now: Instant) -> Listener {
        let mut l = Listener::new();
        assert_eq!(l.step(Input::Start, now, 0.5), vec![Effect::Register]);
        assert_eq!(
            l.step(Input::Registered { worker_id: "w1".into() }, now, 0.5),
            vec![Effect::OpenStream { worker_id: "w1".into() }]
        );
        assert!(l.step(Input::StreamOpened, now, 0.5).is_empty());
        assert_eq!(l.next_deadline(), Some(now), "a new worker's first heartbeat at once");
        l
    }

    #[test]
    fn an_oversized_assignment_reopens_at_once_and_stays_healthy() {
        let t0 = Instant::now();
        let mut l = mk_streaming(t0);
        assert_eq!(
            l.step(Input::Tick, t0, 0.5),
            vec![Effect::SendHeartbeat { worker_id: "w1".into() }]
        );
        l.step(Input::HeartbeatOk, t0, 0.5);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            l.step(Input::StreamOversized, t1, 0.5),
            vec![Effect::CloseStream, Effect::OpenStream { worker_id: "w1".into() }]
        );
        assert_eq!(l.phase(), Phase::Reopening);
        assert!(healthy(&l, t1), "still up while it reopens");
        assert!(l.step(Input::StreamOpened, t1, 0.5).is_empty());
        assert!(healthy(&l, t1), "the confirmation carries over");
        assert_eq!(
            l.next_deadline(),
            Some(t0 + HEARTBEAT_INTERVAL),
            "heartbeats keep their pace"
        );
        // The engine resends quickly: each reopens at once, until a burst of them backs off.
        let mut at = t1;
        for _ in 1..OVERSIZED_BURST {
            at += Duration::from_millis(100);
            assert_eq!(l.step(Input::StreamOversized, at, 0.5).len(), 2);
            l.step(Input::StreamOpened, at, 0.5);
        }
        assert!(healthy(&l, at), "healthy through the burst");
        at += Duration::from_millis(100);
        assert_eq!(l.step(Input::StreamOversized, at, 0.5), vec![Effect::CloseStream]);
        assert_eq!(l.phase(), Phase::BackingOff);
    }

    #[test]
    fn heartbeats_every_four_seconds_once_streaming() {
        let t0 = Instant::now();
        let mut l = mk_streaming(t0);
        assert_eq!(
            l.step(Input::Tick, t0, 0.5),
            vec![Effect::SendHeartbeat { worker_id: "w1".into() }]
        );
        assert!(
            l.step(Input::Tick, t0 + Duration::from_secs(1), 0.5).is_empty(),
            "one in flight"
        );
        l.step(Input::HeartbeatOk, t0 + Duration::from_millis(10), 0.5);
        assert!(healthy(&l, t0 + Duration::from_secs(1)));
        assert!(l.step(Input::Tick, t0 + Duration::from_secs(3), 0.5).is_empty());
        assert_eq!(l.next_deadline(), Some(t0 + HEARTBEAT_INTERVAL));
        assert_eq!(
            l.step(Input::Tick, t0 + HEARTBEAT_INTERVAL, 0.5),
            vec![Effect::SendHeartbeat { worker_id: "w1".into() }]
        );
        assert!(
            !healthy(&l, t0 + Duration::from_secs(6)),
            "stale heartbeat is unhealthy"
        );
    }

    #[test]
    fn only_a_reopened_stream_waits_before_its_first_heartbeat() {
        let t0 = Instant::now();
        let mut l = mk_streaming(t0);
        l.step(Input::StreamFailed(Some(Code::Unavailable)), t0, 0.0);
        let retry = l.next_deadline().unwrap();
        l.step(Input::Tick, retry, 0.0);
        l.step(Input::StreamOpened, retry, 0.0);
        assert_eq!(
            l.next_deadline(),
            Some(retry + FIRST_HEARTBEAT_DELAY),
            "the engine refuses heartbeats until it has taken the new stream"
        );
        // Forgotten by the engine: a new registration's first stream heartbeats at once again.
        let t1 = retry + Duration::from_secs(1);
        l.step(Input::Tick, retry + FIRST_HEARTBEAT_DELAY, 0.0);
        l.step(Input::HeartbeatFailed(Code::NotFound), t1, 0.0);
        let again = l.next_deadline().unwrap();
        assert_eq!(l.step(Input::Tick, again, 0.0), vec![Effect::Register]);
        l.step(Input::Registered { worker_id: "w2".into() }, again, 0.0);
        l.step(Input::StreamOpened, again, 0.0);
        assert_eq!(l.next_deadline(), Some(again));
    }

    #[test]
    fn stream_loss_backs_off_and_reuses_the_worker_id() {
        let t0 = Instant::now();
        let mut l = mk_streaming(t0);
        let e = l.step(Input::StreamFailed(Some(Code::Unavailable)), t0, 0.5);
        assert_eq!(e, vec![Effect::CloseStream]);
        assert_eq!(l.phase(), Phase::BackingOff);
        // attempt 0: ceiling 1 s, jitter 0.5 -> 500 ms
        assert_eq!(l.next_deadline(), Some(t0 + Duration::from_millis(500)));
        assert!(l.step(Input::Tick, t0 + Duration::from_millis(499), 0.5).is_empty());
        assert_eq!(
            l.step(Input::Tick, t0 + Duration::from_millis(500), 0.5),
            vec![Effect::OpenStream { worker_id: "w1".into() }]
        );
        // fails again while connecting: the window doubles
        let t1 = t0 + Duration::from_secs(1);
        l.step(Input::StreamFailed(Some(Code::Unavailable)), t1, 0.5);
        assert_eq!(l.next_deadline(), Some(t1 + Duration::from_secs(1)));
        assert_eq!(l.reconnects(), 1);
    }

    #[test]
    fn a_reopened_stream_is_unhealthy_until_a_heartbeat_on_it_is_answered() {
        let t0 = Instant::now();
        let mut l = mk_streaming(t0);
        l.step(Input::Tick, t0, 0.5);
        l.step(Input::HeartbeatOk, t0, 0.5);
        assert!(healthy(&l, t0));
        let broke = t0 + Duration::from_millis(100);
        l.step(Input::StreamFailed(Some(Code::Unavailable)), broke, 0.0);
        let retry = l.next_deadline().unwrap();
        l.step(Input::Tick, retry, 0.0);
        l.step(Input::StreamOpened, retry, 0.0);
        assert_eq!(l.phase(), Phase::Streaming);
        assert!(!healthy(&l, retry), "the old stream's heartbeat does not count");
        let hb = retry + FIRST_HEARTBEAT_DELAY;
        assert_eq!(
            l.step(Input::Tick, hb, 0.5),
            vec![Effect::SendHeartbeat { worker_id: "w1".into() }]
        );
        l.step(Input::HeartbeatOk, hb, 0.5);
        assert!(healthy(&l, hb));
    }

    #[test]
    fn a_heartbeat_answered_after_the_stream_broke_is_ignored() {
        let t0 = Instant::now();
        let mut l = mk_streaming(t0);
        l.step(Input::Tick, t0, 0.5);
        l.step(Input::StreamFailed(Some(Code::Unavailable)), t0, 0.5);
        let backoff = l.next_deadline();
        let before = l.last_heartbeat_ok();
        l.step(Input::HeartbeatOk, t0 + Duration::from_millis(1), 0.5);
        assert_eq!(l.last_heartbeat_ok(), before);
        assert_eq!(l.next_deadline(), backoff, "the backoff is not reset by a stale answer");
    }

    #[test]
    fn backoff_resets_after_a_good_heartbeat() {
        let t0 = Instant::now();
        let mut l = mk_streaming(t0);
        for _ in 0..4 {
            l.step(Input::StreamFailed(None), t0, 0.999);
            let at = l.next_deadline().unwrap();
            l.step(Input::Tick, at, 0.5);
        }
        l.step(Input::StreamOpened, t0, 0.5);
        l.step(Input::Tick, t0, 0.5);
        l.step(Input::HeartbeatOk, t0, 0.5);
        l.step(Input::StreamFailed(None), t0, 1.0);
        assert_eq!(l.next_deadline(), Some(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn forgotten_worker_registers_again() {
        let t0 = Instant::now();
        let mut l = mk_streaming(t0);
        l.step(Input::Tick, t0, 0.5);
        let e = l.step(Input::HeartbeatFailed(Code::NotFound), t0, 0.0);
        assert_eq!(e, vec![Effect::CloseStream]);
        assert_eq!(l.worker_id(), None);
        assert_eq!(l.step(Input::Tick, t0, 0.0), vec![Effect::Register]);
    }

    #[test]
    fn failed_precondition_reopens_the_stream_at_once() {
        let t0 = Instant::now();
        let mut l = mk_streaming(t0);
        l.step(Input::Tick, t0, 0.5);
        assert_eq!(
            l.step(Input::HeartbeatFailed(Code::FailedPrecondition), t0, 0.9),
            vec![Effect::CloseStream]
        );
        assert_eq!(
            l.step(Input::Tick, t0, 0.9),
            vec![Effect::OpenStream { worker_id: "w1".into() }]
        );
    }

    #[test]
    fn transient_heartbeat_failures_reconnect_after_two() {
        let t0 = Instant::now();
        let mut l = mk_streaming(t0);
        l.step(Input::Tick, t0, 0.5);
        assert!(l.step(Input::HeartbeatFailed(Code::Unavailable), t0, 0.5).is_empty());
        let t1 = t0 + HEARTBEAT_INTERVAL;
        l.step(Input::Tick, t1, 0.5);
        assert_eq!(
            l.step(Input::HeartbeatFailed(Code::Unavailable), t1, 0.5),
            vec![Effect::CloseStream]
        );
        assert_eq!(l.phase(), Phase::BackingOff);
    }

    #[test]
    fn auth_failures_are_fatal_and_final() {
        let t0 = Instant::now();
        let mut l = Listener::new();
        l.step(Input::Start, t0, 0.5);
        let e = l.step(Input::RegisterFailed(Code::Unauthenticated), t0, 0.5);
        assert!(matches!(e.last(), Some(Effect::Fatal(_))));
        assert_eq!(l.phase(), Phase::Stopped);
        assert!(l.step(Input::Tick, t0, 0.5).is_empty());

        let mut l = mk_streaming(t0);
        let e = l.step(Input::StreamFailed(Some(Code::PermissionDenied)), t0, 0.5);
        assert!(matches!(e.last(), Some(Effect::Fatal(_))));
    }

    /// Streaming with a heartbeat answered: the engine has accepted the token.
    fn mk_accepted(now: Instant) -> Listener {
        let mut l = mk_streaming(now);
        l.step(Input::Tick, now, 0.5);
        l.step(Input::HeartbeatOk, now, 0.5);
        l
    }

    #[test]
    fn an_accepted_token_refused_in_an_engine_outage_reconnects_until_the_grace_ends() {
        let t0 = Instant::now();
        let mut l = mk_accepted(t0);
        let e = l.step(Input::HeartbeatFailed(Code::Unauthenticated), t0, 0.0);
        assert_eq!(e, vec![Effect::CloseStream], "backs off, not fatal");
        assert_eq!(l.phase(), Phase::BackingOff);
        // Reconnecting while the engine still refuses: register and stream refusals too.
        let t1 = t0 + Duration::from_secs(60);
        l.step(Input::Tick, t1, 0.0);
        let e = l.step(Input::StreamFailed(Some(Code::Unauthenticated)), t1, 0.0);
        assert!(!e.iter().any(|e| matches!(e, Effect::Fatal(_))), "{e:?}");
        // Past the grace without a single acknowledged heartbeat: fatal.
        let late = t0 + DEFAULT_AUTH_OUTAGE_GRACE;
        l.step(Input::Tick, late, 0.0);
        let e = l.step(Input::StreamFailed(Some(Code::Unauthenticated)), late, 0.0);
        assert!(
            matches!(e.last(), Some(Effect::Fatal(m)) if m.contains("longer than")),
            "{e:?}"
        );
        assert_eq!(l.phase(), Phase::Stopped);
    }

    #[test]
    fn an_acknowledged_heartbeat_restarts_the_grace() {
        let t0 = Instant::now();
        let mut l = Listener::with_auth_grace(Duration::from_secs(10));
        l.step(Input::Start, t0, 0.5);
        l.step(Input::Registered { worker_id: "w1".into() }, t0, 0.5);
        l.step(Input::StreamOpened, t0, 0.5);
        l.step(Input::Tick, t0 + FIRST_HEARTBEAT_DELAY, 0.5);
        l.step(Input::HeartbeatOk, t0 + FIRST_HEARTBEAT_DELAY, 0.5);
        l.step(
            Input::HeartbeatFailed(Code::Unauthenticated),
            t0 + Duration::from_secs(1),
            0.0,
        );
        // Back, and accepted again at 8 s.
        let t8 = t0 + Duration::from_secs(8);
        l.step(Input::Tick, t8, 0.0);
        l.step(Input::StreamOpened, t8, 0.0);
        l.step(Input::Tick, t8 + FIRST_HEARTBEAT_DELAY, 0.0);
        l.step(Input::HeartbeatOk, t8 + FIRST_HEARTBEAT_DELAY, 0.0);
        // A new refusal at 15 s starts a new grace: not fatal though 14 s passed since the first.
        let e = l.step(
            Input::HeartbeatFailed(Code::Unauthenticated),
            t0 + Duration::from_secs(15),
            0.0,
        );
        assert_eq!(e, vec![Effect::CloseStream]);
    }

    #[test]
    fn register_retries_transient_errors() {
        let t0 = Instant::now();
        let mut l = Listener::new();
        l.step(Input::Start, t0, 0.5);
        assert!(l.step(Input::RegisterFailed(Code::Unavailable), t0, 0.5).is_empty());
        let at = l.next_deadline().unwrap();
        assert_eq!(l.step(Input::Tick, at, 0.5), vec![Effect::Register]);
    }

    #[test]
    fn shutdown_closes_and_stops() {
        let t0 = Instant::now();
        let mut l = mk_streaming(t0);
        assert_eq!(l.step(Input::Shutdown, t0, 0.5), vec![Effect::CloseStream]);
        assert_eq!(l.phase(), Phase::Stopped);
        assert!(l.step(Input::StreamOpened, t0, 0.5).is_empty());
    }
}

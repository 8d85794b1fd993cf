//! Which engine failures are worth retrying, and how long to wait between tries.
//!
//! Mirrors the official Go SDK so a mixed-language fleet behaves alike: full-jitter
//! exponential backoff, retry forever on transient codes, stop on codes that a retry
//! cannot fix.

use std::time::Duration;

use tonic::Code;

/// First backoff ceiling for reconnects.
pub const RECONNECT_BASE: Duration = Duration::from_secs(1);
/// Largest backoff ceiling for reconnects.
pub const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// Transient codes: the engine is restarting, overloaded or briefly unreachable.
pub fn is_retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::Internal
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Unknown
            | Code::Aborted
            | Code::Cancelled
    )
}

/// Whether a status says a message exceeded a size limit: the engine's (gRPC-Go: `received
/// message larger than max`, `trying to send message larger than max`) or ours (tonic:
/// `message length too large`). Resending the same message cannot help, whatever the code.
pub fn is_message_too_large(status: &tonic::Status) -> bool {
    let m = status.message();
    match status.code() {
        Code::ResourceExhausted => m.contains("larger than max"),
        Code::OutOfRange | Code::Internal => m.contains("message length too large"),
        _ => false,
    }
}

/// Codes worth retrying a finished task's result on: the transient ones, and `Unauthenticated`,
/// since the engine assigned the task to this worker's token and answers so only while it
/// cannot check tokens (its database is away); the result budget bounds the wait.
pub fn is_retryable_for_results(code: Code) -> bool {
    is_retryable(code) || code == Code::Unauthenticated
}

/// Codes after which the engine has not acted on the request (unreachable, or refused for
/// load): the only ones a call that is not idempotent (start a run, push an event) retries on,
/// so a retry cannot start a second run.
pub fn is_undelivered(code: Code) -> bool {
    matches!(code, Code::Unavailable | Code::ResourceExhausted)
}

/// The ceiling of the backoff window for the `attempt`-th retry (0-based): `base * 2^attempt`,
/// capped at `max`.
pub fn backoff_ceiling(attempt: u32, base: Duration, max: Duration) -> Duration {
    let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(max)
}

/// Full jitter: a uniformly random wait in `[0, ceiling]`, given `unit` drawn from `[0, 1)`.
/// Taking the random number as an argument keeps this pure and testable.
pub fn full_jitter(attempt: u32, base: Duration, max: Duration, unit: f64) -> Duration {
    backoff_ceiling(attempt, base, max).mul_f64(unit.clamp(0.0, 1.0))
}

/// `full_jitter` with a fresh random draw.
pub fn jittered(attempt: u32, base: Duration, max: Duration) -> Duration {
    full_jitter(attempt, base, max, rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_limit_statuses_are_told_apart_from_load() {
        let engine_recv =
            tonic::Status::resource_exhausted("grpc: received message larger than max (5000000 vs. 4194304)");
        let engine_send =
            tonic::Status::resource_exhausted("trying to send message larger than max (4200000 vs. 4194304)");
        let ours = tonic::Status::out_of_range(
            "Error, decoded message length too large: found 5000000 bytes, the limit is: 4194304 bytes",
        );
        for s in [engine_recv, engine_send, ours] {
            assert!(is_message_too_large(&s), "{s:?}");
        }
        let load =
            tonic::Status::resource_exhausted("resource exhausted: tenant worker limit or concurrency limit exceeded");
        assert!(!is_message_too_large(&load));
        assert!(!is_message_too_large(&tonic::Status::unavailable("larger than max")));
    }

    #[test]
    fn results_also_ride_out_an_engine_that_cannot_check_tokens() {
        assert!(is_retryable_for_results(Code::Unauthenticated));
        assert!(is_retryable_for_results(Code::Unavailable));
        assert!(!is_retryable(Code::Unauthenticated));
        assert!(!is_retryable_for_results(Code::PermissionDenied));
        assert!(!is_retryable_for_results(Code::InvalidArgument));
    }

    #[test]
    fn ceiling_doubles_then_caps() {
        let s = Duration::from_secs;
        let got: Vec<_> = (0..8)
            .map(|a| backoff_ceiling(a, RECONNECT_BASE, RECONNECT_MAX))
            .collect();
        assert_eq!(got, vec![s(1), s(2), s(4), s(8), s(16), s(30), s(30), s(30)]);
        assert_eq!(backoff_ceiling(200, RECONNECT_BASE, RECONNECT_MAX), s(30));
    }

    #[test]
    fn jitter_spans_zero_to_ceiling() {
        let (b, m) = (RECONNECT_BASE, RECONNECT_MAX);
        assert_eq!(full_jitter(3, b, m, 0.0), Duration::ZERO);
        assert_eq!(full_jitter(3, b, m, 0.5), Duration::from_secs(4));
        assert_eq!(full_jitter(3, b, m, 1.0), Duration::from_secs(8));
        assert_eq!(full_jitter(3, b, m, 7.0), Duration::from_secs(8), "unit is clamped");
        for _ in 0..100 {
            assert!(jittered(10, b, m) <= m);
        }
    }

    #[test]
    fn codes_are_classified_like_the_go_sdk() {
        for c in [
            Code::Unavailable,
            Code::Internal,
            Code::DeadlineExceeded,
            Code::ResourceExhausted,
        ] {
            assert!(is_retryable(c), "{c:?} should be retried");
        }
        for c in [
            Code::Unauthenticated,
            Code::PermissionDenied,
            Code::InvalidArgument,
            Code::NotFound,
            Code::FailedPrecondition,
            Code::Unimplemented,
            Code::AlreadyExists,
        ] {
            assert!(!is_retryable(c), "{c:?} should stop");
        }
    }
}

//! What to tell the engine about an attempt: a pure function of how the attempt ended. The
//! executor works out the [`Ending`], [`conclude`] turns it into the one event to send (if
//! any) and the outcome the metrics count, and the executor sends it in one place.

use std::time::Duration;

use hatchet_proto::StepActionEventType;
use serde_json::Value;

use crate::payload::{completion_payload, failure_payload};
use crate::workflow::TaskError;

/// How an attempt ended on this worker.
#[derive(Debug)]
pub(crate) enum Ending {
    /// No handler is registered for the assigned action.
    UnknownAction,
    /// The input could not be read (too deep, not JSON, ...): the message says why.
    BadInput(String),
    /// The handler returned this output.
    Returned(Value),
    /// The handler returned an error.
    Errored(TaskError),
    /// The handler panicked with this message.
    Panicked(String),
    /// The task outlived its timeout and the engine did not cancel it.
    TimedOut(Duration),
    /// The engine cancelled the run: it expects no event.
    Cancelled,
    /// A durable run was evicted while it waited: the engine runs it again, and expects no event.
    Evicted,
    /// The drain deadline passed while it ran: the worker abandoned it.
    Abandoned,
    /// It arrived while the worker drained and was never started.
    HandedBack,
}

/// Whether the engine may run the task again after this failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Retried if the task has retries left (the failure may pass).
    Allowed,
    /// Never retried (running it again would fail the same way).
    Forbidden,
}

/// The event to send for an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Report {
    pub(crate) kind: StepActionEventType,
    pub(crate) payload: String,
    /// Only meaningful for FAILED.
    pub(crate) retry: Retry,
}

impl Report {
    /// STARTED, sent before the handler runs.
    pub(crate) fn started() -> Self {
        Self {
            kind: StepActionEventType::StepEventTypeStarted,
            payload: String::new(),
            retry: Retry::Allowed,
        }
    }

    /// COMPLETED with an already encoded output.
    pub(crate) fn completed(payload: String) -> Self {
        Self {
            kind: StepActionEventType::StepEventTypeCompleted,
            payload,
            retry: Retry::Allowed,
        }
    }

    fn failed(error_type: &str, message: &str, retry: Retry, site: &Site<'_>) -> Self {
        Self {
            kind: StepActionEventType::StepEventTypeFailed,
            payload: failure_payload(error_type, message, &site.trace(), site.task_run),
            retry,
        }
    }

    /// The `should_not_retry` field of the event: set on FAILED only.
    pub(crate) fn should_not_retry(&self) -> Option<bool> {
        (self.kind == StepActionEventType::StepEventTypeFailed).then_some(self.retry == Retry::Forbidden)
    }
}

/// How a run ended on this worker, as the metrics and logs count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Succeeded,
    Failed,
    Cancelled,
    TimedOut,
    Evicted,
}

impl Outcome {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::TimedOut => "timed_out",
            Self::Evicted => "evicted",
        }
    }
}

/// Where an attempt ran, for the trace part of a failure (a Rust worker has no interpreter
/// traceback to send).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Site<'a> {
    pub(crate) action: &'a str,
    pub(crate) task_run: &'a str,
    /// 1 for a first attempt.
    pub(crate) attempt: i32,
    pub(crate) worker: &'a str,
}

impl Site<'_> {
    fn trace(&self) -> String {
        format!(
            "  in action {:?}, task run {}, attempt {}\n  on worker {:?} (hatchet-worker {})",
            self.action,
            self.task_run,
            self.attempt,
            self.worker,
            env!("CARGO_PKG_VERSION"),
        )
    }
}

/// The outcome of an attempt that ended so, and the event that tells the engine (none for a
/// cancel: the engine cancelled it and expects nothing).
pub(crate) fn conclude(ending: Ending, site: &Site<'_>) -> (Outcome, Option<Report>) {
    let failed = |ty: &str, msg: &str, retry| (Outcome::Failed, Some(Report::failed(ty, msg, retry, site)));
    match ending {
        Ending::UnknownAction => failed(
            "UnknownAction",
            &format!("this worker has no handler for action {:?}", site.action),
            Retry::Forbidden,
        ),
        Ending::BadInput(why) => failed("InvalidPayload", &why, Retry::Forbidden),
        Ending::Returned(output) => match completion_payload(&output) {
            Ok(body) => (Outcome::Succeeded, Some(Report::completed(body))),
            Err(why) => failed("InvalidOutput", &why, Retry::Forbidden),
        },
        Ending::Errored(TaskError {
            error_type,
            message,
            retryable,
        }) => failed(
            &error_type,
            &message,
            if retryable { Retry::Allowed } else { Retry::Forbidden },
        ),
        Ending::Panicked(msg) => failed("Panic", &format!("task handler panicked: {msg}"), Retry::Allowed),
        Ending::TimedOut(timeout) => (
            Outcome::TimedOut,
            Some(Report::failed(
                "TimeoutError",
                &format!("task exceeded its timeout of {timeout:?} and the engine did not cancel it"),
                Retry::Allowed,
                site,
            )),
        ),
        Ending::Cancelled => (Outcome::Cancelled, None),
        Ending::Evicted => (Outcome::Evicted, None),
        Ending::Abandoned => failed(
            "WorkerShutdown",
            "the worker stopped before the task finished (drain deadline passed); the engine may retry it",
            Retry::Allowed,
        ),
        Ending::HandedBack => failed(
            "WorkerDraining",
            "the worker was draining when the task arrived; the engine may retry it",
            Retry::Allowed,
        ),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SITE: Site<'static> = Site {
        action: "wf:task",
        task_run: "run-1",
        attempt: 2,
        worker: "pod-a",
    };

    /// The event an ending must produce: its kind, `should_not_retry`, a text in its payload.
    type Expected = Option<(StepActionEventType, Option<bool>, &'static str)>;

    #[test]
    fn every_ending_has_one_outcome_and_at_most_one_event() {
        use StepActionEventType::{StepEventTypeCompleted as Completed, StepEventTypeFailed as Failed};
        let cases: Vec<(Ending, Outcome, Expected)> = vec![
            (
                Ending::UnknownAction,
                Outcome::Failed,
                Some((Failed, Some(true), "UnknownAction")),
            ),
            (
                Ending::BadInput("input nested 600 levels deep".into()),
                Outcome::Failed,
                Some((Failed, Some(true), "input nested 600")),
            ),
            (
                Ending::Returned(json!({"ok": 1})),
                Outcome::Succeeded,
                Some((Completed, None, r#"{"ok":1}"#)),
            ),
            (
                Ending::Returned(json!({"bad": "a\u{0}b"})),
                Outcome::Failed,
                Some((Failed, Some(true), "InvalidOutput")),
            ),
            (
                Ending::Errored(TaskError::retryable("flaky")),
                Outcome::Failed,
                Some((Failed, Some(false), "flaky")),
            ),
            (
                Ending::Errored(TaskError::non_retryable("bad order")),
                Outcome::Failed,
                Some((Failed, Some(true), "bad order")),
            ),
            (
                Ending::Panicked("index out of bounds".into()),
                Outcome::Failed,
                Some((Failed, Some(false), "task handler panicked: index out of bounds")),
            ),
            (
                Ending::TimedOut(Duration::from_secs(30)),
                Outcome::TimedOut,
                Some((Failed, Some(false), "timeout of 30s")),
            ),
            (Ending::Cancelled, Outcome::Cancelled, None),
            (Ending::Evicted, Outcome::Evicted, None),
            (
                Ending::Abandoned,
                Outcome::Failed,
                Some((Failed, Some(false), "WorkerShutdown")),
            ),
            (
                Ending::HandedBack,
                Outcome::Failed,
                Some((Failed, Some(false), "WorkerDraining")),
            ),
        ];
        for (ending, outcome, event) in cases {
            let what = format!("{ending:?}");
            let (got, report) = conclude(ending, &SITE);
            assert_eq!(got, outcome, "{what}");
            match (report, event) {
                (None, None) => {}
                (Some(r), Some((kind, no_retry, text))) => {
                    assert_eq!(r.kind, kind, "{what}");
                    assert_eq!(r.should_not_retry(), no_retry, "{what}");
                    assert!(r.payload.contains(text), "{what}: {}", r.payload);
                    if kind == Failed {
                        assert!(
                            r.payload.contains("attempt 2") && r.payload.contains("run-1"),
                            "{what}: {}",
                            r.payload
                        );
                    }
                }
                (r, e) => panic!("{what}: {r:?} vs {e:?}"),
            }
        }
    }

    #[test]
    fn nothing_returned_completes_with_an_empty_payload_and_started_carries_nothing() {
        let (_, report) = conclude(Ending::Returned(Value::Null), &SITE);
        assert_eq!(report.unwrap().payload, "");
        let s = Report::started();
        assert_eq!(
            (s.kind, s.payload.as_str(), s.should_not_retry()),
            (StepActionEventType::StepEventTypeStarted, "", None)
        );
    }
}

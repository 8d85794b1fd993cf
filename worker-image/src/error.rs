//! The crate's one error type.

/// Everything that can go wrong outside a task handler.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Configuration is missing or malformed (fatal: fix the environment or builder).
    #[error("configuration: {0}")]
    Config(String),
    /// A workflow, task or worker definition is invalid (fatal: fix the definition).
    #[error("invalid definition: {0}")]
    Definition(String),
    /// The engine refused a call with a status that retrying cannot fix (fatal).
    #[error("engine refused {call} ({:?}): {}", .status.code(), .status.message())]
    Refused {
        /// Name of the engine call, e.g. `TriggerWorkflow`.
        call: &'static str,
        /// The non-retryable status that ended the call.
        status: Box<tonic::Status>,
    },
    /// The engine could not be reached or answered with a transient failure (retryable).
    #[error("engine call {call} failed ({:?}): {}", .status.code(), .status.message())]
    Rpc {
        /// Name of the engine call, e.g. `TriggerWorkflow`.
        call: &'static str,
        /// The last transient status, after any retries (a local timeout counts as `DeadlineExceeded`).
        status: Box<tonic::Status>,
    },
    /// The gRPC channel could not be built (fatal: bad address or TLS material).
    #[error("connection: {0}")]
    Transport(String),
    /// A REST call failed; the message carries the HTTP status or transport error. Not retried
    /// by the client: the caller decides.
    #[error("REST {call}: {message}")]
    Rest {
        /// The HTTP method: `GET`, `PATCH`, `DELETE` or `POST`.
        call: &'static str,
        /// The HTTP status the engine answered with, when it answered with an error status.
        status: Option<u16>,
        /// The request path and what failed: the transport, an HTTP status (with the start of the body), or bad JSON.
        message: String,
    },
    /// A payload from or for the engine was not the JSON we expected (fatal for that payload).
    #[error("payload: {0}")]
    Payload(String),
    /// A workflow run ended in failure or cancellation.
    #[error("workflow run {run_id} ended {status}: {error}")]
    RunFailed {
        /// External id of the run.
        run_id: String,
        /// The final status in upper case, e.g. `FAILED` or `CANCELLED`.
        status: String,
        /// The first task error the engine reported, or empty if none.
        error: String,
    },
    /// The workflow's idempotency key matched runs that hold it: the engine started no run for
    /// the colliding requests.
    #[error("idempotency key already held by run(s) {}", .existing_run_ids.join(", "))]
    Duplicate {
        /// The runs that hold the keys, one per refused request.
        existing_run_ids: Vec<String>,
        /// For a bulk trigger, the runs the engine did start (those whose keys were free).
        started_run_ids: Vec<String>,
    },
    /// A durable task's call differs from what its event log holds at that position: the
    /// code changed between runs (a different sleep, condition, memo key or child input).
    #[error("non-determinism at event log entry {node}: {message}")]
    NonDeterminism {
        /// The log entry (1 for the run's first durable call).
        node: i64,
        /// What the engine expected and got.
        message: String,
    },
    /// The durable-task stream failed a call (broke, or the engine refused or did not answer).
    #[error("durable task: {0}")]
    Durable(String),
    /// The durable run was evicted while it waited; it starts again when its wait is over.
    #[error("the durable run was evicted")]
    Evicted,
    /// The operation was abandoned because the worker or client is shutting down.
    #[error("shutting down")]
    Shutdown,
}

impl Error {
    /// Wraps a gRPC status, classifying it as fatal or retryable.
    pub(crate) fn rpc(call: &'static str, status: tonic::Status) -> Self {
        if crate::retry::is_retryable(status.code()) && !crate::retry::is_message_too_large(&status) {
            Error::Rpc {
                call,
                status: Box::new(status),
            }
        } else {
            Error::Refused {
                call,
                status: Box::new(status),
            }
        }
    }

    /// True when retrying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Rpc { .. })
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

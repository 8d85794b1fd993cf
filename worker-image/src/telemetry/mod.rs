//! What a team's observability stack sees of its tasks, beyond the worker's `/metrics`:
//! OpenTelemetry spans per task attempt with trace context carried through runs (feature
//! `otel`), and a task's own log lines forwarded to the engine (feature `engine-logs`).

#[cfg(feature = "engine-logs")]
pub mod engine_logs;
#[cfg(feature = "otel")]
pub mod otel;

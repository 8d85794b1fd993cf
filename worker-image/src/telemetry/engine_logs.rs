//! A `tracing` layer that forwards a task's own log lines to the engine (`PutLog`, with their
//! level), so they show in the Hatchet UI beside the run, as `ctx.log` lines do. Only events
//! inside a task attempt's span are sent, and not the worker runtime's own. Sending never
//! blocks the task: lines wait in a bounded queue for a background sender, and when the
//! engine cannot keep up the newest are dropped and counted.
//!
//! ```no_run
//! # async fn f() -> hatchet_worker::Result<()> {
//! use tracing_subscriber::layer::SubscriberExt as _;
//! use tracing_subscriber::util::SubscriberInitExt as _;
//!
//! let client = hatchet_worker::Client::from_env()?;
//! tracing_subscriber::registry()
//!     .with(tracing_subscriber::fmt::layer())
//!     .with(hatchet_worker::telemetry::engine_logs::layer(&client))
//!     .init();
//! # Ok(()) }
//! ```

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;

use crate::Client;

/// Lines waiting to be sent; past this, new lines are dropped.
const QUEUE: usize = 4096;
/// Crates whose events are never forwarded: the runtime itself (the engine records what it
/// reports) and the transport under its calls, which log inside the task's span too.
const LOCAL_ONLY: [&str; 8] = [
    "hatchet_worker",
    "h2",
    "hyper",
    "hyper_util",
    "tonic",
    "tower",
    "rustls",
    "reqwest",
];
/// The name of the span the runtime opens around each task attempt.
const ATTEMPT_SPAN: &str = "task";

/// The layer; see the [module docs](self).
pub struct EngineLogLayer {
    min_level: Level,
    lines: mpsc::Sender<Line>,
    receiver: std::sync::Mutex<Option<mpsc::Receiver<Line>>>,
    sending: AtomicBool,
    client: Client,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for EngineLogLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineLogLayer")
            .field("dropped", &self.dropped.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A layer forwarding task log lines through `client`.
pub fn layer(client: &Client) -> EngineLogLayer {
    let (lines, receiver) = mpsc::channel(QUEUE);
    EngineLogLayer {
        min_level: Level::INFO,
        lines,
        receiver: std::sync::Mutex::new(Some(receiver)),
        sending: AtomicBool::new(false),
        client: client.clone(),
        dropped: Arc::new(AtomicU64::new(0)),
    }
}

impl EngineLogLayer {
    /// Forwards lines at `level` and more severe (default `INFO`).
    pub fn min_level(mut self, level: Level) -> Self {
        self.min_level = level;
        self
    }

    /// Lines dropped because the queue was full.
    pub fn dropped(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.dropped)
    }

    /// Starts the sender on the current tokio runtime the first time a line is queued.
    fn ensure_sender(&self) {
        if self.sending.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some(mut receiver) = self.receiver.lock().expect("log layer lock").take() else {
            return;
        };
        self.sending.store(true, Ordering::Release);
        let client = self.client.clone();
        runtime.spawn(async move {
            while let Some(line) = receiver.recv().await {
                // A line the engine refuses is not worth a retry storm; the task goes on.
                let _ = client
                    .put_log(&line.task_run_id, line.message, line.level, line.retry_count)
                    .await;
            }
        });
    }
}

/// One line on its way to the engine.
struct Line {
    task_run_id: String,
    retry_count: i32,
    level: &'static str,
    message: String,
}

/// The attempt a span stands for, stored in the attempt span's extensions.
#[derive(Clone)]
struct Attempt {
    task_run_id: String,
    retry_count: i32,
}

/// Reads the attempt span's `task_run` and `attempt` fields.
#[derive(Default)]
struct AttemptFields {
    task_run_id: Option<String>,
    attempt: Option<i64>,
}

impl Visit for AttemptFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "task_run" {
            self.task_run_id = Some(value.to_owned());
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "attempt" {
            self.attempt = Some(value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record_i64(field, i64::try_from(value).unwrap_or(i64::MAX));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "task_run" {
            self.task_run_id = Some(format!("{value:?}"));
        }
    }
}

/// An event's message and its other fields, `message key=value ...`.
#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

fn is_local_only(target: &str) -> bool {
    let krate = target.split("::").next().unwrap_or(target);
    LOCAL_ONLY.contains(&krate)
}

/// The engine's levels: DEBUG, INFO, WARN, ERROR.
fn engine_level(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARN",
        Level::INFO => "INFO",
        Level::DEBUG | Level::TRACE => "DEBUG",
    }
}

impl<S> Layer<S> for EngineLogLayer
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        if attrs.metadata().name() != ATTEMPT_SPAN || attrs.metadata().target() != "hatchet_worker::runtime::executor" {
            return;
        }
        let mut fields = AttemptFields::default();
        attrs.record(&mut fields);
        if let (Some(task_run_id), Some(span)) = (fields.task_run_id, ctx.span(id)) {
            let attempt = fields.attempt.unwrap_or(1);
            span.extensions_mut().insert(Attempt {
                task_run_id,
                retry_count: i32::try_from(attempt - 1).unwrap_or(0),
            });
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) {
        let meta = event.metadata();
        if *meta.level() > self.min_level || is_local_only(meta.target()) {
            return;
        }
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        let Some(attempt) = scope
            .into_iter()
            .find_map(|span| span.extensions().get::<Attempt>().cloned())
        else {
            return;
        };
        let mut message = Message::default();
        event.record(&mut message);
        let line = Line {
            task_run_id: attempt.task_run_id,
            retry_count: attempt.retry_count,
            level: engine_level(event.metadata().level()),
            message: message.0,
        };
        self.ensure_sender();
        if self.lines.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

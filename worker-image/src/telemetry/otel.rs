//! OpenTelemetry: each task attempt's span exported over OTLP, parented on the W3C trace
//! context its run carries, and that context added to the runs and events a program starts,
//! as the official SDKs do (the `traceparent` key of the additional metadata).
//!
//! By default spans go to the engine itself (its gRPC port, with the token), which stores them
//! and shows them beside the run (the engine needs `SERVER_OBSERVABILITY_ENABLED`); set
//! [`Destination::Collector`] to send them to your collector (`OTEL_EXPORTER_OTLP_*`).
//!
//! ```no_run
//! # async fn f() -> hatchet_worker::Result<()> {
//! use tracing_subscriber::layer::SubscriberExt as _;
//! use tracing_subscriber::util::SubscriberInitExt as _;
//!
//! let client = hatchet_worker::Client::from_env()?;
//! let (otel, _flush_on_drop) = hatchet_worker::telemetry::otel::layer(
//!     &client,
//!     "billing-worker",
//!     hatchet_worker::telemetry::otel::Destination::Engine,
//! )?;
//! tracing_subscriber::registry().with(otel).init();
//! # Ok(()) }
//! ```

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::{WithExportConfig as _, WithTonicConfig as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, span_processor_with_async_runtime::BatchSpanProcessor};
use serde_json::Value;
use tracing::Span;
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt as _};
use tracing_subscriber::registry::LookupSpan;

use crate::{Client, Error};

/// The metadata key that carries the W3C trace context (as in the official SDKs).
pub const TRACEPARENT: &str = "traceparent";

/// The attempt span's name: the engine places spans of this name under its own span of the
/// workflow run.
pub(crate) const ATTEMPT_SPAN_NAME: &str = "hatchet.start_step_run";

/// Where spans are exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// The Hatchet engine the client talks to, over the client's own connection.
    Engine,
    /// An OTLP/gRPC collector configured by the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (and
    /// `_HEADERS`, `_TIMEOUT`) variables.
    Collector,
}

/// Flushes and stops the exporter when dropped: keep it until the program ends.
#[derive(Debug)]
pub struct FlushOnDrop {
    provider: SdkTracerProvider,
}

impl FlushOnDrop {
    /// Exports every span ended so far, now. Call it from a multi-threaded runtime (the
    /// exporter runs on it).
    pub fn flush(&self) -> Result<(), Error> {
        self.provider
            .force_flush()
            .map_err(|e| Error::Transport(format!("exporting spans: {e}")))
    }
}

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!("stopping the span exporter: {e}");
        }
    }
}

/// A `tracing` layer that turns spans into OpenTelemetry spans exported to `destination`
/// under `service_name`, and the guard that flushes them. Build it inside the tokio runtime
/// the worker runs on.
pub fn layer<S>(
    client: &Client,
    service_name: &str,
    destination: Destination,
) -> Result<(OpenTelemetryLayer<S, SdkTracer>, FlushOnDrop), Error>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    let builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
    let exporter = match destination {
        Destination::Engine => {
            let engine = client.engine();
            builder
                .with_channel(engine.channel.clone())
                .with_interceptor(engine.auth.clone())
                .build()
        }
        Destination::Collector => builder.with_protocol(opentelemetry_otlp::Protocol::Grpc).build(),
    }
    .map_err(|e| Error::Config(format!("OTLP exporter: {e}")))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    let provider = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_span_processor(BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build())
        .build();
    let tracer = provider.tracer("hatchet-worker");
    Ok((
        tracing_opentelemetry::layer().with_tracer(tracer),
        FlushOnDrop { provider },
    ))
}

/// When spans are exported: names the attempt span as the engine expects, gives it the attributes the engine files it
/// under, and parents it on the trace context the run carries in its metadata.
pub(crate) fn adopt(span: &Span, run: AttemptIds<'_>, metadata: &serde_json::Map<String, Value>) {
    // The run's trace when it carries one; otherwise the attempt starts a trace of its own
    // rather than hang under whatever span the worker's loop is in.
    let parent = match metadata.get(TRACEPARENT) {
        Some(Value::String(traceparent)) => {
            let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.clone())]);
            TraceContextPropagator::new().extract(&carrier)
        }
        _ => opentelemetry::Context::new(),
    };
    // Refused when the subscriber has no OpenTelemetry layer: then leave the span (and the
    // log lines that show its fields) as it is.
    if span.set_parent(parent).is_err() {
        return;
    }
    span.record("otel.name", ATTEMPT_SPAN_NAME);
    span.record("otel.kind", "consumer");
    span.set_attribute("hatchet.step_run_id", run.task_run_id.to_owned());
    span.set_attribute("hatchet.workflow_run_id", run.workflow_run_id.to_owned());
    span.set_attribute("hatchet.retry_count", i64::from(run.retry_count));
    span.set_attribute("hatchet.action_id", run.action_id.to_owned());
}

/// Which run an attempt span belongs to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttemptIds<'a> {
    pub(crate) task_run_id: &'a str,
    pub(crate) workflow_run_id: &'a str,
    pub(crate) action_id: &'a str,
    pub(crate) retry_count: i32,
}

/// Adds the current span's trace context to `metadata` (unless it has one), so the runs and
/// events a traced program starts continue its trace.
pub(crate) fn inject(metadata: &mut serde_json::Map<String, Value>) {
    if metadata.contains_key(TRACEPARENT) {
        return;
    }
    let cx = Span::current().context();
    if !cx.span().span_context().is_valid() {
        return;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    if let Some(traceparent) = carrier.remove(TRACEPARENT) {
        metadata.insert(TRACEPARENT.to_owned(), Value::String(traceparent));
    }
}
